"""VHDX images made by qemu-img from the raw GPT + ext4 disk (dynamic and fixed, several
block sizes) read back as the raw disk; a dirty log is reported, hostile headers, region
tables, metadata and BAT entries are typed errors."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from format_check import assert_guest_files, assert_same_disk, disk_sha256, libvhdi_sha256, open_disk
from prereq import unavailable

from builders.image_formats import convert, format_tree, gpt_ext4_disk, qemu_img, vhdx_differencing
from builders.initramfs import ToolMissing
from guestboot.crc32c import crc32c
from guestboot.errors import CorruptImage, LimitExceeded, Unsupported
from guestboot.source import FileSource
from guestboot.source.opener import DirectoryOpener
from guestboot.source.vhdx import FILE_PARAMETERS, METADATA_REGION, VIRTUAL_DISK_SIZE, VhdxDisk, _regions

VARIANTS = {
    "dynamic": ["-o", "subformat=dynamic"],
    "fixed": ["-o", "subformat=fixed"],
    "blocks-1M": ["-o", "subformat=dynamic,block_size=1M"],
    "blocks-64M": ["-o", "subformat=dynamic,block_size=64M"],
}
KiB = 1024


@pytest.fixture(scope="session")
def tree(tmp_path_factory) -> Path:
    return format_tree(tmp_path_factory.mktemp("vhdx-tree"))


@pytest.fixture(scope="session")
def raw(tmp_path_factory, tree) -> Path:
    return gpt_ext4_disk(tmp_path_factory.mktemp("vhdx-raw") / "disk.raw", tree)


@pytest.fixture(scope="session")
def variants(tmp_path_factory, raw) -> dict[str, Path]:
    top = tmp_path_factory.mktemp("vhdx")
    try:
        return {name: convert(raw, "vhdx", options, top / f"{name}.vhdx") for name, options in VARIANTS.items()}
    except ToolMissing as err:
        unavailable(str(err))


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_variant_reads_as_the_raw_disk(variants, raw, tree, variant, tmp_path):
    disk, fd = open_disk(variants[variant])
    try:
        assert isinstance(disk, VhdxDisk)
        assert_same_disk(disk, raw)
        assert_guest_files(variants[variant], tree)
        assert disk_sha256(disk) == libvhdi_sha256(variants[variant], tmp_path / "mnt")  # the peer agrees
        runs = list(disk.runs())
        assert all(r.data is None for r in runs) and any(r.fd == fd for r in runs)  # zero-copy
    finally:
        os.close(fd)


def test_list_a_vhdx(variants):
    done = subprocess.run([sys.executable, "-m", "guestboot", "list", str(variants["dynamic"])], capture_output=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode().splitlines()[0].startswith("(hd0,gpt1)/boot/grub/grub.cfg (grub2")


def test_a_differencing_vhdx_reads_through_its_parent(variants, raw, tmp_path):
    """An empty child (blocks NOT_PRESENT: qemu-img's block_state_zero=off) with one
    block written by qemu-io, made a differencing disk of the dynamic variant. libvhdi
    20210425 is no peer here: for a NOT_PRESENT block of a differencing disk it reads the
    absent sector bitmap block (file offset 0) instead of going to the parent."""
    MiB = 1 << 20
    (tmp_path / "parent.vhdx").write_bytes(variants["dynamic"].read_bytes())
    child = tmp_path / "child.vhdx"
    qemu_img("create", "-q", "-f", "vhdx", "-o", "block_size=1M,block_state_zero=off", str(child),
             str(raw.stat().st_size))
    subprocess.run(["qemu-io", "-f", "vhdx", "-c", "write -P 0x5a 20M 100k", str(child)], check=True,
                   capture_output=True, timeout=60)
    vhdx_differencing(child, tmp_path / "parent.vhdx", ".\\parent.vhdx")
    expected = bytearray(raw.read_bytes())
    expected[20 * MiB : 21 * MiB] = bytes(MiB)  # qemu allocated the whole 1 MiB block
    expected[20 * MiB : 20 * MiB + 102400] = b"\x5a" * 102400
    (tmp_path / "expected.raw").write_bytes(bytes(expected))
    with pytest.raises(Unsupported, match="'./parent.vhdx'"):
        open_disk(child)
    with DirectoryOpener(str(tmp_path)) as opener:
        disk, fd = open_disk(child, opener)
        try:
            assert disk.parent is not None
            assert_same_disk(disk, tmp_path / "expected.raw")
        finally:
            os.close(fd)
    # the same block PARTIALLY_PRESENT (2.5.1.1) with a sector bitmap block (2.4: bit 0 of
    # byte 0 is the chunk's first sector) that marks only the written sectors: the rest of
    # the block comes from the parent
    data = bytearray(child.read_bytes())
    bat = _region_offset(child, "BAT")
    entry = int.from_bytes(data[bat + 20 * 8 : bat + 21 * 8], "little")
    assert entry & 7 == 6  # qemu wrote it FULLY_PRESENT
    data[bat + 20 * 8 : bat + 21 * 8] = (entry & ~7 | 7).to_bytes(8, "little")
    bitmap_at = -(-len(data) // MiB) * MiB
    bitmap = bytearray(MiB)
    first = 20 * MiB // 512  # the block's first sector in chunk 0
    for sector in range(first + 3, first + 200):  # not byte-aligned: the bit order matters
        bitmap[sector // 8] |= 1 << (sector % 8)
    data += bytes(bitmap_at - len(data)) + bitmap
    chunk_ratio = (1 << 23) * 512 // MiB
    data[bat + chunk_ratio * 8 : bat + (chunk_ratio + 1) * 8] = ((bitmap_at // MiB) << 20 | 6).to_bytes(8, "little")
    child.write_bytes(bytes(data))
    expected = bytearray(raw.read_bytes())
    expected[20 * MiB + 3 * 512 : 20 * MiB + 200 * 512] = b"\x5a" * (197 * 512)
    (tmp_path / "expected.raw").write_bytes(bytes(expected))
    with DirectoryOpener(str(tmp_path)) as opener:
        disk, fd = open_disk(child, opener)
        try:
            assert_same_disk(disk, tmp_path / "expected.raw")
        finally:
            os.close(fd)
    # a parent whose DataWriteGuid is not the one the child was made against
    convert(raw, "vhdx", ["-o", "subformat=dynamic"], tmp_path / "parent.vhdx")
    with DirectoryOpener(str(tmp_path)) as opener, pytest.raises(CorruptImage, match="is another disk"):
        open_disk(child, opener)


# --- hostile ---------------------------------------------------------------------------

HEADERS = (64 * KiB, 128 * KiB)


def _fix_crc(data: bytearray, at: int, size: int) -> None:
    data[at + 4 : at + 8] = bytes(4)
    data[at + 4 : at + 8] = crc32c(bytes(data[at : at + size])).to_bytes(4, "little")


def _metadata_item(path: Path, item: bytes) -> int:
    """File offset of a metadata item's value (read with the module's own region parser)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        offset, _length = _regions(FileSource(fd, path.name))[METADATA_REGION]
        table = os.pread(fd, 64 * KiB, offset)
    finally:
        os.close(fd)
    count = struct.unpack_from("<H", table, 10)[0]
    for index in range(count):
        guid, item_offset, _len, _flags = struct.unpack_from("<16sIII", table, 32 + index * 32)
        if guid == item:
            return offset + item_offset
    raise AssertionError("no such item")


def _region_offset(path: Path, which: str) -> int:
    from guestboot.source.vhdx import BAT_REGION

    fd = os.open(path, os.O_RDONLY)
    try:
        return _regions(FileSource(fd, path.name))[BAT_REGION if which == "BAT" else METADATA_REGION][0]
    finally:
        os.close(fd)


def _variant_copy(variants, tmp_path) -> tuple[Path, bytearray]:
    path = tmp_path / "bad.vhdx"
    return path, bytearray(variants["dynamic"].read_bytes())


def test_a_dirty_log_is_reported(variants, tmp_path):
    path, data = _variant_copy(variants, tmp_path)
    for at in HEADERS:
        data[at + 48 : at + 64] = b"\x11" * 16  # LogGuid: the log holds entries
        _fix_crc(data, at, 4 * KiB)
    path.write_bytes(bytes(data))
    with pytest.raises(Unsupported, match="log holds writes that were never applied"):
        open_disk(path)
    done = subprocess.run([sys.executable, "-m", "guestboot", "list", str(path)], capture_output=True, timeout=120)
    assert done.returncode == 4 and len(done.stderr.splitlines()) == 1


def test_the_newer_valid_header_counts(variants, tmp_path):
    """Damage one header: the other is used; damage both: CorruptImage."""
    path, data = _variant_copy(variants, tmp_path)
    data[HEADERS[0] + 100] ^= 0xFF
    path.write_bytes(bytes(data))
    disk, fd = open_disk(path)
    os.close(fd)
    data[HEADERS[1] + 100] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptImage, match="neither header is valid"):
        open_disk(path)


@pytest.mark.parametrize("what, value, error, message", [
    ("block", 3 * 1024 * 1024, CorruptImage, "block size 3145728"),
    ("block", 1 << 30, CorruptImage, "block size 1073741824"),
    ("size", 1 << 60, CorruptImage, "virtual disk size"),
    ("size", 60 << 40, LimitExceeded, "max_image_table"),
])
def test_absurd_metadata(variants, tmp_path, what, value, error, message):
    path, data = _variant_copy(variants, tmp_path)
    if what == "block":
        at = _metadata_item(variants["dynamic"], FILE_PARAMETERS)
        data[at : at + 4] = value.to_bytes(4, "little")
    else:
        at = _metadata_item(variants["dynamic"], VIRTUAL_DISK_SIZE)
        data[at : at + 8] = value.to_bytes(8, "little")
    path.write_bytes(bytes(data))
    with pytest.raises(error, match=message):
        open_disk(path)


def test_an_unknown_required_region(variants, tmp_path):
    path, data = _variant_copy(variants, tmp_path)
    for at in (192 * KiB, 256 * KiB):
        count = struct.unpack_from("<I", data, at + 8)[0]
        entry = at + 16 + count * 32
        data[entry : entry + 32] = b"\x42" * 16 + struct.pack("<QII", 1 << 20, 1 << 20, 1)
        data[at + 8 : at + 12] = (count + 1).to_bytes(4, "little")
        _fix_crc(data, at, 64 * KiB)
    path.write_bytes(bytes(data))
    with pytest.raises(Unsupported, match="a required region we do not know"):
        open_disk(path)


def test_a_block_past_the_end(variants, tmp_path):
    path, data = _variant_copy(variants, tmp_path)
    fd = os.open(variants["dynamic"], os.O_RDONLY)
    try:
        from guestboot.source.vhdx import BAT_REGION

        bat, _length = _regions(FileSource(fd, "x"))[BAT_REGION]
    finally:
        os.close(fd)
    data[bat : bat + 8] = ((1 << 30) << 20 | 6).to_bytes(8, "little")  # fully present, 1 PiB into the file
    path.write_bytes(bytes(data))
    disk, fd = open_disk(path)
    try:
        with pytest.raises(CorruptImage, match="VHDX BAT entry 0 maps to .* past the end"):
            disk.pread(0, 512)
    finally:
        os.close(fd)
