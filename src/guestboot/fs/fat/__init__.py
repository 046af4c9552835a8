"""Read-only FAT12/FAT16/FAT32 driver (EFI system partitions, boot floppies, USB sticks):
``probe(source)`` returns a FatFileSystem or None.

Follows Microsoft's FAT specification (fatgen103): the BPB is validated (sector sizes
512-4096, power-of-two clusters, reserved sectors, FATs, root entries, total sectors, a FAT
large enough for its clusters); the FAT type comes from the cluster count; FAT12 packed
entries; the FAT32 root cluster chain and the active FAT when mirroring is off; FSInfo is
never read (it only holds allocation hints). Cluster chains are checked step by step (free,
reserved, bad and out-of-range clusters, loops, chains shorter than the file) and bounded
by LIMITS.max_map_bytes; directories by the shared scan budgets. VFAT long names with
their checksum, NT lower-case bits of short names, deleted entries, the end marker and the
0x05 escape are handled as Linux and Windows do. Lookup is case-insensitive for ASCII, as
in GRUB and UEFI firmware. ``uuid`` is the volume serial as GRUB prints it ("1234-ABCD"),
``label`` the root directory's volume-label entry, as GRUB reads it.

Not read: FAT has no symlinks, owners or modes (files are 0644, read-only ones 0444);
last-access and creation times; the backup boot sector (a damaged primary is reported, not
repaired); FAT mirrors other than the active one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...source import ByteSource
from ..base import FileSystem
from .bootsector import read_boot_sector

if TYPE_CHECKING:
    from .filesystem import FatFileSystem

__all__ = ["probe", "FatFileSystem"]


def __getattr__(name: str):
    if name == "FatFileSystem":
        from .filesystem import FatFileSystem

        return FatFileSystem
    raise AttributeError(name)


def probe(source: ByteSource) -> FileSystem | None:
    """A FatFileSystem over ``source``; None when there is no FAT boot sector; CorruptImage
    for a FAT boot sector that contradicts itself or the source's size."""
    geometry = read_boot_sector(source)
    if geometry is None:
        return None
    from .filesystem import FatFileSystem

    return FatFileSystem(source, geometry)
