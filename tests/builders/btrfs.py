"""Btrfs fixture images, made by the real mkfs.btrfs and the kernel's btrfs from a
reference tree.

``write_tree`` writes the directory tree that is the expected answer. Variants made with
``mkfs.btrfs --rootdir`` need no privileges; the others mount the image on a loop device
(as root) to get what only the kernel writes: compressed extents (``compress-force``),
fragmented and preallocated files, subvolumes, snapshots and a default subvolume. Each
image is built once per test run.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

# Around every boundary that matters: empty, inline (max_inline is 2048 with 4 KiB sectors),
# one sector, one compressed extent (128 KiB), several.
FILE_SIZES = (0, 1, 100, 2047, 2048, 2049, 3000, 4095, 4096, 4097, 65536, 131071, 131072, 131073, 300_000)
MANY_ENTRIES = 600  # several leaves of directory items: a tree of more than one level
BIG_SIZE = 3 * 1024 * 1024 + 123
FRAGMENTS = 64  # extents of the fragmented file (mounted variants)
LABEL = "gb-btrfs"
# One fsid per image and test process: the kernel keeps a registry of btrfs devices by
# fsid (even after umount), so two images of one fsid mounted one after the other, or by
# two runs at once, could be taken for devices of one file system. And `mkfs.btrfs -U`
# exits 1 ("non-unique UUID") while any block device on the machine shows that UUID (a
# loop device still attached to an image of it): with one fsid for all images, the
# --mixed image, the first --rootdir variant built after a mounted one (lzo), failed so
# once. Tests compare with uuid_of(variant).
_RUN = uuid.uuid4()


def uuid_of(variant: str) -> str:
    return str(uuid.uuid5(_RUN, variant))


def _text(rng: random.Random, size: int) -> bytes:
    words = [b"kernel", b"initrd", b"grub", b"btrfs", b"subvolume", b"extent", b"boot", b"\n", b"linux", b"root"]
    out = bytearray()
    while len(out) < size:
        out += rng.choice(words) + b" "
    return bytes(out[:size])


def write_tree(top: Path, seed: int = 20261204, *, many: int = MANY_ENTRIES) -> Path:
    rng = random.Random(seed)
    top.mkdir(parents=True)
    files = top / "files"
    files.mkdir()
    for size in FILE_SIZES:
        (files / f"rand-{size}").write_bytes(rng.randbytes(size))
        (files / f"text-{size}").write_bytes(_text(rng, size))
    # compressible and incompressible halves: compressed and plain extents in one file
    (top / "big.bin").write_bytes(_text(rng, BIG_SIZE // 2) + rng.randbytes(BIG_SIZE - BIG_SIZE // 2))
    (top / "small.txt").write_text("hello from the btrfs reference tree\n")
    with open(top / "sparse", "wb") as f:  # data, a hole of 8 MiB, data, a hole up to EOF
        f.write(rng.randbytes(5000))
        f.seek(8 * 1024 * 1024)
        f.write(_text(rng, 70_000))
        f.truncate(12 * 1024 * 1024)
    many_dir = top / "many"
    many_dir.mkdir()
    for i in range(many):
        name = f"entry-{i:04d}" if i % 3 else f"l\u00e4nger name {i} " + "x" * (i % 150)
        (many_dir / name).write_bytes(str(i).encode() * (i % 7))
    deep = top / "nested" / "a" / "b" / "c"
    deep.mkdir(parents=True)
    (deep / "deep.txt").write_text("deep file\n")
    (top / "emptydir").mkdir()
    os.symlink("small.txt", top / "link-rel")
    os.symlink("/nested/a/b/c/deep.txt", top / "link-abs")
    os.symlink("../../small.txt", top / "nested" / "a" / "link-up")
    os.symlink("x" * 3000, top / "link-long")  # a target longer than a sector's inline room
    os.symlink("does/not/exist", top / "dangling")
    return top


def fragment_data(seed: int = 7) -> tuple[bytes, bytes]:
    """Two files written in alternating small synced pieces (FRAGMENTS extents each)."""
    rng = random.Random(seed)
    return rng.randbytes(FRAGMENTS * 4096), _text(rng, FRAGMENTS * 4096)


PREALLOC_SIZE = 1024 * 1024
PREALLOC_WRITTEN = 12288


def prealloc_data(seed: int = 8) -> bytes:
    """The expected contents of "prealloc": written bytes, then a preallocated tail (zeros)."""
    return random.Random(seed).randbytes(PREALLOC_WRITTEN) + bytes(PREALLOC_SIZE - PREALLOC_WRITTEN)


def add_kernel_written(tree: Path) -> None:
    """The expected answer for what the mounted variants add (see _mounted_extras)."""
    a, b = fragment_data()
    (tree / "frag-a").write_bytes(a)
    (tree / "frag-b").write_bytes(b)
    (tree / "prealloc").write_bytes(prealloc_data())


def _mounted_extras(mnt: Path) -> None:
    a, b = fragment_data()
    with open(mnt / "frag-a", "wb") as fa, open(mnt / "frag-b", "wb") as fb:
        for i in range(FRAGMENTS):
            for f, data in ((fa, a), (fb, b)):
                f.write(data[i * 4096 : (i + 1) * 4096])
                f.flush()
                os.fsync(f.fileno())
    with open(mnt / "prealloc", "wb") as f:
        os.posix_fallocate(f.fileno(), 0, PREALLOC_SIZE)
        f.write(prealloc_data()[:PREALLOC_WRITTEN])


# name -> (mkfs.btrfs arguments, mount options or None for a --rootdir image, layout)
# layout "flat": the tree at the top; "subvol": the tree in subvolume "@", a snapshot of it
# at /.snapshots/1/snapshot, and the snapshot as the default subvolume (openSUSE's layout).
VARIANTS: dict[str, tuple[tuple[str, ...], str | None, str]] = {
    "rootdir": ((), None, "flat"),  # btrfs-progs defaults: DUP metadata, 16 KiB nodes
    "mixed": (("--mixed",), None, "flat"),  # data and metadata in the same 4 KiB-node chunks
    "single-64k": (("-m", "single", "-n", "65536"), None, "flat"),
    "sha256": (("--csum", "sha256"), None, "flat"),
    "blake2": (("--csum", "blake2"), None, "flat"),
    "xxhash": (("--csum", "xxhash"), None, "flat"),
    "zstd": ((), "compress-force=zstd", "flat"),
    "zlib": ((), "compress-force=zlib", "flat"),
    "lzo": ((), "compress-force=lzo", "flat"),
    "subvol": ((), "compress=zstd", "subvol"),
}
MOUNTED = tuple(name for name, (_a, options, _l) in VARIANTS.items() if options is not None)


def can_mount() -> str | None:
    """Why mounted variants cannot be built here, or None."""
    if os.geteuid() != 0:
        return "building mounted btrfs images needs root (loop devices)"
    try:
        with open("/proc/filesystems") as f:
            if "btrfs" not in f.read():
                return "this kernel has no btrfs"
    except OSError:
        return "no /proc/filesystems"
    if shutil.which("mkfs.btrfs") is None:
        return "mkfs.btrfs (btrfs-progs) is not installed"
    return None


def _retry(argv: list[str], attempts: int = 3) -> subprocess.CompletedProcess:
    """Run a command that takes a free loop device: another process may take the same one
    between the lookup and the attach (EBUSY), so try again a few times."""
    for attempt in range(attempts):
        done = subprocess.run(argv, capture_output=True, text=True)
        if done.returncode == 0 or attempt == attempts - 1:
            break
        time.sleep(0.5 + attempt)
    if done.returncode != 0:
        raise subprocess.CalledProcessError(done.returncode, argv, done.stdout, done.stderr)
    return done


@contextlib.contextmanager
def mounted(image: Path, options: str):
    mnt = Path(tempfile.mkdtemp(prefix="gb-btrfs-mnt-"))
    _retry(["mount", "-o", f"loop,{options}", str(image), str(mnt)])
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=True, capture_output=True)
        mnt.rmdir()
        subprocess.run(["btrfs", "device", "scan", "--forget"], capture_output=True)  # stale registrations


def _checked(argv: list[str]) -> None:
    """Run a builder command; a failure says what the tool printed (mkfs.btrfs explains
    itself on stderr, a bare exit status does not)."""
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")


def _copy_tree(tree: Path, dest: Path) -> None:
    subprocess.run(["cp", "-a", "--sparse=always", f"{tree}/.", str(dest)], check=True, capture_output=True)


def build_image(tree: Path, image: Path, variant: str, size_mib: int = 256) -> Path:
    """The image of ``variant`` with ``tree``'s contents (mounted variants add the
    kernel-written files of add_kernel_written, which the caller's tree must hold too)."""
    args, options, layout = VARIANTS[variant]
    with open(image, "wb") as f:
        f.truncate(size_mib * 1024 * 1024)
    command = ["mkfs.btrfs", "-q", "-f", "-L", LABEL, "-U", uuid_of(f"{variant}:{image}"), *args]
    if options is None:
        command += ["--rootdir", str(tree)]
    _checked([*command, str(image)])
    if options is None:
        return image
    with mounted(image, options) as mnt:
        if layout == "flat":
            _copy_tree(tree, mnt)
            for name in ("frag-a", "frag-b", "prealloc"):
                (mnt / name).unlink()
            _mounted_extras(mnt)
        else:
            subvol_layout(tree, mnt)
    return image


def subvol_layout(tree: Path, mnt: Path) -> None:
    """openSUSE's layout: "@" holds the system, "@/home" a nested subvolume, snapshot 1 of
    "@" under "/.snapshots/1/snapshot" is the default subvolume."""
    btrfs = ["btrfs", "-q", "subvolume"]
    subprocess.run([*btrfs, "create", str(mnt / "@")], check=True, capture_output=True)
    _copy_tree(tree, mnt / "@")
    for name in ("frag-a", "frag-b", "prealloc"):
        (mnt / "@" / name).unlink()
    _mounted_extras(mnt / "@")
    subprocess.run([*btrfs, "create", str(mnt / "@" / "home")], check=True, capture_output=True)
    (mnt / "@" / "home" / "user.txt").write_text("in a nested subvolume\n")
    (mnt / ".snapshots" / "1").mkdir(parents=True)
    subprocess.run([*btrfs, "snapshot", str(mnt / "@"), str(mnt / ".snapshots" / "1" / "snapshot")], check=True,
                   capture_output=True)
    (mnt / "@" / "small.txt").write_text("changed after the snapshot\n")  # the snapshot keeps the old one
    subprocess.run([*btrfs, "set-default", str(mnt / ".snapshots" / "1" / "snapshot")], check=True,
                   capture_output=True)


# --- once-per-run cache shared by the test modules ---------------------------------------------

_TREES: dict[str, Path] = {}
_IMAGES: dict[str, Path] = {}


def tree(factory, kind: str = "full") -> Path:
    """The reference tree ("full": with the kernel-written files of the mounted variants;
    "small" for the corruption tests), written once."""
    if kind not in _TREES:
        top = factory.mktemp(f"btrfs-tree-{kind}") / "tree"
        write_tree(top, many=MANY_ENTRIES if kind == "full" else 40)
        add_kernel_written(top)
        _TREES[kind] = top
    return _TREES[kind]


def image(factory, variant: str, kind: str = "full") -> Path:
    key = f"{variant}-{kind}"
    if key not in _IMAGES:
        _IMAGES[key] = build_image(tree(factory, kind), factory.mktemp(f"btrfs-{key}") / "disk.img", variant)
    return _IMAGES[key]


# --- multi-device file systems --------------------------------------------------------------------
# mkfs.btrfs --rootdir takes one device only: these are made on loop devices and filled
# through a mount of all of them. guestboot opens one device (a disk image) at a time.

MULTI: dict[str, tuple[int, str, str]] = {  # name -> (devices, data profile, metadata profile)
    "raid1": (2, "raid1", "raid1"),
    "raid1c3": (3, "raid1c3", "raid1c3"),
    "raid1c4": (4, "raid1c4", "raid1c4"),
    "raid0": (2, "raid0", "raid1"),  # metadata mirrored, so the trees read from either device
    "raid10": (4, "raid10", "raid10"),
}


def build_multi(tree: Path, workdir: Path, name: str, size_mib: int = 256) -> list[Path]:
    """The device images of multi-device variant ``name``, holding ``tree``."""
    count, data, metadata = MULTI[name]
    images = []
    loops: list[str] = []
    try:
        for i in range(count):
            image = workdir / f"{name}-dev{i + 1}.img"
            with open(image, "wb") as f:
                f.truncate(size_mib * 1024 * 1024)
            images.append(image)
            loops.append(_retry(["losetup", "-f", "--show", str(image)]).stdout.strip())
        fsid = str(uuid.uuid4())  # its own: these devices are registered with the kernel
        _checked(["mkfs.btrfs", "-q", "-f", "-L", LABEL, "-U", fsid, "-d", data, "-m", metadata, *loops])
        subprocess.run(["btrfs", "device", "scan", *loops], check=True, capture_output=True)
        options = ",".join(f"device={loop}" for loop in loops[1:])
        mnt = Path(tempfile.mkdtemp(prefix="gb-btrfs-mnt-"))
        subprocess.run(["mount", "-o", options, loops[0], str(mnt)], check=True, capture_output=True)
        try:
            _copy_tree(tree, mnt)
        finally:
            subprocess.run(["umount", str(mnt)], check=True, capture_output=True)
            mnt.rmdir()
    finally:
        for loop in loops:  # unregistered before the loop device goes, then detached
            subprocess.run(["btrfs", "device", "scan", "--forget", loop], capture_output=True)
            subprocess.run(["losetup", "-d", loop], capture_output=True)
    return images


_MULTI_IMAGES: dict[str, list[Path]] = {}


def multi_images(factory, name: str) -> list[Path]:
    if name not in _MULTI_IMAGES:
        _MULTI_IMAGES[name] = build_multi(tree(factory, "small"), factory.mktemp(f"btrfs-{name}"), name)
    return _MULTI_IMAGES[name]
