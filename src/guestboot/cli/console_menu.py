"""The interactive boot menu on the console, as pygrub shows it when a person may be there.

The bootable entries (submenus flattened to "Parent > Entry", as pygrub lists them) with
the default highlighted and a countdown of the config's own timeout (boot/timeout.py, cut
to LIMITS.max_menu_wait_seconds so that a guest cannot hold the host's toolstack). Any
key stops the countdown; Up/Down (or k/j, Ctrl-P/Ctrl-N), Home/End and Page Up/Down move;
Enter boots the highlighted entry; as in pygrub, ``a`` edits its kernel arguments first
(a line editor: Left/Right, Home/End, Backspace/Delete, Ctrl-U/Ctrl-K; Enter boots with
the line, Esc goes back), ``e`` edits the entry's commands (``linux PATH ARGS`` and
``initrd PATH…``, paths as GRUB names them: Up/Down pick a line, ``e`` or Enter edits it,
``d`` removes it, ``o``/``O`` open a new one after/before, ``b`` or Ctrl-X boots, ``c``
opens the command line, Esc goes back) and ``c`` is a command line where such commands
are typed one by one and ``boot`` boots them. What is booted after ``e`` or ``c`` is read
from the image by a sandboxed run like any entry (pipeline's host-given kernel). Ctrl-C
interrupts (exit 130).

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
          "Press enter to boot the selected OS, 'e' to edit the commands before booting,",
          "'a' to modify the kernel arguments before booting, or 'c' for a command line.")
ENTRY_HELP = ("Use the \u2191 and \u2193 keys to select which line is highlighted. Press 'b' to boot,",
              "'e' to edit the selected line, 'c' for a command line, 'o' to open a new line after",
              "('O' for before) the selected line, 'd' to remove it, or Esc to go back to the menu.")
KERNEL_COMMANDS = ("linux", "kernel", "linux16", "linuxefi")
INITRD_COMMANDS = ("initrd", "initrd16", "initrdefi")


class Edited(NamedTuple):
    """An entry edited (``e``) or typed (``c``) at the console: the kernel and initrds as
    GRUB names files ("(hd0,gpt2)/vmlinuz", or a path on the kernel's device) and the
    kernel arguments."""

    kernel: str
    initrds: tuple[str, ...]
    args: str


class Picked(NamedTuple):
    """What the person chose: an entry, the kernel arguments typed for it (None: the
    entry's own), or commands edited or typed to boot instead (None: the entry's own)."""

    choice: "Choice"
    args: str | None = None
    edited: Edited | None = None


class Answer(NamedTuple):
    """What ``ask`` returns: the entry path to boot (None: the default), the arguments
    typed for it (None: its own), or what to boot instead of any entry."""

    entry: str | None
    args: str | None = None
    edited: Edited | None = None


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


def ask(console: int, plan: Callable[[str | None], dict[str, Any]], *, editable: bool) -> Answer:
    """The whole interactive choice: ``plan(None)`` reads the menu (a sandboxed "plan"
    run), the person at ``console`` chooses (with ``a``, ``e`` and ``c`` when
    ``editable``: an entry's own arguments and files come from ``plan(path)``). The entry
    is None for the default, chosen or timed out: the real run then picks it exactly as it
    would have. ``console`` is closed."""
    try:
        planned = plan(None)
        items = choices(planned["rows"])
        if not items:
            return Answer(None)
        if editable:
            def planned_for(item: Choice) -> dict[str, Any]:
                return planned if item.default else plan(item.path)

            picked = choose(items, planned.get("menu_wait"), console, args_of=lambda item: planned_for(item)["args"],
                            lines_of=lambda item: entry_lines(planned_for(item)))
        else:
            picked = choose(items, planned.get("menu_wait"), console)
        if picked.edited is not None:
            return Answer(None, None, picked.edited)
        return Answer(None if picked.choice.default else picked.choice.path, picked.args)
    finally:
        os.close(console)


def entry_lines(planned: dict[str, Any]) -> list[str]:
    """An entry's commands as ``e`` shows them: ``linux PATH ARGS`` and ``initrd PATH…``
    (paths with their device, as GRUB names them). ValueError, saying why, for an entry
    whose files cannot be named that way (a multiboot kernel and its modules, a unified
    kernel image's sections, a path or arguments with control characters or spaces)."""
    if planned.get("modules"):
        raise ValueError("a multiboot kernel with modules")
    files = [planned["kernel"], *planned["initrds"]]
    if any("section" in ref for ref in files):
        raise ValueError("its kernel is in a unified kernel image")
    paths = [ref["grub"] for ref in files]
    if any(shown(text) != text or text.split() != [text] for text in paths) or shown(planned["args"]) != planned["args"]:
        raise ValueError("control characters or spaces in its lines")
    loader = planned.get("loader") if planned.get("loader") in KERNEL_COMMANDS else "linux"
    lines = [f"{loader} {paths[0]} {planned['args']}".rstrip()]
    if len(paths) > 1:
        lines.append("initrd " + " ".join(paths[1:]))
    return lines


def parse_entry(lines: list[str]) -> Edited:
    """What edited or typed commands boot: the last ``linux``/``kernel`` line's path and
    arguments, the last ``initrd`` line's paths. ValueError, for the person to read, when
    there is no kernel or a command is not one of these."""
    kernel, initrds, args = None, (), ""
    for line in lines:
        words = line.split()
        if not words:
            continue
        if words[0] in KERNEL_COMMANDS:
            if len(words) < 2:
                raise ValueError(f"'{words[0]}' needs the kernel's path")
            kernel = words[1]
            args = line.split(None, 2)[2].strip() if len(words) > 2 else ""
        elif words[0] in INITRD_COMMANDS:
            if len(words) < 2:
                raise ValueError(f"'{words[0]}' needs the initrd's path")
            initrds = tuple(words[1:])
        else:
            raise ValueError(f"unknown command '{words[0][:40]}' (linux, kernel, initrd and boot are understood)")
    if kernel is None:
        raise ValueError("no 'linux' (or 'kernel') line: nothing to boot")
    return Edited(kernel, initrds, args)


def choose(items: list[Choice], wait: int | None, fd: int, *, args_of: Callable[[Choice], str] | None = None,
           lines_of: Callable[[Choice], list[str]] | None = None, clock=time.monotonic) -> Picked:
    """Show ``items`` on the terminal ``fd`` and return the one to boot: the one Enter was
    pressed on, or the default when ``wait`` seconds pass with no key (None: the config
    waits for a key; cut to LIMITS.max_menu_wait_seconds like any longer wait).
    ``args_of`` gives an entry's kernel arguments for the ``a`` key, ``lines_of`` its
    commands for the ``e`` key, which with it also opens the ``c`` command line (None: no
    editing)."""
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
                if key in (b"e", b"c") and lines_of is not None:
                    if key == b"e":
                        entry, note = _edit_entry(fd, items[selected], lines_of)
                    else:
                        entry, note = _command_line(fd)
                    if entry is not None:
                        return Picked(items[selected], None, entry)
                    _write(fd, b"\x1b[?25l")
                    break  # what was typed after the key went to the editor
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
    heading = f"Kernel arguments of {item.path} {shown(item.title)}"
    return _edit_line(fd, current, lambda chars, at: _draw_editor(
        fd, heading, [], chars, at, "Enter boots with these arguments; Esc goes back to the menu.")), ""


def _edit_entry(fd: int, item: Choice, lines_of: Callable[[Choice], list[str]]) -> tuple[Edited | None, str]:
    """pygrub's ``e``: the entry's commands, edited line by line; what to boot (None: Esc,
    the terminal hung up, or nothing to edit) and a note for the menu."""
    from ..errors import GuestbootError

    try:
        lines = lines_of(item)
    except GuestbootError as err:
        return None, f"cannot edit entry {item.path}: {shown(err)}"
    except ValueError as err:
        return None, f"entry {item.path}: not editable here ({err})"
    current = 0
    note = ""
    while True:
        _draw_entry(fd, item, lines, current, note)
        typed = _read(fd)
        if not typed:
            return None, ""
        note = ""
        for key in keys(typed):
            if key == INTERRUPT:
                raise KeyboardInterrupt
            if key in (ESCAPE, b"q"):
                return None, ""
            if key in (b"b", b"\x18"):  # b as in pygrub, Ctrl-X as in GRUB
                try:
                    return parse_entry(lines), ""
                except ValueError as err:
                    note = str(err)
                    break
            if key == b"e" or key in ENTER:
                if lines:
                    heading = f"Line {current + 1} of entry {item.path} {shown(item.title)}"
                    edited = _edit_line(fd, lines[current], lambda chars, at: _draw_editor(
                        fd, heading, [], chars, at, "Enter keeps the line; Esc leaves it as it was."))
                    if edited is not None:
                        lines[current] = edited
                    _write(fd, b"\x1b[?25l")
                break  # what was typed after the key went to the line editor
            if key == b"c":
                entry, note = _command_line(fd)
                if entry is not None:
                    return entry, ""
                _write(fd, b"\x1b[?25l")
                break
            if key == b"d" and lines:
                del lines[current]
            elif key in (b"o", b"O"):
                if len(lines) >= LIMITS.max_edited_lines:
                    note = f"an entry edited here has at most {LIMITS.max_edited_lines} lines"
                else:
                    current = current + 1 if key == b"o" and lines else current
                    lines.insert(current, "")
            elif key in UP:
                current -= 1
            elif key in DOWN:
                current += 1
            current = max(0, min(current, len(lines) - 1))


def _command_line(fd: int) -> tuple[Edited | None, str]:
    """pygrub's ``c``: ``linux``/``kernel`` and ``initrd`` commands typed one by one;
    ``boot`` boots them, Esc (or ``quit``) goes back. What to boot (None: back) and a note
    for the menu."""
    typed: list[str] = []
    note = ""
    heading = "GRUB command line: 'linux PATH ARGS', 'initrd PATH...', then 'boot'."
    while True:
        above = [f"grub> {line}" for line in typed] + ([note] if note else [])
        line = _edit_line(fd, "", lambda chars, at: _draw_editor(
            fd, heading, above, chars, at, "Esc goes back to the menu.", prompt="grub> "))
        if line is None:
            return None, ""
        note = ""
        words = line.split()
        if not words:
            continue
        if words == ["boot"]:
            try:
                return parse_entry(typed), ""
            except ValueError as err:
                note = str(err)
        elif words[0] in ("quit", "return"):
            return None, ""
        elif words[0] not in KERNEL_COMMANDS + INITRD_COMMANDS:
            note = f"unknown command '{shown(words[0][:40])}' (linux, kernel, initrd and boot are understood)"
        elif len(typed) >= LIMITS.max_edited_lines:
            note = f"at most {LIMITS.max_edited_lines} commands"
        else:
            typed.append(line)


def _edit_line(fd: int, text: str, draw: Callable[[list[str], int], None]) -> str | None:
    """Edit one line on the terminal, ``draw(chars, cursor)`` showing it: Left/Right,
    Home/End (Ctrl-A/Ctrl-E), Backspace/Delete, Ctrl-U/Ctrl-K; printable characters are
    inserted, at most LIMITS.max_edited_args. The line on Enter; None on Esc or when the
    terminal hung up."""
    chars = list(text)[: LIMITS.max_edited_args]
    at = len(chars)
    _write(fd, b"\x1b[?25h")
    while True:
        draw(chars, at)
        typed = _read(fd)
        if not typed:
            return None
        for key in keys(typed):
            if key == INTERRUPT:
                raise KeyboardInterrupt
            if key in ENTER:
                return "".join(chars)
            if key == ESCAPE:
                return None
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


def _draw_editor(fd: int, heading: str, above: list[str], chars: list[str], at: int, footer: str,
                 prompt: str = "") -> None:
    """A line editor's screen: ``heading``, the lines ``above`` (the ones shown last when
    there are more than fit), ``prompt`` and the line, scrolled so that the cursor stays on
    the screen, then ``footer``."""
    columns, rows = _size(fd)
    width = max(1, columns - 1 - len(prompt))
    start = max(0, at - width + 1)
    visible = "".join(chars[start:start + width])
    above = above[-max(0, rows - 6):]
    row = 3 + len(above)
    out = ["\x1b[H\x1b[2J", heading[: columns - 1], "\r\n\r\n"]
    out.extend(shown(line)[: columns - 1] + "\r\n" for line in above)
    out += [prompt, visible, "\r\n\r\n", footer[: columns - 1], f"\x1b[{row};{len(prompt) + at - start + 1}H"]
    _write(fd, "".join(out).encode("utf-8", "replace"))


def _draw_entry(fd: int, item: Choice, lines: list[str], current: int, note: str) -> None:
    """``e``'s screen: the entry's commands, the selected one highlighted, and the keys."""
    columns, rows = _size(fd)
    window = max(1, rows - len(ENTRY_HELP) - 5)
    top = min(max(0, current - window // 2), max(0, len(lines) - window))
    out = ["\x1b[H\x1b[2J", f"Commands of entry {item.path} {shown(item.title)}"[: columns - 1], "\r\n\r\n"]
    for index in range(top, min(len(lines), top + window)):
        text = f" {shown(lines[index])}"[: columns - 2].ljust(columns - 2)
        out.append(f"\x1b[7m{text}\x1b[0m\r\n" if index == current else f"{text}\r\n")
    out.append("\r\n")
    out.extend(line[: columns - 1] + "\r\n" for line in ENTRY_HELP)
    if note:
        out.append(shown(note)[: columns - 1] + "\r\n")
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
