"""What a volume (partition, logical volume, whole disk) is, for the stages after it."""

from __future__ import annotations

from dataclasses import dataclass

from ..source import ByteSource


@dataclass(frozen=True, slots=True)
class Volume:
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
