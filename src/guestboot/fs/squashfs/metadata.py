"""Metadata blocks and a cursor over a table of them (squashfs.rst, "Metadata blocks").

The inode, directory and fragment tables are sequences of metadata blocks: a 2-byte
header (bit 15: stored uncompressed; bits 0-14: bytes on disk) and at most 8 KiB of data
once decoded. Blocks follow one another, so a walk through a table only moves forward: a
chain cannot loop, and every block must lie inside the table's byte range. Every block
decoded (not those found in the cache) is charged to the image's metadata total
(fs/budget.py, max_meta_bytes_total), as other drivers charge their tree blocks.
"""

from __future__ import annotations

from ...errors import CorruptImage
from ...source import ByteSource
from ..budget import charge_metadata
from ..cache import LRU
from .decode import decompress
from .layout import METADATA_HEADER, METADATA_LENGTH_MASK, METADATA_SIZE, METADATA_UNCOMPRESSED

_BLOCK_CACHE = 64  # decoded metadata blocks kept (8 KiB each: 512 KiB at most)


class MetadataReader:
    """Decodes metadata blocks of one volume, caching the last few by position."""

    __slots__ = ("source", "compression", "_cache")

    def __init__(self, source: ByteSource, compression: int):
        self.source = source
        self.compression = compression
        self._cache: LRU[int, tuple[bytes, int]] = LRU(_BLOCK_CACHE)

    def block(self, pos: int, end: int, what: str) -> tuple[bytes, int]:
        """The decoded block whose header is at byte ``pos`` (which must lie below ``end``,
        the end of its table) and the position of the block after it."""
        cached = self._cache.get(pos)
        if cached is not None:
            return cached
        if pos < 0 or pos + METADATA_HEADER.size > end:
            raise CorruptImage(f"{what}: metadata block at {pos} outside its table (ends at {end})",
                               where=self.source.name, offset=max(pos, 0))
        (header,) = METADATA_HEADER.unpack(self.source.pread(pos, METADATA_HEADER.size))
        length = header & METADATA_LENGTH_MASK
        start = pos + METADATA_HEADER.size
        if length == 0 or length > METADATA_SIZE or start + length > end:
            raise CorruptImage(f"{what}: metadata block header says {length} bytes (at most {METADATA_SIZE},"
                               f" table ends at {end})", where=self.source.name, offset=pos)
        charge_metadata(METADATA_SIZE, f"{self.source.name}: {what}", pos)  # what decoding may produce
        raw = self.source.pread(start, length)
        if header & METADATA_UNCOMPRESSED:
            data = raw
        else:
            data = decompress(self.compression, raw, METADATA_SIZE, what=f"{what}: metadata block",
                              where=self.source.name, offset=pos)
        if not data:
            raise CorruptImage(f"{what}: metadata block decodes to nothing", where=self.source.name, offset=pos)
        entry = (data, start + length)
        self._cache.put(pos, entry)
        return entry


class Cursor:
    """A read position in a table of metadata blocks: ``pos`` is the byte position of the
    current block's header, ``offset`` the position in its decoded data. ``read`` moves
    forward through following blocks; every call reads what it is asked, or raises."""

    __slots__ = ("reader", "end", "pos", "offset", "what")

    def __init__(self, reader: MetadataReader, end: int, pos: int, offset: int, what: str):
        self.reader = reader
        self.end = end
        self.pos = pos
        self.offset = offset
        self.what = what

    def read(self, length: int) -> bytes:
        parts = []
        need = length
        while need:  # each turn takes >= 1 byte or moves to a later block (pos grows)
            data, following = self.reader.block(self.pos, self.end, self.what)
            if self.offset > len(data):
                raise CorruptImage(
                    f"{self.what}: offset {self.offset} past the {len(data)} bytes of its metadata block",
                    where=self.reader.source.name, offset=self.pos)
            piece = data[self.offset : self.offset + need]
            if not piece:
                self.pos, self.offset = following, 0
                continue
            parts.append(piece)
            need -= len(piece)
            self.offset += len(piece)
        return b"".join(parts)

    def place(self) -> tuple[int, int]:
        return self.pos, self.offset
