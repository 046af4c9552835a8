"""A file system held in a dict (path → bytes): what the config targets put a fuzzed config
into, next to the few files it names, so the evaluators run through the same file-system
interface as on a real image."""

from __future__ import annotations

from typing import Iterator

from guestboot.errors import NotFound
from guestboot.fs.base import FileSystem, FileType, Node
from guestboot.source import ByteSource, BytesSource


class MemFileSystem(FileSystem):
    kind = "memfs"

    def __init__(self, files: dict[str, bytes], label: str = "fuzz"):
        self.source = BytesSource(b"", name="memfs")
        self.warnings = []
        self.label = label
        self.uuid = "0123-4567"
        self._nodes: list[tuple[Node, object]] = []
        self._root = self._dir()
        for path, data in files.items():
            parts = [p.encode() for p in path.strip("/").split("/")]
            if not all(parts) or b"." in parts or b".." in parts:
                continue
            here = self._root
            for part in parts[:-1]:
                entries = self._nodes[here.ino][1]
                if part not in entries:
                    entries[part] = self._dir()
                here = entries[part]
                if here.type is not FileType.DIR:
                    break  # a file already has this name: the later path is left out
            else:
                if parts[-1] not in self._nodes[here.ino][1]:
                    node = Node(len(self._nodes), FileType.REG, len(data), 0o100644)
                    self._nodes.append((node, data))
                    self._nodes[here.ino][1][parts[-1]] = node

    def _dir(self) -> Node:
        node = Node(len(self._nodes), FileType.DIR, 0, 0o040755)
        self._nodes.append((node, {}))
        return node

    def root(self) -> Node:
        return self._root

    def readdir(self, directory: Node) -> Iterator[tuple[bytes, Node]]:
        entries = self._nodes[directory.ino][1]
        if not isinstance(entries, dict):
            raise NotFound("not a directory")
        yield from sorted(entries.items())

    def readlink(self, node: Node) -> bytes:
        raise NotFound("no symlinks here")

    def open(self, node: Node) -> ByteSource:
        data = self._nodes[node.ino][1]
        if not isinstance(data, bytes):
            raise NotFound("not a regular file")
        return BytesSource(data, name="memfs")
