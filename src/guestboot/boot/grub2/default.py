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
"""

from __future__ import annotations

from ..menupath import entry_number, fallback_numbers, rest_of_path
from ..model import DefaultRule, Menu, Pick


class GrubDefault(DefaultRule):
    """GRUB 2's default at one menu level. ``own``: the menu's ``default`` is its own --
    the top level's, or a submenu's whose body set or unset ``default`` itself; otherwise
    the submenu boots what it was entered with."""

    __slots__ = ("own",)

    def __init__(self, own: bool = True) -> None:
        self.own = own

    def pick(self, menu: Menu, entered: str | None) -> Pick:
        value = menu.default if self.own else entered
        index = entry_number(menu, value)
        if not 0 <= index < len(menu.entries):
            index = 0
        return Pick(index, fallback_numbers(menu.fallback), rest_of_path(value) if value is not None else None)

    def fallbacks(self, menu: Menu) -> tuple[int, ...]:
        return fallback_numbers(menu.fallback)

    def __repr__(self) -> str:
        return f"GrubDefault(own={self.own!r})"
