"""XFS fixture images, made by the real mkfs.xfs from a reference tree.

``write_tree`` writes the directory tree that is the expected answer. ``build_image``
turns it into an image: with a protofile (``mkfs.xfs -p``, the only way to populate v4
here: this kernel cannot mount v4) or, for the "mount" variants, by mounting the fresh v5
file system on a loop device and copying the tree in with the kernel's own XFS, which
also makes what a protofile cannot: sparse and fragmented files (bmap B+trees),
preallocated (unwritten) extents and reflinked (shared) extents. The tree gets those
files too (``write_mount_extras``), so the expected answer is still the tree.
mkfs.xfs refuses file systems under 300 MB: images are sparse files.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import time
from pathlib import Path

FILE_SIZES = (0, 1, 100, 335, 336, 337, 511, 512, 513, 1023, 1024, 1025, 4095, 4096, 4097, 65535, 65536, 65537,
              300_000)
BIG_FILE_SIZE = 3_000_000
SHORT_ENTRIES = 3  # short form: in the inode
BLOCK_ENTRIES = 40  # one directory block (up to 1 KiB blocks it becomes a leaf directory)
LEAF_ENTRIES = 400  # several data blocks and one leaf
NODE_ENTRIES = 5000  # several leaf blocks under a node block
REMOTE_TARGET = "./" * 440 + "small.txt"  # 889 bytes: a remote (extent) symlink, resolves to small.txt
SPARSE_CHUNKS = 600  # data chunks between holes: hundreds of extents, a bmap B+tree
SPARSE_CHUNK = 4096
SPARSE_STRIDE = 3 * 4096
FRAG_PIECES = 300  # two files written in turns with fsync: fragmented without holes
FRAG_PIECE = 4096
PREALLOC_SIZE = 1 << 20  # fallocated, the first 4 KiB written: the rest is an unwritten extent
IMAGE_SIZE = 320 << 20
# mkfs.xfs 6.13 (Debian 13) turns rmapbt on by default, which raises the smallest log it
# accepts: with 64 KiB blocks that log (1984 blocks) no longer fits in 320 MB
IMAGE_SIZE_64K = 512 << 20
LABEL = "gb-xfs"
UUID = "6f2b9a1c-3d4e-4f50-8a61-b7c8d9e0f1a2"


def _name(i: int) -> str:
    if i % 10 == 0:
        return f"long-{i:05d}-" + "n" * (i % 200)
    if i % 10 == 1:
        return f"\u00fcml\u00e4ut-{i}"  # bytes >= 0x80
    return f"entry-{i:05d}"


def write_tree(top: Path, seed: int = 20261204, *, node: int = NODE_ENTRIES) -> Path:
    """Write the reference tree under ``top`` (created) and return it."""
    rng = random.Random(seed)
    top.mkdir(parents=True)
    files = top / "files"
    files.mkdir()
    for size in FILE_SIZES:
        (files / f"size-{size}").write_bytes(rng.randbytes(size))
    (top / "big.bin").write_bytes(rng.randbytes(BIG_FILE_SIZE))
    (top / "small.txt").write_text("hello from the xfs reference tree\n")
    deep = top / "nested" / "a" / "b" / "c"
    deep.mkdir(parents=True)
    (deep / "deep.txt").write_text("deep file\n")
    for name, count in (("shortdir", SHORT_ENTRIES), ("blockdir", BLOCK_ENTRIES), ("leafdir", LEAF_ENTRIES),
                        ("nodedir", node)):
        directory = top / name
        directory.mkdir()
        for i in range(count):
            (directory / _name(i)).touch()
        (directory / "with-data").write_bytes(f"found in {name}\n".encode())
    (top / "emptydir").mkdir()
    os.symlink("small.txt", top / "link-fast")
    os.symlink(REMOTE_TARGET, top / "link-remote")
    os.symlink("../../small.txt", top / "nested" / "a" / "link-rel")
    os.symlink("/nested/a/b/c/deep.txt", top / "link-abs")
    os.symlink("nested/a", top / "link-dir")
    os.symlink("does/not/exist", top / "dangling")
    return top


def write_mount_extras(top: Path, seed: int = 7) -> None:
    """The files only the mounted variants hold (written again through the mount)."""
    rng = random.Random(seed)
    with open(top / "sparse-many", "wb") as f:
        for i in range(SPARSE_CHUNKS):
            f.seek(i * SPARSE_STRIDE)
            f.write(rng.randbytes(SPARSE_CHUNK))
    (top / "frag-a").write_bytes(rng.randbytes(FRAG_PIECES * FRAG_PIECE))
    (top / "frag-b").write_bytes(rng.randbytes(FRAG_PIECES * FRAG_PIECE))
    (top / "prealloc").write_bytes(b"\x5a" * 4096 + bytes(PREALLOC_SIZE - 4096))
    shutil.copyfile(top / "big.bin", top / "big-reflink.bin")


def write_protofile(tree: Path, proto: Path, leave_out: frozenset[str] = frozenset()) -> None:
    """A mkfs.xfs protofile (mkfs.xfs(8), "-p") describing ``tree``, less the top-level
    names in ``leave_out``."""
    lines = ["guestboot-test", "0 0", "d--755 0 0"]

    def walk(directory: Path, depth: int) -> None:
        pad = " " * depth
        for entry in sorted(directory.iterdir()):
            name = entry.name
            if depth == 1 and name in leave_out:
                continue
            if entry.is_symlink():
                lines.append(f"{pad}{name} l--777 0 0 {os.readlink(entry)}")
            elif entry.is_dir():
                lines.append(f"{pad}{name} d--755 0 0")
                walk(entry, depth + 1)
                lines.append(f"{pad}$")
            else:
                lines.append(f"{pad}{name} ---644 0 0 {entry}")

    walk(tree, 1)
    lines.append("$")
    proto.write_text("\n".join(lines) + "\n", encoding="utf-8")


# name -> mkfs.xfs arguments (besides label, uuid, protofile); "mount" variants are
# populated through a loop mount instead of a protofile
VARIANTS: dict[str, tuple[str, ...]] = {
    "v5-4k": (),  # today's defaults: crc, ftype, bigtime, reflink, sparse inodes, finobt
    "v5-1k": ("-b", "size=1024"),
    "v5-64k": ("-b", "size=65536"),
    "v5-dir64k-nrext64": ("-n", "size=65536", "-i", "size=2048,nrext64=1"),
    "v5-sect4k-old": ("-s", "size=4096", "-m", "bigtime=0,reflink=0,finobt=0",
                         "-i", "sparse=0"),
    "v4-4k-noftype": ("-m", "crc=0", "-n", "ftype=0"),
    "v4-512": ("-m", "crc=0", "-b", "size=512", "-n", "ftype=1"),
    "v4-1k-dir8k-i512": ("-m", "crc=0", "-b", "size=1024", "-n", "size=8192", "-i", "size=512"),
    "mount-v5-4k": (),
    "mount-v5-1k": ("-b", "size=1024"),
    "mount-v5-64k": ("-b", "size=65536"),  # blocks larger than the page: kernel 6.12 and later
}


# mkfs.xfs 6.1 writes a v5 remote symlink from a protofile without its block header (its own
# xfs_repair then clears the inode): v5 remote symlinks come from the mount variants.
PROTO_V5_LEAVES_OUT = frozenset({"link-remote"})


def is_v5(variant: str) -> bool:
    return "crc=0" not in " ".join(VARIANTS[variant])


def build_image(tree: Path, image: Path, variant: str, label: str = LABEL, uuid: str = UUID) -> Path:
    args = VARIANTS[variant]
    with open(image, "wb") as f:
        f.truncate(IMAGE_SIZE_64K if "size=65536" in args else IMAGE_SIZE)
    command = ["mkfs.xfs", "-q", "-f", "-L", label, "-m", f"uuid={uuid}", *args]
    if variant.startswith("mount-"):
        subprocess.run([*command, str(image)], check=True, capture_output=True)
        populate_mounted(tree, image)
    else:
        proto = image.with_suffix(".proto")
        write_protofile(tree, proto, PROTO_V5_LEAVES_OUT if is_v5(variant) else frozenset())
        subprocess.run([*command, "-p", str(proto), str(image)], check=True, capture_output=True)
    return image


def populate_mounted(tree: Path, image: Path) -> None:
    """Copy ``tree`` into the XFS in ``image`` through a loop mount (root only)."""
    mnt = image.parent / "mnt"
    mnt.mkdir()
    # nouuid: every fixture image carries the same UUID; the loop devices are shared with
    # whatever else runs on the machine, so a busy moment is retried
    for attempt in range(5):
        done = subprocess.run(["mount", "-o", "loop,nouuid", str(image), str(mnt)], capture_output=True, text=True)
        if done.returncode == 0:
            break
        time.sleep(1 + attempt)
    else:
        mnt.rmdir()
        raise RuntimeError(f"mount -o loop {image} failed: {done.stderr.strip()}")
    try:
        extras = {"sparse-many", "frag-a", "frag-b", "prealloc", "big-reflink.bin"}
        for entry in tree.iterdir():
            if entry.name not in extras:
                subprocess.run(["cp", "-a", str(entry), str(mnt)], check=True, capture_output=True)
        subprocess.run(["cp", "--sparse=always", str(tree / "sparse-many"), str(mnt / "sparse-many")], check=True)
        # two files written in turns, each piece forced out: their extents interleave
        with open(tree / "frag-a", "rb") as a, open(tree / "frag-b", "rb") as b, \
                open(mnt / "frag-a", "wb") as out_a, open(mnt / "frag-b", "wb") as out_b:
            for _ in range(FRAG_PIECES):
                for src, out in ((a, out_a), (b, out_b)):
                    out.write(src.read(FRAG_PIECE))
                    out.flush()
                    os.fsync(out.fileno())
        subprocess.run(["xfs_io", "-f", "-c", f"falloc 0 {PREALLOC_SIZE}", "-c", "pwrite -S 0x5a 0 4096",
                        str(mnt / "prealloc")], check=True, capture_output=True)
        subprocess.run(["cp", "--reflink=always", str(mnt / "big.bin"), str(mnt / "big-reflink.bin")], check=True)
        subprocess.run(["sync"], check=True)
    finally:
        subprocess.run(["umount", str(mnt)], check=True, capture_output=True)
        mnt.rmdir()


def xfs_db(image: Path, *commands: str) -> str:
    """Run xfs_db read-only commands on an image; its standard output."""
    argv = ["xfs_db", "-r"]
    for command in commands:
        argv += ["-c", command]
    return subprocess.run([*argv, str(image)], check=True, capture_output=True, text=True).stdout


# --- once-per-run cache shared by the test modules ------------------------------------------

_TREES: dict[str, Path] = {}
_IMAGES: dict[str, Path] = {}


def tree(factory, kind: str = "full") -> Path:
    """The reference tree, written once: "full"; "small" (few entries, for the corruption
    tests); "mount" and "mount-small": the same with the mount extras."""
    if kind not in _TREES:
        top = factory.mktemp(f"xfs-tree-{kind}") / "tree"
        write_tree(top, node=300 if kind.endswith("small") else NODE_ENTRIES)
        if kind.startswith("mount"):
            write_mount_extras(top)
        _TREES[kind] = top
    return _TREES[kind]


def image(factory, variant: str, kind: str | None = None) -> Path:
    """The image of ``variant`` made from tree(kind), built once (kind defaults to "mount"
    for mount variants, "full" for the others)."""
    kind = kind or ("mount" if variant.startswith("mount-") else "full")
    key = f"{variant}/{kind}"
    if key not in _IMAGES:
        _IMAGES[key] = build_image(tree(factory, kind), factory.mktemp(f"xfs-{variant}") / "disk.img", variant)
    return _IMAGES[key]
