"""The squashfs driver on images made by the real mksquashfs from a reference tree.

Every variant (one per compressor, uncompressed, without and with forced fragments,
block sizes from 4 KiB to 1 MiB) must read back the tree exactly: listings, types, sizes,
symlink targets and every byte. unsquashfs (squashfs-tools' own reader) and grub-fstest
(GRUB's squash4 driver) read the same images as peers.
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from builders import squashfs as builder
from guestboot.fs import probe as probe_any
from guestboot.fs import path as fspath
from guestboot.fs import squashfs
from guestboot.fs.base import FileType
from guestboot.source import FileSource
from prereq import unavailable

VARIANTS = sorted(builder.VARIANTS)
CHUNK = 1 << 20


@pytest.fixture(scope="session")
def sq_tree(tmp_path_factory) -> Path:
    if builder.mksquashfs() is None:
        unavailable("mksquashfs (package squashfs-tools) is not installed")
    return builder.tree(tmp_path_factory)


@pytest.fixture(scope="session", params=VARIANTS)
def volume(request, sq_tree, tmp_path_factory):
    """(variant, image path, fs) for each variant; the image is built once per run."""
    path = builder.image(tmp_path_factory, request.param)
    fd = os.open(path, os.O_RDONLY)
    request.addfinalizer(lambda: os.close(fd))
    fs = squashfs.probe(FileSource(fd, name=path.name))
    assert fs is not None
    return request.param, path, fs


def same_contents(source, host: Path) -> bool:
    if source.size != host.stat().st_size:
        return False
    with open(host, "rb") as f:
        pos = 0
        while pos < source.size:
            n = min(CHUNK, source.size - pos)
            if source.pread(pos, n) != f.read(n):
                return False
            pos += n
    return True


def walk(fs, node, prefix: str = ""):
    """(path, node) of every entry below ``node``, depth first."""
    for name, child in fs.readdir(node):
        path = f"{prefix}/{os.fsdecode(name)}"
        yield path, child
        if child.type is FileType.DIR:
            yield from walk(fs, child, path)


def host_walk(top: Path):
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            full = Path(dirpath) / name
            yield "/" + str(full.relative_to(top)), full


def test_reads_back_the_tree(volume, sq_tree):
    variant, _path, fs = volume
    assert fs.kind == "squashfs" and fs.compressor == builder.COMPRESSOR[variant]
    assert fs.uuid is None and fs.label is None  # squashfs has neither (GRUB reports none)
    ours = dict(walk(fs, fs.root()))
    theirs = dict(host_walk(sq_tree))
    assert sorted(ours) == sorted(theirs)
    for path, node in ours.items():
        host = theirs[path]
        st = host.lstat()
        assert stat.S_IFMT(node.mode) == stat.S_IFMT(st.st_mode), path
        assert node.mode & 0o7777 == st.st_mode & 0o7777, path
        assert node.mtime == int(st.st_mtime), path
        if stat.S_ISLNK(st.st_mode):
            assert node.type is FileType.LNK and fs.readlink(node) == os.fsencode(os.readlink(host)), path
        elif stat.S_ISDIR(st.st_mode):
            assert node.type is FileType.DIR, path
        elif stat.S_ISREG(st.st_mode):
            assert node.type is FileType.REG and same_contents(fs.open(node), host), path
        else:
            assert node.type is FileType.OTHER, path  # the fifo
    assert ours["/hardlink.txt"].ino == ours["/small.txt"].ino


def test_lookup_through_the_directory_index(volume, sq_tree):
    _variant, _path, fs = volume
    many = fspath.resolve(fs, "/many")
    assert many.private.index_count > 0  # mksquashfs indexed this listing: lookup uses it
    listed = dict(fs.readdir(many))
    assert len(listed) == len(os.listdir(sq_tree / "many"))
    names = sorted(listed)
    for name in names[::10] + names[-3:]:  # a sample through every index block (each lookup re-reads the index)
        assert fs.lookup(many, name) == listed[name]
    for absent in (b"", b"a", b"entry-", b"entry-00000x", b"long-00007", b"zzz", b"\xff" * 300, b"a/b"):
        assert fs.lookup(many, absent) is None
    node = fspath.resolve(fs, "/many/with-data")
    assert fs.open(node).pread(0, node.size) == b"found through the directory index\n"


def test_paths_and_symlinks(volume):
    _variant, _path, fs = volume
    deep = "/nested/" + "/".join(f"d{i}" for i in range(builder.DEEP)) + "/deep.txt"
    node = fspath.resolve(fs, deep)
    assert fs.open(node).pread(0, node.size) == b"deep file\n"
    assert fspath.resolve(fs, "/link-abs-dir/d3") == fspath.resolve(fs, "/nested/d0/d1/d2/d3")
    assert fspath.resolve(fs, "/link-rel") == fspath.resolve(fs, "/small.txt")


def test_plain_blocks_map_into_the_image_and_holes_stay_holes(tmp_path_factory, sq_tree):
    """Uncompressed data blocks are runs of the image's descriptor (zero-copy extraction);
    mksquashfs's sparse blocks are holes; compressed blocks are decoded data."""
    path = builder.image(tmp_path_factory, "uncompressed")
    fd = os.open(path, os.O_RDONLY)
    try:
        fs = squashfs.probe(FileSource(fd, name=path.name))
        node = fspath.resolve(fs, "/files/random-" + str(3 * builder.BLOCK + 12_345))
        full_blocks = 3 * builder.BLOCK
        runs = list(fs.open(node).runs(0, full_blocks))
        assert all(run.fd == fd and run.data is None for run in runs)
        assert sum(run.length for run in runs) == full_blocks
        sparse = fs.open(fspath.resolve(fs, "/sparse.bin"))
        holes = [run for run in sparse.runs() if run.fd is None and run.data is None]
        assert sum(run.length for run in holes) >= builder.SPARSE_HOLE
    finally:
        os.close(fd)
    path = builder.image(tmp_path_factory, "gzip")
    fd = os.open(path, os.O_RDONLY)
    try:
        fs = squashfs.probe(FileSource(fd, name=path.name))
        mixed = fs.open(fspath.resolve(fs, "/mixed.bin"))
        runs = list(mixed.runs())
        assert any(run.data is not None for run in runs)  # compressible blocks: decoded
        assert any(run.fd == fd for run in runs)  # random blocks: mksquashfs stored them as they are
        assert b"".join(run.data if run.data is not None else os.pread(fd, run.length, run.offset)
                        for run in runs) == (sq_tree / "mixed.bin").read_bytes()
    finally:
        os.close(fd)


def test_probe_finds_squashfs(volume):
    _variant, path, _fs = volume
    fd = os.open(path, os.O_RDONLY)
    try:
        fs = probe_any(FileSource(fd, name=path.name))
        assert fs is not None and fs.kind == "squashfs"
    finally:
        os.close(fd)


# --- peers -----------------------------------------------------------------------------------


def test_unsquashfs_agrees(volume):
    """squashfs-tools' own reader lists the same paths and cats the same bytes."""
    _variant, path, fs = volume
    done = subprocess.run(["unsquashfs", "-n", "-l", "-d", "", str(path)],
                          capture_output=True, check=True)
    theirs = sorted(line for line in done.stdout.decode("utf-8", "surrogateescape").splitlines()
                    if line.startswith("/"))
    assert sorted(p for p, _n in walk(fs, fs.root())) == theirs
    for name in ("/sparse.bin", "/mixed.bin", "/files/text-70000"):
        cat = subprocess.run(["unsquashfs", "-cat", str(path), name], capture_output=True, check=True).stdout
        node = fspath.resolve(fs, name)
        assert fs.open(node).pread(0, node.size) == cat
