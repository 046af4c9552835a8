"""FAT12/16/32 fixture images, made by the real mkfs.fat and mtools from a reference tree.

``write_tree`` writes the directory tree that is the expected answer (an EFI system
partition's usual files, long and short names in every case, deep and big directories,
files around every cluster size); ``build_image`` formats an image with ``mkfs.fat`` and
fills it with ``mcopy -s``, then makes a fragmented file: filler files are copied, every
other one deleted, the file copied into the holes, the rest of the fillers deleted. The
fillers are not in the tree, so their deleted entries must stay invisible.

Peers: ``mdir -/ -b`` (mtools' own listing), ``grub-fstest ls/cat/blocklist`` (GRUB's FAT
driver), ``blkid``. Debian packages: dosfstools (mkfs.fat), mtools, grub-common.
"""

from __future__ import annotations

import os
import random
import shutil
import struct
import subprocess
from pathlib import Path

from .disk import place_image

FILE_SIZES = (0, 1, 511, 512, 513, 1024, 2047, 2048, 4096, 4097, 8192, 16384, 32768, 65536, 100_000)
BIG_FILE_SIZE = 1_500_000
MANY_ENTRIES = 300  # long names: four 32-byte entries each, a directory of many clusters
FRAGMENTED = "fragmented.bin"
FILLERS = 12
LABEL = "ESP-TEST"
VOLUME_ID = "0badcafe"
UUID = "0BAD-CAFE"  # as GRUB and blkid print it

GRUB_CFG = """\
set default=0
set timeout=1
search --no-floppy --fs-uuid --set=root 0BAD-CAFE
menuentry 'Debian GNU/Linux (kernel on the ESP)' --id esp-debian {
    linux /EFI/debian/vmlinuz root=/dev/vda2 ro quiet
    initrd /EFI/debian/initrd.img
}
menuentry 'Mixed-case path' --id mixed {
    linux /efi/DEBIAN/VMLINUZ root=/dev/vda2 ro single
}
"""

# name -> (mkfs.fat arguments, image size in KiB, cluster size in bytes)
VARIANTS: dict[str, tuple[tuple[str, ...], int, int]] = {
    "fat12": (("-F", "12", "-s", "4"), 8 * 1024, 2048),
    "fat12-1k-sector": (("-F", "12", "-S", "1024", "-s", "1"), 4 * 1024, 1024),
    "fat16": (("-F", "16", "-s", "4"), 64 * 1024, 2048),
    "fat16-2k-sector": (("-F", "16", "-S", "2048", "-s", "1"), 64 * 1024, 2048),
    "fat32": (("-F", "32", "-s", "1"), 40 * 1024, 512),
    "fat32-4k-sector": (("-F", "32", "-S", "4096", "-s", "1"), 300 * 1024, 4096),
    "fat32-32k-cluster": (("-F", "32", "-S", "4096", "-s", "8"), 2200 * 1024, 32768),
}


def write_tree(top: Path, seed: int = 20261204) -> Path:
    """Write the reference tree under ``top`` (created) and return it."""
    rng = random.Random(seed)
    top.mkdir(parents=True)
    debian = top / "EFI" / "debian"
    debian.mkdir(parents=True)
    (debian / "grub.cfg").write_text(GRUB_CFG)
    (debian / "vmlinuz").write_bytes(rng.randbytes(BIG_FILE_SIZE))
    (debian / "initrd.img").write_bytes(rng.randbytes(300_000))
    (debian / "shimx64.efi").write_bytes(rng.randbytes(70_000))
    boot = top / "EFI" / "BOOT"
    boot.mkdir()
    (boot / "BOOTX64.EFI").write_bytes(rng.randbytes(40_000))
    (top / "EFI" / "Linux").mkdir()
    (top / "EFI" / "Linux" / "debian-6.1.0-13-amd64.efi").write_bytes(rng.randbytes(50_000))
    entries = top / "loader" / "entries"
    entries.mkdir(parents=True)
    (entries / "debian-6.1.0-13-amd64.conf").write_text("title Debian\nlinux /EFI/debian/vmlinuz\n")
    (top / "loader" / "loader.conf").write_text("timeout 3\n")

    names = top / "names"
    names.mkdir()
    # 8.3 names in upper, lower and mixed case (mtools writes the NT case bits or a long
    # name), long names, non-ASCII long names; no two names that differ only in case (FAT
    # keeps one), no trailing dot (Windows and mtools drop it), no non-ASCII name that fits
    # 8.3 (mtools stores it as code-page bytes in the short name, which no two tools show alike)
    for name in ("README.TXT", "lower.txt", "lowbase.TXT", "UPBASE.txt", "Mixed.Txt", "NOEXT",
                 "A Long File Name With Spaces.conf", "name.with.many.dots.tar.gz", "UPPER.LONGEXT",
                 "\u00fcber-\u00fcml\u00e4ut-\u00e9t\u00e9.txt", "\u65e5\u672c\u8a9e\u306e\u540d\u524d.txt",
                 "exactly8.123", "twelve_chars", "x" * 200 + ".txt", "-dash"):
        (names / name).write_bytes(name.encode() + b"\n")
    files = top / "files"
    files.mkdir()
    for size in FILE_SIZES:
        (files / f"size-{size}").write_bytes(rng.randbytes(size))
    many = top / "many"
    many.mkdir()
    for i in range(MANY_ENTRIES):
        (many / f"entry number {i:04d} with a long name").write_bytes(b"%d\n" % i)
    deep = top / "a" / "b" / "c" / "d" / "e" / "f" / "g" / "h"
    deep.mkdir(parents=True)
    (deep / "deep.txt").write_text("deep file\n")
    (top / "emptydir").mkdir()
    (top / FRAGMENTED).write_bytes(rng.randbytes(200_000))
    return top


def _run(argv: list[str]) -> str:
    if shutil.which(argv[0]) is None and shutil.which(argv[0], path="/usr/sbin:/sbin") is None:
        raise FileNotFoundError(f"{argv[0]} is not installed (apt-get install dosfstools mtools)")
    env = dict(os.environ, MTOOLS_SKIP_CHECK="1", LC_ALL="C.UTF-8")  # long names in UTF-8
    done = subprocess.run(argv, capture_output=True, timeout=300, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.decode(errors='replace')}")
    return done.stdout.decode("utf-8", "replace")


def mtools_target(image: Path, offset: int = 0) -> str:
    """mtools' name for the volume in ``image`` at byte ``offset``."""
    return f"{image}@@{offset}" if offset else str(image)


def format_at(image: Path, variant: str, offset: int = 0, label: str = LABEL, volume_id: str = VOLUME_ID,
              size_kib: int | None = None) -> None:
    """mkfs.fat into ``image`` (created when absent; at byte ``offset`` of an existing
    disk image, whose bytes around the volume stay as they were); ``size_kib`` in place
    of the variant's size."""
    args, variant_kib, _cluster = VARIANTS[variant]
    size_kib = size_kib or variant_kib
    if offset:
        # mkfs.fat writes at the start of the file it is given: format a scratch file,
        # then copy it into the disk at the partition's offset
        scratch = image.with_suffix(".fat-scratch")
        scratch.unlink(missing_ok=True)
        _run(["mkfs.fat", "-C", *args, "-n", label, "-i", volume_id, str(scratch), str(size_kib)])
        place_image(image, offset, scratch)
        scratch.unlink()
    else:
        _run(["mkfs.fat", "-C", *args, "-n", label, "-i", volume_id, str(image), str(size_kib)])


def fill(image: Path, tree: Path, variant: str, offset: int = 0) -> None:
    """Copy ``tree`` in with mcopy; a ``FRAGMENTED`` file of the tree is written into the
    holes of deleted filler files, so its cluster chain is not contiguous."""
    target = mtools_target(image, offset)
    cluster = VARIANTS[variant][2]
    top = [str(p) for p in sorted(tree.iterdir()) if p.name != FRAGMENTED]
    _run(["mcopy", "-s", "-i", target, *top, "::/"])
    if not (tree / FRAGMENTED).exists():
        return
    staging = image.with_suffix(".fillers")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    rng = random.Random(7)
    for i in range(FILLERS):
        (staging / f"filler-{i:02d}").write_bytes(rng.randbytes(3 * cluster))
    _run(["mcopy", "-i", target, *(str(p) for p in sorted(staging.iterdir())), "::/"])
    _run(["mdel", "-i", target, *(f"::/filler-{i:02d}" for i in range(0, FILLERS, 2))])
    forget_next_free(image, offset)
    _run(["mcopy", "-i", target, str(tree / FRAGMENTED), "::/"])
    _run(["mdel", "-i", target, *(f"::/filler-{i:02d}" for i in range(1, FILLERS, 2))])
    shutil.rmtree(staging)


def forget_next_free(image: Path, offset: int = 0) -> None:
    """Set FAT32's FSInfo hint FSI_Nxt_Free to 0xFFFFFFFF ("not known", fatgen103 section
    5), so mtools looks for free clusters from the start and fills the holes; it otherwise
    continues after the last cluster it allocated. No change on FAT12/16 (no FSInfo)."""
    with open(image, "r+b") as f:
        f.seek(offset)
        boot = f.read(512)
        if struct.unpack_from("<H", boot, 22)[0] != 0:  # BPB_FATSz16 set: not FAT32
            return
        sector, fsinfo = struct.unpack_from("<H", boot, 11)[0], struct.unpack_from("<H", boot, 48)[0]
        f.seek(offset + fsinfo * sector + 492)
        f.write(b"\xff\xff\xff\xff")


def build_image(tree: Path, image: Path, variant: str) -> Path:
    format_at(image, variant)
    fill(image, tree, variant)
    return image


def mdir_paths(image: Path, offset: int = 0) -> list[str]:
    """Every path mtools lists, recursively, in its order (directories end in "/")."""
    out = _run(["mdir", "-i", mtools_target(image, offset), "-/", "-b", "::/"])
    return [line[len("::"):] for line in out.splitlines() if line.startswith("::/")]


def grub(image: Path, *command: str) -> bytes:
    done = subprocess.run(["grub-fstest", str(image), *command], capture_output=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"grub-fstest {' '.join(command)}: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout


# --- an EFI system partition on a GPT disk -------------------------------------------------------

ESP_TYPE = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
ESP_START = 1024 * 1024  # byte offset of the ESP on both disks


def esp_disk(path: Path, tree: Path, sector_size: int = 512) -> Path:
    """A GPT disk whose first partition is an ESP (FAT32, made by mkfs.fat at the
    partition's offset, filled from ``tree`` by mcopy) and whose second is an empty Linux
    partition. 512-byte sectors: sgdisk (type EF00); 4096-byte sectors: fdisk -b 4096."""
    from . import disk

    variant = "fat32" if sector_size == 512 else "fat32-4k-sector"
    # the variant's size, or more where the tree needs it (its kernels are the release's:
    # Debian 13's are half as big again as Debian 12's)
    cluster = VARIANTS[variant][2]
    used = sum(-(-p.stat().st_size // cluster) * cluster for p in tree.rglob("*") if p.is_file())
    esp_bytes = max(VARIANTS[variant][1] * 1024, -(-(used * 5 // 4 + (8 << 20)) >> 20) << 20)
    size = ESP_START + esp_bytes + 8 * 1024 * 1024 + 64 * 1024
    if sector_size == 512:
        first = ESP_START // 512
        disk.sgdisk_image(path, size, ["-n", f"1:{first}:{first + esp_bytes // 512 - 1}", "-t", "1:EF00",
                                       "-c", "1:EFI System", "-n", "2:0:+4M", "-t", "2:8300"])
    else:
        start = ESP_START // sector_size
        script = (f"label: gpt\nstart={start}, size={esp_bytes // sector_size}, type={ESP_TYPE}\n"
                  f"size={4 * 1024 * 1024 // sector_size}, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\n")
        disk.fdisk_image(path, size, script, sector_size)
    format_at(path, variant, ESP_START, size_kib=esp_bytes // 1024)
    fill(path, tree, variant, ESP_START)
    return path


# --- once-per-run cache shared by the test modules ---------------------------------------------

_TREE: list[Path] = []
_IMAGES: dict[str, Path] = {}


def tree(factory) -> Path:
    if not _TREE:
        _TREE.append(write_tree(factory.mktemp("fat-tree") / "tree"))
    return _TREE[0]


def image(factory, variant: str) -> Path:
    if variant not in _IMAGES:
        _IMAGES[variant] = build_image(tree(factory), factory.mktemp(f"fat-{variant}") / "disk.img", variant)
    return _IMAGES[variant]
