"""On-disk layouts of squashfs 4.0, each declared once.

Sections of the kernel's Documentation/filesystems/squashfs.rst ("Squashfs 4.0 filesystem
layout") and squashfs-tools' squashfs_fs.h: the superblock, metadata blocks, inodes,
directories and the fragment table. Everything is little-endian.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

# --- the superblock: 96 bytes at byte 0 ----------------------------------------------------
MAGIC_BYTES = b"hsqs"  # 0x73717368 little-endian
SUPERBLOCK = struct.Struct("<IIIIIHHHHHHQQQQQQQQ")
SUPERBLOCK_SIZE = SUPERBLOCK.size  # 96


class Superblock(NamedTuple):
    magic: int
    inode_count: int
    mkfs_time: int
    block_size: int
    fragment_count: int
    compression: int
    block_log: int
    flags: int
    id_count: int
    version_major: int
    version_minor: int
    root_inode: int  # an inode reference (see INODE_REF below)
    bytes_used: int
    id_table: int
    xattr_id_table: int
    inode_table: int
    directory_table: int
    fragment_table: int
    export_table: int

    @classmethod
    def from_bytes(cls, raw: bytes) -> Superblock:
        return cls._make(SUPERBLOCK.unpack_from(raw))


# superblock flags
FLAG_UNCOMPRESSED_INODES = 0x0001
FLAG_UNCOMPRESSED_DATA = 0x0002
FLAG_UNCOMPRESSED_FRAGMENTS = 0x0008
FLAG_NO_FRAGMENTS = 0x0010
FLAG_COMPRESSOR_OPTIONS = 0x0400

MIN_BLOCK_LOG = 12  # 4 KiB
MAX_BLOCK_LOG = 20  # 1 MiB
ABSENT = 0xFFFFFFFFFFFFFFFF  # a table that is not there (xattr, export)

# --- metadata blocks: a 2-byte header, then at most 8 KiB of (compressed) data -------------
METADATA_SIZE = 8192
METADATA_HEADER = struct.Struct("<H")
METADATA_UNCOMPRESSED = 0x8000  # header bit: stored as is
METADATA_LENGTH_MASK = 0x7FFF


def inode_ref(ref: int) -> tuple[int, int]:
    """An inode reference: (metadata block start relative to the table, offset in its
    decompressed data). 48 bits: the block start in bits 16-47, the offset in bits 0-15."""
    return ref >> 16, ref & 0xFFFF


# --- inodes ----------------------------------------------------------------------------------
INODE_HEADER = struct.Struct("<HHHHII")  # type, mode, uid index, gid index, mtime, inode number


class InodeHeader(NamedTuple):
    type: int
    mode: int
    uid: int
    gid: int
    mtime: int
    number: int


BASIC_DIR, BASIC_FILE, BASIC_SYMLINK, BASIC_BLKDEV, BASIC_CHRDEV, BASIC_FIFO, BASIC_SOCKET = range(1, 8)
EXT_DIR, EXT_FILE, EXT_SYMLINK, EXT_BLKDEV, EXT_CHRDEV, EXT_FIFO, EXT_SOCKET = range(8, 15)
DIR_TYPES = (BASIC_DIR, EXT_DIR)
FILE_TYPES = (BASIC_FILE, EXT_FILE)
SYMLINK_TYPES = (BASIC_SYMLINK, EXT_SYMLINK)

# the part of each inode after the header (block lists, targets and indexes follow)
BASIC_DIR_BODY = struct.Struct("<IIHHI")  # start block, nlink, file size, offset, parent
EXT_DIR_BODY = struct.Struct("<IIIIHHI")  # nlink, file size, start block, parent, index count, offset, xattr
BASIC_FILE_BODY = struct.Struct("<IIII")  # blocks start, fragment, fragment offset, file size
EXT_FILE_BODY = struct.Struct("<QQQIIII")  # blocks start, file size, sparse, nlink, fragment, offset, xattr
SYMLINK_BODY = struct.Struct("<II")  # nlink, target size (the target follows)
OTHER_BODY_SIZE = {BASIC_BLKDEV: 8, BASIC_CHRDEV: 8, BASIC_FIFO: 4, BASIC_SOCKET: 4,
                   EXT_BLKDEV: 12, EXT_CHRDEV: 12, EXT_FIFO: 8, EXT_SOCKET: 8}
NO_FRAGMENT = 0xFFFFFFFF
DIR_SIZE_BIAS = 3  # a directory's file size counts 3 bytes more than its listing holds

# a data block size word: bit 24 set when stored uncompressed, 0 for a sparse (zero) block
BLOCK_UNCOMPRESSED = 1 << 24
BLOCK_SIZE_MASK = BLOCK_UNCOMPRESSED - 1
BLOCK_SIZE_WORD = struct.Struct("<I")

# extended directory index entries: index (listing offset), start block, name size - 1; the name follows
DIR_INDEX = struct.Struct("<III")

# --- directory listings: a header, then count + 1 entries -------------------------------
DIR_HEADER = struct.Struct("<III")  # count - 1, inode block start, base inode number
DIR_ENTRY = struct.Struct("<HhHH")  # offset in the inode block, inode number delta, type, name size - 1
DIR_HEADER_MAX_COUNT = 256  # mksquashfs and the kernel: at most 256 entries per header
MAX_NAME = 256

# --- fragment table: 16-byte entries in metadata blocks, indexed by an array of u64 --------
FRAGMENT_ENTRY = struct.Struct("<QII")  # start, size word (bit 24: uncompressed), unused
TABLE_POINTER = struct.Struct("<Q")
