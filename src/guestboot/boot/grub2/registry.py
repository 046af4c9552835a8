"""The table of GRUB commands the evaluator knows, and helpers they share.

A command is ``fn(interp, args, block) -> int`` (the value of ``$?``); it raises GrubError
where GRUB's command returns an error. The cmd_*.py modules fill COMMANDS; anything not
in it is GRUB's "can't find command" (see Interp.exec_cmdline).
"""

from __future__ import annotations

from typing import Callable

from .. import grubnum
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


# --- numbers (grub-core/kern/misc.c, via boot/grubnum.py) ------------------------------
def strtoul(text: str) -> tuple[int, str]:
    """(value, rest) as grub_strtoul(text, &end, 0) with grub-emu's 64-bit unsigned long
    (the scripts' numbers are checked against grub-emu); GrubError as GRUB fails."""
    parsed = grubnum.strtoul(text, maximum=grubnum.ULONG_MAX_64)
    if parsed.status == grubnum.BAD:
        raise GrubError(E.BAD_NUMBER, "unrecognized number")
    if parsed.status == grubnum.OVERFLOW:
        raise GrubError(E.OUT_OF_RANGE, "overflow is detected")
    return parsed.value, text[parsed.end :]


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


