"""Btrfs on-disk structures, each declared once (little-endian throughout).

Sections named are those of the btrfs documentation's "On-disk format" page (superblock,
tree blocks, items) and the kernel's include/uapi/linux/btrfs_tree.h, which is where
the field order is defined.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

# --- "Superblock": 4 KiB at 64 KiB, mirrors at 64 MiB and 256 GiB ----------------------------
SUPER_OFFSETS = (0x10000, 0x4000000, 0x4000000000)
SUPER_SIZE = 4096
SUPER_MAGIC = b"_BHRfS_M"
CSUM_SIZE = 32  # every checksum field is 32 bytes; the algorithm uses its first bytes
SUPERBLOCK = struct.Struct(
    "<32s"  # 0x00 csum
    "16s"  # 0x20 fsid
    "Q"  # 0x30 bytenr (where this copy lives)
    "Q"  # 0x38 flags
    "8s"  # 0x40 magic
    "Q"  # 0x48 generation
    "Q"  # 0x50 root (root tree, logical)
    "Q"  # 0x58 chunk_root (logical)
    "Q"  # 0x60 log_root
    "Q"  # 0x68 log_root_transid
    "Q"  # 0x70 total_bytes
    "Q"  # 0x78 bytes_used
    "Q"  # 0x80 root_dir_objectid
    "Q"  # 0x88 num_devices
    "I"  # 0x90 sectorsize
    "I"  # 0x94 nodesize
    "I"  # 0x98 leafsize (unused, = nodesize)
    "I"  # 0x9C stripesize
    "I"  # 0xA0 sys_chunk_array_size
    "Q"  # 0xA4 chunk_root_generation
    "Q"  # 0xAC compat_flags
    "Q"  # 0xB4 compat_ro_flags
    "Q"  # 0xBC incompat_flags
    "H"  # 0xC4 csum_type
    "B"  # 0xC6 root_level
    "B"  # 0xC7 chunk_root_level
    "B"  # 0xC8 log_root_level
    "98s"  # 0xC9 dev_item (of this device)
    "256s"  # 0x12B label
    "Q"  # 0x22B cache_generation
    "Q"  # 0x233 uuid_tree_generation
    "16s"  # 0x23B metadata_uuid
)
SYS_CHUNK_ARRAY_OFFSET = 0x32B
SYS_CHUNK_ARRAY_MAX = 2048
OFF_ROOT = 0x50
OFF_CHUNK_ROOT = 0x58
OFF_NODESIZE = 0x94
OFF_SYS_CHUNK_ARRAY_SIZE = 0xA0
OFF_INCOMPAT = 0xBC
OFF_CSUM_TYPE = 0xC4
OFF_DEV_ITEM = 0xC9


class Superblock(NamedTuple):
    csum: bytes
    fsid: bytes
    bytenr: int
    flags: int
    magic: bytes
    generation: int
    root: int
    chunk_root: int
    log_root: int
    log_root_transid: int
    total_bytes: int
    bytes_used: int
    root_dir_objectid: int
    num_devices: int
    sectorsize: int
    nodesize: int
    leafsize: int
    stripesize: int
    sys_chunk_array_size: int
    chunk_root_generation: int
    compat_flags: int
    compat_ro_flags: int
    incompat_flags: int
    csum_type: int
    root_level: int
    chunk_root_level: int
    log_root_level: int
    dev_item: bytes
    label: bytes
    cache_generation: int
    uuid_tree_generation: int
    metadata_uuid: bytes

    @classmethod
    def from_bytes(cls, raw: bytes) -> "Superblock":
        return cls(*SUPERBLOCK.unpack_from(raw))


# csum_type
CSUM_CRC32C, CSUM_XXHASH, CSUM_SHA256, CSUM_BLAKE2 = 0, 1, 2, 3
CSUM_NAMES = {0: "crc32c", 1: "xxhash64", 2: "sha256", 3: "blake2b"}

# incompat_flags, with the names btrfs-progs prints
INCOMPAT_NAMES = {
    0x1: "mixed_backref",
    0x2: "default_subvol",
    0x4: "mixed_groups",
    0x8: "compress_lzo",
    0x10: "compress_zstd",
    0x20: "big_metadata",
    0x40: "extended_iref",
    0x80: "raid56",
    0x100: "skinny_metadata",
    0x200: "no_holes",
    0x400: "metadata_uuid",
    0x800: "raid1c34",
    0x1000: "zoned",
    0x2000: "extent_tree_v2",
    0x4000: "raid_stripe_tree",
    0x10000: "simple_quota",
}
INCOMPAT_METADATA_UUID = 0x400
# What this reader understands. raid56 is accepted at mount; a RAID5/6 chunk is refused
# when read. zoned changes where the superblock lives; extent_tree_v2 and raid_stripe_tree
# change how logical addresses map: all refused.
INCOMPAT_SUPPORTED = 0x1 | 0x2 | 0x4 | 0x8 | 0x10 | 0x20 | 0x40 | 0x80 | 0x100 | 0x200 | 0x400 | 0x800 | 0x10000

# --- "dev_item" (struct btrfs_dev_item, 98 bytes) ---------------------------------------------
DEV_ITEM = struct.Struct("<QQQIIIQQQIBB16s16s")  # devid, total_bytes, bytes_used, io_align,
# io_width, sector_size, type, generation, start_offset, dev_group, seek_speed, bandwidth, uuid, fsid


class DevItem(NamedTuple):
    devid: int
    total_bytes: int
    bytes_used: int
    io_align: int
    io_width: int
    sector_size: int
    type: int
    generation: int
    start_offset: int
    dev_group: int
    seek_speed: int
    bandwidth: int
    uuid: bytes
    fsid: bytes

    @classmethod
    def from_bytes(cls, raw: bytes, offset: int = 0) -> "DevItem":
        return cls(*DEV_ITEM.unpack_from(raw, offset))


# --- keys (struct btrfs_disk_key): objectid, type, offset --------------------------------------
DISK_KEY = struct.Struct("<QBQ")

# --- "Tree block header" (struct btrfs_header, 101 bytes) --------------------------------------
HEADER = struct.Struct("<32s16sQQ16sQQIB")  # csum, fsid, bytenr, flags, chunk_tree_uuid,
HEADER_SIZE = HEADER.size  # generation, owner, nritems, level


class Header(NamedTuple):
    csum: bytes
    fsid: bytes
    bytenr: int
    flags: int
    chunk_tree_uuid: bytes
    generation: int
    owner: int
    nritems: int
    level: int

    @classmethod
    def from_bytes(cls, raw: bytes) -> "Header":
        return cls(*HEADER.unpack_from(raw))


MAX_LEVEL = 8  # BTRFS_MAX_LEVEL: levels 0 (leaf) .. 7
# leaf item (struct btrfs_item): key, data offset (from the end of the header), data size
ITEM = struct.Struct("<QBQII")
# node pointer (struct btrfs_key_ptr): key, child block (logical), generation
KEY_PTR = struct.Struct("<QBQQQ")

# --- key types and well-known object ids (btrfs_tree.h) ----------------------------------------
INODE_ITEM_KEY = 1
INODE_REF_KEY = 12
DIR_ITEM_KEY = 84
DIR_INDEX_KEY = 96
EXTENT_DATA_KEY = 108
ROOT_ITEM_KEY = 132
ROOT_REF_KEY = 156
ROOT_BACKREF_KEY = 144
CHUNK_ITEM_KEY = 228

ROOT_TREE_OBJECTID = 1
CHUNK_TREE_OBJECTID = 3
FS_TREE_OBJECTID = 5
ROOT_TREE_DIR_OBJECTID = 6
FIRST_CHUNK_TREE_OBJECTID = 256
FIRST_FREE_OBJECTID = 256
LAST_FREE_OBJECTID = (1 << 64) - 256
MAX_KEY_OFFSET = (1 << 64) - 1

# --- "Chunk item" (struct btrfs_chunk + stripes) -------------------------------------------------
CHUNK = struct.Struct("<QQQQIIIHH")  # length, owner, stripe_len, type, io_align, io_width,
# sector_size, num_stripes, sub_stripes
STRIPE = struct.Struct("<QQ16s")  # devid, offset, dev_uuid

# block group type / profile bits
BG_DATA, BG_SYSTEM, BG_METADATA = 0x1, 0x2, 0x4
BG_RAID0, BG_RAID1, BG_DUP, BG_RAID10 = 0x8, 0x10, 0x20, 0x40
BG_RAID5, BG_RAID6, BG_RAID1C3, BG_RAID1C4 = 0x80, 0x100, 0x200, 0x400
BG_PROFILE_MASK = 0x7F8

# --- "Inode item" (struct btrfs_inode_item, 160 bytes) ------------------------------------------
# generation, transid, size, nbytes, block_group, nlink, uid, gid, mode, rdev, flags (the
# part the driver uses), then sequence, 32 reserved bytes and four packed 12-byte timespecs
# (atime, ctime, mtime, otime: u64 seconds, u32 nanoseconds) from byte 112.
INODE_ITEM_SIZE = 160
INODE_FIXED = struct.Struct("<QQQQQIIIIQQ")
INODE_MTIME = struct.Struct("<Q")
INODE_MTIME_OFFSET = 136


class InodeItem(NamedTuple):
    size: int
    nlink: int
    mode: int
    flags: int
    mtime: int

    @classmethod
    def from_bytes(cls, raw: bytes, offset: int = 0) -> "InodeItem":
        _gen, _transid, size, _nbytes, _bg, nlink, _uid, _gid, mode, _rdev, flags = INODE_FIXED.unpack_from(raw, offset)
        (mtime,) = INODE_MTIME.unpack_from(raw, offset + INODE_MTIME_OFFSET)
        return cls(size, nlink, mode, flags, mtime)


S_IFMT, S_IFREG, S_IFDIR, S_IFLNK = 0o170000, 0o100000, 0o040000, 0o120000

# --- "Root item" (struct btrfs_root_item): an inode item, then the tree's root -----------------
ROOT_ITEM_TREE = struct.Struct("<QQQ")  # generation, root_dirid, bytenr at byte 160
ROOT_ITEM_TREE_OFFSET = INODE_ITEM_SIZE
ROOT_ITEM_LEVEL_OFFSET = 238
ROOT_ITEM_MIN_SIZE = 239


# --- "Root ref" (struct btrfs_root_ref, then the name): where a subvolume is linked ------
ROOT_REF = struct.Struct("<QQH")  # dirid (directory in the parent tree), sequence, name_len
# --- "Inode ref" (struct btrfs_inode_ref, then the name): a name of an inode in its parent --
INODE_REF = struct.Struct("<QH")  # index, name_len

# --- "Dir item" (struct btrfs_dir_item, then name, then data) -----------------------------------
DIR_ITEM = struct.Struct("<QBQQHHB")  # location key, transid, data_len, name_len, type
FT_REG_FILE, FT_DIR, FT_SYMLINK = 1, 2, 7

# --- "File extent item" (struct btrfs_file_extent_item) ------------------------------------------
FILE_EXTENT = struct.Struct("<QQBBHB")  # generation, ram_bytes, compression, encryption,
FILE_EXTENT_HEAD = FILE_EXTENT.size  # other_encoding, type (21 bytes; inline data follows)
FILE_EXTENT_DISK = struct.Struct("<QQQQ")  # disk_bytenr, disk_num_bytes, offset, num_bytes
EXTENT_INLINE, EXTENT_REG, EXTENT_PREALLOC = 0, 1, 2
COMPRESS_NONE, COMPRESS_ZLIB, COMPRESS_LZO, COMPRESS_ZSTD = 0, 1, 2, 3
COMPRESS_NAMES = {1: "zlib", 2: "lzo", 3: "zstd"}
