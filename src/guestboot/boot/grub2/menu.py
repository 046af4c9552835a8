"""From a guest's grub.cfg to the Menu GRUB 2 would show, and what each entry boots.

The initial environment is what GRUB 2.06 (Debian, i386-pc) has when normal mode reads
``$prefix/grub.cfg``: ``root`` and ``prefix`` (exported), the ``feature_*`` flags of
normal/main.c, ``grub_cpu``/``grub_platform``. The whole config runs first; the menu is
shown with the variables as they are then. A submenu's body runs, when chosen, in a new
context holding the exported variables (grub_menu_execute_entry + grub_env_context_open),
with ``timeout=0`` as when GRUB enters it by default; we run it right away, which sees
the same variables. An entry's
body runs only when it is chosen: MenuEntry.run does that on a copy of the final state.
"""

from __future__ import annotations

import posixpath
import re

from ...devices import DeviceMap
from ...errors import ConfigError, GuestbootError, LimitExceeded, NotFound, Unsupported
from ...fs import path as fspath
from ...limits import LIMITS
from ..cmdline import rebuild, with_boot_image
from ..model import BootSpec, Menu, MenuEntry, Module
from .commands import Halt, run_config
from .default import GrubDefault
from .dialect import detect, named
from .interp import BootNow, Context, Interp, MenuReplaced, RawEntry, Shared

def evaluate(
    devices: DeviceMap,
    device: str,
    path: str,
    *,
    env: dict[str, str] | None = None,
    check_files: bool = True,
    grub_dialect: str | None = None,
) -> Menu:
    """Run the GRUB 2 config at ``path`` on ``device`` and return its menu. With
    ``check_files`` off (pygrub's --isconfig) loaders record paths without opening them.
    ``grub_dialect`` names the GRUB build to emulate (dialect.py); None: the one the
    image shows. The menu records it and why (``Menu.dialect``, ``Menu.dialect_reason``)."""
    fs = devices.filesystem(device)
    canonical = devices.canonical(device) or device
    data = fspath.read_bytes(fs, path, LIMITS.max_config_bytes)
    text = data.decode("utf-8", "surrogateescape")
    if grub_dialect:
        dialect, reason = named(grub_dialect), "chosen by the caller"
    else:
        dialect, reason = detect(devices, canonical, text)
    origin = f"{canonical}:{path}"
    shared = Shared(devices, [], check_files=check_files, dialect=dialect)
    it = Interp(shared, Context(), where=origin)
    initial = {"root": canonical, "prefix": f"({canonical}){posixpath.dirname(path) or '/'}"}
    initial.update({name: "y" for name in dialect.features})
    initial.update(dialect.variables)
    relative = _in_default_root(fs, path) if dialect.btrfs_relative_path else None
    if relative is not None:  # found as this GRUB finds it: its grub-install set btrfs_relative_path
        initial.update(prefix=f"({canonical}){posixpath.dirname(relative) or '/'}", btrfs_relative_path="y")
    for name, value in initial.items():
        it.set(name, value)
        it.export(name)
    for name, value in (env or {}).items():
        it.set(name, value)
    it = _run_top(it, lambda i: run_config(i, f"({canonical}){path}", data), "the config")
    menu = _build(it, origin, 0)
    menu.dialect_reason = reason
    return menu


def _in_default_root(fs, path: str) -> str | None:
    """``path`` from the file system's default root (dialect.py, "btrfs paths") when it
    lies below it, else None."""
    try:
        top = fs.default_root_path()
    except GuestbootError:  # unreadable: the config was not found through it either
        return None
    if top is None or not path.startswith(top.rstrip("/") + "/"):
        return None
    return path[len(top.rstrip("/")) :]


def _run_top(it: Interp, action, what: str) -> Interp:
    """Run ``action`` the way GRUB runs a config before showing its menu."""
    try:
        action(it)
    except MenuReplaced as replaced:
        return replaced.interp
    except Halt:
        it.warn(f"{what} reboots, halts or exits GRUB before the menu is shown")
    except BootNow:
        it.warn(f"{what} runs 'boot' before the menu is shown; the menu below is what it defined so far")
    return it


def _build(it: Interp, origin: str, depth: int, own: bool | None = None, expand: bool = True) -> Menu:
    # One frozen snapshot of this level's final state; every entry's run starts from it
    # (copy on write), so entries cost nothing until one runs. ``own``: the menu's
    # ``default`` is its own (GrubDefault); None: the top level's, or a submenu's that
    # set it. ``expand``: entries that open a menu with configfile are read as submenus
    # (one level: inside an opened menu they are not, so a "back to the main menu" entry
    # costs one evaluation, not one per level).
    snapshot = _Snapshot(it)
    entries: list[MenuEntry] = []
    for raw in it.ctx.menu:
        entry = MenuEntry(
            title=raw.title,
            id=raw.id,
            classes=raw.classes,
            users=raw.users,
            unrestricted=raw.unrestricted,
        )
        if raw.submenu:
            entry.submenu = _submenu(it, raw, origin, depth + 1, expand)
        else:
            entry.submenu = _opened_menu(snapshot, raw, origin, depth + 1) if expand else None
            if entry.submenu is None:
                entry.run = _runner(snapshot, raw)
        entries.append(entry)
    return Menu(
        entries=entries,
        default=it.get("default"),
        fallback=it.get("fallback"),
        timeout=it.get("timeout"),
        origin=origin,
        format="grub2",
        warnings=it.sh.warnings,
        rule=GrubDefault(own=(depth == 0 or it.ctx.default_written) if own is None else own),
        dialect=it.sh.dialect.name,
    )


def enter_entry(it: Interp, raw: RawEntry, outer: Interp | None = None) -> None:
    """What grub_menu_execute_entry sets before running a body: ``chosen`` gets the
    entry's id appended (``>`` doubled), ``default`` loses its first ``a>`` level, or is
    unset when it has none (Debian 2.06, seen with grub-emu)."""
    chosen = (outer or it).get("chosen")
    own = (raw.id if raw.id is not None else raw.title).replace(">", ">>")
    it.set("chosen", f"{chosen}>{own}" if chosen is not None else own)
    it.export("chosen")
    default = (outer or it).get("default")  # read before a submenu's new context opens
    if default:
        i = 0
        while i < len(default):
            if default.startswith(">>", i):
                i += 2
                continue
            if default[i] == ">":
                break
            i += 1
        if i + 1 < len(default):
            it.set("default", default[i + 1 :])
        else:
            it.unset("default")
    it.ctx.default_written = False  # from here on, only the body itself counts


def _submenu(parent: Interp, raw: RawEntry, origin: str, depth: int, expand: bool = True) -> Menu:
    if depth > LIMITS.max_submenu_depth:
        raise LimitExceeded(f"GRUB submenus nested more than {LIMITS.max_submenu_depth} deep")
    sub = Interp(parent.sh, parent.ctx.copy_exported(parent.sh), where=f"{origin}: submenu '{raw.title}'")
    sub.loaded = parent.loaded.copy() if parent.loaded is not None else None
    sub.set("timeout", "0")  # entered by default (auto_boot), the way guestboot picks entries
    enter_entry(sub, raw, parent)
    sub = _run_top(sub, lambda i: i.run_new_scope(raw.source, raw.args), f"submenu '{raw.title}'")
    return _build(sub, f"{origin}>{raw.title}", depth, expand=expand)


class _Snapshot:
    """A menu level's final state, frozen once and shared by its entries' runs."""

    __slots__ = ("variables", "exported", "functions", "loaded", "where", "evaluation")

    def __init__(self, it: Interp) -> None:
        self.variables, self.exported = it.ctx.snapshot(it.sh)
        if it.sh.functions.changed:
            it.sh.spend_copies(len(it.sh.functions))
        self.functions = it.sh.functions.frozen()
        self.loaded = it.loaded.copy() if it.loaded is not None else None
        self.where = it.where
        self.evaluation = it.sh  # the whole evaluation's counters: every run spends from one budget


def _entry_interp(snap: _Snapshot, raw: RawEntry) -> Interp:
    """An interpreter about to run ``raw``'s body from the menu's final state. Entry runs
    share LIMITS.max_script_steps and the work budget with the config itself and with
    each other, so listing a menu of many hostile entries stays bounded as a whole."""
    evaluation = snap.evaluation
    shared = Shared(
        evaluation.devices,
        [],
        functions=snap.functions,
        steps=evaluation.steps,
        check_files=evaluation.check_files,
        dialect=evaluation.dialect,
        budget=evaluation.budget,
    )
    r = Interp(shared, Context(snap.variables, snap.exported, []), where=f"{snap.where}: entry '{raw.title}'")
    r.loaded = snap.loaded.copy() if snap.loaded is not None else None
    enter_entry(r, raw)
    return r


_CONFIGFILE = re.compile(r"(?<![\w.-])configfile(?![\w.-])")


def _opened_menu(snap: _Snapshot, raw: RawEntry, origin: str, depth: int) -> Menu | None:
    """The menu an entry opens: GRUB runs the chosen entry, its ``configfile`` reads a
    config whose menu replaces the current one (commands/configfile.c, a new context
    holding the exported variables), and that menu's own default boots. Such an entry is
    a submenu here: its body runs now, when it names configfile at all; None when it
    does not open a menu (it is then run when chosen, as every entry)."""
    if not _CONFIGFILE.search(raw.source):
        return None
    if depth > LIMITS.max_submenu_depth:
        return None
    r = _entry_interp(snap, raw)
    try:
        r.run_new_scope(raw.source, raw.args)
    except MenuReplaced as replaced:
        return _build(replaced.interp, f"{origin}>{raw.title}", depth, own=True, expand=False)
    except (BootNow, Halt):
        return None
    finally:
        snap.evaluation.steps = r.sh.steps
    return None


def _runner(snap: _Snapshot, raw: RawEntry):
    def run() -> BootSpec:
        r = _entry_interp(snap, raw)
        evaluation, shared = snap.evaluation, r.sh
        held = evaluation.budget.held
        try:
            err = r.run_new_scope(raw.source, raw.args)
        except BootNow:
            err = 0
        except Halt:
            raise NotFound(f"entry '{raw.title}' reboots or halts instead of loading a kernel") from None
        except MenuReplaced:
            raise ConfigError(f"entry '{raw.title}' opens another menu (configfile) and loads no kernel") from None
        finally:
            evaluation.steps = shared.steps
            evaluation.budget.release(evaluation.budget.held - held)  # what the run held is dropped with it
        why = "; ".join(shared.warnings)
        if r.loaded is None:
            raise NotFound(f"entry '{raw.title}' loads no kernel" + (f" ({why})" if why else ""))
        if r.loaded.unsupported is not None or r.loaded.kernel is None:
            raise Unsupported(f"entry '{raw.title}' boots with '{r.loaded.loader}', not a Linux kernel")
        if err != 0:
            raise ConfigError(
                f"entry '{raw.title}': GRUB does not boot it because its last command failed"
                + (f" ({why})" if why else f" ($?={err})")
            )
        kernel = r.loaded.kernel
        args = r.loaded.args
        if r.loaded.modules or r.loaded.loader in ("multiboot", "multiboot2"):
            # a multiboot kernel's command line is its arguments alone (loader/multiboot.c)
            modules = tuple(Module(ref, rebuild(margs), unzip) for ref, margs, unzip in r.loaded.modules)
            return BootSpec(kernel, (), rebuild(args), rebuild(args), r.loaded.loader, modules)
        return BootSpec(
            kernel=kernel,
            initrds=tuple(r.loaded.initrds),
            args=rebuild(args),
            cmdline=with_boot_image(kernel.written, args),
            loader=r.loaded.loader,
        )

    return run
