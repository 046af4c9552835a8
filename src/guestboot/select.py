"""Which menu entry boots: the user's ``--entry``, else the format's own default, and
the fallback loop.

Each config format decides its default itself (a DefaultRule on its menus: GRUB 2's in
boot/grub2/default.py, GRUB legacy's in boot/legacy.py); this module never looks at
``Menu.format``, so a new format needs nothing here.

An explicit choice (``spec``, from ``--entry``) uses GRUB 2's syntax on every format (a
number, a title, an id, an ``a>b`` path through submenus; boot/menupath.py), but unlike
the config's own default it must name something and be used up entirely: no match, an
out-of-range number, text left after a number (``"2 foo"``), a path that goes on past a
bootable entry (``"1>1>1"`` where ``1>1`` boots) or ends in ``>`` (``"1>"``) raise
NotFound naming what was not used. A component that is not wholly a number is matched
against titles and ids (so a title such as ``2.6.32-xen`` can be named, as pygrub's
``--entry`` allows), where GRUB's own ``default`` would read its leading number.

Running the chosen entry follows ``grub_menu_execute_with_fallback`` (normal/menu.c):
when the entry fails, its menu's fallbacks (DefaultRule) are tried in order. GRUB would
crash on an out-of-range fallback (a NULL entry); we skip it. An entry that already
failed is not run again (it fails the same way). A submenu reached as a fallback is
entered as the default path would enter it. An empty submenu boots nothing: a failure.
"""

from __future__ import annotations

from typing import NamedTuple

from .boot.grubnum import OK, OVERFLOW, as_c_int, strtoul
from .boot.menupath import by_name, entry_number, fallback_numbers, first_component, menuentry_eq, rest_of_path, split_first
from .boot.model import BootSpec, Menu, MenuEntry
from .errors import ConfigError, GuestbootError, LimitExceeded, NotFound, Unsupported
from .limits import LIMITS

__all__ = [
    "ENTRY_FAILURES", "Choice", "Row", "boot", "choose", "entry_number", "fallback_numbers", "first_component",
    "grub_strtoul", "menuentry_eq", "rest_of_path", "rows",
]

grub_strtoul = strtoul  # the name the tests and older callers know

# Errors of running one entry after which GRUB goes on to the fallback entries. A corrupt
# image or an exceeded limit is not an entry failure: it is reported at once.
ENTRY_FAILURES = (NotFound, Unsupported, ConfigError)


class Choice(NamedTuple):
    """The bootable entry reached: ``path`` are indices from the top menu through
    submenus, ``names`` the titles along it. ``notes`` say which entries failed before
    this one (when a fallback was used)."""

    path: tuple[int, ...]
    entry: MenuEntry
    names: tuple[str, ...]
    notes: tuple[str, ...] = ()


class Row(NamedTuple):
    """One line of a flattened menu, for listing."""

    depth: int
    path: tuple[int, ...]
    title: str
    id: str | None
    is_submenu: bool
    is_default: bool


# --- choosing ---------------------------------------------------------------------------


def _describe(menu: Menu) -> str:
    shown = []
    for index, entry in enumerate(menu.entries[:20]):
        kind = " (submenu)" if entry.is_submenu else ""
        ident = f" id {entry.id!r}" if entry.id and entry.id != entry.title else ""
        shown.append(f"{index} {entry.title!r}{ident}{kind}")
    if len(menu.entries) > 20:
        shown.append(f"... {len(menu.entries) - 20} more")
    return "; ".join(shown) or "none"


def _where(names: tuple[str, ...]) -> str:
    return f" in submenu {'>'.join(names)!r}" if names else ""


def _check_depth(names: tuple[str, ...]) -> None:
    if len(names) > LIMITS.max_submenu_depth:
        raise LimitExceeded(f"submenus nested deeper than {LIMITS.max_submenu_depth}: {'>'.join(names)!r}")


def _not_empty(menu: Menu, names: tuple[str, ...]) -> None:
    if not menu.entries:
        origin = f" of {menu.origin}" if menu.origin else ""
        raise NotFound(f"the menu{origin}{_where(names)} has no entries")


def _explicit(menu: Menu, spec: str, names: tuple[str, ...]) -> tuple[int, str | None]:
    """(index, rest of the path) for an explicit ``spec`` at one level; NotFound when it
    names nothing here or leaves text unused."""
    name, rest = split_first(spec)
    status, number, end = strtoul(name)
    index = -1
    if status == OK and end == len(name):
        index = as_c_int(number)
    elif status != OVERFLOW:
        index = by_name(menu, name)
        if index < 0 and status == OK:
            raise NotFound(
                f"--entry {spec!r}{_where(names)}: {name[end:]!r} follows the entry number {name[:end].strip()!r}"
                f" and names nothing; entries are: {_describe(menu)}"
            )
    if not 0 <= index < len(menu.entries):
        raise NotFound(f"no menu entry matches {spec!r}{_where(names)}; entries are: {_describe(menu)}")
    if rest == "":
        raise NotFound(f"--entry {spec!r}{_where(names)}: nothing follows the last '>'")
    return index, rest


def _leftover(entry: MenuEntry, rest: str | None, names: tuple[str, ...]) -> None:
    if rest is not None and entry.submenu is None:
        raise NotFound(
            f"--entry: {'>'.join(names)!r} is a bootable entry, not a submenu; {rest!r} after it is left unused"
        )


def _level(
    menu: Menu, spec: str | None, entered: str | None, names: tuple[str, ...]
) -> tuple[int, tuple[int, ...], str | None, bool]:
    """(index, fallbacks, rest, explicit) at one level: ``spec`` when the user's path
    goes on here, else the format's default (entered with ``entered``)."""
    _check_depth(names)
    _not_empty(menu, names)
    if spec is not None:
        index, rest = _explicit(menu, spec, names)
        return index, menu.rule.fallbacks(menu), rest, True
    pick = menu.rule.pick(menu, entered)
    if not 0 <= pick.index < len(menu.entries):
        raise ConfigError(f"the menu{_where(names)} chose entry {pick.index} of {len(menu.entries)}")
    return pick.index, pick.fallbacks, pick.rest, False


def _descend(menu: Menu, spec: str | None) -> Choice:
    """The bootable entry reached by ``spec`` (None: the defaults), no fallbacks."""
    path: tuple[int, ...] = ()
    names: tuple[str, ...] = ()
    entered: str | None = None
    while True:
        index, _fallbacks, rest, explicit = _level(menu, spec, entered, names)
        entry = menu.entries[index]
        path, names = path + (index,), names + (entry.title,)
        if explicit:
            _leftover(entry, rest, names)
            spec = rest
        else:
            entered = rest
        if entry.submenu is None:
            return Choice(path, entry, names)
        menu = entry.submenu


def choose(menu: Menu, spec: str | None = None) -> Choice:
    """The entry the boot loader would boot for ``spec`` (None: the menu's own default)."""
    return _descend(menu, spec)


def _run(choice: Choice) -> BootSpec:
    entry = choice.entry
    if entry.run is None:
        raise ConfigError(f"menu entry {'>'.join(choice.names)!r} has nothing to boot")
    return entry.run()


def _boot_level(
    menu: Menu, spec: str | None, entered: str | None, path: tuple[int, ...], names: tuple[str, ...]
) -> tuple[Choice, BootSpec]:
    """Boot at one menu level as grub_menu_execute_with_fallback does, submenus
    included (each submenu level has its own fallbacks)."""
    index, fallbacks, rest, explicit = _level(menu, spec, entered, names)
    if explicit:
        _leftover(menu.entries[index], rest, names + (menu.entries[index].title,))
    tried = {index}
    notes: list[str] = []
    first: GuestbootError | None = None
    for candidate in (index,) + tuple(fallbacks):
        if candidate != index and (candidate in tried or not 0 <= candidate < len(menu.entries)):
            continue
        tried.add(candidate)
        entry = menu.entries[candidate]
        here_path, here_names = path + (candidate,), names + (entry.title,)
        try:
            if entry.submenu is not None:
                if explicit and candidate == index:  # the user's path goes on (or ends here)
                    choice, spec_ = _boot_level(entry.submenu, rest, None, here_path, here_names)
                else:
                    choice, spec_ = _boot_level(entry.submenu, None, rest, here_path, here_names)
            else:
                choice = Choice(here_path, entry, here_names)
                spec_ = _run(choice)
        except ENTRY_FAILURES as err:
            if first is None:
                first = err
            notes.append(f"entry {'>'.join(here_names)!r} failed: {err}")
            continue
        if notes:
            choice = Choice(choice.path, choice.entry, choice.names, tuple(notes) + choice.notes)
        return choice, spec_
    assert first is not None  # the loop ran at least once and every attempt failed
    raise first


def boot(menu: Menu, spec: str | None = None) -> tuple[Choice, BootSpec]:
    """Choose as :func:`choose`, run the entry, and on failure try the fallback entries
    in order as GRUB does; raises the first entry's error when all fail."""
    return _boot_level(menu, spec, None, (), ())


def rows(menu: Menu) -> list[Row]:
    """The menu flattened for display, depth-first in menu order. ``is_default`` marks
    every row on the path :func:`choose` takes (the submenus and the entry)."""
    try:
        default_path = choose(menu).path
    except GuestbootError:
        default_path = ()
    result: list[Row] = []
    stack: list[tuple[Menu, int, tuple[int, ...]]] = [(menu, 0, ())]
    while stack:
        current, position, prefix = stack.pop()
        if position >= len(current.entries):
            continue
        stack.append((current, position + 1, prefix))
        entry = current.entries[position]
        path = prefix + (position,)
        if len(result) >= LIMITS.max_menu_entries:
            raise LimitExceeded(f"menu has more than {LIMITS.max_menu_entries} entries")
        result.append(
            Row(len(prefix), path, entry.title, entry.id, entry.is_submenu, default_path[: len(path)] == path)
        )
        if entry.submenu is not None:
            if len(path) > LIMITS.max_submenu_depth:
                raise LimitExceeded(f"submenus nested deeper than {LIMITS.max_submenu_depth}")
            stack.append((entry.submenu, 0, path))
    return result
