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

from guestboot.errors import Unsupported
from guestboot.image import open_image
from guestboot.source import BytesSource
from guestboot.source.opener import REFUSE

GRUB_CFG = "set default=0\nmenuentry 'Linux' {\n    linux /vmlinuz ro\n}\n"

# (qemu-img -O format, -o options, what guestboot says)
CONVERSIONS = [
    ("qcow2", [], "qcow2 image"),
    ("qcow2", ["-o", "compat=0.10"], "qcow2 image"),
    ("qed", [], "QED image"),
    ("vhdx", [], "VHDX image"),
    ("vpc", ["-o", "subformat=dynamic"], "VHD image"),
    ("vpc", ["-o", "subformat=fixed"], "VHD image"),
    ("vmdk", ["-o", "subformat=monolithicSparse"], "VMDK image"),
    ("vmdk", ["-o", "subformat=streamOptimized"], "VMDK image"),
    ("vmdk", ["-o", "subformat=monolithicFlat"], "VMDK image"),  # the text descriptor
    ("vdi", [], "VDI image"),
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
    assert str(err.value) == f"{image.name}: {what}: not supported yet"
    # the CLI: one line, exit 4
    proc = subprocess.run([sys.executable, "-m", "guestboot", "list", str(image)], capture_output=True, timeout=60)
    assert proc.returncode == 4
    assert proc.stderr.decode() == f"guestboot: unsupported: {image.name}: {what}: not supported yet\n"


def test_format_can_be_forced(raw_disk, tmp_path):
    qcow2 = _convert(raw_disk, "qcow2", [], tmp_path / "disk.qcow2")
    # forced raw: the qcow2 file's bytes are taken as the disk (no file system in them)
    assert _open(qcow2, image_format="raw").devices.get("hd0").problem == "no recognised file system"
    with pytest.raises(Unsupported, match="^disk.raw: VMDK image: not supported yet$"):
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
    from guestboot.source.signatures import identify

    disk = bytearray(64 * 1024)
    disk[-tail : -tail + 8] = b"conectix"
    assert identify(BytesSource(bytes(disk))).name == "vhd"
    disk = bytearray(64 * 1024)
    disk[-1024 : -1024 + 8] = b"conectix"
    assert identify(BytesSource(bytes(disk))) is None
