"""An ext file's contents as a ByteSource, mapped lazily through its block map.

The map (runs of logical blocks) is read on demand in logical order and kept for the life
of the object, so reading a file front to back reads each extent or indirect block once.
``runs`` points into the image through the volume's own source (copy_file_range friendly);
holes and uninitialized extents are zero runs.
"""

from __future__ import annotations

import bisect
from typing import TYPE_CHECKING, Iterator

from ...errors import CorruptImage
from ...source import ByteSource, Run
from .blockmap import MapRun

if TYPE_CHECKING:
    from .filesystem import ExtFileSystem


class ExtFile(ByteSource):
    def __init__(self, fs: "ExtFileSystem", size: int, mapper: Iterator[MapRun], name: str):
        self.fs = fs
        self.size = size
        self.name = name
        self._mapper: Iterator[MapRun] | None = mapper
        self._starts: list[int] = []  # logical start of each run, for bisect
        self._runs: list[MapRun] = []
        self._known = 0  # every logical block below this is mapped (or a hole)

    def _ensure(self, block: int) -> None:
        while self._mapper is not None and self._known <= block:
            try:
                run = next(self._mapper)
            except StopIteration:
                self._mapper = None
                break
            except RecursionError as exc:  # the walk is depth-bounded; keep the promise anyway
                raise CorruptImage(f"{self.name}: block map nests too deep") from exc
            self._starts.append(run[0])
            self._runs.append(run)
            self._known = run[0] + run[1]

    def pieces(self, offset: int, length: int) -> Iterator[tuple[int, int, int | None]]:
        """(file offset, length, byte offset in the volume or None for zeros) covering the range."""
        bs = self.fs.block_size
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
                    if physical is None:
                        yield (pos, run_end - pos, None)
                    else:
                        yield (pos, run_end - pos, physical * bs + (pos - logical * bs))
                    pos = run_end
                    continue
            # a hole: up to the next run's start (or the end)
            nxt = index + 1
            if nxt < len(self._runs):
                hole_end = min(end, self._runs[nxt][0] * bs)
            elif self._mapper is None:
                hole_end = end
            else:
                hole_end = min(end, self._known * bs)
                if hole_end <= pos:  # not mapped yet: _ensure above makes progress
                    hole_end = min(end, (block + 1) * bs)
            yield (pos, hole_end - pos, None)
            pos = hole_end

    def _pread(self, offset: int, length: int) -> bytes:
        parts = []
        for _pos, size, where in self.pieces(offset, length):
            parts.append(bytes(size) if where is None else self.fs.source.pread(where, size))
        return b"".join(parts)

    def runs(self, offset: int = 0, length: int | None = None) -> Iterator[Run]:
        length = self._check_range(offset, length)
        for pos, size, where in self.pieces(offset, length):
            if where is None:
                yield Run(None, pos, size)
            else:
                yield from self.fs.source.runs(where, size)

    def volume_offset(self, offset: int) -> int | None:
        """Where byte ``offset`` of the file lives in the volume (for error messages)."""
        for _pos, _size, where in self.pieces(offset, 1):
            return where
        return None
