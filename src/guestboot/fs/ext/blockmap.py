"""Where a file's logical blocks live: extent trees (ext4) and indirect block maps (ext2/3).

Both mappers are generators of ``(logical, count, physical)`` runs in increasing logical
order, never overlapping; ``physical`` is None for an uninitialized extent (reads as zeros);
gaps between runs are holes. They are consumed lazily by fs.mapped.MappedFile, so only as much of a map
is read as the reads need, and every step is bounded (tree depth, runs per file, bytes of
tree blocks per file; a tree or indirect block reached twice is CorruptImage). Sections
"Extent Tree" and "Direct/Indirect Block Addressing" of the kernel's ext4 document.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Iterator

from ...errors import CorruptImage, LimitExceeded
from ...limits import LIMITS
from ..budget import charge_metadata
from ..mapped import MapRun
from .layout import (
    DIRECT_BLOCKS,
    EXTENT_ENTRY_SIZE,
    EXTENT_HEADER,
    EXTENT_INDEX,
    EXTENT_INIT_MAX_LEN,
    EXTENT_LEAF,
    EXTENT_MAGIC,
    I_BLOCK_SIZE,
    Inode,
)

if TYPE_CHECKING:
    from .filesystem import ExtFileSystem

LOGICAL_LIMIT = 1 << 32  # logical block numbers are 32-bit


class _Budget:
    """Counts runs produced and tree blocks read for one file against max_file_runs, and
    the bytes of those tree blocks against max_map_bytes (scanning a block costs its size)."""

    def __init__(self, what: str):
        self.used = 0
        self.map_bytes = 0
        self.what = what

    def spend(self) -> None:
        self.used += 1
        if self.used > LIMITS.max_file_runs:
            raise LimitExceeded(f"{self.what}: block map has more than {LIMITS.max_file_runs} pieces (max_file_runs)")

    def read_tree_block(self, size: int, offset: int) -> None:
        self.spend()
        self.map_bytes += size
        charge_metadata(size, self.what, offset)
        if self.map_bytes > LIMITS.max_map_bytes:
            raise LimitExceeded(
                f"{self.what}: block map spans more than {LIMITS.max_map_bytes} bytes of tree blocks (max_map_bytes)",
                offset=offset,
            )


def _coalesce(runs: Iterator[MapRun], budget: _Budget, end: int) -> Iterator[MapRun]:
    """Merge runs that continue each other logically and physically, up to logical block
    ``end`` (the file's last block + 1): what a map holds past the file's end is never
    read, so a map of a million extents behind a one-block file costs nothing more."""
    pending: list | None = None
    for logical, count, physical in runs:
        if logical >= end:
            break
        if pending is not None and pending[0] + pending[1] == logical and (
            (physical is None and pending[2] is None)
            or (physical is not None and pending[2] is not None and pending[2] + pending[1] == physical)
        ):
            pending[1] += count
            continue
        if pending is not None:
            yield (pending[0], pending[1], pending[2])
        budget.spend()
        pending = [logical, count, physical]
    if pending is not None:
        yield (pending[0], pending[1], pending[2])


def map_inode(fs: "ExtFileSystem", inode: Inode, extents: bool) -> Iterator[MapRun]:
    budget = _Budget(f"{fs.source.name}:inode {inode.ino}")
    end = -(-inode.size // fs.block_size)
    if extents:
        return _coalesce(_extent_runs(fs, inode, budget), budget, end)
    return _coalesce(_indirect_runs(fs, inode, budget), budget, end)


# --- extent trees ---------------------------------------------------------------------------


def _extent_runs(fs: "ExtFileSystem", inode: Inode, budget: _Budget) -> Iterator[MapRun]:
    where = f"inode {inode.ino} extent tree"
    root_offset = inode.offset + 0x28
    magic, _entries, _maximum, depth, _gen = EXTENT_HEADER.unpack_from(inode.i_block)
    if magic != EXTENT_MAGIC:
        raise CorruptImage(f"{where}: bad extent header magic {magic:#06x}", where=fs.source.name, offset=root_offset)
    if depth > LIMITS.max_extent_depth:
        raise LimitExceeded(
            f"{where}: depth {depth} is more than {LIMITS.max_extent_depth} (max_extent_depth)",
            where=fs.source.name,
            offset=root_offset,
        )
    state = {"next": 0}  # first logical block the next extent may start at
    visited: set[int] = set()
    root_capacity = (I_BLOCK_SIZE - 12) // EXTENT_ENTRY_SIZE
    yield from _walk(fs, inode, inode.i_block, root_offset, root_capacity, depth, state, visited, budget, where)


def _check_header(raw: bytes, offset: int, capacity: int, depth: int, where: str, volume: str) -> int:
    magic, entries, maximum, node_depth, _gen = EXTENT_HEADER.unpack_from(raw)
    if magic != EXTENT_MAGIC:
        raise CorruptImage(f"{where}: bad extent header magic {magic:#06x}", where=volume, offset=offset)
    if node_depth != depth:
        raise CorruptImage(f"{where}: node has depth {node_depth}, expected {depth}", where=volume, offset=offset)
    if maximum > capacity or entries > maximum:
        raise CorruptImage(
            f"{where}: node claims {entries} of {maximum} entries, room for {capacity}", where=volume, offset=offset
        )
    if entries == 0 and depth > 0:
        raise CorruptImage(f"{where}: index node without entries", where=volume, offset=offset)
    return entries


def _walk(fs, inode, raw, offset, capacity, depth, state, visited, budget, where) -> Iterator[MapRun]:
    entries = _check_header(raw, offset, capacity, depth, where, fs.source.name)
    if depth == 0:
        for i in range(entries):
            pos = 12 + i * EXTENT_ENTRY_SIZE
            logical, length, start_hi, start_lo = EXTENT_LEAF.unpack_from(raw, pos)
            uninit = length > EXTENT_INIT_MAX_LEN
            if uninit:
                length -= EXTENT_INIT_MAX_LEN
            if length == 0:
                raise CorruptImage(f"{where}: extent of zero blocks", where=fs.source.name, offset=offset + pos)
            if logical < state["next"] or logical + length > LOGICAL_LIMIT:
                raise CorruptImage(
                    f"{where}: extent at logical block {logical} overlaps or is out of order",
                    where=fs.source.name,
                    offset=offset + pos,
                )
            physical = (start_hi << 32) | start_lo
            fs.check_blocks(physical, length, f"{where}: extent", offset + pos)
            state["next"] = logical + length
            yield (logical, length, None if uninit else physical)
        return
    previous = -1
    for i in range(entries):
        pos = 12 + i * EXTENT_ENTRY_SIZE
        logical, leaf_lo, leaf_hi = EXTENT_INDEX.unpack_from(raw, pos)
        if logical <= previous or logical < (state["next"] if i else 0):
            raise CorruptImage(
                f"{where}: index entries out of order at logical block {logical}",
                where=fs.source.name,
                offset=offset + pos,
            )
        previous = logical
        child = (leaf_hi << 32) | leaf_lo
        fs.check_blocks(child, 1, f"{where}: index", offset + pos)
        if child in visited:
            raise CorruptImage(
                f"{where}: tree block {child} is reached twice (a loop)", where=fs.source.name, offset=offset + pos
            )
        visited.add(child)
        child_offset = child * fs.block_size
        budget.read_tree_block(fs.block_size, child_offset)
        child_raw = fs.read_block(child)
        child_capacity = (fs.block_size - 12) // EXTENT_ENTRY_SIZE
        fs.verify_extent_block(inode, child_raw, child_offset, where)
        yield from _walk(fs, inode, child_raw, child_offset, child_capacity, depth - 1, state, visited, budget, where)


# --- indirect block maps ------------------------------------------------------------------


def _indirect_runs(fs: "ExtFileSystem", inode: Inode, budget: _Budget) -> Iterator[MapRun]:
    where = f"inode {inode.ino} block map"
    bs = fs.block_size
    per = bs // 4
    wanted = min(-(-inode.size // bs), LOGICAL_LIMIT)  # blocks that hold file data
    pointers = struct.unpack_from("<15I", inode.i_block)
    slot_offset = inode.offset + 0x28
    for i in range(DIRECT_BLOCKS):
        if i >= wanted:
            return
        if pointers[i]:
            fs.check_blocks(pointers[i], 1, f"{where}: direct block", slot_offset + 4 * i)
            yield (i, 1, pointers[i])
    start = DIRECT_BLOCKS
    words = struct.Struct(f"<{per}I")
    visited: set[int] = set()  # indirect blocks read: each belongs to one place of one map
    for level in (1, 2, 3):
        span = per**level
        if start >= wanted:
            return
        pointer = pointers[DIRECT_BLOCKS + level - 1]
        if pointer:
            at = slot_offset + 4 * (DIRECT_BLOCKS + level - 1)
            fs.check_blocks(pointer, 1, f"{where}: indirect block", at)
            yield from _indirect(fs, pointer, at, level, start, wanted, per, words, budget, visited, where)
        start += span


def _indirect(fs, block, at, level, start, wanted, per, words, budget, visited, where) -> Iterator[MapRun]:
    """The runs under indirect ``block`` (of ``level``), whose pointer is at byte ``at``."""
    if block in visited:
        raise CorruptImage(f"{where}: indirect block {block} is reached twice", where=fs.source.name, offset=at)
    visited.add(block)
    block_offset = block * fs.block_size
    budget.read_tree_block(fs.block_size, block_offset)
    table = words.unpack(fs.read_block(block))
    span = per ** (level - 1)
    for i, pointer in enumerate(table):
        logical = start + i * span
        if logical >= wanted:
            return
        if not pointer:
            continue
        fs.check_blocks(pointer, 1, f"{where}: block pointer", block_offset + 4 * i)
        if level == 1:
            yield (logical, 1, pointer)
        else:
            yield from _indirect(
                fs, pointer, block_offset + 4 * i, level - 1, logical, wanted, per, words, budget, visited, where
            )
