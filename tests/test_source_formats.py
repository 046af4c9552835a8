"""The image-format stage: formats are detected by content (raw last). Formats we cannot
read yet are named (Unsupported, exit 4) instead of "no recognised file system"; images
made by qemu-img from a raw disk that guestboot reads."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from prereq import unavailable

from guestboot.errors import CorruptImage, Unsupported
from guestboot.image import open_image
from guestboot.source import BytesSource
from guestboot.source.opener import REFUSE

GRUB_CFG = "set default=0\nmenuentry 'Linux' {\n    linux /vmlinuz ro\n}\n"

# (qemu-img -O format, -o options, what guestboot says after the image's name)
CONVERSIONS = [
    ("qed", [], "QED image: not supported yet"),
    ("vdi", [], "VDI image: not supported yet"),
]


@pytest.fixture(scope="session")
def raw_disk(tmp_path_factory) -> Path:
    top = tmp_path_factory.mktemp("fmt-tree")
    (top / "boot" / "grub").mkdir(parents=True)
    (top / "boot" / "grub" / "grub.cfg").write_text(GRUB_CFG)
    (top / "vmlinuz").write_bytes(b"kernel" * 1000)
    image = tmp_path_factory.mktemp("fmt") / "disk.raw"
    subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", "-d", str(top), str(image), "4M"], check=True,
                   capture_output=True, timeout=60)
    return image


def _convert(raw: Path, fmt: str, options: list[str], out: Path) -> Path:
    if shutil.which("qemu-img") is None:
        unavailable("qemu-img (package qemu-utils) is not installed")
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", fmt, *options, str(raw), str(out)], check=True,
                   capture_output=True, timeout=60)
    return out


def _open(path: Path, **kwargs):
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return open_image(fd, path.name, **kwargs)
    finally:
        os.close(fd)


def test_a_raw_disk_is_read_as_before(raw_disk):
    assert _open(raw_disk).devices.filesystem("hd0").kind == "ext4"
    assert _open(raw_disk, image_format="raw").devices.filesystem("hd0").kind == "ext4"


@pytest.mark.parametrize("fmt, options, what", CONVERSIONS, ids=[f"{c[0]}{''.join(c[1][1:])}" for c in CONVERSIONS])
def test_formats_not_read_yet_are_named(raw_disk, tmp_path, fmt, options, what):
    image = _convert(raw_disk, fmt, options, tmp_path / f"disk.{fmt}")
    with pytest.raises(Unsupported) as err:
        _open(image)
    assert str(err.value) == f"{image.name}: {what}"
    # the CLI: one line, exit 4
    proc = subprocess.run([sys.executable, "-m", "guestboot", "list", str(image)], capture_output=True, timeout=60)
    assert proc.returncode == 4
    assert proc.stderr.decode() == f"guestboot: unsupported: {err.value}\n"


def test_format_can_be_forced(raw_disk, tmp_path):
    qcow2 = _convert(raw_disk, "qcow2", [], tmp_path / "disk.qcow2")
    # forced raw: the qcow2 file's bytes are taken as the disk (no file system in them)
    assert _open(qcow2, image_format="raw").devices.get("hd0").problem == "no recognised file system"
    assert _open(qcow2).devices.filesystem("hd0").kind == "ext4"
    with pytest.raises(CorruptImage, match="no QFI"):
        _open(raw_disk, image_format="qcow2")
    with pytest.raises(Unsupported, match="^disk.raw: VDI image: not supported yet$"):
        _open(raw_disk, image_format="VDI")
    with pytest.raises(CorruptImage, match="VHDX: neither header is valid"):
        _open(raw_disk, image_format="VHDX")
    with pytest.raises(CorruptImage, match="neither a KDMV sparse extent nor a text descriptor"):
        _open(raw_disk, image_format="VMDK")
    with pytest.raises(Unsupported, match=r"image format 'iso' is not one we know \(raw, .*qcow2"):
        _open(raw_disk, image_format="iso")


def test_the_default_opener_refuses_and_names_the_file():
    with pytest.raises(Unsupported) as err:
        REFUSE.open_related("base.qcow2", "disk.qcow2")
    assert str(err.value) == (
        "disk.qcow2: the image asks for another file, 'base.qcow2'; opening files an image names is not allowed here"
    )


@pytest.mark.parametrize("tail", [512, 511])
def test_vhd_footer_position(tail):
    """The VHD cookie counts at the last 512 (or, from old tools, 511) bytes, not elsewhere."""
    from guestboot.source import vhd

    disk = bytearray(64 * 1024)
    disk[-tail : -tail + 8] = b"conectix"
    assert vhd.detect(BytesSource(bytes(disk)))
    disk = bytearray(64 * 1024)
    disk[-1024 : -1024 + 8] = b"conectix"
    assert not vhd.detect(BytesSource(bytes(disk)))


@pytest.fixture(scope="session")
def fixed_vhd(raw_disk, tmp_path_factory) -> Path:
    return _convert(raw_disk, "vpc", ["-o", "subformat=fixed"], tmp_path_factory.mktemp("vhd") / "disk.vhd")


def test_a_fixed_vhd_is_read_like_the_raw_disk(raw_disk, fixed_vhd):
    """qemu-img's fixed VHD: the disk's bytes and a footer; read in place (zero-copy)."""
    fd = os.open(fixed_vhd, os.O_RDONLY | os.O_CLOEXEC)
    try:
        image = open_image(fd, fixed_vhd.name)
        kernel = image.devices.open("hd0", "/vmlinuz")
        runs = list(kernel.runs())
        assert {r.fd for r in runs} == {fd}
        assert b"".join(os.pread(fd, r.length, r.offset) for r in runs) == b"kernel" * 1000
        # qemu-img, the peer, agrees on the disk's size (told the format: its probe takes a fixed VHD for raw)
        info = subprocess.run(["qemu-img", "info", "-f", "vpc", "--output=json", str(fixed_vhd)], check=True, capture_output=True,
                              timeout=60)
        assert image.source.size == __import__("json").loads(info.stdout)["virtual-size"] >= raw_disk.stat().st_size
        assert image.source.pread(0, raw_disk.stat().st_size) == raw_disk.read_bytes()
    finally:
        os.close(fd)
    proc = subprocess.run([sys.executable, "-m", "guestboot", "list", str(fixed_vhd)], capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode().splitlines()[0] == ("(hd0)/boot/grub/grub.cfg (grub2, debian dialect: "
        "no os-release on the image, no Fedora sign in the config)")


def _refooter(data: bytearray, **fields: int) -> None:
    """Set big-endian footer fields (name=value at offsets of the VHD footer) and fix the
    checksum, as a hostile image would."""
    import struct

    offsets = {"current_size": (48, ">Q"), "disk_type": (60, ">I")}
    at = len(data) - 512
    for name, value in fields.items():
        offset, fmt = offsets[name]
        struct.pack_into(fmt, data, at + offset, value)
    struct.pack_into(">I", data, at + 64, 0)
    struct.pack_into(">I", data, at + 64, ~sum(data[at:]) & 0xFFFFFFFF)


@pytest.mark.parametrize(
    "damage, error, match",
    [
        ("checksum", CorruptImage, r"VHD footer: checksum 0x[0-9a-f]+, the bytes sum to .* \(at byte offset 0x[0-9a-f]+\)"),
        ("too-big", CorruptImage, "fixed VHD: disk of .* does not fit before its footer"),
        ("disk-type", CorruptImage, "VHD footer: unknown disk type 9"),
        ("differencing", CorruptImage, "VHD dynamic disk header at .* past the end of the file"),
    ],
)
def test_damaged_vhd_footers(fixed_vhd, tmp_path, damage, error, match):
    data = bytearray(fixed_vhd.read_bytes())
    if damage == "checksum":
        data[-512 + 40] ^= 0xFF  # original size: covered by the checksum
    elif damage == "too-big":
        _refooter(data, current_size=len(data))
    elif damage == "disk-type":
        _refooter(data, disk_type=9)
    else:
        _refooter(data, disk_type=4)
    bad = tmp_path / "bad.vhd"
    bad.write_bytes(bytes(data))
    with pytest.raises(error, match=match):
        _open(bad)
