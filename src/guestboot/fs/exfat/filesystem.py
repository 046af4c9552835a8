"""ExfatFileSystem: one exFAT volume behind the FileSystem interface.

Directories and files are reached through their stream extensions: a cluster chain in
the FAT, or, with the NoFatChain flag, a contiguous run whose FAT entries mean nothing.
Files are mapped lazily in bytes (fs/mapped.py): the bytes up to ValidDataLength come
from the clusters, the rest of DataLength reads as zeros. A node's ``ino`` is the byte
offset of its File entry (the root's is 0).
"""

from __future__ import annotations

from typing import Iterator

from ...errors import CorruptImage, NotFound
from ...source import ByteSource, BytesSource
from ..base import FileSystem, FileType, Node
from ..budget import EntryBudget, shared_total
from ..cache import LRU
from ..fat.dirent import fat_time
from ..fat.table import Table
from ..mapped import MappedFile
from . import dirent
from .bootsector import Geometry
from .layout import ATTR_DIRECTORY, ATTR_READ_ONLY, FLAG_ALLOCATION_POSSIBLE, FLAG_NO_FAT_CHAIN, StreamEntry

ROOT_INO = 0
_DIR_CACHE = 16
_CACHED_ENTRIES = 4096


class ExfatFileSystem(FileSystem):
    def __init__(self, source: ByteSource, geometry: Geometry):
        self.source = source
        self.g = geometry
        self.kind = "exfat"
        self.table = Table(source, geometry)
        self.uuid = f"{geometry.volume_id >> 16:04X}-{geometry.volume_id & 0xFFFF:04X}"  # as GRUB prints it
        self.warnings = list(geometry.warnings)
        self._scanned = shared_total()  # the image's: partitions may alias
        self._listings: LRU[int, list[dirent.Entry]] = LRU(_DIR_CACHE)
        self._root = Node(ROOT_INO, FileType.DIR, 0, 0o040755, 0, private=None)
        self.label = None
        self._entries(self._root)  # reads the label too

    # --- cluster runs ---------------------------------------------------------------------------

    def _clusters(self, stream: StreamEntry, what: str, offset: int) -> Iterator[tuple[int, int]]:
        """(first cluster, count) runs holding a stream's DataLength bytes."""
        g = self.g
        needed = -(-stream.data_length // g.cluster_size)
        if needed == 0:
            return
        if not stream.flags & FLAG_ALLOCATION_POSSIBLE:
            raise CorruptImage(f"{what}: {stream.data_length} bytes but no allocation", where=self.source.name,
                               offset=offset)
        self.table.check_start(stream.first_cluster, what, offset)
        if stream.flags & FLAG_NO_FAT_CHAIN:
            if stream.first_cluster + needed > g.clusters + 2:
                raise CorruptImage(f"{what}: {needed} contiguous clusters from {stream.first_cluster} run past the"
                                   f" cluster heap", where=self.source.name, offset=offset)
            yield stream.first_cluster, needed
            return
        yield from self.table.runs(stream.first_cluster, what, needed)

    # --- directories ------------------------------------------------------------------------------

    def _regions(self, directory: Node, what: str, budget: EntryBudget) -> Iterator[tuple[bytes, int]]:
        g = self.g
        if directory.ino == ROOT_INO:
            runs = self.table.runs(g.root_cluster, what)
        else:
            runs = self._clusters(directory.private.stream, what, directory.ino)
        for cluster, count in runs:
            for index in range(count):
                budget.scan(g.cluster_size)
                offset = g.cluster_offset(cluster + index)
                yield self.source.pread(offset, g.cluster_size), offset

    def _entries(self, directory: Node) -> list[dirent.Entry]:
        if directory.type is not FileType.DIR:
            raise NotFound(f"entry at {directory.ino:#x} is not a directory", where=self.source.name)
        cached = self._listings.get(directory.ino)
        if cached is not None:
            return cached
        what = "root directory" if directory.ino == ROOT_INO else f"directory at {directory.ino:#x}"
        budget = EntryBudget(f"{self.source.name}:{what}", self._scanned)
        found = []
        for item in dirent.entries(self._regions(directory, what, budget), f"{self.source.name}:{what}"):
            budget.entry()
            if isinstance(item, dirent.Label):
                if directory.ino == ROOT_INO and self.label is None:
                    self.label = item.text
                continue
            found.append(item)
        if len(found) <= _CACHED_ENTRIES:
            self._listings.put(directory.ino, found)
        return found

    def _node(self, entry: dirent.Entry) -> Node:
        attributes = entry.file.attributes
        mtime = fat_time(entry.file.modified >> 16, entry.file.modified & 0xFFFF)
        if entry.stream.valid_length > entry.stream.data_length:
            raise CorruptImage(f"file at {entry.offset:#x}: valid length {entry.stream.valid_length} beyond its"
                               f" {entry.stream.data_length} bytes", where=self.source.name, offset=entry.offset)
        if attributes & ATTR_DIRECTORY:
            return Node(entry.offset, FileType.DIR, 0, 0o040755, mtime, private=entry)
        mode = 0o100444 if attributes & ATTR_READ_ONLY else 0o100644
        return Node(entry.offset, FileType.REG, entry.stream.data_length, mode, mtime, private=entry)

    def root(self) -> Node:
        return self._root

    def readdir(self, directory: Node) -> Iterator[tuple[bytes, Node]]:
        for entry in self._entries(directory):
            yield entry.name, self._node(entry)

    def lookup(self, directory: Node, name: bytes) -> Node | None:
        """Case-insensitive for ASCII letters (the volume's up-case table is not read)."""
        if not name or b"/" in name:
            return None
        wanted = name.lower()
        for entry in self._entries(directory):
            if entry.name.lower() == wanted:
                return self._node(entry)
        return None

    # --- files ------------------------------------------------------------------------------------

    def readlink(self, node: Node) -> bytes:
        raise NotFound("exFAT has no symlinks", where=self.source.name)

    def open(self, node: Node) -> ByteSource:
        if node.type is not FileType.REG:
            raise NotFound(f"entry at {node.ino:#x} is not a regular file", where=self.source.name)
        entry: dirent.Entry = node.private
        name = f"{self.source.name}:file at {node.ino:#x}"
        if node.size == 0:
            return BytesSource(b"", name=name)
        g = self.g
        valid = entry.stream.valid_length
        runs = self._clusters(entry.stream, f"file at {node.ino:#x}", node.ino)

        def mapper() -> Iterator[tuple[int, int, int | None]]:
            logical = 0
            for cluster, count in runs:
                if logical >= valid:
                    return  # the rest reads as zeros
                length = min(count * g.cluster_size, valid - logical)
                yield logical, length, g.cluster_offset(cluster)
                logical += length

        return MappedFile(self.source, node.size, 1, mapper(), name)
