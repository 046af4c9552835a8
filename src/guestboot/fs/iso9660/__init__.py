"""Read-only ISO 9660 driver: ``probe(source)`` returns an IsoFileSystem or None.

Supported: the volume descriptor set (primary, Joliet supplementary, El Torito boot
record); ISO levels 1-3 names and deeper-than-8 trees; Rock Ridge (SUSP/RRIP 1.10-1.12:
NM names, PX modes, SL symlinks, CE continuation areas, ER/ST/SP); Joliet UCS-2 names;
files over 4 GiB as multi-extent record chains; extended attribute records (skipped, data
follows them); the El Torito boot catalog (``boot_catalog()``, read on demand). Which tree
and names are read follows GRUB: Rock Ridge, else Joliet, else plain ISO 9660 (see
descriptors.py). The volume starts at byte 0 of its source: an isohybrid image's whole
disk, a partition that starts at the ISO's first byte, or the GPT partition of xorriso's
-partition_offset layout (Ubuntu's), which has a descriptor set of its own.

Refused: logical blocks other than 2048 bytes, and interleaved files, as Unsupported.
Not read: Rock Ridge relocated directories (CL/PL/RE; xorriso does not relocate, GRUB does
not follow them either: the relocation directory is listed as it is stored), zisofs
compressed files (ZF; listed with their stored size), TF timestamps (the record's date is
the mtime), UDF (an ISO/UDF bridge image is read through its ISO 9660 side).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...source import ByteSource
from ..base import FileSystem

if TYPE_CHECKING:
    from .filesystem import IsoFileSystem

__all__ = ["probe", "IsoFileSystem"]

# descriptors.is_iso9660's test, here so that a volume without a volume descriptor at
# block 16 (ECMA-119 8.1: type, "CD001", version) costs no import of the driver
_DESCRIPTOR_ID_OFFSET = 16 * 2048 + 1
_STANDARD_ID = b"CD001"


def __getattr__(name: str):
    if name == "IsoFileSystem":
        from .filesystem import IsoFileSystem

        return IsoFileSystem
    raise AttributeError(name)


def probe(source: ByteSource) -> FileSystem | None:
    """An IsoFileSystem over ``source``; None without a volume descriptor at block 16;
    CorruptImage for a descriptor set or root that contradicts itself."""
    if source.size < _DESCRIPTOR_ID_OFFSET + 5 or source.pread(_DESCRIPTOR_ID_OFFSET, 5) != _STANDARD_ID:
        return None
    from .descriptors import is_iso9660, read_descriptors
    from .filesystem import IsoFileSystem

    if not is_iso9660(source):
        return None
    return IsoFileSystem(source, read_descriptors(source))
