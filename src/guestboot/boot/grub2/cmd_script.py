"""Script control, variables and output: execute.c's break/continue/shift/setparams/
return, corecmd.c's set/unset, export, echo.c, eval, and the commands accepted as no-ops
(screen, keyboard, modules)."""

from __future__ import annotations

from . import errors as E
from .errors import GrubError
from .interp import Interp
from .parser import Block
from .options import VALUE, Opt, parse
from .registry import COMMANDS, Command, Halt, command, count_arg, strtoul


# --- script control (grub-core/script/execute.c) -------------------------------------
def _make_break(is_continue: bool) -> Command:
    def run(it: Interp, args: list[str], block: Block | None) -> int:
        if len(args) > 1:
            raise GrubError(E.BAD_ARGUMENT, "one argument expected")
        count = count_arg(args[0]) if args else 1
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
    n = count_arg(args[0])
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


@command("reboot", "halt", "exit", "poweroff")
def cmd_halt(it: Interp, args: list[str], block: Block | None) -> int:
    raise Halt()


# --- commands with a truth value but nothing to read ----------------------------------
@command("keystatus")
def cmd_keystatus(it: Interp, args: list[str], block: Block | None) -> int:
    if args:
        raise GrubError(E.TEST_FAILURE, "false", silent=True)  # no modifier key is held
    return 0


_REGEXP_OPTS = [Opt("set", long="set", short="s", takes=VALUE, repeatable=True)]


@command("regexp")
def cmd_regexp(it: Interp, args: list[str], block: Block | None) -> int:
    """commands/regexp.c: ``regexp [--set [N:]VAR]... REGEXP STRING``, a POSIX ERE
    (regex.py: no backtracking, bounded). On a match each VAR gets group N (1 when no N is
    given; a group that took no part unsets VAR); no match, or a pattern regcomp refuses,
    is a quiet false."""
    from .regex import RegexError, compile_ere

    it.sh.wildcards = True  # running regexp autoloads its module, which installs the translator
    state, positional = parse(args, _REGEXP_OPTS)
    if len(positional) != 2:
        raise GrubError(E.BAD_ARGUMENT, "two arguments expected")
    try:
        spans = compile_ere(positional[0], it.sh.budget, it.at).search(positional[1], it.sh.budget, it.at)
    except RegexError as err:
        it.warn(f"regexp {err.message}; taken as no match")
        raise GrubError(E.TEST_FAILURE, "false", silent=True) from None
    if spans is None:
        raise GrubError(E.TEST_FAILURE, "No match", silent=True)
    names = state.get("set") or []
    assert isinstance(names, list)
    for spec in names:
        number_text, colon, var = spec.partition(":")
        if not colon:
            number, var = 1, spec
        else:  # grub_strtoul(…, 10) must stop at the ':' (":VAR" is group 0, the whole match)
            if number_text and not (number_text.isascii() and number_text.isdigit()):
                raise GrubError(E.BAD_ARGUMENT, f"invalid variable name format {spec}")
            if not number_text:
                it.warn("error: unrecognized number.")  # grub_strtoul found no digits, and goes on
            number = int(number_text) if number_text else 0
        span = spans[number] if number < len(spans) else None
        if span is None:
            it.unset(var)
        else:
            it.set(var, positional[1][span[0] : span[1]])
    return 0


def _names_regexp(args: list[str]) -> bool:
    return any(arg.rsplit("/", 1)[-1].removesuffix(".mod") == "regexp" for arg in args)


@command("insmod")
def cmd_insmod(it: Interp, args: list[str], block: Block | None) -> int:
    """Modules are built in here; only the regexp module changes what a config does: it
    turns on wildcard expansion (wildcard.py), until rmmod removes it."""
    if _names_regexp(args):
        it.sh.wildcards = True
    return 0


@command("rmmod")
def cmd_rmmod(it: Interp, args: list[str], block: Block | None) -> int:
    if _names_regexp(args):
        it.sh.wildcards = False
    return 0


NO_OPS = (
    "lsmod terminal_input terminal_output terminal font loadfont play "
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
