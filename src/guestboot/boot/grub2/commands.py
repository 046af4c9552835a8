"""GRUB commands the evaluator knows, each following its grub-core/commands/*.c source.

A command is ``fn(interp, args, block) -> int`` (the value of ``$?``); it raises GrubError
where GRUB's command returns an error. Commands that only affect the screen, the
keyboard or modules are accepted and do nothing (NO_OPS). Anything else is GRUB's
"can't find command" (see Interp.exec_cmdline).
"""

from __future__ import annotations

import re
from typing import Callable

from ...errors import ConfigError, GuestbootError, LimitExceeded
from ...limits import LIMITS
from .. import grubenv
from ..model import FileRef
from . import errors as E
from .errors import GrubError
from .interp import BootNow, Interp, Loaded, MenuReplaced, RawEntry
from .options import OPTIONAL, VALUE, Opt, parse
from .parser import Block

Command = Callable[[Interp, list[str], "Block | None"], int]
COMMANDS: dict[str, Command] = {}


def command(*names: str):
    def register(fn: Command) -> Command:
        for name in names:
            COMMANDS[name] = fn
        return fn

    return register


class Halt(Exception):
    """``reboot``/``halt``/``exit``: GRUB stops here and never shows a menu."""


# --- strtoul as grub-core/kern/misc.c ----------------------------------------------------
def strtoul(text: str) -> tuple[int, str]:
    """(value, rest) as grub_strtoul(text, &end, 0); BAD_NUMBER when no digit."""
    s = text.lstrip(" \t\n\r\f\v")
    base = 10
    if s.startswith("0x"):
        base, s = 16, s[2:]
    elif len(s) > 1 and s[0] == "0" and s[1] in "01234567":
        base = 8
    value, i = 0, 0
    while i < len(s):
        c = s[i].lower()
        digit = int(c, 36) if c.isascii() and c.isalnum() else 99
        if digit >= base:
            break
        value = value * base + digit
        i += 1
    if i == 0:
        raise GrubError(E.BAD_NUMBER, "unrecognized number")
    return value & 0xFFFFFFFFFFFFFFFF, s[i:]


def _number(text: str) -> int:
    """grub_strtosl with the error swallowed (test.c compares 0 then)."""
    try:
        if text.startswith("-"):
            return -strtoul(text[1:])[0]
        return strtoul(text)[0]
    except GrubError:
        return 0


def _count(text: str) -> int:
    value, rest = strtoul(text)
    if rest:
        raise GrubError(E.BAD_ARGUMENT, "unrecognized number")
    return value


# --- script control (grub-core/script/execute.c) -------------------------------------
def _make_break(is_continue: bool) -> Command:
    def run(it: Interp, args: list[str], block: Block | None) -> int:
        if len(args) > 1:
            raise GrubError(E.BAD_ARGUMENT, "one argument expected")
        count = _count(args[0]) if args else 1
        if count == 0:
            raise GrubError(E.BAD_ARGUMENT, "can't break 0 loops")
        it.is_continue = is_continue
        it.active_breaks = min(count, it.active_loops)
        return 0

    return run


COMMANDS["break"] = _make_break(False)
COMMANDS["continue"] = _make_break(True)


@command("shift")
def cmd_shift(it: Interp, args: list[str], block: Block | None) -> int:
    if it.scope is None:
        return 0
    if len(args) > 1:
        return E.BAD_ARGUMENT
    n = 1
    if args:
        try:
            n, rest = strtoul(args[0])
        except GrubError:
            return E.BAD_ARGUMENT
        if rest:
            return E.BAD_ARGUMENT
    if n > len(it.scope):
        return E.BAD_ARGUMENT
    del it.scope[:n]
    return 0


@command("setparams")
def cmd_setparams(it: Interp, args: list[str], block: Block | None) -> int:
    if it.scope is None:
        return E.INVALID_COMMAND
    it.scope[:] = args
    return 0


@command("return")
def cmd_return(it: Interp, args: list[str], block: Block | None) -> int:
    if it.scope is None or len(args) > 1:
        raise GrubError(E.BAD_ARGUMENT, "not in function body")
    if not args:
        it.function_return = True
        try:
            return strtoul(it.get("?") or "")[0]
        except GrubError:
            return 0
    n = _count(args[0])
    it.function_return = True
    if n:
        raise GrubError(n, "false")
    return 0


@command("true")
def cmd_true(it: Interp, args: list[str], block: Block | None) -> int:
    return 0


@command("false")
def cmd_false(it: Interp, args: list[str], block: Block | None) -> int:
    raise GrubError(E.TEST_FAILURE, "false", silent=True)


@command("eval")
def cmd_eval(it: Interp, args: list[str], block: Block | None) -> int:
    return it.run_text(" ".join(args), config_file=False, stop_on_error=True)


# --- variables (kern/corecmd.c, normal/context.c) -------------------------------------
@command("set")
def cmd_set(it: Interp, args: list[str], block: Block | None) -> int:
    if not args:
        for name in sorted(it.ctx.vars):
            it.echo(f"{name}={it.ctx.vars[name]}\n")
        return 0
    name, eq, value = args[0].partition("=")
    if not eq:
        raise GrubError(E.BAD_ARGUMENT, "not an assignment")
    it.set(name, value)
    return 0


@command("unset")
def cmd_unset(it: Interp, args: list[str], block: Block | None) -> int:
    if not args:
        raise GrubError(E.BAD_ARGUMENT, "one argument expected")
    for name in args:
        it.unset(name)
    return 0


@command("export")
def cmd_export(it: Interp, args: list[str], block: Block | None) -> int:
    if not args:
        raise GrubError(E.BAD_ARGUMENT, "one argument expected")
    for name in args:
        it.export(name)
    return 0


# --- echo (commands/echo.c) ---------------------------------------------------------
_ECHO_OPTS = [Opt("n", short="n"), Opt("e", short="e")]
_ECHO_ESCAPES = {"\\": "\\", "a": "\a", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}


@command("echo")
def cmd_echo(it: Interp, args: list[str], block: Block | None) -> int:
    state, words = parse(args, _ECHO_OPTS, accept_dash=True, at_start=True)
    newline = "n" not in state
    out: list[str] = []
    for i, word in enumerate(words):
        if "e" in state:
            j = 0
            while j < len(word):
                if word[j] == "\\":
                    j += 1
                    if j >= len(word):
                        break
                    if word[j] == "c":
                        newline = False
                    else:
                        out.append(_ECHO_ESCAPES.get(word[j], ""))
                    j += 1
                    continue
                out.append(word[j])
                j += 1
        else:
            out.append(word)
        if i != len(words) - 1:
            out.append(" ")
    if newline:
        out.append("\n")
    it.echo("".join(out))
    return 0


@command("gettext")
def cmd_gettext(it: Interp, args: list[str], block: Block | None) -> int:
    if len(args) != 1:
        raise GrubError(E.BAD_ARGUMENT, "one argument expected")
    it.echo(args[0])
    return 0


# --- test (commands/test.c) ----------------------------------------------------------
@command("test", "[")
def cmd_test(it: Interp, args: list[str], block: Block | None) -> int:
    if args and args[-1] == "]":
        args = args[:-1]
    pos = [0]
    if _test_parse(it, args, pos, [0]):
        return 0
    raise GrubError(E.TEST_FAILURE, "false", silent=True)


def _test_parse(it: Interp, args: list[str], pos: list[int], depth: list[int]) -> bool:
    state = {"and": True, "or": False, "invert": False}

    def update(value: bool) -> None:
        state["and"] = state["and"] and (not value if state["invert"] else value)
        state["invert"] = False

    def exists(path: str) -> tuple[bool, bool, int | None]:
        node = it.file_info(path)
        if node is None:
            return False, False, None
        from ...fs.base import FileType

        return True, node.type is FileType.DIR, node.mtime

    n = len(args)
    while pos[0] < n:
        i = pos[0]
        if i + 2 < n:
            a, op, b = args[i], args[i + 1], args[i + 2]
            string_ops = {
                "=": a == b, "==": a == b, "!=": a != b,
                "<": _cmp(a, b) < 0, "<=": _cmp(a, b) <= 0,
                ">": _cmp(a, b) > 0, ">=": _cmp(a, b) >= 0,
            }
            if op in string_ops:
                update(string_ops[op])
                pos[0] += 3
                continue
            number_ops = {"-eq": "==", "-ge": ">=", "-gt": ">", "-le": "<=", "-lt": "<", "-ne": "!="}
            if op in number_ops:
                x, y = _number(a), _number(b)
                update({"==": x == y, ">=": x >= y, ">": x > y, "<=": x <= y, "<": x < y, "!=": x != y}[number_ops[op]])
                pos[0] += 3
                continue
            if op in ("-pgt", "-plt"):
                k = 0
                while k < len(a) and k < len(b) and a[k] == b[k]:
                    k += 1
                k -= 1
                while k > 0 and k < len(a) and a[k].isdigit():
                    k -= 1
                k += 1
                x, y = _number_plain(a[k:]), _number_plain(b[k:])
                update(x > y if op == "-pgt" else x < y)
                pos[0] += 3
                continue
            if op.startswith("-nt") or op.startswith("-ot"):
                e1, _, m1 = exists(a)
                e2, _, m2 = exists(b)
                bias = _number(op[3:]) if len(op) > 3 else 0
                both = m1 is not None and m2 is not None
                if op.startswith("-nt"):
                    update((e1 and not e2) or (both and m1 + bias > m2))
                else:
                    update((not e1 and e2) or (both and m1 + bias < m2))
                pos[0] += 3
                continue
        if i + 1 < n:
            op, b = args[i], args[i + 1]
            if op in ("-d", "-e", "-f"):
                found, is_dir, _ = exists(b)
                update(found and (is_dir if op == "-d" else (not is_dir if op == "-f" else True)))
                pos[0] += 2
                continue
            if op == "-s":
                try:
                    _, node, _ = it.open_ref(b)
                    update(node.size != 0)
                except GrubError:
                    update(False)
                pos[0] += 2
                continue
            if op == "-n":
                update(b != "")
                pos[0] += 2
                continue
            if op == "-z":
                update(b == "")
                pos[0] += 2
                continue
        word = args[i]
        if word == ")":
            pos[0] += 1
            if depth[0] > 0:
                depth[0] -= 1
            return state["or"] or state["and"]
        if word == "(":
            pos[0] += 1
            depth[0] += 1
            if depth[0] > 100:
                raise GrubError(E.OUT_OF_RANGE, "max recursion depth exceeded")
            update(_test_parse(it, args, pos, depth))
            continue
        if word == "!":
            state["invert"] = not state["invert"]
            pos[0] += 1
            continue
        if word == "-a":
            pos[0] += 1
            continue
        if word == "-o":
            state["or"] = state["or"] or state["and"]
            state["and"] = True
            pos[0] += 1
            continue
        update(word != "")
        pos[0] += 1
    return state["or"] or state["and"]


def _number_plain(text: str) -> int:
    try:
        return strtoul(text)[0]
    except GrubError:
        return 0


def _cmp(a: str, b: str) -> int:
    """grub_strcmp: bytes compared as unsigned."""
    x, y = a.encode("utf-8", "surrogateescape"), b.encode("utf-8", "surrogateescape")
    return (x > y) - (x < y)


# --- menu entries (commands/menuentry.c) --------------------------------------------
_MENU_OPTS = [
    Opt("class", long="class", takes=VALUE, repeatable=True),
    Opt("users", long="users", takes=OPTIONAL),
    Opt("hotkey", long="hotkey", takes=VALUE),
    Opt("source", long="source", takes=VALUE),
    Opt("id", long="id", takes=VALUE),
    Opt("unrestricted", long="unrestricted"),
]


def _setparams_prefix(args: list[str]) -> str:
    return "setparams" + "".join(" '" + a.replace("'", "'\\''") + "'" for a in args) + "\n"


def _menuentry(it: Interp, args: list[str], block: Block | None, submenu: bool) -> int:
    state, pos = parse(args, _MENU_OPTS, accept_dash=True)
    if not args:
        raise GrubError(E.BAD_ARGUMENT, "missing arguments")
    source = state.get("source")
    if source is not None and block is not None:
        raise GrubError(E.BAD_ARGUMENT, "multiple menuentry definitions")
    if source is None and block is None:
        raise GrubError(E.BAD_ARGUMENT, "no menuentry definition")
    users_opt = state.get("users")
    if isinstance(users_opt, str):
        users: str | None = users_opt
    elif "unrestricted" in state:
        users = None
    else:
        users = ""
    if block is not None:
        if not pos:
            raise GrubError(E.BAD_ARGUMENT, "no menuentry definition")
        body = pos[-1]
        titles = pos[:-1]
        text = _setparams_prefix(titles) + body[1:-1]
    else:
        titles = pos
        text = str(source)
    if not titles:
        raise GrubError(E.MENU, "menuentry is missing title")
    it.sh.entries += 1
    if it.sh.entries > LIMITS.max_menu_entries:
        raise LimitExceeded(f"more than {LIMITS.max_menu_entries} GRUB menu entries")
    classes = state.get("class") or []
    assert isinstance(classes, list)
    entry_id = state.get("id")
    it.ctx.menu.append(
        RawEntry(
            title=titles[0],
            id=entry_id if isinstance(entry_id, str) else None,
            classes=tuple(classes),
            users=users_opt if isinstance(users_opt, str) else None,
            unrestricted="unrestricted" in state,
            args=list(titles),
            source=text,
            submenu=submenu,
        )
    )
    return 0


@command("menuentry")
def cmd_menuentry(it: Interp, args: list[str], block: Block | None) -> int:
    return _menuentry(it, args, block, False)


@command("submenu")
def cmd_submenu(it: Interp, args: list[str], block: Block | None) -> int:
    return _menuentry(it, args, block, True)


# --- source / configfile (commands/configfile.c, normal/main.c read_config_file) ------
def read_config(it: Interp, name: str) -> None:
    """read_config_file: run a file in the current context. A file that cannot be read
    is ignored, as grub_normal_execute clears the error (we keep a warning)."""
    if it.source_depth >= LIMITS.max_source_depth:
        raise LimitExceeded(f"source/configfile nested more than {LIMITS.max_source_depth} deep at {name}")
    try:
        data = it.read_file(name, LIMITS.max_config_bytes)
    except GrubError as exc:
        it.warn(f"error: {exc.message} (ignored, as GRUB does)")
        return
    run_config(it, name, data)


def run_config(it: Interp, name: str, data: bytes) -> None:
    """Run config bytes; ``config_file`` and ``config_directory`` name the file while it
    runs and get their old values back afterwards (normal/main.c)."""
    old_file, old_dir = it.get("config_file"), it.get("config_directory")
    full = name if name.startswith("(") else f"({it.get('root') or ''}){name}"
    it.set("config_file", full)
    it.set("config_directory", full[: full.rfind("/")] if "/" in full else full)
    it.export("config_file")
    it.export("config_directory")
    old_where = it.where
    it.where = full
    it.source_depth += 1
    try:
        it.run_text(data.decode("utf-8", "surrogateescape"), config_file=True)
    finally:
        it.source_depth -= 1
        it.where = old_where
        for var, old in (("config_file", old_file), ("config_directory", old_dir)):
            if old is None:
                it.unset(var)
            else:
                it.set(var, old)


@command("source", ".")
def cmd_source(it: Interp, args: list[str], block: Block | None) -> int:
    if len(args) != 1:
        raise GrubError(E.BAD_ARGUMENT, "filename expected")
    read_config(it, args[0])
    return 0


@command("configfile")
def cmd_configfile(it: Interp, args: list[str], block: Block | None) -> int:
    if len(args) != 1:
        raise GrubError(E.BAD_ARGUMENT, "filename expected")
    from .interp import Interp as _Interp

    inner = _Interp(it.sh, it.ctx.copy_all(), where=it.where)
    inner.source_depth = it.source_depth
    inner.loaded = it.loaded
    read_config(inner, args[0])
    if inner.ctx.menu:
        raise MenuReplaced(inner)
    return 0


# --- environment block (commands/loadenv.c) ------------------------------------------
_LOADENV_OPTS = [Opt("file", long="file", short="f", takes=VALUE), Opt("skip-sig", long="skip-sig", short="s")]


@command("load_env")
def cmd_load_env(it: Interp, args: list[str], block: Block | None) -> int:
    state, names = parse(args, _LOADENV_OPTS)
    name = state.get("file")
    if not isinstance(name, str):
        prefix = it.get("prefix")
        if prefix is None:
            raise GrubError(E.FILE_NOT_FOUND, "variable `prefix' isn't set")
        name = prefix + "/grubenv"
    data = it.read_file(name, LIMITS.max_env_block_bytes)
    try:
        pairs = grubenv.parse(data, where=name)
    except ConfigError:
        raise GrubError(E.BAD_FILE_TYPE, "invalid environment block") from None
    for var, value in pairs:
        if names and var not in names:
            continue
        it.set(var, value)
    return 0


@command("save_env")
def cmd_save_env(it: Interp, args: list[str], block: Block | None) -> int:
    parse(args, _LOADENV_OPTS[:1])
    return 0  # guestboot never writes the guest


# --- search (commands/search.c, search_wrap.c) ---------------------------------------
_SEARCH_OPTS = [
    Opt("file", long="file", short="f"),
    Opt("label", long="label", short="l"),
    Opt("fs-uuid", long="fs-uuid", short="u"),
    Opt("set", long="set", short="s", takes=OPTIONAL),
    Opt("no-floppy", long="no-floppy", short="n"),
    Opt("hint", long="hint", short="h", takes=VALUE, repeatable=True),
    Opt("hint-ieee1275", long="hint-ieee1275", takes=VALUE, repeatable=True),
    Opt("hint-bios", long="hint-bios", takes=VALUE, repeatable=True),
    Opt("hint-baremetal", long="hint-baremetal", takes=VALUE, repeatable=True),
    Opt("hint-efi", long="hint-efi", takes=VALUE, repeatable=True),
    Opt("hint-arc", long="hint-arc", takes=VALUE, repeatable=True),
]


def search(it: Interp, kind: str, key: str, var: str | None, hints: list[str], no_floppy: bool) -> int:
    candidates: list[str] = []
    for hint in hints:
        name = it.sh.devices.canonical(hint.rstrip(","))
        if name is not None:
            candidates.append(name)
    candidates.extend(it.sh.devices.names())
    found: list[str] = []
    for name in candidates:
        if no_floppy and name.startswith("fd"):
            continue
        fs = it.sh.devices.devices.get(name)
        if fs is None or name in found:
            continue
        if kind == "fs-uuid":
            hit = fs.uuid is not None and fs.uuid.lower() == key.lower()
        elif kind == "label":
            hit = fs.label is not None and fs.label == key
        else:
            try:
                it.open_ref(f"({name}){key}")
                hit = True
            except (GrubError, GuestbootError):
                hit = False
        if hit:
            found.append(name)
            if var is not None:
                it.set(var, name)
                return 0
    if not found:
        raise GrubError(E.FILE_NOT_FOUND, f"no such device: {key}")
    it.echo(" ".join(found) + "\n")
    return 0


@command("search")
def cmd_search(it: Interp, args: list[str], block: Block | None) -> int:
    state, rest = parse(args, _SEARCH_OPTS)
    if not rest:
        raise GrubError(E.BAD_ARGUMENT, "one argument expected")
    var: str | None = None
    if "set" in state:
        var = state["set"] if isinstance(state["set"], str) else "root"
    hints = [h for key in ("hint", "hint-bios", "hint-baremetal") for h in state.get(key, [])]  # type: ignore[union-attr]
    for kind in ("label", "fs-uuid", "file"):
        if kind in state:
            return search(it, kind, rest[0], var, hints, "no-floppy" in state)
    raise GrubError(E.INVALID_COMMAND, "unspecified search type")


def _search_alias(kind: str) -> Command:
    def run(it: Interp, args: list[str], block: Block | None) -> int:
        if not args:
            raise GrubError(E.BAD_ARGUMENT, "one argument expected")
        return search(it, kind, args[0], args[1] if len(args) > 1 else None, args[2:], False)

    return run


COMMANDS["search.fs_uuid"] = _search_alias("fs-uuid")
COMMANDS["search.fs_label"] = _search_alias("label")
COMMANDS["search.file"] = _search_alias("file")


_PROBE_OPTS = [
    Opt("set", long="set", short="s", takes=VALUE),
    Opt("driver", long="driver", short="d"),
    Opt("partmap", long="partmap", short="p"),
    Opt("fs", long="fs", short="f"),
    Opt("fs-uuid", long="fs-uuid", short="u"),
    Opt("label", long="label", short="l"),
    Opt("part-uuid", long="part-uuid"),
]


@command("probe")
def cmd_probe(it: Interp, args: list[str], block: Block | None) -> int:
    state, rest = parse(args, _PROBE_OPTS)
    if not rest:
        raise GrubError(E.BAD_ARGUMENT, "device name required")
    name = rest[0][1:-1] if rest[0].startswith("(") and rest[0].endswith(")") else rest[0]
    _, fs = it.device(name)
    if "fs-uuid" in state:
        value = fs.uuid
    elif "label" in state:
        value = fs.label
    elif "fs" in state:
        value = fs.kind
    else:
        raise GrubError(E.NOT_IMPLEMENTED_YET, "probe: only --fs, --fs-uuid and --label are known here")
    if value is None:
        raise GrubError(E.BAD_FS, f"({name}) has no such property")
    if isinstance(state.get("set"), str):
        it.set(str(state["set"]), value)
    else:
        it.echo(value)
    return 0


# --- loaders (loader/i386/linux.c, loader/i386/pc/linux.c) ---------------------------
def _linux(name: str) -> Command:
    def run(it: Interp, args: list[str], block: Block | None) -> int:
        it.loaded = None
        if not args:
            raise GrubError(E.BAD_ARGUMENT, "filename expected")
        ref, _, _ = it.open_ref(args[0])
        it.loaded = Loaded(name, ref, list(args[1:]))
        return 0

    return run


def _initrd(kernels: tuple[str, ...]) -> Command:
    def run(it: Interp, args: list[str], block: Block | None) -> int:
        if not args:
            raise GrubError(E.BAD_ARGUMENT, "filename expected")
        if it.loaded is None or it.loaded.loader not in kernels:
            raise GrubError(E.BAD_ARGUMENT, "you need to load the kernel first")
        if len(args) > LIMITS.max_initrds:
            raise LimitExceeded(f"more than {LIMITS.max_initrds} initrd files on one line")
        refs: list[FileRef] = [it.open_ref(a)[0] for a in args]
        it.loaded.initrds = refs
        return 0

    return run


for _name in ("linux", "linuxefi"):
    COMMANDS[_name] = _linux(_name)
COMMANDS["linux16"] = _linux("linux16")
COMMANDS["initrd"] = _initrd(("linux", "linuxefi"))
COMMANDS["initrdefi"] = _initrd(("linux", "linuxefi"))
COMMANDS["initrd16"] = _initrd(("linux16",))


def _other_loader(name: str, needs_file: bool) -> Command:
    def run(it: Interp, args: list[str], block: Block | None) -> int:
        it.loaded = None
        if not args:
            raise GrubError(E.BAD_ARGUMENT, "filename expected")
        target = args[0].partition(")")[2] if args[0].startswith("(") else args[0]
        if needs_file and not target.startswith("+"):  # "+1" is a block list, not a file
            it.open_ref(args[0])
        it.loaded = Loaded(name, None, list(args[1:]), unsupported=name)
        return 0

    return run


for _name in ("multiboot", "multiboot2", "kfreebsd", "knetbsd", "kopenbsd", "xnu_kernel", "xnu_kernel64",
              "plan9", "legacy_kernel", "truecrypt", "freedos", "ntldr", "pxechainloader"):
    COMMANDS[_name] = _other_loader(_name, True)
COMMANDS["chainloader"] = _other_loader("chainloader", True)


def _module(it: Interp, args: list[str], block: Block | None) -> int:
    if it.loaded is None or it.loaded.unsupported is None:
        raise GrubError(E.BAD_ARGUMENT, "you need to load the kernel first")
    return 0


for _name in ("module", "module2", "kfreebsd_module", "kfreebsd_module_elf", "knetbsd_module",
              "knetbsd_module_elf", "kopenbsd_ramdisk", "xnu_kext", "xnu_mkext", "xnu_ramdisk"):
    COMMANDS[_name] = _module


@command("boot")
def cmd_boot(it: Interp, args: list[str], block: Block | None) -> int:
    if it.loaded is None:
        raise GrubError(E.NO_KERNEL, "you need to load the kernel first")
    raise BootNow()


@command("reboot", "halt", "exit", "poweroff")
def cmd_halt(it: Interp, args: list[str], block: Block | None) -> int:
    raise Halt()


# --- commands with a truth value but nothing to read ----------------------------------
@command("keystatus")
def cmd_keystatus(it: Interp, args: list[str], block: Block | None) -> int:
    if args:
        raise GrubError(E.TEST_FAILURE, "false", silent=True)  # no modifier key is held
    return 0


@command("regexp")
def cmd_regexp(it: Interp, args: list[str], block: Block | None) -> int:
    state, rest = parse(args, [Opt("set", long="set", short="s", takes=VALUE, repeatable=True)])
    if len(rest) != 2:
        raise GrubError(E.BAD_ARGUMENT, "two arguments expected")
    try:
        match = re.search(rest[0], rest[1])
    except (re.error, RecursionError, OverflowError):
        raise GrubError(E.BAD_ARGUMENT, f"invalid regular expression `{rest[0]}'") from None
    if match is None:
        raise GrubError(E.TEST_FAILURE, "false", silent=True)
    for spec in state.get("set", []):  # type: ignore[union-attr]
        num, colon, var = str(spec).rpartition(":")
        group = int(num) if colon and num.isdigit() else 1
        if group <= (match.re.groups or 0):
            it.set(var, match.group(group) or "")
    return 0


NO_OPS = (
    "insmod rmmod lsmod terminal_input terminal_output terminal font loadfont play "
    "background_image background_color serial terminfo clear sleep cpuid read ls help "
    "videoinfo lsfonts gfxterm_background_color set_background_color tpm_measure "
    "fwsetup usb nativedisk cutmem badram acpi outb outw outl cmosclean cmosset drivemap "
    "parttool password password_pbkdf2 authenticate hashsum md5sum sha1sum sha256sum "
    "sha512sum verify_detached trust distrust list_trusted lsacpi lspci lsmmap date "
    "sendkey smbios hwmatch cat hexdump pager vbeinfo vbetest videotest efiemu_loadcore "
    "efiemu_prepare efiemu_unload loopback_unset fakebios fix_video lssal lsefi lsefimmap "
    "lsefisystab dump net_bootp net_ls_addr net_ls_cards"
).split()


def _no_op(it: Interp, args: list[str], block: Block | None) -> int:
    return 0


for _name in NO_OPS:
    COMMANDS.setdefault(_name, _no_op)
