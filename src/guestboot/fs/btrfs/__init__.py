"""Read-only btrfs driver: ``probe(source)`` returns a BtrfsFileSystem or None.

Supported: one device of a file system (multi-device chunks are read where a copy lives
on this device, and "device N missing" is Unsupported otherwise); the superblock and its
mirrors (a damaged primary falls back to a good mirror, with a warning); the system chunk
array and the chunk tree with SINGLE, DUP, RAID1, RAID1C3, RAID1C4, RAID0 and RAID10
chunks (mirrored tree blocks: the next copy is read when one fails its checks); RAID5/6
chunks are Unsupported when read. The root tree, subvolumes and snapshots (paths cross
into them as GRUB's do; the root is the top-level subvolume, as in upstream GRUB), the
default subvolume; inline, regular and preallocated extents, holes (no_holes or not);
zlib, LZO (btrfs's per-sector segments) and zstd compression per extent.

Checksums verified: the superblock and every tree block (CRC-32C, XXH64, SHA-256 or
BLAKE2b, as the superblock says). Data checksums (the csum tree) are not verified, as GRUB does not verify them either; every
read is still bounded and checked against the device.

Refused: unknown incompatible features and zoned, extent_tree_v2 and raid_stripe_tree
(Unsupported naming them); encrypted or encoded extents.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...errors import CorruptImage
from ...source import ByteSource
from ..base import FileSystem

if TYPE_CHECKING:
    from .filesystem import BtrfsFileSystem

__all__ = ["probe", "BtrfsFileSystem"]


def __getattr__(name: str):
    if name == "BtrfsFileSystem":
        from .filesystem import BtrfsFileSystem

        return BtrfsFileSystem
    raise AttributeError(name)


# layout.SUPER_MAGIC in the primary superblock (layout.SUPER_OFFSETS[0] + 0x40), here so
# that a volume without it costs no import of the driver
_MAGIC_OFFSET = 0x10000 + 0x40
_MAGIC = b"_BHRfS_M"


def probe(source: ByteSource) -> FileSystem | None:
    """A BtrfsFileSystem over ``source``; None when there is no btrfs superblock. The
    driver is imported only for a volume with btrfs magic."""
    if source.size < _MAGIC_OFFSET + 8 or source.pread(_MAGIC_OFFSET, 8) != _MAGIC:
        return None
    from .superblock import read_superblock

    volume = read_superblock(source)
    if volume is None:
        return None
    from .chunks import ChunkMap, parse_chunk, sys_chunks
    from .filesystem import BtrfsFileSystem
    from .layout import CHUNK_ITEM_KEY, FIRST_CHUNK_TREE_OBJECTID, MAX_KEY_OFFSET, OFF_SYS_CHUNK_ARRAY_SIZE, \
        SYS_CHUNK_ARRAY_OFFSET
    from .tree import Budget, Trees

    sb = volume.sb
    name = source.name
    chunks = ChunkMap(volume.dev.devid, source.size, name)
    base = volume.offset + SYS_CHUNK_ARRAY_OFFSET
    for chunk in sys_chunks(volume.sys_chunk_array, base, f"{name}: btrfs superblock"):
        chunks.add(chunk)
    if not len(chunks):
        raise CorruptImage("btrfs superblock: empty system chunk array", where=name,
                           offset=volume.offset + OFF_SYS_CHUNK_ARRAY_SIZE)
    trees = Trees(source, chunks, volume.checker, volume.fsid, sb.nodesize, sb.sectorsize)
    what = f"{name}: btrfs chunk tree"
    lo = (FIRST_CHUNK_TREE_OBJECTID, CHUNK_ITEM_KEY, 0)
    hi = (FIRST_CHUNK_TREE_OBJECTID, CHUNK_ITEM_KEY, MAX_KEY_OFFSET)
    found = [(key[2], raw, offset) for key, raw, offset in trees.items(sb.chunk_root, sb.chunk_root_level, lo, hi,
                                                                       Budget(what))]
    for logical, raw, offset in found:
        chunk, _size = parse_chunk(raw, 0, logical, offset, what)
        chunks.add(chunk)
    return BtrfsFileSystem(source, trees, chunks, (sb.root, sb.root_level), volume.uuid, volume.label,
                           sb.sectorsize, volume.warnings)
