"""The FAT boot sector checked once: geometry, FAT type, identity (fatgen103 sections 3.1
to 3.5).

A source is taken for FAT when the BPB's core fields are all plausible (a power-of-two
sector size of 512-4096, a power-of-two cluster size, reserved sectors, FATs and a media
byte as the specification allows) and the sector carries the jump instruction or the
0x55AA signature; or, with damaged core fields, when the extended boot record names the
type ("FAT12", "FAT16", "FAT32" after a 0x29 signature): then the damage is CorruptImage.
Anything else is not FAT (None), so a master boot record or another file system never
reads as a broken FAT.

The FAT type comes from the count of data clusters (3.5), never from the type string.
One exception, shared with Linux, GRUB and mkfs.fat: a BPB with BPB_FATSz16 = 0 has the
FAT32 layout (root directory in a cluster chain, BPB_RootEntCnt = 0) and is read as FAT32
even below 65525 clusters, silently: ``mkfs.fat -F 32`` makes such volumes and so do
installers for small ESPs on 4 KiB-sector disks; read any other way it would have no root
directory at all.
"""

from __future__ import annotations

from typing import NamedTuple

from ...errors import CorruptImage, Unsupported
from ...source import ByteSource
from .layout import (
    BOOT_SECTOR_SIZE,
    BOOT_SIGNATURES,
    DIR_ENTRY_SIZE,
    EXT_BPB_16_OFFSET,
    EXT_BPB_32_OFFSET,
    FAT12,
    FAT12_MAX_CLUSTERS,
    FAT16,
    FAT16_MAX_CLUSTERS,
    FAT32,
    FAT32_MAX_CLUSTERS,
    MEDIA_OK,
    SECTOR_SIZES,
    SIGNATURE,
    SIGNATURE_OFFSET,
    Bpb32,
    BpbCommon,
    ExtBpb,
    FatType,
)


class Geometry(NamedTuple):
    """Where everything is, in bytes from the start of the volume."""

    fat_type: FatType
    sector_size: int
    cluster_size: int
    clusters: int  # data clusters: valid cluster numbers are 2 .. clusters + 1
    fat_offset: int  # the FAT this driver reads (the active one on FAT32 without mirroring)
    fat_bytes: int  # size of one FAT
    root_offset: int  # FAT12/16: the fixed root directory region
    root_bytes: int  # FAT12/16: its size (0 on FAT32)
    root_cluster: int  # FAT32: first cluster of the root directory (0 on FAT12/16)
    data_offset: int  # byte offset of cluster 2
    volume_bytes: int
    volume_id: int
    warnings: tuple[str, ...]

    def cluster_offset(self, cluster: int) -> int:
        return self.data_offset + (cluster - 2) * self.cluster_size


def _power_of_two(value: int) -> bool:
    return value > 0 and value & (value - 1) == 0


def _named_fat(raw: bytes) -> bool:
    """The extended boot record says FAT (at either place it can be)."""
    for offset, names in ((EXT_BPB_16_OFFSET, (b"FAT12   ", b"FAT16   ", b"FAT     ")),
                          (EXT_BPB_32_OFFSET, (b"FAT32   ",))):
        ext = ExtBpb.from_bytes(raw, offset)
        if ext.boot_signature in BOOT_SIGNATURES and ext.fs_type in names:
            return True
    return False


def _plausible(bpb: BpbCommon, raw: bytes) -> bool:
    return (
        bpb.bytes_per_sector in SECTOR_SIZES
        and _power_of_two(bpb.sectors_per_cluster)
        and bpb.reserved_sectors > 0
        and bpb.fats > 0
        and bpb.media in MEDIA_OK
        and (bpb.jump[0] in (0xEB, 0xE9) or raw[SIGNATURE_OFFSET : SIGNATURE_OFFSET + 2] == SIGNATURE)
    )


def read_boot_sector(source: ByteSource) -> Geometry | None:
    """The checked geometry of the FAT volume on ``source``; None when it is not FAT."""
    if source.size < BOOT_SECTOR_SIZE:
        return None
    raw = source.pread(0, BOOT_SECTOR_SIZE)
    bpb = BpbCommon.from_bytes(raw)
    if not _plausible(bpb, raw):
        if not _named_fat(raw):
            return None
        raise CorruptImage(
            f"FAT boot sector: implausible BPB (bytes per sector {bpb.bytes_per_sector}, sectors per cluster"
            f" {bpb.sectors_per_cluster}, reserved sectors {bpb.reserved_sectors}, FATs {bpb.fats},"
            f" media {bpb.media:#x})",
            where=source.name,
            offset=0x0B,
        )

    def corrupt(what: str, offset: int) -> CorruptImage:
        return CorruptImage(f"FAT boot sector: {what}", where=source.name, offset=offset)

    sector = bpb.bytes_per_sector
    cluster_size = sector * bpb.sectors_per_cluster
    total = bpb.total_sectors_16 or bpb.total_sectors_32
    if total == 0:
        raise corrupt("total sector count is 0", 0x13)
    fat32_layout = bpb.fat_size_16 == 0
    if fat32_layout:
        b32 = Bpb32.from_bytes(raw)
        fat_sectors = b32.fat_size_32
        if b32.fs_version != 0:
            raise Unsupported(f"FAT32 version {b32.fs_version >> 8}.{b32.fs_version & 0xFF}", where=source.name,
                              offset=0x2A)
        if bpb.root_entries != 0:
            raise corrupt(f"FAT32 layout with {bpb.root_entries} fixed root entries", 0x11)
        ext = ExtBpb.from_bytes(raw, EXT_BPB_32_OFFSET)
    else:
        fat_sectors = bpb.fat_size_16
        ext = ExtBpb.from_bytes(raw, EXT_BPB_16_OFFSET)
    if fat_sectors == 0:
        raise corrupt("FAT size is 0 sectors", 0x24)
    root_bytes = bpb.root_entries * DIR_ENTRY_SIZE
    root_sectors = -(-root_bytes // sector)
    fat_start = bpb.reserved_sectors
    data_start = fat_start + bpb.fats * fat_sectors + root_sectors
    if data_start >= total:
        raise corrupt(
            f"reserved, FAT and root directory sectors ({data_start}) leave no data area in {total} sectors", 0x0E
        )
    if total * sector > source.size:
        raise corrupt(f"{total} sectors of {sector} bytes do not fit in {source.size} bytes", 0x13)
    clusters = (total - data_start) // bpb.sectors_per_cluster
    if clusters == 0:
        raise corrupt(f"no whole cluster of {bpb.sectors_per_cluster} sectors in the data area", 0x0D)
    if fat32_layout:
        fat_type = FAT32
        if clusters > FAT32_MAX_CLUSTERS:
            raise corrupt(f"{clusters} clusters, more than FAT32 can number", 0x20)
    elif clusters <= FAT12_MAX_CLUSTERS:
        fat_type = FAT12
    elif clusters <= FAT16_MAX_CLUSTERS:
        fat_type = FAT16
    else:
        raise corrupt(f"FAT12/16 layout (BPB_FATSz16 set) with {clusters} clusters, more than FAT16 holds", 0x16)
    fat_bytes = fat_sectors * sector
    if fat_bytes * 8 // fat_type.bits < clusters + 2:
        raise corrupt(
            f"a {fat_type.name} of {fat_sectors} sectors has fewer entries than the {clusters} clusters", 0x16
        )
    active = 0
    root_cluster = 0
    if fat_type is FAT32:
        if b32.ext_flags & 0x80:  # mirroring off: one active FAT
            active = b32.ext_flags & 0x0F
            if active >= bpb.fats:
                raise corrupt(f"active FAT {active} of {bpb.fats}", 0x28)
        root_cluster = b32.root_cluster
        if not 2 <= root_cluster < clusters + 2:
            raise corrupt(f"root directory cluster {root_cluster} outside 2..{clusters + 1}", 0x2C)
    return Geometry(
        fat_type=fat_type,
        sector_size=sector,
        cluster_size=cluster_size,
        clusters=clusters,
        fat_offset=(fat_start + active * fat_sectors) * sector,
        fat_bytes=fat_bytes,
        root_offset=(fat_start + bpb.fats * fat_sectors) * sector,
        root_bytes=root_bytes if fat_type is not FAT32 else 0,
        root_cluster=root_cluster,
        data_offset=data_start * sector,
        volume_bytes=total * sector,
        volume_id=ext.volume_id,
        warnings=(),
    )


def volume_uuid(volume_id: int) -> str:
    """The volume serial as GRUB's ``probe -u`` and ``search --fs-uuid`` use it: "1234-ABCD"."""
    return f"{volume_id >> 16:04X}-{volume_id & 0xFFFF:04X}"
