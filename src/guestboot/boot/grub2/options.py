"""GRUB's option parsing for extended commands (grub-core/lib/arg.c, grub_arg_parse).

Its rules, which configs rely on without knowing: options may come anywhere among the
arguments (unless the command takes them only at the start); ``--opt value`` takes the
next argument when that does not start with ``-`` (even for an option whose value is
optional, so ``search --set root`` sets ``root``); ``--opt=value`` always works; ``--``
ends the options; a command that accepts dashes keeps unknown options as arguments.
"""

from __future__ import annotations

from typing import NamedTuple

from . import errors as E
from .errors import GrubError

NONE, VALUE, OPTIONAL = "none", "value", "optional"


class Opt(NamedTuple):
    name: str  # key in the result (the long name, or the short letter)
    long: str | None = None
    short: str | None = None
    takes: str = NONE
    repeatable: bool = False


def parse(
    args: list[str], opts: list[Opt], *, accept_dash: bool = False, at_start: bool = False
) -> tuple[dict[str, object], list[str]]:
    """(options, positional arguments). An option without value maps to True, a
    repeatable one to a list of values. GrubError(BAD_ARGUMENT) as GRUB reports it."""
    state: dict[str, object] = {}
    positional: list[str] = []
    by_short = {o.short: o for o in opts if o.short}
    by_long = {o.long: o for o in opts if o.long}

    def store(opt: Opt, value: str | None) -> None:
        if opt.takes != NONE and value is None and opt.takes != OPTIONAL:
            raise GrubError(E.BAD_ARGUMENT, f"missing mandatory option for `{opt.long or opt.short}'")
        if opt.repeatable:
            values = state.setdefault(opt.name, [])
            assert isinstance(values, list)
            if value is not None:
                values.append(value)
        else:
            state[opt.name] = True if (opt.takes == NONE or value is None) else value

    i = 0
    while i < len(args):
        arg = args[i]
        if (positional and at_start) or not arg.startswith("-") or len(arg) == 1:
            positional.append(arg)
            i += 1
            continue
        if arg[1] != "-":
            if accept_dash and any(c not in by_short for c in arg[1:]):
                positional.append(arg)
                i += 1
                continue
            for k, c in enumerate(arg[1:], start=1):
                opt = by_short.get(c)
                if opt is None:
                    raise GrubError(E.BAD_ARGUMENT, f"unknown argument `-{c}'")
                if k < len(arg) - 1:
                    if opt.takes == VALUE:
                        raise GrubError(E.BAD_ARGUMENT, f"missing mandatory option for `{opt.long or c}'")
                    store(opt, None)
                    continue
                value = None
                if opt.takes != NONE and i + 1 < len(args):
                    nxt = args[i + 1]
                    if opt.takes != OPTIONAL or len(nxt) < 2 or nxt[0] != "-":
                        value = nxt
                        i += 1
                store(opt, value)
            i += 1
            continue
        if arg == "--":
            positional.extend(args[i + 1 :])
            break
        name, eq, value = arg[2:].partition("=")
        opt = by_long.get(name)
        val: str | None = value if eq else None
        if val is None and i + 1 < len(args) and not args[i + 1].startswith("-") and opt and opt.takes != NONE:
            val = args[i + 1]
            i += 1
        if opt is None:
            if accept_dash:
                positional.append(arg)
                i += 1
                continue
            raise GrubError(E.BAD_ARGUMENT, f"unknown argument `{arg}'")
        store(opt, val)
        i += 1
    return state, positional
