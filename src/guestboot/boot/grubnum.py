"""Numbers as GRUB reads them, once for GRUB 2 and GRUB legacy.

GRUB 2 (grub-core/kern/misc.c, 2.06): ``grub_strtoul(text, &end, 0)`` skips leading
blanks as ``grub_isspace`` knows them -- exactly space, tab, CR and LF (no form feed, no
vertical tab) --, takes ``0x`` as hex and a ``0`` followed by 0-7 as octal, otherwise
decimal; no sign; the number ends at the first character that is no digit of the base.
No digit at all is GRUB_ERR_BAD_NUMBER, a value past ``unsigned long`` is
GRUB_ERR_OUT_OF_RANGE. ``unsigned long`` has 32 bits on i386-pc (the GRUB a Xen HVM guest
runs) and 64 on x86_64 (grub-emu, x86_64-efi): callers say which.

GRUB legacy (stage2/char_io.c ``safe_parse_maxint``): decimal or ``0x`` hex, no blanks
skipped, at most MAXINT.
"""

from __future__ import annotations

from typing import NamedTuple

BLANKS = " \t\r\n"  # grub_isspace
ULONG_MAX_32 = (1 << 32) - 1  # unsigned long on i386-pc
ULONG_MAX_64 = (1 << 64) - 1  # unsigned long on x86_64 (and unsigned long long everywhere)
INT_MAX = (1 << 31) - 1
LEGACY_MAXINT = 0x7FFFFFFF  # MAXINT, stage2/shared.h

OK, BAD, OVERFLOW = "ok", "bad", "overflow"


class Parsed(NamedTuple):
    """What a strtoul call gives: ``status`` OK, BAD (no digit) or OVERFLOW; ``value``
    (the maximum on overflow); ``end`` the index after the last digit read."""

    status: str
    value: int
    end: int


def digit(ch: str) -> int:
    """Value of one character as a digit in bases up to 36 (36 when it is no digit)."""
    if "0" <= ch <= "9":
        return ord(ch) - ord("0")
    if "a" <= ch <= "z":
        return ord(ch) - ord("a") + 10
    if "A" <= ch <= "Z":
        return ord(ch) - ord("A") + 10
    return 36


def strtoul(text: str, start: int = 0, *, maximum: int = ULONG_MAX_32) -> Parsed:
    """GRUB 2's ``grub_strtoul(text + start, &end, 0)`` for an ``unsigned long`` whose
    largest value is ``maximum``. The digits read are bounded by the text itself, and the
    value stops growing past ULONG_MAX_64."""
    i, n = start, len(text)
    while i < n and text[i] in BLANKS:
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
        d = digit(text[i])
        if d >= base:
            break
        found = True
        value = value * base + d
        if value > ULONG_MAX_64:
            return Parsed(OVERFLOW, ULONG_MAX_64, i)
        i += 1
    if not found:
        return Parsed(BAD, 0, i)
    if value > maximum:
        return Parsed(OVERFLOW, maximum, i)
    return Parsed(OK, value, i)


def as_c_int(value: int) -> int:
    """``(int) value`` for a 32-bit unsigned long."""
    return value - (1 << 32) if value > INT_MAX else value


def skip_blanks(text: str, position: int) -> int:
    while position < len(text) and text[position] in BLANKS:
        position += 1
    return position


def legacy_number(text: str, start: int = 0) -> tuple[int, int] | None:
    """GRUB legacy's safe_parse_maxint: decimal or ``0x`` hex at ``start`` (no blanks
    skipped), up to MAXINT; ``(value, end)`` or None."""
    i = start
    base = 10
    if text[i : i + 2].lower() == "0x":
        base = 16
        i += 2
    value = 0
    found = False
    while i < len(text):
        d = digit(text[i])
        if d >= base:
            break
        found = True
        value = value * base + d
        if value > LEGACY_MAXINT:
            return None
        i += 1
    return (value, i) if found else None
