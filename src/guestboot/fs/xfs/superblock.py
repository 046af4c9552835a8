"""The XFS primary superblock (sector 0 of allocation group 0), checked once: geometry,
version and features. Section "Superblocks" of "XFS Algorithms & Data Structures"."""

from __future__ import annotations

from typing import NamedTuple

from ... import crc32c
from ...errors import CorruptImage, Unsupported
from ...source import ByteSource
from .layout import (
    CRC_LE,
    FEATURES2_CRC,
    FEATURES2_FTYPE,
    INCOMPAT_FTYPE,
    INCOMPAT_META_UUID,
    INCOMPAT_NAMES,
    INCOMPAT_NEEDSREPAIR,
    INCOMPAT_READ,
    SB_CRC_OFFSET,
    SB_MAGIC,
    SUPERBLOCK,
    SUPERBLOCK_FIELDS,
    VERSION_BORGBIT,
    VERSION_DIRV2BIT,
    VERSION_MOREBITSBIT,
    VERSION_NUMBITS,
)

MAX_DIR_BLOCK = 65536  # "-n size" is at most 64 KiB


class Geometry(NamedTuple):
    block_size: int
    block_log: int
    sector_size: int
    inode_size: int
    inode_log: int
    inodes_per_block_log: int
    ag_blocks: int
    ag_block_log: int
    ag_count: int
    data_blocks: int
    dir_block_size: int
    root_ino: int
    crc: bool  # v5: CRC-32C on every metadata block, v3 inodes
    ftype: bool  # directory entries carry the file type
    meta_uuid: bytes  # the UUID stamped in v5 metadata headers
    ascii_ci: bool  # "-n version=ci": names hash case-insensitively (lookups scan instead)

    def fsb_to_block(self, fsb: int) -> int | None:
        """The linear block of a file-system block number (agno << agblklog | agbno), or
        None when the AG or the block in it is out of range."""
        agno = fsb >> self.ag_block_log
        agbno = fsb & ((1 << self.ag_block_log) - 1)
        if agno >= self.ag_count or agbno >= self.ag_blocks:
            return None
        block = agno * self.ag_blocks + agbno
        return block if block < self.data_blocks else None

    def inode_offset(self, ino: int) -> int | None:
        """The byte offset of inode ``ino``, or None when the number points outside the volume."""
        per_block_log = self.inodes_per_block_log
        agno = ino >> (self.ag_block_log + per_block_log)
        agino = ino & ((1 << (self.ag_block_log + per_block_log)) - 1)
        agbno = agino >> per_block_log
        if agno >= self.ag_count or agbno >= self.ag_blocks:
            return None
        block = agno * self.ag_blocks + agbno
        if block >= self.data_blocks:
            return None
        return block * self.block_size + (agino & ((1 << per_block_log) - 1)) * self.inode_size


class Volume(NamedTuple):
    geometry: Geometry
    uuid: str
    label: str | None
    warnings: list[str]


def _uuid(raw: bytes) -> str:
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _power_of_two(value: int, low: int, high: int) -> bool:
    return low <= value <= high and value & (value - 1) == 0


def read_superblock(source: ByteSource) -> Volume | None:
    """The checked superblock of ``source``; None when there is no XFS magic."""
    name = source.name
    if source.size < SUPERBLOCK.size or source.pread(0, 4) != SB_MAGIC.to_bytes(4, "big"):
        return None
    sb = dict(zip(SUPERBLOCK_FIELDS, SUPERBLOCK.unpack(source.pread(0, SUPERBLOCK.size))))

    def corrupt(message: str, offset: int = 0) -> CorruptImage:
        return CorruptImage(f"xfs superblock: {message}", where=name, offset=offset)

    version = sb["versionnum"] & VERSION_NUMBITS
    if version not in (4, 5):
        if version in (1, 2, 3):
            raise Unsupported(f"xfs: version {version} superblock (only 4 and 5)", where=name, offset=100)
        raise corrupt(f"version {version}", 100)
    if not sb["versionnum"] & VERSION_DIRV2BIT and version == 4:
        raise Unsupported("xfs: version 1 directories", where=name, offset=100)
    sector = sb["sectsize"]
    if not _power_of_two(sector, 512, 32768) or sector != 1 << sb["sectlog"]:
        raise corrupt(f"sector size {sector} (log {sb['sectlog']})", 102)
    if sector > source.size:
        raise corrupt(f"sector of {sector} bytes does not fit in {source.size} bytes", 102)
    crc = version == 5
    if crc:
        if not sb["features2"] & FEATURES2_CRC:
            raise corrupt("version 5 without the CRC feature bit", 200)
        raw = source.pread(0, sector)
        expected = crc32c.crc32c(raw[:SB_CRC_OFFSET] + bytes(4) + raw[SB_CRC_OFFSET + 4 :])
        if CRC_LE.unpack_from(raw, SB_CRC_OFFSET)[0] != expected:
            raise corrupt("checksum mismatch", SB_CRC_OFFSET)
        unknown = sb["features_incompat"] & ~INCOMPAT_READ
        if unknown:
            names = [INCOMPAT_NAMES.get(1 << b, f"unknown bit {1 << b:#x}") for b in range(32) if unknown >> b & 1]
            raise Unsupported(f"xfs: incompatible features {', '.join(names)}", where=name, offset=216)
    block = sb["blocksize"]
    if not _power_of_two(block, 512, 65536) or block != 1 << sb["blocklog"] or block < sector:
        raise corrupt(f"block size {block} (log {sb['blocklog']}, sector {sector})", 4)
    inode = sb["inodesize"]
    if not _power_of_two(inode, 512 if crc else 256, 2048) or inode != 1 << sb["inodelog"] or inode > block:
        raise corrupt(f"inode size {inode} (log {sb['inodelog']})", 104)
    if sb["inopblock"] != block // inode or sb["inopblog"] != sb["blocklog"] - sb["inodelog"]:
        raise corrupt(f"{sb['inopblock']} inodes per block of {block} bytes", 106)
    ag_blocks, ag_log, ag_count, dblocks = sb["agblocks"], sb["agblklog"], sb["agcount"], sb["dblocks"]
    if not 1 <= ag_log <= 31 or not (1 << (ag_log - 1)) < ag_blocks <= (1 << ag_log):
        raise corrupt(f"{ag_blocks} blocks per allocation group (log {ag_log})", 84)
    if ag_count == 0 or dblocks == 0 or not (ag_count - 1) * ag_blocks < dblocks <= ag_count * ag_blocks:
        raise corrupt(f"{dblocks} blocks in {ag_count} allocation groups of {ag_blocks}", 8)
    if dblocks * block > source.size:
        raise corrupt(f"{dblocks} blocks of {block} bytes do not fit in {source.size} bytes", 8)
    if sb["rblocks"] or sb["rextents"]:
        raise Unsupported(f"xfs: realtime device ({sb['rblocks']} blocks)", where=name, offset=16)
    dir_block = block << sb["dirblklog"]
    if sb["dirblklog"] > 16 or dir_block > MAX_DIR_BLOCK:
        raise corrupt(f"directory block log {sb['dirblklog']}", 192)
    if sb["inprogress"]:
        raise corrupt("mkfs did not finish (sb_inprogress)", 126)
    if crc:
        ftype = bool(sb["features_incompat"] & INCOMPAT_FTYPE)
    else:
        ftype = bool(sb["versionnum"] & VERSION_MOREBITSBIT and sb["features2"] & FEATURES2_FTYPE)
    meta = sb["meta_uuid"] if crc and sb["features_incompat"] & INCOMPAT_META_UUID else sb["uuid"]
    warnings = []
    if crc and sb["features_incompat"] & INCOMPAT_NEEDSREPAIR:
        warnings.append("xfs: marked as needing xfs_repair; reading the on-disk state")
    geometry = Geometry(
        block_size=block, block_log=sb["blocklog"], sector_size=sector, inode_size=inode,
        inode_log=sb["inodelog"], inodes_per_block_log=sb["inopblog"], ag_blocks=ag_blocks, ag_block_log=ag_log,
        ag_count=ag_count, data_blocks=dblocks, dir_block_size=dir_block, root_ino=sb["rootino"], crc=crc,
        ftype=ftype, meta_uuid=meta, ascii_ci=bool(sb["versionnum"] & VERSION_BORGBIT),
    )
    if geometry.inode_offset(sb["rootino"]) is None:
        raise corrupt(f"root inode {sb['rootino']} outside the volume", 56)
    label = sb["fname"].split(b"\0", 1)[0]
    return Volume(geometry, _uuid(sb["uuid"]), label.decode("utf-8", "replace") if label else None, warnings)
