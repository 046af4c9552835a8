"""What a volume (partition, logical volume, whole disk) is, for the stages after it."""

from __future__ import annotations

from typing import Iterator, NamedTuple

from ..errors import GuestbootError
from ..source import ByteSource, SliceSource
from ..source.base import Run


class Volume(NamedTuple):
    """One place a file system may live, with what its table says about it.

    ``grub_name`` is GRUB's partition name without the disk: "" for the whole disk,
    "msdos1", "msdos5", "gpt2"; for a stacked volume its whole GRUB name ("lvm/vg-root",
    "md/0") and ``disk`` is "". ``disk`` is the GRUB name of the disk (or array) the
    partition is on ("hd0", "hd1", "md/0"), set by the image stage. ``number`` is the
    partition number as the table gives it (1-based; 0 for a whole disk or a stacked
    volume). ``start`` is the byte offset in the disk; ``size`` the bytes it has (after
    clipping to the disk). ``type_id`` is the MBR type byte as "0x83" or the GPT type
    GUID in lower case.
    """

    grub_name: str
    number: int
    start: int
    source: ByteSource
    type_id: str = ""
    bootable: bool = False  # MBR active flag / GPT legacy-BIOS-bootable attribute
    label: str = ""  # GPT partition name
    uuid: str = ""  # GPT unique partition GUID; MBR "<disk signature>-<number>" as Linux's PARTUUID
    disk: str = ""
    attributes: int = 0  # GPT attribute bits (UEFI 5.3.3 Table 5-7)

    @property
    def size(self) -> int:
        return self.source.size

    @property
    def device(self) -> str:
        """The volume's GRUB device name: "hd0", "hd0,gpt2", "md/0,msdos1", "lvm/vg-root"."""
        if self.disk and self.grub_name:
            return f"{self.disk},{self.grub_name}"
        return self.disk or self.grub_name


class Scan(NamedTuple):
    """What scanning a disk found: volumes in GRUB's order, and one-line warnings about
    parts of the table that were damaged and left out or clipped (never fatal)."""

    volumes: list[Volume]
    warnings: list[str]


class FailingSource(ByteSource):
    """A volume that exists but cannot be read (a thin LV, an array missing members): every
    read raises what is wrong, so the device reports it instead of "no file system"."""

    def __init__(self, size: int, name: str, error: GuestbootError):
        self.size = size
        self.name = name
        self.error = error

    def _fail(self) -> GuestbootError:
        return type(self.error)(self.error.message, where=self.error.where, offset=self.error.offset)

    def _pread(self, offset: int, length: int) -> bytes:
        raise self._fail()

    def runs(self, offset: int = 0, length: int | None = None) -> Iterator[Run]:
        raise self._fail()


def whole_disk(disk: ByteSource) -> Volume:
    """The disk itself as the one volume: no partition table was recognised."""
    return Volume(grub_name="", number=0, start=0, source=disk)


# Partition types boot-loader specifications look for (lower case, as Volume.type_id)
ESP_TYPE = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b"  # UEFI 2.10 5.3.3: EFI System Partition
XBOOTLDR_TYPE = "bc13c2ff-59e6-4262-a352-b275fd6f7172"  # UAPI Discoverable Partitions: XBOOTLDR
MBR_ESP_TYPE = "0xef"  # UEFI 2.10 5.2.2: an ESP in an MBR table
MBR_XBOOTLDR_TYPE = "0xea"  # UAPI Boot Loader Specification: XBOOTLDR in an MBR table


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
