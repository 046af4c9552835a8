"""squashfs fixture images, made by the real mksquashfs from a reference tree.

``write_tree`` writes the directory tree that is the expected answer; ``build_image`` turns
it into an image with mksquashfs, one variant per compressor and layout option. Tests
read the images with guestboot and compare with the tree (and with unsquashfs and
grub-fstest as peers).
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
from pathlib import Path

BLOCK = 128 * 1024  # mksquashfs's default block size
# sizes around the boundaries that matter: empty, tail-only (a fragment), one block exactly,
# a block and a tail, several blocks (1 MiB blocks make these fragments again)
FILE_SIZES = (0, 1, 100, 4095, 4096, 4097, 8192, 70_000, BLOCK - 1, BLOCK, BLOCK + 1, 3 * BLOCK + 12_345)
MANY_ENTRIES = 3000  # a listing of many metadata blocks: mksquashfs writes a directory index
SPARSE_HOLE = 5 * BLOCK  # whole zero blocks: mksquashfs stores them as sparse blocks (size 0)
DEEP = 24  # nested directories


def write_tree(top: Path, seed: int = 20261204, *, many: int = MANY_ENTRIES) -> Path:
    """Write the reference tree under ``top`` (created) and return it."""
    rng = random.Random(seed)
    top.mkdir(parents=True)
    files = top / "files"
    files.mkdir()
    for size in FILE_SIZES:
        (files / f"random-{size}").write_bytes(rng.randbytes(size))
        # compressible: the codec really runs (random bytes are stored uncompressed)
        (files / f"text-{size}").write_bytes((b"squashfs test line %d\n" * (size // 20 + 1))[:size])
    (top / "small.txt").write_text("hello from the squashfs reference tree\n")
    with open(top / "sparse.bin", "wb") as f:  # data, whole zero blocks (sparse), data
        f.write(rng.randbytes(BLOCK + 1000))
        f.seek(BLOCK + 1000 + SPARSE_HOLE + (BLOCK - 1000))
        f.write(rng.randbytes(2 * BLOCK + 777))
    mixed = bytearray()  # compressible and random blocks in one file: some blocks stored as they are
    for i in range(6):
        mixed += rng.randbytes(BLOCK) if i % 2 else b"compress me %d " % i * (BLOCK // 14)
    (top / "mixed.bin").write_bytes(bytes(mixed))

    many_dir = top / "many"
    many_dir.mkdir()
    for i in range(many):
        name = f"entry-{i:05d}" if i % 7 else f"long-{i:05d}-" + "n" * (i % 200)
        (many_dir / name).touch()
    (many_dir / "with-data").write_bytes(b"found through the directory index\n")
    (many_dir / "\u00fcml\u00e4ut").write_bytes(b"non-ASCII name\n")

    deep = top / "nested"
    for i in range(DEEP):
        deep = deep / f"d{i}"
    deep.mkdir(parents=True)
    (deep / "deep.txt").write_text("deep file\n")
    (top / "emptydir").mkdir()
    os.mkfifo(top / "fifo")
    os.link(top / "small.txt", top / "hardlink.txt")

    os.symlink("small.txt", top / "link-rel")
    os.symlink("/nested/d0/d1/d2", top / "link-abs-dir")
    os.symlink("x" * 300, top / "link-long")  # dangling, target longer than a short name
    os.symlink("does/not/exist", top / "dangling")
    return top


# name -> mksquashfs arguments (besides source, image and the reproducibility options)
VARIANTS: dict[str, tuple[str, ...]] = {
    "gzip": ("-comp", "gzip"),
    "gzip-4k-level1": ("-comp", "gzip", "-b", "4K", "-Xcompression-level", "1"),
    "xz-bcj-1m": ("-comp", "xz", "-b", "1M", "-Xbcj", "x86"),
    "lzma": ("-comp", "lzma"),
    "lzo": ("-comp", "lzo"),
    "lz4-hc": ("-comp", "lz4", "-Xhc"),
    "zstd": ("-comp", "zstd", "-Xcompression-level", "5"),
    "uncompressed": ("-noI", "-noD", "-noF", "-noX"),
    "no-fragments": ("-comp", "gzip", "-no-fragments", "-b", "16K"),
    "always-fragments": ("-comp", "zstd", "-always-use-fragments", "-b", "64K"),
}
# what each variant's compressor is called in the superblock
COMPRESSOR = {"gzip": "gzip", "gzip-4k-level1": "gzip", "xz-bcj-1m": "xz", "lzma": "lzma", "lzo": "lzo",
              "lz4-hc": "lz4", "zstd": "zstd", "uncompressed": "gzip", "no-fragments": "gzip",
              "always-fragments": "zstd"}


def mksquashfs() -> str | None:
    return shutil.which("mksquashfs") or (os.path.exists("/usr/bin/mksquashfs") and "/usr/bin/mksquashfs") or None


def build_image(tree: Path, image: Path, variant: str) -> Path:
    command = [mksquashfs() or "mksquashfs", str(tree), str(image), "-noappend", "-quiet", "-no-progress",
               "-processors", "1", "-mkfs-time", "0", *VARIANTS[variant]]
    subprocess.run(command, check=True, capture_output=True)
    return image


# --- once-per-run cache shared by the test modules ---------------------------------------------

_TREES: dict[str, Path] = {}
_IMAGES: dict[tuple[str, str], Path] = {}


def tree(factory, kind: str = "full") -> Path:
    """The reference tree ("full", or "small": fewer directory entries), written once."""
    if kind not in _TREES:
        options = {"many": 600} if kind == "small" else {}
        _TREES[kind] = write_tree(factory.mktemp(f"squashfs-tree-{kind}") / "tree", **options)
    return _TREES[kind]


def image(factory, variant: str, kind: str = "full") -> Path:
    """The image of ``variant`` made from tree(kind), built once."""
    key = (variant, kind)
    if key not in _IMAGES:
        _IMAGES[key] = build_image(tree(factory, kind), factory.mktemp(f"squashfs-{variant}") / "fs.img", variant)
    return _IMAGES[key]
