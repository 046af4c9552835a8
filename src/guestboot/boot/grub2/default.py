"""Which entry GRUB 2 boots when nobody chooses (grub-core/normal/menu.c, 2.06).

* ``run_menu``: the ``default`` variable is read as menupath.py describes; a value that
  matches nothing, is out of range, is empty or unset gives entry 0.
* ``grub_menu_execute_entry``: when the chosen entry is a submenu, the text of
  ``default`` after its first unescaped ``>`` becomes the submenu's ``default`` (unset
  when there is none), then the submenu's body runs and its menu is shown with timeout
  0, so its own default boots. A ``set default=`` (or ``unset default``) in the body wins
  over the value it was entered with; the evaluator records whether the body did that
  (``GrubDefault.own``) instead of guessing from the value. A path that ends at a
  submenu boots that submenu's default, else entry 0.
* ``grub_menu_execute_with_fallback``: when the entry fails, the ``fallback`` numbers of
  the same menu are tried in turn (select.py runs that loop).

Fedora's GRUB reads ``default`` its own way (rhboot/grub2, normal/menu.c
``get_entry_number_helper``), so that a BLS id beginning with digits -- a machine id
such as "2a6f…-6.5.6-300.fc39.x86_64" -- is not taken for the number 2: first the id of
every entry, compared up to the value's first blank (a value with more after that blank
names no entry); then every title, compared whole; only then a number, which must be
the whole value. :func:`fedora_entry_number` follows it for menus of the "fedora" dialect.
"""

from __future__ import annotations

from ..grubnum import OK, as_c_int, strtoul
from ..menupath import entry_number, fallback_numbers, rest_of_path
from ..model import DefaultRule, Menu, Pick

_BLANKS = " \t\n\r\f\v"  # grub_isspace


def _menuentry_eq(name: str, spec: str, limit: int) -> bool:
    """Fedora's menuentry_eq(name, spec, limit): ``name`` against ``spec`` up to a ``>``
    (``>>`` is a literal ``>``); with a ``limit``, also when ``spec`` goes on with a blank
    right after ``limit`` characters. (End of string is C's NUL.)"""
    i = j = 0
    while limit == -1 or i <= limit:
        c1 = name[i] if i < len(name) else ""
        c2 = spec[j] if j < len(spec) else ""
        nxt = spec[j + 1] if j + 1 < len(spec) else ""
        if c2 == ">" and nxt != ">":
            return c1 == "" and j > 0
        if c2 == ">":
            j += 1
            c2 = spec[j] if j < len(spec) else ""
        if c1 != c2:
            return limit > -1 and i == limit and c1 == "" and c2 != "" and c2 in _BLANKS and i - 1 != 0
        if c1 == "":
            return i != 0
        i += 1
        j += 1
    return False


def fedora_entry_number(menu: Menu, value: str | None) -> int:
    """Fedora's get_entry_number: an index (maybe out of range) or -1."""
    if value is None:
        return -1
    length = 0
    while length < len(value) and value[length] not in _BLANKS:
        length += 1
    for index, entry in enumerate(menu.entries):
        if _menuentry_eq(entry.id if entry.id is not None else entry.title, value, length):
            return index if length == len(value) else -1
    for index, entry in enumerate(menu.entries):
        if _menuentry_eq(entry.title, value, -1):
            return index
    status, number, end = strtoul(value)
    if status != OK or end != len(value):
        return -1
    return as_c_int(number)


class GrubDefault(DefaultRule):
    """GRUB 2's default at one menu level. ``own``: the menu's ``default`` is its own --
    the top level's, or a submenu's whose body set or unset ``default`` itself; otherwise
    the submenu boots what it was entered with."""

    __slots__ = ("own",)

    def __init__(self, own: bool = True) -> None:
        self.own = own

    def pick(self, menu: Menu, entered: str | None) -> Pick:
        value = menu.default if self.own else entered
        index = (fedora_entry_number if menu.dialect == "fedora" else entry_number)(menu, value)
        if not 0 <= index < len(menu.entries):
            index = 0
        return Pick(index, fallback_numbers(menu.fallback), rest_of_path(value) if value is not None else None)

    def fallbacks(self, menu: Menu) -> tuple[int, ...]:
        return fallback_numbers(menu.fallback)

    def __repr__(self) -> str:
        return f"GrubDefault(own={self.own!r})"
