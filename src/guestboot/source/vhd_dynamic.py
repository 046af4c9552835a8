"""Dynamic and differencing VHD disks: a footer copy at offset 0, a dynamic disk header,
the Block Allocation Table, and blocks of data each behind a sector bitmap.

Layout: Microsoft "Virtual Hard Disk Image Format Specification" (2006), "Dynamic Disk
Header Format", "Block Allocation Table and Data Blocks", "Implementing a Differencing
Hard Disk". A sector whose bitmap bit is clear reads as zeros in a dynamic disk and from
the parent in a differencing disk; the parent is found through the header's parent
locators (the relative Windows path first) and opened through the opener.
"""

from __future__ import annotations

import struct
from typing import Iterator, NamedTuple

from ..errors import CorruptImage, LimitExceeded
from ..limits import LIMITS
from .base import ByteSource
from .mapped import ImageCache, MappedSource, Piece, Table, below, check_inside
from .opener import Opener
from .vhd import DISK_DIFFERENCING, Footer, ones_complement

SECTOR = 512
HEADER_SIZE = 1024
HEADER_COOKIE = b"cxsparse"
# "Dynamic Disk Header Format": Cookie, Data Offset, Table Offset, Header Version, Max
# Table Entries, Block Size, Checksum, Parent Unique ID, Parent Time Stamp, Reserved,
# Parent Unicode Name (UTF-16 big-endian), Parent Locator Entries (8 x 24), Reserved
HEADER = struct.Struct(">8sQQIIII16sI4x512s192s256x")
HEADER_CHECKSUM_OFFSET = 36
# "Parent Locator Entry": Platform Code, Platform Data Space, Platform Data Length,
# Reserved, Platform Data Offset
LOCATOR = struct.Struct(">4sIIIQ")
UNUSED = 0xFFFFFFFF  # a BAT entry for a block that is not allocated
# which locators name the parent, in the order tried: the relative Windows path (UTF-16
# little-endian), then the Mac OS X file URL (UTF-8); an absolute Windows path ("W2ku")
# names a place on another machine and is used only for its last component
LOCATOR_ORDER = (b"W2ru", b"MacX", b"W2ku")


class DynamicHeader(NamedTuple):
    table_offset: int
    max_table_entries: int
    block_size: int
    parent_unique_id: bytes
    parent_name: bytes
    locators: tuple[tuple[bytes, int, int], ...]  # (platform code, data length, data offset)

    @classmethod
    def read(cls, image: ByteSource, at: int) -> "DynamicHeader":
        if at % SECTOR or at + HEADER_SIZE > image.size:
            raise CorruptImage(f"VHD dynamic disk header at {at}: unaligned or past the end of the file",
                               where=image.name, offset=at)
        raw = image.pread(at, HEADER_SIZE)
        (cookie, _data_offset, table_offset, _version, entries, block_size, checksum, parent_id, _time, parent_name,
         locators, ) = HEADER.unpack(raw)
        if cookie != HEADER_COOKIE:
            raise CorruptImage("VHD dynamic disk header: no \"cxsparse\" cookie", where=image.name, offset=at)
        computed = ones_complement(raw, HEADER_CHECKSUM_OFFSET)
        if checksum != computed:
            raise CorruptImage(f"VHD dynamic disk header: checksum {checksum:#010x}, the bytes sum to {computed:#010x}",
                               where=image.name, offset=at + HEADER_CHECKSUM_OFFSET)
        found = []
        for index in range(8):
            code, _space, length, _reserved, offset = LOCATOR.unpack_from(locators, index * LOCATOR.size)
            if code != bytes(4):
                found.append((code, length, offset))
        return cls(table_offset, entries, block_size, parent_id, parent_name, tuple(found))


def open_dynamic(image: ByteSource, footer: Footer, footer_at: int, opener: Opener) -> ByteSource:
    header = DynamicHeader.read(image, footer.data_offset)
    parent = None
    if footer.disk_type == DISK_DIFFERENCING:
        parent = _open_parent(image, header, opener)
    return VhdDisk(image, footer, header, parent)


def _parent_names(image: ByteSource, header: DynamicHeader) -> list[str]:
    """The names the locators (and the header's parent name) give, best first."""
    names: list[str] = []
    for code in LOCATOR_ORDER:
        for found, length, offset in header.locators:
            if found != code:
                continue
            if length > LIMITS.max_descriptor_bytes or offset + length > image.size:
                raise CorruptImage(f"VHD parent locator {code.decode('latin-1')!r}: {length} bytes at {offset},"
                                   " past the end of the file", where=image.name, offset=offset)
            raw = image.pread(offset, length)
            text = raw.decode("utf-8" if code == b"MacX" else "utf-16-le", "replace").rstrip("\0")
            if code == b"MacX":
                text = text.removeprefix("file://")
            else:
                text = text.replace("\\", "/")
                if code == b"W2ku":  # "C:/dir/parent.vhd": only the name means anything here
                    text = text.rsplit("/", 1)[-1]
            if text and text not in names:
                names.append(text)
    name = header.parent_name.decode("utf-16-be", "replace").split("\0", 1)[0]
    if name and name not in names:
        names.append(name)
    return names


def _open_parent(image: ByteSource, header: DynamicHeader, opener: Opener) -> ByteSource:
    from .formats import open_related_image

    names = _parent_names(image, header)
    if not names:
        raise CorruptImage("differencing VHD: no parent locator and no parent name", where=image.name)
    parent = open_related_image(image, names[0], opener, declared_format="vhd", what="VHD parent")
    unique = getattr(parent, "unique_id", None)
    if unique is not None and unique != header.parent_unique_id:
        raise CorruptImage(f"differencing VHD: its parent {names[0]!r} is another disk (unique id"
                           f" {unique.hex()}, the header names {header.parent_unique_id.hex()})", where=image.name)
    return parent


class VhdDisk(MappedSource):
    """The disk a dynamic or differencing VHD holds."""

    def __init__(self, image: ByteSource, footer: Footer, header: DynamicHeader, parent: ByteSource | None):
        self.image = image
        self.name = image.name
        self.size = footer.current_size
        self.unique_id = footer.unique_id
        self.parent = parent
        block = header.block_size
        if block < SECTOR or block & (block - 1) or block > LIMITS.max_image_block:
            raise CorruptImage(f"VHD dynamic disk header: block size {block}", where=image.name,
                               offset=footer.data_offset + 32)
        self.block_size = block
        self.bitmap_size = max(SECTOR, -(-(block // SECTOR // 8) // SECTOR) * SECTOR)
        needed = -(-self.size // block)
        if needed * 4 > LIMITS.max_image_table:
            raise LimitExceeded(f"VHD block allocation table of {needed * 4} bytes (max_image_table)",
                                where=image.name)
        if header.max_table_entries < needed:
            raise CorruptImage(f"VHD dynamic disk header: {header.max_table_entries} table entries for a disk that"
                               f" needs {needed}", where=image.name, offset=footer.data_offset + 28)
        at = header.table_offset
        if at + needed * 4 > image.size:
            raise CorruptImage(f"VHD block allocation table at {at} ({needed} entries): past the end of the file",
                               where=image.name, offset=footer.data_offset + 16)
        self.table_offset = at
        self.cache = ImageCache()
        self.bat = Table(image, at, needed, 4, True, self.cache)

    def __repr__(self) -> str:
        return f"VhdDisk(name={self.name!r}, size={self.size}, block_size={self.block_size})"

    def _bits(self, index: int, start: int) -> str:
        """The block's sector bitmap as "0"/"1" per sector (most significant bit first)."""

        def load() -> tuple[str, int]:
            raw = self.image.pread(start, self.bitmap_size)
            sectors = self.block_size // SECTOR
            text = "".join(format(byte, "08b") for byte in raw[: -(-sectors // 8)])[:sectors]
            return text, len(text)

        return self.cache.get(("bitmap", index), load)

    def _pieces(self, offset: int, length: int) -> Iterator[Piece]:
        end = offset + length
        while offset < end:
            index, within = divmod(offset, self.block_size)
            take = min(end - offset, self.block_size - within)
            entry = self.bat[index]
            if entry == UNUSED:
                yield from self._absent(offset, take)
            else:
                start = entry * SECTOR
                data = start + self.bitmap_size
                check_inside(self.image, start, self.bitmap_size, f"VHD block {index}", where=self.name,
                             at=self.table_offset + index * 4)
                yield from self._block(index, start, data, offset, within, take)
            offset += take

    def _absent(self, offset: int, length: int) -> Iterator[Piece]:
        if self.parent is None:
            yield Piece(None, offset, length)
        else:
            yield from below(self.parent, offset, length)

    def _block(self, index: int, start: int, data: int, offset: int, within: int, take: int) -> Iterator[Piece]:
        bits = self._bits(index, start)
        end = within + take
        while within < end:
            sector = within // SECTOR
            present = bits[sector] == "1"
            run_end = bits.find("0" if present else "1", sector)
            stop = min(end, self.block_size if run_end < 0 else run_end * SECTOR)
            piece = stop - within
            if present:
                check_inside(self.image, data + within, piece, f"VHD block {index}", where=self.name,
                             at=self.table_offset + index * 4)
                yield Piece(self.image, data + within, piece)
            else:
                yield from self._absent(offset, piece)
            within += piece
            offset += piece
