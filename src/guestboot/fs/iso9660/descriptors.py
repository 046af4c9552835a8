"""The volume descriptor set (ECMA-119 6.7, 8): which tree is read, the label and the UUID.

GRUB (grub-core/fs/iso9660.c) reads the set from block 16 to the terminator; it takes the
primary descriptor, looks for Rock Ridge in the "." record of its root (an SP entry first,
then an ER entry), and only when there is none takes a Joliet supplementary descriptor
instead. We choose the same way: Rock Ridge names over Joliet names over plain ISO 9660
names. The label is the chosen descriptor's volume identifier (UCS-2 for Joliet), trailing
spaces dropped; the UUID is its modification date as GRUB prints it,
"YYYY-MM-DD-hh-mm-ss-cc", and there is none when the date is all NUL bytes.
"""

from __future__ import annotations

import encodings.utf_16_be  # noqa: F401 (Joliet names: loaded before a sandbox drops privileges)
from typing import NamedTuple

from ...errors import CorruptImage, LimitExceeded, Unsupported
from ...limits import LIMITS
from ...source import ByteSource
from .layout import (
    BLOCK_SIZE,
    BOOT_RECORD,
    DESCRIPTOR_HEADER,
    EL_TORITO_ID,
    STANDARD_ID,
    SYSTEM_AREA_BLOCKS,
    TYPE_BOOT_RECORD,
    TYPE_PRIMARY,
    TYPE_SUPPLEMENTARY,
    TYPE_TERMINATOR,
    VolumeDescriptor,
)


class DescriptorSet(NamedTuple):
    primary: VolumeDescriptor
    joliet: VolumeDescriptor | None
    boot_catalog: int | None  # logical block of the El Torito catalog


def is_iso9660(source: ByteSource) -> bool:
    """A volume descriptor at block 16: the magic GRUB and blkid test."""
    start = SYSTEM_AREA_BLOCKS * BLOCK_SIZE
    if source.size < start + BLOCK_SIZE:
        return False
    _type, ident, _version = DESCRIPTOR_HEADER.unpack(source.pread(start, DESCRIPTOR_HEADER.size))
    return ident == STANDARD_ID


def read_descriptors(source: ByteSource) -> DescriptorSet:
    """The descriptors from block 16 up to the terminator (8.3), at most
    LIMITS.max_volume_descriptors of them."""
    primary = joliet = None
    catalog = None
    for index in range(LIMITS.max_volume_descriptors):
        offset = (SYSTEM_AREA_BLOCKS + index) * BLOCK_SIZE
        if offset + BLOCK_SIZE > source.size:
            raise CorruptImage(f"volume descriptor set has no terminator before the end ({source.size} bytes)",
                               where=source.name, offset=offset)
        raw = source.pread(offset, BLOCK_SIZE)
        vd_type, ident, _version = DESCRIPTOR_HEADER.unpack_from(raw)
        if ident != STANDARD_ID:
            raise CorruptImage(f"volume descriptor {index} has no CD001 identifier", where=source.name,
                               offset=offset + 1)
        if vd_type == TYPE_TERMINATOR:
            break
        if vd_type == TYPE_PRIMARY and primary is None:
            primary = VolumeDescriptor.from_bytes(raw, offset)
        elif vd_type == TYPE_SUPPLEMENTARY and joliet is None:
            candidate = VolumeDescriptor.from_bytes(raw, offset)
            if candidate.joliet:
                joliet = candidate
        elif vd_type == TYPE_BOOT_RECORD and catalog is None:
            _t, _i, _v, system_id, _boot_id, block = BOOT_RECORD.unpack_from(raw)
            if system_id.rstrip(b"\0") == EL_TORITO_ID:
                catalog = block
    else:
        raise LimitExceeded(f"more than {LIMITS.max_volume_descriptors} volume descriptors before the terminator"
                            " (max_volume_descriptors)", where=source.name)
    if primary is None:
        raise CorruptImage("no primary volume descriptor", where=source.name,
                           offset=SYSTEM_AREA_BLOCKS * BLOCK_SIZE)
    for vd in (primary, joliet):
        if vd is not None and vd.block_size != BLOCK_SIZE:
            raise Unsupported(f"logical block size {vd.block_size} (only {BLOCK_SIZE} is read, as by GRUB)",
                              where=source.name, offset=vd.offset + 128)
    return DescriptorSet(primary, joliet, catalog)


def label(vd: VolumeDescriptor, joliet: bool) -> str | None:
    if joliet:
        text = vd.volume_id.decode("utf-16-be", "replace").split("\0", 1)[0]
    else:
        text = vd.volume_id.split(b"\0", 1)[0].decode("utf-8", "replace")
    text = text.rstrip(" ")
    return text or None


def uuid(vd: VolumeDescriptor) -> str | None:
    date = vd.modified[:16]
    if not date.strip(b"\0"):
        return None
    d = date.decode("latin-1")
    return f"{d[0:4]}-{d[4:6]}-{d[6:8]}-{d[8:10]}-{d[10:12]}-{d[12:14]}-{d[14:16]}"
