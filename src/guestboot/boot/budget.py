"""One work budget and one memory budget per config evaluation (GRUB 2, GRUB legacy,
SYSLINUX): what a hostile config can make us do is bounded by bytes, not by commands.

``charge`` counts bytes processed — config text read and lexed (every time a file is
sourced), words produced by expansion, words split, echo output, warnings — against
LIMITS.max_config_work. ``hold``/``release`` count bytes kept until the evaluation ends —
variable values, menu entries (titles, arguments, bodies), warnings, echo output —
against LIMITS.max_config_held. Both raise LimitExceeded naming what ran out and where.
The step budget (LIMITS.max_script_steps) still bounds the number of commands.
"""

from __future__ import annotations

from ..errors import LimitExceeded
from ..limits import LIMITS

# What one item costs beyond its bytes. Work: a parsed unit, a word, an option is a trip
# through the interpreter (about a microsecond, the time C takes for a few hundred bytes).
# Held: a value, an entry, a message is a Python object or several (tens of bytes each).
WORK_ITEM = 256
HELD_ITEM = 64
# What a parsed token holds beyond its text: the tree's objects (Part tuples, word lists,
# Command nodes). Measured with tracemalloc on GRUB 2 units of many short words or
# commands (``a a a …``, ``true;true;…``: 120 to 145 bytes a token), plus the slack of
# growing lists and the tokens alive while parsing; a function keeps its body's.
TOKEN_HELD = 192
# Lexing and parsing one token: about twice a short command's trip (measured against the
# bench's line-per-command attacks: 30 us a token, 67 us a command, on a loaded machine).
TOKEN_WORK = 2 * WORK_ITEM
# One thread step of the regexp matcher (grub2/regex.py): about a microsecond, like an
# interpreter trip (measured: (a|aa|aaa)*b over 20,000 characters).
REGEX_STEP_WORK = WORK_ITEM
# One instruction of a compiled regexp: parsing and compiling it takes a few microseconds
# (measured: ``(a|b)`` repeated, 1,200 times, 7,200 instructions).
REGEX_COMPILE_WORK = 2 * WORK_ITEM
# One character of a loop that Python runs character by character (blscfg's expand_val,
# $"..." strings): a few hundred ns (profiled: GRUB's $"..." reader), against a few ns a
# byte for the work done in C.
CHAR_LOOP_WORK = 64


class ConfigBudget:
    __slots__ = ("work", "held")

    def __init__(self) -> None:
        self.work = 0
        self.held = 0

    def charge(self, count: int, where: str = "") -> None:
        self.work += count
        if self.work > LIMITS.max_config_work:
            at = f"{where}: " if where else ""
            raise LimitExceeded(f"{at}the boot config made guestboot process more than "
                                f"{LIMITS.max_config_work >> 20} MiB of text (max_config_work)")

    def left(self) -> int:
        """Work still allowed."""
        return max(0, LIMITS.max_config_work - self.work)

    def hold(self, count: int, where: str = "") -> None:
        self.held += count
        if self.held > LIMITS.max_config_held:
            at = f"{where}: " if where else ""
            raise LimitExceeded(f"{at}the boot config made guestboot hold more than "
                                f"{LIMITS.max_config_held >> 20} MiB of values, entries and messages (max_config_held)")

    def release(self, count: int) -> None:
        self.held = max(0, self.held - count)



class ChargedMessages(list):
    """A list of messages (a menu's warnings) whose every ``append`` is charged to
    ``budget``: its work, and its bytes as held."""

    __slots__ = ("budget", "where")

    def __init__(self, budget: ConfigBudget, where: str = "") -> None:
        super().__init__()
        self.budget = budget
        self.where = where

    def append(self, message: str) -> None:
        self.budget.charge(len(message) + WORK_ITEM, self.where)
        self.budget.hold(len(message) + HELD_ITEM, self.where)
        super().append(message)

def check_lines(text: str, where: str) -> None:
    """Refuse a config file of more lines than LIMITS.max_config_lines before it is split
    into lines (counting newlines is one pass in C; indexing each line is not)."""
    if text.count("\n") > LIMITS.max_config_lines:
        raise LimitExceeded(f"{where}: more than {LIMITS.max_config_lines} lines (max_config_lines)")
