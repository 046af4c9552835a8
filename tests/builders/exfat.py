"""exFAT fixture images: made by the real mkfs.exfat (exfatprogs) and filled through the
real exFAT driver of exfat-fuse on a loop device (the test machines' kernel has no exFAT),
from a reference tree that is the expected answer.

The tree holds long and non-ASCII names, mixed case, a directory of many entries (several
clusters), files around the cluster size, an empty file and directory, and a file written
into the holes left by deleted fillers, so its cluster chain is not contiguous.

Needs root, /dev/fuse and a free loop device; ``ToolMissing`` says what is missing.
Peers: grub-fstest (GRUB's exFAT driver), fsck.exfat, blkid. Debian packages: exfatprogs,
exfat-fuse, grub-common.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import tempfile
from pathlib import Path

from .initramfs import ToolMissing

LABEL = "EXFAT-TEST"
SERIAL = 0x1A2B3C4D
UUID = "1A2B-3C4D"  # as GRUB and blkid print it
CLUSTER = 4096
SIZE = 48 * 1024 * 1024
FILE_SIZES = (0, 1, 4095, 4096, 4097, 65536, 300_000)
MANY_ENTRIES = 200
FRAGMENTED = "fragmented.bin"
FILLERS = 10


def write_tree(top: Path, seed: int = 1204) -> Path:
    rng = random.Random(seed)
    top.mkdir(parents=True)
    (top / "EFI" / "BOOT").mkdir(parents=True)
    (top / "EFI" / "BOOT" / "BOOTX64.EFI").write_bytes(rng.randbytes(50_000))
    (top / "EFI" / "debian").mkdir()
    (top / "EFI" / "debian" / "grub.cfg").write_text("set default=0\n")
    names = top / "names"
    names.mkdir()
    for name in ("README.TXT", "lower.txt", "Mixed Case With Spaces.conf", "x" * 200 + ".txt",
                 "\u00fcber-\u00e9t\u00e9.txt", "\u65e5\u672c\u8a9e.txt", "name.with.dots.tar.gz"):
        (names / name).write_bytes(name.encode() + b"\n")
    files = top / "files"
    files.mkdir()
    for size in FILE_SIZES:
        (files / f"size-{size}").write_bytes(rng.randbytes(size))
    many = top / "many"
    many.mkdir()
    for i in range(MANY_ENTRIES):
        (many / f"entry number {i:04d} with a long name").write_bytes(b"%d\n" % i)
    deep = top / "a" / "b" / "c" / "d"
    deep.mkdir(parents=True)
    (deep / "deep.txt").write_text("deep\n")
    (top / "emptydir").mkdir()
    (top / FRAGMENTED).write_bytes(rng.randbytes(150_000))
    return top


def _run(argv: list[str]) -> str:
    done = subprocess.run(argv, capture_output=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.decode(errors='replace')}")
    return done.stdout.decode(errors="replace")


def _need(tool: str, package: str) -> str:
    found = shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/sbin")
    if not found:
        raise ToolMissing(f"{tool} not found (apt-get install {package})")
    return found


def build_image(tree: Path, image: Path) -> Path:
    """mkfs.exfat, then the tree copied in through exfat-fuse on a loop device."""
    mkfs = _need("mkfs.exfat", "exfatprogs")
    tune = _need("tune.exfat", "exfatprogs")
    mount = _need("mount.exfat-fuse", "exfat-fuse")
    if os.geteuid() != 0 or not os.path.exists("/dev/fuse"):
        raise ToolMissing("building exFAT images needs root and /dev/fuse (loop device + exfat-fuse)")
    with open(image, "wb") as f:
        f.truncate(SIZE)
    _run([mkfs, "-L", LABEL, "-c", str(CLUSTER), str(image)])
    _run([tune, "-I", f"{SERIAL:#x}", str(image)])
    loop = _run(["losetup", "--find", "--show", str(image)]).strip()
    mountpoint = Path(tempfile.mkdtemp(prefix="exfat-mnt-"))
    try:
        _run([mount, loop, str(mountpoint)])
        try:
            for child in sorted(tree.iterdir()):
                if child.name == FRAGMENTED:
                    continue
                if child.is_dir():
                    shutil.copytree(child, mountpoint / child.name)
                else:
                    shutil.copyfile(child, mountpoint / child.name)
            rng = random.Random(5)
            for i in range(FILLERS):
                (mountpoint / f"filler-{i:02d}").write_bytes(rng.randbytes(3 * CLUSTER))
            for i in range(0, FILLERS, 2):
                (mountpoint / f"filler-{i:02d}").unlink()
            shutil.copyfile(tree / FRAGMENTED, mountpoint / FRAGMENTED)
            for i in range(1, FILLERS, 2):
                (mountpoint / f"filler-{i:02d}").unlink()
        finally:
            _run(["umount", str(mountpoint)])
    except RuntimeError as err:
        raise ToolMissing(f"cannot fill an exFAT image through exfat-fuse here: {err}") from err
    finally:
        subprocess.run(["losetup", "-d", loop], capture_output=True)
        mountpoint.rmdir()
    return image


_CACHE: dict[str, Path] = {}


def image(factory) -> tuple[Path, Path]:
    """(tree, image), built once per run."""
    if "image" not in _CACHE:
        _CACHE["tree"] = write_tree(factory.mktemp("exfat-tree") / "tree")
        _CACHE["image"] = build_image(_CACHE["tree"], factory.mktemp("exfat") / "disk.img")
    return _CACHE["tree"], _CACHE["image"]
