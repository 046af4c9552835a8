"""The file allocation table: one entry per cluster, chains of clusters (fatgen103
section 4, "FAT Data Structure").

A chain is walked into runs of consecutive clusters. Every step is checked: a free entry
(0), the reserved numbers 1 and cluster numbers past the data area, the bad-cluster mark
and a chain that comes back to a cluster it already passed (a loop) are CorruptImage
naming the FAT entry's byte offset. Loops are found exactly: each walk marks the clusters
it passed in a sparse bitmap.
"""

from __future__ import annotations

import sys
from array import array
from typing import Iterator

from ...errors import CorruptImage, LimitExceeded
from ...limits import LIMITS
from ...source import ByteSource
from ..budget import charge_metadata
from ..cache import LRU
from .bootsector import Geometry
from .layout import FAT12, FIRST_CLUSTER

_CHUNK = 4096  # bytes of the FAT read and cached at a time
_CHUNKS = 64
_ARRAY_CODES = {16: "H", 32: "I"}


class Table:
    """Reads entries of one FAT through a small cache of FAT chunks: FAT16/FAT32/exFAT
    chunks are kept as arrays of entries (walking a chain is array indexing), FAT12's as
    bytes (its 12-bit entries straddle bytes). The geometry gives fat_type, fat_offset,
    fat_bytes and clusters; the FAT holds an entry for every cluster (its boot sector
    reader checked that)."""

    def __init__(self, source: ByteSource, geometry: Geometry):
        self.source = source
        self.g = geometry
        self.type = geometry.fat_type
        self._chunks: LRU[int, bytes | array] = LRU(_CHUNKS)
        self._per_chunk = _CHUNK * 8 // self.type.bits  # whole entries of FAT16/32 per chunk

    def entry_offset(self, cluster: int) -> int:
        """Byte offset in the volume of the FAT entry of ``cluster``."""
        bits = self.type.bits
        if bits == 12:
            return self.g.fat_offset + cluster + cluster // 2
        return self.g.fat_offset + cluster * (bits // 8)

    def _bytes(self, offset: int, length: int) -> bytes:
        """FAT12: ``length`` bytes at ``offset`` of the volume, through the chunk cache."""
        index, inner = divmod(offset, _CHUNK)
        if inner + length > _CHUNK:  # a FAT12 entry across a chunk border
            return self.source.pread(offset, length)
        chunk = self._chunks.get(index)
        if chunk is None:
            start = index * _CHUNK
            chunk = self.source.pread(start, min(_CHUNK, self.source.size - start))
            self._chunks.put(index, chunk)
        if inner + length > len(chunk):
            raise CorruptImage("FAT entry past the end of the volume", where=self.source.name, offset=offset)
        return chunk[inner : inner + length]

    def _entries(self, index: int) -> array:
        """FAT16/32: chunk ``index`` of the FAT (entries index * per_chunk onwards)."""
        chunk = self._chunks.get(index)
        if chunk is None:
            width = self.type.bits // 8
            start = index * _CHUNK
            length = min(_CHUNK, self.g.fat_bytes - start) // width * width
            if length <= 0:
                raise CorruptImage(f"FAT chunk {index} past the end of the FAT", where=self.source.name,
                                   offset=self.g.fat_offset + start)
            chunk = array(_ARRAY_CODES[self.type.bits], self.source.pread(self.g.fat_offset + start, length))
            if sys.byteorder != "little":
                chunk.byteswap()
            self._chunks.put(index, chunk)
        return chunk

    def next(self, cluster: int) -> int:
        """The FAT entry of ``cluster`` (masked to the FAT's width)."""
        kind = self.type
        if kind is FAT12:
            value = int.from_bytes(self._bytes(self.entry_offset(cluster), 2), "little")
            return (value >> 4) if cluster & 1 else (value & 0xFFF)
        index, slot = divmod(cluster, self._per_chunk)
        chunk = self._entries(index)
        if slot >= len(chunk):
            raise CorruptImage(f"cluster {cluster} has no FAT entry", where=self.source.name,
                               offset=self.entry_offset(cluster))
        return chunk[slot] & kind.mask

    def check_start(self, cluster: int, what: str, offset: int) -> None:
        """A first cluster named by a directory entry at byte ``offset``."""
        if not FIRST_CLUSTER <= cluster < self.g.clusters + FIRST_CLUSTER:
            raise CorruptImage(
                f"{what}: first cluster {cluster} outside the data area (2..{self.g.clusters + 1})",
                where=self.source.name,
                offset=offset,
            )

    def runs(self, first: int, what: str, clusters: int | None = None) -> Iterator[tuple[int, int]]:
        """(first cluster, count) runs of the chain from ``first``, in chain order: until the
        end mark, or after ``clusters`` clusters when given (a file's size says how many it
        needs; a longer chain is not read further, a shorter one is CorruptImage).

        The caller checked ``first`` with check_start. Each step reads one FAT entry: the
        entries read for one chain count against LIMITS.max_map_bytes, its fragments
        against LIMITS.max_file_runs."""
        kind = self.type
        last = self.g.clusters + FIRST_CLUSTER  # one past the highest cluster number
        budget = LIMITS.max_map_bytes * 8 // kind.bits
        seen = _Visited()
        seen.add(first)
        fast = kind is not FAT12
        per_chunk = self._per_chunk
        mask = kind.mask
        chunk_index, chunk = -1, array("I")
        page_number, page = -1, bytearray()
        run_start = current = first
        run_length = 1
        runs = 0
        done = 1
        charged = 0  # entries charged to the image's metadata total (charged at each run)
        while clusters is None or done < clusters:
            if done > budget:
                raise LimitExceeded(f"{what}: cluster chain needs more than {LIMITS.max_map_bytes} bytes of FAT"
                                    " entries (max_map_bytes)", where=self.source.name)
            if fast:  # the next() of FAT16/32 inlined: this loop runs once per cluster
                index, slot = divmod(current, per_chunk)
                if index != chunk_index:
                    chunk_index, chunk = index, self._entries(index)
                value = chunk[slot] & mask if slot < len(chunk) else self.next(current)
            else:
                value = self.next(current)
            if value >= kind.end:
                if clusters is not None:
                    raise CorruptImage(f"{what}: cluster chain ends after {done} of {clusters} clusters",
                                       where=self.source.name, offset=self.entry_offset(current))
                break
            if value == kind.bad or value < FIRST_CLUSTER or value >= last:
                problem = {0: "a free cluster", 1: "reserved cluster 1", kind.bad: "a bad cluster"}.get(
                    value, f"cluster {value}, outside the data area (2..{last - 1})")
                raise CorruptImage(f"{what}: cluster chain leads to {problem}", where=self.source.name,
                                   offset=self.entry_offset(current))
            number = value >> 15  # seen.add(value), inlined
            if number != page_number:
                page_number, page = number, seen.page(number)
            byte_index, bit = (value >> 3) & 4095, 1 << (value & 7)
            byte = page[byte_index]
            page[byte_index] = byte | bit
            if byte & bit:
                raise CorruptImage(f"{what}: cluster chain loops back to cluster {value}", where=self.source.name,
                                   offset=self.entry_offset(current))
            if value == current + 1:
                run_length += 1
            else:
                runs += 1
                if runs >= LIMITS.max_file_runs:  # each run is kept by the MappedFile reading it
                    raise LimitExceeded(f"{what}: more than {LIMITS.max_file_runs} fragments (max_file_runs)",
                                        where=self.source.name)
                charge_metadata((done - charged) * kind.bits // 8, f"{self.source.name}: {what}")
                charged = done
                yield run_start, run_length
                run_start, run_length = value, 1
            current = value
            done += 1
        charge_metadata((done - charged) * kind.bits // 8, f"{self.source.name}: {what}")
        yield run_start, run_length


class _Visited:
    """The clusters one chain walk has passed, as a sparse bitmap of 4 KiB pages: memory
    grows with how widely the chain spreads, at most one bit per cluster of the volume
    (32 MiB for the largest FAT32; a walk is also bounded by max_map_bytes steps)."""

    __slots__ = ("pages",)

    def __init__(self) -> None:
        self.pages: dict[int, bytearray] = {}

    def page(self, number: int) -> bytearray:
        """The page of clusters number * 32768 onwards."""
        page = self.pages.get(number)
        if page is None:
            page = self.pages[number] = bytearray(4096)
        return page

    def add(self, cluster: int) -> bool:
        """Mark ``cluster``; False when it was marked already."""
        page = self.page(cluster >> 15)
        index = (cluster >> 3) & 4095
        bit = 1 << (cluster & 7)
        byte = page[index]
        if byte & bit:
            return False
        page[index] = byte | bit
        return True
