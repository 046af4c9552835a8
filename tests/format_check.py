"""What every image-format test checks: the disk an image holds is the raw original,
byte for byte (one hash of the whole disk, and random ranges), through pread and
through runs (the zero-copy path extraction takes)."""

from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path

from guestboot.source import FileSource
from guestboot.source.formats import open_format

CHUNK = 4 * 1024 * 1024


def open_disk(path: Path, opener=None, image_format: str | None = None):
    """(disk source, image fd): the caller closes the fd."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return open_format(FileSource(fd, name=path.name), image_format=image_format, opener=opener), fd
    except BaseException:
        os.close(fd)
        raise


def run_bytes(run) -> bytes:
    if run.fd is not None:
        return os.pread(run.fd, run.length, run.offset)
    return run.data if run.data is not None else bytes(run.length)


def assert_same_disk(disk, raw: Path, *, seed: int = 1, ranges: int = 64) -> None:
    expected = raw.read_bytes()
    assert disk.size >= len(expected)
    whole = hashlib.sha256()
    for at in range(0, disk.size, CHUNK):
        whole.update(disk.pread(at, min(CHUNK, disk.size - at)))
    assert whole.hexdigest() == hashlib.sha256(expected + bytes(disk.size - len(expected))).hexdigest()
    via_runs = hashlib.sha256()
    for run in disk.runs():
        via_runs.update(run_bytes(run))
    assert via_runs.hexdigest() == whole.hexdigest()
    rng = random.Random(seed)
    for _ in range(ranges):
        at = rng.randrange(len(expected))
        length = rng.randrange(min(300_000, len(expected) - at) + 1)
        assert disk.pread(at, length) == expected[at : at + length], (at, length)
        assert b"".join(run_bytes(r) for r in disk.runs(at, length)) == expected[at : at + length], (at, length)


def libvhdi_sha256(image: Path, mount_point: Path) -> str:
    """SHA-256 of the disk libvhdi (the peer: vhdimount from libvhdi-utils, over FUSE)
    reads from the VHD/VHDX ``image``: of the last vhdiN file it shows, the top of a
    differencing chain (it opens parents itself, from the image's directory)."""
    import shutil
    import subprocess

    from prereq import unavailable

    if shutil.which("vhdimount") is None:
        unavailable("vhdimount not found (apt-get install libvhdi-utils)")
    if not os.path.exists("/dev/fuse") or os.geteuid() != 0:
        unavailable("vhdimount needs /dev/fuse and root")
    mount_point.mkdir()
    done = subprocess.run(["vhdimount", str(image), str(mount_point)], capture_output=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    try:
        top = sorted(mount_point.iterdir(), key=lambda p: int(p.name.removeprefix("vhdi")))[-1]
        digest = hashlib.sha256()
        with open(top, "rb") as f:
            while chunk := f.read(CHUNK):
                digest.update(chunk)
        return digest.hexdigest()
    finally:
        subprocess.run(["umount", str(mount_point)], capture_output=True, timeout=60)


def disk_sha256(disk) -> str:
    digest = hashlib.sha256()
    for at in range(0, disk.size, CHUNK):
        digest.update(disk.pread(at, min(CHUNK, disk.size - at)))
    return digest.hexdigest()


def assert_guest_files(path: Path, tree: Path, opener=None) -> None:
    """Through the whole stack (format, GPT, ext4): the tree's kernel and initrd read
    back from partition 1, and its grub.cfg is found as a menu."""
    from guestboot.boot.discover import find_menu
    from guestboot.image import open_image

    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        image = open_image(fd, path.name, opener=opener)
        for name in ("vmlinuz", "initrd.img"):
            source = image.devices.open("hd0,gpt1", f"/{name}")
            assert source.pread(0, source.size) == (tree / name).read_bytes(), name
        assert find_menu(image.devices).entries
    finally:
        os.close(fd)
