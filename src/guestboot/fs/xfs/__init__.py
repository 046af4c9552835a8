"""Read-only XFS driver: ``probe(source)`` returns an XfsFileSystem or None.

Supported: v4 and v5 (CRC) superblocks; blocks of 512 bytes to 64 KiB, any sector size,
directory blocks up to 64 KiB; v1/v2/v3 inodes of 256 bytes to 2 KiB; ftype on and off;
bigtime and nrext64 inodes; sparse inodes; short-form, block, leaf and node directories
(listed through their data blocks; leaf and node directories looked up through their hash
index, block directories by scanning their one block); extent lists and bmap B+trees of any
depth up to LIMITS.max_bmap_depth; unwritten (preallocated) extents and holes read as
zeros; reflinked (shared) extents, which are plain extents to a reader; local and remote
symlinks. File data maps straight into the volume (``runs``), so extraction is zero-copy.

Checksums (v5, CRC-32C) verified before anything in the block is used, each a
CorruptImage on mismatch: the superblock, every inode read, bmap B+tree blocks,
directory data blocks (block and data forms), directory hash-index blocks (leaf, leafn
and da node blocks) and remote symlink blocks; each of those also has its owner, own
disk address and file-system UUID checked. Not read, so not verified: AG headers (AGF,
AGI, AGFL), free-space, inode, reverse-map and refcount B+trees, directory free-index
blocks, extended attributes and the log.

Refused: a realtime device (Unsupported at probe time), unknown incompatible feature
bits (Unsupported naming them), version 1 directories. ASCII case-insensitive volumes
("-n version=ci") are read with exact-name lookups (their names are scanned, not hashed). A volume whose log is dirty is
read as it is on disk (a reader cannot tell without replaying the log); one marked
"needsrepair" carries a warning.
"""

from __future__ import annotations

from ...source import ByteSource
from ..base import FileSystem

__all__ = ["probe"]

_MAGIC = b"XFSB"  # layout.SB_MAGIC, here so that a volume without it costs no import of the driver


def probe(source: ByteSource) -> FileSystem | None:
    """An XfsFileSystem over ``source``; None when there is no XFS superblock; Unsupported
    for features we do not read; CorruptImage for a contradictory superblock. The driver's
    modules (and the CRC-32C code) are imported only for a volume with XFS magic."""
    if source.size < 4 or source.pread(0, 4) != _MAGIC:
        return None
    from .filesystem import XfsFileSystem
    from .layout import SUPERBLOCK
    from .superblock import read_superblock

    if source.size < SUPERBLOCK.size:
        return None
    volume = read_superblock(source)
    if volume is None:
        return None
    return XfsFileSystem(source, volume.geometry, volume.uuid, volume.label, volume.warnings)
