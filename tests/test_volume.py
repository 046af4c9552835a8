"""Partition tables made by sfdisk, fdisk, sgdisk and xorriso, read by guestboot.volume and
compared with what util-linux reads from the same image (sfdisk --json / fdisk's dump) and
with what GRUB itself reads (grub-fstest's crc of "(loop0,NAME)0+N").

GRUB's naming is what we check against the tool's numbering: for MBR, Linux and GRUB both
number primaries by slot and logicals from 5 in chain order; for GPT both use the 1-based
entry index. GRUB lists neither extended partitions nor type-0x00 records.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import zlib
from pathlib import Path

import pytest

from builders.disk import (
    ToolPartition,
    fdisk_image,
    grub_crc,
    hybrid_iso,
    mark_partitions,
    mke2fs_at,
    place_image,
    sfdisk_image,
    sgdisk_image,
    table_of,
)
from guestboot.source import FileSource
from guestboot.volume import TABLES, scan, scan_with_warnings

MiB = 1 << 20
EXT_MAGIC_OFFSET = 1024 + 56  # ext superblock s_magic
EXT_LABEL_OFFSET = 1024 + 120  # ext superblock s_volume_name
NOT_LISTED_BY_GRUB = {0x00, 0x05, 0x0F, 0x85}  # empty and extended MBR types


def open_disk(path: Path) -> FileSource:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    return FileSource(fd, name=path.name)


def ext_label(source) -> str:
    assert source.pread(EXT_MAGIC_OFFSET, 2) == b"\x53\xef"
    return source.pread(EXT_LABEL_OFFSET, 16).rstrip(b"\0").decode()


def assert_matches_tool(volumes, parts: list[ToolPartition], scheme: str) -> None:
    if scheme == "msdos":
        parts = [p for p in parts if int(p.type, 16) not in NOT_LISTED_BY_GRUB]
    assert [v.grub_name for v in volumes] == [f"{scheme}{p.number}" for p in parts]
    for volume, part in zip(volumes, parts):
        assert volume.number == part.number
        assert (volume.start, volume.source.size) == (part.start, part.size), volume.grub_name
        if scheme == "msdos":
            assert int(volume.type_id, 16) == int(part.type, 16)
        else:
            assert volume.type_id == part.type.lower()
            assert volume.uuid == part.uuid.lower()
            assert volume.label == part.name
        assert volume.bootable == part.bootable, volume.grub_name


def source_crc(source) -> str:
    crc, offset = 0, 0
    while offset < source.size:
        chunk = source.pread(offset, min(MiB, source.size - offset))
        crc = zlib.crc32(chunk, crc)
        offset += len(chunk)
    return f"{crc:08x}"


def assert_grub_agrees(path: Path, volumes, scheme: str, highest: int) -> None:
    """GRUB finds the same bytes under each name (all of them, and not one sector more),
    and no partition under the names 1..highest that we do not list."""
    for volume in volumes:
        if not volume.grub_name:
            continue
        sectors = volume.source.size // 512
        assert grub_crc(path, f"(loop0,{volume.grub_name})0+{sectors}") == source_crc(volume.source)
        with pytest.raises(RuntimeError, match="outside of partition|beyond the total sectors"):
            grub_crc(path, f"(loop0,{volume.grub_name})0+{sectors + 1}")
    listed = {volume.grub_name for volume in volumes if volume.grub_name}
    for number in range(1, highest + 1):
        if f"{scheme}{number}" not in listed:
            with pytest.raises(RuntimeError, match="no such partition"):
                grub_crc(path, f"(loop0,{scheme}{number})0+1")


# --- MBR ------------------------------------------------------------------------------


def mbr_script(name: str, extended_type: str) -> str:
    return (
        "label: dos\n"
        f"{name}1 : start=2048, size=4M, type=83, bootable\n"
        f"{name}2 : size=4M, type=c\n"
        f"{name}3 : size=40M, type={extended_type}\n"
        f"{name}5 : size=4M, type=83\n"
        f"{name}6 : size=4M, type=82\n"
        f"{name}7 : size=8M, type=83\n"
    )


@pytest.fixture(scope="session", params=["5", "f", "85"])
def mbr_disk(request, tmp_path_factory) -> Path:
    """Primaries 1 (active) and 2, extended 3 of the given type, logicals 5, 6, 7; ext4
    file systems labelled after the partition in 1, 5 and 7; slot 4 empty."""
    path = tmp_path_factory.mktemp("mbr") / f"ext{request.param}.img"
    sfdisk_image(path, 64 * MiB, mbr_script(path.name, request.param))
    _, parts = table_of(path)
    for part in parts:
        if part.number in (1, 5, 7):
            mke2fs_at(path, part.start, part.size, f"part{part.number}")
    mark_partitions(path, [p for p in parts if int(p.type, 16) not in NOT_LISTED_BY_GRUB])
    return path


def test_mbr_primaries_and_logicals_match_sfdisk(mbr_disk):
    label, parts = table_of(mbr_disk)
    assert label == "dos"
    volumes, warnings = scan_with_warnings(open_disk(mbr_disk))
    assert warnings == []
    assert_matches_tool(volumes, parts, "msdos")
    assert [v.grub_name for v in volumes] == ["msdos1", "msdos2", "msdos5", "msdos6", "msdos7"]
    assert [v.bootable for v in volumes] == [True, False, False, False, False]


def test_mbr_volumes_hold_the_partitions_bytes(mbr_disk):
    volumes = {v.grub_name: v for v in scan(open_disk(mbr_disk))}
    for number in (1, 5, 7):
        assert ext_label(volumes[f"msdos{number}"].source) == f"part{number}"
    assert volumes["msdos2"].source.pread(EXT_MAGIC_OFFSET, 2) != b"\x53\xef"


def test_mbr_volume_holds_a_placed_fat_image(tmp_path):
    """A FAT image made apart and copied into partition 2 reads back byte for byte."""
    fat = tmp_path / "fat.img"
    subprocess.run(["mkfs.fat", "-C", str(fat), "2048"], check=True, capture_output=True)
    path = tmp_path / "withfat.img"
    sfdisk_image(path, 8 * MiB, "label: dos\nstart=2048, size=2M, type=83\nsize=2M, type=c\n")
    _, parts = table_of(path)
    place_image(path, parts[1].start, fat)
    volume = scan(open_disk(path))[1]
    assert volume.grub_name == "msdos2" and volume.source.size == fat.stat().st_size
    assert volume.source.pread(0, volume.source.size) == fat.read_bytes()


def test_mbr_slots_keep_their_numbers(tmp_path):
    """An empty slot 1 leaves a gap: GRUB names primaries by slot, not by count."""
    path = tmp_path / "gap.img"
    script = f"label: dos\n{path.name}2 : start=2048, size=4M, type=83\n{path.name}4 : size=4M, type=7\n"
    sfdisk_image(path, 16 * MiB, script)
    _, parts = table_of(path)
    volumes = scan(open_disk(path))
    assert_matches_tool(volumes, parts, "msdos")
    assert [v.grub_name for v in volumes] == ["msdos2", "msdos4"]
    assert_grub_agrees(path, volumes, "msdos", 5)


def test_mbr_volume_sources_are_named_after_the_partition(mbr_disk):
    volume = scan(open_disk(mbr_disk))[2]
    assert volume.source.name == f"{mbr_disk.name},msdos5"


# --- GPT ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def gpt_disk(tmp_path_factory) -> Path:
    """sgdisk GPT: 1 BIOS boot, 2 Linux root (legacy-BIOS-bootable), entry 3 unused,
    4 swap, 5 EFI system; ext4 in 2."""
    path = tmp_path_factory.mktemp("gpt") / "sgdisk.img"
    sgdisk_image(
        path,
        48 * MiB,
        [
            "-n1:2048:+1M", "-t1:ef02", "-c1:BIOS boot",
            "-n2:0:+16M", "-t2:8300", "-c2:root fs", "-A2:set:2",
            "-n4:0:+8M", "-t4:8200", "-c4:swap",
            "-n5:0:0", "-t5:ef00", "-c5:EFI System Partition",
        ],
    )  # fmt: skip
    _, parts = table_of(path)
    root = next(p for p in parts if p.number == 2)
    mke2fs_at(path, root.start, root.size, "gptroot")
    mark_partitions(path, parts)
    return path


def test_gpt_matches_sfdisk(gpt_disk):
    label, parts = table_of(gpt_disk)
    assert label == "gpt"
    volumes, warnings = scan_with_warnings(open_disk(gpt_disk))
    assert warnings == []
    assert_matches_tool(volumes, parts, "gpt")
    assert [v.grub_name for v in volumes] == ["gpt1", "gpt2", "gpt4", "gpt5"]
    assert volumes[0].type_id == "21686148-6449-6e6f-744e-656564454649"  # BIOS boot
    assert [v.bootable for v in volumes] == [False, True, False, False]
    assert ext_label(volumes[1].source) == "gptroot"


def test_gpt_matches_sgdisk_print(gpt_disk):
    """sgdisk -p is a second reader: its start/end sectors and names agree."""
    out = subprocess.run(["sgdisk", "-p", str(gpt_disk)], capture_output=True, text=True, check=True).stdout
    rows = [line.split(None, 6) for line in out.splitlines() if line[:4].strip().isdigit()]
    volumes = scan(open_disk(gpt_disk))
    assert [(int(r[0]), int(r[1]) * 512, (int(r[2]) + 1) * 512, r[6]) for r in rows] == [
        (v.number, v.start, v.start + v.source.size, v.label) for v in volumes
    ]


@pytest.fixture(scope="session")
def gpt4k_disk(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("gpt4k") / "fdisk4k.img"
    script = "label: gpt\nsize=8M, type=L, name=first\nsize=16M, type=U, name=second\nsize=4M, type=S\n"
    fdisk_image(path, 64 * MiB, script, sector_size=4096)
    _, parts = table_of(path, sector_size=4096)
    mke2fs_at(path, parts[1].start, parts[1].size, "on4k")
    mark_partitions(path, parts)
    return path


def test_gpt_with_4096_byte_sectors(gpt4k_disk):
    label, parts = table_of(gpt4k_disk, sector_size=4096)
    assert label == "gpt"
    volumes, warnings = scan_with_warnings(open_disk(gpt4k_disk))
    assert warnings == []
    assert_matches_tool(volumes, parts, "gpt")
    assert volumes[0].start == 256 * 4096  # fdisk aligns at 1 MiB in 4 KiB sectors
    assert ext_label(volumes[1].source) == "on4k"


def test_grub_reads_the_same_mbr_partitions(mbr_disk):
    assert_grub_agrees(mbr_disk, scan(open_disk(mbr_disk)), "msdos", 8)


@pytest.mark.parametrize("fixture, highest", [("gpt_disk", 6), ("gpt4k_disk", 4)])
def test_grub_reads_the_same_gpt_partitions(request, fixture, highest):
    path = request.getfixturevalue(fixture)
    assert_grub_agrees(path, scan(open_disk(path)), "gpt", highest)


def zero_primary_header(src: Path, dst: Path, sector: int) -> Path:
    shutil.copyfile(src, dst)
    with open(dst, "r+b") as f:
        f.seek(sector)
        f.write(bytes(sector))
    return dst


@pytest.mark.parametrize("fixture, sector", [("gpt_disk", 512), ("gpt4k_disk", 4096)])
def test_backup_gpt_is_used_when_primary_header_is_gone(request, tmp_path, fixture, sector):
    original = request.getfixturevalue(fixture)
    damaged = zero_primary_header(original, tmp_path / "damaged.img", sector)
    expected = scan(open_disk(original))
    volumes, warnings = scan_with_warnings(open_disk(damaged))
    assert [(v.grub_name, v.start, v.source.size, v.uuid, v.label) for v in volumes] == [
        (v.grub_name, v.start, v.source.size, v.uuid, v.label) for v in expected
    ]
    assert len(warnings) == 1 and "backup" in warnings[0]


def test_backup_gpt_is_used_when_primary_entries_are_damaged(gpt_disk, tmp_path):
    damaged = tmp_path / "entries.img"
    shutil.copyfile(gpt_disk, damaged)
    with open(damaged, "r+b") as f:
        f.seek(2 * 512 + 128 + 40)  # inside entry 2's name: only the array CRC notices
        f.write(b"XX")
    volumes, warnings = scan_with_warnings(open_disk(damaged))
    assert [v.label for v in volumes] == [v.label for v in scan(open_disk(gpt_disk))]
    assert len(warnings) == 1 and "entry array CRC32" in warnings[0]


@pytest.fixture(scope="session")
def gdisk_hybrid(gpt_disk, tmp_path_factory) -> Path:
    """The sgdisk disk with a hybrid MBR (sgdisk -h 1:2): 0xEE, then GPT 1 and 2 as MBR
    records 2 and 3."""
    path = tmp_path_factory.mktemp("hybrid") / "hybrid.img"
    shutil.copyfile(gpt_disk, path)
    subprocess.run(["sgdisk", "-h", "1:2", str(path)], check=True, capture_output=True)
    return path


def test_hybrid_mbr_with_good_gpt_reads_the_gpt(gdisk_hybrid):
    volumes, warnings = scan_with_warnings(open_disk(gdisk_hybrid))
    assert warnings == []
    assert_matches_tool(volumes, table_of(gdisk_hybrid)[1], "gpt")
    assert_grub_agrees(gdisk_hybrid, volumes, "gpt", 6)


def test_hybrid_mbr_records_are_used_when_both_gpt_headers_are_gone(gdisk_hybrid, tmp_path):
    damaged = zero_primary_header(gdisk_hybrid, tmp_path / "nogpt.img", 512)
    with open(damaged, "r+b") as f:
        f.seek(-512, os.SEEK_END)
        f.write(bytes(512))
    gpt = scan(open_disk(gdisk_hybrid))
    volumes, warnings = scan_with_warnings(open_disk(damaged))
    assert [(v.grub_name, v.start, v.source.size) for v in volumes] == [
        ("msdos2", gpt[0].start, gpt[0].source.size),
        ("msdos3", gpt[1].start, gpt[1].source.size),
    ]
    assert len(warnings) == 1 and "hybrid MBR" in warnings[0]


# --- whole disks and hybrids ----------------------------------------------------------


def test_whole_disk_ext4_is_one_whole_disk_volume(tmp_path):
    path = tmp_path / "ext4.img"
    with open(path, "wb") as f:
        f.truncate(8 * MiB)
    mke2fs_at(path, 0, 8 * MiB, "wholedisk")
    volumes, warnings = scan_with_warnings(open_disk(path))
    assert warnings == []
    assert [(v.grub_name, v.number, v.start, v.source.size) for v in volumes] == [("", 0, 0, 8 * MiB)]
    assert ext_label(volumes[0].source) == "wholedisk"
    assert_grub_agrees(path, volumes, "msdos", 1)
    assert_grub_agrees(path, volumes, "gpt", 1)


@pytest.mark.parametrize("fat_bits", ["12", "16", "32"])
def test_whole_disk_fat_boot_sector_is_not_a_partition_table(tmp_path, fat_bits):
    """mkfs.fat writes the 0x55AA signature too; its four "records" must not be read."""
    path = tmp_path / "fat.img"
    subprocess.run(["mkfs.fat", "-F", fat_bits, "-C", str(path), "40000"], check=True, capture_output=True)
    volumes, warnings = scan_with_warnings(open_disk(path))
    assert warnings == []
    assert [(v.grub_name, v.start, v.source.size) for v in volumes] == [("", 0, path.stat().st_size)]
    assert_grub_agrees(path, volumes, "msdos", 1)


@pytest.fixture(scope="session")
def iso_tree(tmp_path_factory) -> Path:
    tree = tmp_path_factory.mktemp("isotree")
    (tree / "boot").mkdir()
    (tree / "boot" / "vmlinuz").write_bytes(b"kernel" * 1000)
    return tree


def test_isohybrid_mbr_partition_covers_the_iso(iso_tree, tmp_path):
    path = hybrid_iso(tmp_path / "hybrid.iso", iso_tree)
    label, parts = table_of(path)
    assert label == "dos"
    volumes, warnings = scan_with_warnings(open_disk(path))
    assert warnings == []
    assert_matches_tool(volumes, parts, "msdos")
    assert (volumes[0].grub_name, volumes[0].start, volumes[0].bootable) == ("msdos1", 0, True)
    assert volumes[0].source.pread(0x8001, 5) == b"CD001"  # the ISO's primary volume descriptor
    assert_grub_agrees(path, volumes, "msdos", 4)


def test_isohybrid_gpt_basdat_is_read_as_grub_does(iso_tree, tmp_path):
    """-isohybrid-gpt-basdat writes a GPT but no 0xEE record: GRUB (and sfdisk) read the
    MBR, whose record 1 is type 0x00 (not listed) and record 2 the EFI image."""
    path = hybrid_iso(tmp_path / "basdat.iso", iso_tree, gpt="basdat")
    label, parts = table_of(path)
    assert label == "dos"
    volumes, warnings = scan_with_warnings(open_disk(path))
    assert warnings == []
    assert_matches_tool(volumes, parts, "msdos")
    assert [v.type_id for v in volumes] == ["0xef"]
    assert_grub_agrees(path, volumes, "msdos", 4)


def test_isohybrid_appended_gpt(iso_tree, tmp_path):
    path = hybrid_iso(tmp_path / "appended.iso", iso_tree, gpt="appended")
    label, parts = table_of(path)
    assert label == "gpt"
    volumes, warnings = scan_with_warnings(open_disk(path))
    assert warnings == []
    assert_matches_tool(volumes, parts, "gpt")
    assert volumes[0].label == "ISO9660" and volumes[0].start == 64 * 512
    assert volumes[1].type_id == "c12a7328-f81f-11d2-ba4b-00a0c93ec93b"  # EFI system
    assert_grub_agrees(path, volumes, "gpt", 5)


def test_registry_reads_gpt_before_mbr():
    assert [name for name, _ in TABLES][:2] == ["gpt", "msdos"]
