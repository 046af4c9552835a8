"""The XFS driver on damaged copies of real images: only GuestbootError, never a hang.

The pristine images come from mkfs.xfs and a loop mount (tests/builders/xfs.py, the small
trees). Each case reads the image through a source that replaces some bytes: the damage
is hand-made, the image around it is real. Structures are located with the driver itself
on the pristine image, so every patch hits the structure it names. On v5 a patch either
leaves the CRC-32C stale (the checksum must catch it) or recomputes it (so the structure
checks behind the checksum are reached, as a forger would).
"""

from __future__ import annotations

import os
import random
import resource
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from builders import xfs as builder
from guestboot.crc32c import crc32c
from guestboot.errors import CorruptImage, GuestbootError, LimitExceeded
from guestboot.fs import path as fspath
from guestboot.fs import xfs
from guestboot.fs.base import FileType
from guestboot.fs.xfs.layout import (
    BMBT_PTR,
    BMDR_HEADER,
    BTREE_LBLOCK_CRC_OFFSET,
    DIR3_CRC_OFFSET,
    INODE_CRC_OFFSET,
    SYMLINK_CRC_OFFSET,
)
from guestboot.source import ByteSource, FileSource, Run
from prereq import unavailable

TESTS = Path(__file__).parent
MEMORY_CAP = 512 * 1024 * 1024  # RLIMIT_AS of the child in the campaign


class Patched(ByteSource):
    """``base`` with some bytes replaced (and the size possibly cut)."""

    def __init__(self, base: ByteSource, patches: dict[int, bytes], size: int | None = None):
        self.base = base
        self.patches = patches
        self.size = base.size if size is None else size
        self.name = "patched"

    def _pread(self, offset: int, length: int) -> bytes:
        data = bytearray(self.base.pread(offset, length))
        for where, new in self.patches.items():
            lo, hi = max(where, offset), min(where + len(new), offset + length)
            if lo < hi:
                data[lo - offset : hi - offset] = new[lo - where : hi - where]
        return bytes(data)

    def runs(self, offset: int = 0, length: int | None = None):
        length = self._check_range(offset, length)
        if length:
            yield Run(None, offset, length, self.pread(offset, length))


class Pristine:
    """One real image plus the locations of its structures."""

    def __init__(self, path: Path, tree: Path):
        fd = os.open(path, os.O_RDONLY)
        self.path = path
        self.tree = tree
        self.source = FileSource(fd, name=path.name)
        self.fs = xfs.probe(self.source)
        self.crc = self.fs.g.crc

    def node(self, path: str, follow: bool = True):
        return fspath.resolve(self.fs, path, follow=follow)

    def inode_offset(self, path: str) -> int:
        return self.node(path, follow=False).private.offset

    def dir_block(self, path: str, index: int = 0) -> int:
        node = self.node(path)
        return self.fs.directory_source(node.private).volume_offset(index * self.fs.g.dir_block_size)

    def patched(self, patches: dict[int, bytes], size: int | None = None) -> Patched:
        return Patched(self.source, patches, size)

    def flip(self, offset: int, mask: int = 0x5A) -> Patched:
        return self.patched({offset: bytes([self.source.pread(offset, 1)[0] ^ mask])})

    def forged(self, start: int, length: int, crc_offset: int, patches: dict[int, bytes]) -> Patched:
        """Patches inside the metadata block [start, start+length) with its CRC recomputed."""
        block = bytearray(self.source.pread(start, length))
        for where, new in patches.items():
            block[where - start : where - start + len(new)] = new
        if self.crc:
            block[crc_offset : crc_offset + 4] = bytes(4)
            block[crc_offset : crc_offset + 4] = crc32c(bytes(block)).to_bytes(4, "little")
        return self.patched({start: bytes(block)})

    def nextents_patch(self, path: str, count: int) -> dict[int, bytes]:
        """The patch that makes the data fork of ``path`` declare ``count`` extents: the
        32-bit di_nextents at 76, or on an nrext64 inode (XFS_DIFLAG2_NREXT64 in the v3
        di_flags2 at 120; mkfs.xfs 6.5 and later by default) the 64-bit di_big_nextents at
        24, where 76 is the attribute fork's count (xfs_format.h, struct xfs_dinode)."""
        start = self.inode_offset(path)
        if self.crc and int.from_bytes(self.source.pread(start + 120, 8), "big") & 0x10:
            return {24: count.to_bytes(8, "big")}
        return {76: count.to_bytes(4, "big")}

    def forged_inode(self, path: str, patches: dict[int, bytes]) -> Patched:
        """Patches at offsets relative to the inode of ``path``, its CRC recomputed."""
        start = self.inode_offset(path)
        return self.forged(start, self.fs.g.inode_size, INODE_CRC_OFFSET,
                           {start + k: v for k, v in patches.items()})


def _images(factory) -> tuple[Pristine, Pristine]:
    if subprocess.run(["which", "mkfs.xfs"], capture_output=True).returncode:
        unavailable("mkfs.xfs (xfsprogs)")
    v5 = Pristine(builder.image(factory, "mount-v5-1k", "mount-small"), builder.tree(factory, "mount-small"))
    v4 = Pristine(builder.image(factory, "v4-1k-dir8k-i512", "small"), builder.tree(factory, "small"))
    return v5, v4


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    v5, v4 = _images(tmp_path_factory)
    yield v5, v4
    os.close(v5.source.fd)
    os.close(v4.source.fd)


@pytest.fixture(scope="module")
def v5(images) -> Pristine:
    return images[0]


@pytest.fixture(scope="module")
def v4(images) -> Pristine:
    return images[1]


def exercise(source: ByteSource) -> None:
    """Probe and read everything (listings, lookups, links, every byte); compare nothing."""
    fs = xfs.probe(source)
    if fs is None:
        return
    pending = [fs.root()]
    seen = 0
    while pending:
        directory = pending.pop()
        for name, node in fs.readdir(directory):
            seen += 1
            assert seen < 20_000
            fs.lookup(directory, name)
            if node.type is FileType.DIR:
                pending.append(node)
            elif node.type is FileType.LNK:
                fs.readlink(node)
            elif node.type is FileType.REG:
                data = fs.open(node)
                for pos in range(0, min(data.size, 1 << 26), 1 << 20):
                    data.pread(pos, min(1 << 20, data.size - pos))


def verify(source: ByteSource, tree: Path) -> None:
    """Probe and read everything through paths, asserting it equals the tree."""
    fs = xfs.probe(source)
    assert fs is not None
    for top, dirs, files in os.walk(tree):
        rel = os.path.relpath(top, tree)
        here = "/" if rel == "." else "/" + rel
        listing = sorted(name for name, _ in fspath.listdir(fs, here))
        assert listing == sorted(os.fsencode(n) for n in dirs + files)
        for name in dirs + files:
            host = Path(top) / name
            inner = f"{here.rstrip('/')}/{name}"
            if host.is_symlink():
                assert fs.readlink(fspath.resolve(fs, inner, follow=False)) == os.fsencode(os.readlink(host))
            elif host.is_file():
                assert fspath.read_bytes(fs, inner, 1 << 27) == host.read_bytes(), inner


def damaged(source: ByteSource, match: str | None = None) -> None:
    with pytest.raises(GuestbootError, match=match):
        exercise(source)


def survives(source: ByteSource) -> None:
    try:
        exercise(source)
    except GuestbootError:
        pass


def test_pristine_small_images_read_back(v5, v4):
    verify(v5.source, v5.tree)
    tree_v4 = v4.tree
    verify(v4.source, tree_v4)


# --- truncation and the superblock ------------------------------------------------------------


@pytest.mark.timeout(5)
@pytest.mark.parametrize("cut", [0, 100, 263, 264, 511, 4096, "half", "last-block"])
def test_truncated_images(v5, v4, cut):
    for image in (v5, v4):
        size = {"half": image.source.size // 2, "last-block": image.source.size - 1}.get(cut, cut)
        source = image.patched({}, size=size)
        if size < 264:
            assert xfs.probe(source) is None
        else:
            with pytest.raises(CorruptImage, match="does not fit|do not fit"):
                xfs.probe(source)


SUPER_FIELDS = [4, 8, 15, 56, 63, 84, 88, 100, 101, 102, 104, 106, 120, 122, 123, 124, 126, 192, 200, 216, 224]


@pytest.mark.timeout(5)
@pytest.mark.parametrize("field", SUPER_FIELDS + [300, 511])
def test_superblock_flip_is_caught_by_its_checksum(v5, field):
    # the version nibble says whether there is a checksum, the sector size what it covers:
    # damage there is named as such
    with pytest.raises(CorruptImage, match="version|sector size" if field in (101, 102, 103) else "checksum"):
        xfs.probe(v5.flip(field))


@pytest.mark.timeout(5)
@pytest.mark.parametrize("field", SUPER_FIELDS)
@pytest.mark.parametrize("mask", [0x01, 0x80, 0xFF])
def test_superblock_flip_v4_and_forged_v5(v5, v4, field, mask):
    survives(v4.flip(field, mask))
    value = bytes([v5.source.pread(field, 1)[0] ^ mask])
    survives(v5.forged(0, v5.fs.g.sector_size, 224, {field: value}))


# --- inodes ---------------------------------------------------------------------------------


@pytest.mark.timeout(5)
@pytest.mark.parametrize("rel", ["big.bin", "sparse-many", "nodedir", "shortdir", "link-remote"])
@pytest.mark.parametrize("byte", [0, 2, 5, 56, 63, 76, 82, 150, 160, 200])
def test_inode_flip_is_caught_by_its_checksum(v5, rel, byte):
    damaged(v5.flip(v5.inode_offset(rel) + byte), match="magic" if byte == 0 else "checksum")


@pytest.mark.timeout(5)
@pytest.mark.parametrize("image_name", ["v5", "v4"])
@pytest.mark.parametrize("patch, match", [
    ({0: b"XX"}, "bad magic"),
    ({4: b"\x07"}, "version"),
    ({5: b"\x09"}, "format"),  # data fork format 9 on a regular file
    ({82: b"\xff"}, "attribute fork offset"),  # forkoff past the inode
    ({56: b"\xff" * 8}, "negative size"),
    ("nextents", "extents"),  # more extents than the fork holds
])
def test_forged_inode_of_a_file(request, image_name, patch, match):
    image = request.getfixturevalue(image_name)
    rel = "big.bin"
    if patch == "nextents":
        patch = image.nextents_patch(rel, 0x7FFFFFFF)
    damaged(image.forged_inode(rel, patch), match=match)


@pytest.mark.timeout(5)
def test_forged_inode_numbers_and_sizes(v5, v4):
    for image in (v5, v4):
        # a short-form root entry pointing outside the volume
        root = image.fs.root().private
        fork = root.fork_offset
        ino_size = 8 if image.source.pread(fork + 1, 1)[0] else 4
        # the parent pointer of the root's short-form header: "..": resolving it is not
        # done by readdir, so point the first entry's inode number out instead
        first = fork + 2 + ino_size
        namelen = image.source.pread(first, 1)[0]
        ino_at = first + 3 + namelen + (1 if image.fs.g.ftype else 0)
        start = image.inode_offset("/")
        source = image.forged(start, image.fs.g.inode_size, INODE_CRC_OFFSET, {ino_at: b"\xff" * ino_size})
        damaged(source, match="outside the volume")
        # a huge file size over the real extents: the tail reads as a hole, bounded
        source = image.forged_inode("files/size-100", {56: (1 << 40).to_bytes(8, "big")})
        fs = xfs.probe(source)
        data = fspath.open_file(fs, "files/size-100")
        assert data.size == 1 << 40
        assert data.pread(0, 100) == (image.tree / "files/size-100").read_bytes()
        assert data.pread((1 << 40) - 10, 10) == bytes(10)


@pytest.mark.timeout(5)
@pytest.mark.parametrize("image_name", ["v5", "v4"])
def test_forged_short_form_directory(request, image_name):
    image = request.getfixturevalue(image_name)
    node = image.node("shortdir")
    assert node.private.format == 1
    for patch in ({0: b"\xff"}, {2 + 4: b"\x00"}, {2 + 4: b"\xff"}):  # count, first name length 0 / huge
        source = image.forged(image.inode_offset("shortdir"), image.fs.g.inode_size, INODE_CRC_OFFSET,
                              {node.private.fork_offset + k: v for k, v in patch.items()})
        damaged(source, match="short-form")


# --- extent records and bmap B+tree blocks ------------------------------------------------------


def _extent_record_offset(image: Pristine, rel: str) -> int:
    node = image.node(rel)
    assert node.private.format == 2
    return node.private.fork_offset


@pytest.mark.timeout(5)
@pytest.mark.parametrize("image_name", ["v5", "v4"])
@pytest.mark.parametrize("record, match", [
    (bytes(16), "zero blocks"),
    ((0x1FF).to_bytes(8, "big") + b"\xff" * 8, "outside the volume"),  # start block out of range
    (bytes(7) + b"\x01" + b"\xff" * 8, "outside the volume|crosses"),
])
def test_forged_extent_records(request, image_name, record, match):
    image = request.getfixturevalue(image_name)
    start = _extent_record_offset(image, "big.bin")
    source = image.forged(image.inode_offset("big.bin"), image.fs.g.inode_size, INODE_CRC_OFFSET, {start: record})
    damaged(source, match=match)


def _btree_child(image: Pristine, rel: str) -> tuple[int, int]:
    """(byte offset of the root's first pointer, byte offset of the block it points at)."""
    node = image.node(rel)
    inode = node.private
    assert inode.format == 3
    room = (len(inode.fork) - BMDR_HEADER.size) // 16
    ptr_at = inode.fork_offset + BMDR_HEADER.size + room * 8
    fsb = BMBT_PTR.unpack(image.source.pread(ptr_at, 8))[0]
    return ptr_at, image.fs.g.fsb_to_block(fsb) * image.fs.block_size


@pytest.mark.timeout(5)
@pytest.mark.parametrize("byte", [0, 4, 6, 24, 40, 56, 72, 80, 500, 1000])
def test_bmap_block_flip_is_caught_by_its_checksum(v5, byte):
    _ptr, block = _btree_child(v5, "sparse-many")
    damaged(v5.flip(block + byte), match="magic" if byte == 0 else "checksum")


@pytest.mark.timeout(5)
@pytest.mark.parametrize("patch, match", [
    ({0: b"BMAP"}, "magic"),
    ({4: b"\x00\x05"}, "level"),
    ({6: b"\xff\xff"}, "holds"),
    ({6: b"\x00\x00"}, "holds"),
    ({8 + 16: (1).to_bytes(8, "big")}, "belongs elsewhere"),  # blkno
    ({56: (77).to_bytes(8, "big")}, "belongs elsewhere"),  # owner
    ({72: bytes(16)}, "zero blocks"),  # first record
    ({72 + 16: bytes(8) + (1 << 21 | 1).to_bytes(8, "big")}, "out of order|overlapping"),  # second record at 0
])
def test_forged_bmap_block(v5, patch, match):
    _ptr, block = _btree_child(v5, "sparse-many")
    damaged(v5.forged(block, v5.fs.block_size, BTREE_LBLOCK_CRC_OFFSET, {block + k: v for k, v in patch.items()}),
            match=match)


@pytest.mark.timeout(5)
def test_forged_bmap_root(v5):
    node = v5.node("sparse-many")
    fork = node.private.fork_offset
    ptr_at, _block = _btree_child(v5, "sparse-many")
    start = v5.inode_offset("sparse-many")
    size = v5.fs.g.inode_size
    cases = [
        ({fork: b"\x00\x00"}, "level 0"),
        ({fork: b"\x00\x63"}, "max_bmap_depth"),
        ({fork + 2: b"\xff\xff"}, "pointers"),
        ({ptr_at: b"\xff" * 8}, "outside the volume"),
        ({ptr_at: (0).to_bytes(8, "big")}, "magic"),  # the superblock is no tree block
        # the root pointing at the inode's own block: wrong magic, not a loop
        ({ptr_at: ((start // v5.fs.block_size)).to_bytes(8, "big")}, "magic"),
        ({fork: b"\x00\x02"}, "level"),  # the child is a leaf, not level 1
        ({start + k: v for k, v in v5.nextents_patch("sparse-many", 1).items()},
         "declares"),  # fewer extents than the tree holds
    ]
    for patch, match in cases:
        damaged(v5.forged(start, size, INODE_CRC_OFFSET, patch), match=match)


@pytest.mark.timeout(5)
def test_extent_map_bytes_are_bounded(v5, monkeypatch):
    from guestboot import limits
    from guestboot.fs.xfs import bmap

    monkeypatch.setattr(bmap, "LIMITS", limits.Limits(max_map_bytes=3 * v5.fs.block_size))
    fs = xfs.probe(v5.source)
    with pytest.raises(LimitExceeded, match="max_map_bytes"):
        fspath.read_bytes(fs, "sparse-many", 1 << 24)
    monkeypatch.setattr(bmap, "LIMITS", limits.Limits(max_file_runs=100))
    fs = xfs.probe(v5.source)
    with pytest.raises(LimitExceeded, match="max_file_runs"):
        fspath.read_bytes(fs, "sparse-many", 1 << 24)


# --- directory blocks ------------------------------------------------------------------------


@pytest.mark.timeout(5)
@pytest.mark.parametrize("rel", ["blockdir", "leafdir", "nodedir"])
@pytest.mark.parametrize("byte", [0, 4, 8, 40, 64, 65, 80, 200, -8, -1])
def test_directory_block_flip_is_caught_by_its_checksum(v5, rel, byte):
    block = v5.dir_block(rel)
    damaged(v5.flip(block + byte % v5.fs.g.dir_block_size), match="not a directory" if byte == 0 else "checksum")


DIR_CASES = ["magic", "name-length-huge", "name-length-0", "free-0", "free-past-end", "tag", "inode-number", "tail"]


@pytest.mark.timeout(5)
@pytest.mark.parametrize("image_name", ["v5", "v4"])
@pytest.mark.parametrize("rel", ["blockdir", "leafdir"])
@pytest.mark.parametrize("case", DIR_CASES)
def test_forged_directory_blocks(request, image_name, rel, case):
    image = request.getfixturevalue(image_name)
    size = image.fs.g.dir_block_size
    block = image.dir_block(rel)
    raw = image.source.pread(block, size)
    header = 64 if image.crc else 16
    first = block + header  # the "." entry
    tag = first + 16 - 2  # "." takes 16 bytes; its tag closes them
    named = raw.find(b"\x09with-data")
    if named < 0:
        named = raw.find(b"\x0bentry-")
    cases = {
        "magic": ({block: b"XD2Z"}, "not a directory data block"),
        "name-length-huge": ({first + 8: b"\xff"}, "runs past|tag"),
        "name-length-0": ({first + 8: b"\x00"}, "runs past"),
        "free-0": ({first: b"\xff\xff\x00\x00"}, "unused directory space"),
        "free-past-end": ({first: b"\xff\xff\xff\xf8"}, "unused directory space"),
        "tag": ({tag: b"\x12\x34"}, "tag"),
        "inode-number": ({block + named - 8: b"\x00\x00\x00\x00\xff\xff\xff\xff"}, "outside the volume"),
        "tail": ({block + size - 8: b"\x7f\xff\xff\xff"}, "leaf entries"),
    }
    patch, match = cases[case]
    if case == "tail" and rel != "blockdir":
        pytest.skip("only a block directory has a tail")
    assert named > 0
    damaged(image.forged(block, size, DIR3_CRC_OFFSET, patch), match=match)


# --- remote symlinks -------------------------------------------------------------------------


@pytest.mark.timeout(5)
def test_remote_symlink_damage(v5):
    node = v5.node("link-remote", follow=False)
    assert node.private.format == 2
    start = _symlink_runs(v5, node)[0]
    length = v5.fs.block_size
    damaged(v5.flip(start + 20), match="checksum")
    cases = [
        ({start: b"XSLN"}, "magic"),
        ({start + 4: (5).to_bytes(4, "big")}, "expected from 0"),
        ({start + 8: (5000).to_bytes(4, "big")}, "holds bytes|expected"),
        ({start + 32: (1).to_bytes(8, "big")}, "belongs elsewhere"),
    ]
    for patch, match in cases:
        damaged(v5.forged(start, length, SYMLINK_CRC_OFFSET, patch), match=match)


def _symlink_runs(image: Pristine, node) -> list[int]:
    """Byte offsets of a remote symlink's extents, from xfs_db's bmap."""
    out = builder.xfs_db(image.path, f"inode {node.ino}", "bmap")
    starts = []
    for line in out.splitlines():
        fields = line.split()
        if "startblock" in fields:
            fsb = int(fields[fields.index("startblock") + 1])
            starts.append(image.fs.g.fsb_to_block(fsb) * image.fs.block_size)
    return starts


# --- random damage, in a child with a memory cap ---------------------------------------------


def _metadata_offsets(image: Pristine) -> list[tuple[int, int]]:
    ranges = [(0, 512)]
    for rel in ("big.bin", "sparse-many", "nodedir", "leafdir", "blockdir", "shortdir", "link-remote", "files",
                "nested/a"):
        try:
            ranges.append((image.inode_offset(rel), image.fs.g.inode_size))
        except GuestbootError:
            continue
    for rel in ("blockdir", "leafdir", "nodedir", "/"):
        node = image.node(rel)
        if node.private.format != 1:
            ranges.append((image.dir_block(rel), image.fs.g.dir_block_size))
    return ranges


@pytest.mark.timeout(300)
def test_random_flips_under_a_memory_cap(v5, v4, tmp_path):
    """200 random flips in live metadata of each image, each read through completely in a
    child process under RLIMIT_AS: v5 gives the right bytes or an error (checksums); v4
    gives anything but a foreign exception, within 5 s per case."""
    plans = {}
    for name, image in (("v5", v5), ("v4", v4)):
        rng = random.Random(len(name))
        ranges = _metadata_offsets(image)
        plans[name] = (str(image.path), str(image.tree), [
            (start + rng.randrange(length), rng.randrange(1, 256))
            for start, length in (rng.choice(ranges) for _ in range(200))
        ])
    code = f"""
        import sys, time
        sys.path.insert(0, {str(TESTS)!r})
        from pathlib import Path
        import test_fs_xfs_corrupt as t
        from guestboot.errors import GuestbootError
        from guestboot.source import FileSource
        import os
        plans = {plans!r}
        worst = 0.0
        for name, (path, tree, flips) in plans.items():
            base = FileSource(os.open(path, os.O_RDONLY), name=name)
            errors = 0
            for offset, mask in flips:
                source = t.Patched(base, {{offset: bytes([base.pread(offset, 1)[0] ^ mask])}})
                started = time.monotonic()
                try:
                    if name == "v5":
                        t.verify(source, Path(tree))
                    else:
                        t.exercise(source)
                except GuestbootError:
                    errors += 1
                worst = max(worst, time.monotonic() - started)
            print(name, errors)
        print("worst", worst)
    """

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))

    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], preexec_fn=cap, capture_output=True,
                          text=True, timeout=280, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    results = dict(line.split() for line in done.stdout.splitlines())
    assert int(results["v5"]) > 150  # flips in checksummed, live metadata are caught
    assert float(results["worst"]) < 5


# --- the hash index of leaf and node directories ---------------------------------------------


def _index_root(image: Pristine, rel: str) -> int:
    from guestboot.fs.xfs import dirindex

    node = image.node(rel)
    return dirindex.index_source(image.fs, node.private).volume_offset(32 << 30)


def _lookup(source: ByteSource, rel: str, name: bytes):
    fs = xfs.probe(source)
    return fs.lookup(fspath.resolve(fs, rel), name)


@pytest.mark.timeout(5)
@pytest.mark.parametrize("rel", ["leafdir", "nodedir"])
@pytest.mark.parametrize("byte", [8, 12, 20, 40, 56, 64, 70, 100])
def test_index_block_flip_is_caught_by_its_checksum(v5, rel, byte):
    root = _index_root(v5, rel)
    with pytest.raises(CorruptImage, match="magic" if byte == 8 else "checksum"):
        _lookup(v5.flip(root + byte), rel, b"entry-00123")


@pytest.mark.timeout(5)
@pytest.mark.parametrize("image_name", ["v5", "v4"])
@pytest.mark.parametrize("rel", ["leafdir", "nodedir"])
@pytest.mark.parametrize("case", ["magic", "count", "order", "level", "pointer", "address", "forward"])
def test_forged_index_blocks(request, image_name, rel, case):
    image = request.getfixturevalue(image_name)
    root = _index_root(image, rel)
    size = image.fs.g.dir_block_size
    raw = image.source.pread(root, size)
    header = 64 if image.crc else 16
    counts = 56 if image.crc else 12
    magic = int.from_bytes(raw[8:10], "big")
    is_node = magic in (0xFEBE, 0x3EBE)
    if case in ("level", "pointer") and not is_node:
        pytest.skip("a leaf directory's index is one leaf block")
    if case == "forward" and is_node:
        pytest.skip("the root of a node directory has no forward link")
    count = int.from_bytes(raw[counts : counts + 2], "big")
    assert count > 2
    first = header  # first entry: (hash, address or child)
    cases = {
        "magic": ({root + 8: b"\x12\x34"}, "magic"),
        "count": ({root + counts: b"\xff\xff"}, "claims"),
        "order": ({root + first: b"\xff\xff\xff\xff"}, "out of order"),
        "level": ({root + counts + 2: b"\x00\x09"}, "claims|level"),
        "pointer": ({root + first + 4: b"\x00\x00\x00\x07"}, "outside the leaf section"),
        "address": ({}, "past the data section"),
        "forward": ({root: (99999999).to_bytes(4, "big")}, "outside the leaf section|hole"),
    }
    patch, match = cases[case]
    name = b"entry-00123"
    if case == "address":
        if is_node:
            pytest.skip("data addresses live in the leaves")
        # point every entry with the name's hash past the data section
        from guestboot.fs.xfs.dahash import hashname

        target = hashname(name)
        for i in range(count):
            at = root + header + 8 * i
            if int.from_bytes(raw[header + 8 * i : header + 8 * i + 4], "big") == target:
                patch[at + 4] = (0x7FFFFFFF).to_bytes(4, "big")
        assert patch
    if case == "forward":  # the run of the last hash continues into a bogus next leaf
        from guestboot.fs.xfs.dahash import hashname

        before_last = int.from_bytes(raw[header + 8 * (count - 2) : header + 8 * (count - 2) + 4], "big")
        # a name whose hash sorts after the second-to-last entry's: the last entry (made
        # stale, given that hash) keeps the order, and the run goes on past the block
        name = next(n for n in (f"long-name-{i:07d}".encode() for i in range(1_000_000)) if hashname(n) >= before_last)
        patch[root + header + 8 * (count - 1)] = hashname(name).to_bytes(4, "big") + bytes(4)
    source = image.forged(root, size, 12, patch)
    with pytest.raises(CorruptImage, match=match):
        _lookup(source, rel, name)
