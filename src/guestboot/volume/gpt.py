"""GUID partition tables, read as UEFI 2.10 section 5.3 says, named as GRUB names them.

A disk is a GPT disk when sector 0 is a protective (or hybrid) MBR: 0x55AA signature and a
0xEE record (UEFI 5.2.3; GRUB's part_gpt asks for the same). The header is looked for at
LBA 1 with 512- and 4096-byte logical blocks. A header is used only when it passes the
checks of UEFI 5.3.2: signature, HeaderSize within [92, block size], HeaderCRC32 (computed
with its own field zeroed), MyLBA equal to where it was read, the entry array inside the
disk and its PartitionEntryArrayCRC32. Entry count and entry size are bounded by LIMITS.
When the primary header fails, the backup header at the last LBA (or at the primary's
AlternateLBA) is used and a warning says so. When both fail, a hybrid MBR's own records
are used (with a warning); a plain protective MBR is then CorruptImage (or LimitExceeded).

Partition N is "gptN", N being the entry's 1-based index in the entry array. Partitions
are only checked against the disk, not against FirstUsableLBA/LastUsableLBA: hybrid ISOs
made by xorriso list partitions that start inside the ISO's system area.
"""

from __future__ import annotations

import struct
import zlib
from typing import NamedTuple

from ..errors import CorruptImage, GuestbootError, LimitExceeded
from ..limits import LIMITS
from ..source import ByteSource
from .base import Volume, partition_source
from .mbr import SIGNATURE as MBR_SIGNATURE
from .mbr import read_boot_record, read_hybrid_records

BLOCK_SIZES = (512, 4096)  # logical block sizes probed for the header at LBA 1
SIGNATURE = b"EFI PART"

# UEFI 5.3.2 Table 5-5 "GPT Header": Signature, Revision, HeaderSize, HeaderCRC32,
# Reserved, MyLBA, AlternateLBA, FirstUsableLBA, LastUsableLBA, DiskGUID,
# PartitionEntryLBA, NumberOfPartitionEntries, SizeOfPartitionEntry,
# PartitionEntryArrayCRC32.
HEADER = struct.Struct("<8sIII4xQQQQ16sQIII")
HEADER_CRC_FIELD = slice(16, 20)

# UEFI 5.3.3 Table 5-6 "GPT Partition Entry": PartitionTypeGUID, UniquePartitionGUID,
# StartingLBA, EndingLBA, Attributes, PartitionName (36 UTF-16LE code units).
ENTRY = struct.Struct("<16s16sQQQ72s")
UNUSED_TYPE = bytes(16)  # UEFI 5.3.3: an all-zero type GUID marks an unused entry
LEGACY_BIOS_BOOTABLE = 1 << 2  # UEFI 5.3.3 Table 5-7, attribute bit 2

ARRAY_CHUNK = 64 * 1024  # bytes of entry array read at a time

# UEFI Appendix A "GUID and Time Formats": a GUID is stored as TimeLow (32 bits),
# TimeMid (16), TimeHighAndVersion (16), all little-endian, then eight bytes in order
# (ClockSeqHighAndReserved, ClockSeqLow, Node[6]).
GUID_HEAD = struct.Struct("<IHH")


def _guid(raw: bytes) -> str:
    """A 16-byte on-disk GUID in its registry form, lower case 8-4-4-4-12."""
    time_low, time_mid, time_high = GUID_HEAD.unpack_from(raw)
    tail = raw[GUID_HEAD.size : 16].hex()
    return f"{time_low:08x}-{time_mid:04x}-{time_high:04x}-{tail[:4]}-{tail[4:]}"


class GptHeader(NamedTuple):
    """UEFI 5.3.2 Table 5-5, plus the raw bytes the CRC is computed over."""

    signature: bytes
    revision: int
    header_size: int
    header_crc32: int
    my_lba: int
    alternate_lba: int
    first_usable_lba: int
    last_usable_lba: int
    disk_guid: str
    partition_entry_lba: int
    number_of_entries: int
    size_of_entry: int
    entry_array_crc32: int
    raw: bytes

    @classmethod
    def from_bytes(cls, block: bytes) -> "GptHeader":
        """Parse the first bytes of a logical block (which must hold at least 92 bytes)."""
        (signature, revision, header_size, header_crc32, my_lba, alternate_lba, first_usable,
         last_usable, disk_guid, entry_lba, count, entry_size,
         array_crc32) = HEADER.unpack(block[: HEADER.size])
        return cls(
            signature, revision, header_size, header_crc32, my_lba, alternate_lba, first_usable,
            last_usable, _guid(disk_guid), entry_lba, count, entry_size, array_crc32, raw=block,
        )

    def computed_crc32(self) -> int:
        covered = bytearray(self.raw[: self.header_size])
        covered[HEADER_CRC_FIELD] = bytes(4)
        return zlib.crc32(covered)


class GptEntry(NamedTuple):
    """UEFI 5.3.3 Table 5-6."""

    type_guid: bytes
    unique_guid: bytes
    starting_lba: int
    ending_lba: int
    attributes: int
    name: str

    @classmethod
    def from_bytes(cls, raw: bytes) -> "GptEntry":
        type_guid, unique_guid, start, end, attributes, name = ENTRY.unpack(raw[: ENTRY.size])
        units = [name[i : i + 2] for i in range(0, len(name), 2)]
        if b"\0\0" in units:  # the name ends at the first NUL code unit
            name = name[: 2 * units.index(b"\0\0")]
        return cls(type_guid, unique_guid, start, end, attributes, name.decode("utf-16-le", "replace"))


def read_table(disk: ByteSource, warnings: list[str]) -> list[Volume] | None:
    """The volumes of a GPT disk; None when sector 0 is not a protective/hybrid MBR.

    Raises CorruptImage (or LimitExceeded) when the disk claims to be GPT, neither the
    primary nor the backup header and entry array is usable, and the MBR lists nothing
    but its 0xEE record.
    """
    mbr = read_boot_record(disk, 0)
    if mbr is None or mbr.signature != MBR_SIGNATURE or not mbr.protective:
        return None
    primary_sizes = [size for size in BLOCK_SIZES if _has_signature(disk, size)]
    primary_problems: list[GuestbootError] = []
    volumes = _read_primary(disk, primary_sizes, primary_problems, warnings)
    if volumes is not None:
        return volumes
    backup_problems: list[GuestbootError] = []
    volumes = _read_backup(disk, primary_sizes, primary_problems, backup_problems, warnings)
    if volumes is not None:
        return volumes
    error = _combined_error(disk, primary_problems, backup_problems)
    hybrid_warnings: list[str] = []
    hybrid = read_hybrid_records(disk, hybrid_warnings)
    if not hybrid:
        raise error
    warnings.append(f"{error}; reading the partitions the hybrid MBR lists instead")
    warnings.extend(hybrid_warnings)
    return hybrid


def _read_primary(
    disk: ByteSource, sizes: list[int], problems: list[GuestbootError], warnings: list[str]
) -> list[Volume] | None:
    for block_size in sizes:
        try:
            return _read_with_header(disk, block_size, 1, warnings)
        except (CorruptImage, LimitExceeded) as err:
            problems.append(err)
    return None


def _read_backup(
    disk: ByteSource,
    primary_sizes: list[int],
    primary_problems: list[GuestbootError],
    problems: list[GuestbootError],
    warnings: list[str],
) -> list[Volume] | None:
    """The backup header at the last LBA, or where a damaged primary's AlternateLBA says."""
    candidates: list[tuple[int, int]] = []
    for block_size in primary_sizes or BLOCK_SIZES:
        candidates.append((block_size, disk.size // block_size - 1))
    for block_size in primary_sizes:
        alternate = _unchecked_alternate_lba(disk, block_size)
        if alternate is not None:
            candidates.append((block_size, alternate))
    tried: set[tuple[int, int]] = set()
    for block_size, lba in candidates:
        if lba <= 1 or (block_size, lba) in tried:
            continue
        tried.add((block_size, lba))
        try:
            volumes = _read_with_header(disk, block_size, lba, warnings)
        except (CorruptImage, LimitExceeded) as err:
            problems.append(err)
            continue
        why = f" ({primary_problems[0].message})" if primary_problems else " (no header at LBA 1)"
        warnings.append(
            f"{disk.name}: primary GPT header is unusable{why}; using the backup at LBA {lba}"
            f" (at byte offset {lba * block_size:#x})"
        )
        return volumes
    return None


def _combined_error(
    disk: ByteSource, primary: list[GuestbootError], backup: list[GuestbootError]
) -> GuestbootError:
    """One error saying why the primary (and the backup) could not be used."""
    if not primary:
        return CorruptImage(
            "protective MBR (type 0xee) but no GPT header at LBA 1 nor a usable backup",
            where=disk.name,
            offset=512,
        )
    first = primary[0]
    message = first.message
    if backup:
        message += f"; backup header unusable too ({backup[0].message})"
    return type(first)(message, where=disk.name, offset=first.offset)


def _has_signature(disk: ByteSource, block_size: int) -> bool:
    return block_size + len(SIGNATURE) <= disk.size and disk.pread(block_size, len(SIGNATURE)) == SIGNATURE


def _unchecked_alternate_lba(disk: ByteSource, block_size: int) -> int | None:
    """AlternateLBA of a damaged primary header, as a hint where the backup is (in range)."""
    if 2 * block_size > disk.size:
        return None
    header = GptHeader.from_bytes(disk.pread(block_size, block_size))
    if header.alternate_lba >= disk.size // block_size:
        return None
    return header.alternate_lba


def _read_with_header(disk: ByteSource, block_size: int, lba: int, warnings: list[str]) -> list[Volume]:
    header = _checked_header(disk, block_size, lba)
    entries = _checked_entries(disk, header, block_size, warnings)
    volumes = []
    for index, entry in entries:
        grub_name = f"gpt{index + 1}"
        if entry.ending_lba < entry.starting_lba:
            at = header.partition_entry_lba * block_size + index * header.size_of_entry
            warnings.append(
                f"{disk.name},{grub_name}: ends (LBA {entry.ending_lba}) before it starts"
                f" (LBA {entry.starting_lba}); left out (at byte offset {at:#x})"
            )
            continue
        start = entry.starting_lba * block_size
        length = (entry.ending_lba - entry.starting_lba + 1) * block_size
        source = partition_source(disk, start, length, grub_name, warnings)
        if source is None:
            continue
        volumes.append(
            Volume(
                grub_name=grub_name,
                number=index + 1,
                start=start,
                source=source,
                type_id=_guid(entry.type_guid),
                bootable=bool(entry.attributes & LEGACY_BIOS_BOOTABLE),
                label=entry.name,
                uuid=_guid(entry.unique_guid),
                attributes=entry.attributes,
            )
        )
    return volumes


def _checked_header(disk: ByteSource, block_size: int, lba: int) -> GptHeader:
    """The header at ``lba``, checked as UEFI 5.3.2 asks; CorruptImage/LimitExceeded else."""
    offset = lba * block_size
    if offset + block_size > disk.size:
        raise CorruptImage(f"GPT header at LBA {lba} lies past the end of the disk", offset=offset)
    header = GptHeader.from_bytes(disk.pread(offset, block_size))
    if header.signature != SIGNATURE:
        raise CorruptImage(f"no GPT signature at LBA {lba}", offset=offset)
    if not HEADER.size <= header.header_size <= block_size:
        raise CorruptImage(
            f"GPT HeaderSize {header.header_size} is outside [{HEADER.size}, {block_size}]", offset=offset
        )
    if header.computed_crc32() != header.header_crc32:
        raise CorruptImage(
            f"GPT header CRC32 is {header.header_crc32:#010x}, computed {header.computed_crc32():#010x}",
            offset=offset,
        )
    if header.my_lba != lba:
        raise CorruptImage(f"GPT header at LBA {lba} says MyLBA is {header.my_lba}", offset=offset)
    if header.number_of_entries > LIMITS.max_gpt_entries:
        raise LimitExceeded(
            f"GPT header lists {header.number_of_entries} entries (limit max_gpt_entries"
            f" = {LIMITS.max_gpt_entries})",
            offset=offset,
        )
    size = header.size_of_entry
    if size < ENTRY.size or size % ENTRY.size or (size // ENTRY.size) & (size // ENTRY.size - 1):
        raise CorruptImage(f"GPT SizeOfPartitionEntry {size} is not 128 * 2^n", offset=offset)
    if size > LIMITS.max_gpt_entry_size:
        raise LimitExceeded(
            f"GPT SizeOfPartitionEntry {size} (limit max_gpt_entry_size = {LIMITS.max_gpt_entry_size})",
            offset=offset,
        )
    array_start = header.partition_entry_lba * block_size
    array_end = array_start + header.number_of_entries * size
    if header.partition_entry_lba < 1 or array_end > disk.size:
        raise CorruptImage(
            f"GPT entry array at LBA {header.partition_entry_lba} ({array_end - array_start} bytes)"
            f" lies outside the disk ({disk.size} bytes)",
            offset=offset,
        )
    return header


def _checked_entries(
    disk: ByteSource, header: GptHeader, block_size: int, warnings: list[str]
) -> list[tuple[int, GptEntry]]:
    """(index, entry) of the used entries, after the array's CRC32 has been checked.

    The array is read in chunks; at most LIMITS.max_partitions used entries are kept and
    the rest are reported in one warning.
    """
    size = header.size_of_entry
    start = header.partition_entry_lba * block_size
    per_chunk = max(1, ARRAY_CHUNK // size)
    crc = 0
    used: list[tuple[int, GptEntry]] = []
    ignored = 0
    index = 0
    while index < header.number_of_entries:
        count = min(per_chunk, header.number_of_entries - index)
        chunk = disk.pread(start + index * size, count * size)
        crc = zlib.crc32(chunk, crc)
        for i in range(count):
            raw = chunk[i * size : i * size + ENTRY.size]
            if raw[:16] == UNUSED_TYPE:
                continue
            if len(used) >= LIMITS.max_partitions:
                ignored += 1
                continue
            used.append((index + i, GptEntry.from_bytes(raw)))
        index += count
    if crc != header.entry_array_crc32:
        raise CorruptImage(
            f"GPT entry array CRC32 is {header.entry_array_crc32:#010x}, computed {crc:#010x}",
            offset=start,
        )
    if ignored:
        warnings.append(
            f"{disk.name}: GPT has {ignored} used entries beyond the first {LIMITS.max_partitions}"
            f" (limit max_partitions); ignored (at byte offset {start:#x})"
        )
    return used
