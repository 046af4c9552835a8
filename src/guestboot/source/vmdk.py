"""VMDK images: hosted sparse extents (monolithicSparse, streamOptimized with compressed
grains, twoGbMaxExtentSparse pieces) and text descriptors that list extents in other
files (monolithicFlat, twoGbMaxExtent*, vmfs), plus a parent (delta link).

Layout: VMware "Virtual Disk Format 1.1" (2007), "Hosted Sparse Extent Header", "Grain
Directories and Grain Tables", "The Descriptor File", and "Stream-Optimized Compressed
Sparse Extents" (grain markers, the footer copy of the header at the end). Extent files
and the parent come through the opener, under its policy. ESX's COWD sparse extents are
not read.
"""

from __future__ import annotations

import re
import struct
import sys
from array import array
from typing import Iterator, NamedTuple

from ..errors import CorruptImage, LimitExceeded, Unsupported
from ..limits import LIMITS
from .base import ByteSource, SliceSource, ZeroSource
from .mapped import ImageCache, MappedSource, Piece, Table, below, check_inside, words_of
from .opener import Opener

SECTOR = 512
MAGIC = b"KDMV"
DESCRIPTOR_MAGIC = b"# Disk DescriptorFile"
# "Hosted Sparse Extent Header" (little-endian): magicNumber, version, flags, capacity,
# grainSize, descriptorOffset, descriptorSize, numGTEsPerGT, rgdOffset, gdOffset,
# overHead, uncleanShutdown, the four newline-test characters, compressAlgorithm
HEADER = struct.Struct("<4sIIQQQQIQQQB4sH433x")
GRAIN_MARKER = struct.Struct("<QI")  # "Stream-Optimized": lba, size of the compressed data
GD_AT_END = 0xFFFFFFFFFFFFFFFF  # streamOptimized: the grain directory is named by the footer
FLAG_ZERO_GRAIN = 1 << 2  # a grain table entry of 1 is a grain of zeros
FLAG_COMPRESSED = 1 << 16
FLAG_MARKERS = 1 << 17
COMPRESS_DEFLATE = 1
NO_PARENT = "ffffffff"

# an extent line: access, size in sectors, type, "file name", optional start sector
_EXTENT = re.compile(r'^(RW|RDONLY|NOACCESS)\s+(\d+)\s+([A-Z]+)(?:\s+"([^"]*)"(?:\s+(\d+))?)?\s*$')
_SETTING = re.compile(r'^([A-Za-z][A-Za-z0-9_.]*)\s*=\s*"?([^"]*)"?\s*$')


class SparseHeader(NamedTuple):
    version: int
    flags: int
    capacity: int  # sectors
    grain: int  # sectors
    descriptor_offset: int
    descriptor_size: int
    gtes_per_gt: int
    gd_offset: int
    compression: int

    @classmethod
    def read(cls, extent: ByteSource, at: int = 0) -> "SparseHeader":
        if at + HEADER.size > extent.size:
            raise CorruptImage("VMDK sparse extent header: the file is too short", where=extent.name, offset=at)
        (magic, version, flags, capacity, grain, descriptor_offset, descriptor_size, gtes, _rgd, gd, _overhead,
         _unclean, _newlines, compression) = HEADER.unpack(extent.pread(at, HEADER.size))
        if magic != MAGIC:
            raise CorruptImage("VMDK sparse extent: no KDMV magic", where=extent.name, offset=at)
        return cls(version, flags, capacity, grain, descriptor_offset, descriptor_size, gtes, gd, compression)


def detect(image: ByteSource) -> bool:
    if image.size >= 4 and image.pread(0, 4) == MAGIC:
        return True
    head = image.pread(0, min(image.size, 512)).lstrip(b" \t\r\n")
    return head.startswith(DESCRIPTOR_MAGIC)


def open(image: ByteSource, opener: Opener) -> ByteSource:
    if image.pread(0, min(4, image.size)) == MAGIC:
        header = SparseHeader.read(image)
        descriptor = None
        if header.descriptor_offset and header.descriptor_size:
            descriptor = _descriptor_text(image, header.descriptor_offset * SECTOR, header.descriptor_size * SECTOR)
        parent = _parent(image, descriptor, opener) if descriptor is not None else None
        return SparseExtent(image, header, parent)
    if not detect(image):
        raise CorruptImage("VMDK image: neither a KDMV sparse extent nor a text descriptor", where=image.name,
                           offset=0)
    text = _descriptor_text(image, 0, image.size)
    parent = _parent(image, text, opener)
    return _from_descriptor(image, text, opener, parent)


def _descriptor_text(image: ByteSource, at: int, size: int) -> str:
    if size > LIMITS.max_descriptor_bytes:
        raise LimitExceeded(f"VMDK descriptor of {size} bytes (max_descriptor_bytes)", where=image.name)
    if at + size > image.size:
        raise CorruptImage(f"VMDK descriptor of {size} bytes at {at}: past the end of the file", where=image.name,
                           offset=at)
    raw = image.pread(at, size).split(b"\0", 1)[0]
    return raw.decode("utf-8", "surrogateescape")


def _settings(text: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in text.splitlines():
        match = _SETTING.match(line.strip())
        if match:
            found.setdefault(match.group(1), match.group(2))
    return found


def _parent(image: ByteSource, text: str, opener: Opener) -> ByteSource | None:
    """The parent a delta link names (parentCID other than ffffffff, parentFileNameHint)."""
    from .formats import open_related_image

    settings = _settings(text)
    if settings.get("parentCID", NO_PARENT).lower() == NO_PARENT:
        return None
    hint = settings.get("parentFileNameHint")
    if not hint:
        raise CorruptImage("VMDK descriptor: a parentCID without a parentFileNameHint", where=image.name)
    return open_related_image(image, hint, opener, declared_format="vmdk", what="VMDK parent")


def _from_descriptor(image: ByteSource, text: str, opener: Opener, parent: ByteSource | None) -> ByteSource:
    from .compose import ConcatSource

    parts: list[ByteSource] = []
    start = 0
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        match = _EXTENT.match(line)
        if not match:
            continue
        if len(parts) >= LIMITS.max_image_extents:
            raise LimitExceeded(f"VMDK descriptor lists more than {LIMITS.max_image_extents} extents"
                                " (max_image_extents)", where=image.name)
        _access, sectors, kind, name, first = match.groups()
        size = int(sectors) * SECTOR
        where = f"{image.name}: extent line {number}"
        if kind == "ZERO":
            part: ByteSource = ZeroSource(size, name=f"{image.name}:zero")
        elif kind in ("FLAT", "VMFS"):
            if name is None:
                raise CorruptImage(f"{where}: a {kind} extent without a file name")
            data = opener.open_related(name, image.name, image)
            offset = int(first or 0) * SECTOR
            if offset + size > data.size:
                raise CorruptImage(f"{where}: {size} bytes at {offset} of {name!r}, past its end"
                                   f" ({data.size} bytes)")
            part = SliceSource(data, offset, size, name=data.name)
        elif kind == "SPARSE":
            if name is None:
                raise CorruptImage(f"{where}: a SPARSE extent without a file name")
            data = opener.open_related(name, image.name, image)
            # the parent's bytes for this extent's place in the disk
            below_part = SliceSource(parent, start, min(size, max(0, parent.size - start)), name=parent.name) \
                if parent is not None and start < parent.size else None
            sparse = SparseExtent(data, SparseHeader.read(data), below_part)
            if sparse.size < size:
                raise CorruptImage(f"{where}: extent of {size} bytes, its file holds {sparse.size}")
            part = sparse if sparse.size == size else SliceSource(sparse, 0, size, name=data.name)
        else:
            raise Unsupported(f"{where}: VMDK extents of type {kind} are not read")
        parts.append(part)
        start += size
    if not parts:
        raise CorruptImage("VMDK descriptor lists no extents", where=image.name)
    return parts[0] if len(parts) == 1 else ConcatSource(parts, name=image.name)


class SparseExtent(MappedSource):
    """A hosted sparse extent: grain directory → grain tables → grains (plain, or
    compressed behind grain markers)."""

    def __init__(self, extent: ByteSource, header: SparseHeader, parent: ByteSource | None):
        self.extent = extent
        self.name = extent.name
        self.parent = parent
        if header.gd_offset == GD_AT_END:  # streamOptimized: the footer's copy is the one to use
            if extent.size < 1024:
                raise CorruptImage("streamOptimized VMDK: no footer", where=extent.name)
            header = SparseHeader.read(extent, extent.size - 1024)
            if header.gd_offset == GD_AT_END:
                raise CorruptImage("streamOptimized VMDK: the footer names no grain directory", where=extent.name,
                                   offset=extent.size - 1024)
        if header.version not in (1, 2, 3):
            raise Unsupported(f"VMDK sparse extent version {header.version}", where=extent.name)
        grain = header.grain
        if grain < 1 or grain & (grain - 1) or grain * SECTOR > LIMITS.max_image_cluster:
            raise CorruptImage(f"VMDK sparse extent header: grain of {grain} sectors", where=extent.name, offset=20)
        if not 1 <= header.gtes_per_gt or header.gtes_per_gt * 4 > LIMITS.max_image_cluster:  # one is held whole
            raise CorruptImage(f"VMDK sparse extent header: {header.gtes_per_gt} entries per grain table",
                               where=extent.name, offset=44)
        self.compressed = bool(header.flags & FLAG_COMPRESSED)
        if self.compressed and header.compression != COMPRESS_DEFLATE:
            raise Unsupported(f"VMDK compression algorithm {header.compression}", where=extent.name)
        self.markers = bool(header.flags & FLAG_MARKERS)
        self.zero_grains = bool(header.flags & FLAG_ZERO_GRAIN)
        self.grain_size = grain * SECTOR
        self.per_table = header.gtes_per_gt
        self.size = header.capacity * SECTOR
        if self.size > (1 << 62):
            raise CorruptImage(f"VMDK sparse extent header: capacity of {header.capacity} sectors", where=extent.name,
                               offset=12)
        tables = -(-self.size // (self.grain_size * self.per_table))
        if tables * 4 > LIMITS.max_image_table:
            raise LimitExceeded(f"VMDK grain directory of {tables * 4} bytes (max_image_table)", where=extent.name)
        at = header.gd_offset * SECTOR
        if at + tables * 4 > extent.size:
            raise CorruptImage(f"VMDK grain directory at {at} ({tables} entries): past the end of the file",
                               where=extent.name, offset=56)
        self.cache = ImageCache()
        self.directory = Table(extent, at, tables, 4, False, self.cache)

    def __repr__(self) -> str:
        return f"SparseExtent(name={self.name!r}, size={self.size}, grain={self.grain_size})"

    def _table(self, index: int) -> array | None:
        sector = self.directory[index]
        if sector == 0:
            return None
        at = sector * SECTOR
        size = self.per_table * 4
        if at + size > self.extent.size:
            raise CorruptImage(f"VMDK grain table {index} at {at}: past the end of the file", where=self.name,
                               offset=at)
        return self.cache.get(("gt", at), lambda: (words_of(self.extent.pread(at, size), 4, sys.byteorder == "big"),
                                                   size))

    def _pieces(self, offset: int, length: int) -> Iterator[Piece]:
        end = offset + length
        grain_size = self.grain_size
        while offset < end:
            grain, within = divmod(offset, grain_size)
            take = min(end - offset, grain_size - within)
            table_index, entry_index = divmod(grain, self.per_table)
            table = self._table(table_index)
            entry = 0 if table is None else table[entry_index]
            if entry == 0:
                yield from below(self.parent, offset, take)
            elif entry == 1 and self.zero_grains:
                yield Piece(None, offset, take)
            elif self.compressed:
                yield Piece(None, offset, take, self._inflate(grain, entry * SECTOR)[within : within + take])
            else:
                at = entry * SECTOR + within
                check_inside(self.extent, at, take, f"VMDK grain {grain}", where=self.name, at=at)
                yield Piece(self.extent, at, take)
            offset += take

    def _inflate(self, grain: int, at: int) -> bytes:
        def load() -> tuple[bytes, int]:
            from .. import codec

            if at + GRAIN_MARKER.size > self.extent.size:
                raise CorruptImage(f"VMDK compressed grain {grain} at {at}: past the end of the file",
                                   where=self.name, offset=at)
            lba, size = GRAIN_MARKER.unpack(self.extent.pread(at, GRAIN_MARKER.size))
            if lba * SECTOR != grain * self.grain_size:
                raise CorruptImage(f"VMDK compressed grain {grain}: its marker says sector {lba}", where=self.name,
                                   offset=at)
            if size > 2 * self.grain_size + SECTOR or at + GRAIN_MARKER.size + size > self.extent.size:
                raise CorruptImage(f"VMDK compressed grain {grain}: {size} bytes, more than a grain may take or"
                                   " past the end of the file", where=self.name, offset=at + 8)
            packed = self.extent.pread(at + GRAIN_MARKER.size, size)
            # the last grain of a disk that is not a whole number of grains holds only the rest
            want = min(self.grain_size, self.size - grain * self.grain_size)
            data = codec.zlib_exact(packed, want, what=f"{self.name}: VMDK compressed grain {grain}", offset=at)
            return data, len(data)

        return self.cache.get(("grain", at), load)

