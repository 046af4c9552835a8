"""BSD disklabels, read and named as GRUB's part_bsd (grub-core/partmap/bsdlabel.c) does.

Layout: disklabel(5) (FreeBSD sys/disklabel.h, NetBSD and OpenBSD likewise on x86): the
label is in sector 1 of what it labels; ``d_magic`` 0x82564557 at 0, ``d_magic2`` at 132,
``d_checksum`` (16-bit words XORed over the label and its partition entries give 0) at
136, ``d_npartitions`` at 138, then 16-byte entries at 148: p_size, p_offset (sectors),
p_fsize, p_fstype, p_frag, p_cpg. Entry 2 ("c") is the raw partition and is skipped.

Where GRUB looks, and how it names what it finds:
- inside an MBR partition of type 0xa5 (FreeBSD): ``(hd0,msdos1,bsd1)`` for "a",
  ``bsd4`` for "d"; offsets are counted from the disk, so GRUB subtracts entry "c"'s
  offset (the slice's start) and drops an entry that starts before it;
- inside a GPT partition (the FreeBSD disklabel type, or any other) and on a whole disk
  with no other table ("dangerously dedicated"): ``(hd0,gpt2,bsd1)``, ``(hd0,bsd1)``,
  offsets counted from what holds the label;
- a label in an MBR partition of type 0xa9 (NetBSD) or 0xa6 (OpenBSD) describes the whole
  disk: ``(hd0,netbsd1)`` / ``(hd0,openbsd1)``, offsets from the disk's start, listed
  after the MBR's partitions.
At most LIMITS.max_bsd_partitions entries are read (what fits in the label's sector);
a bad checksum is a warning (GRUB does not check it), a bad magic means "no label".
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from ..limits import LIMITS
from ..source import ByteSource
from .base import Volume, partition_source

SECTOR = 512
LABEL_SECTOR = 1
MAGIC = 0x82564557
HEAD = struct.Struct("<I128xIHH")  # d_magic; d_magic2 at 132, d_checksum, d_npartitions
ENTRIES_OFFSET = 148
ENTRY = struct.Struct("<IIIBBH")  # p_size, p_offset, p_fsize, p_fstype, p_frag, p_cpg
RAW_PARTITION = 2  # "c"
FREEBSD_MBR = "0xa5"
DISK_WIDE = {"0xa9": "netbsd", "0xa6": "openbsd"}  # MBR type -> GRUB's partition map name


class Entry(NamedTuple):
    index: int
    size: int
    offset: int
    fstype: int


def read_label(source: ByteSource, where: str, warnings: list[str]) -> list[Entry] | None:
    """The used entries (not "c") of the label in sector 1 of ``source``, or None."""
    if (LABEL_SECTOR + 1) * SECTOR > source.size:
        return None
    raw = source.pread(LABEL_SECTOR * SECTOR, SECTOR)
    magic, magic2, _checksum, count = HEAD.unpack_from(raw)
    if magic != MAGIC:
        return None
    at = LABEL_SECTOR * SECTOR
    if magic2 != MAGIC:
        warnings.append(f"{where}: BSD disklabel's second magic is {magic2:#010x}; read as GRUB does"
                        f" (at byte offset {at + 132:#x})")
    fits = min(count, LIMITS.max_bsd_partitions, (SECTOR - ENTRIES_OFFSET) // ENTRY.size)
    if count > fits:
        warnings.append(f"{where}: BSD disklabel lists {count} partitions; the first {fits} are read"
                        f" (max_bsd_partitions) (at byte offset {at + 138:#x})")
    covered = raw[: ENTRIES_OFFSET + ENTRY.size * fits]
    xor = 0
    for (word,) in struct.iter_unpack("<H", covered):
        xor ^= word
    if xor and count == fits:
        warnings.append(f"{where}: BSD disklabel checksum does not match; read as GRUB does"
                        f" (at byte offset {at + 136:#x})")
    entries = []
    for index in range(fits):
        size, offset, _fsize, fstype, _frag, _cpg = ENTRY.unpack_from(raw, ENTRIES_OFFSET + index * ENTRY.size)
        if index == RAW_PARTITION:
            entries.append(Entry(index, size, offset, fstype))
            continue
        if size:
            entries.append(Entry(index, size, offset, fstype))
    return entries


def _volumes(disk: ByteSource, base: int, entries: list[Entry], delta: int, name: str, prefix: str,
             warnings: list[str]) -> list[Volume]:
    """Volumes of ``entries`` whose offsets count from sector ``delta`` of a region that
    starts at byte ``base`` of ``disk``; ``prefix`` is the GRUB name before the index."""
    volumes = []
    for entry in entries:
        if entry.index == RAW_PARTITION:
            continue
        grub_name = f"{prefix}{entry.index + 1}"
        if entry.offset < delta:
            warnings.append(f"{disk.name},{grub_name}: starts (sector {entry.offset}) before its slice"
                            f" (sector {delta}); left out as GRUB does")
            continue
        start = base + (entry.offset - delta) * SECTOR
        source = partition_source(disk, start, entry.size * SECTOR, grub_name, warnings)
        if source is not None:
            volumes.append(Volume(grub_name=grub_name, number=entry.index + 1, start=start, source=source,
                                  type_id=f"bsd:{entry.fstype}"))
    return volumes


def read_nested(disk: ByteSource, partition: Volume, warnings: list[str]) -> list[Volume]:
    """The BSD partitions inside ``partition`` (an MBR FreeBSD slice, or a GPT partition)."""
    if partition.grub_name.startswith("msdos") and partition.type_id != FREEBSD_MBR:
        return []  # GRUB embeds a label in no other MBR partition (NetBSD/OpenBSD: read_disk_wide)
    where = f"{disk.name},{partition.grub_name}"
    entries = read_label(partition.source, where, warnings)
    if not entries:
        return []
    delta = 0
    if partition.type_id == FREEBSD_MBR:
        raw = [e for e in entries if e.index == RAW_PARTITION]
        delta = raw[0].offset if raw else 0
    return _volumes(disk, partition.start, entries, delta, where, f"{partition.grub_name},bsd", warnings)


def read_disk_wide(disk: ByteSource, partitions: list[Volume], warnings: list[str]) -> list[Volume]:
    """The partitions a NetBSD/OpenBSD label inside an MBR partition gives the whole disk."""
    found: list[Volume] = []
    for partition in partitions:
        kind = DISK_WIDE.get(partition.type_id) if partition.grub_name.startswith("msdos") else None
        if kind is None:
            continue
        entries = read_label(partition.source, f"{disk.name},{partition.grub_name}", warnings)
        if entries:
            found.extend(_volumes(disk, 0, entries, 0, disk.name, kind, warnings))
            break  # GRUB reads the first such label only
    return found


def read_table(disk: ByteSource, warnings: list[str]) -> list[Volume] | None:
    """A label on a disk with no other table ("dangerously dedicated"): ``(hd0,bsd1)``."""
    entries = read_label(disk, disk.name, warnings)
    if entries is None:
        return None
    return _volumes(disk, 0, entries, 0, disk.name, "bsd", warnings)
