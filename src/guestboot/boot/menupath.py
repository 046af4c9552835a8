"""GRUB 2's way of naming a menu entry (grub-core/normal/menu.c, 2.06): a number, a
title, an id, or a ``>``-separated path through submenus, a literal ``>`` in a name
written ``>>``. The config's ``default`` is read this way; so is guestboot's ``--entry``
on every format.

* ``get_entry_number`` reads the value with ``grub_strtoul(value, 0, 0)`` (grubnum.py):
  the number ends at the first character that is not a digit and the rest is ignored, so
  ``"1>1"`` is the number 1 and ``"2 foo"`` is 2. Only when the value holds no digit at
  all is it matched against the entries, in menu order, taking the first entry whose
  *title* or *id* matches (``menuentry_eq``) -- there is no "id first, then title" pass;
  an entry without ``--id`` has its title as id (commands/menuentry.c). A value that
  overflows is an error, not a title: no entry.
* ``menuentry_eq`` compares one component: a ``>`` ends the component (and then the
  name must be complete), ``>>`` stands for a literal ``>`` in the name.
* The number is cast to a C ``int``; on i386-pc ``unsigned long`` has 32 bits, so
  anything >= 2**31 is out of range and >= 2**32 overflows (x86_64-efi would wrap a
  number >= 2**32 modulo 2**32; we follow i386-pc).
* ``grub_menu_execute_entry``: entering a submenu, the text after the value's first
  unescaped ``>`` becomes the submenu's ``default`` (unset when there is none).
* ``fallback`` is read as numbers separated by blanks
  (``get_and_remove_first_entry_number``: strtoul, skip blanks, repeat; a non-number
  ends the list). Fallbacks are entry numbers, never titles.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..limits import LIMITS
from .grubnum import BAD, OK, as_c_int, skip_blanks, strtoul

if TYPE_CHECKING:
    from .model import Menu


def split_first(spec: str) -> tuple[str, str | None]:
    """(the first component's name, what follows its ``>``): the name is read up to the
    first ``>`` that is not part of ``>>``, each ``>>`` read as ``>``; the rest is None
    when there is no such ``>`` (and "" when nothing follows it)."""
    parts: list[str] = []
    k = 0
    while True:
        gt = spec.find(">", k)
        if gt < 0:
            parts.append(spec[k:])
            return "".join(parts), None
        parts.append(spec[k:gt])
        if spec.startswith(">>", gt):
            parts.append(">")
            k = gt + 2
        else:
            return "".join(parts), spec[gt + 1 :]


def first_component(spec: str) -> str:
    """The name the first component of ``spec`` stands for."""
    return split_first(spec)[0]


def menuentry_eq(name: str, spec: str) -> bool:
    """GRUB's menuentry_eq: does the first ``>``-component of ``spec`` equal ``name``?
    (GRUB compares character by character and stops at the component's end; comparing
    with :func:`first_component` gives the same answer.)"""
    return name == first_component(spec)


def rest_of_path(spec: str) -> str | None:
    """What follows the first unescaped ``>`` of ``spec`` (the submenu's new default), or
    None when there is no ``>`` or nothing after it (grub_menu_execute_entry)."""
    return split_first(spec)[1] or None


def by_name(menu: Menu, name: str) -> int:
    """The first entry whose title or id (its title when it has none) is ``name``; -1."""
    for index, entry in enumerate(menu.entries):
        if entry.title == name or (entry.id if entry.id is not None else entry.title) == name:
            return index
    return -1


def entry_number(menu: Menu, value: str | None) -> int:
    """GRUB 2's get_entry_number: an index (maybe out of range) or -1 for no match."""
    if value is None:
        return -1
    status, number, _end = strtoul(value)
    if status == OK:
        return as_c_int(number)
    if status != BAD:  # overflow
        return -1
    return by_name(menu, first_component(value))


def fallback_numbers(value: str | None) -> tuple[int, ...]:
    """The entry numbers of GRUB 2's ``fallback`` variable, in order."""
    found: list[int] = []
    if not value:
        return ()
    position = 0
    while position < len(value) and len(found) <= LIMITS.max_menu_entries:
        status, number, end = strtoul(value, position)
        if status != OK:
            break
        number = as_c_int(number)
        if number < 0:
            break
        found.append(number)
        position = skip_blanks(value, end)
    return tuple(found)
