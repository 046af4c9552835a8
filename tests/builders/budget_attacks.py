"""Hostile images that attack the file-system scan budgets, made by the real tools and then
altered (tests/test_fs_budgets.py and bench/fs_budget_bench.py build the same ones).

- ``deleted_slots_fs``: an ext4 file system (mke2fs -O ^dir_index, so every lookup is a
  linear scan) whose /big directory was filled and then half emptied by the kernel (a
  loop mount, ``touch`` and ``rm``): a long directory of live and deleted slots, and a
  grub.cfg whose loop looks a missing name up on every device again and again.
- ``aliased_gpt``: a GPT disk made by sfdisk with COPIES partitions, the file system
  copied into the first, then the other entries rewritten to the first one's sectors
  (sfdisk refuses overlapping partitions; the CRCs of both GPT headers are redone), so
  every partition is the same hostile file system.
- ``many_fs``: one small file system per driver (ext4, xfs, btrfs, fat, exfat, iso9660,
  squashfs), each made by its own tool from one tree with a directory /many of long names.
- ``sparse_tree``: a tree holding files made by ``truncate -s`` (all hole) and files with
  data at both ends of a hole, for the hole-writing tests; ``sparse_fs`` puts it in ext4
  (mke2fs -d keeps holes), or in xfs or btrfs through a loop mount and ``cp --sparse``
  (their mkfs copy-in writes the zeros, or fails on a 1 TiB file).

Debian packages: e2fsprogs, fdisk (sfdisk), xfsprogs, btrfs-progs, dosfstools, mtools,
exfatprogs, exfat-fuse, xorriso, squashfs-tools; building needs root (loop mount).
"""

from __future__ import annotations

import os
import struct
import subprocess
import tempfile
import zlib
from pathlib import Path

SECTOR = 512
LONG_NAME = "deleted-slot-" + "x" * 180  # long names: more directory bytes per file made


def can_build() -> str | None:
    """Why the attacks cannot be built here, or None."""
    if os.geteuid() != 0:
        return "building the attack images needs root (loop mount)"
    return None


def grub_cfg(lookups: int) -> str:
    """A config that searches every device for a missing file ``lookups`` times."""
    words = " ".join(str(n) for n in range(lookups))
    return (
        "set timeout=0\n"
        f"for i in {words}; do\n"
        "  search --no-floppy --file --set=found /big/absent-$i\n"
        "done\n"
        "menuentry 'attacked' {\n  linux /vmlinuz root=/dev/xvda1\n}\n"
    )


def deleted_slots_fs(workdir: Path, files: int = 6000, lookups: int = 400, size_mib: int = 24) -> Path:
    """The ext4 image described above; ``files`` made, every other one removed."""
    tree = workdir / "tree"
    (tree / "boot" / "grub").mkdir(parents=True)
    (tree / "big").mkdir()
    (tree / "vmlinuz").write_bytes(b"not a kernel")
    (tree / "boot" / "grub" / "grub.cfg").write_text(grub_cfg(lookups))
    image = workdir / "ext4.img"
    subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", "-O", "^dir_index", "-N", str(files + 256),
                    "-d", str(tree), str(image), f"{size_mib}M"], check=True, capture_output=True)
    mnt = Path(tempfile.mkdtemp(prefix="gb-budget-mnt-"))
    subprocess.run(["mount", "-o", "loop", str(image), str(mnt)], check=True, capture_output=True)
    try:
        big = mnt / "big"
        for n in range(files):
            (big / f"{LONG_NAME}-{n:06d}").touch()
        for n in range(0, files, 2):
            (big / f"{LONG_NAME}-{n:06d}").unlink()
    finally:
        subprocess.run(["umount", str(mnt)], check=True, capture_output=True)
        mnt.rmdir()
    return image


# UEFI 2.10 section 5.3.2 (GPT header) and 5.3.3 (partition entry): the fields altered
GPT_HEADER = struct.Struct("<8sIII4xQQQQ16sQIII")  # signature … entries CRC32


def aliased_gpt(fs_image: Path, disk: Path, copies: int = 4) -> Path:
    """A GPT disk whose ``copies`` partitions all cover the bytes of ``fs_image``."""
    fs_size = fs_image.stat().st_size
    sectors = -(-fs_size // SECTOR)
    start = 2048
    with open(disk, "wb") as f:
        f.truncate((start + sectors * copies + 2048) * SECTOR)
    script = f"label: gpt\nstart={start}, size={sectors}, type=L\n" + f"size={sectors}, type=L\n" * (copies - 1)
    subprocess.run(["sfdisk", "-q", str(disk)], input=script, text=True, check=True, capture_output=True)
    with open(disk, "r+b") as f, open(fs_image, "rb") as src:
        at = start * SECTOR
        while chunk := src.read(1 << 20):
            if chunk.count(0) != len(chunk):  # zeros stay holes: mkfs.xfs images are mostly empty
                f.seek(at)
                f.write(chunk)
            at += len(chunk)
        disk_sectors = os.fstat(f.fileno()).st_size // SECTOR
        for header_lba in (1, disk_sectors - 1):
            f.seek(header_lba * SECTOR)
            raw = bytearray(f.read(SECTOR))
            (_sig, _rev, header_size, _crc, _cur, _alt, _first, _last, _guid, entries_lba, count, entry_size,
             _ecrc) = GPT_HEADER.unpack_from(raw)
            f.seek(entries_lba * SECTOR)
            entries = bytearray(f.read(count * entry_size))
            first_lba, last_lba = struct.unpack_from("<QQ", entries, 32)
            for index in range(1, copies):
                struct.pack_into("<QQ", entries, index * entry_size + 32, first_lba, last_lba)
            f.seek(entries_lba * SECTOR)
            f.write(entries)
            struct.pack_into("<I", raw, 88, zlib.crc32(entries))
            struct.pack_into("<I", raw, 16, 0)
            struct.pack_into("<I", raw, 16, zlib.crc32(bytes(raw[:header_size])))
            f.seek(header_lba * SECTOR)
            f.write(raw)
    return disk


def sparse_tree(top: Path, hole_mib: int = 100) -> Path:
    """``top`` with /boot/sparse-initrd (``truncate -s``: all hole), /boot/holey (data,
    a hole of ``hole_mib`` MiB, data) and /boot/huge (a 1 TiB all-hole file)."""
    boot = top / "boot"
    boot.mkdir(parents=True)
    subprocess.run(["truncate", "-s", f"{hole_mib}M", str(boot / "sparse-initrd")], check=True)
    subprocess.run(["truncate", "-s", "1T", str(boot / "huge")], check=True)
    with open(boot / "holey", "wb") as f:
        f.write(b"head" * 1024)
        f.seek(hole_mib << 20)
        f.write(b"tail" * 1024)
    return top


DRIVERS = ("ext4", "xfs", "btrfs", "fat", "exfat", "iso9660", "squashfs")
MANY = 400


def many_tree(top: Path) -> Path:
    """/many: MANY empty files with long names; /boot/x: one small file."""
    (top / "many").mkdir(parents=True)
    for n in range(MANY):
        (top / "many" / f"a-rather-long-file-name-number-{n:04d}-of-many").write_bytes(b"")
    (top / "boot").mkdir()
    (top / "boot" / "x").write_bytes(b"x\n")
    return top


def _run(argv: list[str], **kwargs) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, **kwargs)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()[-500:]}")


def _blank(image: Path, mib: int) -> None:
    with open(image, "wb") as f:
        f.truncate(mib << 20)


def many_fs(driver: str, tree: Path, image: Path) -> Path:
    """A ``driver`` file system in ``image`` made from ``tree`` by that file system's tool."""
    if driver == "ext4":
        _run(["mke2fs", "-q", "-F", "-t", "ext4", "-O", "^dir_index", "-d", str(tree), str(image), "8M"])
    elif driver == "xfs":
        from .xfs import IMAGE_SIZE, write_protofile

        with open(image, "wb") as f:
            f.truncate(IMAGE_SIZE)
        proto = image.with_suffix(".proto")
        write_protofile(tree, proto)
        _run(["mkfs.xfs", "-q", "-f", "-p", str(proto), str(image)])
    elif driver == "btrfs":
        _blank(image, 128)
        _run(["mkfs.btrfs", "-q", "-f", "--rootdir", str(tree), str(image)])
    elif driver == "fat":
        _blank(image, 16)
        _run(["mkfs.vfat", str(image)])
        _run(["mcopy", "-s", "-i", str(image), *[str(p) for p in sorted(tree.iterdir())], "::"])
    elif driver == "exfat":
        from . import exfat

        (tree / exfat.FRAGMENTED).write_bytes(b"")  # exfat.build_image writes this one last
        try:
            exfat.build_image(tree, image)
        finally:
            (tree / exfat.FRAGMENTED).unlink()
    elif driver == "iso9660":
        _run(["xorriso", "-as", "mkisofs", "-quiet", "-R", "-J", "-o", str(image), str(tree)])
    elif driver == "squashfs":
        _run(["mksquashfs", str(tree), str(image), "-noappend", "-quiet", "-no-progress"])
    else:
        raise ValueError(driver)
    return image


def aliasing_ext2(workdir: Path) -> Path:
    """ext2 in 1 KiB blocks (indirect block maps) holding /boot/alias, 200 KiB of data,
    then altered with debugfs and block writes: its data blocks 1..198 overwritten to be
    indirect blocks whose 256 slots all name data block 0, its last data block made the
    double-indirect block listing them, and its size set to 64 MiB. The map then claims
    ~50 MiB of data, all of it one block of an 8 MiB volume."""
    import random
    import re

    from .ext import debugfs

    tree = workdir / "alias-tree"
    (tree / "boot").mkdir(parents=True)
    (tree / "boot" / "alias").write_bytes(random.Random(9).randbytes(200 * 1024))
    image = workdir / "alias.img"
    _run(["mke2fs", "-q", "-F", "-t", "ext2", "-b", "1024", "-d", str(tree), str(image), "8M"])
    stat = debugfs(image, "stat /boot/alias")
    indirect = int(re.search(r"\(IND\):(\d+)", stat).group(1))
    data = [int(b) for b in debugfs(image, "blocks /boot/alias").split() if int(b) != indirect]
    assert len(data) == 200, data
    with open(image, "r+b") as f:
        for block in data[1:-1]:
            f.seek(block * 1024)
            f.write(struct.pack("<256I", *[data[0]] * 256))
        f.seek(data[-1] * 1024)
        f.write(struct.pack("<256I", *data[1:-1], *[0] * (256 - len(data[1:-1]))))
    debugfs(image, f"sif /boot/alias block[DIND] {data[-1]}", writable=True)
    debugfs(image, f"sif /boot/alias size {64 << 20}", writable=True)
    return image


def sparse_fs(driver: str, tree: Path, image: Path) -> Path:
    """``tree`` in a ``driver`` file system with its holes kept (see the module's notes)."""
    if driver == "ext4":
        _run(["mke2fs", "-q", "-F", "-t", "ext4", "-d", str(tree), str(image), "64M"])
        return image
    if driver == "xfs":
        from .xfs import IMAGE_SIZE

        with open(image, "wb") as f:
            f.truncate(IMAGE_SIZE)
        _run(["mkfs.xfs", "-q", "-f", str(image)])
    elif driver == "btrfs":
        _blank(image, 128)
        _run(["mkfs.btrfs", "-q", "-f", str(image)])
    else:
        raise ValueError(driver)
    mnt = Path(tempfile.mkdtemp(prefix="gb-budget-sparse-"))
    _run(["mount", "-o", "loop", str(image), str(mnt)])
    try:
        _run(["cp", "-a", "--sparse=always", f"{tree}/.", str(mnt)])
    finally:
        _run(["umount", str(mnt)])
        mnt.rmdir()
        if driver == "btrfs":
            subprocess.run(["btrfs", "device", "scan", "--forget"], capture_output=True)
    return image
