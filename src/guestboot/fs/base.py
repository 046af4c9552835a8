"""The one small interface every read-only file-system driver implements.

Modelled on GRUB's grub-core/fs drivers (dir, open, read, label, uuid): a driver knows
how to find its root, look a name up in a directory, list a directory, read a symlink and
open a regular file as a byte source. Path walking, "..", and symlink resolution are not
the driver's job: they live once, in fs/path.py.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Iterator

from ..source import ByteSource


class FileType(enum.Enum):
    REG = "file"
    DIR = "dir"
    LNK = "symlink"
    OTHER = "other"  # devices, fifos, sockets: listed, never opened


@dataclass(frozen=True, slots=True)
class Node:
    """One inode as the driver found it. ``private`` is the driver's own parsed state."""

    ino: int
    type: FileType
    size: int
    mode: int = 0
    mtime: int = 0
    private: object = field(default=None, compare=False, repr=False)


class FileSystem:
    """Base class of drivers. ``kind`` is e.g. "ext4"; ``uuid`` is formatted the way GRUB's
    ``search --fs-uuid`` and ``probe -u`` print it; ``label`` is the volume label or None."""

    kind: str = "?"
    uuid: str | None = None
    label: str | None = None
    source: ByteSource
    warnings: list[str]  # e.g. "needs journal recovery: reading the on-disk state"

    def root(self) -> Node:
        raise NotImplementedError  # abstract

    def lookup(self, directory: Node, name: bytes) -> Node | None:
        """The entry ``name`` of ``directory`` (no "/" in name), or None when absent."""
        for entry_name, node in self.readdir(directory):
            if entry_name == name:
                return node
        return None

    def readdir(self, directory: Node) -> Iterator[tuple[bytes, Node]]:
        """Entries of a directory without "." and "..", bounded by LIMITS.max_dir_entries."""
        raise NotImplementedError  # abstract

    def readlink(self, node: Node) -> bytes:
        raise NotImplementedError  # abstract

    def open(self, node: Node) -> ByteSource:
        """A regular file's contents; its ``runs`` map into the image where possible."""
        raise NotImplementedError  # abstract
