"""LVM2 physical-volume labels and metadata areas: where a PV's text metadata is.

On-disk layout (lvm2's lib/label/label.h and lib/format_text/layout.h, and lvm(8)):
a PV has a 512-byte label in one of its first four sectors: ``label_header`` ("LABELONE",
the sector it is in, a CRC over the rest of the sector, the offset of the ``pv_header``,
"LVM2 001"), then the ``pv_header``: the PV's UUID (32 characters), its size and two
zero-terminated lists of ``disk_locn`` (offset, size): data areas, then metadata areas.
A metadata area starts with an ``mda_header`` (CRC, magic " LVM2 x[5A%r0N*>", version 1,
its own start and size, ``raw_locn`` records); ``raw_locn[0]`` says where in the area the
current text metadata is (a ring buffer after the 512-byte header: text that runs past
the area's end continues right after the header), its size and CRC. Every CRC is lvm2's
calc_crc: CRC-32 (the zlib polynomial) started at 0xf597a6cf, without the final inversion.
The text of one copy is at most LIMITS.max_lvm_metadata_bytes; all copies read in one
discovery share a budget of LIMITS.max_lvm_metadata_total bytes.
"""

from __future__ import annotations

import struct
import zlib
from typing import NamedTuple

from ..errors import CorruptImage, LimitExceeded
from ..limits import LIMITS
from ..source import ByteSource
from .base import Volume

SECTOR = 512
LABEL_SCAN_SECTORS = 4  # label.h: LABEL_SCAN_SECTORS
LABEL_ID = b"LABELONE"
LABEL_TYPE = b"LVM2 001"
# label.h struct label_header: id[8], sector_xl, crc_xl, offset_xl, type[8]
LABEL_HEADER = struct.Struct("<8sQII8s")
LABEL_CRC_FROM = 20  # the CRC covers the sector from the byte after crc_xl
# layout.h struct pv_header: pv_uuid[32], device_size_xl, then disk_locn lists
PV_HEADER = struct.Struct("<32sQ")
DISK_LOCN = struct.Struct("<QQ")  # offset, size (bytes)
# layout.h struct mda_header: checksum_xl, magic[16], version, start, size, raw_locns[]
MDA_HEADER = struct.Struct("<I16sIQQ")
MDA_HEADER_SIZE = 512
MDA_MAGIC = b" LVM2 x[5A%r0N*>"
MDA_VERSION = 1
RAW_LOCN = struct.Struct("<QQII")  # offset (from the area's start), size, checksum, flags
RAW_LOCN_IGNORED = 1
INITIAL_CRC = 0xF597A6CF  # lvm2 lib/misc/crc.h


def lvm_crc(data: bytes, crc: int = INITIAL_CRC) -> int:
    """lvm2's calc_crc: the zlib CRC-32 without its pre- and post-inversion."""
    return zlib.crc32(data, crc ^ 0xFFFFFFFF) ^ 0xFFFFFFFF


def _uuid(raw: str) -> str:
    """A 32-character LVM UUID in lvm2's printed form (6-4-4-4-4-4-6)."""
    cuts = (6, 4, 4, 4, 4, 4, 6)
    parts, at = [], 0
    for n in cuts:
        parts.append(raw[at : at + n])
        at += n
    return "-".join(parts)


class PhysicalVolume(NamedTuple):
    """What a PV's label says: its UUID (printed form), and the metadata text of its first
    metadata area (None when it keeps none)."""

    volume: Volume
    uuid: str
    metadata: bytes | None


def read_label(volume: Volume, budget: list[int]) -> PhysicalVolume | None:
    """The PV label of ``volume``, or None when it has none. A label that is there but
    damaged, or metadata that cannot be read, is CorruptImage / LimitExceeded."""
    source = volume.source
    where = f"({volume.device})"
    head = source.pread(0, min(source.size, LABEL_SCAN_SECTORS * SECTOR))
    for sector in range(len(head) // SECTOR):
        raw = head[sector * SECTOR : (sector + 1) * SECTOR]
        ident, sector_xl, crc, offset, kind = LABEL_HEADER.unpack_from(raw)
        if ident == LABEL_ID and kind == LABEL_TYPE:
            break
    else:
        return None
    at = sector * SECTOR
    if lvm_crc(raw[LABEL_CRC_FROM:]) != crc:
        raise CorruptImage("LVM2 label CRC does not match", where=where, offset=at + 16)
    if sector_xl != sector:
        raise CorruptImage(f"LVM2 label in sector {sector} says it is in sector {sector_xl}", where=where, offset=at)
    if not LABEL_HEADER.size <= offset <= SECTOR - PV_HEADER.size - 2 * DISK_LOCN.size:
        raise CorruptImage(f"LVM2 label puts its PV header at {offset}", where=where, offset=at + 20)
    uuid_raw, _device_size = PV_HEADER.unpack_from(raw, offset)
    uuid = _uuid(uuid_raw.decode("ascii", "replace"))
    areas = _disk_locn_lists(raw, offset + PV_HEADER.size, where, at)
    # the first metadata area, as GRUB reads; a second copy (pvcreate --metadatacopies 2
    # keeps one at the end of the PV) stands in when the first is damaged, as lvm2 allows
    first_error: CorruptImage | None = None
    for mda_offset, mda_size in areas[1][:2]:
        try:
            return PhysicalVolume(volume, uuid, _read_metadata(source, mda_offset, mda_size, where, budget))
        except CorruptImage as err:
            first_error = first_error or err
    if first_error is not None:
        raise first_error
    return PhysicalVolume(volume, uuid, None)


def _disk_locn_lists(raw: bytes, pos: int, where: str, at: int) -> tuple[list, list]:
    """The data-area and metadata-area lists of a pv_header (each ends with a zero offset)."""
    lists: tuple[list, list] = ([], [])
    for current in lists:
        while True:
            if pos + DISK_LOCN.size > len(raw):
                raise CorruptImage("LVM2 PV header's area lists run past its sector", where=where, offset=at)
            offset, size = DISK_LOCN.unpack_from(raw, pos)
            pos += DISK_LOCN.size
            if offset == 0:
                break
            current.append((offset, size))
    return lists


def _read_metadata(source: ByteSource, start: int, size: int, where: str, budget: list[int]) -> bytes | None:
    """The current text metadata in the metadata area at ``start`` (None when ignored)."""
    if size < MDA_HEADER_SIZE or start + size > source.size:
        raise CorruptImage(
            f"LVM2 metadata area of {size} bytes at {start} lies outside the volume ({source.size} bytes)",
            where=where, offset=start,
        )
    header = source.pread(start, MDA_HEADER_SIZE)
    checksum, magic, version, mda_start, mda_size = MDA_HEADER.unpack_from(header)
    if magic != MDA_MAGIC or version != MDA_VERSION:
        raise CorruptImage("LVM2 metadata area has no ' LVM2 x[5A%r0N*>' version 1 header", where=where, offset=start)
    if lvm_crc(header[4:]) != checksum:
        raise CorruptImage("LVM2 metadata area header CRC does not match", where=where, offset=start)
    if mda_start != start or mda_size != size:
        raise CorruptImage(
            f"LVM2 metadata area header says it is {mda_size} bytes at {mda_start}", where=where, offset=start
        )
    text_offset, text_size, text_crc, flags = RAW_LOCN.unpack_from(header, MDA_HEADER.size)
    if flags & RAW_LOCN_IGNORED or text_offset == 0:
        return None
    if text_size > LIMITS.max_lvm_metadata_bytes:
        raise LimitExceeded(
            f"LVM2 metadata text of {text_size} bytes (max_lvm_metadata_bytes = {LIMITS.max_lvm_metadata_bytes})",
            where=where, offset=start + text_offset,
        )
    ring = size - MDA_HEADER_SIZE
    if not MDA_HEADER_SIZE <= text_offset < size or text_size > ring:
        raise CorruptImage(
            f"LVM2 metadata text of {text_size} bytes at {text_offset} does not fit its area ({size} bytes)",
            where=where, offset=start,
        )
    budget[0] -= text_size
    if budget[0] < 0:
        raise LimitExceeded(
            f"more than {LIMITS.max_lvm_metadata_total} bytes of LVM2 metadata (max_lvm_metadata_total)", where=where
        )
    first = min(text_size, size - text_offset)
    text = source.pread(start + text_offset, first)
    if first < text_size:  # wrapped round the ring: the rest follows the header
        text += source.pread(start + MDA_HEADER_SIZE, text_size - first)
    if lvm_crc(text) != text_crc:
        raise CorruptImage("LVM2 metadata text CRC does not match", where=where, offset=start + text_offset)
    return text.rstrip(b"\0")
