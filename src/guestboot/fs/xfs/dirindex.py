"""Looking a name up through the hash index of a leaf or node directory ("Leaf
Directories", "Node Directories" of "XFS Algorithms & Data Structures").

The index lives in the directory's leaf section (from byte 32 GiB of the directory): one
leaf block of (hash, data address) pairs sorted by hash, or a da B+tree of node blocks
over several such leaves. A lookup reads the path from the root to the leaf holding the
name's hash (plus the next leaves while equal hashes continue) and the data blocks its
entries point at, instead of every data block. Every block is checked before use (v5:
CRC-32C, owner, own address, UUID; both: magic, counts inside the block, levels going
down, pointers inside the leaf section); the walk is bounded by the tree's depth
(DA_NODE_MAXDEPTH) and the directory scan budgets.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

from ...errors import CorruptImage
from ..budget import EntryBudget
from ..mapped import MappedFile
from .dahash import hashname
from .layout import (
    DA3_BLKINFO,
    DA3_CRC_OFFSET,
    DA3_NODE_MAGIC,
    DA_BLKINFO,
    DA_NODE_MAGIC,
    DA_NODE_MAXDEPTH,
    DIR2_LEAF1_MAGIC,
    DIR2_LEAF_HEADER_SIZE,
    DIR2_LEAF_OFFSET,
    DIR2_LEAFN_MAGIC,
    DIR3_LEAF1_MAGIC,
    DIR3_LEAF_HEADER_SIZE,
    DIR3_LEAFN_MAGIC,
    LEAF_COUNTS,
    LEAF_ENTRY,
    NODE_ENTRY,
    Inode,
)

if TYPE_CHECKING:
    from .filesystem import XfsFileSystem

FREE_OFFSET = 2 * DIR2_LEAF_OFFSET  # the free-index section follows the leaf section


class IndexBlock:
    """One checked leaf or node block: its kind, level, forward link and entries."""

    __slots__ = ("kind", "level", "forw", "entries")

    def __init__(self, kind: str, level: int, forw: int, entries: list[tuple[int, int]]):
        self.kind = kind  # "leaf" or "node"
        self.level = level
        self.forw = forw
        self.entries = entries


def index_source(fs: XfsFileSystem, inode: Inode) -> MappedFile:
    """The directory's data and leaf sections as one byte source (holes read as zeros)."""
    return fs.directory_map(inode, "index", FREE_OFFSET)


def read_block(fs: XfsFileSystem, inode: Inode, source: MappedFile, da: int, budget: EntryBudget,
               where: str) -> IndexBlock:
    """The index block at directory block ``da`` (in file-system blocks)."""
    g = fs.g
    size = g.dir_block_size
    pos = da * g.block_size
    if not DIR2_LEAF_OFFSET <= pos <= FREE_OFFSET - size or pos % size:
        raise CorruptImage(f"{where}: index points at directory block {da}, outside the leaf section")
    offset = source.volume_offset(pos)
    if offset is None:
        raise CorruptImage(f"{where}: index block {da} is a hole")
    cached = fs.index_blocks.get(offset)
    if cached is not None:  # read, checked and parsed before (blocks are per owner: checked)
        return cached
    budget.scan(size)
    raw = source.pread(pos, size)
    if g.crc:
        forw, _back, magic, _pad, _crc, blkno, _lsn, uuid, owner = DA3_BLKINFO.unpack_from(raw)
        header = DA3_BLKINFO.size
        leaf_header = DIR3_LEAF_HEADER_SIZE
        leaf_magics, node_magic = (DIR3_LEAF1_MAGIC, DIR3_LEAFN_MAGIC), DA3_NODE_MAGIC
    else:
        forw, _back, magic, _pad = DA_BLKINFO.unpack_from(raw)
        header = DA_BLKINFO.size
        leaf_header = DIR2_LEAF_HEADER_SIZE
        leaf_magics, node_magic = (DIR2_LEAF1_MAGIC, DIR2_LEAFN_MAGIC), DA_NODE_MAGIC
    if magic not in (*leaf_magics, node_magic):
        raise CorruptImage(f"{where}: index block {da} has magic {magic:#x}", offset=offset)
    if g.crc:
        fs.verify_crc(raw, DA3_CRC_OFFSET, f"directory {inode.ino} index block {da}", offset)
        if blkno != offset >> 9 or owner != inode.ino or uuid != g.meta_uuid:
            raise CorruptImage(f"{where}: index block {da} belongs elsewhere (address, owner or UUID)", offset=offset)
    first, second = LEAF_COUNTS.unpack_from(raw, header)
    if magic == node_magic:  # count, level; entries after the (padded) header
        start, kind, level, count = leaf_header, "node", second, first
        step = NODE_ENTRY
    else:  # count, stale
        start, kind, level, count = leaf_header, "leaf", 0, first
        step = LEAF_ENTRY
    if count > (size - start) // step.size or (kind == "node" and not 1 <= level <= DA_NODE_MAXDEPTH):
        raise CorruptImage(f"{where}: index block {da} claims {count} entries at level {level}", offset=offset)
    entries = [step.unpack_from(raw, start + i * step.size) for i in range(count)]
    for i in range(1, count):
        if entries[i][0] < entries[i - 1][0]:
            raise CorruptImage(f"{where}: index block {da} has hashes out of order",
                               offset=offset + start + i * step.size)
    block = IndexBlock(kind, level, forw, entries)
    fs.index_blocks.put(offset, block)
    return block


def candidates(fs: XfsFileSystem, inode: Inode, name: bytes, budget: EntryBudget) -> Iterator[int]:
    """Data addresses (byte offsets in the data section) of the entries whose hash is the
    hash of ``name``, from the index; the caller checks the names there."""
    g = fs.g
    where = f"{fs.source.name}:directory {inode.ino}"
    source = index_source(fs, inode)
    target = hashname(name)
    da = DIR2_LEAF_OFFSET // g.block_size
    block = read_block(fs, inode, source, da, budget, where)
    depth = 0
    while block.kind == "node":
        depth += 1
        if depth > DA_NODE_MAXDEPTH:
            raise CorruptImage(f"{where}: index deeper than {DA_NODE_MAXDEPTH} levels")
        # the first child whose largest hash is at least the target (equal hashes may
        # straddle children: the leaves' forward links continue the run)
        child = next((before for hashval, before in block.entries if hashval >= target), None)
        if child is None:
            return
        level = block.level
        block = read_block(fs, inode, source, child, budget, where)
        if (block.level if block.kind == "node" else 0) != level - 1:
            raise CorruptImage(f"{where}: index block {child} at the wrong level (expected {level - 1})")
    data_size = inode.size
    while True:  # bounded: each block read is charged to the scan budget
        entries = block.entries
        lo, hi = 0, len(entries)
        while lo < hi:
            mid = (lo + hi) // 2
            if entries[mid][0] < target:
                lo = mid + 1
            else:
                hi = mid
        for hashval, address in entries[lo:]:
            if hashval != target:
                return
            if address == 0:  # a stale entry
                continue
            if address * 8 >= data_size:
                raise CorruptImage(f"{where}: index entry points at byte {address * 8} past the data section")
            yield address * 8
        if not block.forw:  # the run of equal hashes reached the last leaf
            return
        block = read_block(fs, inode, source, block.forw, budget, where)
        if block.kind != "leaf":
            raise CorruptImage(f"{where}: a leaf's forward link leads to a node block")
