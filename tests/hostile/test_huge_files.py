"""Huge files: a 1 TiB sparse initrd or kernel in the guest (``truncate -s 1T`` in the tree
mke2fs copies; the image stays a few MiB), and files whose recorded size lies (set to
1 TiB or 4 GiB by each file system's own debugger, or in the directory record where the
file system has none). Every run stops at a size limit (max_output_file, pygrub's
PYGRUB_MAX_FILE_SIZE_MB) or a corruption check before writing much, leaves no partial
file, and stays within the case's time and memory."""

from __future__ import annotations

import struct
import subprocess

import pytest

from hostile import configs
from hostile.configs import GUEST_FILES
from hostile.harness import expect_error, extract, guestboot, pygrub
from hostile.images import Sparse, altered

TIB = 1 << 40


@pytest.fixture(scope="module")
def sparse_initrd(images):
    return images.fs("huge-initrd", "ext4", {**GUEST_FILES, "/boot/initrd.img": Sparse(TIB), **configs.entry("grub2")})


@pytest.fixture(scope="module")
def sparse_kernel(images):
    return images.fs("huge-kernel", "ext4", {**GUEST_FILES, "/boot/vmlinuz": Sparse(TIB), **configs.entry("grub2")})


def test_1tib_initrd_extract(arena, sparse_initrd):
    expect_error(extract(arena, sparse_initrd), {5})


def test_1tib_kernel_extract(arena, sparse_kernel):
    expect_error(extract(arena, sparse_kernel), {5})


def test_1tib_kernel_extract_without_the_sandbox(arena, sparse_kernel):
    expect_error(extract(arena, sparse_kernel, sandbox=False), {5})


@pytest.mark.parametrize("fmt", ["sxp", "simple0"])
def test_1tib_initrd_pygrub(arena, sparse_initrd, fmt):
    result = pygrub(arena, "-q", f"--output-format={fmt}", f"--output-directory={arena.out}", str(sparse_initrd))
    expect_error(result, {5})
    assert result.stdout == b""


def test_pygrub_file_size_limit_from_the_environment(arena, images):
    image = images.fs("huge-3mib", "ext4", {**GUEST_FILES, "/boot/vmlinuz": Sparse(3 << 20), **configs.entry("grub2")})
    result = pygrub(arena, "-q", f"--output-directory={arena.out}", str(image), env={"PYGRUB_MAX_FILE_SIZE_MB": "1"})
    expect_error(result, {5})


@pytest.mark.parametrize("command", ["inspect", "list"])
def test_1tib_kernel_is_inspected_within_bounds(arena, sparse_kernel, command):
    """Reading the kernel's header (and what inspect decompresses) of a file of holes."""
    result = guestboot(arena, command, str(sparse_kernel))
    assert result.rc in (0, 3, 4, 5, 6), result


# --- recorded sizes that lie ---------------------------------------------------------------

def _ext4_lie(image, work):
    out = altered(image, work / "lie.ext4.img", [])
    subprocess.run(["debugfs", "-w", "-R", f"sif /boot/vmlinuz size {TIB}", str(out)], check=True, capture_output=True)
    return out


def _xfs_lie(image, work):
    out = altered(image, work / "lie.xfs.img", [])
    ino = subprocess.run(["xfs_db", "-r", "-c", "path /boot", "-c", "ls", str(out)], check=True, capture_output=True,
                         text=True).stdout
    number = next(line.split()[1] for line in ino.splitlines() if line.split()[-2:-1] == ["vmlinuz"])
    subprocess.run(["xfs_db", "-x", "-c", f"inode {number}", "-c", f"write core.size {TIB}", str(out)],
                   check=True, capture_output=True)
    return out


def _fat_lie(image, work):
    """The 8.3 directory entry of VMLINUZ: its size field (offset 28) set to 4 GiB - 1."""
    data = image.read_bytes()
    at = data.index(b"VMLINUZ    ")
    return altered(image, work / "lie.fat.img", [(at + 28, struct.pack("<I", 0xFFFFFFFF))])


def _iso_lie(image, work):
    """The ISO 9660 directory record of VMLINUZ.;1: data length (both-endian, ECMA-119
    9.1.4) set to 4 GiB - 1."""
    data = image.read_bytes()
    name = data.index(b"VMLINUZ.;1")
    record = name - 33  # the file identifier starts at byte 33 of the record
    assert data[record + 32] == len(b"VMLINUZ.;1")
    return altered(image, work / "lie.iso.img", [(record + 10, struct.pack("<I", 0xFFFFFFFF) + struct.pack(">I", 0xFFFFFFFF))])


LIES = {"ext4": _ext4_lie, "xfs": _xfs_lie, "fat": _fat_lie, "iso9660": _iso_lie}


@pytest.mark.parametrize("kind", sorted(LIES))
def test_recorded_size_lies(images, arena, kind):
    base = images.fs("lie", kind, configs.guest("grub2"))
    image = images.derived(f"lie-{kind}", lambda work: LIES[kind](base, work))
    result = extract(arena, image)
    expect_error(result, {3, 5})
