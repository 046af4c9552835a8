"""The FAT driver on images made by the real mkfs.fat and mtools from a reference tree.

Every variant (FAT12/16/32; 512- to 4096-byte sectors; 512-byte to 32 KiB clusters) must
read back the tree exactly: names (long names, 8.3 names with their case bits), types,
sizes, every byte. Peers: mtools' own listing (``mdir -/ -b``), GRUB's FAT driver
(``grub-fstest ls``, ``cat``, ``blocklist``) and blkid.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections import defaultdict
from pathlib import Path

import pytest

from builders import fat as builder
from guestboot.fs import fat
from guestboot.fs import path as fspath
from guestboot.fs.base import FileType
from guestboot.source import FileSource

VARIANTS = sorted(builder.VARIANTS)
CHUNK = 1 << 20


@pytest.fixture(scope="session")
def fat_tree(tmp_path_factory) -> Path:
    return builder.tree(tmp_path_factory)


@pytest.fixture(scope="session", params=VARIANTS)
def volume(request, tmp_path_factory):
    """(variant, image path, fs) for each variant; the image is built once per run."""
    path = builder.image(tmp_path_factory, request.param)
    fd = os.open(path, os.O_RDONLY)
    request.addfinalizer(lambda: os.close(fd))
    fs = fat.probe(FileSource(fd, name=path.name))
    assert fs is not None
    return request.param, path, fs


def walk(fs, node=None, prefix: str = "") -> list[tuple[str, object]]:
    """(path, node) of everything, depth first, directories as "path/"."""
    found = []
    for name, child in fs.readdir(node or fs.root()):
        path = f"{prefix}/{name.decode()}"
        if child.type is FileType.DIR:
            found.append((path + "/", child))
            found.extend(walk(fs, child, path))
        else:
            found.append((path, child))
    return found


def same_contents(source, host: Path) -> bool:
    if source.size != host.stat().st_size:
        return False
    with open(host, "rb") as f:
        for pos in range(0, source.size, CHUNK):
            if source.pread(pos, min(CHUNK, source.size - pos)) != f.read(CHUNK):
                return False
    return True


def by_directory(paths: list[str]) -> dict[str, list[str]]:
    """Paths grouped by their directory, each group in the order given."""
    groups: dict[str, list[str]] = defaultdict(list)
    for path in paths:
        parent = path.rstrip("/").rsplit("/", 1)[0] or "/"
        groups[parent].append(path)
    return dict(groups)


def test_tree_reads_back(volume, fat_tree):
    _name, _path, fs = volume
    ours = walk(fs)
    expected = sorted(
        "/" + os.path.relpath(os.path.join(top, n), fat_tree) + ("/" if n in dirs else "")
        for top, dirs, files in os.walk(fat_tree) for n in dirs + files
    )
    assert sorted(p for p, _ in ours) == expected
    for path, node in ours:
        host = fat_tree / path.strip("/")
        if node.type is FileType.DIR:
            assert host.is_dir()
        else:
            assert node.type is FileType.REG and node.size == host.stat().st_size, path
            assert same_contents(fs.open(node), host), path
    assert len(ours) > builder.MANY_ENTRIES


def test_listing_matches_mtools(volume):
    """mdir lists the same names in the same on-disk order, directory by directory (it
    recurses breadth first, we depth first)."""
    _name, path, fs = volume
    ours = by_directory([p for p, _ in walk(fs)])
    theirs = by_directory(builder.mdir_paths(path))
    assert ours == theirs


def test_identity_matches_blkid(volume):
    name, path, fs = volume
    out = subprocess.run(["blkid", "-p", "-o", "export", str(path)], check=True, capture_output=True, text=True)
    tags = dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)
    assert tags["TYPE"] == fs.kind == "vfat"
    assert tags["VERSION"] == fs.g.fat_type.name == name[:5].upper()
    assert tags["UUID"] == fs.uuid == builder.UUID
    assert tags["LABEL"] == fs.label == builder.LABEL
    assert fs.g.sector_size == int(tags["BLOCK_SIZE"])
    assert fs.g.cluster_size == builder.VARIANTS[name][2]
    assert fs.warnings == []


def grub_names(path: Path, directory: str) -> str:
    return builder.grub(path, "ls", directory).decode().rstrip("\n")


@pytest.mark.parametrize("variant", ["fat12", "fat16-2k-sector", "fat32", "fat32-4k-sector"])
def test_grub_lists_and_reads_the_same(tmp_path_factory, variant):
    """GRUB's listing of every directory equals ours but for case: GRUB shows every
    short name in lower case, we apply the NT case bits as Linux and Windows do."""
    path = builder.image(tmp_path_factory, variant)
    fd = os.open(path, os.O_RDONLY)
    try:
        fs = fat.probe(FileSource(fd, name=path.name))
        directories = ["/"] + [p for p, node in walk(fs) if node.type is FileType.DIR]
        for directory in directories:
            listing = fs.readdir(fspath.resolve(fs, directory))
            ours = "".join(f"{n.decode()}{'/' if node.type is FileType.DIR else ''} " for n, node in listing)
            assert grub_names(path, directory).lower() == ours.lower(), directory
        for rel in ("/EFI/debian/vmlinuz", "/fragmented.bin", "/files/size-4097", "/names/UPPER.LONGEXT",
                    "/many/entry number 0123 with a long name"):
            assert builder.grub(path, "cat", rel) == fspath.read_bytes(fs, rel, 1 << 22), rel
    finally:
        os.close(fd)


@pytest.mark.parametrize("spelling", ["/efi/DEBIAN/GRUB.CFG", "/Efi/Debian/Grub.Cfg", "/NAMES/readme.txt",
                                      "/names/a long file name with spaces.CONF", "/names/upper.longext"])
def test_lookup_is_case_insensitive_like_grub(tmp_path_factory, spelling):
    path = builder.image(tmp_path_factory, "fat16")
    fd = os.open(path, os.O_RDONLY)
    try:
        fs = fat.probe(FileSource(fd, name=path.name))
        assert fspath.read_bytes(fs, spelling, 1 << 20) == builder.grub(path, "cat", spelling)
        assert fspath.exists(fs, spelling.replace(".", "-")) is None
    finally:
        os.close(fd)


def parse_blocklist(text: str) -> list[tuple[int, int]]:
    """grub-fstest's blocklist ("S+N,S[a-b]": sectors of 512 bytes, bytes a up to b of one)
    as merged byte ranges."""
    ranges = []
    for item in text.strip().split(","):
        whole = re.fullmatch(r"(\d+)\+(\d+)", item)
        part = re.fullmatch(r"(\d+)\[(\d+)-(\d+)\]", item)
        if whole:
            ranges.append((int(whole[1]) * 512, int(whole[2]) * 512))
        else:
            assert part, item
            ranges.append((int(part[1]) * 512 + int(part[2]), int(part[3]) - int(part[2])))
    return merge(ranges)


def merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, length in ranges:
        if merged and merged[-1][0] + merged[-1][1] == start:
            merged[-1] = (merged[-1][0], merged[-1][1] + length)
        else:
            merged.append((start, length))
    return merged


def test_runs_point_into_the_image_where_grub_says(volume, fat_tree):
    """Zero-copy runs: every run is a range of the image file, and the ranges are the ones
    GRUB's blocklist names (the fragmented file has one range per hole it fills)."""
    name, path, fs = volume
    with open(path, "rb") as image:
        for rel in (builder.FRAGMENTED, "EFI/debian/vmlinuz", "files/size-1", "files/size-2048"):
            source = fspath.open_file(fs, rel)
            runs = list(source.runs())
            assert all(run.fd == fs.source.fd and run.data is None for run in runs)
            assert b"".join(os.pread(image.fileno(), r.length, r.offset) for r in runs) == (fat_tree / rel).read_bytes()
            ours = merge([(r.offset, r.length) for r in runs])
            assert ours == parse_blocklist(builder.grub(path, "blocklist", "/" + rel).decode()), rel
            if rel == builder.FRAGMENTED:
                assert len(ours) > 2  # it fills the holes of three fillers at least
            if source.size > 14000:  # a range in the middle, across run borders
                middle = b"".join(os.pread(image.fileno(), r.length, r.offset) for r in source.runs(5000, 9000))
                assert middle == (fat_tree / rel).read_bytes()[5000:14000]


def _holds(path, needle: bytes, chunk: int = 1 << 20) -> bool:
    """Does the file hold ``needle``? Read in chunks over its data regions only (the 2.2 GB
    FAT32 image is sparse; reading it whole once took the test session to 2.4 GiB)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        size, at = os.fstat(fd).st_size, 0
        while at < size:
            try:
                at = os.lseek(fd, at, os.SEEK_DATA)
            except OSError:  # no data after ``at``
                return False
            end = os.lseek(fd, at, os.SEEK_HOLE)
            while at < end:
                piece = os.pread(fd, min(chunk, end - at) + len(needle) - 1, at)
                if needle in piece:
                    return True
                at += chunk
        return False
    finally:
        os.close(fd)


def test_deleted_entries_stay_invisible(volume):
    """The builder deleted its filler files: their entries are still on disk, marked 0xE5."""
    _name, path, fs = volume
    assert _holds(path, b"\xe5ILLER~")
    assert not _holds(path, b"\xe5ILLER~NOT")
    assert not any("filler" in p for p, _ in walk(fs))


def test_one_cluster_file_and_empty_files(volume, fat_tree):
    name, _path, fs = volume
    cluster = builder.VARIANTS[name][2]
    one = fspath.open_file(fs, f"files/size-{cluster}")
    assert one.size == cluster and len(list(one.runs())) == 1
    empty = fspath.open_file(fs, "files/size-0")
    assert empty.size == 0 and empty.pread(0, 0) == b""
    assert list(fs.readdir(fspath.resolve(fs, "emptydir"))) == []
    assert fspath.read_bytes(fs, "a/b/c/d/e/f/g/h/deep.txt", 100) == b"deep file\n"


def test_small_fat32_is_read_as_fat32_like_linux_and_grub(tmp_path):
    """mkfs.fat -F 32 on a small volume: fewer than 65525 clusters, which the specification
    would call FAT16, but a FAT32 BPB (no fixed root directory). blkid, GRUB and we read it
    as FAT32 (mtools refuses it, so it stays empty here)."""
    path = tmp_path / "small32.img"
    done = subprocess.run(["mkfs.fat", "-C", "-F", "32", "-s", "8", "-n", "SMALL", "-i", "12345678", str(path),
                           str(64 * 1024)], capture_output=True, text=True)
    assert done.returncode == 0 and "less then suggested minimum" in done.stderr + done.stdout
    fd = os.open(path, os.O_RDONLY)
    try:
        fs = fat.probe(FileSource(fd, name=path.name))
        assert fs.g.fat_type.name == "FAT32" and fs.g.clusters < 65525
        assert (fs.uuid, fs.label, fs.warnings) == ("1234-5678", "SMALL", [])
        assert list(fs.readdir(fs.root())) == []
    finally:
        os.close(fd)
    tags = subprocess.run(["blkid", "-p", "-o", "export", str(path)], check=True, capture_output=True, text=True).stdout
    assert "VERSION=FAT32" in tags.splitlines()
    assert builder.grub(path, "ls", "/") == b"\n"


@pytest.mark.parametrize("name", ["lower.txt", "lowbase.TXT", "UPBASE.txt", "README.TXT", "NOEXT", "exactly8.123"])
def test_short_names_carry_their_case_in_the_nt_bits(tmp_path_factory, name):
    """Names that fit 8.3 in one case per part get no long name from mtools: the entry
    before the short entry is not a long-name entry, so the case we show comes from the
    NT case bits alone (and equals the host tree's)."""
    path = builder.image(tmp_path_factory, "fat16")
    fd = os.open(path, os.O_RDONLY)
    try:
        fs = fat.probe(FileSource(fd, name=path.name))
        node = fspath.resolve(fs, f"/names/{name}")
        assert dict(fs.readdir(fspath.resolve(fs, "/names")))[name.encode()] == node
        before = os.pread(fd, 32, node.ino - 32)
        assert before[11] & 0x3F != 0x0F, name  # not ATTR_LONG_NAME
        short = os.pread(fd, 32, node.ino)
        assert short[:11] == short[:11].upper()  # stored in upper case, as 8.3 names are
    finally:
        os.close(fd)
