"""XfsFileSystem: one (read-only) XFS volume behind the FileSystem interface.

Inodes are found from their numbers alone (AG, block in the AG, index in the block), so
no AG header or inode B+tree is read. Inodes, directory blocks and their parsed names are
kept in small bounded caches. Sections of "XFS Algorithms & Data Structures": "On-disk
Inode", "Data Extents", "Directories", "Symbolic Links".
"""

from __future__ import annotations

from typing import Iterator

from ... import crc32c
from ...errors import CorruptImage, LimitExceeded, NotFound, Unsupported
from ...limits import LIMITS
from ...source import ByteSource, BytesSource
from ..base import FileSystem, FileType, Node
from ..budget import EntryBudget, shared_total
from ..cache import LRU
from ..mapped import MappedFile
from . import directory, dirindex
from .bmap import extents
from .layout import (
    BIGTIME_EPOCH_OFFSET,
    CRC_LE,
    DIFLAG2_BIGTIME,
    DIFLAG2_NREXT64,
    DIFLAG_REALTIME,
    DIR2_LEAF_OFFSET,
    DIR3_BLK_HDR,
    DIR3_CRC_OFFSET,
    FMT_BTREE,
    FMT_EXTENTS,
    FMT_LOCAL,
    FORMAT_NAMES,
    INODE_BIG_NEXTENTS,
    INODE_BIG_NEXTENTS_OFFSET,
    INODE_CORE,
    INODE_CRC_OFFSET,
    INODE_MAGIC,
    INODE_V2_SIZE,
    INODE_V3,
    INODE_V3_OFFSET,
    INODE_V3_SIZE,
    S_IFDIR,
    S_IFLNK,
    S_IFMT,
    S_IFREG,
    SYMLINK_CRC_OFFSET,
    SYMLINK_HEADER,
    SYMLINK_MAGIC,
    SYMLINK_MAXLEN,
    Inode,
)
from .superblock import Geometry

_INODE_CACHE = 2048
_BLOCK_CACHE = 64
_DIR_CACHE = 32
_TYPES = {S_IFREG: FileType.REG, S_IFDIR: FileType.DIR, S_IFLNK: FileType.LNK}


class XfsFileSystem(FileSystem):
    kind = "xfs"

    def __init__(self, source: ByteSource, geometry: Geometry, uuid: str, label: str | None, warnings: list[str]):
        self.source = source
        self.g = geometry
        self.uuid = uuid
        self.label = label
        self.warnings = warnings
        self.block_size = geometry.block_size
        self._inodes: LRU[int, Inode] = LRU(_INODE_CACHE)
        # held memory bounded by weight: a directory map by the extents its inode declares,
        # parsed blocks (names, index entries) by the size of the block they came from
        # (the extent count is checked against what the map yields: see bmap.extents)
        self._dirs: LRU[tuple[int, str], tuple[MappedFile, int]] = LRU(
            2 * _DIR_CACHE, weigh=lambda item: max(1, item[1]), max_weight=LIMITS.max_cached_extents)
        block = geometry.dir_block_size
        self._dir_names: LRU[int, dict[bytes, int]] = LRU(  # by byte offset of the block
            _BLOCK_CACHE, weigh=lambda _names: block, max_weight=LIMITS.max_dir_cache_bytes)
        self._scanned = shared_total()  # the image's: partitions may alias
        self.index_blocks: LRU[int, object] = LRU(  # parsed hash-index blocks, by byte offset
            _BLOCK_CACHE, weigh=lambda _block: block, max_weight=LIMITS.max_dir_cache_bytes)

    # --- checksums --------------------------------------------------------------------------

    def verify_crc(self, raw: bytes, crc_offset: int, what: str, offset: int) -> None:
        """CRC-32C of a v5 metadata block, its own CRC field taken as zero."""
        expected = crc32c.crc32c(b"".join((raw[:crc_offset], bytes(4), raw[crc_offset + 4 :])))
        if CRC_LE.unpack_from(raw, crc_offset)[0] != expected:
            raise CorruptImage(f"{what}: checksum mismatch", where=self.source.name, offset=offset + crc_offset)

    # --- inodes -----------------------------------------------------------------------------

    def inode(self, ino: int) -> Inode:
        cached = self._inodes.get(ino)
        if cached is not None:
            return cached
        g = self.g
        offset = g.inode_offset(ino)
        if offset is None:
            raise CorruptImage(f"inode number {ino} is outside the volume", where=self.source.name)
        raw = self.source.pread(offset, g.inode_size)
        inode = self._parse_inode(ino, offset, raw)
        self._inodes.put(ino, inode)
        return inode

    def _parse_inode(self, ino: int, offset: int, raw: bytes) -> Inode:
        g = self.g
        (magic, mode, version, fmt, _onlink, _uid, _gid, nlink, _plo, _phi, _pad, _asec, _ansec, msec, mnsec, _csec,
         _cnsec, size, _nblocks, _extsize, nextents, _anext, forkoff, _aformat, _dmev, _dmstate, flags,
         _gen) = INODE_CORE.unpack_from(raw)
        what = f"inode {ino}"
        if magic != INODE_MAGIC:
            raise CorruptImage(f"{what}: bad magic {magic:#x}", where=self.source.name, offset=offset)
        flags2 = 0
        if g.crc:
            if version != 3:
                raise CorruptImage(f"{what}: version {version} in a v5 file system", where=self.source.name,
                                   offset=offset + 4)
            self.verify_crc(raw, INODE_CRC_OFFSET, what, offset)
            (_next, _crc, _changes, _lsn, flags2, _cow, _pad2, _crsec, _crnsec, own_ino,
             uuid) = INODE_V3.unpack_from(raw, INODE_V3_OFFSET)
            if own_ino != ino or uuid != g.meta_uuid:
                raise CorruptImage(f"{what}: belongs elsewhere (number {own_ino} or UUID differ)",
                                   where=self.source.name, offset=offset)
            fork_start = INODE_V3_SIZE
        else:
            if version not in (1, 2):
                raise CorruptImage(f"{what}: version {version} in a v4 file system", where=self.source.name,
                                   offset=offset + 4)
            fork_start = INODE_V2_SIZE
            if version == 1:
                nlink = _onlink
        literal = g.inode_size - fork_start
        fork_size = forkoff * 8 if forkoff else literal
        if fork_size > literal:
            raise CorruptImage(f"{what}: attribute fork offset {forkoff} past the inode", where=self.source.name,
                               offset=offset + 82)
        if flags2 & DIFLAG2_NREXT64:
            nextents = INODE_BIG_NEXTENTS.unpack_from(raw, INODE_BIG_NEXTENTS_OFFSET)[0]
        if flags2 & DIFLAG2_BIGTIME:
            mtime = ((msec << 32 | mnsec) // 1_000_000_000) - BIGTIME_EPOCH_OFFSET
        else:
            mtime = msec - (1 << 32) if msec >> 31 else msec
        if size >> 63:
            raise CorruptImage(f"{what}: negative size", where=self.source.name, offset=offset + 56)
        return Inode(
            ino=ino, offset=offset, mode=mode, version=version, format=fmt, nlink=nlink, size=size,
            nextents=nextents, forkoff=forkoff, flags=flags, flags2=flags2, mtime=mtime,
            fork=raw[fork_start : fork_start + fork_size], fork_offset=offset + fork_start,
        )

    def node(self, ino: int) -> Node:
        inode = self.inode(ino)
        if inode.mode & S_IFMT == 0 or inode.nlink == 0:
            raise CorruptImage(f"inode {ino} is in use by a directory but free", where=self.source.name,
                               offset=inode.offset)
        ftype = _TYPES.get(inode.mode & S_IFMT, FileType.OTHER)
        return Node(ino, ftype, inode.size, inode.mode, inode.mtime, private=inode)

    # --- file contents ---------------------------------------------------------------------

    def mapped(self, inode: Inode, size: int, name: str) -> MappedFile:
        """The first ``size`` bytes of the inode's data fork as a lazily mapped byte source."""
        if inode.flags & DIFLAG_REALTIME:
            raise Unsupported(f"inode {inode.ino}: data on the realtime device", where=self.source.name)
        return MappedFile(self.source, size, self.block_size, self._runs(inode), name)

    def _runs(self, inode: Inode) -> Iterator[tuple[int, int, int | None]]:
        for extent in extents(self, inode):
            # an unwritten (preallocated) extent reads as zeros
            yield extent.logical, extent.count, None if extent.unwritten else extent.physical

    def open(self, node: Node) -> ByteSource:
        inode: Inode = node.private
        if node.type is not FileType.REG:
            raise NotFound(f"inode {node.ino} is not a regular file", where=self.source.name)
        name = f"{self.source.name}:inode {inode.ino}"
        if inode.format == FMT_LOCAL:  # not made by Linux for files, but legal on disk
            if inode.size > len(inode.fork):
                raise CorruptImage(f"inode {inode.ino}: local size {inode.size} exceeds the fork",
                                   where=self.source.name, offset=inode.offset)
            return BytesSource(inode.fork[: inode.size], name=name)
        if inode.format not in (FMT_EXTENTS, FMT_BTREE):
            raise CorruptImage(f"inode {inode.ino}: regular file in {FORMAT_NAMES.get(inode.format, inode.format)}"
                               " format", where=self.source.name, offset=inode.offset + 5)
        return self.mapped(inode, inode.size, name)

    def readlink(self, node: Node) -> bytes:
        inode: Inode = node.private
        if node.type is not FileType.LNK:
            raise NotFound(f"inode {node.ino} is not a symlink", where=self.source.name)
        where = f"symlink inode {inode.ino}"
        if inode.size > LIMITS.max_symlink_size:
            raise LimitExceeded(f"{where}: target of {inode.size} bytes (max_symlink_size)", where=self.source.name)
        if inode.size == 0 or inode.size > SYMLINK_MAXLEN:
            raise CorruptImage(f"{where}: target of {inode.size} bytes", where=self.source.name,
                               offset=inode.offset + 56)
        if inode.format == FMT_LOCAL:
            if inode.size > len(inode.fork):
                raise CorruptImage(f"{where}: local target exceeds the fork", where=self.source.name,
                                   offset=inode.offset)
            return inode.fork[: inode.size]
        if inode.format not in (FMT_EXTENTS, FMT_BTREE):
            raise CorruptImage(f"{where}: {FORMAT_NAMES.get(inode.format, inode.format)} format",
                               where=self.source.name, offset=inode.offset + 5)
        if not self.g.crc:
            return self.mapped(inode, inode.size, f"{self.source.name}:{where}").pread(0, inode.size)
        return self._remote_symlink_v5(inode, where)

    def _remote_symlink_v5(self, inode: Inode, where: str) -> bytes:
        """Each extent of a v5 remote symlink starts with a header naming the byte range it
        holds ("Extent Symbolic Links"); the CRC covers the whole extent."""
        parts = []
        got = 0
        for extent in extents(self, inode):
            if got >= inode.size:
                break
            length = extent.count * self.block_size
            if length > SYMLINK_MAXLEN + SYMLINK_HEADER.size * 8 + self.block_size:
                raise CorruptImage(f"{where}: extent of {extent.count} blocks", where=self.source.name,
                                   offset=inode.offset)
            offset = extent.physical * self.block_size
            raw = self.source.pread(offset, length)
            magic, start, count, _crc, uuid, owner, blkno, _lsn = SYMLINK_HEADER.unpack_from(raw)
            if magic != SYMLINK_MAGIC:
                raise CorruptImage(f"{where}: remote block has magic {magic:#x}", where=self.source.name,
                                   offset=offset)
            self.verify_crc(raw, SYMLINK_CRC_OFFSET, where, offset)
            if owner != inode.ino or uuid != self.g.meta_uuid or blkno != offset >> 9:
                raise CorruptImage(f"{where}: remote block belongs elsewhere (address, owner or UUID)",
                                   where=self.source.name, offset=offset)
            if start != got or count == 0 or SYMLINK_HEADER.size + count > length or got + count > inode.size:
                raise CorruptImage(f"{where}: remote block holds bytes {start}+{count}, expected from {got}",
                                   where=self.source.name, offset=offset)
            parts.append(raw[SYMLINK_HEADER.size : SYMLINK_HEADER.size + count])
            got += count
        if got != inode.size:
            raise CorruptImage(f"{where}: remote blocks hold {got} of {inode.size} bytes", where=self.source.name,
                               offset=inode.offset)
        return b"".join(parts)

    # --- directories -----------------------------------------------------------------------

    def root(self) -> Node:
        node = self.node(self.g.root_ino)
        if node.type is not FileType.DIR:
            raise CorruptImage("root inode is not a directory", where=self.source.name, offset=node.private.offset)
        return node

    def _directory(self, directory: Node) -> Inode:
        if directory.type is not FileType.DIR:
            raise NotFound(f"inode {directory.ino} is not a directory", where=self.source.name)
        return directory.private

    def directory_source(self, inode: Inode) -> MappedFile:
        """The data section of a block, leaf or node directory as a byte source (cached)."""
        size = inode.size
        if size % self.g.dir_block_size or size > DIR2_LEAF_OFFSET:
            raise CorruptImage(f"directory {inode.ino}: size {size} is not whole directory blocks",
                               where=self.source.name, offset=inode.offset + 56)
        return self.directory_map(inode, "data", size)

    def directory_map(self, inode: Inode, section: str, size: int) -> MappedFile:
        """The first ``size`` bytes of a directory as a byte source, kept in a cache bounded
        by the extents the inodes declare (``section`` names the view)."""
        item = self._dirs.get((inode.ino, section))
        if item is None:
            item = (self.mapped(inode, size, f"{self.source.name}:directory {inode.ino} {section}"), inode.nextents)
            self._dirs.put((inode.ino, section), item)
        return item[0]

    def _blocks(self, inode: Inode, budget: EntryBudget) -> Iterator[dict[bytes, int]]:
        """name -> inode of each data block of a block, leaf or node directory, in order
        (each block read, verified and parsed once while it stays in the cache)."""
        if inode.format not in (FMT_EXTENTS, FMT_BTREE):
            raise CorruptImage(f"directory {inode.ino}: {FORMAT_NAMES.get(inode.format, inode.format)} format",
                               where=self.source.name, offset=inode.offset + 5)
        source = self.directory_source(inode)
        for index in range(source.size // self.g.dir_block_size):
            names = self._names_of(inode, source, index, budget, scan=True)
            if names is not None:
                yield names

    def _names_of(self, inode: Inode, source: MappedFile, index: int, budget: EntryBudget,
                  scan: bool) -> dict[bytes, int] | None:
        """name -> inode of data block ``index`` (None: a freed block, a hole), parsed once
        while it stays in the cache. Reading and parsing a block is charged to ``budget``;
        a cached block only when ``scan`` (a linear scan visits every block)."""
        size = self.g.dir_block_size
        offset = source.volume_offset(index * size)
        if offset is None:  # a freed data block of a leaf or node directory
            return None
        names = self._dir_names.get(offset)
        if names is None:
            budget.scan(size)
            names = self._parse_dir_block(inode, source, index, offset, source.size // size)
            self._dir_names.put(offset, names)
        elif scan:
            budget.scan(size)
        return names

    def _parse_dir_block(self, inode: Inode, source: MappedFile, index: int, offset: int, count: int) -> dict[bytes, int]:
        g = self.g
        where = f"{self.source.name}:directory {inode.ino}"
        raw = source.pread(index * g.dir_block_size, g.dir_block_size)
        kind = directory.block_kind(raw, g.crc)
        if kind is None or (kind == "block" and count != 1):
            raise CorruptImage(f"{where}: block {index} is not a directory data block", offset=offset)
        if g.crc:
            self.verify_crc(raw, DIR3_CRC_OFFSET, f"directory {inode.ino} block {index}", offset)
            _magic, _crc, blkno, _lsn, uuid, owner = DIR3_BLK_HDR.unpack_from(raw)
            if blkno != offset >> 9 or owner != inode.ino or uuid != g.meta_uuid:
                raise CorruptImage(f"{where}: block {index} belongs elsewhere (address, owner or UUID)", offset=offset)
        names: dict[bytes, int] = {}
        for name, ino in directory.data_entries(raw, offset, g.crc, g.ftype, kind == "block", where):
            names.setdefault(name, ino)
        return names

    def _entries(self, directory_node: Node, budget: EntryBudget) -> Iterator[tuple[bytes, int]]:
        inode = self._directory(directory_node)
        if inode.format == FMT_LOCAL:
            budget.scan(len(inode.fork))
            _parent, entries = directory.short_form(inode.fork, inode.fork_offset, self.g.ftype,
                                                    f"{self.source.name}:directory {inode.ino}")
            yield from entries
            return
        for names in self._blocks(inode, budget):
            yield from names.items()

    def readdir(self, directory_node: Node) -> Iterator[tuple[bytes, Node]]:
        budget = EntryBudget(f"{self.source.name}:directory {directory_node.ino}", self._scanned)
        for name, ino in self._entries(directory_node, budget):
            if name in (b".", b".."):
                continue
            budget.entry()
            yield name, self.node(ino)

    def lookup(self, directory_node: Node, name: bytes) -> Node | None:
        inode = self._directory(directory_node)
        if not name or b"/" in name or len(name) > 255:
            return None
        budget = EntryBudget(f"{self.source.name}:directory {directory_node.ino}", self._scanned)
        if inode.format == FMT_LOCAL:
            for entry, ino in self._entries(directory_node, budget):
                budget.entry()
                if entry == name:
                    return self.node(ino)
            return None
        if inode.size > self.g.dir_block_size and not self.g.ascii_ci and inode.format in (FMT_EXTENTS, FMT_BTREE):
            # a leaf or node directory: its hash index says which data blocks to read
            source = self.directory_source(inode)
            for address in dirindex.candidates(self, inode, name, budget):
                names = self._names_of(inode, source, address // self.g.dir_block_size, budget, scan=False)
                if names is None:
                    raise CorruptImage(f"directory {inode.ino}: index entry points into a hole",
                                       where=self.source.name, offset=inode.offset)
                found = names.get(name)
                if found is not None:
                    return self.node(found)
            return None
        for names in self._blocks(inode, budget):
            budget.entry(len(names))
            found = names.get(name)
            if found is not None:
                return self.node(found)
        return None

