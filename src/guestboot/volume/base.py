"""What a volume (partition, logical volume, whole disk) is, for the stages after it."""

from __future__ import annotations

from typing import NamedTuple

from ..source import ByteSource, SliceSource


class Volume(NamedTuple):
    """One place a file system may live.

    ``grub_name`` is GRUB's partition name without the disk: "" for the whole disk,
    "msdos1", "msdos5", "gpt2". ``number`` is the partition number as the table gives it
    (1-based; 0 for the whole disk). ``start`` is the byte offset in the disk.
    ``type_id`` is the MBR type byte as "0x83" or the GPT type GUID in lower case.
    """

    grub_name: str
    number: int
    start: int
    source: ByteSource
    type_id: str = ""
    bootable: bool = False  # MBR active flag / GPT legacy-BIOS-bootable attribute
    label: str = ""  # GPT partition name
    uuid: str = ""  # GPT unique partition GUID


class Scan(NamedTuple):
    """What scanning a disk found: volumes in GRUB's order, and one-line warnings about
    parts of the table that were damaged and left out or clipped (never fatal)."""

    volumes: list[Volume]
    warnings: list[str]


def whole_disk(disk: ByteSource) -> Volume:
    """The disk itself as the one volume: no partition table was recognised."""
    return Volume(grub_name="", number=0, start=0, source=disk)


def partition_source(
    disk: ByteSource, start: int, length: int, grub_name: str, warnings: list[str]
) -> SliceSource | None:
    """The bytes of partition ``grub_name`` as a slice of ``disk``.

    A table is hostile input, so a partition that runs past the end of the disk is
    clipped to the disk (with a warning); one that is empty or starts at or past the end
    is left out (with a warning, None is returned). Nothing here raises.
    """
    where = f"{disk.name},{grub_name}"
    if length <= 0:
        warnings.append(f"{where}: partition is empty; left out (at byte offset {start:#x})")
        return None
    if start < 0 or start >= disk.size:
        warnings.append(
            f"{where}: partition starts past the end of the disk ({disk.size} bytes);"
            f" left out (at byte offset {start:#x})"
        )
        return None
    if start + length > disk.size:
        warnings.append(
            f"{where}: partition of {length} bytes runs past the end of the disk"
            f" ({disk.size} bytes); clipped to {disk.size - start} bytes"
            f" (at byte offset {start:#x})"
        )
        length = disk.size - start
    return SliceSource(disk, start, length, name=where)
