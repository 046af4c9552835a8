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


# libvhdi read through its Python binding (python3-libvhdi): Debian 13 builds vhdimount
# without FUSE ("No sub system to mount VHDI format"); the binding is the same library on
# both releases and needs neither FUSE nor root. A differencing image's parents are opened
# from the image's directory, by the file name the child records (any directory part,
# Windows or POSIX, dropped), as vhdimount does.
_PYVHDI_SHA256 = """
import hashlib, os, sys
import pyvhdi

kept = []  # the binding does not hold a parent alive: freed, the child's reads fail

def opened(path, depth):
    if depth > 16:
        raise SystemExit("libvhdi: parent chain deeper than 16")
    f = pyvhdi.file()
    kept.append(f)
    f.open(path)
    parent = f.get_parent_filename()
    if parent:
        name = parent.replace("\\\\", "/").rsplit("/", 1)[-1]
        f.set_parent(opened(os.path.join(os.path.dirname(path), name), depth + 1))
    return f

f = opened(sys.argv[1], 0)
digest = hashlib.sha256()
size, at = f.get_media_size(), 0
while at < size:
    chunk = f.read_buffer_at_offset(min(int(sys.argv[2]), size - at), at)
    if not chunk:
        raise SystemExit(f"libvhdi: short read at {at}")
    digest.update(chunk)
    at += len(chunk)
print(digest.hexdigest())
"""


def libvhdi_sha256(image: Path, scratch: Path | None = None) -> str:
    """SHA-256 of the disk libvhdi (the peer, from python3-libvhdi) reads from the
    VHD/VHDX ``image``: the top of a differencing chain when it is a child. ``scratch``
    is unused (the FUSE mount point of an earlier peer)."""
    import subprocess

    from prereq import unavailable

    python = "/usr/bin/python3"
    if subprocess.run([python, "-c", "import pyvhdi"], capture_output=True).returncode:
        unavailable("libvhdi's Python binding not found (apt-get install python3-libvhdi)")
    done = subprocess.run([python, "-c", _PYVHDI_SHA256, str(image), str(CHUNK)], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.strip()


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
