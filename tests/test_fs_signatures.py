"""A device whose contents no driver reads says what it holds: file systems made by their
real mkfs are named "… file system: not supported yet" (Unsupported); swap is named
without an error. When a driver for a kind lands (fs.PROBES), the device is read instead."""

from __future__ import annotations

import os
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
            argv = [a.format(img=img, tree=tree) for a in argv]
            subprocess.run(argv, check=True, capture_output=True, timeout=120)
            cache[kind] = img
        return cache[kind]

    return make


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
