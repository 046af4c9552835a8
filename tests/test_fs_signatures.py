"""A device whose contents no driver reads says what it holds: file systems made by their
real mkfs are named "… file system: not supported yet" (Unsupported); swap is named
without an error. When a driver for a kind lands (fs.PROBES), the device is read instead."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from prereq import unavailable

from guestboot.errors import Unsupported
from guestboot.fs.signatures import SIGNATURES, identify
from guestboot.image import open_image
from guestboot.source import FileSource

MiB = 1 << 20
LVM_CONFIG = "global{activation=0} devices{obtain_device_list_from_udev=0}"  # no device-mapper here

# name: (what we say, command making the image at {img} from the tree at {tree}, size)
MAKERS = {
    "xfs": ("xfs file system", ["mkfs.xfs", "-q", "-f", "{img}"], 300 * MiB),
    "btrfs": ("btrfs file system", ["mkfs.btrfs", "-q", "-f", "-r", "{tree}", "{img}"], 128 * MiB),
    "fat12": ("FAT file system", ["mkfs.vfat", "-F", "12", "{img}"], 4 * MiB),
    "fat16": ("FAT file system", ["mkfs.vfat", "-F", "16", "{img}"], 32 * MiB),
    "fat32": ("FAT file system", ["mkfs.vfat", "-F", "32", "{img}"], 64 * MiB),
    "iso9660": ("iso9660 file system", ["xorriso", "-as", "mkisofs", "-quiet", "-o", "{img}", "{tree}"], 0),
    "squashfs": ("squashfs file system", ["mksquashfs", "{tree}", "{img}", "-quiet", "-noappend"], 0),
    "swap": ("Linux swap space", ["mkswap", "{img}"], 8 * MiB),
    # lvm2 writes a PV label only on a block device: a loop device over the image (root)
    "lvm2-pv": ("LVM2 physical volume", ["pvcreate", "-q", "--config", LVM_CONFIG, "{loop}"], 16 * MiB),
}


@pytest.fixture(scope="session")
def made(tmp_path_factory):
    work = tmp_path_factory.mktemp("sigs")
    tree = work / "tree"
    (tree / "boot").mkdir(parents=True)
    (tree / "boot" / "hello").write_text("hello\n")
    cache: dict[str, Path] = {}

    def make(kind: str) -> Path:
        if kind not in cache:
            _what, argv, size = MAKERS[kind]
            if shutil.which(argv[0]) is None:
                unavailable(f"{argv[0]} is not installed")
            img = work / f"{kind}.img"
            if size:
                with open(img, "wb") as f:
                    f.truncate(size)
            if "{loop}" in argv:  # (replace, not format: the lvm config has braces)
                _on_loop_device(img, argv)
            else:
                subprocess.run([a.format(img=img, tree=tree) for a in argv], check=True, capture_output=True,
                               timeout=120)
            cache[kind] = img
        return cache[kind]

    return make


def _on_loop_device(img: Path, argv: list[str]) -> None:
    if shutil.which("losetup") is None or os.geteuid() != 0:
        unavailable("a loop device (losetup, as root) is needed to run " + argv[0])
    loop = subprocess.run(["losetup", "-f", "--show", str(img)], capture_output=True, text=True, timeout=60)
    if loop.returncode != 0:
        unavailable(f"losetup: {loop.stderr.strip()}")
    device = loop.stdout.strip()
    try:
        subprocess.run([a.replace("{loop}", device) for a in argv], check=True, capture_output=True, timeout=120)
    finally:
        subprocess.run(["losetup", "-d", device], check=True, timeout=60)


@pytest.mark.parametrize("kind", sorted(MAKERS))
def test_a_device_names_what_it_holds(made, kind):
    what = MAKERS[kind][0]
    image = made(kind)
    fd = os.open(image, os.O_RDONLY | os.O_CLOEXEC)
    try:
        device = open_image(fd, image.name).devices.get("hd0")
        if device.fs is not None:  # its driver has landed in fs.PROBES: read, not named
            assert what.split()[0].lower().rstrip("0123456789") in device.fs.kind.lower()
            return
        if kind == "swap":
            assert device.problem == "Linux swap space"
        elif kind == "lvm2-pv":  # volume/lvm.py reads PVs now: a PV of no VG says so
            assert re.fullmatch(r"LVM2 physical volume \S+ of no volume group found", device.problem)
        else:
            assert isinstance(device.problem, Unsupported)
            assert str(device.problem) == f"(hd0): {what}: not supported yet"
        assert identify(FileSource(fd, image.name)).what == what
    finally:
        os.close(fd)


def test_every_check_lies_inside_a_small_volume():
    """A volume smaller than a signature's offset simply does not match (no read past it)."""
    from guestboot.source import BytesSource

    for size in (0, 1, 511, 4096):
        assert identify(BytesSource(bytes(size))) is None
    assert all(sig.checks for sig in SIGNATURES)
