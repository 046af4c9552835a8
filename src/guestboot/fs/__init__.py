"""File-system drivers. A format is added by one module and one line in PROBES.

Each probe module exposes ``probe(source) -> FileSystem | None``: None when the magic does
not match; an exception from errors.py when it matches but is broken or unsupported.
Modules are imported only when probed (keeps start-up lean).
"""

from __future__ import annotations

import importlib

from ..source import ByteSource
from .base import FileSystem, FileType, Node

# (name, module) in probe order.
PROBES: tuple[tuple[str, str], ...] = (
    ("ext", "guestboot.fs.ext"),
    ("xfs", "guestboot.fs.xfs"),
    ("btrfs", "guestboot.fs.btrfs"),
    ("squashfs", "guestboot.fs.squashfs"),
    ("iso9660", "guestboot.fs.iso9660"),
    ("exfat", "guestboot.fs.exfat"),
    # FAT has no magic number: it is recognised by a plausible BPB, so it goes after
    # the drivers that check one
    ("fat", "guestboot.fs.fat"),
)


def probe(source: ByteSource) -> FileSystem | None:
    """The first driver that recognises ``source``, or None."""
    for _name, module in PROBES:
        fs = importlib.import_module(module).probe(source)
        if fs is not None:
            return fs
    return None


__all__ = ["FileSystem", "FileType", "Node", "probe", "PROBES"]
