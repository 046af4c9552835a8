"""The ISO 9660 driver on images made by the real xorriso from a reference tree.

Rock Ridge images must read back the tree exactly: names, types, sizes, symlink targets,
every byte. Without Rock Ridge, ISO 9660 and Joliet keep no symlinks and change names
(8.3 upper case at level 1, ";1" versions, Joliet's 103-character cap), so the tree is
compared by directory and contents, and every name is compared with what GRUB's own
driver (grub-fstest) lists. Every file's bytes are also compared with GRUB's CRC of it.
"""

from __future__ import annotations

import collections
import os
import re
import shutil
import subprocess
import zlib
from pathlib import Path

import pytest

from builders import iso as builder
from guestboot.fs import iso9660, probe
from guestboot.fs import path as fspath
from guestboot.fs.base import FileType
from guestboot.source import FileSource
from prereq import unavailable

VARIANTS = sorted(builder.VARIANTS)
CHUNK = 1 << 20


def _need(tool: str, package: str) -> None:
    if subprocess.run(["sh", "-c", f"command -v {tool}"], capture_output=True).returncode != 0:
        unavailable(f"{tool} not found (apt-get install {package})")


@pytest.fixture(scope="session")
def iso_tree(tmp_path_factory) -> Path:
    _need("xorriso", "xorriso")
    return builder.tree(tmp_path_factory)


@pytest.fixture(scope="session", params=VARIANTS)
def volume(request, tmp_path_factory, iso_tree):
    """(variant, image path, fs) for each variant; the image is built once per run."""
    path = builder.image(tmp_path_factory, iso_tree, request.param)
    fd = os.open(path, os.O_RDONLY)
    request.addfinalizer(lambda: os.close(fd))
    fs = iso9660.probe(FileSource(fd, name=path.name))
    assert fs is not None
    return request.param, path, fs


def rock_ridge(variant: str) -> bool:
    return variant.startswith("rr")


def read_all(source) -> bytes:
    return b"".join(source.pread(pos, min(CHUNK, source.size - pos)) for pos in range(0, source.size, CHUNK))


def walk(fs, node, prefix: str = ""):
    """(path, node) of every entry below ``node``, depth first."""
    for name, child in fs.readdir(node):
        path = f"{prefix}/{name.decode()}"
        yield path, child
        if child.type is FileType.DIR:
            yield from walk(fs, child, path)


def host_walk(top: Path, *, symlinks: bool):
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            host = Path(dirpath) / name
            if host.is_symlink() and not symlinks:
                continue
            yield "/" + str(host.relative_to(top)), host


def test_names_follow_grubs_choice(volume):
    variant, _path, fs = volume
    expected = "rock ridge" if rock_ridge(variant) else "joliet" if "joliet" in variant else "iso9660"
    assert fs.names == expected
    assert fs.kind == "iso9660"


def test_rock_ridge_tree_reads_back_exactly(volume, iso_tree):
    variant, _path, fs = volume
    if not rock_ridge(variant):
        pytest.skip("names and symlinks need Rock Ridge; see the next test")
    ours = dict(walk(fs, fs.root()))
    host = dict(host_walk(iso_tree, symlinks=True))
    assert sorted(ours) == sorted(host)
    for path, node in ours.items():
        h = host[path]
        if h.is_symlink():
            assert node.type is FileType.LNK, path
            assert fs.readlink(node) == os.fsencode(os.readlink(h)), path
        elif h.is_dir():
            assert node.type is FileType.DIR, path
            assert node.mode & 0o7777 == h.stat().st_mode & 0o7777, path
        else:
            assert node.type is FileType.REG, path
            assert node.size == h.stat().st_size, path
            assert read_all(fs.open(node)) == h.read_bytes(), path


def test_plain_and_joliet_trees_hold_the_same_contents(volume, iso_tree):
    """Directory names here are short lower-case ISO names, so directories match by name;
    files match by contents (their names are compared with GRUB's in the next test)."""
    variant, _path, fs = volume
    ours: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    dirs = set()
    for path, node in walk(fs, fs.root()):
        parent = path.rsplit("/", 1)[0] or "/"
        if node.type is FileType.DIR:
            dirs.add(path)
        elif node.type is FileType.LNK:
            assert rock_ridge(variant), path  # no symlinks without Rock Ridge
        else:
            assert node.type is FileType.REG, path
            ours[parent][zlib.crc32(read_all(fs.open(node)))] += 1
    theirs: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    host_dirs = set()
    for path, host in host_walk(iso_tree, symlinks=rock_ridge(variant)):
        if host.is_symlink():
            continue  # Rock Ridge symlinks are compared in the test above
        parent = path.rsplit("/", 1)[0] or "/"
        if host.is_dir():
            host_dirs.add(path)
        else:
            theirs[parent][zlib.crc32(host.read_bytes())] += 1
    assert dirs == host_dirs
    assert ours == theirs


def grub_ls(path: Path, directory: str) -> dict[str, str]:
    """grub-fstest's ``ls -l``: name -> "DIR" or the size. GRUB opens each entry that is
    not a directory for its size: a symlink shows its target's size, and one that does not
    lead to a file (dangling, or to a directory) is left out."""
    done = subprocess.run(["grub-fstest", str(path), "ls", "--", "-l", directory], capture_output=True, check=True)
    listing = {}
    for line in done.stdout.decode().splitlines():
        match = re.match(r"^(DIR|\d+)\s+\d{14}\s(.*)$", line)
        if match:
            name = match.group(2)
            listing[name[:-1] if match.group(1) == "DIR" else name] = match.group(1)
    return listing


def test_every_directory_lists_as_grub_lists_it(volume):
    variant, path, fs = volume
    _need("grub-fstest", "grub-common")
    directories = ["/"] + [p for p, node in walk(fs, fs.root()) if node.type is FileType.DIR]
    for directory in directories:
        ours = {}
        for name, node in fspath.listdir(fs, directory):
            if node.type is FileType.LNK:
                target = fspath.exists(fs, f"{directory}/{name.decode()}")
                if target is None or target.type is not FileType.REG:
                    continue
                node = target
            ours[name.decode()] = "DIR" if node.type is FileType.DIR else str(node.size)
        assert ours == grub_ls(path, directory), (variant, directory)


def test_every_file_has_grubs_crc(volume):
    variant, path, fs = volume
    _need("grub-fstest", "grub-common")
    many = 0
    for name, node in walk(fs, fs.root()):
        if node.type is not FileType.REG:
            continue
        if name.startswith("/many/"):
            many += 1
            if many > 8:  # their records are listed against GRUB's above; a few contents suffice
                continue
        done = subprocess.run(["grub-fstest", str(path), "crc", name], capture_output=True, check=True)
        assert int(done.stdout.strip(), 16) == zlib.crc32(read_all(fs.open(node))), (variant, name)


def test_plain_names_match_without_case_as_in_grub(volume):
    variant, path, fs = volume
    node = fspath.resolve(fs, "/boot/grub/grub.cfg")
    assert read_all(fs.open(node)) == builder.GRUB_CFG.encode()
    if rock_ridge(variant) or "joliet" in variant:
        assert fspath.exists(fs, "/BOOT/GRUB/GRUB.CFG") is None
        assert fspath.exists(fs, "/mixedcase.txt") is None
        assert fspath.exists(fs, "/MixedCase.TXT") is not None
    else:
        assert fspath.resolve(fs, "/BOOT/Grub/GRUB.CFG") == node
        assert fspath.resolve(fs, "/LIVE/VMLINUZ") == fspath.resolve(fs, "/live/vmlinuz")
        grub = subprocess.run(["grub-fstest", str(path), "crc", "/BOOT/Grub/GRUB.CFG"], capture_output=True)
        if grub.returncode == 0:  # grub-fstest present: GRUB matches the same way
            assert int(grub.stdout.strip(), 16) == zlib.crc32(builder.GRUB_CFG.encode())


def test_deep_directories(volume):
    _variant, _path, fs = volume
    deep = "/deep/" + "/".join(f"level{i}" for i in range(builder.DEEP)) + "/bottom.txt"
    assert read_all(fspath.open_file(fs, deep)) == b"at the bottom\n"


def test_symlinks_resolve_through_the_path_walker(volume):
    variant, _path, fs = volume
    if not rock_ridge(variant):
        pytest.skip("symlinks need Rock Ridge")
    assert read_all(fspath.open_file(fs, "/links/relative")) == b"Mixed case name\n"
    assert fspath.resolve(fs, "/links/absolute") == fspath.resolve(fs, "/files/size-1")
    assert fspath.resolve(fs, "/links/to-dir/level0").type is FileType.DIR
    assert fs.readlink(fspath.resolve(fs, "/links/long", follow=False)) == builder.LONG_TARGET.encode()


def test_label_and_uuid_as_blkid_and_grub_print_them(volume):
    _variant, path, fs = volume
    assert fs.label == builder.VOLUME_ID
    assert fs.uuid == builder.UUID
    done = subprocess.run(["blkid", "-p", "-o", "export", str(path)], capture_output=True, check=False)
    if done.returncode == 0:
        fields = dict(line.split("=", 1) for line in done.stdout.decode().splitlines() if "=" in line)
        assert fields["TYPE"] == "iso9660"
        assert fields["UUID"] == fs.uuid
        assert fields["LABEL"] == fs.label


def test_runs_point_into_the_image(volume, iso_tree):
    """Files are stored plainly: their runs are ranges of the image itself (zero-copy)."""
    _variant, path, fs = volume
    node = max((node for _name, node in fspath.listdir(fs, "/files")), key=lambda node: node.size)
    runs = list(fs.open(node).runs())
    assert sum(run.length for run in runs) == node.size
    with open(path, "rb") as image:
        data = b""
        for run in runs:
            assert run.fd is not None and run.data is None
            image.seek(run.offset)
            data += image.read(run.length)
    assert data == (iso_tree / "files" / f"size-{max(builder.FILE_SIZES)}").read_bytes()


def test_probe_registry_finds_it(volume):
    _variant, _path, fs = volume
    assert probe(fs.source).kind == "iso9660"


def test_no_boot_catalog_without_el_torito(volume):
    _variant, _path, fs = volume
    assert fs.boot_catalog() == ()


@pytest.mark.slow
def test_file_over_4_gib_is_read_across_its_extents(tmp_path_factory):
    """xorriso -iso-level 3 stores a 4.5 GiB file as two directory records with the
    multi-extent flag; it reads as one file, and GRUB reads the same bytes."""
    _need("xorriso", "xorriso")
    work = tmp_path_factory.mktemp("iso-big")
    host = builder.big_tree(work / "tree")
    image = builder.sparse_iso(work / "big.iso", host, ["-R", "-iso-level", "3"])
    fd = os.open(image, os.O_RDONLY)
    try:
        fs = iso9660.probe(FileSource(fd, name=image.name))
        node = fspath.resolve(fs, "/big.bin")
        assert node.size == builder.BIG_SIZE
        extents = node.private.extents
        assert len(extents) == 2 and extents[0][1] < 1 << 32
        data = fs.open(node)
        runs = list(data.runs())
        assert [run.length for run in runs] == [length for _start, length in extents]
        assert all(run.fd == fd for run in runs)
        with open(host / "big.bin", "rb") as f:
            for offset in builder.BIG_DATA:
                f.seek(offset)
                assert data.pread(offset, min(6000, node.size - offset)) == f.read(6000), offset
        assert dict((n.decode(), x.size) for n, x in fs.readdir(fs.root())) == {
            "big.bin": builder.BIG_SIZE, "small.txt": 19}
    finally:
        os.close(fd)
    if shutil.which("grub-fstest"):
        assert grub_ls(image, "/")["big.bin"] == str(builder.BIG_SIZE)
        offset = builder.BIG_DATA[1]
        grub = subprocess.run(["grub-fstest", "-s", str(offset), "-n", "6000", str(image), "cat", "/big.bin"],
                              capture_output=True, check=True).stdout
        with open(host / "big.bin", "rb") as f:
            f.seek(offset)
            assert grub == f.read(6000)
