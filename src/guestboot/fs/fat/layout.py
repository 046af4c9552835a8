"""On-disk layouts of FAT12/16/32, each declared once.

Section numbers are those of Microsoft's "FAT: General Overview of On-Disk Format"
(fatgen103, version 1.03). Only the fields this read-only driver uses are named.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

# --- 3.1 "Boot Sector and BPB Structure": the fields common to all FAT types ------------
BOOT_SECTOR_SIZE = 512  # the BPB lives in the first 512 bytes whatever the sector size
BPB_COMMON = struct.Struct("<3s8sHBHBHHBHHHII")


class BpbCommon(NamedTuple):
    jump: bytes  # BS_jmpBoot: EB ?? 90 or E9 ?? ??
    oem: bytes  # BS_OEMName
    bytes_per_sector: int  # BPB_BytsPerSec: 512, 1024, 2048 or 4096
    sectors_per_cluster: int  # BPB_SecPerClus: a power of two, 1..128
    reserved_sectors: int  # BPB_RsvdSecCnt: never 0 (the boot sector is one)
    fats: int  # BPB_NumFATs
    root_entries: int  # BPB_RootEntCnt: 0 on FAT32
    total_sectors_16: int  # BPB_TotSec16: 0 when BPB_TotSec32 holds the count
    media: int  # BPB_Media: 0xF0 or 0xF8..0xFF
    fat_size_16: int  # BPB_FATSz16: 0 on FAT32
    sectors_per_track: int
    heads: int
    hidden_sectors: int
    total_sectors_32: int  # BPB_TotSec32

    @classmethod
    def from_bytes(cls, raw: bytes) -> BpbCommon:
        return cls(*BPB_COMMON.unpack_from(raw))


# --- 3.2 "FAT12 and FAT16 Structure Starting at Offset 36" -------------------------------
EXT_BPB_16_OFFSET = 36
# --- 3.3 "FAT32 Structure Starting at Offset 36" -----------------------------------------
BPB_32 = struct.Struct("<IHHIHH12s")
BPB_32_OFFSET = 36


class Bpb32(NamedTuple):
    fat_size_32: int  # BPB_FATSz32
    ext_flags: int  # BPB_ExtFlags: bit 7 set = only the FAT numbered by bits 0-3 is active
    fs_version: int  # BPB_FSVer: 0.0 is the only version defined
    root_cluster: int  # BPB_RootClus
    fs_info: int  # BPB_FSInfo (ignored: a free-count hint, never needed to read)
    backup_boot: int  # BPB_BkBootSec
    reserved: bytes

    @classmethod
    def from_bytes(cls, raw: bytes) -> Bpb32:
        return cls(*BPB_32.unpack_from(raw, BPB_32_OFFSET))


EXT_BPB_32_OFFSET = 64
# The extended boot record: at offset 36 (FAT12/16) or 64 (FAT32).
EXT_BPB = struct.Struct("<BBBI11s8s")


class ExtBpb(NamedTuple):
    drive: int  # BS_DrvNum
    reserved: int
    boot_signature: int  # BS_BootSig: 0x29 (0x28 on older systems) = the next three are valid
    volume_id: int  # BS_VolID: GRUB's fs UUID, printed "XXXX-XXXX"
    label: bytes  # BS_VolLab (GRUB reads the root directory's label entry instead)
    fs_type: bytes  # BS_FilSysType: informational only, never decides the FAT type

    @classmethod
    def from_bytes(cls, raw: bytes, offset: int) -> ExtBpb:
        return cls(*EXT_BPB.unpack_from(raw, offset))


BOOT_SIGNATURES = (0x28, 0x29)
SIGNATURE_OFFSET = 510  # bytes 0x55 0xAA
SIGNATURE = b"\x55\xaa"
MEDIA_OK = frozenset((0xF0, *range(0xF8, 0x100)))
SECTOR_SIZES = (512, 1024, 2048, 4096)

# --- 3.5 "Determination of FAT type when mounting the volume": cluster counts -------------
FAT12_MAX_CLUSTERS = 4084  # fewer than 4085 clusters: FAT12
FAT16_MAX_CLUSTERS = 65524  # fewer than 65525: FAT16; more: FAT32
FAT32_MAX_CLUSTERS = 0x0FFFFFF5  # cluster numbers 2..0x0FFFFFF6 (0x0FFFFFF7 marks a bad cluster)
FIRST_CLUSTER = 2  # entries 0 and 1 of the FAT are reserved

# --- 4 "FAT Data Structure": entry values per FAT type (bits, bad-cluster mark, end marks)
class FatType(NamedTuple):
    name: str
    bits: int
    bad: int  # this value marks a bad cluster
    end: int  # this value and above end a chain
    mask: int


FAT12 = FatType("FAT12", 12, 0xFF7, 0xFF8, 0xFFF)
FAT16 = FatType("FAT16", 16, 0xFFF7, 0xFFF8, 0xFFFF)
FAT32 = FatType("FAT32", 32, 0x0FFFFFF7, 0x0FFFFFF8, 0x0FFFFFFF)  # top 4 bits reserved

# --- 6 "FAT Directory Structure": the 32-byte short entry ---------------------------------
DIR_ENTRY_SIZE = 32
DIR_ENTRY = struct.Struct("<11sBBBHHHHHHHI")


class DirEntry(NamedTuple):
    name: bytes  # DIR_Name: 8 + 3 bytes, space padded
    attr: int  # DIR_Attr
    nt_case: int  # DIR_NTRes: bit 3 base in lower case, bit 4 extension in lower case
    create_tenth: int
    create_time: int
    create_date: int
    access_date: int
    cluster_hi: int  # DIR_FstClusHI (FAT32 only)
    write_time: int  # DIR_WrtTime
    write_date: int  # DIR_WrtDate
    cluster_lo: int  # DIR_FstClusLO
    size: int  # DIR_FileSize

    @classmethod
    def from_bytes(cls, raw: bytes, offset: int = 0) -> DirEntry:
        return cls(*DIR_ENTRY.unpack_from(raw, offset))


ATTR_READ_ONLY = 0x01
ATTR_HIDDEN = 0x02
ATTR_SYSTEM = 0x04
ATTR_VOLUME_ID = 0x08
ATTR_DIRECTORY = 0x10
ATTR_ARCHIVE = 0x20
ATTR_LONG_NAME = 0x0F  # READ_ONLY | HIDDEN | SYSTEM | VOLUME_ID
ATTR_LONG_NAME_MASK = 0x3F
ATTR_VALID = 0x3F  # bits 6 and 7 are reserved: GRUB and Windows skip such entries

NAME_END = 0x00  # DIR_Name[0]: this and every later entry are free
NAME_FREE = 0xE5  # DIR_Name[0]: a deleted entry
NAME_KANJI_E5 = 0x05  # DIR_Name[0]: stands for a real first byte 0xE5
NT_LOWER_BASE = 0x08
NT_LOWER_EXT = 0x10

# --- 7 "FAT Long Directory Entries" ---------------------------------------------------------
LFN_ENTRY = struct.Struct("<B10sBBB12sH4s")


class LfnEntry(NamedTuple):
    order: int  # LDIR_Ord: sequence number 1..20, 0x40 on the last (first stored) entry
    name1: bytes  # characters 1-5, UTF-16LE
    attr: int  # LDIR_Attr: ATTR_LONG_NAME
    kind: int  # LDIR_Type: 0 for a name part
    checksum: int  # LDIR_Chksum of the short name it belongs to
    name2: bytes  # characters 6-11
    cluster: int  # LDIR_FstClusLO: always 0
    name3: bytes  # characters 12-13

    @classmethod
    def from_bytes(cls, raw: bytes, offset: int = 0) -> LfnEntry:
        return cls(*LFN_ENTRY.unpack_from(raw, offset))


LFN_LAST = 0x40
LFN_ORDER_MASK = 0x3F
LFN_CHARS = 13  # UTF-16 code units per entry
LFN_MAX_ENTRIES = 20  # 255 characters


def short_name_checksum(name: bytes) -> int:
    """7.2 "ChkSum": the rotate-right-and-add sum of the 11 short-name bytes."""
    total = 0
    for byte in name:
        total = (((total & 1) << 7) | (total >> 1)) + byte & 0xFF
    return total
