"""A btrfs file's contents from its EXTENT_DATA items ("File extents" in the btrfs
on-disk format page).

Each item at file offset ``key.offset`` is inline (the bytes follow the item header,
perhaps compressed), regular (``num_bytes`` from byte ``offset`` of the extent
``disk_bytenr``/``disk_num_bytes``, perhaps compressed; disk_bytenr 0 is a hole) or
prealloc (reads as zeros). Gaps between items are holes (no_holes). A file whose extents
are all plain is a MappedFile (byte-granular runs into the device, zero-copy); a file with
inline or compressed extents is an ExtentFile, which decompresses one extent at a time
(each bounded by the size the item declares and LIMITS.max_compressed_extent) and keeps a
few in a small cache.
"""

from __future__ import annotations

import bisect
from typing import TYPE_CHECKING, Iterator, NamedTuple

from ... import codec
from ...errors import CorruptImage, LimitExceeded, Unsupported
from ...limits import LIMITS
from ...source import ByteSource, Run
from ..cache import LRU
from .layout import (
    COMPRESS_LZO,
    COMPRESS_NAMES,
    COMPRESS_NONE,
    COMPRESS_ZLIB,
    COMPRESS_ZSTD,
    EXTENT_INLINE,
    EXTENT_PREALLOC,
    EXTENT_REG,
    FILE_EXTENT,
    FILE_EXTENT_DISK,
    FILE_EXTENT_HEAD,
)

if TYPE_CHECKING:
    from .filesystem import BtrfsFileSystem

_LZO_LEN = 4  # btrfs's LZO framing: u32 lengths
_EXTENT_CACHE = 4


class Piece(NamedTuple):
    """``length`` bytes at file offset ``start``: zeros (kind "zero"), plain bytes at
    ``logical`` ("plain"), bytes of an inline item (``data``), or bytes from ``skip`` on
    of a compressed extent (``logical``, ``disk_size`` bytes on disk, ``ram`` bytes
    decompressed with ``compression``)."""

    start: int
    length: int
    kind: str
    logical: int = 0
    data: bytes = b""
    skip: int = 0
    disk_size: int = 0
    ram: int = 0
    compression: int = 0
    offset: int = 0  # where the item was read (for error messages)


def extent_pieces(fs: "BtrfsFileSystem", items: Iterator[tuple[int, bytes, int]], size: int,
                  what: str) -> list[Piece]:
    """The pieces of a file of ``size`` bytes from its (file offset, item data, item offset)
    in increasing offset order; holes between items are left out (they read as zeros)."""
    pieces: list[Piece] = []
    covered = 0  # every byte below this is described
    for start, raw, offset in items:
        if start >= size:
            break  # an extent past EOF (preallocated beyond it, or truncated): not data
        if len(pieces) >= LIMITS.max_file_runs:
            raise LimitExceeded(f"{what}: more than {LIMITS.max_file_runs} extents (max_file_runs)", offset=offset)
        if start < covered:
            raise CorruptImage(f"{what}: extent at file offset {start} overlaps the one before", offset=offset)
        if len(raw) < FILE_EXTENT_HEAD:
            raise CorruptImage(f"{what}: file extent item of {len(raw)} bytes", offset=offset)
        _gen, ram, compression, encryption, other, kind = FILE_EXTENT.unpack_from(raw)
        if encryption or other:
            raise Unsupported(f"{what}: encrypted or encoded extent", offset=offset)
        if compression not in (COMPRESS_NONE, COMPRESS_ZLIB, COMPRESS_LZO, COMPRESS_ZSTD):
            raise Unsupported(f"{what}: compression type {compression}", offset=offset)
        if kind == EXTENT_INLINE:
            data = raw[FILE_EXTENT_HEAD:]
            if compression == COMPRESS_NONE:
                ram = len(data)
            elif ram > LIMITS.max_compressed_extent:
                raise LimitExceeded(f"{what}: inline extent of {ram} bytes (max_compressed_extent)", offset=offset)
            length = min(ram, size - start)
            if compression == COMPRESS_NONE:
                pieces.append(Piece(start, length, "inline", data=data[:length], offset=offset))
            else:
                pieces.append(Piece(start, length, "compressed", data=data, ram=ram, compression=compression,
                                    disk_size=len(data), offset=offset))
            covered = start + length
            continue
        if kind not in (EXTENT_REG, EXTENT_PREALLOC):
            raise CorruptImage(f"{what}: file extent type {kind}", offset=offset)
        if len(raw) < FILE_EXTENT_HEAD + FILE_EXTENT_DISK.size:
            raise CorruptImage(f"{what}: file extent item of {len(raw)} bytes", offset=offset)
        disk_bytenr, disk_size, skip, num_bytes = FILE_EXTENT_DISK.unpack_from(raw, FILE_EXTENT_HEAD)
        if num_bytes == 0:
            raise CorruptImage(f"{what}: extent of {num_bytes} bytes at file offset {start}", offset=offset)
        length = min(num_bytes, size - start)
        covered = start + length
        if kind == EXTENT_PREALLOC or disk_bytenr == 0:
            pieces.append(Piece(start, length, "zero", offset=offset))
            continue
        if compression == COMPRESS_NONE:
            if skip + num_bytes > disk_size:
                raise CorruptImage(f"{what}: extent uses bytes {skip}..{skip + num_bytes} of {disk_size}",
                                   offset=offset)
            pieces.append(Piece(start, length, "plain", logical=disk_bytenr + skip, offset=offset))
            continue
        if ram > LIMITS.max_compressed_extent or disk_size > LIMITS.max_compressed_extent:
            raise LimitExceeded(f"{what}: compressed extent of {disk_size} bytes, {ram} decompressed"
                                " (max_compressed_extent)", offset=offset)
        if skip + num_bytes > ram:
            raise CorruptImage(f"{what}: extent uses bytes {skip}..{skip + num_bytes} of {ram} decompressed",
                               offset=offset)
        pieces.append(Piece(start, length, "compressed", logical=disk_bytenr, skip=skip, disk_size=disk_size,
                            ram=ram, compression=compression, offset=offset))
    return pieces


def plain_runs(fs: "BtrfsFileSystem", pieces: list[Piece], what: str) -> Iterator[tuple[int, int, int | None]]:
    """(file offset, count, device offset or None) for plain pieces, split where chunks or
    stripes split them; holes are left to the gaps."""
    budget = 0
    for piece in pieces:
        if piece.kind == "zero":
            continue
        pos, logical, left = piece.start, piece.logical, piece.length
        while left:
            budget += 1
            if budget > LIMITS.max_file_runs:
                raise LimitExceeded(f"{what}: more than {LIMITS.max_file_runs} pieces (max_file_runs)")
            avail, copies = fs.chunks.copies(logical, left)
            yield (pos, avail, copies[0])
            pos += avail
            logical += avail
            left -= avail


class ExtentFile(ByteSource):
    """A file with inline or compressed extents (plain ones too, read through the chunks)."""

    def __init__(self, fs: "BtrfsFileSystem", size: int, pieces: list[Piece], name: str):
        self.fs = fs
        self.size = size
        self.name = name
        self._pieces = pieces
        self._starts = [p.start for p in pieces]
        self._cache: LRU[tuple[int, int], bytes] = LRU(_EXTENT_CACHE)

    @property
    def extents(self) -> tuple[Piece, ...]:
        """The file's pieces in file order (holes between them are left out)."""
        return tuple(self._pieces)

    def _segments(self, offset: int, length: int) -> Iterator[tuple[int, int, Piece | None]]:
        """(file offset, length, piece or None for a hole) covering the range."""
        pieces = self._pieces
        count = len(pieces)
        end = offset + length
        pos = offset
        index = bisect.bisect_right(self._starts, pos) - 1  # the last piece starting at or before pos
        while pos < end:
            if index >= 0 and pos < pieces[index].start + pieces[index].length:
                stop = min(end, pieces[index].start + pieces[index].length)
                yield pos, stop - pos, pieces[index]
            else:
                stop = min(end, pieces[index + 1].start) if index + 1 < count else end
                yield pos, stop - pos, None
            pos = stop
            while index + 1 < count and pieces[index + 1].start <= pos:
                index += 1

    def _decompressed(self, piece: Piece) -> bytes:
        key = (piece.offset, piece.logical)
        data = self._cache.get(key)
        if data is None:
            raw = piece.data if piece.data else self.fs.read_logical(piece.logical, piece.disk_size)
            data = decompress(piece.compression, raw, piece.ram, self.fs.sectorsize,
                              f"{self.name}: {COMPRESS_NAMES[piece.compression]} extent", piece.offset)
            self._cache.put(key, data)
        return data

    def _read(self, pos: int, size: int, piece: Piece | None) -> bytes:
        if piece is None or piece.kind == "zero":
            return bytes(size)
        rel = pos - piece.start
        if piece.kind == "inline":
            return piece.data[rel : rel + size]
        if piece.kind == "plain":
            return self.fs.read_logical(piece.logical + rel, size)
        at = piece.skip + rel
        return self._decompressed(piece)[at : at + size]

    def _pread(self, offset: int, length: int) -> bytes:
        return b"".join(self._read(pos, size, piece) for pos, size, piece in self._segments(offset, length))

    def runs(self, offset: int = 0, length: int | None = None) -> Iterator[Run]:
        length = self._check_range(offset, length)
        for pos, size, piece in self._segments(offset, length):
            if piece is None or piece.kind == "zero":
                yield Run(None, pos, size)
            elif piece.kind == "plain":
                logical = piece.logical + pos - piece.start
                while size:
                    avail, copies = self.fs.chunks.copies(logical, size)
                    yield from self.fs.source.runs(copies[0], avail)
                    logical += avail
                    pos += avail
                    size -= avail
            else:
                yield Run(None, pos, size, self._read(pos, size, piece))


def decompress(compression: int, raw: bytes, size: int, sectorsize: int, what: str, offset: int) -> bytes:
    """``size`` bytes from one compressed extent (inline or on disk). Data that ends early
    is followed by zeros, as the kernel reads it: the extent's last sector is rounded up
    in ram_bytes but only the file's bytes are compressed."""
    if compression == COMPRESS_ZLIB:
        data = codec.zlib(raw, size, what=what, offset=offset)
    elif compression == COMPRESS_ZSTD:
        data = codec.zstd(raw, size, what=what, offset=offset)
    else:
        data = _lzo_segments(raw, size, sectorsize, what, offset)
    return data + bytes(size - len(data)) if len(data) < size else data


def _lzo_segments(raw: bytes, size: int, sectorsize: int, what: str, offset: int) -> bytes:
    """Btrfs's LZO framing: a u32 total length, then segments (u32 length, LZO1X stream of
    at most one sector's data); a segment header never straddles a sector, the rest of
    the sector is padding then."""
    if len(raw) < _LZO_LEN:
        raise CorruptImage(f"{what}: no LZO header", offset=offset)
    total = int.from_bytes(raw[:_LZO_LEN], "little")
    if total > len(raw) or total < _LZO_LEN:
        raise CorruptImage(f"{what}: LZO data of {total} bytes in an extent of {len(raw)}", offset=offset)
    from ... import lzo  # only for LZO extents: start-up

    out = []
    produced = 0
    pos = _LZO_LEN
    while pos < total and produced < size:  # each step consumes a header and >= 1 byte
        if sectorsize - pos % sectorsize < _LZO_LEN:
            pos += sectorsize - pos % sectorsize
            continue
        if pos + _LZO_LEN > total:
            raise CorruptImage(f"{what}: LZO segment header cut short", offset=offset)
        seg = int.from_bytes(raw[pos : pos + _LZO_LEN], "little")
        pos += _LZO_LEN
        if seg == 0 or pos + seg > total:
            raise CorruptImage(f"{what}: LZO segment of {seg} bytes at {pos}", offset=offset)
        data = lzo.decompress(raw[pos : pos + seg], min(sectorsize, size - produced), what=what, offset=offset)
        out.append(data)
        produced += len(data)
        pos += seg
    return b"".join(out)
