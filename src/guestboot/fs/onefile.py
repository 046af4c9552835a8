"""A file system holding exactly one file at its root: pygrub's --isconfig, where the
"image" is a boot config file itself rather than a disk."""

from __future__ import annotations

from typing import Iterator

from ..errors import NotFound
from ..source import ByteSource
from .base import FileSystem, FileType, Node

_ROOT = 1
_FILE = 2


class OneFileSystem(FileSystem):
    kind = "file"

    def __init__(self, name: bytes, source: ByteSource):
        if not name or b"/" in name or name in (b".", b".."):
            raise NotFound(f"not a usable file name: {name!r}")
        self.name = name
        self.source = source
        self.warnings = []
        self._root = Node(_ROOT, FileType.DIR, 0, 0o040555)
        self._file = Node(_FILE, FileType.REG, source.size, 0o100444)

    def root(self) -> Node:
        return self._root

    def readdir(self, directory: Node) -> Iterator[tuple[bytes, Node]]:
        if directory.ino == _ROOT:
            yield self.name, self._file

    def readlink(self, node: Node) -> bytes:
        raise NotFound("no symlinks here")

    def open(self, node: Node) -> ByteSource:
        if node.ino != _FILE:
            raise NotFound("not a regular file")
        return self.source
