"""Which menu entry boots: defaults, ids, titles, ``a>b`` submenu paths, fallbacks.

GRUB 2 (format "grub2") -- what GRUB 2.06 does, read from grub-core/normal/menu.c:

* ``get_entry_number`` reads ``default`` with ``grub_strtoul(value, 0, 0)``
  (grub-core/kern/misc.c): leading blanks (space, tab, CR, LF) are skipped; ``0x`` means
  hex, a ``0`` followed by 0-7 means octal, otherwise decimal; no sign is accepted; the
  number ends at the first character that is not a digit, and the rest of the string is
  ignored. So ``"1>1"`` is the number 1 and ``"2 foo"`` is 2. Only when the value holds
  no digit at all (GRUB_ERR_BAD_NUMBER) is it matched against the entries, in menu order,
  taking the first entry whose *title* or *id* matches (``menuentry_eq``) -- there is no
  "id first, then title" pass; an entry without ``--id`` has its title as id
  (commands/menuentry.c). A value that overflows is an error, not a title: entry 0.
* ``menuentry_eq`` compares one component: a ``>`` ends the component (and then the
  name must be complete), ``>>`` stands for a literal ``>`` in the name.
* ``run_menu``: a value that matches nothing, is out of range, is empty or unset gives
  entry 0. The number is cast to a C ``int``; on i386-pc (BIOS, the GRUB a Xen HVM guest
  runs) ``unsigned long`` has 32 bits, so anything >= 2**31 is out of range and >= 2**32
  overflows. (x86_64-efi would wrap a number >= 2**32 modulo 2**32; we follow i386-pc.)
* ``grub_menu_execute_entry``: when the chosen entry is a submenu, the text of
  ``default`` after its first unescaped ``>`` becomes the submenu's ``default`` (unset
  when there is none), and the submenu is shown with timeout 0, so its own default boots.
  That is how ``"1>1"`` and ``"gnulinux-advanced-X>gnulinux-6.1.0-18-amd64-advanced-X"``
  reach an entry inside a submenu. A path that ends at a submenu boots that submenu's
  default, else entry 0. An empty submenu boots nothing: a failure. GRUB runs the
  submenu's body after setting that default, so a ``set default=`` in the body wins;
  a submenu's ``Menu.default`` is read as set by its body only when it differs from the
  value the evaluator seeded it with (see ``_submenu_default``).
* ``grub_menu_execute_with_fallback``: when the entry fails, ``fallback`` is read as
  numbers separated by blanks (``get_and_remove_first_entry_number``: strtoul, skip
  blanks, repeat; a non-number ends the list) and each is tried in turn. Fallbacks are
  entry numbers of the same menu, never titles. GRUB would crash on an out-of-range
  fallback (a NULL entry); we skip it. An entry that already failed is not run again
  (it fails the same way). A submenu reached as a fallback gets the same rest of
  ``default`` as above.

GRUB legacy (format "grub-legacy") -- stage2/stage2.c and builtins.c of GRUB 0.97:
``default N`` is 0-based, ``default saved`` uses the number read from the ``default``
file (legacy.py puts it in ``Menu.saved``); ``fallback N...`` lists up to 8 entries.
A default past the last entry becomes the first fallback (the rest stay fallbacks), or 0
when there is none; fallbacks past the last entry are dropped.

An explicit choice (``spec``, from ``--entry``) uses GRUB 2's syntax on every format (a
number, a title, an id, an ``a>b`` path), but unlike the config's own default it must
name something: no match or an out-of-range number raises NotFound listing the entries.
"""

from __future__ import annotations

from typing import NamedTuple

from .boot.legacy import legacy_fallbacks, legacy_number
from .boot.model import BootSpec, Menu, MenuEntry
from .errors import ConfigError, GuestbootError, LimitExceeded, NotFound, Unsupported
from .limits import LIMITS

_BLANKS = " \t\r\n"  # grub_isspace (grub-core/kern/misc.c)
_ULONG_MAX = (1 << 32) - 1  # unsigned long on i386-pc
_ULLONG_MAX = (1 << 64) - 1
_INT_MAX = (1 << 31) - 1

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


# --- GRUB 2's number and name matching ------------------------------------------------


def _digit(ch: str) -> int:
    """Value of one character as grub_strtoull sees it (36 when it is no digit)."""
    if "0" <= ch <= "9":
        return ord(ch) - ord("0")
    low = ch.lower() if ch.isascii() else ch
    if "a" <= low <= "z":
        return ord(low) - ord("a") + 10
    return 36


def grub_strtoul(text: str, start: int = 0) -> tuple[str, int, int]:
    """GRUB's ``grub_strtoul(text, &end, 0)`` on i386-pc: ``(status, value, end)`` where
    status is "ok", "bad" (no digit: GRUB_ERR_BAD_NUMBER) or "overflow"."""
    i = start
    n = len(text)
    while i < n and text[i] in _BLANKS:
        i += 1
    base = 10
    if i < n and text[i] == "0":
        if i + 1 < n and text[i + 1] == "x":
            base = 16
            i += 2
        elif i + 1 < n and "0" <= text[i + 1] <= "7":
            base = 8
    value = 0
    found = False
    while i < n:
        digit = _digit(text[i])
        if digit >= base:
            break
        found = True
        value = value * base + digit
        if value > _ULLONG_MAX:
            return "overflow", _ULLONG_MAX, i
        i += 1
    if not found:
        return "bad", 0, i
    if value > _ULONG_MAX:
        return "overflow", _ULONG_MAX, i
    return "ok", value, i


def _as_c_int(value: int) -> int:
    """``(int) value`` for a 32-bit unsigned long."""
    return value - (1 << 32) if value > _INT_MAX else value


def first_component(spec: str) -> str:
    """The name the first component of ``spec`` stands for: up to the first ``>`` that
    is not part of ``>>``, with each ``>>`` read as ``>``."""
    parts: list[str] = []
    k = 0
    while True:
        gt = spec.find(">", k)
        if gt < 0:
            parts.append(spec[k:])
            return "".join(parts)
        parts.append(spec[k:gt])
        if spec.startswith(">>", gt):
            parts.append(">")
            k = gt + 2
        else:
            return "".join(parts)


def menuentry_eq(name: str, spec: str) -> bool:
    """GRUB's menuentry_eq: does the first ``>``-component of ``spec`` equal ``name``?
    (GRUB compares character by character and stops at the component's end; comparing
    with :func:`first_component` gives the same answer.)"""
    return name == first_component(spec)


def rest_of_path(spec: str) -> str | None:
    """What follows the first unescaped ``>`` of ``spec`` (the submenu's new default), or
    None when there is no ``>`` or nothing after it (grub_menu_execute_entry)."""
    k = 0
    while True:
        gt = spec.find(">", k)
        if gt < 0:
            return None
        if spec.startswith(">>", gt):
            k = gt + 2
            continue
        return spec[gt + 1 :] or None


def entry_number(menu: Menu, value: str | None) -> int:
    """GRUB 2's get_entry_number: an index (maybe out of range) or -1 for no match."""
    if value is None:
        return -1
    status, number, _end = grub_strtoul(value)
    if status == "ok":
        return _as_c_int(number)
    if status == "overflow":
        return -1
    name = first_component(value)
    for index, entry in enumerate(menu.entries):
        if entry.title == name or (entry.id if entry.id is not None else entry.title) == name:
            return index
    return -1


def grub2_fallbacks(value: str | None) -> list[int]:
    """The entry numbers of GRUB 2's ``fallback`` variable, in order."""
    found: list[int] = []
    if not value:
        return found
    position = 0
    while position < len(value) and len(found) <= LIMITS.max_menu_entries:
        status, number, end = grub_strtoul(value, position)
        if status != "ok":
            break
        number = _as_c_int(number)
        if number < 0:
            break
        found.append(number)
        position = end
        while position < len(value) and value[position] in _BLANKS:
            position += 1
    return found


# --- GRUB legacy ---------------------------------------------------------------------


def _legacy_default(menu: Menu) -> tuple[int, list[int]]:
    """(index to boot, fallbacks left) for a GRUB legacy menu (stage2.c cmain)."""
    size = len(menu.entries)
    value = menu.saved if menu.default == "saved" else menu.default
    parsed = legacy_number(value) if value else None
    index = parsed[0] if parsed else 0
    fallbacks = [n for n in (legacy_fallbacks(menu.fallback or "") or []) if n < size]
    if index >= size:
        index = fallbacks.pop(0) if fallbacks else 0
    return index, fallbacks


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


def _pick(menu: Menu, value: str | None, explicit: bool, names: tuple[str, ...]) -> tuple[int, list[int]]:
    """(index, fallbacks) at one menu level."""
    if not menu.entries:
        origin = f" of {menu.origin}" if menu.origin else ""
        raise NotFound(f"the menu{origin}{_where(names)} has no entries")
    if explicit:
        index = entry_number(menu, value)
        if not 0 <= index < len(menu.entries):
            raise NotFound(f"no menu entry matches {value!r}{_where(names)}; entries are: {_describe(menu)}")
        if menu.format == "grub-legacy":
            return index, [n for n in (legacy_fallbacks(menu.fallback or "") or []) if n < len(menu.entries)]
        return index, grub2_fallbacks(menu.fallback)
    if menu.format == "grub-legacy":
        return _legacy_default(menu)
    index = entry_number(menu, value)
    if not 0 <= index < len(menu.entries):
        index = 0
    return index, grub2_fallbacks(menu.fallback)


def _check_depth(names: tuple[str, ...]) -> None:
    if len(names) > LIMITS.max_submenu_depth:
        raise LimitExceeded(f"submenus nested deeper than {LIMITS.max_submenu_depth}: {'>'.join(names)!r}")


def _submenu_default(parent: Menu, sub: Menu, rest: str | None, explicit: bool) -> tuple[str | None, bool]:
    """(value, explicit) to resolve inside ``sub``, entered from ``parent`` with ``rest``
    left of the path. GRUB sets the submenu's ``default`` to ``rest`` (unset when None)
    and then runs its body, so a ``set default=`` in the body wins. ``sub.default`` is the
    value after the body ran; when it still equals what the evaluator seeded it with
    (nothing, or the parent's default minus its first level, or the parent's default),
    the body did not set it. An explicit ``--entry`` path always wins."""
    if explicit and rest is not None:
        return rest, True
    seeded = parent.default
    if seeded:
        seeded = rest_of_path(seeded) or seeded
    if sub.default is None or sub.default == seeded:
        return rest, False
    return sub.default, False


def _descend(
    menu: Menu, index: int, rest: str | None, explicit: bool, path: tuple[int, ...], names: tuple[str, ...]
) -> Choice:
    """The bootable entry reached from entry ``index`` of ``menu`` (no fallbacks)."""
    entry = menu.entries[index]
    path, names = path + (index,), names + (entry.title,)
    while entry.submenu is not None:
        _check_depth(names)
        sub = entry.submenu
        value, explicit = _submenu_default(menu, sub, rest, explicit)
        index, _fallbacks = _pick(sub, value, explicit, names)
        rest = rest_of_path(value) if value is not None else None
        menu, entry = sub, sub.entries[index]
        path, names = path + (index,), names + (entry.title,)
    return Choice(path, entry, names)


def choose(menu: Menu, spec: str | None = None) -> Choice:
    """The entry GRUB would boot for ``spec`` (None: the menu's own default)."""
    explicit = spec is not None
    value = spec if explicit else menu.default
    index, _fallbacks = _pick(menu, value, explicit, ())
    return _descend(menu, index, rest_of_path(value) if value is not None else None, explicit, (), ())


def _run(choice: Choice) -> BootSpec:
    entry = choice.entry
    if entry.run is None:
        raise ConfigError(f"menu entry {'>'.join(choice.names)!r} has nothing to boot")
    return entry.run()


def _boot_level(
    menu: Menu, value: str | None, explicit: bool, path: tuple[int, ...], names: tuple[str, ...]
) -> tuple[Choice, BootSpec]:
    """Boot at one menu level as grub_menu_execute_with_fallback does, submenus
    included (each submenu level has its own ``fallback``)."""
    _check_depth(names)
    index, fallbacks = _pick(menu, value, explicit, names)
    rest = rest_of_path(value) if value is not None else None
    tried = {index}
    notes: list[str] = []
    first: GuestbootError | None = None
    for candidate in [index] + fallbacks:
        if candidate != index and (candidate in tried or not 0 <= candidate < len(menu.entries)):
            continue
        tried.add(candidate)
        entry = menu.entries[candidate]
        here_path, here_names = path + (candidate,), names + (entry.title,)
        try:
            if entry.submenu is not None:
                sub_value, sub_explicit = _submenu_default(
                    menu, entry.submenu, rest, explicit and candidate == index
                )
                choice, spec = _boot_level(entry.submenu, sub_value, sub_explicit, here_path, here_names)
            else:
                choice = Choice(here_path, entry, here_names)
                spec = _run(choice)
        except ENTRY_FAILURES as err:
            if first is None:
                first = err
            notes.append(f"entry {'>'.join(here_names)!r} failed: {err}")
            continue
        if notes:
            choice = Choice(choice.path, choice.entry, choice.names, tuple(notes) + choice.notes)
        return choice, spec
    assert first is not None  # the loop ran at least once and every attempt failed
    raise first


def boot(menu: Menu, spec: str | None = None) -> tuple[Choice, BootSpec]:
    """Choose as :func:`choose`, run the entry, and on failure try the ``fallback``
    entries in order as GRUB does; raises the first entry's error when all fail."""
    explicit = spec is not None
    return _boot_level(menu, spec if explicit else menu.default, explicit, (), ())


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
