"""squashfs through the whole pipeline and against its peers.

- `guestboot list`/`extract` on a squashfs holding boot/grub/grub.cfg and the real Debian
  kernel, as a whole-disk image (hd0) and in a GPT partition made by sgdisk (hd0,gpt2),
  for a compressor of each family; the kernel comes out byte for byte.
- grub-fstest (GRUB's squash4 driver) lists the same names and sizes and computes the same
  CRC-32 of every file, on every variant GRUB reads. GRUB 2.06 (Debian 12) reads gzip,
  lzo, xz and uncompressed images and calls lzma, lz4 and zstd ones "unknown filesystem":
  there the test shows that we read what GRUB cannot.
- The real pygrub (its libfsimage has no squashfs) lists nothing where we list the menu.
"""

from __future__ import annotations

import glob
import json
import os
import random
import re
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from builders import boot as boot_builder
from builders import disk as disk_builder
from builders import squashfs as builder
from guestboot.fs import path as fspath
from guestboot.fs import squashfs
from guestboot.fs.base import FileType
from guestboot.source import FileSource
from prereq import unavailable

GRUB_CFG = """\
set default=1
set timeout=5
menuentry 'Squashed system' --id squashed {
    linux /boot/vmlinuz root=/dev/vda ro quiet
    initrd /boot/initrd.img
}
menuentry 'Squashed system (recovery)' --id recovery {
    linux /boot/vmlinuz root=/dev/vda ro single
    initrd /boot/initrd.img
}
"""
BOOT_VARIANTS = ("xz-bcj-1m", "lzo", "zstd", "uncompressed")


@pytest.fixture(scope="module")
def boot_tree(tmp_path_factory) -> Path:
    if builder.mksquashfs() is None:
        unavailable("mksquashfs (package squashfs-tools) is not installed")
    try:
        kernel = boot_builder.debian_kernel().read_bytes()
    except boot_builder.ToolMissing as err:
        unavailable(str(err))
    top = tmp_path_factory.mktemp("squashfs-boot") / "tree"
    (top / "boot" / "grub").mkdir(parents=True)
    (top / "boot" / "grub" / "grub.cfg").write_text(GRUB_CFG)
    (top / "boot" / "vmlinuz").write_bytes(kernel)
    (top / "boot" / "initrd.img").write_bytes(random.Random(6).randbytes(150_000))
    return top


@pytest.fixture(scope="module")
def images(tmp_path_factory, boot_tree) -> dict[tuple[str, str], Path]:
    """(variant, "whole" or "gpt") -> disk image."""
    work = tmp_path_factory.mktemp("squashfs-disks")
    found = {}
    for variant in BOOT_VARIANTS:
        fs_image = builder.build_image(boot_tree, work / f"{variant}.sqfs", variant)
        found[(variant, "whole")] = fs_image
        size = fs_image.stat().st_size
        disk = disk_builder.sgdisk_image(
            work / f"{variant}-gpt.img", 8 * 1024 * 1024 + size + 1024 * 1024,
            ["-n", "1:2048:+4M", "-t", "1:ef00", "-n", f"2:0:+{size // 1024 + 1}K", "-t", "2:8300"])
        start = int(re.search(r"First sector: (\d+)", subprocess.run(
            ["sgdisk", "-i", "2", str(disk)], capture_output=True, text=True, check=True).stdout).group(1))
        disk_builder.place_image(disk, start * 512, fs_image)
        found[(variant, "gpt")] = disk
    return found


def guestboot(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "guestboot", *argv], capture_output=True, timeout=120)


DEVICE = {"whole": "hd0", "gpt": "hd0,gpt2"}
CASES = [(variant, layout) for variant in BOOT_VARIANTS for layout in ("whole", "gpt")]


@pytest.mark.parametrize("variant, layout", CASES)
def test_list_finds_grub_cfg_on_squashfs(images, variant, layout):
    done = guestboot("list", "--json", str(images[(variant, layout)]))
    assert done.returncode == 0, done.stderr.decode()
    menu = json.loads(done.stdout)
    device = DEVICE[layout]
    assert menu["config"] == f"({device})/boot/grub/grub.cfg"
    assert [(e["title"], e["id"], e["args"], e["default"]) for e in menu["entries"]] == [
        ("Squashed system", "squashed", "root=/dev/vda ro quiet", False),
        ("Squashed system (recovery)", "recovery", "root=/dev/vda ro single", True),
    ]
    assert menu["entries"][1]["kernel"] == f"({device})/boot/vmlinuz"


@pytest.mark.parametrize("variant, layout", [("xz-bcj-1m", "gpt"), ("zstd", "whole"), ("uncompressed", "gpt"),
                                             ("lzo", "whole")])
def test_extract_copies_the_real_kernel(images, boot_tree, tmp_path, variant, layout):
    out = tmp_path / "out"
    done = guestboot("extract", str(images[(variant, layout)]), "-o", str(out), "--json")
    assert done.returncode == 0, done.stderr.decode()
    result = json.loads(done.stdout)
    assert result["kernel_format"] == "bzImage"
    assert result["cmdline"] == "BOOT_IMAGE=/boot/vmlinuz root=/dev/vda ro single"
    assert (out / "kernel").read_bytes() == (boot_tree / "boot" / "vmlinuz").read_bytes()
    assert (out / "initrd").read_bytes() == (boot_tree / "boot" / "initrd.img").read_bytes()


def test_ls_names_the_file_system(images):
    done = guestboot("ls", str(images[("zstd", "gpt")]))
    assert done.returncode == 0, done.stderr.decode()
    assert re.search(r"^\(hd0,gpt2\)\s+squashfs", done.stdout.decode(), re.M), done.stdout.decode()


# --- the real pygrub ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pygrub() -> str:
    found = sorted(glob.glob("/usr/lib/xen-*/bin/pygrub"))
    if not found:
        unavailable("the real pygrub not found (apt-get install xen-utils-4.17)")
    return found[-1]


@pytest.mark.parametrize("layout", ["whole", "gpt"])
def test_pygrub_cannot_read_squashfs_where_we_can(pygrub, images, layout):
    image = images[("xz-bcj-1m", layout)]
    theirs = subprocess.run([pygrub, "-l", "-n", str(image)], capture_output=True, text=True, timeout=120,
                            stdin=subprocess.DEVNULL)
    assert "title:" not in theirs.stdout, theirs.stdout
    assert theirs.returncode != 0 or not theirs.stdout.strip()
    ours = guestboot("list", str(image))
    assert ours.returncode == 0, ours.stderr.decode()
    assert "Squashed system (recovery)" in ours.stdout.decode()


# --- grub-fstest --------------------------------------------------------------------------------

GRUB_READS = {"gzip", "gzip-4k-level1", "lzo", "xz-bcj-1m", "uncompressed", "no-fragments"}


def _grub(path: Path, *command: str) -> subprocess.CompletedProcess:
    return subprocess.run(["grub-fstest", str(path), *command], capture_output=True, timeout=120)


def _grub_sizes(path: Path, directory: str) -> dict[str, str]:
    """name -> size (or "DIR") from `grub-fstest ls -l`: entries GRUB can stat."""
    done = _grub(path, "ls", "--", "-l", directory)
    assert done.returncode == 0, done.stderr.decode()
    rows = {}
    for line in done.stdout.decode("utf-8", "surrogateescape").splitlines():
        m = re.match(r"^(DIR|\d+)\s+\d+\s+(.*?)/?$", line)
        if m:
            rows[m.group(2)] = m.group(1)
    return rows


@pytest.mark.parametrize("variant", sorted(builder.VARIANTS))
def test_grub_fstest_agrees(tmp_path_factory, variant):
    if builder.mksquashfs() is None:
        unavailable("mksquashfs (package squashfs-tools) is not installed")
    path = builder.image(tmp_path_factory, variant)
    fd = os.open(path, os.O_RDONLY)
    try:
        fs = squashfs.probe(FileSource(fd, name=path.name))
        listing = _grub(path, "ls", "/")
        if variant not in GRUB_READS and not listing.stdout.strip():
            # GRUB 2.06's squash4 has no lzma, lz4 or zstd: it lists nothing and opens nothing
            # (a later GRUB that reads one is compared below like the others)
            crc = _grub(path, "crc", "/small.txt")
            assert crc.returncode != 0 and b"unknown filesystem" in crc.stderr, crc
            assert fspath.read_bytes(fs, "/small.txt", 100) == b"hello from the squashfs reference tree\n"
            return
        assert listing.returncode == 0, listing.stderr.decode()
        for directory in ("/", "/files", "/many"):
            ours = dict(fs.readdir(fspath.resolve(fs, directory)))
            names = listing.stdout if directory == "/" else _grub(path, "ls", directory).stdout
            theirs_names = [n.rstrip("/") for n in os.fsdecode(names).split()]
            ours_names = [os.fsdecode(n) for n in ours]  # in the listing's (sorted) order
            if directory == "/many":
                # GRUB 2.06 stops reading this extended directory's 100 KB listing early
                # (after ~2000 of its 3002 entries, near byte 34430 = 99966 mod 65536: the
                # 32-bit size seen through 16 bits?): what it lists is a prefix of ours
                assert theirs_names == ours_names[: len(theirs_names)] and len(theirs_names) > 1000
            else:
                assert sorted(theirs_names) == sorted(ours_names), directory
            if directory == "/many":
                continue  # `ls -l` opens each of the 3000 files: minutes in grub-fstest
            sizes = _grub_sizes(path, directory)
            for name, size in sizes.items():
                node = fspath.resolve(fs, f"{directory.rstrip('/')}/{name}")  # ls -l follows symlinks
                assert size == ("DIR" if node.type is FileType.DIR else str(node.size)), name
            # what `ls -l` leaves out are entries GRUB cannot stat: fifos, links it does not follow
            for name in set(theirs_names) - set(sizes):
                assert ours[os.fsencode(name)].type in (FileType.OTHER, FileType.LNK), name
        with_data = _grub(path, "crc", "/many/with-data")  # past the part of /many GRUB reads
        assert with_data.returncode != 0 and b"not found" in with_data.stderr or with_data.stdout.strip()
        for rel in ["/files/" + n for n in sorted(_grub_sizes(path, "/files"))] + ["/sparse.bin", "/mixed.bin"]:
            crc = _grub(path, "crc", rel)
            assert crc.returncode == 0, crc.stderr.decode()
            ours = fspath.read_bytes(fs, rel, 1 << 24)
            assert crc.stdout.decode().strip() == f"{zlib.crc32(ours):08x}", rel
    finally:
        os.close(fd)
