"""VHD ("vpc") images: fixed, dynamic and differencing disks.

Layout: Microsoft "Virtual Hard Disk Image Format Specification" (2006), "Hard Disk
Footer Format". A fixed disk is the disk's bytes followed by a 512-byte footer (511 bytes
in images from old tools); dynamic and differencing disks keep a copy of the footer at
offset 0 and their data in blocks behind a dynamic-disk header (source.vhd_dynamic).
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from ..errors import CorruptImage
from .base import ByteSource, SliceSource
from .opener import Opener

COOKIE = b"conectix"
FOOTER_SIZE = 512
# Cookie, Features, File Format Version, Data Offset, Time Stamp, Creator Application,
# Creator Version, Creator Host OS, Original Size, Current Size, Disk Geometry, Disk Type,
# Checksum, Unique Id, Saved State, Reserved (big-endian)
FOOTER = struct.Struct(">8sIIQIIIIQQIII16sB427x")
CHECKSUM_OFFSET = 64
DISK_FIXED, DISK_DYNAMIC, DISK_DIFFERENCING = 2, 3, 4


class Footer(NamedTuple):
    cookie: bytes
    data_offset: int
    current_size: int
    disk_type: int
    checksum: int
    computed: int  # the checksum the spec's rule gives for these bytes
    unique_id: bytes

    @classmethod
    def from_bytes(cls, raw: bytes) -> "Footer":
        raw = raw.ljust(FOOTER_SIZE, b"\0")  # a 511-byte footer lacks the last reserved byte
        (cookie, _features, _version, data_offset, _time, _app, _app_version, _host, _original, current_size,
         _geometry, disk_type, checksum, uid, _saved) = FOOTER.unpack(raw)
        return cls(cookie, data_offset, current_size, disk_type, checksum, ones_complement(raw, CHECKSUM_OFFSET), uid)


def ones_complement(raw: bytes, checksum_at: int) -> int:
    """The spec's checksum: the one's complement of the sum of the bytes, the checksum
    field's own four bytes left out."""
    return ~(sum(raw[:checksum_at]) + sum(raw[checksum_at + 4 :])) & 0xFFFFFFFF


def _footer_at(image: ByteSource) -> int | None:
    """Where the footer at the end of the image starts, or None."""
    for size in (FOOTER_SIZE, FOOTER_SIZE - 1):
        at = image.size - size
        if at >= 0 and image.pread(at, len(COOKIE)) == COOKIE:
            return at
    return None


def detect(image: ByteSource) -> bool:
    if _footer_at(image) is not None:
        return True
    return image.size >= FOOTER_SIZE and image.pread(0, len(COOKIE)) == COOKIE


def open(image: ByteSource, opener: Opener) -> ByteSource:
    at = _footer_at(image)
    if at is None:  # only the copy at offset 0: a dynamic disk whose end was cut off
        at = 0
    footer = Footer.from_bytes(image.pread(at, min(FOOTER_SIZE, image.size - at)))
    if footer.cookie != COOKIE:
        raise CorruptImage("VHD footer: no \"conectix\" cookie", where=image.name, offset=at)
    if footer.checksum != footer.computed:
        raise CorruptImage(
            f"VHD footer: checksum {footer.checksum:#010x}, the bytes sum to {footer.computed:#010x}",
            where=image.name, offset=at + CHECKSUM_OFFSET,
        )
    if footer.disk_type in (DISK_DYNAMIC, DISK_DIFFERENCING):
        from .vhd_dynamic import open_dynamic

        return open_dynamic(image, footer, at, opener)
    if footer.disk_type != DISK_FIXED:
        raise CorruptImage(f"VHD footer: unknown disk type {footer.disk_type}", where=image.name, offset=at + 60)
    if at == 0 or footer.current_size > at:
        raise CorruptImage(
            f"fixed VHD: disk of {footer.current_size} bytes does not fit before its footer at {at}",
            where=image.name, offset=at + 48,
        )
    return SliceSource(image, 0, footer.current_size, name=image.name)
