"""On-disk layouts of ISO 9660, its Joliet and Rock Ridge extensions and El Torito, each
declared once.

Sections named are those of ECMA-119 (4th edition, 2019; same layout as ISO 9660:1988),
IEEE P1281 (SUSP 1.12), IEEE P1282 (RRIP 1.12), the Joliet specification (Microsoft,
1995) and the El Torito Bootable CD-ROM Format Specification 1.0 (Phoenix/IBM, 1995).
ISO 9660 stores most numbers "both-byte orders" (little-endian, then big-endian); only
the little-endian half is read, as GRUB and Linux do.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

BLOCK_SIZE = 2048  # 6.1.2 logical sector; the logical block size GRUB and we read (8.4.12)
SYSTEM_AREA_BLOCKS = 16  # 6.2.1: the volume descriptor set starts at logical sector 16

# --- 8.1 "Volume Descriptor": type, "CD001", version ---------------------------------------
STANDARD_ID = b"CD001"
DESCRIPTOR_HEADER = struct.Struct("<B5sB")
TYPE_BOOT_RECORD = 0  # 8.2
TYPE_PRIMARY = 1  # 8.4
TYPE_SUPPLEMENTARY = 2  # 8.5 (Joliet is a supplementary descriptor)
TYPE_PARTITION = 3  # 8.6
TYPE_TERMINATOR = 255  # 8.3

# --- 8.4 "Primary Volume Descriptor" / 8.5 "Supplementary Volume Descriptor" ----------------
# Same layout; the supplementary one carries escape sequences at 88 (8.5.6).
VOLUME_DESCRIPTOR = struct.Struct(
    "<B5sB"  # 8.4.1-3 type, standard identifier, version
    "x"  # 8.4.4 unused (flags in an SVD)
    "32s"  # 8.4.5 system identifier
    "32s"  # 8.4.6 volume identifier (the label)
    "8x"
    "I4x"  # 8.4.8 volume space size, in logical blocks (both-endian)
    "32s"  # 8.5.6 escape sequences (unused in a PVD)
    "4x"  # 8.4.10 volume set size
    "4x"  # 8.4.11 volume sequence number
    "H2x"  # 8.4.12 logical block size (both-endian 16)
    "I4x"  # 8.4.13 path table size
    "16x"  # 8.4.14-17 path table locations
    "34s"  # 8.4.18 directory record of the root directory
    "128x128x128x128x"  # 8.4.19-22 volume set, publisher, preparer, application identifiers
    "37x37x37x"  # 8.4.23-25 copyright, abstract, bibliographic file identifiers
    "17s"  # 8.4.26 volume creation date and time (8.4.26.1: 16 digits and an offset)
    "17s"  # 8.4.27 volume modification date and time
    "17x17x"  # 8.4.28-29 expiration, effective
    "B"  # 8.4.30 file structure version
)
ROOT_RECORD_OFFSET = 156

# Joliet: the escape sequences of a supplementary descriptor that say "UCS-2 level 1, 2, 3".
JOLIET_ESCAPES = (b"%/@", b"%/C", b"%/E")

# --- 8.2 "Boot Record" and El Torito 2.0 "Boot Record Volume Descriptor" --------------------
BOOT_RECORD = struct.Struct("<B5sB32s32sI")  # type, CD001, version, boot system id, boot id, catalog
EL_TORITO_ID = b"EL TORITO SPECIFICATION"


class VolumeDescriptor(NamedTuple):
    """A primary or supplementary volume descriptor (8.4, 8.5): the fields we use."""

    type: int
    version: int
    volume_id: bytes
    space_size: int
    escapes: bytes
    block_size: int
    root_record: bytes
    created: bytes
    modified: bytes
    offset: int  # byte offset of the descriptor in the volume

    @classmethod
    def from_bytes(cls, raw: bytes, offset: int) -> "VolumeDescriptor":
        (vd_type, _cd001, version, _system, volume_id, space, escapes, block, _pt_size, root, created, modified,
         _fsv) = VOLUME_DESCRIPTOR.unpack_from(raw)
        return cls(vd_type, version, volume_id, space, escapes, block, root, created, modified, offset)

    @property
    def joliet(self) -> bool:
        return self.type == TYPE_SUPPLEMENTARY and self.escapes[:3] in JOLIET_ESCAPES


# --- 9.1 "Format of a Directory Record" -----------------------------------------------------
DIR_RECORD = struct.Struct(
    "<B"  # 9.1.1 length of directory record
    "B"  # 9.1.2 extended attribute record length, in logical blocks
    "I4x"  # 9.1.3 location of extent (both-endian)
    "I4x"  # 9.1.4 data length (both-endian)
    "7s"  # 9.1.5 recording date and time (9.1.5: years since 1900, month, day, h, m, s, offset)
    "B"  # 9.1.6 file flags
    "B"  # 9.1.7 file unit size (interleaved files)
    "B"  # 9.1.8 interleave gap size
    "4x"  # 9.1.9 volume sequence number
    "B"  # 9.1.10 length of file identifier
)
DIR_RECORD_MIN = DIR_RECORD.size + 1  # 34: the header and a one-byte identifier
FLAG_HIDDEN = 0x01  # 9.1.6 bit 0 "Existence"
FLAG_DIRECTORY = 0x02  # bit 1
FLAG_ASSOCIATED = 0x04  # bit 2
FLAG_MULTI_EXTENT = 0x80  # bit 7 "Multi-Extent": the file continues in the next record
ID_SELF = b"\x00"  # 6.8.2.2: the identifiers of "." and ".."
ID_PARENT = b"\x01"
RECORD_DATE = struct.Struct("<BBBBBBb")


class DirRecord(NamedTuple):
    """One directory record (9.1) with its identifier and System Use area."""

    length: int
    xattr_blocks: int
    extent: int
    size: int
    date: bytes
    flags: int
    unit_size: int
    gap_size: int
    ident: bytes
    system_use: bytes
    offset: int  # byte offset of the record in the volume

    @classmethod
    def from_bytes(cls, raw: bytes, pos: int, offset: int) -> "DirRecord":
        """The record at ``raw[pos:]``; the caller has checked that its length fits."""
        length, xattr, extent, size, date, flags, unit, gap, id_len = DIR_RECORD.unpack_from(raw, pos)
        ident_end = pos + DIR_RECORD.size + id_len
        su_start = ident_end + (0 if id_len % 2 else 1)  # 9.1.12 padding after an even identifier
        return cls(length, xattr, extent, size, date, flags, unit, gap, raw[pos + DIR_RECORD.size : ident_end],
                   raw[su_start : pos + length], offset)

    @property
    def is_dir(self) -> bool:
        return bool(self.flags & FLAG_DIRECTORY)


# --- SUSP 4.1 "System Use Entry" header and the entries we read -----------------------------
SUSP_HEADER = struct.Struct("<2sBB")  # signature, length, version
SUSP_CE = struct.Struct("<2sBBI4xI4xI4x")  # 5.1 CE: block, offset, length of the continuation
SUSP_SP = struct.Struct("<2sBB2sB")  # 5.3 SP: check bytes BE EF, LEN_SKP
SP_CHECK = b"\xbe\xef"
RRIP_PX_MODE = struct.Struct("<I4x")  # RRIP 4.1.1 PX: file mode (both-endian), links, uid, gid
NM_CONTINUE = 0x01  # RRIP 4.1.4 NM flags
NM_CURRENT = 0x02
NM_PARENT = 0x04
SL_CONTINUE = 0x01  # RRIP 4.1.3 SL flags and component flags
SL_CURRENT = 0x02
SL_PARENT = 0x04
SL_ROOT = 0x08

# --- El Torito 2.1-2.4: the boot catalog, 32-byte entries ----------------------------------
CATALOG_ENTRY_SIZE = 32
VALIDATION_ENTRY = struct.Struct("<BBH24sH2s")  # header id 1, platform, -, id string, checksum, 55 AA
VALIDATION_KEY = b"\x55\xaa"
DEFAULT_ENTRY = struct.Struct("<BBHBxHI20x")  # boot indicator, media, load segment, system type, count, RBA
SECTION_HEADER = struct.Struct("<BBH28s")  # 0x90 more headers follow / 0x91 final, platform, entries, id
SECTION_MORE = 0x90
SECTION_FINAL = 0x91
EXTENSION_ENTRY = 0x44  # 3.6 section entry extension
BOOTABLE = 0x88
NOT_BOOTABLE = 0x00
PLATFORMS = {0x00: "x86", 0x01: "powerpc", 0x02: "mac", 0xEF: "efi"}
MEDIA = {0: "no emulation", 1: "1.2M floppy", 2: "1.44M floppy", 3: "2.88M floppy", 4: "hard disk"}
