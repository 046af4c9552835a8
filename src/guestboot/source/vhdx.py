"""VHDX images: fixed and dynamic disks, and differencing disks through their parent.

Layout: Microsoft [MS-VHDX] "Virtual Hard Disk v2 (VHDX) File Format" v20160714: 2.2
the file type identifier, two headers (the valid one with the higher sequence number
counts) and two region tables, each with a CRC-32C; 2.6 the metadata region (file
parameters, virtual disk size, logical sector size, parent locator); 2.5 the Block
Allocation Table, whose payload block entries are interleaved with one sector bitmap
entry per chunk. A log that still holds entries (a header's LogGuid is not zero) means
writes that were never applied: reported (Unsupported), never replayed, since the disk's
bytes would be wrong without them.
"""

from __future__ import annotations

import struct
from typing import Iterator, NamedTuple

from ..errors import CorruptImage, LimitExceeded, Unsupported
from ..limits import LIMITS
from .base import ByteSource
from .mapped import ImageCache, MappedSource, Piece, Table, below, check_inside
from .opener import Opener

KiB = 1024
MiB = 1024 * KiB
SIGNATURE = b"vhdxfile"
HEADER_OFFSETS = (64 * KiB, 128 * KiB)
HEADER_SIZE = 4 * KiB
# 2.2.2 "Headers": Signature "head", Checksum, SequenceNumber, FileWriteGuid, DataWriteGuid,
# LogGuid, LogVersion, Version, LogLength, LogOffset
HEADER = struct.Struct("<4sIQ16s16s16sHHIQ")
REGION_OFFSETS = (192 * KiB, 256 * KiB)
REGION_SIZE = 64 * KiB
REGION_HEADER = struct.Struct("<4sIII")  # 2.2.3 "Region Table": Signature "regi", Checksum, EntryCount, Reserved
REGION_ENTRY = struct.Struct("<16sQII")  # Guid, FileOffset, Length, Required (bit 0)
MAX_REGIONS = 2047  # 2.2.3.1: EntryCount must be at most 2047
METADATA_HEADER = struct.Struct("<8sHH20x")  # 2.6.1.1: Signature "metadata", Reserved, EntryCount
METADATA_ENTRY = struct.Struct("<16sIII4x")  # 2.6.1.2: ItemId, Offset, Length, flags (IsRequired: bit 2)
METADATA_TABLE_SIZE = 64 * KiB
MAX_METADATA_ENTRIES = 2047
LOCATOR_HEADER = struct.Struct("<16sHH")  # 2.6.2.6: LocatorType, Reserved, KeyValueCount
LOCATOR_ENTRY = struct.Struct("<IIHH")  # KeyOffset, ValueOffset, KeyLength, ValueLength

# 2.5.1 BAT entry states (bits 0-2); FileOffsetMB in bits 20-63
PAYLOAD_NOT_PRESENT, PAYLOAD_UNDEFINED, PAYLOAD_ZERO, PAYLOAD_UNMAPPED = 0, 1, 2, 3
PAYLOAD_FULLY_PRESENT, PAYLOAD_PARTIALLY_PRESENT = 6, 7
SB_PRESENT = 6
CHUNK_SECTORS = 1 << 23  # 2.5: sectors one sector bitmap block (1 MiB of bits) describes


def _guid(text: str) -> bytes:
    """A GUID as it is stored on disk: the first three fields little-endian."""
    a, b, c, d, e = text.split("-")
    return int(a, 16).to_bytes(4, "little") + int(b, 16).to_bytes(2, "little") + \
        int(c, 16).to_bytes(2, "little") + bytes.fromhex(d + e)


BAT_REGION = _guid("2DC27766-F623-4200-9D64-115E9BFD4A08")
METADATA_REGION = _guid("8B7CA206-4790-4B9A-B8FE-575F050F886E")
FILE_PARAMETERS = _guid("CAA16737-FA36-4D43-B3B6-33F0AA44E76B")
VIRTUAL_DISK_SIZE = _guid("2FA54224-CD1B-4876-B211-5DBED83BF4B8")
VIRTUAL_DISK_ID = _guid("BECA12AB-B2E6-4523-93EF-C309E000C746")
LOGICAL_SECTOR_SIZE = _guid("8141BF1D-A96F-4709-BA47-F233A8FAAB5F")
PHYSICAL_SECTOR_SIZE = _guid("CDA348C7-445D-4471-9CC9-E9885251C556")
PARENT_LOCATOR = _guid("A8D35F2D-B30B-454D-ABF7-D3D84834AB0C")
VHDX_PARENT_LOCATOR_TYPE = _guid("B04AEFB7-D19E-4A81-B789-25B8E9445913")
KNOWN_ITEMS = {FILE_PARAMETERS, VIRTUAL_DISK_SIZE, VIRTUAL_DISK_ID, LOGICAL_SECTOR_SIZE, PHYSICAL_SECTOR_SIZE,
               PARENT_LOCATOR}


def detect(image: ByteSource) -> bool:
    return image.size >= 8 and image.pread(0, 8) == SIGNATURE


def _crc_ok(raw: bytes, checksum_at: int) -> bool:
    from ..crc32c import crc32c

    stored = int.from_bytes(raw[checksum_at : checksum_at + 4], "little")
    return crc32c(raw[:checksum_at] + bytes(4) + raw[checksum_at + 4 :]) == stored


class Header(NamedTuple):
    sequence: int
    data_write_guid: bytes
    log_guid: bytes
    version: int


def _current_header(image: ByteSource) -> Header:
    """2.2.2.1: of the two headers, the valid one with the larger sequence number."""
    best: Header | None = None
    for at in HEADER_OFFSETS:
        if at + HEADER_SIZE > image.size:
            continue
        raw = image.pread(at, HEADER_SIZE)
        signature, _checksum, sequence, _file_guid, data_guid, log_guid, _log_version, version, _log_length, \
            _log_offset = HEADER.unpack_from(raw)
        if signature != b"head" or not _crc_ok(raw, 4):
            continue
        if best is None or sequence > best.sequence:
            best = Header(sequence, data_guid, log_guid, version)
    if best is None:
        raise CorruptImage("VHDX: neither header is valid (signature, CRC-32C)", where=image.name,
                           offset=HEADER_OFFSETS[0])
    if best.version != 1:
        raise Unsupported(f"VHDX header version {best.version}", where=image.name)
    return best


def _regions(image: ByteSource) -> dict[bytes, tuple[int, int]]:
    """The region table (the first valid copy): GUID → (file offset, length)."""
    for at in REGION_OFFSETS:
        if at + REGION_SIZE > image.size:
            continue
        raw = image.pread(at, REGION_SIZE)
        signature, _checksum, count, _reserved = REGION_HEADER.unpack_from(raw)
        if signature != b"regi" or not _crc_ok(raw, 4):
            continue
        if count > MAX_REGIONS:
            raise CorruptImage(f"VHDX region table: {count} entries (at most {MAX_REGIONS})", where=image.name,
                               offset=at + 8)
        found: dict[bytes, tuple[int, int]] = {}
        for index in range(count):
            guid, offset, length, required = REGION_ENTRY.unpack_from(raw, REGION_HEADER.size + index * 32)
            if guid in (BAT_REGION, METADATA_REGION):
                found[guid] = (offset, length)
            elif required & 1:
                raise Unsupported(f"VHDX: a required region we do not know ({guid.hex()})", where=image.name)
        for guid, what in ((BAT_REGION, "BAT"), (METADATA_REGION, "metadata")):
            if guid not in found:
                raise CorruptImage(f"VHDX region table: no {what} region", where=image.name, offset=at)
        return found
    raise CorruptImage("VHDX: neither region table is valid (signature, CRC-32C)", where=image.name,
                       offset=REGION_OFFSETS[0])


def _metadata(image: ByteSource, offset: int, length: int) -> dict[bytes, bytes]:
    """2.6: the metadata items we know, by item id; an unknown required item is Unsupported."""
    if length < METADATA_TABLE_SIZE or offset + length > image.size:
        raise CorruptImage(f"VHDX metadata region of {length} bytes at {offset}: too small or past the end",
                           where=image.name, offset=offset)
    raw = image.pread(offset, METADATA_TABLE_SIZE)
    signature, _reserved, count = METADATA_HEADER.unpack_from(raw)
    if signature != b"metadata" or count > MAX_METADATA_ENTRIES:
        raise CorruptImage(f"VHDX metadata table: signature {signature!r}, {count} entries", where=image.name,
                           offset=offset)
    items: dict[bytes, bytes] = {}
    for index in range(count):
        item, item_offset, item_length, flags = METADATA_ENTRY.unpack_from(raw, 32 + index * 32)
        if item not in KNOWN_ITEMS:
            if flags & 4:
                raise Unsupported(f"VHDX: a required metadata item we do not know ({item.hex()})", where=image.name)
            continue
        if item_length > LIMITS.max_descriptor_bytes or item_offset + item_length > length:
            raise CorruptImage(f"VHDX metadata item of {item_length} bytes at {item_offset}: outside the region",
                               where=image.name, offset=offset + 32 + index * 32)
        items[item] = image.pread(offset + item_offset, item_length)
    return items


def _item(items: dict[bytes, bytes], key: bytes, size: int, what: str, image: ByteSource) -> bytes:
    value = items.get(key)
    if value is None or len(value) < size:
        raise CorruptImage(f"VHDX metadata: no {what}", where=image.name)
    return value


def _locator(image: ByteSource, raw: bytes) -> dict[str, str]:
    """2.6.2.6: the parent locator's keys and values (UTF-16 little-endian)."""
    if len(raw) < LOCATOR_HEADER.size:
        raise CorruptImage("VHDX parent locator: too short", where=image.name)
    kind, _reserved, count = LOCATOR_HEADER.unpack_from(raw)
    if kind != VHDX_PARENT_LOCATOR_TYPE:
        raise Unsupported(f"VHDX parent locator of type {kind.hex()}", where=image.name)
    pairs: dict[str, str] = {}
    for index in range(count):
        at = LOCATOR_HEADER.size + index * LOCATOR_ENTRY.size
        if at + LOCATOR_ENTRY.size > len(raw):
            raise CorruptImage(f"VHDX parent locator: {count} entries do not fit", where=image.name)
        key_at, value_at, key_length, value_length = LOCATOR_ENTRY.unpack_from(raw, at)
        if key_at + key_length > len(raw) or value_at + value_length > len(raw):
            raise CorruptImage("VHDX parent locator: a key or value outside the item", where=image.name)
        key = raw[key_at : key_at + key_length].decode("utf-16-le", "replace")
        pairs.setdefault(key, raw[value_at : value_at + value_length].decode("utf-16-le", "replace"))
    return pairs


def open(image: ByteSource, opener: Opener) -> ByteSource:
    header = _current_header(image)
    if header.log_guid != bytes(16):
        raise Unsupported("VHDX image: its log holds writes that were never applied (not closed cleanly); they"
                          " are not replayed here: open it once with Hyper-V or `qemu-img check -r all`",
                          where=image.name)
    regions = _regions(image)
    items = _metadata(image, *regions[METADATA_REGION])
    block_size, flags = struct.unpack_from("<II", _item(items, FILE_PARAMETERS, 8, "file parameters", image))
    size = int.from_bytes(_item(items, VIRTUAL_DISK_SIZE, 8, "virtual disk size", image)[:8], "little")
    sector = int.from_bytes(_item(items, LOGICAL_SECTOR_SIZE, 4, "logical sector size", image)[:4], "little")
    if sector not in (512, 4096):
        raise CorruptImage(f"VHDX metadata: logical sector size {sector}", where=image.name)
    if block_size < MiB or block_size > LIMITS.max_image_block or block_size & (block_size - 1):
        raise CorruptImage(f"VHDX metadata: block size {block_size} (1 MiB to 256 MiB, a power of 2)",
                           where=image.name)
    if size % sector or size > (64 << 40):
        raise CorruptImage(f"VHDX metadata: virtual disk size {size}", where=image.name)
    parent = None
    if flags & 2:  # HasParent: a differencing disk
        parent = _open_parent(image, items, opener)
    return VhdxDisk(image, regions[BAT_REGION], block_size, sector, size, parent)


def _open_parent(image: ByteSource, items: dict[bytes, bytes], opener: Opener) -> ByteSource:
    from .formats import open_related_image

    if PARENT_LOCATOR not in items:
        raise CorruptImage("differencing VHDX without a parent locator", where=image.name)
    pairs = _locator(image, items[PARENT_LOCATOR])
    names = [pairs[key].replace("\\", "/") for key in ("relative_path",) if pairs.get(key)]
    absolute = pairs.get("absolute_win32_path") or pairs.get("volume_path")
    if absolute:  # a path on the machine that made the image: only its last component means anything here
        names.append(absolute.replace("\\", "/").rsplit("/", 1)[-1])
    if not names:
        raise CorruptImage("VHDX parent locator names no file", where=image.name)
    parent = open_related_image(image, names[0], opener, declared_format="vhdx", what="VHDX parent")
    linkage = pairs.get("parent_linkage", "").strip("{}").upper()
    found = getattr(parent, "data_write_guid", None)
    if linkage and found is not None and _guid(linkage) != found:
        raise CorruptImage(f"differencing VHDX: its parent {names[0]!r} is another disk (parent_linkage {linkage})",
                           where=image.name)
    return parent


class VhdxDisk(MappedSource):
    """The disk a VHDX image holds."""

    def __init__(self, image: ByteSource, bat: tuple[int, int], block_size: int, sector: int, size: int,
                 parent: ByteSource | None):
        self.image = image
        self.name = image.name
        self.size = size
        self.parent = parent
        self.block_size = block_size
        self.sector = sector
        self.data_write_guid = _current_header(image).data_write_guid
        self.chunk_ratio = CHUNK_SECTORS * sector // block_size  # 2.5: payload blocks per sector bitmap block
        blocks = -(-size // block_size)
        if parent is None:
            entries = blocks + (blocks - 1) // self.chunk_ratio if blocks else 0
        else:
            entries = -(-blocks // self.chunk_ratio) * (self.chunk_ratio + 1)
        offset, length = bat
        if entries * 8 > LIMITS.max_image_table:
            raise LimitExceeded(f"VHDX BAT of {entries * 8} bytes (max_image_table)", where=image.name)
        if entries * 8 > length or offset + entries * 8 > image.size:
            raise CorruptImage(f"VHDX BAT region of {length} bytes at {offset} for {entries} entries: too small or"
                               " past the end of the file", where=image.name, offset=offset)
        self.bat_offset = offset
        self.cache = ImageCache()
        self.bat = Table(image, offset, entries, 8, False, self.cache)

    def __repr__(self) -> str:
        return f"VhdxDisk(name={self.name!r}, size={self.size}, block_size={self.block_size})"

    def _entry(self, index: int) -> tuple[int, int, int]:
        """(state, file offset, BAT index) of the payload block ``index``."""
        at = index + index // self.chunk_ratio
        entry = self.bat[at]
        return entry & 7, (entry >> 20) * MiB, at

    def _pieces(self, offset: int, length: int) -> Iterator[Piece]:
        end = offset + length
        while offset < end:
            index, within = divmod(offset, self.block_size)
            take = min(end - offset, self.block_size - within)
            state, host, at = self._entry(index)
            if state == PAYLOAD_FULLY_PRESENT:
                yield self._plain(host + within, take, at)
            elif state == PAYLOAD_PARTIALLY_PRESENT and self.parent is not None:
                yield from self._partial(index, host, offset, within, take, at)
            elif state == PAYLOAD_NOT_PRESENT and self.parent is not None:
                yield from below(self.parent, offset, take)
            elif state in (PAYLOAD_NOT_PRESENT, PAYLOAD_UNDEFINED, PAYLOAD_ZERO, PAYLOAD_UNMAPPED):
                yield Piece(None, offset, take)
            else:
                raise CorruptImage(f"VHDX BAT entry {at}: state {state}", where=self.name,
                                   offset=self.bat_offset + at * 8)
            offset += take

    def _plain(self, at: int, length: int, entry: int) -> Piece:
        check_inside(self.image, at, length, f"VHDX BAT entry {entry}", where=self.name,
                     at=self.bat_offset + entry * 8)
        return Piece(self.image, at, length)

    def _partial(self, index: int, host: int, offset: int, within: int, take: int, at: int) -> Iterator[Piece]:
        """2.5.2: a bit per logical sector in the chunk's sector bitmap block (least
        significant bit first): set, the sector is in this file; clear, in the parent."""
        bits = self._bitmap(index // self.chunk_ratio)
        first = (index % self.chunk_ratio) * (self.block_size // self.sector)
        end = within + take
        while within < end:
            sector = first + within // self.sector
            present = bits[sector] == "1"
            run_end = bits.find("0" if present else "1", sector)
            limit = first + self.block_size // self.sector
            stop_sector = limit if run_end < 0 or run_end > limit else run_end
            stop = min(end, (stop_sector - first) * self.sector)
            piece = stop - within
            if present:
                yield self._plain(host + within, piece, at)
            else:
                yield from below(self.parent, offset, piece)
            within += piece
            offset += piece

    def _bitmap(self, chunk: int) -> str:
        at = chunk * (self.chunk_ratio + 1) + self.chunk_ratio
        entry = self.bat[at] if at < len(self.bat) else 0
        if entry & 7 != SB_PRESENT:
            raise CorruptImage(f"VHDX: a partially present block whose sector bitmap (BAT entry {at}) is absent",
                               where=self.name, offset=self.bat_offset + at * 8)
        host = (entry >> 20) * MiB

        def load() -> tuple[str, int]:
            check_inside(self.image, host, MiB, f"VHDX sector bitmap {chunk}", where=self.name,
                         at=self.bat_offset + at * 8)
            raw = self.image.pread(host, MiB)
            text = "".join(format(byte, "08b")[::-1] for byte in raw)
            return text, len(text)

        return self.cache.get(("sb", chunk), load)
