"""Btrfs B-trees: tree blocks read, checked and searched ("Tree blocks", "Items" and
"Nodes" in the btrfs on-disk format page).

A tree block is ``nodesize`` bytes at a logical address: a header (checksum, fsid, its own
address, level, item count), then either leaf items (key, data offset, data size; data at
the block's end) or node pointers (key, child address). A block is accepted only when its
checksum, fsid, address and level are what the parent says; on a mirrored profile the next
copy is tried when one is bad. Keys must increase inside a block and a child's first key
must be the key its parent points with, so a walk never revisits a key range. Every walk
counts the bytes of the blocks it visits against LIMITS.max_tree_bytes.
"""

from __future__ import annotations

import bisect
from typing import TYPE_CHECKING, Iterator, NamedTuple

from ...errors import CorruptImage, LimitExceeded
from ...limits import LIMITS
from ..budget import charge_metadata
from ..cache import LRU
from .layout import HEADER_SIZE, ITEM, KEY_PTR, MAX_LEVEL, Header

if TYPE_CHECKING:
    from ...source import ByteSource
    from .chunks import ChunkMap
    from .checksum import Checker

Key = tuple[int, int, int]  # (objectid, type, offset): the order of the tree
# Blocks kept parsed: about 2 MiB of tree blocks (a parsed block holds its keys too, some
# 150 bytes per item: ~15 MiB in all whatever the node size)
_CACHE_BYTES = 2 * 1024 * 1024
_CACHE_MIN_BLOCKS = 16


class Block(NamedTuple):
    logical: int
    physical: int  # byte offset of the copy that was read (for error messages)
    level: int
    owner: int
    keys: list[Key]
    # leaves: (data start in raw, data size) per item; nodes: (child address, 0) per pointer
    refs: list[tuple[int, int]]
    raw: bytes


class Budget:
    """Bytes of tree blocks one walk may visit (LIMITS.max_tree_bytes)."""

    __slots__ = ("what", "used")

    def __init__(self, what: str):
        self.what = what
        self.used = 0

    def spend(self, size: int, offset: int) -> None:
        self.used += size
        charge_metadata(size, self.what, offset)
        if self.used > LIMITS.max_tree_bytes:
            raise LimitExceeded(
                f"{self.what}: visits more than {LIMITS.max_tree_bytes} bytes of tree blocks (max_tree_bytes)",
                offset=offset,
            )


class Trees:
    """Reads and walks the trees of one volume."""

    def __init__(self, source: "ByteSource", chunks: "ChunkMap", checker: "Checker", fsid: bytes, nodesize: int,
                 sectorsize: int):
        self.source = source
        self.chunks = chunks
        self.checker = checker
        self.fsid = fsid
        self.nodesize = nodesize
        self.sectorsize = sectorsize
        self.name = source.name
        self._cache: LRU[int, Block] = LRU(max(_CACHE_MIN_BLOCKS, _CACHE_BYTES // nodesize))

    def block(self, logical: int, level: int, budget: Budget) -> Block:
        cached = self._cache.get(logical)
        if cached is not None:
            budget.spend(self.nodesize, cached.physical)
            if cached.level != level:
                raise CorruptImage(f"btrfs tree block {logical:#x}: level {cached.level}, expected {level}",
                                   where=self.name, offset=cached.physical)
            return cached
        if logical % self.sectorsize:
            raise CorruptImage(f"btrfs tree block address {logical:#x} is not sector aligned", where=self.name)
        avail, copies = self.chunks.copies(logical, self.nodesize)
        if avail < self.nodesize:
            raise CorruptImage(f"btrfs tree block {logical:#x} crosses a chunk or stripe boundary", where=self.name)
        failure: CorruptImage | None = None
        for physical in copies:
            budget.spend(self.nodesize, physical)
            try:
                raw = self.source.pread(physical, self.nodesize)  # a cut image: try the next copy
                block = self._parse(raw, logical, physical, level)
            except CorruptImage as exc:
                failure = failure or exc
                continue
            self._cache.put(logical, block)
            return block
        assert failure is not None
        raise failure

    def _parse(self, raw: bytes, logical: int, physical: int, level: int) -> Block:
        def bad(message: str, at: int = 0) -> CorruptImage:
            return CorruptImage(f"btrfs tree block {logical:#x}: {message}", where=self.name, offset=physical + at)

        header = Header.from_bytes(raw)
        if not self.checker.good(raw):
            raise bad(f"{self.checker.name} checksum mismatch")
        if header.bytenr != logical:
            raise bad(f"header says it is block {header.bytenr:#x}", 0x30)
        if header.fsid != self.fsid:
            raise bad("belongs to another file system (fsid)", 0x20)
        if header.level != level:
            raise bad(f"level {header.level}, expected {level}", 0x64)
        count = header.nritems
        entry = ITEM if level == 0 else KEY_PTR
        if HEADER_SIZE + count * entry.size > len(raw):
            raise bad(f"{count} items do not fit", 0x60)
        if level and count == 0:
            raise bad("node without pointers", 0x60)
        keys: list[Key] = []
        refs: list[tuple[int, int]] = []
        previous: Key | None = None
        for i in range(count):
            pos = HEADER_SIZE + i * entry.size
            if level == 0:
                objectid, type_, offset, data_offset, size = ITEM.unpack_from(raw, pos)
                start = HEADER_SIZE + data_offset
                if start < HEADER_SIZE + count * ITEM.size or start + size > len(raw):
                    raise bad(f"item {i} data ({size} bytes at {data_offset}) outside the leaf", pos)
                refs.append((start, size))
            else:
                objectid, type_, offset, child, _generation = KEY_PTR.unpack_from(raw, pos)
                refs.append((child, 0))
            key = (objectid, type_, offset)
            if previous is not None and key <= previous:
                raise bad(f"keys out of order at item {i}", pos)
            previous = key
            keys.append(key)
        return Block(logical, physical, level, header.owner, keys, refs, raw)

    def items(self, root: int, level: int, lo: Key, hi: Key, budget: Budget) -> Iterator[tuple[Key, bytes, int]]:
        """(key, item data, byte offset of the data) for keys in [lo, hi], in key order."""
        if level >= MAX_LEVEL:
            raise CorruptImage(f"btrfs tree at {root:#x} claims level {level}", where=self.name)
        yield from self._walk(root, level, lo, hi, None, budget)

    def _walk(self, logical: int, level: int, lo: Key, hi: Key, first: Key | None,
              budget: Budget) -> Iterator[tuple[Key, bytes, int]]:
        block = self.block(logical, level, budget)
        keys = block.keys
        if first is not None and (not keys or keys[0] != first):
            raise CorruptImage(f"btrfs tree block {logical:#x}: first key is not the one its parent points with",
                               where=self.name, offset=block.physical)
        if level == 0:
            raw = block.raw
            for i in range(bisect.bisect_left(keys, lo), len(keys)):
                key = keys[i]
                if key > hi:
                    return
                start, size = block.refs[i]
                yield key, raw[start : start + size], block.physical + start
            return
        for i in range(max(0, bisect.bisect_right(keys, lo) - 1), len(keys)):
            if keys[i] > hi:
                return
            yield from self._walk(block.refs[i][0], level - 1, lo, hi, keys[i], budget)

    def first(self, root: int, level: int, lo: Key, hi: Key, what: str) -> tuple[Key, bytes, int] | None:
        for found in self.items(root, level, lo, hi, Budget(what)):
            return found
        return None

    def last(self, root: int, level: int, lo: Key, hi: Key, what: str) -> tuple[Key, bytes, int] | None:
        found = None
        for found in self.items(root, level, lo, hi, Budget(what)):
            pass
        return found
