"""The ext2/ext3/ext4 driver on images made by the real mke2fs from a reference tree.

Every variant must read back the tree exactly: listings, types, sizes, symlink targets and
every byte. Peers (blkid, dumpe2fs, debugfs, grub-fstest) confirm identity and contents.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from builders import ext as builder
from guestboot.errors import CorruptImage, Unsupported
from guestboot.fs import ext
from guestboot.fs import path as fspath
from guestboot.fs.base import FileType
from guestboot.fs.ext.layout import (
    EXTENT_HEADER,
    INODE_EXTENTS_FL,
    INODE_INDEX_FL,
    INODE_INLINE_DATA_FL,
)
from guestboot.source import FileSource, SliceSource

VARIANTS = sorted(n for n in builder.VARIANTS if n != "ext4-1k-nocsum")
CHUNK = 1 << 20


@pytest.fixture(scope="session")
def ext_tree(tmp_path_factory) -> Path:
    return builder.tree(tmp_path_factory)


@pytest.fixture(scope="session", params=VARIANTS)
def volume(request, tmp_path_factory):
    """(variant, image path, fs) for each variant; the image is built once per run."""
    path = builder.image(tmp_path_factory, request.param)
    fd = os.open(path, os.O_RDONLY)
    request.addfinalizer(lambda: os.close(fd))
    fs = ext.probe(FileSource(fd, name=path.name))
    assert fs is not None
    return request.param, path, fs


def open_image(path: Path):
    fd = os.open(path, os.O_RDONLY)
    return fd, FileSource(fd, name=path.name)


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


def compare_dir(fs, node, host: Path, top: bool) -> int:
    """Compare one directory recursively; returns the number of entries checked."""
    listing = dict(fs.readdir(node))
    if top:
        assert listing.pop(b"lost+found").type is FileType.DIR
    assert sorted(listing) == sorted(os.fsencode(n) for n in os.listdir(host)), host
    count = 0
    for name, child in listing.items():
        count += 1
        h = host / os.fsdecode(name)
        if h.is_symlink():
            assert child.type is FileType.LNK, h
            assert fs.readlink(child) == os.fsencode(os.readlink(h)), h
            assert child.size == len(os.fsencode(os.readlink(h)))
        elif h.is_dir():
            assert child.type is FileType.DIR, h
            count += compare_dir(fs, child, h, False)
        else:
            assert child.type is FileType.REG, h
            assert child.size == h.stat().st_size, h
            assert same_contents(fs.open(child), h), h
    return count


def test_tree_reads_back(volume, ext_tree):
    _name, _path, fs = volume
    assert compare_dir(fs, fs.root(), ext_tree, True) > builder.MANY_ENTRIES


def test_kind_uuid_label_match_blkid(volume):
    name, path, fs = volume
    out = subprocess.run(["blkid", "-p", "-o", "export", str(path)], check=True, capture_output=True, text=True)
    tags = dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)
    assert fs.kind == tags["TYPE"] == name.split("-")[0]
    assert fs.uuid == tags["UUID"] == builder.UUID
    assert fs.label == tags["LABEL"] == builder.LABEL
    assert fs.warnings == []
    header = subprocess.run(["dumpe2fs", "-h", str(path)], check=True, capture_output=True, text=True).stdout
    assert f"Filesystem UUID:          {fs.uuid}" in header
    assert f"Block size:               {fs.block_size}" in header


def test_lookup_every_name_of_the_big_directory(volume, ext_tree):
    name, path, fs = volume
    many = fspath.resolve(fs, "/many")
    hashed = bool(many.private.flags & INODE_INDEX_FL)
    # the peer agrees on whether the directory is indexed
    stat = builder.debugfs(path, "stat /many")
    assert hashed == (int(stat.split("Flags: ")[1].split()[0], 16) & INODE_INDEX_FL != 0)
    assert hashed == (name != "ext2-1k")
    listing = dict(fs.readdir(many))
    names = list(listing) if hashed else list(listing)[::97]  # a linear scan per name is slow
    for entry in names:
        found = fs.lookup(many, entry)
        assert found is not None and found.ino == listing[entry].ino, entry
    assert fs.lookup(many, b"entry-9999") is None
    assert fs.lookup(many, b"\xc3\xbcml\xc3\xa4ut-1") is not None  # high bytes: signed vs unsigned hash
    assert fspath.read_bytes(fs, "/many/with-data", 100) == (ext_tree / "many" / "with-data").read_bytes()


def test_two_level_hash_tree(volume):
    name, path, fs = volume
    wide = fspath.resolve(fs, "/wide")
    if not wide.private.flags & INODE_INDEX_FL:
        assert name == "ext2-1k"
        return
    levels = 1 if fs.block_size == 1024 else 0  # long names fill the 1 KiB leaves quickly
    assert f"Indirect levels: {levels}" in builder.debugfs(path, "htree /wide")
    listing = dict(fs.readdir(wide))
    assert len(listing) == builder.WIDE_ENTRIES
    for entry, node in listing.items():
        found = fs.lookup(wide, entry)
        assert found is not None and found.ino == node.ino, entry
        assert fs.lookup(wide, entry[:-1]) is None


def _run_bytes(fd: int, run) -> bytes:
    if run.data is not None:
        return run.data
    return bytes(run.length) if run.fd is None else os.pread(fd, run.length, run.offset)


def test_runs_point_into_the_image(volume, ext_tree):
    name, path, fs = volume
    with open(path, "rb") as image:
        fd = image.fileno()
        for rel in ("big.bin", "sparse-many", "sparse-far", "tiny-inline", "files/size-100", "files/size-0"):
            source = fspath.open_file(fs, rel)
            pieces = []
            holes = 0
            for run in source.runs():
                if run.data is not None:
                    pieces.append(run.data)
                elif run.fd is None:
                    holes += 1
                    pieces.append(bytes(run.length))
                else:
                    assert run.fd == fs.source.fd
                    pieces.append(os.pread(fd, run.length, run.offset))
            assert b"".join(pieces) == (ext_tree / rel).read_bytes(), rel
            if rel == "sparse-far" or (rel == "sparse-many" and fs.block_size < builder.SPARSE_STRIDE):
                assert holes > 0
            # a range in the middle, and pread across run borders
            if source.size > 10000:
                middle = b"".join(_run_bytes(fd, r) for r in source.runs(5000, 9000))
                assert middle == (ext_tree / rel).read_bytes()[5000:14000]


def test_deep_extent_tree_and_indirect_maps(volume):
    name, path, fs = volume
    sparse = fspath.resolve(fs, "/sparse-many").private
    far = fspath.resolve(fs, "/sparse-far").private
    if name.startswith(("ext2", "ext3")):
        assert not sparse.flags & INODE_EXTENTS_FL
        pointers = struct.unpack("<15I", far.i_block)
        if name in ("ext2-1k", "ext3-legacy"):  # 1 KiB blocks: 65 MiB is triple indirect
            assert pointers[14] != 0
            assert "(TIND)" in builder.debugfs(path, "stat /sparse-far")
    else:
        assert sparse.flags & INODE_EXTENTS_FL
        depth = EXTENT_HEADER.unpack_from(sparse.i_block)[3]
        # one extent per chunk while the holes are whole blocks; 4 fit in the inode,
        # (block size - 12) / 12 in a tree block
        extents = builder.SPARSE_CHUNKS if fs.block_size <= builder.SPARSE_STRIDE - builder.SPARSE_CHUNK else 1
        leaves = -(-extents // ((fs.block_size - 12) // 12))
        expected = 0 if extents <= 4 else 1 if leaves <= 4 else 2
        assert depth == expected
        listing = builder.debugfs(path, "ex /sparse-many")
        assert f" 0/ {expected} " in listing  # debugfs agrees on the depth


def test_inline_data_files_and_directories(tmp_path_factory, ext_tree):
    path = builder.image(tmp_path_factory, "ext4-inline")
    fd, source = open_image(path)
    try:
        fs = ext.probe(source)
        for rel in ("tiny-inline", "files/size-100", "smalldir", "emptydir"):
            node = fspath.resolve(fs, rel)
            assert node.private.flags & INODE_INLINE_DATA_FL, rel
        # 100 bytes: 60 in i_block, the rest in the in-inode "system.data" attribute
        assert "Size of inline data: 100" in builder.debugfs(path, "stat /files/size-100")
        assert fspath.read_bytes(fs, "files/size-100", 200) == (ext_tree / "files" / "size-100").read_bytes()
        # e2fsprogs moves a directory out of the inode once i_block is full
        assert not fspath.resolve(fs, "inline-spill").private.flags & INODE_INLINE_DATA_FL
        assert sorted(n for n, _ in fs.readdir(fspath.resolve(fs, "smalldir"))) == [b"one", b"two"]
        assert "Size of inline data: 60" in builder.debugfs(path, "stat /tiny-inline")
    finally:
        os.close(fd)


@pytest.mark.parametrize("variant", ["ext2-1k", "ext3-4k", "ext4-1k", "ext4-4k", "ext4-64k", "ext4-metabg"])
def test_contents_match_debugfs_and_grub(tmp_path_factory, ext_tree, variant):
    path = builder.image(tmp_path_factory, variant)
    fd, source = open_image(path)
    try:
        fs = ext.probe(source)
        for rel in ("small.txt", "big.bin", "nested/a/b/c/deep.txt", "link-slow", "files/size-4097", "many/with-data"):
            ours = fspath.read_bytes(fs, rel, 1 << 24)
            assert ours == (ext_tree / rel).read_bytes()
            peer = subprocess.run(["debugfs", "-R", f"cat /{rel}", str(path)], check=True, capture_output=True).stdout
            assert ours == peer or rel == "link-slow", rel  # debugfs cat does not follow symlinks
            grub = subprocess.run(["grub-fstest", str(path), "cat", f"/{rel}"], check=True, capture_output=True).stdout
            assert ours == grub, rel
    finally:
        os.close(fd)


def test_volume_at_an_offset(tmp_path_factory, ext_tree):
    offset = 3 * 1024 * 1024
    path = builder.build_image(ext_tree, tmp_path_factory.mktemp("ext-offset") / "disk.img", "ext4-4k", offset=offset)
    fd, source = open_image(path)
    try:
        fs = ext.probe(SliceSource(source, offset, source.size - offset, "part1"))
        assert fs.uuid == builder.UUID
        assert fspath.read_bytes(fs, "link-abs", 100) == (ext_tree / "nested/a/b/c/deep.txt").read_bytes()
        assert ext.probe(source) is None  # no ext magic at the start of the disk
    finally:
        os.close(fd)


def test_needs_recovery_is_read_with_a_warning(tmp_path_factory, ext_tree):
    path = tmp_path_factory.mktemp("ext-recover") / "disk.img"
    shutil.copyfile(builder.image(tmp_path_factory, "ext4-1k"), path)
    builder.debugfs(path, "feature needs_recovery", writable=True)
    builder.debugfs(path, "ssv state 3", writable=True)  # clean, but errors were seen
    header = subprocess.run(["dumpe2fs", "-h", str(path)], capture_output=True, text=True).stdout
    assert "needs_recovery" in header and "with errors" in header
    fd, source = open_image(path)
    try:
        fs = ext.probe(source)
        assert len(fs.warnings) == 2
        assert any("journal recovery" in w for w in fs.warnings)
        assert any("having errors" in w for w in fs.warnings)
        assert fspath.read_bytes(fs, "small.txt", 100) == (ext_tree / "small.txt").read_bytes()
    finally:
        os.close(fd)


@pytest.mark.parametrize(
    "bits, names",
    [
        (0x80000, ["unknown bit 0x80000"]),
        (0x1, ["compression"]),
        (0x1000 | 0x1000000, ["dirdata", "unknown bit 0x1000000"]),
    ],
)
def test_unknown_incompat_feature_is_refused_by_name(tmp_path_factory, bits, names):
    path = tmp_path_factory.mktemp("ext-incompat") / "disk.img"
    shutil.copyfile(builder.image(tmp_path_factory, "ext4-1k"), path)
    header = subprocess.run(["dumpe2fs", "-h", str(path)], capture_output=True, text=True).stdout
    with open(path, "rb") as f:
        f.seek(1024 + 0x60)
        incompat = struct.unpack("<I", f.read(4))[0]
    # debugfs rewrites the superblock and its checksum with the extra bit
    builder.debugfs(path, f"ssv feature_incompat {incompat | bits:#x}", writable=True)
    assert "Filesystem features" in header
    fd, source = open_image(path)
    try:
        with pytest.raises(Unsupported) as caught:
            ext.probe(source)
        for name in names:
            assert name in str(caught.value)
    finally:
        os.close(fd)


def test_probe_ignores_other_data(tmp_path):
    path = tmp_path / "zeros.img"
    path.write_bytes(bytes(1 << 20))
    fd, source = open_image(path)
    try:
        assert ext.probe(source) is None
    finally:
        os.close(fd)
    tiny = tmp_path / "tiny.img"
    tiny.write_bytes(b"\x53\xef" * 100)
    fd, source = open_image(tiny)
    try:
        assert ext.probe(source) is None
    finally:
        os.close(fd)


def test_volume_larger_than_its_source_is_corrupt(tmp_path_factory):
    path = builder.image(tmp_path_factory, "ext4-4k")
    fd, source = open_image(path)
    try:
        with pytest.raises(CorruptImage, match="do not fit"):
            ext.probe(SliceSource(source, 0, source.size // 2, "half"))
    finally:
        os.close(fd)


class CountingSource(FileSource):
    """A FileSource that counts the bytes it is asked for."""

    def __init__(self, fd: int, name: str):
        super().__init__(fd, name)
        self.bytes_read = 0

    def _pread(self, offset: int, length: int) -> bytes:
        self.bytes_read += length
        return super()._pread(offset, length)


@pytest.mark.parametrize("variant", ["ext4-1k", "ext4-4k", "ext3-4k"])
def test_hash_tree_lookup_reads_only_its_path(tmp_path_factory, variant):
    path = builder.image(tmp_path_factory, variant)
    fd = os.open(path, os.O_RDONLY)
    try:
        source = CountingSource(fd, path.name)
        fs = ext.probe(source)
        many = fspath.resolve(fs, "/many")
        size = many.size
        before = source.bytes_read
        assert fs.lookup(many, b"entry-2345") is not None
        assert fs.lookup(many, b"entry-99999") is None
        spent = source.bytes_read - before
        # per lookup: the root, at most one index node, one leaf, the found inode (plus the
        # group descriptor and an extent block or two) -- far less than the directory
        assert spent < 12 * fs.block_size < size
    finally:
        os.close(fd)


def test_inline_directory_continued_in_system_data(tmp_path_factory, ext_tree):
    """e2fsprogs never spills an inline directory into its "system.data" attribute (the
    kernel does); debugfs can put one there: one hand-made entry, the rest is real."""
    base = builder.image(tmp_path_factory, "ext4-inline")
    work = tmp_path_factory.mktemp("ext-inline-spill")
    path = work / "disk.img"
    shutil.copyfile(base, path)
    fd, source = open_image(path)
    try:
        target = fspath.resolve(ext.probe(source), "/small.txt").ino
    finally:
        os.close(fd)
    name = b"extra-entry"
    length = (8 + len(name) + 3) & ~3
    value = work / "value"
    value.write_bytes(struct.pack("<IHBB", target, length, len(name), 1) + name.ljust(length - 8, b"\0"))
    builder.debugfs(path, f"ea_set -f {value} /smalldir system.data", writable=True)
    builder.debugfs(path, f"sif /smalldir size {60 + length}", writable=True)
    assert "extra-entry" in builder.debugfs(path, "ls /smalldir")  # the peer sees it too
    fd, source = open_image(path)
    try:
        fs = ext.probe(source)
        smalldir = fspath.resolve(fs, "/smalldir")
        assert smalldir.private.flags & INODE_INLINE_DATA_FL
        assert sorted(n for n, _ in fs.readdir(smalldir)) == [b"extra-entry", b"one", b"two"]
        assert fspath.read_bytes(fs, "/smalldir/extra-entry", 100) == (ext_tree / "small.txt").read_bytes()
    finally:
        os.close(fd)
