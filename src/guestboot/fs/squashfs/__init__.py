"""Read-only squashfs 4.0 driver: ``probe(source)`` returns a SquashFileSystem or None.

Supported: every compressor mksquashfs writes (gzip, lzma, lzo, xz, lz4, zstd; see
decode.py) and uncompressed images; block sizes of 4 KiB to 1 MiB; basic and
extended inodes of every type (devices, fifos and sockets are listed as OTHER); extended
directories' indexes (used by lookup); data blocks stored compressed, stored plainly
(mapped into the image by ``runs``, so extraction copies them with copy_file_range) or
sparse; fragments. The compressor options block is not needed to decode (every stream
carries its own parameters) and is only checked to fit. Not read: the id table (owners are
not part of the interface), the export table and extended attributes.

squashfs has neither a UUID nor a label, and GRUB's squash4 driver reports none.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...errors import CorruptImage, Unsupported
from ...source import ByteSource
from ..base import FileSystem

if TYPE_CHECKING:
    from .filesystem import SquashFileSystem

__all__ = ["probe", "SquashFileSystem"]

# layout.MAGIC_BYTES, here so that a volume without it costs no import of the driver
_MAGIC = b"hsqs"


def __getattr__(name: str):
    if name == "SquashFileSystem":
        from .filesystem import SquashFileSystem

        return SquashFileSystem
    raise AttributeError(name)


def probe(source: ByteSource) -> FileSystem | None:
    """A SquashFileSystem over ``source``; None without the "hsqs" magic; Unsupported for
    other versions and unknown compressors; CorruptImage for a contradictory superblock."""
    if source.size < 4 or source.pread(0, 4) != _MAGIC:
        return None
    from .decode import CODECS
    from .filesystem import SquashFileSystem
    from .layout import (
        FLAG_COMPRESSOR_OPTIONS,
        MAX_BLOCK_LOG,
        METADATA_HEADER,
        METADATA_LENGTH_MASK,
        METADATA_SIZE,
        MIN_BLOCK_LOG,
        SUPERBLOCK_SIZE,
        Superblock,
    )

    if source.size < SUPERBLOCK_SIZE:
        return None
    sb = Superblock.from_bytes(source.pread(0, SUPERBLOCK_SIZE))
    where = source.name
    if (sb.version_major, sb.version_minor) != (4, 0):
        raise Unsupported(f"squashfs version {sb.version_major}.{sb.version_minor} (only 4.0 is read)",
                          where=where, offset=0x1C)
    if sb.compression not in CODECS:
        raise Unsupported(f"squashfs compressor id {sb.compression}", where=where, offset=0x14)
    compressor = CODECS[sb.compression][0]
    if not MIN_BLOCK_LOG <= sb.block_log <= MAX_BLOCK_LOG or sb.block_size != 1 << sb.block_log:
        raise CorruptImage(f"squashfs superblock: block size {sb.block_size} with block log {sb.block_log}",
                           where=where, offset=0xC)
    if sb.bytes_used > source.size:
        raise CorruptImage(f"squashfs superblock: {sb.bytes_used} bytes used, but the volume has {source.size}"
                           " (truncated?)", where=where, offset=0x28)
    if not (SUPERBLOCK_SIZE <= sb.inode_table < sb.directory_table < sb.bytes_used
            and sb.directory_table <= sb.fragment_table <= sb.bytes_used):
        raise CorruptImage(
            f"squashfs superblock: tables out of order or outside the {sb.bytes_used} bytes used (inodes at"
            f" {sb.inode_table}, directories at {sb.directory_table}, fragments at {sb.fragment_table})",
            where=where, offset=0x40)
    if sb.root_inode >> 16 >= sb.directory_table - sb.inode_table or sb.root_inode & 0xFFFF >= METADATA_SIZE:
        raise CorruptImage(f"squashfs superblock: root inode reference {sb.root_inode:#x} outside the inode table",
                           where=where, offset=0x20)
    if sb.flags & FLAG_COMPRESSOR_OPTIONS:  # one metadata block right after the superblock
        (header,) = METADATA_HEADER.unpack(source.pread(SUPERBLOCK_SIZE, METADATA_HEADER.size))
        length = header & METADATA_LENGTH_MASK
        if not 0 < length <= METADATA_SIZE or SUPERBLOCK_SIZE + METADATA_HEADER.size + length > sb.inode_table:
            raise CorruptImage(f"squashfs compressor options block of {length} bytes", where=where,
                               offset=SUPERBLOCK_SIZE)
    return SquashFileSystem(source, sb, compressor, [])
