"""What the sparse image formats share (qcow2, VHD dynamic/differencing, VHDX, VMDK): a
disk cut into fixed-size units (clusters, blocks, grains), each mapped by a table to a
place in a file, to zeros, to the image below (backing file, parent), or to compressed
bytes. A format implements ``_pieces``; this class turns the pieces into ``pread`` and
into ``runs`` (plain pieces stay runs of the files' own descriptors: zero-copy), merging
neighbours, and keeps the tables and decompressed units it read in one bounded cache.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Callable, Iterator, NamedTuple

from ..errors import CorruptImage
from ..limits import LIMITS
from .base import ByteSource, Run


class Piece(NamedTuple):
    """``length`` bytes of the disk: at ``offset`` of ``source``; or exactly ``data``; or
    zeros (source and data None)."""

    source: ByteSource | None
    offset: int
    length: int
    data: bytes | None = None


class UnitCache:
    """Tables and decompressed units by key, least recently used dropped first, bounded
    by the bytes held (LIMITS.max_image_cache)."""

    __slots__ = ("_items", "_held", "_limit")

    def __init__(self, limit: int | None = None):
        self._items: OrderedDict = OrderedDict()
        self._held = 0
        self._limit = LIMITS.max_image_cache if limit is None else limit

    def get(self, key, load: Callable[[], tuple[object, int]]):
        """The value for ``key``; ``load()`` gives (value, bytes it holds) when absent."""
        item = self._items.get(key)
        if item is not None:
            self._items.move_to_end(key)
            return item[0]
        value, size = load()
        self._items[key] = (value, size)
        self._held += size
        while self._held > self._limit and len(self._items) > 1:
            _key, (_value, dropped) = self._items.popitem(last=False)
            self._held -= dropped
        return value


class MappedSource(ByteSource):
    """Base class of a disk that an image file maps unit by unit."""

    size: int
    name: str

    def _pieces(self, offset: int, length: int) -> Iterator[Piece]:
        """Pieces covering ``[offset, offset + length)`` of the disk, in order."""
        raise NotImplementedError  # abstract: each format maps its own way

    def _merged(self, offset: int, length: int) -> Iterator[Piece]:
        pending: Piece | None = None
        for piece in self._pieces(offset, length):
            if pending is not None and piece.data is None and pending.data is None and piece.source is pending.source:
                if piece.source is None or pending.offset + pending.length == piece.offset:
                    pending = Piece(pending.source, pending.offset, pending.length + piece.length)
                    continue
            if pending is not None:
                yield pending
            pending = piece
        if pending is not None:
            yield pending

    def _pread(self, offset: int, length: int) -> bytes:
        parts = []
        for piece in self._merged(offset, length):
            if piece.source is not None:
                parts.append(piece.source.pread(piece.offset, piece.length))
            elif piece.data is not None:
                parts.append(piece.data)
            else:
                parts.append(bytes(piece.length))
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def runs(self, offset: int = 0, length: int | None = None) -> Iterator[Run]:
        length = self._check_range(offset, length)
        for piece in self._merged(offset, length):
            if piece.source is not None:
                yield from piece.source.runs(piece.offset, piece.length)
            else:
                yield Run(None, 0, piece.length, piece.data)


def below(lower: ByteSource | None, offset: int, length: int) -> Iterator[Piece]:
    """``length`` bytes at ``offset`` of the image below (a backing file, a parent): zeros
    where there is none or where it ends (QEMU's qcow2.txt: a backing file smaller than
    the image reads as zeros beyond its end)."""
    if lower is not None and offset < lower.size:
        take = min(length, lower.size - offset)
        yield Piece(lower, offset, take)
        offset += take
        length -= take
    if length:
        yield Piece(None, offset, length)


def check_inside(file: ByteSource, offset: int, length: int, what: str, *, where: str, at: int) -> None:
    """A unit the table maps to ``[offset, offset + length)`` of ``file`` must lie in it."""
    if offset + length > file.size:
        raise CorruptImage(
            f"{what} maps to {length} bytes at {offset}, past the end of {file.name} ({file.size} bytes)",
            where=where, offset=at,
        )
