"""On-disk layouts of exFAT, each declared once.

Section numbers are those of Microsoft's "exFAT file system specification" (the public
specification of 2019). Only the fields this read-only driver uses are named.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from ..fat.layout import FatType

# --- 3.1 "Main Boot Sector Structure" -------------------------------------------------------
BOOT_SECTOR = struct.Struct("<3s8s53sQQIIIIIIHHBBBB")
FS_NAME = b"EXFAT   "


class BootSector(NamedTuple):
    jump: bytes
    fs_name: bytes  # FileSystemName: "EXFAT   "
    must_be_zero: bytes  # where FAT's BPB would be: all zero, so FAT drivers pass it by
    partition_offset: int
    volume_length: int  # sectors
    fat_offset: int  # sectors
    fat_length: int  # sectors
    heap_offset: int  # ClusterHeapOffset, sectors
    cluster_count: int
    root_cluster: int  # FirstClusterOfRootDirectory
    serial: int  # VolumeSerialNumber: GRUB's fs UUID, printed "XXXX-XXXX"
    revision: int  # FileSystemRevision: major in the high byte; 1.00 is what we read
    volume_flags: int  # bit 0 ActiveFat (with two FATs), bit 1 VolumeDirty
    sector_shift: int  # BytesPerSectorShift: 9..12
    cluster_shift: int  # SectorsPerClusterShift: up to 25 - BytesPerSectorShift
    fats: int  # NumberOfFats: 1 or 2
    drive: int

    @classmethod
    def from_bytes(cls, raw: bytes) -> BootSector:
        return cls(*BOOT_SECTOR.unpack_from(raw))


BOOT_SECTOR_SIZE = 512
SIGNATURE_OFFSET = 510
SIGNATURE = b"\x55\xaa"
# 3.4 "Main and Backup Boot Checksum Sub-regions": sector 11 repeats a checksum of
# sectors 0-10, skipping VolumeFlags (106, 107) and PercentInUse (112)
CHECKSUM_SECTOR = 11
CHECKSUM_SKIP = (106, 107, 112)
VOLUME_FLAG_ACTIVE_FAT = 0x01
VOLUME_FLAG_DIRTY = 0x02

# --- 4 "File Allocation Table": 32-bit entries; 0xFFFFFFF7 bad, 0xFFFFFFFF end of chain ----
EXFAT = FatType("exFAT", 32, 0xFFFFFFF7, 0xFFFFFFF8, 0xFFFFFFFF)
MAX_CLUSTERS = 0xFFFFFFF5

# --- 6 "Directory Structure": 32-byte entries, EntryType in the first byte -------------------
ENTRY_SIZE = 32
TYPE_END = 0x00
IN_USE = 0x80
TYPE_BITMAP = 0x81  # 7.1 Allocation Bitmap (ignored: never needed to read)
TYPE_UPCASE = 0x82  # 7.2 Up-case Table (ignored: lookups fold ASCII only)
TYPE_LABEL = 0x83  # 7.3 Volume Label
TYPE_FILE = 0x85  # 7.4 File
TYPE_GUID = 0xA0  # 7.5 Volume GUID
TYPE_STREAM = 0xC0  # 7.6 Stream Extension
TYPE_NAME = 0xC1  # 7.7 File Name

# 7.3 Volume Label
LABEL = struct.Struct("<BB22s8x")  # EntryType, CharacterCount, VolumeLabel (UTF-16), reserved

# 7.4 File directory entry
FILE = struct.Struct("<BBHH2xIII")


class FileEntry(NamedTuple):
    entry_type: int
    secondary_count: int  # entries that follow in this set: 2..18
    set_checksum: int
    attributes: int  # 7.4.4 FileAttributes (0x10: directory)
    created: int
    modified: int  # LastModifiedTimestamp: DOS date (high 16 bits) and time (low 16)
    accessed: int

    @classmethod
    def from_bytes(cls, raw: bytes, offset: int = 0) -> FileEntry:
        return cls(*FILE.unpack_from(raw, offset))


ATTR_DIRECTORY = 0x10
ATTR_READ_ONLY = 0x01
SET_MIN_SECONDARY = 2  # a stream extension and at least one name entry
SET_MAX_SECONDARY = 18

# 7.6 Stream Extension directory entry
STREAM = struct.Struct("<BBxBH2xQ4xIQ")


class StreamEntry(NamedTuple):
    entry_type: int
    flags: int  # GeneralSecondaryFlags: bit 0 AllocationPossible, bit 1 NoFatChain
    name_length: int  # characters in the File Name entries
    name_hash: int
    valid_length: int  # ValidDataLength: bytes past it read as zeros
    first_cluster: int
    data_length: int

    @classmethod
    def from_bytes(cls, raw: bytes, offset: int = 0) -> StreamEntry:
        return cls(*STREAM.unpack_from(raw, offset))


FLAG_ALLOCATION_POSSIBLE = 0x01
FLAG_NO_FAT_CHAIN = 0x02

# 7.7 File Name directory entry: 15 UTF-16 characters from byte 2
NAME_OFFSET = 2
NAME_CHARS = 15


def set_checksum(entries: bytes) -> int:
    """6.3.3 "SetChecksum": over every byte of the set but the checksum field itself."""
    total = 0
    for index, byte in enumerate(entries):
        if index in (2, 3):
            continue
        total = (((total & 1) << 15) | (total >> 1)) + byte & 0xFFFF
    return total


def boot_checksum(sectors: bytes) -> int:
    """3.4 "Main and Backup Boot Checksum": over sectors 0-10 but three volatile bytes."""
    total = 0
    for index, byte in enumerate(sectors):
        if index in CHECKSUM_SKIP:
            continue
        total = (((total & 1) << 31) | (total >> 1)) + byte & 0xFFFFFFFF
    return total
