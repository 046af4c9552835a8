"""FatFileSystem: one FAT12/16/32 volume behind the FileSystem interface.

Directories are read cluster by cluster up to their end marker; files are mapped lazily
from their cluster chains (fs/mapped.py) in sectors, so extraction copies straight from
the image. A node's ``ino`` is the byte offset of its short entry (the root's is 0).
"""

from __future__ import annotations

from typing import Iterator

from ...errors import NotFound
from ...source import ByteSource, BytesSource
from ..base import FileSystem, FileType, Node
from ..budget import EntryBudget, shared_total
from ..cache import LRU
from ..mapped import MappedFile
from . import dirent
from .bootsector import Geometry, volume_uuid
from .layout import ATTR_ARCHIVE, ATTR_DIRECTORY, ATTR_READ_ONLY, ATTR_VOLUME_ID, FAT32
from .table import Table

ROOT_INO = 0
_DIR_CACHE = 16
_CACHED_ENTRIES = 4096  # directories with more entries are scanned again, not kept


class FatFileSystem(FileSystem):
    def __init__(self, source: ByteSource, geometry: Geometry):
        self.source = source
        self.g = geometry
        self.kind = "vfat"
        self.table = Table(source, geometry)
        self.uuid = volume_uuid(geometry.volume_id)
        self.warnings = list(geometry.warnings)
        self._scanned = shared_total()  # the image's: partitions may alias
        self._listings: LRU[int, list[dirent.Entry]] = LRU(_DIR_CACHE)
        self._root = Node(ROOT_INO, FileType.DIR, 0, 0o040755, 0, private=geometry.root_cluster)
        self.label = self._read_label()

    # --- directories --------------------------------------------------------------------------

    def _regions(self, first: int, where: str, budget: EntryBudget) -> Iterator[tuple[bytes, int]]:
        """A directory's bytes as (data, volume offset) regions: the fixed FAT12/16 root
        region for cluster 0, else one region per cluster of the chain."""
        g = self.g
        if first == 0:  # the root of FAT12/16 (FAT32's root is a chain like any directory)
            step = max(g.sector_size, 4096)
            for start in range(0, g.root_bytes, step):
                size = min(step, g.root_bytes - start)
                budget.scan(size)
                yield self.source.pread(g.root_offset + start, size), g.root_offset + start
            return
        for cluster, count in self.table.runs(first, where):
            for index in range(count):
                budget.scan(g.cluster_size)
                offset = g.cluster_offset(cluster + index)
                yield self.source.pread(offset, g.cluster_size), offset

    def _entries(self, directory: Node) -> list[dirent.Entry]:
        if directory.type is not FileType.DIR:
            raise NotFound(f"entry at {directory.ino:#x} is not a directory", where=self.source.name)
        first: int = directory.private
        cached = self._listings.get(first)
        if cached is not None:
            return cached
        where = "root directory" if directory.ino == ROOT_INO else f"directory at {directory.ino:#x}"
        if directory.ino != ROOT_INO:  # cluster 0 names the root only in a ".." entry
            self.table.check_start(first, where, directory.ino)
        budget = EntryBudget(f"{self.source.name}:{where}", self._scanned)
        found = []
        for entry in dirent.entries(self._regions(first, where, budget), self.g.fat_type is FAT32):
            budget.entry()
            found.append(entry)
        if len(found) <= _CACHED_ENTRIES:
            self._listings.put(first, found)
        return found

    def _read_label(self) -> str | None:
        """The root directory's volume-label entry, as GRUB reads it (BS_VolLab is not)."""
        for entry in self._entries(self._root):
            if entry.entry.attr & ~ATTR_ARCHIVE == ATTR_VOLUME_ID:
                return dirent.label_name(entry.entry.name)
        return None

    def _node(self, entry: dirent.Entry) -> Node:
        attr = entry.entry.attr
        if attr & ATTR_DIRECTORY:
            return Node(entry.offset, FileType.DIR, 0, 0o040755, entry.mtime, private=entry.cluster)
        mode = 0o100444 if attr & ATTR_READ_ONLY else 0o100644
        return Node(entry.offset, FileType.REG, entry.entry.size, mode, entry.mtime, private=entry.cluster)

    def _visible(self, directory: Node) -> Iterator[dirent.Entry]:
        """Files and directories: not the label, ".", "..", nor a short name that no path
        can name (empty, or holding "/" or NUL: bytes only a damaged entry has)."""
        for entry in self._entries(directory):
            name = entry.name
            if entry.entry.attr & ATTR_VOLUME_ID or name in (b"", b".", b"..") or b"/" in name or b"\0" in name:
                continue
            yield entry

    def root(self) -> Node:
        return self._root

    def readdir(self, directory: Node) -> Iterator[tuple[bytes, Node]]:
        for entry in self._visible(directory):
            yield entry.name, self._node(entry)

    def lookup(self, directory: Node, name: bytes) -> Node | None:
        """Case-insensitive for ASCII letters, as GRUB's FAT driver and UEFI firmware are."""
        if not name or b"/" in name:
            return None
        wanted = name.lower()
        for entry in self._visible(directory):
            if entry.name.lower() == wanted:
                return self._node(entry)
        return None

    # --- files --------------------------------------------------------------------------------

    def readlink(self, node: Node) -> bytes:
        raise NotFound("FAT has no symlinks", where=self.source.name)

    def open(self, node: Node) -> ByteSource:
        if node.type is not FileType.REG:
            raise NotFound(f"entry at {node.ino:#x} is not a regular file", where=self.source.name)
        name = f"{self.source.name}:file at {node.ino:#x}"
        first: int = node.private
        if node.size == 0:
            return BytesSource(b"", name=name)
        self.table.check_start(first, f"file at {node.ino:#x}", node.ino)
        g = self.g
        per_cluster = g.cluster_size // g.sector_size
        data_sector = g.data_offset // g.sector_size
        needed = -(-node.size // g.cluster_size)
        where = f"file at {node.ino:#x}"

        def mapper() -> Iterator[tuple[int, int, int | None]]:
            logical = 0
            for cluster, count in self.table.runs(first, where, needed):
                yield logical, count * per_cluster, data_sector + (cluster - 2) * per_cluster
                logical += count * per_cluster

        return MappedFile(self.source, node.size, g.sector_size, mapper(), name)
