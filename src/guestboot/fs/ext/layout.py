"""On-disk layouts of ext2/ext3/ext4, each declared once.

Field offsets follow the kernel's "ext4 Data Structures and Algorithms" document
(Documentation/filesystems/ext4/) and e2fsprogs' lib/ext2fs/ext2_fs.h. Only the fields
this read-only driver uses are named; a layout is a table of (name, offset, format) that
is compiled once into one precompiled struct.Struct with padding in between.
"""

from __future__ import annotations

import struct
from typing import Any, NamedTuple


def _compile(fields: tuple[tuple[str, int, str], ...], size: int) -> tuple[struct.Struct, tuple[str, ...]]:
    """One little-endian Struct for sorted, non-overlapping (name, offset, format) fields."""
    fmt = "<"
    pos = 0
    for _name, offset, code in fields:
        assert offset >= pos, _name
        if offset > pos:
            fmt += f"{offset - pos}x"
        fmt += code
        pos = offset + struct.calcsize("<" + code)
    if size > pos:
        fmt += f"{size - pos}x"
    return struct.Struct(fmt), tuple(name for name, _o, _c in fields)


def _record(fields: tuple[str, ...], values: tuple[Any, ...]) -> dict[str, Any]:
    return dict(zip(fields, values))


# --- 3.1 "The Super Block": 1024 bytes at byte 1024 of the volume -------------------------
SUPERBLOCK_OFFSET = 1024
SUPERBLOCK_SIZE = 1024
SUPER_MAGIC = 0xEF53
SUPERBLOCK_CHECKSUM_OFFSET = 0x3FC

_SUPER_FIELDS = (
    ("inodes_count", 0x00, "I"),
    ("blocks_count_lo", 0x04, "I"),
    ("first_data_block", 0x14, "I"),
    ("log_block_size", 0x18, "I"),
    ("log_cluster_size", 0x1C, "I"),
    ("blocks_per_group", 0x20, "I"),
    ("clusters_per_group", 0x24, "I"),
    ("inodes_per_group", 0x28, "I"),
    ("magic", 0x38, "H"),
    ("state", 0x3A, "H"),
    ("rev_level", 0x4C, "I"),
    ("first_ino", 0x54, "I"),
    ("inode_size", 0x58, "H"),
    ("feature_compat", 0x5C, "I"),
    ("feature_incompat", 0x60, "I"),
    ("feature_ro_compat", 0x64, "I"),
    ("uuid", 0x68, "16s"),
    ("volume_name", 0x78, "16s"),
    ("hash_seed", 0xEC, "16s"),
    ("def_hash_version", 0xFC, "B"),
    ("desc_size", 0xFE, "H"),
    ("first_meta_bg", 0x104, "I"),
    ("blocks_count_hi", 0x150, "I"),
    ("flags", 0x160, "I"),
    ("checksum_type", 0x175, "B"),
    ("backup_bg0", 0x24C, "I"),
    ("backup_bg1", 0x250, "I"),
    ("checksum_seed", 0x270, "I"),
    ("checksum", 0x3FC, "I"),
)
SUPERBLOCK, _SUPER_NAMES = _compile(_SUPER_FIELDS, SUPERBLOCK_SIZE)


SUPER_MAGIC_OFFSET = next(offset for name, offset, _fmt in _SUPER_FIELDS if name == "magic")


def parse_superblock(raw: bytes) -> dict[str, Any]:
    return _record(_SUPER_NAMES, SUPERBLOCK.unpack(raw))


# s_state
STATE_ERRORS = 0x2

# s_feature_compat
COMPAT_HAS_JOURNAL = 0x4
COMPAT_DIR_INDEX = 0x20
COMPAT_SPARSE_SUPER2 = 0x200

# s_feature_incompat, with the names e2fsprogs uses (lib/e2p/feature.c)
INCOMPAT_NAMES = {
    0x1: "compression",
    0x2: "filetype",
    0x4: "needs_recovery",
    0x8: "journal_dev",
    0x10: "meta_bg",
    0x40: "extent",
    0x80: "64bit",
    0x100: "mmp",
    0x200: "flex_bg",
    0x400: "ea_inode",
    0x1000: "dirdata",
    0x2000: "metadata_csum_seed",
    0x4000: "large_dir",
    0x8000: "inline_data",
    0x10000: "encrypt",
    0x20000: "casefold",
}
INCOMPAT_FILETYPE = 0x2
INCOMPAT_RECOVER = 0x4
INCOMPAT_META_BG = 0x10
INCOMPAT_EXTENTS = 0x40
INCOMPAT_64BIT = 0x80
INCOMPAT_CSUM_SEED = 0x2000
INCOMPAT_LARGEDIR = 0x4000
INCOMPAT_INLINE_DATA = 0x8000
# What this driver reads. mmp, flex_bg, ea_inode, large_dir, encrypt and casefold change
# nothing for a reader of plain files (encrypted inodes are refused one by one; casefold
# directories are searched by exact name, linearly).
INCOMPAT_SUPPORTED = (
    0x2 | 0x4 | 0x10 | 0x40 | 0x80 | 0x100 | 0x200 | 0x400 | 0x2000 | 0x4000 | 0x8000 | 0x10000 | 0x20000
)
# What ext3 knew; anything beyond makes the volume "ext4" (the rule blkid uses).
INCOMPAT_EXT3 = 0x2 | 0x4 | 0x10
RO_COMPAT_EXT3 = 0x1 | 0x2 | 0x4

# s_feature_ro_compat (a read-only driver may ignore unknown ones)
RO_COMPAT_SPARSE_SUPER = 0x1
RO_COMPAT_HUGE_FILE = 0x8
RO_COMPAT_GDT_CSUM = 0x10
RO_COMPAT_METADATA_CSUM = 0x400

# s_flags
FLAGS_UNSIGNED_HASH = 0x2

CHECKSUM_TYPE_CRC32C = 1

# --- 3.4 "Block Group Descriptors": 32 bytes, or s_desc_size (>= 64) with 64bit ----------
GROUP_DESC_32 = struct.Struct("<8xI18xH")  # bg_inode_table_lo at 0x8, bg_checksum at 0x1E
GROUP_DESC_64_HI = struct.Struct("<8xI")  # at 0x20: bg_inode_table_hi at 0x28
GROUP_DESC_CHECKSUM_OFFSET = 0x1E
GROUP_DESC_MIN_64 = 64
GROUP_DESC_MAX = 1024

# --- 4.1 "Index Nodes" (struct ext4_inode) ----------------------------------------------
GOOD_OLD_INODE_SIZE = 128
_INODE_FIELDS = (
    ("mode", 0x00, "H"),
    ("size_lo", 0x04, "I"),
    ("mtime", 0x10, "I"),
    ("dtime", 0x14, "I"),
    ("links_count", 0x1A, "H"),
    ("blocks_lo", 0x1C, "I"),
    ("flags", 0x20, "I"),
    ("i_block", 0x28, "60s"),
    ("generation", 0x64, "I"),
    ("file_acl_lo", 0x68, "I"),
    ("size_high", 0x6C, "I"),
    ("blocks_high", 0x74, "H"),
    ("file_acl_high", 0x76, "H"),
    ("checksum_lo", 0x7C, "H"),
)
INODE, _INODE_NAMES = _compile(_INODE_FIELDS, GOOD_OLD_INODE_SIZE)
INODE_EXTRA = struct.Struct("<HH")  # i_extra_isize, i_checksum_hi at 0x80
INODE_CHECKSUM_LO_OFFSET = 0x7C
INODE_CHECKSUM_HI_OFFSET = 0x82

S_IFMT = 0xF000
S_IFREG = 0x8000
S_IFDIR = 0x4000
S_IFLNK = 0xA000

# i_flags
INODE_INDEX_FL = 0x1000  # hashed (htree) directory
INODE_ENCRYPT_FL = 0x800
INODE_EXTENTS_FL = 0x80000
INODE_INLINE_DATA_FL = 0x10000000
INODE_CASEFOLD_FL = 0x40000000

I_BLOCK_SIZE = 60  # EXT4_N_BLOCKS * 4: 12 direct, single, double, triple indirect
DIRECT_BLOCKS = 12


class Inode(NamedTuple):
    ino: int
    offset: int  # byte offset of the inode in the volume (for error messages)
    mode: int
    size: int
    mtime: int
    links_count: int
    flags: int
    i_block: bytes
    generation: int
    raw: bytes  # the whole on-disk inode (in-inode extended attributes live in its tail)

    @classmethod
    def from_bytes(cls, ino: int, offset: int, raw: bytes) -> "Inode":
        f = _record(_INODE_NAMES, INODE.unpack_from(raw))
        return cls(
            ino=ino,
            offset=offset,
            mode=f["mode"],
            size=f["size_lo"] | (f["size_high"] << 32),
            mtime=f["mtime"],
            links_count=f["links_count"],
            flags=f["flags"],
            i_block=f["i_block"],
            generation=f["generation"],
            raw=raw,
        )


# --- 4.2 "The Contents of inode.i_block": extent tree ------------------------------------
EXTENT_MAGIC = 0xF30A
EXTENT_HEADER = struct.Struct("<HHHHI")  # eh_magic, eh_entries, eh_max, eh_depth, eh_generation
EXTENT_INDEX = struct.Struct("<IIH2x")  # ei_block, ei_leaf_lo, ei_leaf_hi
EXTENT_LEAF = struct.Struct("<IHHI")  # ee_block, ee_len, ee_start_hi, ee_start_lo
EXTENT_ENTRY_SIZE = 12
EXTENT_INIT_MAX_LEN = 32768  # ee_len above this marks an uninitialized extent

# --- 4.4 "Extended Attributes": in-inode area after i_extra_isize -----------------------
XATTR_MAGIC = 0xEA020000
XATTR_IBODY_HEADER = struct.Struct("<I")
XATTR_ENTRY = struct.Struct("<BBHIII")  # name_len, name_index, value_offs, value_inum, value_size, hash
XATTR_INDEX_SYSTEM = 7  # "system." prefix; inline data lives in "system.data"

# --- 5.2 "Directory Entries" --------------------------------------------------------------
DIRENT = struct.Struct("<IHBB")  # inode, rec_len, name_len, file_type
DIRENT_OLD = struct.Struct("<IHH")  # without the filetype feature: a 16-bit name_len
DIRENT_HEADER_SIZE = 8
DIRENT_TAIL_SIZE = 12  # metadata_csum tail: inode 0, rec_len 12, name_len 0, type 0xDE
DIRENT_TAIL_FILE_TYPE = 0xDE
DIRENT_TAIL_CHECKSUM = struct.Struct("<I")
INLINE_DIR_PARENT = struct.Struct("<I")  # first 4 bytes of an inline directory

# --- 5.2.3 "Hash Tree Directories" ------------------------------------------------------
DX_ROOT_INFO = struct.Struct("<IBBBB")  # reserved_zero, hash_version, info_length, indirect_levels, flags
DX_ROOT_INFO_OFFSET = 0x18  # after the fake "." (12 bytes) and ".." (12 byte header) entries
DX_COUNT_LIMIT = struct.Struct("<HHI")  # limit, count, block (the first dx_entry's block)
DX_ENTRY = struct.Struct("<II")  # hash, block
DX_NODE_OFFSET = 8  # interior nodes: one empty fake dirent, then count/limit
