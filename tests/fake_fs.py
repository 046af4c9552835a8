"""A file system that lives outside the package, to prove the file-system registry:
registered by a test (one line in guestboot.fs.PROBES), touching no module of ours.

Its format (ours, for tests only): ``SUPER`` at byte 0 (magic, number of files, label),
then that many ``ENTRY`` records: each a file's path (relative to the root, "/"
separated, NUL padded), and where its bytes lie in the volume. Directories are the
paths' prefixes. ``pack(tree)`` writes one from a host directory, which is the expected
answer.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Iterator

from guestboot.errors import CorruptImage, NotFound
from guestboot.fs.base import FileSystem, FileType, Node
from guestboot.source import ByteSource, SliceSource

MAGIC = b"TINYFS01"
SUPER = struct.Struct("<8sI16s")  # magic, file count, label (NUL padded)
ENTRY = struct.Struct("<QQ112s")  # data offset, length, path
ALIGN = 4096
MAX_FILES = 4096


def pack(tree: Path, label: str = "tinyfs") -> bytes:
    """The volume holding every regular file under ``tree``."""
    files = sorted(p for p in tree.rglob("*") if p.is_file())
    table = SUPER.size + ENTRY.size * len(files)
    at = -(-table // ALIGN) * ALIGN
    records, data = [], bytearray()
    for path in files:
        body = path.read_bytes()
        records.append(ENTRY.pack(at + len(data), len(body), path.relative_to(tree).as_posix().encode()))
        data += body + bytes(-len(body) % ALIGN)
    head = SUPER.pack(MAGIC, len(files), label.encode()) + b"".join(records)
    return head.ljust(at, b"\0") + bytes(data)


def probe(source: ByteSource) -> "TinyFS | None":
    if source.size < SUPER.size or source.pread(0, len(MAGIC)) != MAGIC:
        return None
    return TinyFS(source)


class TinyFS(FileSystem):
    kind = "tinyfs"

    def __init__(self, source: ByteSource) -> None:
        self.source = source
        self.warnings = []
        _magic, count, label = SUPER.unpack(source.pread(0, SUPER.size))
        if count > MAX_FILES or SUPER.size + count * ENTRY.size > source.size:
            raise CorruptImage(f"tinyfs: {count} files do not fit", where=source.name, offset=8)
        self.label = label.rstrip(b"\0").decode()
        self.uuid = f"tinyfs-{count}"
        self._dirs: dict[str, dict[bytes, Node]] = {"": {}}
        table = source.pread(SUPER.size, count * ENTRY.size)
        for index in range(count):
            offset, length, raw = ENTRY.unpack_from(table, index * ENTRY.size)
            if offset + length > source.size:
                raise CorruptImage(f"tinyfs: file {index} lies past the end", where=source.name)
            parts = raw.rstrip(b"\0").split(b"/")
            parent = ""
            for depth, part in enumerate(parts):
                name = parent + "/" + part.decode() if parent else part.decode()
                if depth == len(parts) - 1:
                    self._dirs[parent][part] = Node(index + 2, FileType.REG, length, 0o100644, 0, (offset, length))
                elif name not in self._dirs:
                    self._dirs[name] = {}
                    self._dirs[parent][part] = Node(MAX_FILES + len(self._dirs), FileType.DIR, 0, 0o40755, 0, name)
                parent = name

    def root(self) -> Node:
        return Node(1, FileType.DIR, 0, 0o40755, 0, "")

    def readdir(self, directory: Node) -> Iterator[tuple[bytes, Node]]:
        return iter(list(self._dirs[directory.private].items()))

    def readlink(self, node: Node) -> bytes:
        raise NotFound("tinyfs has no symlinks")

    def open(self, node: Node) -> ByteSource:
        offset, length = node.private
        return SliceSource(self.source, offset, length, f"{self.source.name}:{node.ino}")

