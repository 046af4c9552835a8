"""Guest text as a person sees it, and the menu as text.

``shown`` is the one function every human-readable output passes guest text through
(menus, listings, warnings, errors, the entry chosen): one line, every character that a
terminal would act on or that changes how a line reads escaped visibly. Machine formats
(JSON, sxp, simple, simple0) do not use it: they carry exact bytes or refuse.

``menu_lines`` is the same view for ``guestboot list`` and for guestboot-pygrub's plain
text menu. Rows are pipeline.run's plain data.
"""

from __future__ import annotations

import re
from typing import Any, Iterable

# C0 controls (newline, ESC, BEL …), DEL, C1 controls (0x80-0x9f: CSI is 0x9b),
# the Unicode line and paragraph separators (U+2028/2029), the bidirectional embeddings,
# overrides and isolates (U+202A-202E, U+2066-2069) and marks (U+200E/200F, U+061C) that
# reorder what a line shows (CVE-2021-42574, "Trojan Source"), and lone surrogates: a
# non-UTF-8 byte decoded with surrogateescape (U+DC80-DCFF) is shown as the byte it was.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ud800-\udfff]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # a byte surrogateescape kept
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def shown(text: object) -> str:
    """``text`` as one line that is safe to print to a terminal: controls, line
    separators and bidi overrides escaped (``\\n``, ``\\x1b``, ``\\u202e``)."""
    return _UNSAFE.sub(_escape, str(text))


def menu_lines(rows: Iterable[dict[str, Any]]) -> list[str]:
    """``*`` marks the path GRUB boots; the index path ("1>1") is what --entry takes;
    submenus end in ``>``; ids are shown in brackets."""
    lines = []
    for row in rows:
        mark = "*" if row["default"] else " "
        suffix = "  >" if row["submenu"] else ""
        ident = f"  [{shown(row['id'])}]" if row["id"] else ""
        lines.append(f"{mark} {row['path']:<6} {'  ' * row['depth']}{shown(row['title'])}{suffix}{ident}")
    return lines
