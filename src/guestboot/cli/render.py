"""The menu as text, one line per entry: the same view for `guestboot list` and for
guestboot-pygrub's plain-text menu."""

from __future__ import annotations

from ..boot.model import Menu


def menu_lines(menu: Menu) -> list[str]:
    """``*`` marks the path GRUB boots; the index path ("1>1") is what --entry takes;
    submenus end in ``>``; ids are shown in brackets."""
    from ..select import rows

    lines = []
    for row in rows(menu):
        mark = "*" if row.is_default else " "
        label = ">".join(str(n) for n in row.path)
        suffix = "  >" if row.is_submenu else ""
        ident = f"  [{row.id}]" if row.id else ""
        lines.append(f"{mark} {label:<6} {'  ' * row.depth}{row.title}{suffix}{ident}")
    return lines
