"""Real file-system images for the hostile cases, made by the real tools from a tree that
is the expected answer (what a guest path must resolve to), built once per session and
shared by every case that asks for the same tree (``Images.fs``, keyed by name).

A tree is ``{path: content}``: bytes for a file, ``Link(target)`` for a symlink,
``Sparse(size)`` for a file of one hole (``truncate``), ``Dir()`` for an empty directory.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from builders import xfs as xfs_builder


@dataclass(frozen=True)
class Link:
    target: str


@dataclass(frozen=True)
class Sparse:
    size: int


@dataclass(frozen=True)
class Dir:
    pass


@dataclass(frozen=True)
class Holey:
    """A file of ``count`` chunks of ``chunk`` bytes, one every ``stride`` bytes, holes
    between: one extent each, so the file system needs a tree to map it."""
    count: int
    chunk: int = 4096
    stride: int = 3 * 4096

    def write(self, path: Path) -> None:
        with open(path, "wb") as f:
            for n in range(self.count):
                f.seek(n * self.stride)
                f.write(bytes([n % 251 + 1]) * self.chunk)

    def data(self) -> bytes:
        out = bytearray((self.count - 1) * self.stride + self.chunk)
        for n in range(self.count):
            out[n * self.stride : n * self.stride + self.chunk] = bytes([n % 251 + 1]) * self.chunk
        return bytes(out)


# Every file system a guest's boot files can be on that the tools here can make without
# a loop mount; the ones that cannot hold a symlink say so.
FILE_SYSTEMS = ("ext4", "xfs", "btrfs", "squashfs", "iso9660", "fat")
WITH_SYMLINKS = ("ext4", "xfs", "btrfs", "squashfs", "iso9660")


def write_tree(top: Path, tree: dict[str, object]) -> Path:
    top.mkdir(parents=True, exist_ok=True)
    for rel, content in tree.items():
        path = top / rel.lstrip("/")
        if isinstance(content, Dir):
            path.mkdir(parents=True, exist_ok=True)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Link):
            os.symlink(content.target, path)
        elif isinstance(content, Holey):
            content.write(path)
        elif isinstance(content, Sparse):
            with open(path, "wb") as f:
                f.truncate(content.size)
        else:
            path.write_bytes(content)
    return top


def _run(argv: list[str], **kwargs) -> None:
    subprocess.run(argv, check=True, capture_output=True, **kwargs)


def _copy_mounted(tree_dir: Path, image: Path, mount_options: str) -> None:
    """Copy ``tree_dir`` (holes kept) into the file system in ``image`` through the kernel
    (a loop mount: root only)."""
    mnt = image.parent / "mnt"
    mnt.mkdir()
    _run(["mount", "-o", mount_options, str(image), str(mnt)])
    try:
        _run(["cp", "-a", "--sparse=always", f"{tree_dir}/.", str(mnt)])
    finally:
        _run(["umount", str(mnt)])
        mnt.rmdir()


def make_fs(kind: str, tree_dir: Path, image: Path, options: tuple[str, ...] = ()) -> Path:
    """``tree_dir`` as a ``kind`` file system in ``image`` (sparse where the tool allows)."""
    if kind == "ext4":
        _run(["mke2fs", "-q", "-F", "-t", "ext4", *options, "-d", str(tree_dir), str(image), "32M"])
    elif kind == "xfs":
        proto = image.with_suffix(".proto")
        xfs_builder.write_protofile(tree_dir, proto)
        with open(image, "wb") as f:
            f.truncate(320 << 20)  # mkfs.xfs's smallest; sparse, a few MiB on disk
        _run(["mkfs.xfs", "-q", "-f", *options, "-p", str(proto), str(image)])
    elif kind == "xfs-mounted":  # holes kept (a protofile writes every byte): needs root and loop mounts
        with open(image, "wb") as f:
            f.truncate(320 << 20)
        _run(["mkfs.xfs", "-q", "-f", *options, str(image)])
        _copy_mounted(tree_dir, image, "loop,nouuid")
    elif kind == "btrfs-zstd":  # written through the kernel's btrfs with compress-force=zstd (root, loop mounts)
        with open(image, "wb") as f:
            f.truncate(128 << 20)
        _run(["mkfs.btrfs", "-q", "-f", *options, str(image)])
        _copy_mounted(tree_dir, image, "loop,compress-force=zstd")
    elif kind == "btrfs":
        with open(image, "wb") as f:
            f.truncate(128 << 20)
        _run(["mkfs.btrfs", "-q", "-f", *options, "--rootdir", str(tree_dir), str(image)])
    elif kind == "squashfs":
        _run(["mksquashfs", str(tree_dir), str(image), "-noappend", "-quiet", "-no-progress", *options])
    elif kind == "iso9660":
        _run(["xorriso", "-as", "mkisofs", "-quiet", "-R", "-J", *options, "-o", str(image), str(tree_dir)])
    elif kind == "fat":
        _run(["mkfs.fat", "-C", *options, str(image), "32768"])
        top = sorted(str(p) for p in tree_dir.iterdir())
        if top:
            _run(["mcopy", "-s", "-i", str(image), *top, "::/"])
    else:
        raise ValueError(kind)
    return image


class Images:
    """Session cache: one image per (name, kind)."""

    def __init__(self, factory) -> None:
        self.factory = factory
        self.cache: dict[tuple, Path] = {}

    def fs(self, name: str, kind: str, tree: dict[str, object], options: tuple[str, ...] = ()) -> Path:
        key = (name, kind, options)
        if key not in self.cache:
            work = self.factory.mktemp(f"{name}-{kind}")
            top = write_tree(work / "tree", tree)
            self.cache[key] = make_fs(kind, top, work / f"{name}.{kind}.img", options)
            shutil.rmtree(top)
        return self.cache[key]

    def derived(self, name: str, make) -> Path:
        """An image made by ``make(workdir) -> Path`` (altered copies of others), cached."""
        key = ("derived", name)
        if key not in self.cache:
            self.cache[key] = make(self.factory.mktemp(name))
        return self.cache[key]


def altered(source: Path, dest: Path, patches: list[tuple[int, bytes]]) -> Path:
    """A copy of ``source`` (sparse-aware) with ``patches`` (offset, bytes) written into it."""
    _run(["cp", "--sparse=always", str(source), str(dest)])
    with open(dest, "r+b") as f:
        for offset, data in patches:
            f.seek(offset)
            f.write(data)
    return dest
