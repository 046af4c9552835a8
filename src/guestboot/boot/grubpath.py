"""GRUB's file names, once for GRUB 2 and GRUB legacy: ``(device)/path`` or a path on
the current device (GRUB 2's ``$root``, legacy's ``root`` command), and GRUB 2's
normalising of a path (grub-core/kern/fs.c and the file systems' path walk: empty and
``.`` components dropped, ``..`` goes up and stops at the root)."""

from __future__ import annotations


class MissingParen(ValueError):
    """A file name that opens ``(`` for a device and never closes it."""


def split_device(text: str) -> tuple[str | None, str]:
    """(the device written between the parentheses, or None when the name has none; the
    path after it). MissingParen when ``)`` is missing."""
    if not text.startswith("("):
        return None, text
    close = text.find(")")
    if close < 0:
        raise MissingParen(f"missing `)' in `{text}'")
    return text[1:close], text[close + 1 :]


def split_device_leniently(text: str) -> tuple[str | None, str]:
    """As :func:`split_device`, but an unclosed ``(`` takes the whole rest as device
    (GRUB's ``test -e`` does that)."""
    try:
        return split_device(text)
    except MissingParen:
        return text[1:], ""


def normalise(path: str) -> str:
    """The absolute path GRUB walks for ``path`` ("/a/./b/../c" -> "/a/c")."""
    parts: list[str] = []
    for comp in path.split("/"):
        if comp in ("", "."):
            continue
        if comp == "..":
            if parts:
                parts.pop()
            continue
        parts.append(comp)
    return "/" + "/".join(parts)
