"""The table of GRUB commands the evaluator knows, and helpers they share.

A command is ``fn(interp, args, block) -> int`` (the value of ``$?``); it raises GrubError
where GRUB's command returns an error. The cmd_*.py modules fill COMMANDS; anything not
in it is GRUB's "can't find command" (see Interp.exec_cmdline).
"""

from __future__ import annotations

from typing import Callable

from . import errors as E
from .errors import GrubError
from .interp import Interp
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
        if value > 0xFFFFFFFFFFFFFFFF:
            raise GrubError(E.OUT_OF_RANGE, "overflow is detected")
        i += 1
    if i == 0:
        raise GrubError(E.BAD_NUMBER, "unrecognized number")
    return value, s[i:]


def signed_number(text: str) -> int:
    """grub_strtosl with the error swallowed (test.c compares 0 then)."""
    try:
        if text.startswith("-"):
            return -strtoul(text[1:])[0]
        return strtoul(text)[0]
    except GrubError:
        return 0


def count_arg(text: str) -> int:
    value, rest = strtoul(text)
    if rest:
        raise GrubError(E.BAD_ARGUMENT, "unrecognized number")
    return value


