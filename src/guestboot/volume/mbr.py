"""MBR ("msdos") partition tables: four primaries and the extended/logical chain.

Layout: UEFI 2.10 section 5.2.1 "Legacy Master Boot Record" (Tables 5-1 and 5-2). The
extended chain is the IBM PC convention: each extended boot record (EBR) has the MBR's
layout; its data entries are relative to the EBR itself, its link entry is relative to the
start of the first extended partition.

Acceptance and naming follow GRUB's part_msdos: a table needs the 0x55AA signature and
boot indicators of only 0x00 or 0x80 (a whole-disk file system's boot sector fails this);
a table with a 0xEE entry is a protective MBR and belongs to the GPT reader; primaries are
"msdos1".."msdos4" by slot, whatever the other slots hold; logicals are "msdos5", "msdos6" …
in chain order. MBR sectors are taken as 512 bytes (what GRUB assumes for an image file).
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from ..errors import LimitExceeded
from ..limits import LIMITS
from ..source import ByteSource
from .base import Volume, partition_source

SECTOR_SIZE = 512

# UEFI 5.2.1 Table 5-1: boot code at 0, the unique MBR disk signature at 440, four
# partition records at 446, signature at 510.
DISK_SIGNATURE = struct.Struct("<I")
DISK_SIGNATURE_OFFSET = 440
RECORDS_OFFSET = 446
SIGNATURE_OFFSET = 510
SIGNATURE = b"\x55\xaa"

# UEFI 5.2.1 Table 5-2: BootIndicator, StartingCHS, OSType, EndingCHS, StartingLBA,
# SizeInLBA.
RECORD = struct.Struct("<B3sB3sII")

EMPTY_TYPE = 0x00
PROTECTIVE_TYPE = 0xEE  # UEFI 5.2.3: the whole disk is a GPT disk
EXTENDED_TYPES = frozenset({0x05, 0x0F, 0x85})  # DOS, Windows LBA, Linux extended
ACTIVE = 0x80


class PartitionRecord(NamedTuple):
    """One 16-byte partition record (UEFI 5.2.1 Table 5-2); CHS fields are ignored."""

    boot_indicator: int
    os_type: int
    starting_lba: int
    size_in_lba: int

    @classmethod
    def from_bytes(cls, raw: bytes) -> "PartitionRecord":
        boot, _chs, os_type, _chs_end, start, size = RECORD.unpack(raw)
        return cls(boot, os_type, start, size)

    @property
    def empty(self) -> bool:
        return self.os_type == EMPTY_TYPE

    @property
    def extended(self) -> bool:
        return self.os_type in EXTENDED_TYPES


class BootRecord(NamedTuple):
    """A 512-byte MBR or EBR (UEFI 5.2.1 Table 5-1): its signature and four records."""

    signature: bytes
    records: tuple[PartitionRecord, ...]
    disk_signature: int = 0

    @classmethod
    def from_bytes(cls, sector: bytes) -> "BootRecord":
        sector = sector[:SECTOR_SIZE].ljust(SECTOR_SIZE, b"\0")  # a short read has no signature
        records = tuple(
            PartitionRecord.from_bytes(sector[RECORDS_OFFSET + i * RECORD.size :][: RECORD.size])
            for i in range(4)
        )
        disk_signature = DISK_SIGNATURE.unpack_from(sector, DISK_SIGNATURE_OFFSET)[0]
        return cls(sector[SIGNATURE_OFFSET:SECTOR_SIZE], records, disk_signature)

    def why_not_a_table(self) -> str | None:
        """None when this sector reads as a partition table, else the reason it does not."""
        if self.signature != SIGNATURE:
            return "no 0x55AA signature"
        for slot, record in enumerate(self.records):
            if record.boot_indicator & 0x7F:
                return f"record {slot + 1} has boot indicator {record.boot_indicator:#04x}"
        return None

    @property
    def protective(self) -> bool:
        return any(record.os_type == PROTECTIVE_TYPE for record in self.records)


def read_boot_record(disk: ByteSource, offset: int) -> BootRecord | None:
    """The boot record at ``offset``, or None when the disk ends before a whole sector."""
    if offset < 0 or offset + SECTOR_SIZE > disk.size:
        return None
    return BootRecord.from_bytes(disk.pread(offset, SECTOR_SIZE))


def read_table(disk: ByteSource, warnings: list[str]) -> list[Volume] | None:
    """The volumes of an MBR-partitioned disk in GRUB's order; None when sector 0 is not
    an MBR partition table (no signature, bad boot indicators, a protective MBR) or lists
    nothing (the boot sector of a whole-disk FAT file system has the signature and four
    empty records)."""
    mbr = read_boot_record(disk, 0)
    if mbr is None or mbr.why_not_a_table() is not None or mbr.protective:
        return None
    if all(record.empty for record in mbr.records):
        return None
    return _volumes(disk, mbr, warnings)


def read_hybrid_records(disk: ByteSource, warnings: list[str]) -> list[Volume] | None:
    """The partitions a hybrid MBR lists beside its 0xEE record (gdisk's hybrid MBRs,
    isohybrid images), for when the GPT it protects cannot be read; None when it lists
    nothing else (a plain protective MBR)."""
    mbr = read_boot_record(disk, 0)
    if mbr is None or mbr.why_not_a_table() is not None:
        return None
    if all(record.empty or record.os_type == PROTECTIVE_TYPE for record in mbr.records):
        return None
    return _volumes(disk, mbr, warnings)


def _volumes(disk: ByteSource, mbr: BootRecord, warnings: list[str]) -> list[Volume]:
    volumes: list[Volume] = []
    for slot, record in enumerate(mbr.records):
        if record.empty or record.extended or record.os_type == PROTECTIVE_TYPE:
            continue
        volume = _volume(disk, slot + 1, 0, record, warnings, mbr.disk_signature)
        if volume is not None:
            volumes.append(volume)
    extended = next((record for record in mbr.records if record.extended), None)
    if extended is not None:
        volumes.extend(_logicals(disk, extended.starting_lba * SECTOR_SIZE, warnings, mbr.disk_signature))
    return volumes


def _volume(
    disk: ByteSource, number: int, base: int, record: PartitionRecord, warnings: list[str], disk_signature: int
) -> Volume | None:
    grub_name = f"msdos{number}"
    start = base + record.starting_lba * SECTOR_SIZE
    source = partition_source(disk, start, record.size_in_lba * SECTOR_SIZE, grub_name, warnings)
    if source is None:
        return None
    return Volume(
        grub_name=grub_name,
        number=number,
        start=start,
        source=source,
        type_id=f"{record.os_type:#04x}",
        bootable=record.boot_indicator == ACTIVE,
        uuid=f"{disk_signature:08x}-{number:02x}",  # Linux's PARTUUID for MBR partitions
    )


def _logicals(disk: ByteSource, chain_base: int, warnings: list[str], disk_signature: int) -> list[Volume]:
    """Walk the EBR chain that starts at ``chain_base`` (the first extended partition).

    A damaged link (past the end, no signature, a loop) ends the chain with a warning and
    keeps the logicals found so far, as GRUB does; a chain longer than
    LIMITS.max_logical_partitions links is LimitExceeded.
    """
    volumes: list[Volume] = []
    visited: set[int] = set()
    number = 4
    link = chain_base
    for _ in range(LIMITS.max_logical_partitions):
        where = f"{disk.name}: extended boot record"
        if link in visited:
            warnings.append(f"{where} links back to itself (a loop); chain ends (at byte offset {link:#x})")
            return volumes
        visited.add(link)
        ebr = read_boot_record(disk, link)
        if ebr is None:
            warnings.append(f"{where} lies past the end of the disk; chain ends (at byte offset {link:#x})")
            return volumes
        problem = ebr.why_not_a_table()
        if problem is not None:
            warnings.append(f"{where} is damaged ({problem}); chain ends (at byte offset {link:#x})")
            return volumes
        next_link = None
        for record in ebr.records:
            if record.empty:
                continue
            if record.extended:
                if next_link is None:
                    next_link = chain_base + record.starting_lba * SECTOR_SIZE
                continue
            number += 1
            if len(volumes) + 4 >= LIMITS.max_partitions:
                raise LimitExceeded(
                    f"more than {LIMITS.max_partitions} partitions (limit max_partitions)",
                    where=disk.name,
                    offset=link,
                )
            volume = _volume(disk, number, link, record, warnings, disk_signature)
            if volume is not None:
                volumes.append(volume)
        if next_link is None:
            return volumes
        link = next_link
    raise LimitExceeded(
        f"extended partition chain has more than {LIMITS.max_logical_partitions} links"
        " (limit max_logical_partitions)",
        where=disk.name,
        offset=link,
    )
