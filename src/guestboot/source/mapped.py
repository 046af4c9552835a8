"""What the sparse image formats share (qcow2, VHD dynamic/differencing, VHDX, VMDK): a
disk cut into fixed-size units (clusters, blocks, grains), each mapped by a table to a
place in a file, to zeros, to the image below (backing file, parent), or to compressed
bytes. A format implements ``_pieces``; this class turns the pieces into ``pread`` and
into ``runs`` (plain pieces stay runs of the files' own descriptors: zero-copy), merging
neighbours. Every table (L1/L2, BAT, grain directory and tables) and decompressed unit of
every image is read on demand into one cache shared by all images of the process (a
backing chain, several disks), so the memory they hold is bounded once, by
LIMITS.max_image_cache, however many images and however large their tables.
"""

from __future__ import annotations

import itertools
import sys
from array import array
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


SHARED = UnitCache()
_owners = itertools.count()
TABLE_CHUNK = 64 * 1024  # bytes of a table read (and cached) at a time


class ImageCache:
    """One image's view of the shared cache: its keys, kept apart from other images'."""

    __slots__ = ("owner",)

    def __init__(self) -> None:
        self.owner = next(_owners)  # never reused, unlike id(): a new image never sees an old one's entries

    def get(self, key, load: Callable[[], tuple[object, int]]):
        return SHARED.get((self.owner, key), load)


class Table:
    """``count`` unsigned entries of ``width`` bytes (4 or 8) at ``offset`` of ``file``,
    big- or little-endian, read TABLE_CHUNK bytes at a time through ``cache``. The caller
    has checked that the table lies inside the file."""

    __slots__ = ("file", "offset", "count", "width", "swap", "cache", "per_chunk")

    def __init__(self, file: ByteSource, offset: int, count: int, width: int, big_endian: bool, cache: ImageCache):
        self.file = file
        self.offset = offset
        self.count = count
        self.width = width
        self.swap = big_endian == (sys.byteorder == "little")
        self.cache = cache
        self.per_chunk = TABLE_CHUNK // width

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> int:
        if not 0 <= index < self.count:
            raise IndexError(index)
        chunk, within = divmod(index, self.per_chunk)
        return self.cache.get(("table", self.offset, chunk), lambda: self._load(chunk))[within]

    def _load(self, chunk: int) -> tuple[array, int]:
        first = chunk * self.per_chunk
        take = min(self.per_chunk, self.count - first) * self.width
        words = words_of(self.file.pread(self.offset + first * self.width, take), self.width, self.swap)
        return words, take


def words_of(raw: bytes, width: int, swap: bool) -> array:
    """``raw`` as unsigned integers of ``width`` bytes; ``swap`` when the file's byte
    order is not the machine's."""
    words = array("I" if width == 4 else "Q", raw)
    if swap:
        words.byteswap()
    return words


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
