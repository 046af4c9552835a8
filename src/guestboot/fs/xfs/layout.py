"""XFS on-disk structures, each declared once. All integers are big-endian except the
CRC-32C fields of v5 metadata, which are stored little-endian.

Section names are those of the kernel's "XFS Algorithms & Data Structures" document
(Documentation/filesystems/xfs/ in the kernel tree, the "XFS Algorithms & Data
Structures" book).
"""

from __future__ import annotations

import struct
from typing import NamedTuple

# --- "Superblocks" ---------------------------------------------------------------------------

SB_MAGIC = 0x58465342  # "XFSB"
SUPERBLOCK = struct.Struct(
    ">I I Q Q Q 16s Q Q Q Q I I I I I H H H H 12s B B B B B B B B Q Q Q Q Q Q H B B I I I B B H I I I"
    " I I I I I I Q Q 16s"
)
SUPERBLOCK_FIELDS = (
    "magicnum blocksize dblocks rblocks rextents uuid logstart rootino rbmino rsumino rextsize agblocks"
    " agcount rbmblocks logblocks versionnum sectsize inodesize inopblock fname blocklog sectlog inodelog"
    " inopblog agblklog rextslog inprogress imax_pct icount ifree fdblocks frextents uquotino gquotino"
    " qflags flags shared_vn inoalignmt unit width dirblklog logsectlog logsectsize logsunit features2"
    " bad_features2 features_compat features_ro_compat features_incompat features_log_incompat crc"
    " spino_align pquotino lsn meta_uuid"
).split()
SB_CRC_OFFSET = 224  # sb_crc

# sb_versionnum: the low nibble is the version; the rest feature bits
VERSION_NUMBITS = 0x000F
VERSION_DIRV2BIT = 0x2000
VERSION_BORGBIT = 0x4000  # ASCII case-insensitive names ("-n version=ci")
VERSION_MOREBITSBIT = 0x8000
# sb_features2
FEATURES2_CRC = 0x0100
FEATURES2_FTYPE = 0x0200
# sb_features_incompat (v5)
INCOMPAT_FTYPE = 0x01
INCOMPAT_SPINODES = 0x02
INCOMPAT_META_UUID = 0x04
INCOMPAT_BIGTIME = 0x08
INCOMPAT_NEEDSREPAIR = 0x10
INCOMPAT_NREXT64 = 0x20
INCOMPAT_NAMES = {
    INCOMPAT_FTYPE: "ftype",
    INCOMPAT_SPINODES: "sparse inodes",
    INCOMPAT_META_UUID: "meta_uuid",
    INCOMPAT_BIGTIME: "bigtime",
    INCOMPAT_NEEDSREPAIR: "needsrepair",
    INCOMPAT_NREXT64: "nrext64",
    0x40: "exchange range",
    0x80: "parent pointers",
    0x100: "metadata directory",
}
INCOMPAT_READ = (
    INCOMPAT_FTYPE | INCOMPAT_SPINODES | INCOMPAT_META_UUID | INCOMPAT_BIGTIME | INCOMPAT_NEEDSREPAIR
    | INCOMPAT_NREXT64
    | 0x40  # exchange range: a log-level feature, the on-disk trees are as usual
    | 0x80  # parent pointers: extended attributes we never read
)

# --- "On-disk Inode" ---------------------------------------------------------------------------

INODE_MAGIC = 0x494E  # "IN"
# di_magic .. di_gen: the core common to every version
INODE_CORE = struct.Struct(">H H B B H I I I H H 8s I I I I I I Q Q I I H B b I H H I")
INODE_V2_SIZE = 100  # v1/v2 core; the data fork follows
INODE_V3_SIZE = 176  # v3 core; the data fork follows
INODE_V3 = struct.Struct(">I I Q Q Q I 12s I I Q 16s")  # di_next_unlinked .. di_uuid, at 96
INODE_V3_OFFSET = 96
INODE_CRC_OFFSET = 100
INODE_BIG_NEXTENTS = struct.Struct(">Q")  # at 24 with nrext64 (replaces di_pad / di_flushiter)
INODE_BIG_NEXTENTS_OFFSET = 24

FMT_DEV = 0
FMT_LOCAL = 1
FMT_EXTENTS = 2
FMT_BTREE = 3
FORMAT_NAMES = {0: "device", 1: "local", 2: "extents", 3: "btree", 4: "uuid", 5: "reverse map"}

DIFLAG_REALTIME = 0x0001
DIFLAG2_REFLINK = 0x0002
DIFLAG2_BIGTIME = 0x0008
DIFLAG2_NREXT64 = 0x0010

S_IFMT = 0o170000
S_IFDIR = 0o040000
S_IFREG = 0o100000
S_IFLNK = 0o120000

BIGTIME_EPOCH_OFFSET = 1 << 31  # bigtime counts nanoseconds from 1901-12-13


class Inode(NamedTuple):
    """The fields of one inode the driver uses, with where it lives."""

    ino: int
    offset: int  # byte offset of the inode in the volume
    mode: int
    version: int
    format: int
    nlink: int
    size: int
    nextents: int
    forkoff: int  # attribute fork offset in 8-byte units, 0: no attribute fork
    flags: int
    flags2: int
    mtime: int
    fork: bytes  # the data fork (literal area up to the attribute fork)
    fork_offset: int  # byte offset of the data fork in the volume


# --- "Data Extents" ---------------------------------------------------------------------------

BMBT_REC = struct.Struct(">QQ")  # 128-bit packed: flag:1 startoff:54 startblock:52 blockcount:21


class Extent(NamedTuple):
    logical: int  # file block
    physical: int  # file-system block number (agno << agblklog | agbno)
    count: int
    unwritten: bool


def unpack_extent(raw: bytes, pos: int) -> Extent:
    hi, lo = BMBT_REC.unpack_from(raw, pos)
    return Extent(
        logical=(hi >> 9) & ((1 << 54) - 1),
        physical=((hi & 0x1FF) << 43) | (lo >> 21),
        count=lo & ((1 << 21) - 1),
        unwritten=bool(hi >> 63),
    )


# --- "B+tree Extent List" ---------------------------------------------------------------------

BMDR_HEADER = struct.Struct(">HH")  # the btree root in the inode: bb_level, bb_numrecs
BMAP_MAGIC = 0x424D4150  # "BMAP" (v4)
BMAP_CRC_MAGIC = 0x424D4133  # "BMA3" (v5)
BTREE_LBLOCK = struct.Struct(">IHHQQ")  # magic, level, numrecs, leftsib, rightsib
BTREE_LBLOCK_CRC = struct.Struct(">QQ16sQ")  # blkno, lsn, uuid, owner; then crc (le), pad
BTREE_LBLOCK_SIZE = 24
BTREE_LBLOCK_CRC_SIZE = 72
BTREE_LBLOCK_CRC_OFFSET = 64
BMBT_KEY = struct.Struct(">Q")  # startoff
BMBT_PTR = struct.Struct(">Q")  # file-system block

# --- "Directories" ---------------------------------------------------------------------------

DIR2_SF_HEADER = struct.Struct(">BB")  # count, i8count; then the parent (4 or 8 bytes)
DIR2_BLOCK_MAGIC = 0x58443242  # "XD2B"
DIR2_DATA_MAGIC = 0x58443244  # "XD2D"
DIR3_BLOCK_MAGIC = 0x58444233  # "XDB3"
DIR3_DATA_MAGIC = 0x58444433  # "XDD3"
DIR2_DATA_HEADER_SIZE = 16  # magic + 3 bestfree (offset, length)
DIR3_DATA_HEADER_SIZE = 64  # xfs_dir3_blk_hdr (48) + bestfree (12) + pad (4)
DIR3_BLK_HDR = struct.Struct(">I4sQQ16sQ")  # magic, crc (le), blkno, lsn, uuid, owner
DIR3_CRC_OFFSET = 4
DIR2_BLOCK_TAIL = struct.Struct(">II")  # count, stale: the last 8 bytes of a block directory
DIR2_LEAF_ENTRY_SIZE = 8  # hashval, address
DIR2_DATA_ENTRY_HEAD = struct.Struct(">QB")  # inumber, namelen
DIR2_DATA_UNUSED = struct.Struct(">HH")  # freetag 0xffff, length
DIR2_DATA_FREE_TAG = 0xFFFF
DIR2_LEAF_OFFSET = 32 << 30  # byte offset in a directory where the leaf blocks begin

# --- "Symbolic Links" ---------------------------------------------------------------------------

SYMLINK_MAGIC = 0x58534C4D  # "XSLM"
SYMLINK_HEADER = struct.Struct(">III4s16sQQQ")  # magic, offset, bytes, crc (le), uuid, owner, blkno, lsn
SYMLINK_CRC_OFFSET = 12
SYMLINK_MAXLEN = 1024

CRC_LE = struct.Struct("<I")

# --- "Leaf Directories", "Node Directories" (the hash index of a directory) ----------------

DA_BLKINFO = struct.Struct(">IIHH")  # forw, back, magic, pad
DA3_BLKINFO = struct.Struct(">IIHH4sQQ16sQ")  # forw, back, magic, pad, crc (le), blkno, lsn, uuid, owner
DA3_CRC_OFFSET = 12
DIR2_LEAF1_MAGIC = 0xD2F1
DIR3_LEAF1_MAGIC = 0x3DF1
DIR2_LEAFN_MAGIC = 0xD2FF
DIR3_LEAFN_MAGIC = 0x3DFF
DA_NODE_MAGIC = 0xFEBE
DA3_NODE_MAGIC = 0x3EBE
LEAF_COUNTS = struct.Struct(">HH")  # leaf: count, stale; node: count, level (after the blkinfo)
DIR2_LEAF_HEADER_SIZE = 16
DIR3_LEAF_HEADER_SIZE = 64
LEAF_ENTRY = struct.Struct(">II")  # hashval, address (in 8-byte units of the data section)
NODE_ENTRY = struct.Struct(">II")  # hashval, before (directory block, in file-system blocks)
DA_NODE_MAXDEPTH = 5  # the kernel's XFS_DA_NODE_MAXDEPTH
