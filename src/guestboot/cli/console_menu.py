"""The interactive boot menu on the console, as pygrub shows it when a person may be there.

The bootable entries (submenus flattened to "Parent > Entry", as pygrub lists them) with
the default highlighted and a countdown of the config's own timeout (boot/timeout.py, cut
to LIMITS.max_menu_wait_seconds so that a guest cannot hold the host's toolstack). Any
key stops the countdown; Up/Down (or k/j, Ctrl-P/Ctrl-N), Home/End and Page Up/Down move;
Enter boots the highlighted entry; ``a`` edits its kernel arguments first, as pygrub's
``a`` does (a line editor: Left/Right, Home/End, Backspace/Delete, Ctrl-U/Ctrl-K; Enter
boots with the line, Esc goes back). Ctrl-C interrupts (exit 130). pygrub's ``e`` (edit
the whole entry) and ``c`` (a GRUB command line) are not offered.

Only the terminal is touched: the tty on standard input, opened again by its name for
drawing, in cbreak mode (restored on every way out). Guest text is shown through
render.shown (one line, controls escaped) and cut to the terminal's width.
"""

from __future__ import annotations

import os
import re
import select
import termios
import time
import tty
from typing import Any, Callable, NamedTuple

from ..limits import LIMITS
from .render import shown

UP = (b"\x1b[A", b"\x1bOA", b"k", b"\x10")
DOWN = (b"\x1b[B", b"\x1bOB", b"j", b"\x0e")
HOME = (b"\x1b[H", b"\x1bOH", b"\x1b[1~", b"\x1b[7~")
END = (b"\x1b[F", b"\x1bOF", b"\x1b[4~", b"\x1b[8~")
PAGE_UP = (b"\x1b[5~",)
PAGE_DOWN = (b"\x1b[6~",)
LEFT = (b"\x1b[D", b"\x1bOD", b"\x02")
RIGHT = (b"\x1b[C", b"\x1bOC", b"\x06")
DELETE = (b"\x1b[3~", b"\x04")
BACKSPACE = (b"\x7f", b"\x08")
ESCAPE = b"\x1b"
ENTER = (b"\r", b"\n")
INTERRUPT = b"\x03"  # Ctrl-C
HEADER = ("Use the \u2191 and \u2193 keys to select which entry is highlighted.",
          "Press enter to boot the selected OS, 'a' to modify the kernel arguments before booting.")


class Picked(NamedTuple):
    """What the person chose: an entry, and the kernel arguments typed for it (None: the
    entry's own)."""

    choice: "Choice"
    args: str | None = None


class Choice(NamedTuple):
    """A bootable row: its index path ("1>0", what --entry takes) and its titles."""

    path: str
    title: str
    default: bool


def choices(rows: list[dict[str, Any]]) -> list[Choice]:
    """The bootable rows of a result's menu rows, submenu titles joined with " > "."""
    out: list[Choice] = []
    parents: list[str] = []
    for row in rows:
        del parents[row["depth"]:]
        if row["submenu"]:
            parents.append(row["title"])
            continue
        out.append(Choice(row["path"], " > ".join([*parents, row["title"]]), bool(row["default"])))
    return out


def terminal() -> int | None:
    """A descriptor to draw on and read keys from, or None when standard input is no terminal."""
    if not os.isatty(0):
        return None
    try:
        return os.open(os.ttyname(0), os.O_RDWR | os.O_NOCTTY)
    except OSError:
        return None


def ask(console: int, plan: Callable[[str | None], dict[str, Any]], *, editable: bool) -> tuple[str | None, str | None]:
    """The whole interactive choice: ``plan(None)`` reads the menu (a sandboxed "plan"
    run), the person at ``console`` chooses (with ``a`` when ``editable``: an entry's own
    arguments come from ``plan(path)``). Returns the entry path to boot (None for the
    default, chosen or timed out: the real run then picks it exactly as it would have)
    and the arguments typed for it (None: its own). ``console`` is closed."""
    try:
        planned = plan(None)
        items = choices(planned["rows"])
        if not items:
            return None, None
        args_of = (lambda item: planned["args"] if item.default else plan(item.path)["args"]) if editable else None
        picked = choose(items, planned.get("menu_wait"), console, args_of=args_of)
        return (None if picked.choice.default else picked.choice.path), picked.args
    finally:
        os.close(console)


def choose(items: list[Choice], wait: int | None, fd: int, *, args_of: Callable[[Choice], str] | None = None,
           clock=time.monotonic) -> Picked:
    """Show ``items`` on the terminal ``fd`` and return the one to boot: the one Enter was
    pressed on, or the default when ``wait`` seconds pass with no key (None: the config
    waits for a key; cut to LIMITS.max_menu_wait_seconds like any longer wait).
    ``args_of`` gives an entry's kernel arguments for the ``a`` key (None: no editing)."""
    selected = next((i for i, c in enumerate(items) if c.default), 0)
    limit = LIMITS.max_menu_wait_seconds if wait is None else min(wait, LIMITS.max_menu_wait_seconds)
    if limit <= 0 or not items:
        return Picked(items[selected] if items else Choice("", "", True))
    deadline: float | None = clock() + limit
    note = ""
    saved = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd)
        modes = termios.tcgetattr(fd)
        modes[3] &= ~termios.ISIG  # Ctrl-C arrives as a byte whether or not this is our controlling tty
        termios.tcsetattr(fd, termios.TCSANOW, modes)
        _write(fd, b"\x1b[?25l")  # hide the cursor while the menu is up
        while True:
            left = None if deadline is None else max(0.0, deadline - clock())
            _draw(fd, items, selected, None if left is None else int(-(-left // 1)), note)
            if left == 0.0:
                return Picked(items[selected])
            ready, _, _ = select.select([fd], [], [], None if left is None else min(1.0, left))
            if not ready:
                continue
            typed = _read(fd)
            if not typed:  # the terminal hung up: boot what is highlighted
                return Picked(items[selected])
            deadline = None  # a key stops the countdown, as in GRUB and pygrub
            page = max(1, _size(fd)[1] - len(HEADER) - 4)
            for key in keys(typed):
                if key == INTERRUPT:
                    raise KeyboardInterrupt
                if key in ENTER:
                    return Picked(items[selected])
                if key == b"a" and args_of is not None:
                    edited, note = _edit_args(fd, items[selected], args_of)
                    if edited is not None:
                        return Picked(items[selected], edited)
                    _write(fd, b"\x1b[?25l")
                    break  # what was typed after "a" went to the editor
                if key in UP:
                    selected = max(0, selected - 1)
                elif key in DOWN:
                    selected = min(len(items) - 1, selected + 1)
                elif key in HOME:
                    selected = 0
                elif key in END:
                    selected = len(items) - 1
                elif key in PAGE_UP:
                    selected = max(0, selected - page)
                elif key in PAGE_DOWN:
                    selected = min(len(items) - 1, selected + page)
    finally:
        try:
            termios.tcsetattr(fd, termios.TCSADRAIN, saved)
        except (termios.error, OSError):  # the terminal is gone: nothing to give back
            pass
        _write(fd, b"\x1b[?25h\r\n")


_SEQUENCE = re.compile(rb"\x1b(?:\[[0-9;?]*[\x40-\x7e]|O[\x40-\x7e])|\x1b|[\x00-\x7f]|[\x80-\xff]+")


def keys(typed: bytes) -> list[bytes]:
    """The keys in what one read returned (a paste or fast typing gives several): ECMA-48
    control sequences (ESC [ params final, ESC O final) whole, other bytes one by one."""
    return _SEQUENCE.findall(typed)


def _edit_args(fd: int, item: Choice, args_of: Callable[[Choice], str]) -> tuple[str | None, str]:
    """The arguments typed for ``item`` (None: Esc, or nothing to edit) and a note for the
    menu when editing was not possible."""
    from ..errors import GuestbootError

    try:
        current = args_of(item)
    except GuestbootError as err:
        return None, f"cannot edit entry {item.path}: {shown(err)}"
    if shown(current) != current:  # the editor shows what it edits: control characters cannot be shown as they are
        return None, f"entry {item.path}: its arguments hold control characters; not editable here"
    chars = list(current)[: LIMITS.max_edited_args]
    at = len(chars)
    _write(fd, b"\x1b[?25h")
    while True:
        _draw_editor(fd, item, chars, at)
        typed = _read(fd)
        if not typed:
            return None, ""
        for key in keys(typed):
            if key == INTERRUPT:
                raise KeyboardInterrupt
            if key in ENTER:
                return "".join(chars), ""
            if key == ESCAPE:
                return None, ""
            if key in BACKSPACE:
                if at:
                    del chars[at - 1]
                    at -= 1
            elif key in DELETE:
                del chars[at:at + 1]
            elif key in LEFT:
                at = max(0, at - 1)
            elif key in RIGHT:
                at = min(len(chars), at + 1)
            elif key in HOME or key == b"\x01":
                at = 0
            elif key in END or key == b"\x05":
                at = len(chars)
            elif key == b"\x15":  # Ctrl-U: everything before the cursor
                del chars[:at]
                at = 0
            elif key == b"\x0b":  # Ctrl-K: everything from the cursor
                del chars[at:]
            elif not key.startswith(ESCAPE):
                for char in key.decode("utf-8", "replace"):
                    if char.isprintable() and char != "\ufffd" and len(chars) < LIMITS.max_edited_args:
                        chars.insert(at, char)
                        at += 1


def _draw_editor(fd: int, item: Choice, chars: list[str], at: int) -> None:
    columns, _lines = _size(fd)
    width = columns - 1
    start = max(0, at - width + 1)  # scrolled so that the cursor stays on the screen
    visible = "".join(chars[start:start + width])
    out = ["\x1b[H\x1b[2J", f"Kernel arguments of {item.path} {shown(item.title)}"[:width], "\r\n\r\n",
           visible, "\r\n\r\n", "Enter boots with these arguments; Esc goes back to the menu."[:width],
           f"\x1b[3;{at - start + 1}H"]
    _write(fd, "".join(out).encode("utf-8", "replace"))


def _size(fd: int) -> tuple[int, int]:
    try:
        size = os.get_terminal_size(fd)
        return max(size.columns, 20), max(size.lines, 8)
    except OSError:
        return 80, 24


def _draw(fd: int, items: list[Choice], selected: int, seconds: int | None, note: str = "") -> None:
    columns, lines = _size(fd)
    window = max(1, lines - len(HEADER) - 4)
    top = min(max(0, selected - window // 2), max(0, len(items) - window))
    out = ["\x1b[H\x1b[2J"]
    for index in range(top, min(len(items), top + window)):
        item = items[index]
        text = f" {item.path:<6} {shown(item.title)}"[: columns - 2].ljust(columns - 2)
        out.append(f"\x1b[7m{text}\x1b[0m\r\n" if index == selected else f"{text}\r\n")
    out.append("\r\n")
    out.extend(line[: columns - 1] + "\r\n" for line in HEADER)
    if note:
        out.append(note[: columns - 1] + "\r\n")
    if seconds is not None:
        out.append(f"Will boot selected entry in {seconds:2d} seconds"[: columns - 1])
    _write(fd, "".join(out).encode("utf-8", "replace"))


def _read(fd: int) -> bytes:
    """What was typed; b"" when the terminal hung up (a pty whose other side closed)."""
    try:
        return os.read(fd, 64)
    except OSError:
        return b""


def _write(fd: int, data: bytes) -> None:
    """Draw; a terminal that hung up takes nothing (the choice is then made without it)."""
    view = memoryview(data)
    try:
        while view:
            view = view[os.write(fd, view):]
    except OSError:
        pass
