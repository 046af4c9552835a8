"""A file's contents as a ByteSource, mapped lazily from runs of blocks (GRUB's fshelp).

A driver hands over an iterator of runs ``(logical block, count, physical block or None)``
in increasing logical order, never overlapping; ``physical`` None is an unwritten or
uninitialized range that reads as zeros, and a gap between runs is a hole. The map is
pulled on demand and kept for the life of the object, so reading a file front to back
pulls each piece of the map once. ``runs`` points into the volume through the volume's
own source (copy_file_range friendly); holes are zero runs.

A block size of 1 makes runs byte-granular (file systems whose extents are in bytes).

Work is bounded by the file's size, not by what its map claims: runs go strictly up, so
reading the file pulls at most one run per block of it (and one past its end). A map may
point several runs at the same blocks (reflinks, or a hostile map that aliases one block
a million times); the data runs of one file may add up to at most the volume's size, so
a small image cannot make a huge output out of one block (CorruptImage; a file as large as
a big volume is still capped by LIMITS.max_output_file before anything is written).
"""

from __future__ import annotations

import bisect
from typing import Iterator

from ..errors import CorruptImage
from ..source import ByteSource, Run

MapRun = tuple[int, int, "int | None"]  # (logical block, count, physical block or None)


class MappedFile(ByteSource):
    """``size`` bytes of a file whose blocks of ``block_size`` bytes live in ``volume`` at
    the places ``mapper`` says. ``name`` is used in error messages."""

    __slots__ = ("volume", "size", "name", "block_size", "_mapper", "_starts", "_runs", "_known", "_data")

    def __init__(self, volume: ByteSource, size: int, block_size: int, mapper: Iterator[MapRun], name: str):
        if block_size < 1 or size < 0:
            raise CorruptImage(f"{name}: file of {size} bytes in blocks of {block_size} bytes", where=volume.name)
        self.volume = volume
        self.size = size
        self.block_size = block_size
        self.name = name
        self._mapper: Iterator[MapRun] | None = mapper
        self._starts: list[int] = []  # logical start of each run, for bisect
        self._runs: list[MapRun] = []
        self._known = 0  # every logical block below this is mapped (or a hole)
        self._data = 0  # bytes of the volume the runs pulled so far point at (aliases counted again)

    def __repr__(self) -> str:
        return f"MappedFile(name={self.name!r}, size={self.size}, block_size={self.block_size})"

    def _ensure(self, block: int) -> None:
        bs = self.block_size
        while self._mapper is not None and self._known <= block:
            try:
                run = next(self._mapper)
            except StopIteration:
                self._mapper = None
                break
            except RecursionError as exc:  # drivers bound their walks; keep the promise anyway
                raise CorruptImage(f"{self.name}: block map nests too deep", where=self.volume.name) from exc
            logical, count, physical = run
            if count <= 0 or logical < self._known:
                raise CorruptImage(
                    f"{self.name}: block map run {logical}+{count} overlaps or goes backwards"
                    f" (mapped up to block {self._known})",
                    where=self.volume.name,
                )
            if physical is not None:
                if physical < 0 or (physical + count) * bs > self.volume.size:
                    raise CorruptImage(
                        f"{self.name}: blocks {physical}..{physical + count - 1} of {bs} bytes lie outside the"
                        f" volume ({self.volume.size} bytes)",
                        where=self.volume.name,
                        offset=physical * bs if physical >= 0 else None,
                    )
                self._data += count * bs
                if self._data > self.volume.size:
                    raise CorruptImage(
                        f"{self.name}: block map points at more data than the volume holds ({self.volume.size}"
                        f" bytes; its runs alias the same blocks), at file block {logical}",
                        where=self.volume.name,
                        offset=physical * bs,
                    )
            self._starts.append(logical)
            self._runs.append(run)
            self._known = logical + count

    def pieces(self, offset: int, length: int) -> Iterator[tuple[int, int, int | None]]:
        """(file offset, length, byte offset in the volume or None for zeros) covering the range."""
        bs = self.block_size
        end = offset + length
        pos = offset
        while pos < end:
            block = pos // bs
            self._ensure(block)
            index = bisect.bisect_right(self._starts, block) - 1
            if index >= 0:
                logical, count, physical = self._runs[index]
                if block < logical + count:
                    run_end = min(end, (logical + count) * bs)
                    yield (pos, run_end - pos, None if physical is None else physical * bs + (pos - logical * bs))
                    pos = run_end
                    continue
            # a hole: up to the next run's start (or the end)
            nxt = index + 1
            if nxt < len(self._runs):
                hole_end = min(end, self._runs[nxt][0] * bs)
            elif self._mapper is None:
                hole_end = end
            else:  # _ensure stopped with _known > block
                hole_end = min(end, self._known * bs)
                if hole_end <= pos:  # never loop without progress
                    hole_end = min(end, (block + 1) * bs)
            yield (pos, hole_end - pos, None)
            pos = hole_end

    def _pread(self, offset: int, length: int) -> bytes:
        parts = []
        for _pos, size, where in self.pieces(offset, length):
            parts.append(bytes(size) if where is None else self.volume.pread(where, size))
        return b"".join(parts)

    def runs(self, offset: int = 0, length: int | None = None) -> Iterator[Run]:
        length = self._check_range(offset, length)
        for pos, size, where in self.pieces(offset, length):
            if where is None:
                yield Run(None, pos, size)
            else:
                yield from self.volume.runs(where, size)

    def volume_offset(self, offset: int) -> int | None:
        """Where byte ``offset`` of the file lives in the volume (None: a hole), for error
        messages and for caches keyed by place."""
        for _pos, _size, where in self.pieces(offset, 1):
            return where
        return None
