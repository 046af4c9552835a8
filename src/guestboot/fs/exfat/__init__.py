"""Read-only exFAT driver (SD cards, USB sticks, some EFI system partitions): ``probe(source)``
returns an ExfatFileSystem or None.

Follows Microsoft's exFAT specification: the main boot sector is validated and its boot
checksum (sector 11) verified; the active FAT when there are two; cluster chains checked
step by step as on FAT (fs/fat/table.py: free, bad, out-of-range clusters and loops are
CorruptImage), or contiguous runs for streams with the NoFatChain flag; file entry sets
checked by their set checksum; ValidDataLength honoured (the bytes after it read as
zeros). ``uuid`` is the volume serial as GRUB prints it ("1234-ABCD"), ``label`` the root
directory's volume label.

Left out: the up-case table (lookups fold ASCII letters only, as GRUB's exFAT driver does:
a non-ASCII name must be given in its stored case); the allocation bitmap (never needed to
read); name hashes (not checked); the backup boot region (a damaged main boot region is
reported, not repaired); TexFAT and vendor extensions (ignored); times other than the
last modification, and time-zone offsets.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...source import ByteSource
from ..base import FileSystem

if TYPE_CHECKING:
    from .filesystem import ExfatFileSystem

__all__ = ["probe", "ExfatFileSystem"]

# bootsector.FS_NAME at its offset, here so that a volume without it costs no import of
# the driver
_FS_NAME_OFFSET = 3
_FS_NAME = b"EXFAT   "


def __getattr__(name: str):
    if name == "ExfatFileSystem":
        from .filesystem import ExfatFileSystem

        return ExfatFileSystem
    raise AttributeError(name)


def probe(source: ByteSource) -> FileSystem | None:
    """An ExfatFileSystem over ``source``; None without the "EXFAT" name; CorruptImage for a
    boot region that contradicts itself or the source's size."""
    if source.size < _FS_NAME_OFFSET + 8 or source.pread(_FS_NAME_OFFSET, 8) != _FS_NAME:
        return None
    from .bootsector import read_boot_sector
    from .filesystem import ExfatFileSystem

    geometry = read_boot_sector(source)
    if geometry is None:
        return None
    return ExfatFileSystem(source, geometry)
