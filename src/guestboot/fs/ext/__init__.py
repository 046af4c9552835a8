"""Read-only ext2/ext3/ext4 driver: ``probe(source)`` returns an ExtFileSystem or None.

Supported: 1-64 KiB blocks; 32- and 64-bit group descriptors (meta_bg placement too);
extent trees of any depth up to LIMITS.max_extent_depth (loops, overlaps and out-of-range
blocks are CorruptImage); ext2/ext3 direct, single, double and triple indirect maps;
flex_bg, sparse_super, sparse_super2, huge_file, uninitialized extents, holes; linear and
hash-tree (htree) directories (legacy, half-MD4 and TEA hashes, signed and unsigned);
inline_data files and directories; fast and slow symlinks; inodes of 128 bytes up to the
block size; bigalloc (extents stay in blocks).

Checksums (metadata_csum, CRC-32C) that are verified, each a CorruptImage on mismatch:
the superblock, group descriptors, inodes, extent-tree blocks and directory leaf blocks.
Not verified: hash-tree index nodes (their structure is checked instead), bitmaps (never
read), extended-attribute blocks and the journal (never read), and the older gdt_csum
CRC-16 of group descriptors.

Refused: unknown INCOMPAT feature bits and the known ones that change how data is stored
(compression, journal_dev, dirdata) as Unsupported naming them; encrypted inodes one by
one. A volume that needs journal recovery is read as it is on disk, with a warning: the
newest metadata may still sit in the journal.
"""

from __future__ import annotations

from ...source import ByteSource
from ..base import FileSystem
from .layout import SUPER_MAGIC, SUPER_MAGIC_OFFSET, SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE

__all__ = ["probe"]

_MAGIC = SUPER_MAGIC.to_bytes(2, "little")


def probe(source: ByteSource) -> FileSystem | None:
    """An ExtFileSystem over ``source``; None when there is no ext superblock; Unsupported
    for incompatible features we do not read; CorruptImage for a contradictory superblock.
    The driver's modules are imported only for a volume with ext magic (start-up: every
    other volume is offered to ext first)."""
    if (source.size < SUPERBLOCK_OFFSET + SUPERBLOCK_SIZE
            or source.pread(SUPERBLOCK_OFFSET + SUPER_MAGIC_OFFSET, 2) != _MAGIC):
        return None
    from .filesystem import ExtFileSystem
    from .superblock import read_superblock

    volume = read_superblock(source)
    if volume is None:
        return None
    return ExtFileSystem(source, volume.geometry, volume.kind, volume.uuid, volume.label, volume.warnings)
