"""The menu as text, one line per entry: the same view for `guestboot list` and for
guestboot-pygrub's plain-text menu. Rows are pipeline.run's plain data."""

from __future__ import annotations

from typing import Any, Iterable


def menu_lines(rows: Iterable[dict[str, Any]]) -> list[str]:
    """``*`` marks the path GRUB boots; the index path ("1>1") is what --entry takes;
    submenus end in ``>``; ids are shown in brackets."""
    lines = []
    for row in rows:
        mark = "*" if row["default"] else " "
        suffix = "  >" if row["submenu"] else ""
        ident = f"  [{row['id']}]" if row["id"] else ""
        lines.append(f"{mark} {row['path']:<6} {'  ' * row['depth']}{row['title']}{suffix}{ident}")
    return lines
