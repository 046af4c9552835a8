"""The one small interface every read-only file-system driver implements.

Modelled on GRUB's grub-core/fs drivers (dir, open, read, label, uuid): a driver knows
how to find its root, look a name up in a directory, list a directory, read a symlink and
open a regular file as a byte source. Path walking, "..", and symlink resolution are not
the driver's job: they live once, in fs/path.py.
"""

from __future__ import annotations

import enum
from typing import Iterator

from ..source import ByteSource


class FileType(enum.Enum):
    REG = "file"
    DIR = "dir"
    LNK = "symlink"
    OTHER = "other"  # devices, fifos, sockets: listed, never opened


class Node:
    """One inode as the driver found it. ``private`` is the driver's own parsed state.

    Immutable. Two nodes are equal when ino, type, size, mode and mtime are; ``private``
    takes no part in equality, hashing or repr."""

    __slots__ = ("ino", "type", "size", "mode", "mtime", "private")

    ino: int
    type: FileType
    size: int
    mode: int
    mtime: int
    private: object

    def __init__(
        self, ino: int, type: FileType, size: int, mode: int = 0, mtime: int = 0, private: object = None
    ) -> None:
        init = object.__setattr__
        init(self, "ino", ino)
        init(self, "type", type)
        init(self, "size", size)
        init(self, "mode", mode)
        init(self, "mtime", mtime)
        init(self, "private", private)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field {name!r}: a Node is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r}: a Node is immutable")

    def __reduce__(self) -> tuple[type[Node], tuple[object, ...]]:  # copy and pickle
        return (self.__class__, (self.ino, self.type, self.size, self.mode, self.mtime, self.private))

    def _key(self) -> tuple[int, FileType, int, int, int]:
        return (self.ino, self.type, self.size, self.mode, self.mtime)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Node) and other.__class__ is self.__class__:
            return self._key() == other._key()
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (
            f"Node(ino={self.ino!r}, type={self.type!r}, size={self.size!r}, mode={self.mode!r},"
            f" mtime={self.mtime!r})"
        )


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

    def default_root_path(self) -> str | None:
        """Where the file system's default root lies, as a path from its top ("/@/.snapshots/1/snapshot":
        btrfs's default subvolume), or None when the default root is the top. Boot
        loaders that follow it (Fedora's and SUSE's GRUB with ``btrfs_relative_path``)
        resolve their paths from there."""
        return None
