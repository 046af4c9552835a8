"""The ext superblock checked once: geometry, features, identity ("The Super Block",
"Block Groups" and "Super Block Checksum" in the kernel's ext4 document)."""

from __future__ import annotations

from typing import NamedTuple

from ... import crc32c
from ...errors import CorruptImage, LimitExceeded, Unsupported
from ...limits import LIMITS
from ...source import ByteSource
from .layout import (
    CHECKSUM_TYPE_CRC32C,
    COMPAT_DIR_INDEX,
    COMPAT_HAS_JOURNAL,
    COMPAT_SPARSE_SUPER2,
    FLAGS_UNSIGNED_HASH,
    GOOD_OLD_INODE_SIZE,
    GROUP_DESC_MAX,
    GROUP_DESC_MIN_64,
    INCOMPAT_64BIT,
    INCOMPAT_CSUM_SEED,
    INCOMPAT_EXT3,
    INCOMPAT_LARGEDIR,
    INCOMPAT_NAMES,
    INCOMPAT_RECOVER,
    INCOMPAT_SUPPORTED,
    RO_COMPAT_EXT3,
    RO_COMPAT_METADATA_CSUM,
    RO_COMPAT_SPARSE_SUPER,
    STATE_ERRORS,
    SUPER_MAGIC,
    SUPERBLOCK_CHECKSUM_OFFSET,
    SUPERBLOCK_OFFSET,
    SUPERBLOCK_SIZE,
    parse_superblock,
)



class Geometry(NamedTuple):
    """The superblock values the driver works with, checked for consistency by probe."""

    block_size: int
    blocks_count: int
    first_data_block: int
    blocks_per_group: int
    inodes_per_group: int
    inodes_count: int
    inode_size: int
    desc_size: int
    groups: int
    first_meta_bg: int
    compat: int
    incompat: int
    ro_compat: int
    backup_bgs: tuple[int, int]
    metadata_csum: bool
    csum_seed: int
    hash_seed: bytes
    unsigned_hash: bool

    @property
    def superblock_block(self) -> int:
        return SUPERBLOCK_OFFSET // self.block_size

    @property
    def inode_table_blocks(self) -> int:
        return -(-self.inodes_per_group * self.inode_size // self.block_size)

    @property
    def dir_index(self) -> bool:
        return bool(self.compat & COMPAT_DIR_INDEX)

    @property
    def large_dir(self) -> bool:
        return bool(self.incompat & INCOMPAT_LARGEDIR)

    def group_first_block(self, group: int) -> int:
        return self.first_data_block + group * self.blocks_per_group

    def has_super(self, group: int) -> bool:
        """Whether a group holds a superblock backup (and so, with meta_bg, shifts by one)."""
        if group == 0:
            return True
        if self.compat & COMPAT_SPARSE_SUPER2:
            return group in self.backup_bgs
        if not self.ro_compat & RO_COMPAT_SPARSE_SUPER or group == 1:
            return True
        if group % 2 == 0:
            return False
        for base in (3, 5, 7):
            power = base
            while power < group:
                power *= base
            if power == group:
                return True
        return False


def _feature_names(bits: int) -> str:
    names = []
    for bit in range(32):
        if bits & (1 << bit):
            names.append(INCOMPAT_NAMES.get(1 << bit, f"unknown bit {1 << bit:#x}"))
    return ", ".join(names)


def _uuid(raw: bytes) -> str:
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class Volume(NamedTuple):
    """What probe learns from a superblock."""

    geometry: Geometry
    kind: str
    uuid: str
    label: str | None
    warnings: list[str]


def read_superblock(source: ByteSource) -> Volume | None:
    """The checked superblock of ``source``, or None when it has no ext magic."""
    if source.size < SUPERBLOCK_OFFSET + SUPERBLOCK_SIZE:
        return None
    raw = source.pread(SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE)
    sb = parse_superblock(raw)
    if sb["magic"] != SUPER_MAGIC:
        return None
    name = source.name

    def bad(message: str, field_offset: int) -> CorruptImage:
        return CorruptImage(f"ext superblock: {message}", where=name, offset=SUPERBLOCK_OFFSET + field_offset)

    unknown = sb["feature_incompat"] & ~INCOMPAT_SUPPORTED
    if unknown:
        raise Unsupported(f"ext: incompatible features not supported: {_feature_names(unknown)}", where=name,
                          offset=SUPERBLOCK_OFFSET + 0x60)
    metadata_csum = bool(sb["feature_ro_compat"] & RO_COMPAT_METADATA_CSUM)
    if metadata_csum:
        if sb["checksum_type"] != CHECKSUM_TYPE_CRC32C:
            raise Unsupported(f"ext: checksum type {sb['checksum_type']} (only crc32c)", where=name,
                              offset=SUPERBLOCK_OFFSET + 0x175)
        expected = crc32c.update(0xFFFFFFFF, raw[:SUPERBLOCK_CHECKSUM_OFFSET])
        if expected != sb["checksum"]:
            raise bad("checksum mismatch", SUPERBLOCK_CHECKSUM_OFFSET)
    if sb["rev_level"] > 1:
        raise Unsupported(f"ext: revision level {sb['rev_level']}", where=name, offset=SUPERBLOCK_OFFSET + 0x4C)
    if sb["log_block_size"] > 6:
        raise bad(f"block size 2^{10 + sb['log_block_size']}", 0x18)
    block_size = 1024 << sb["log_block_size"]
    inode_size = sb["inode_size"] if sb["rev_level"] else GOOD_OLD_INODE_SIZE
    if inode_size < GOOD_OLD_INODE_SIZE or inode_size > block_size or inode_size & (inode_size - 1):
        raise bad(f"inode size {inode_size}", 0x58)
    incompat = sb["feature_incompat"]
    blocks_count = sb["blocks_count_lo"]
    desc_size = 32
    if incompat & INCOMPAT_64BIT:
        blocks_count |= sb["blocks_count_hi"] << 32
        desc_size = sb["desc_size"]
        if not GROUP_DESC_MIN_64 <= desc_size <= GROUP_DESC_MAX or desc_size & (desc_size - 1):
            raise bad(f"group descriptor size {desc_size}", 0xFE)
    if sb["first_data_block"] >= blocks_count:
        raise bad(f"first data block {sb['first_data_block']} of {blocks_count}", 0x14)
    if blocks_count * block_size > source.size:
        raise bad(f"{blocks_count} blocks of {block_size} bytes do not fit in {source.size} bytes", 0x04)
    bpg, ipg = sb["blocks_per_group"], sb["inodes_per_group"]
    if bpg == 0:
        raise bad("zero blocks per group", 0x20)
    if ipg == 0 or ipg > block_size * 8:
        raise bad(f"{ipg} inodes per group", 0x28)
    groups = -(-(blocks_count - sb["first_data_block"]) // bpg)
    if groups > LIMITS.max_block_groups:
        raise LimitExceeded(f"ext: {groups} block groups (max_block_groups)", where=name,
                            offset=SUPERBLOCK_OFFSET + 0x20)
    if sb["inodes_count"] > groups * ipg or sb["inodes_count"] < 2:
        raise bad(f"{sb['inodes_count']} inodes for {groups} groups of {ipg}", 0x00)
    if incompat & INCOMPAT_CSUM_SEED:
        csum_seed = sb["checksum_seed"]
    else:
        csum_seed = crc32c.update(0xFFFFFFFF, sb["uuid"])
    geometry = Geometry(
        block_size=block_size,
        blocks_count=blocks_count,
        first_data_block=sb["first_data_block"],
        blocks_per_group=bpg,
        inodes_per_group=ipg,
        inodes_count=sb["inodes_count"],
        inode_size=inode_size,
        desc_size=desc_size,
        groups=groups,
        first_meta_bg=sb["first_meta_bg"],
        compat=sb["feature_compat"],
        incompat=incompat,
        ro_compat=sb["feature_ro_compat"],
        backup_bgs=(sb["backup_bg0"], sb["backup_bg1"]),
        metadata_csum=metadata_csum,
        csum_seed=csum_seed,
        hash_seed=sb["hash_seed"],
        unsigned_hash=bool(sb["flags"] & FLAGS_UNSIGNED_HASH),
    )
    if incompat & ~INCOMPAT_EXT3 or sb["feature_ro_compat"] & ~RO_COMPAT_EXT3:
        kind = "ext4"
    elif sb["feature_compat"] & COMPAT_HAS_JOURNAL:
        kind = "ext3"
    else:
        kind = "ext2"
    warnings = []
    if incompat & INCOMPAT_RECOVER:
        warnings.append("needs journal recovery: reading the on-disk state, recent changes may be missing")
    if sb["state"] & STATE_ERRORS:
        warnings.append("marked as having errors: e2fsck has not repaired it since")
    label = sb["volume_name"].split(b"\0", 1)[0]
    return Volume(geometry, kind, _uuid(sb["uuid"]), label.decode("utf-8", "replace") if label else None, warnings)
