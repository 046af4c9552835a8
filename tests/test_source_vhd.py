"""Dynamic and differencing VHD images: qemu-img converts the raw GPT + ext4 disk (and
qemu-io writes into an empty dynamic disk); each reads back as the raw disk."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from format_check import assert_same_disk, disk_sha256, libvhdi_sha256, open_disk
from prereq import unavailable

from builders.image_formats import convert, format_tree, gpt_ext4_disk, qemu_img, vhd_differencing
from builders.initramfs import ToolMissing
from guestboot.errors import CorruptImage, LimitExceeded, Unsupported
from guestboot.source.opener import DirectoryOpener
from guestboot.source.vhd_dynamic import VhdDisk

MiB = 1 << 20


@pytest.fixture(scope="session")
def tree(tmp_path_factory) -> Path:
    return format_tree(tmp_path_factory.mktemp("vhd-tree"))


@pytest.fixture(scope="session")
def raw(tmp_path_factory, tree) -> Path:
    return gpt_ext4_disk(tmp_path_factory.mktemp("vhd-raw") / "disk.raw", tree)


@pytest.fixture(scope="session")
def dynamic(tmp_path_factory, raw) -> Path:
    try:
        return convert(raw, "vpc", ["-o", "subformat=dynamic"], tmp_path_factory.mktemp("vhd") / "disk.vhd")
    except ToolMissing as err:
        unavailable(str(err))


def test_a_dynamic_vhd_reads_as_the_raw_disk(dynamic, raw, tmp_path):
    disk, fd = open_disk(dynamic)
    try:
        assert isinstance(disk, VhdDisk)
        assert_same_disk(disk, raw)
        assert disk_sha256(disk) == libvhdi_sha256(dynamic, tmp_path / "mnt")  # the peer agrees
        assert any(r.fd == fd for r in disk.runs())  # allocated blocks: zero-copy runs of the image
    finally:
        os.close(fd)
    forced, fd = open_disk(dynamic, image_format="vpc")  # QEMU's name for the format
    os.close(fd)
    assert isinstance(forced, VhdDisk)
    done = subprocess.run([sys.executable, "-m", "guestboot", "list", str(dynamic)], capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode().splitlines()[0].startswith("(hd0,gpt1)/boot/grub/grub.cfg (grub2")


@pytest.fixture
def differencing(tmp_path, dynamic, raw) -> tuple[Path, Path]:
    (tmp_path / "parent.vhd").write_bytes(dynamic.read_bytes())
    child = tmp_path / "child.vhd"
    size = str(os.path.getsize(raw))
    qemu_img("create", "-q", "-f", "vpc", "-o", "subformat=dynamic", str(child), size)
    subprocess.run(["qemu-io", "-f", "vpc", "-c", "write -P 0x5a 20M 100k", str(child)], check=True,
                   capture_output=True, timeout=60)
    vhd_differencing(child, tmp_path / "parent.vhd", ".\\parent.vhd")
    # qemu allocates whole 2 MiB blocks, their sector bitmaps all ones: the written
    # block hides the parent's block entirely (zeros around the written bytes)
    expected = bytearray(raw.read_bytes())
    expected[20 * MiB : 22 * MiB] = bytes(2 * MiB)
    expected[20 * MiB : 20 * MiB + 102400] = b"\x5a" * 102400
    (tmp_path / "expected.raw").write_bytes(bytes(expected))
    return child, tmp_path / "expected.raw"


def test_a_differencing_vhd_reads_through_its_parent(differencing, tmp_path):
    """Our reading, the expected bytes and libvhdi's reading (which opens the parent
    itself) agree."""
    child, expected = differencing
    with pytest.raises(Unsupported, match="'./parent.vhd'"):
        open_disk(child)
    with DirectoryOpener(str(child.parent)) as opener:
        disk, fd = open_disk(child, opener)
        try:
            assert disk.parent is not None and disk.parent.name == "./parent.vhd"
            assert_same_disk(disk, expected)
            assert disk_sha256(disk) == libvhdi_sha256(child, tmp_path / "mnt")
        finally:
            os.close(fd)


def test_a_sector_bitmap_picks_sectors_from_child_and_parent(differencing, raw, tmp_path):
    """The written block's sector bitmap rewritten to mark sectors 3 to 199 only (not
    byte-aligned: the bit order matters; the spec's first sector is the most significant
    bit of byte 0): those come from the child, the rest of the block from the parent.
    libvhdi reads it the same way."""
    child, _expected = differencing
    data = bytearray(child.read_bytes())
    header_at = int.from_bytes(data[16:24], "big")
    table_at = int.from_bytes(data[header_at + 16 : header_at + 24], "big")
    block = 20 * MiB // (2 * MiB)
    bitmap_at = int.from_bytes(data[table_at + 4 * block : table_at + 4 * block + 4], "big") * 512
    within = 20 * MiB % (2 * MiB) // 512  # the written sectors' place in their block
    bitmap = bytearray(512)
    for sector in range(within + 3, within + 200):
        bitmap[sector // 8] |= 0x80 >> (sector % 8)
    data[bitmap_at : bitmap_at + 512] = bitmap
    child.write_bytes(bytes(data))
    expected = bytearray(raw.read_bytes())
    expected[20 * MiB + 3 * 512 : 20 * MiB + 200 * 512] = b"\x5a" * (197 * 512)
    (tmp_path / "partial.raw").write_bytes(bytes(expected))
    with DirectoryOpener(str(child.parent)) as opener:
        disk, fd = open_disk(child, opener)
        try:
            assert_same_disk(disk, tmp_path / "partial.raw")
            assert disk_sha256(disk) == libvhdi_sha256(child, tmp_path / "mnt")
        finally:
            os.close(fd)


def test_a_parent_that_is_another_disk_is_refused(differencing, raw, tmp_path):
    child, _expected = differencing
    other = tmp_path / "parent.vhd"
    other.unlink()
    convert(raw, "vpc", ["-o", "subformat=dynamic"], other)  # the same bytes, another unique id
    with DirectoryOpener(str(tmp_path)) as opener, pytest.raises(CorruptImage, match="is another disk"):
        open_disk(child, opener)


def _patch(source: Path, dest: Path, at: int, value: bytes, checksum_at: int | None = None, region: int = 1024):
    data = bytearray(source.read_bytes())
    data[at : at + len(value)] = value
    if checksum_at is not None:
        start = checksum_at - (36 if region == 1024 else 64)
        data[checksum_at : checksum_at + 4] = bytes(4)
        data[checksum_at : checksum_at + 4] = (~sum(data[start : start + region]) & 0xFFFFFFFF).to_bytes(4, "big")
    dest.write_bytes(bytes(data))
    return dest


@pytest.mark.parametrize("field, value, error, message", [
    (16, (1 << 40).to_bytes(8, "big"), CorruptImage, "block allocation table at 1099511627776"),
    (32, (0x7FFFFFFF).to_bytes(4, "big"), CorruptImage, "block size 2147483647"),
    (32, (1 << 30).to_bytes(4, "big"), CorruptImage, "block size 1073741824"),
    (32, (512).to_bytes(4, "big"), LimitExceeded, "max_image_table"),
    (28, (0).to_bytes(4, "big"), CorruptImage, "0 table entries"),
    (0, b"cxspars!", CorruptImage, "no \"cxsparse\" cookie"),
])
def test_hostile_dynamic_headers(dynamic, tmp_path, field, value, error, message):
    header_at = int.from_bytes(dynamic.read_bytes()[16:24], "big")
    bad = _patch(dynamic, tmp_path / "bad.vhd", header_at + field, value, header_at + 36)
    if field == 32 and value == (512).to_bytes(4, "big"):
        # 512-byte blocks: the table for a 24 MiB disk is 192 KiB; a 2 TiB disk makes it 16 GiB
        data = bytearray(bad.read_bytes())
        for at in (0, len(data) - 512):
            data[at + 48 : at + 56] = (2 << 40).to_bytes(8, "big")
            data[at + 64 : at + 68] = bytes(4)
            data[at + 64 : at + 68] = (~sum(data[at : at + 512]) & 0xFFFFFFFF).to_bytes(4, "big")
        bad.write_bytes(bytes(data))
    with pytest.raises(error, match=message):
        open_disk(bad)


def test_a_block_past_the_end(dynamic, tmp_path):
    data = dynamic.read_bytes()
    header_at = int.from_bytes(data[16:24], "big")
    table_at = int.from_bytes(data[header_at + 16 : header_at + 24], "big")
    bad = _patch(dynamic, tmp_path / "bad.vhd", table_at, (0x7FFFFFF0).to_bytes(4, "big"))
    disk, fd = open_disk(bad)
    try:
        with pytest.raises(CorruptImage, match="VHD block 0 maps to .* past the end"):
            disk.pread(0, 512)
    finally:
        os.close(fd)
