"""ext2/ext3/ext4 fixture images, made by the real mke2fs from a reference tree.

``write_tree`` writes the directory tree that is the expected answer; ``build_image``
turns it into an image with ``mke2fs -d``. Tests read the image with guestboot and compare
against the tree (and against debugfs / grub-fstest as peers).
"""

from __future__ import annotations

import os
import random
import subprocess
from pathlib import Path

# Sizes around every boundary that matters: inline i_block (60), blocks of 1 KiB and 4 KiB,
# the 12 direct blocks, the single-indirect range of a 1 KiB file system (12 + 256 blocks).
FILE_SIZES = (0, 1, 59, 60, 61, 100, 1023, 1024, 1025, 4095, 4096, 4097, 12 * 1024 + 1, 70_000, 300_000)
BIG_FILE_SIZE = 1_600_000  # > 1 MiB: into the double-indirect range of a 1 KiB ext2
MANY_ENTRIES = 3000  # enough entries to make mke2fs index the directory (htree)
WIDE_ENTRIES = 700
SPARSE_CHUNKS = 1000  # data chunks separated by holes: one extent each, a deep extent tree
SPARSE_CHUNK = 4096
SPARSE_STRIDE = 3 * 4096
FAR_OFFSET = 65 * 1024 * 1024  # past 12 + 256 + 256^2 blocks of 1 KiB: triple indirect
SLOW_TARGET = "nested/" + "long-directory-name-" * 4 + "/target.txt"  # > 60 bytes


def write_tree(top: Path, seed: int = 20240501, *, many: int = MANY_ENTRIES, sparse_chunks: int = SPARSE_CHUNKS,
               far: bool = True, wide: int = WIDE_ENTRIES) -> Path:
    """Write the reference tree under ``top`` (created) and return it. The keywords shrink
    it for the corruption tests, which read it hundreds of times."""
    rng = random.Random(seed)
    top.mkdir(parents=True)
    files = top / "files"
    files.mkdir()
    for size in FILE_SIZES:
        (files / f"size-{size}").write_bytes(rng.randbytes(size))
    (top / "big.bin").write_bytes(rng.randbytes(BIG_FILE_SIZE))
    (top / "small.txt").write_text("hello from the reference tree\n")
    (top / "tiny-inline").write_bytes(b"short enough to live inside the inode\n")

    with open(top / "sparse-many", "wb") as f:  # holes between 1000 chunks
        for i in range(sparse_chunks):
            f.seek(i * SPARSE_STRIDE)
            f.write(rng.randbytes(SPARSE_CHUNK))
    if far:
        with open(top / "sparse-far", "wb") as f:  # data at 0 and past 65 MiB, a hole between
            f.write(rng.randbytes(3000))
            f.seek(FAR_OFFSET)
            f.write(rng.randbytes(5000))

    many_dir = top / "many"
    many_dir.mkdir()
    for i in range(many):
        if i % 10 == 0:
            name = f"long-{i:04d}-" + "n" * (i % 200)
        elif i % 10 == 1:
            name = f"\u00fcml\u00e4ut-{i}"  # bytes >= 0x80: signed and unsigned hashes differ
        else:
            name = f"entry-{i:04d}"
        (many_dir / name).touch()
    (many_dir / "with-data").write_bytes(b"found through the hash tree\n")
    if wide:  # long names: with 1 KiB blocks the leaves outgrow the root, two index levels
        wide_dir = top / "wide"
        wide_dir.mkdir()
        for i in range(wide):
            (wide_dir / (f"w{i:03d}-" + "x" * (180 + i % 60))).touch()

    deep = top / "nested" / "a" / "b" / "c"
    deep.mkdir(parents=True)
    (deep / "deep.txt").write_text("deep file\n")
    slow_dir = top / Path(SLOW_TARGET).parent
    slow_dir.mkdir(parents=True)
    (slow_dir / "target.txt").write_text("reached through a slow symlink\n")
    smalldir = top / "smalldir"  # few entries: inline with inline_data
    smalldir.mkdir()
    (smalldir / "one").write_text("1\n")
    (smalldir / "two").write_text("2\n")
    (top / "emptydir").mkdir()
    spill = top / "inline-spill"  # more entries than i_block holds (e2fsprogs then uses a block)
    spill.mkdir()
    for i in range(6):
        (spill / f"e{i}").write_text(f"{i}\n")

    os.symlink("small.txt", top / "link-fast")
    os.symlink(SLOW_TARGET, top / "link-slow")
    os.symlink("../../small.txt", top / "nested" / "a" / "link-rel")
    os.symlink("/nested/a/b/c/deep.txt", top / "link-abs")
    os.symlink("/small.txt", top / "nested" / "a" / "b" / "link-up-abs")
    os.symlink("nested/a", top / "link-dir")
    os.symlink("loop-b", top / "loop-a")
    os.symlink("loop-a", top / "loop-b")
    os.symlink("does/not/exist", top / "dangling")
    return top


# mke2fs -d does not index directories; "e2fsck -fD" (re)builds their hash trees with the
# superblock's default hash, which "tune2fs -E hash_alg=" sets and whose signedness is the
# s_flags bit that "debugfs -w -R 'ssv flags N'" sets (1: signed, 2: unsigned).
# A fixed hash seed first, so the index (and every test over it) is the same on each run.
SEED = ("debugfs", "-w", "-R", "ssv hash_seed 5f4dcc3b-5aa7-4c65-9d76-0a1b2c3d4e5f")
REINDEX = ("e2fsck", "-fyD")
INDEX = (SEED, REINDEX)


def _hash(alg: str, flags: int) -> tuple[tuple[str, ...], ...]:
    return (("tune2fs", "-E", f"hash_alg={alg}"), ("debugfs", "-w", "-R", f"ssv flags {flags}"), *INDEX)


# name -> (mke2fs arguments besides -d/size/label/uuid, commands run on the image after)
VARIANTS: dict[str, tuple[tuple[str, ...], tuple[tuple[str, ...], ...]]] = {
    "ext2-1k": (("-t", "ext2", "-b", "1024"), ()),  # "many" stays a linear, multi-block directory
    "ext2-2k-128": (("-t", "ext2", "-b", "2048", "-I", "128"), INDEX),
    "ext3-4k": (("-t", "ext3", "-b", "4096"), INDEX),
    "ext3-legacy": (("-t", "ext3", "-b", "1024"), _hash("legacy", 1)),
    "ext4-1k": (("-t", "ext4", "-b", "1024"), INDEX),
    "ext4-4k": (("-t", "ext4", "-b", "4096"), INDEX),
    "ext4-32bit-nocsum": (("-t", "ext4", "-b", "4096", "-O", "^64bit,^metadata_csum"), INDEX),
    "ext4-inline": (("-t", "ext4", "-b", "4096", "-O", "inline_data"), INDEX),
    "ext4-noflex": (("-t", "ext4", "-b", "1024", "-O", "^flex_bg"), INDEX),
    "ext4-sparse2": (("-t", "ext4", "-b", "4096", "-O", "sparse_super2"), INDEX),
    # small groups: 96 groups, descriptors in 6 meta groups spread over the volume
    "ext4-metabg": (("-t", "ext4", "-b", "1024", "-g", "1024", "-O", "meta_bg,^resize_inode"), INDEX),
    "ext4-128": (("-t", "ext4", "-b", "4096", "-I", "128"), INDEX),
    "ext4-tea-unsigned": (("-t", "ext4", "-b", "1024"), _hash("tea", 2)),
    "ext4-md4-unsigned": (("-t", "ext4", "-b", "4096"), _hash("half_md4", 2)),
    "ext4-legacy-unsigned": (("-t", "ext4", "-b", "2048"), _hash("legacy", 2)),
    "ext4-tea-signed": (("-t", "ext4", "-b", "4096"), _hash("tea", 1)),
    "ext4-64k": (("-t", "ext4", "-b", "65536"), INDEX),
    "ext4-bigalloc": (("-t", "ext4", "-b", "4096", "-O", "bigalloc", "-C", "16384"), INDEX),
    # checksums seeded from s_checksum_seed: made under another UUID, then given ours
    "ext4-csum-seed": (
        ("-t", "ext4", "-b", "4096", "-O", "metadata_csum_seed", "-U", "11111111-2222-4333-8444-555555555555"),
        (*INDEX, ("tune2fs", "-U", "0d2c8f4e-5b1a-4c3d-9e7f-a1b2c3d4e5f6")),
    ),
    # for the corruption tests: extents without checksums, so structure checks are reached
    "ext4-1k-nocsum": (("-t", "ext4", "-b", "1024", "-O", "^metadata_csum"), INDEX),
}

LABEL = "gb-test"
UUID = "0d2c8f4e-5b1a-4c3d-9e7f-a1b2c3d4e5f6"


def build_image(tree: Path, image: Path, variant: str, size_mib: int = 96, offset: int = 0,
                label: str = LABEL, uuid: str = UUID) -> Path:
    """``mke2fs -d tree`` into ``image`` as ``VARIANTS[variant]`` (at byte ``offset`` when
    given: then the post-processing commands, which need the volume at 0, are not run)."""
    args, post = VARIANTS[variant]
    extended = ["root_owner=0:0"] + ([f"offset={offset}"] if offset else [])
    if "-U" in args:  # the variant makes the volume under another UUID first
        uuid = args[args.index("-U") + 1]
    command = [
        "mke2fs", "-q", "-F", "-T", "default", "-N", "8192", "-L", label, "-U", uuid,
        "-E", ",".join(extended), *args, "-d", str(tree), str(image), f"{size_mib}M",
    ]
    subprocess.run(command, check=True, capture_output=True)
    if offset:
        return image
    for step in post:
        done = subprocess.run([*step, str(image)], capture_output=True)
        # e2fsck exits 1 when it changed the file system (it did: it built the indexes)
        if done.returncode not in ((0, 1) if step[0] == "e2fsck" else (0,)):
            raise RuntimeError(f"{' '.join(step)} failed: {done.stderr.decode(errors='replace')}")
    return image


def debugfs(image: Path, request: str, writable: bool = False) -> str:
    """Run one debugfs request on an image and return its standard output."""
    command = ["debugfs"] + (["-w"] if writable else []) + ["-R", request, str(image)]
    return subprocess.run(command, check=True, capture_output=True).stdout.decode("utf-8", "replace")


# --- once-per-run cache shared by the test modules ---------------------------------------------
# Session fixtures defined in two test modules would build twice; these helpers keep one
# tree and one image per variant for the whole pytest process (pass tmp_path_factory).

_TREES: dict[str, Path] = {}
_IMAGES: dict[tuple[str, str], Path] = {}

SMALL_TREE = {"many": 300, "sparse_chunks": 400, "far": False, "wide": 0}  # for the corruption tests


def tree(factory, kind: str = "full") -> Path:
    """The reference tree ("full", or "small" for the corruption tests), written once."""
    if kind not in _TREES:
        options = SMALL_TREE if kind == "small" else {}
        _TREES[kind] = write_tree(factory.mktemp(f"ext-tree-{kind}") / "tree", **options)
    return _TREES[kind]


def image(factory, variant: str, kind: str = "full") -> Path:
    """The image of ``variant`` made from tree(kind), built once."""
    key = (variant, kind)
    if key not in _IMAGES:
        size = 32 if kind == "small" else 96
        _IMAGES[key] = build_image(tree(factory, kind), factory.mktemp(f"ext-{variant}") / "disk.img", variant,
                                   size_mib=size)
    return _IMAGES[key]
