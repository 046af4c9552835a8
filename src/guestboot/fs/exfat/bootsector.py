"""The exFAT main boot region checked once (exFAT specification sections 3.1 to 3.4):
geometry, identity, and the boot checksum of sectors 0-10 that sector 11 repeats."""

from __future__ import annotations

from typing import NamedTuple

from ...errors import CorruptImage, Unsupported
from ...source import ByteSource
from ..fat.layout import FatType
from .layout import (
    BOOT_SECTOR_SIZE,
    CHECKSUM_SECTOR,
    EXFAT,
    FS_NAME,
    MAX_CLUSTERS,
    SIGNATURE,
    SIGNATURE_OFFSET,
    VOLUME_FLAG_ACTIVE_FAT,
    VOLUME_FLAG_DIRTY,
    BootSector,
    boot_checksum,
)


class Geometry(NamedTuple):
    """Where everything is, in bytes from the start of the volume (the names the FAT
    chain reader of fs/fat/table.py uses: fat_type, fat_offset, fat_bytes, clusters)."""

    fat_type: FatType
    sector_size: int
    cluster_size: int
    clusters: int  # valid cluster numbers are 2 .. clusters + 1
    fat_offset: int  # the active FAT
    fat_bytes: int
    data_offset: int  # the cluster heap: byte offset of cluster 2
    root_cluster: int
    volume_bytes: int
    volume_id: int
    warnings: tuple[str, ...]

    def cluster_offset(self, cluster: int) -> int:
        return self.data_offset + (cluster - 2) * self.cluster_size


def read_boot_sector(source: ByteSource) -> Geometry | None:
    """The checked geometry of the exFAT volume on ``source``; None when it is not exFAT."""
    if source.size < BOOT_SECTOR_SIZE:
        return None
    raw = source.pread(0, BOOT_SECTOR_SIZE)
    boot = BootSector.from_bytes(raw)
    if boot.fs_name != FS_NAME:
        return None

    def corrupt(what: str, offset: int) -> CorruptImage:
        return CorruptImage(f"exFAT boot sector: {what}", where=source.name, offset=offset)

    if raw[SIGNATURE_OFFSET : SIGNATURE_OFFSET + 2] != SIGNATURE:
        raise corrupt("no boot signature 0x55AA", SIGNATURE_OFFSET)
    if any(boot.must_be_zero):
        raise corrupt("the legacy BPB area is not zero", 11)
    if boot.revision >> 8 != 1:
        raise Unsupported(f"exFAT revision {boot.revision >> 8}.{boot.revision & 0xFF:02d}", where=source.name,
                          offset=104)
    if not 9 <= boot.sector_shift <= 12:
        raise corrupt(f"bytes per sector 2^{boot.sector_shift} (512..4096 allowed)", 108)
    if boot.cluster_shift > 25 - boot.sector_shift:
        raise corrupt(f"clusters of 2^{boot.sector_shift + boot.cluster_shift} bytes (32 MiB at most)", 109)
    if boot.fats not in (1, 2):
        raise corrupt(f"{boot.fats} FATs", 110)
    sector = 1 << boot.sector_shift
    cluster_size = sector << boot.cluster_shift
    if boot.volume_length * sector > source.size:
        raise corrupt(f"{boot.volume_length} sectors of {sector} bytes do not fit in {source.size} bytes", 72)
    checked = source.pread(0, CHECKSUM_SECTOR * sector)
    expected = boot_checksum(checked)
    stored = source.pread(CHECKSUM_SECTOR * sector, 4)
    if int.from_bytes(stored, "little") != expected:
        raise corrupt("boot region checksum mismatch", CHECKSUM_SECTOR * sector)
    if not 0 < boot.cluster_count <= MAX_CLUSTERS:
        raise corrupt(f"{boot.cluster_count} clusters", 92)
    if boot.fat_offset < 24 or boot.fat_length * sector < (boot.cluster_count + 2) * 4:
        raise corrupt(f"FAT at sector {boot.fat_offset} of {boot.fat_length} sectors for {boot.cluster_count}"
                      " clusters", 80)
    fats_end = boot.fat_offset + boot.fat_length * boot.fats
    if boot.heap_offset < fats_end:
        raise corrupt(f"cluster heap at sector {boot.heap_offset} overlaps the FATs (up to {fats_end})", 88)
    if boot.heap_offset + (boot.cluster_count << boot.cluster_shift) > boot.volume_length:
        raise corrupt(f"{boot.cluster_count} clusters from sector {boot.heap_offset} run past the volume"
                      f" ({boot.volume_length} sectors)", 92)
    if not 2 <= boot.root_cluster < boot.cluster_count + 2:
        raise corrupt(f"root directory cluster {boot.root_cluster} outside 2..{boot.cluster_count + 1}", 96)
    active = 1 if boot.volume_flags & VOLUME_FLAG_ACTIVE_FAT and boot.fats == 2 else 0
    warnings = ()
    if boot.volume_flags & VOLUME_FLAG_DIRTY:
        warnings = ("exFAT volume is marked dirty (not cleanly unmounted): reading it as it is",)
    return Geometry(
        fat_type=EXFAT,
        sector_size=sector,
        cluster_size=cluster_size,
        clusters=boot.cluster_count,
        fat_offset=(boot.fat_offset + active * boot.fat_length) * sector,
        fat_bytes=boot.fat_length * sector,
        data_offset=boot.heap_offset * sector,
        root_cluster=boot.root_cluster,
        volume_bytes=boot.volume_length * sector,
        volume_id=boot.serial,
        warnings=warnings,
    )
