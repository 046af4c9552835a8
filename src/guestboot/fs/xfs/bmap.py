"""Where an XFS file's blocks live: the extent list in the inode ("Data Extents") or the
bmap B+tree rooted in the inode ("B+tree Extent List").

``extents`` is a generator of Extent records in increasing logical order, never
overlapping, every physical range inside the volume; it is consumed lazily, so only as
much of a tree is read as the reads need. Every step is bounded: tree depth
(LIMITS.max_bmap_depth, and each child one level below its parent), records per file
(max_file_runs) and bytes of tree blocks per file (max_map_bytes). v5 tree blocks are
checked (magic, CRC-32C, owner, own address, file-system UUID) before they are used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

from ...errors import CorruptImage, LimitExceeded
from ...limits import LIMITS
from ..budget import charge_metadata
from .layout import (
    BMAP_CRC_MAGIC,
    BMAP_MAGIC,
    BMBT_KEY,
    BMBT_PTR,
    BMBT_REC,
    BMDR_HEADER,
    BTREE_LBLOCK,
    BTREE_LBLOCK_CRC,
    BTREE_LBLOCK_CRC_OFFSET,
    BTREE_LBLOCK_CRC_SIZE,
    BTREE_LBLOCK_SIZE,
    FMT_BTREE,
    FMT_EXTENTS,
    FORMAT_NAMES,
    Extent,
    Inode,
    unpack_extent,
)

if TYPE_CHECKING:
    from .filesystem import XfsFileSystem

MAX_FILE_BLOCK = (1 << 54) - 1  # startoff is 54 bits


class _Budget:
    """Records produced and tree bytes read for one file, against the limits."""

    def __init__(self, what: str):
        self.what = what
        self.records = 0
        self.tree_bytes = 0

    def record(self, count: int = 1) -> None:
        self.records += count
        if self.records > LIMITS.max_file_runs:
            raise LimitExceeded(f"{self.what}: more than {LIMITS.max_file_runs} extents (max_file_runs)")

    def tree_block(self, size: int, offset: int) -> None:
        self.tree_bytes += size
        charge_metadata(size, self.what, offset)
        if self.tree_bytes > LIMITS.max_map_bytes:
            raise LimitExceeded(
                f"{self.what}: extent tree spans more than {LIMITS.max_map_bytes} bytes (max_map_bytes)", offset=offset
            )


def extents(fs: XfsFileSystem, inode: Inode) -> Iterator[Extent]:
    """The data fork's extents, checked, in logical order."""
    what = f"{fs.source.name}:inode {inode.ino}"
    budget = _Budget(what)
    if inode.format == FMT_EXTENTS:
        if inode.nextents * BMBT_REC.size > len(inode.fork):
            raise CorruptImage(f"{what}: {inode.nextents} extents do not fit in the inode", offset=inode.offset)
        raw = _records(inode.fork, 0, inode.nextents)
        source = _checked(fs, inode, what, _from_records(raw, inode.nextents, inode.fork_offset), budget)
    elif inode.format == FMT_BTREE:
        source = _checked(fs, inode, what, _from_root(fs, inode, what, budget), budget)
    else:
        raise CorruptImage(
            f"{what}: data fork format {FORMAT_NAMES.get(inode.format, inode.format)} has no extents",
            offset=inode.offset,
        )
    yield from source


def _records(raw: bytes, start: int, count: int) -> bytes:
    return raw[start : start + count * BMBT_REC.size]


def _from_records(raw: bytes, count: int, base: int) -> Iterator[tuple[Extent, int]]:
    for i in range(count):
        yield unpack_extent(raw, i * BMBT_REC.size), base + i * BMBT_REC.size


def _checked(fs: XfsFileSystem, inode: Inode, what: str, records: Iterator[tuple[Extent, int]],
             budget: _Budget) -> Iterator[Extent]:
    """Order, overlap and range checks on the records, in the order they come; no more
    of them than the inode declares."""
    g = fs.g
    next_free = 0
    declared = inode.nextents
    for extent, offset in records:
        budget.record()
        if budget.records > declared:
            raise CorruptImage(f"{what}: more extents than the {declared} the inode declares", offset=offset)
        if extent.count == 0:
            raise CorruptImage(f"{what}: extent of zero blocks", offset=offset)
        if extent.logical < next_free:
            raise CorruptImage(f"{what}: extents out of order or overlapping at file block {extent.logical}",
                               offset=offset)
        if extent.logical + extent.count > MAX_FILE_BLOCK:
            raise CorruptImage(f"{what}: extent past the largest file offset", offset=offset)
        first = g.fsb_to_block(extent.physical)
        last = g.fsb_to_block(extent.physical + extent.count - 1)
        if first is None or last is None or last - first != extent.count - 1:
            raise CorruptImage(
                f"{what}: extent at block {extent.physical:#x} of {extent.count} blocks is outside the volume"
                " or crosses an allocation group",
                offset=offset,
            )
        next_free = extent.logical + extent.count
        yield Extent(extent.logical, first, extent.count, extent.unwritten)


def _from_root(fs: XfsFileSystem, inode: Inode, what: str, budget: _Budget) -> Iterator[tuple[Extent, int]]:
    fork = inode.fork
    if len(fork) < BMDR_HEADER.size:
        raise CorruptImage(f"{what}: no room for the extent tree root", offset=inode.fork_offset)
    level, numrecs = BMDR_HEADER.unpack_from(fork)
    # the root holds as many keys as fit beside their pointers; pointers follow the keys
    room = (len(fork) - BMDR_HEADER.size) // (BMBT_KEY.size + BMBT_PTR.size)
    if level == 0 or level > LIMITS.max_bmap_depth:
        if level > LIMITS.max_bmap_depth:
            raise LimitExceeded(f"{what}: extent tree of {level} levels (max_bmap_depth)", offset=inode.fork_offset)
        raise CorruptImage(f"{what}: extent tree root at level 0", offset=inode.fork_offset)
    if numrecs == 0 or numrecs > room:
        raise CorruptImage(f"{what}: extent tree root holds {numrecs} of at most {room} pointers",
                           offset=inode.fork_offset)
    ptr_start = BMDR_HEADER.size + room * BMBT_KEY.size
    for i in range(numrecs):
        child = BMBT_PTR.unpack_from(fork, ptr_start + i * BMBT_PTR.size)[0]
        yield from _walk(fs, inode, child, level - 1, what, budget, inode.fork_offset + ptr_start + i * BMBT_PTR.size)


def _walk(fs: XfsFileSystem, inode: Inode, fsb: int, level: int, what: str, budget: _Budget,
          pointer_offset: int) -> Iterator[tuple[Extent, int]]:
    g = fs.g
    block = g.fsb_to_block(fsb)
    if block is None:
        raise CorruptImage(f"{what}: extent tree points at block {fsb:#x}, outside the volume", offset=pointer_offset)
    offset = block * g.block_size
    budget.tree_block(g.block_size, offset)
    raw = fs.source.pread(offset, g.block_size)
    magic, got_level, numrecs, _left, _right = BTREE_LBLOCK.unpack_from(raw)
    if g.crc:
        if magic != BMAP_CRC_MAGIC:
            raise CorruptImage(f"{what}: extent tree block has magic {magic:#x}", offset=offset)
        blkno, _lsn, uuid, owner = BTREE_LBLOCK_CRC.unpack_from(raw, BTREE_LBLOCK_SIZE)
        fs.verify_crc(raw, BTREE_LBLOCK_CRC_OFFSET, f"{what}: extent tree block", offset)
        if blkno != offset >> 9 or owner != inode.ino or uuid != g.meta_uuid:
            raise CorruptImage(f"{what}: extent tree block belongs elsewhere (address, owner or UUID)", offset=offset)
        header = BTREE_LBLOCK_CRC_SIZE
    else:
        if magic != BMAP_MAGIC:
            raise CorruptImage(f"{what}: extent tree block has magic {magic:#x}", offset=offset)
        header = BTREE_LBLOCK_SIZE
    if got_level != level:
        raise CorruptImage(f"{what}: extent tree block at level {got_level}, expected {level}", offset=offset)
    if level == 0:
        room = (g.block_size - header) // BMBT_REC.size
        if numrecs == 0 or numrecs > room:
            raise CorruptImage(f"{what}: extent tree leaf holds {numrecs} of at most {room} records", offset=offset)
        yield from _from_records(_records(raw, header, numrecs), numrecs, offset + header)
        return
    room = (g.block_size - header) // (BMBT_KEY.size + BMBT_PTR.size)
    if numrecs == 0 or numrecs > room:
        raise CorruptImage(f"{what}: extent tree node holds {numrecs} of at most {room} pointers", offset=offset)
    ptr_start = header + room * BMBT_KEY.size
    for i in range(numrecs):
        child = BMBT_PTR.unpack_from(raw, ptr_start + i * BMBT_PTR.size)[0]
        yield from _walk(fs, inode, child, level - 1, what, budget, offset + ptr_start + i * BMBT_PTR.size)
