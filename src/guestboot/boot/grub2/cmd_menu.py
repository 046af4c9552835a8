"""Menu entries and config files: menuentry/submenu (commands/menuentry.c),
source/configfile (commands/configfile.c, normal/main.c), load_env/save_env
(commands/loadenv.c)."""

from __future__ import annotations

from ...errors import ConfigError, LimitExceeded
from ...limits import LIMITS
from ..budget import HELD_ITEM
from .. import grubenv
from . import errors as E
from . import files
from .errors import GrubError
from .interp import Interp, MenuReplaced, RawEntry
from .parser import Block
from .options import OPTIONAL, VALUE, Opt, parse
from .registry import command


# --- menu entries (commands/menuentry.c) --------------------------------------------
_MENU_OPTS = [
    Opt("class", long="class", takes=VALUE, repeatable=True),
    Opt("users", long="users", takes=VALUE),  # upstream: a value is mandatory
    Opt("hotkey", long="hotkey", takes=VALUE),
    Opt("source", long="source", takes=VALUE),
    Opt("id", long="id", takes=VALUE),
    Opt("unrestricted", long="unrestricted"),
]
# Fedora's patched menuentry: --users may come without a value (dialect.py)
_MENU_OPTS_USERS_OPTIONAL = [Opt("users", long="users", takes=OPTIONAL) if o.name == "users" else o for o in _MENU_OPTS]


def _setparams_prefix(args: list[str]) -> str:
    return "setparams" + "".join(" '" + a.replace("'", "'\\''") + "'" for a in args) + "\n"


def _menuentry(it: Interp, args: list[str], block: Block | None, submenu: bool) -> int:
    opts = _MENU_OPTS_USERS_OPTIONAL if it.sh.dialect.users_optional else _MENU_OPTS
    state, pos = parse(args, opts, accept_dash=True)
    if not args:
        raise GrubError(E.BAD_ARGUMENT, "missing arguments")
    source = state.get("source")
    if source is not None and block is not None:
        raise GrubError(E.BAD_ARGUMENT, "multiple menuentry definitions")
    if source is None and block is None:
        raise GrubError(E.BAD_ARGUMENT, "no menuentry definition")
    users_opt = state.get("users")
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
    it.sh.budget.hold(len(text) + sum(len(t) for t in titles) * 2 + HELD_ITEM, it.at)  # args, and title again
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
    is ignored, as grub_normal_execute clears the error (we keep a warning).

    Nesting deeper than LIMITS.max_source_depth fails the one ``source``/``configfile``
    command with GRUB's own recursion error (script/execute.c, "maximum recursion depth
    exceeded."), and the config goes on running, as real GRUB does when its execution
    depth bound is reached: a config that sources itself ends with the entries made so
    far (petitboot's test-grub2-source-recursion-infinite: 11 of them)."""
    if it.source_depth >= LIMITS.max_source_depth:
        raise GrubError(E.RECURSION_DEPTH, f"maximum recursion depth exceeded ({name} nested {LIMITS.max_source_depth} deep: max_source_depth)")
    try:
        data = files.read_file(it, name, LIMITS.max_config_bytes)
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

    inner = _Interp(it.sh, it.ctx.copy_exported(it.sh), where=it.where)
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
    data = files.read_file(it, name, LIMITS.max_env_block_bytes)
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


