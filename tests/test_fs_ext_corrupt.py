"""The ext driver on damaged copies of real images: only GuestbootError, never a hang.

The pristine images come from mke2fs (tests/builders/ext.py, the small tree). Each case
patches bytes of an in-memory copy: the damage is hand-made, the image around it is real.
Structures are located with the driver itself on the pristine image, so every patch hits
the structure it names.
"""

from __future__ import annotations

import os
import random
import struct
from pathlib import Path

import pytest

from builders import ext as builder
from guestboot.errors import CorruptImage, GuestbootError, LimitExceeded
from guestboot.fs import ext
from guestboot.fs import path as fspath
from guestboot.fs.base import FileType
from guestboot.source import ByteSource, BytesSource, Run


class Patched(ByteSource):
    """A copy of ``base`` with some bytes replaced (and the size possibly cut)."""

    def __init__(self, base: BytesSource, patches: dict[int, bytes], size: int | None = None):
        self.base = base
        self.patches = patches
        self.size = base.size if size is None else size
        self.name = "patched"

    def _pread(self, offset: int, length: int) -> bytes:
        data = bytearray(self.base.pread(offset, length))
        for where, new in self.patches.items():
            for i, byte in enumerate(new):
                if offset <= where + i < offset + length:
                    data[where + i - offset] = byte
        return bytes(data)

    def runs(self, offset: int = 0, length: int | None = None):
        length = self._check_range(offset, length)
        if length:
            yield Run(None, offset, length, self.pread(offset, length))


class Pristine:
    """One real image in memory plus the locations of its structures."""

    def __init__(self, path: Path):
        self.source = BytesSource(path.read_bytes(), name=path.name)
        self.fs = ext.probe(self.source)
        self.bs = self.fs.block_size

    def node(self, path: str, follow: bool = True):
        return fspath.resolve(self.fs, path, follow=follow)

    def inode_offset(self, path: str) -> int:
        return self.node(path, follow=False).private.offset

    def dir_block(self, path: str, index: int = 0) -> int:
        node = self.node(path)
        return self.fs.directory_source(node.private).volume_offset(index * self.bs)

    def u32(self, offset: int) -> int:
        return struct.unpack("<I", self.source.pread(offset, 4))[0]

    def patched(self, patches: dict[int, bytes], size: int | None = None) -> Patched:
        return Patched(self.source, patches, size)

    def flip(self, offset: int, mask: int = 0x5A) -> Patched:
        return self.patched({offset: bytes([self.source.data[offset] ^ mask])})


@pytest.fixture(scope="module")
def small_tree(tmp_path_factory) -> Path:
    return builder.tree(tmp_path_factory, "small")


@pytest.fixture(scope="module")
def csum(tmp_path_factory) -> Pristine:
    """ext4, 1 KiB blocks, metadata_csum: every metadata block read is checksummed."""
    return Pristine(builder.image(tmp_path_factory, "ext4-1k", "small"))


@pytest.fixture(scope="module")
def plain(tmp_path_factory) -> Pristine:
    """ext4, 1 KiB blocks, no checksums: damage reaches the structure checks."""
    return Pristine(builder.image(tmp_path_factory, "ext4-1k-nocsum", "small"))


@pytest.fixture(scope="module")
def ext2(tmp_path_factory) -> Pristine:
    """ext2, 1 KiB blocks: indirect block maps."""
    return Pristine(builder.image(tmp_path_factory, "ext2-1k", "small"))


def exercise(source: ByteSource) -> None:
    """Probe and read everything (listings, links, every byte); compare nothing."""
    fs = ext.probe(source)
    if fs is None:
        return
    pending = [fs.root()]
    seen = 0
    while pending:
        directory = pending.pop()
        for name, node in fs.readdir(directory):
            seen += 1
            assert seen < 10_000
            fs.lookup(directory, name)
            if node.type is FileType.DIR:
                if name != b"lost+found":
                    pending.append(node)
            elif node.type is FileType.LNK:
                fs.readlink(node)
            elif node.type is FileType.REG:
                data = fs.open(node)
                for pos in range(0, min(data.size, 1 << 26), 1 << 20):
                    data.pread(pos, min(1 << 20, data.size - pos))


def verify(source: ByteSource, tree: Path) -> None:
    """Probe and read everything through paths, asserting it equals the tree."""
    fs = ext.probe(source)
    assert fs is not None
    for top, dirs, files in os.walk(tree):
        rel = os.path.relpath(top, tree)
        here = "/" if rel == "." else "/" + rel
        listing = sorted(name for name, _ in fspath.listdir(fs, here) if not (here == "/" and name == b"lost+found"))
        assert listing == sorted(os.fsencode(n) for n in dirs + files)
        for name in dirs + files:
            host = Path(top) / name
            inner = f"{here.rstrip('/')}/{name}"
            if host.is_symlink():
                assert fs.readlink(fspath.resolve(fs, inner, follow=False)) == os.fsencode(os.readlink(host))
            elif host.is_file():
                assert fspath.read_bytes(fs, inner, 1 << 27) == host.read_bytes(), inner


def damaged(source: ByteSource) -> None:
    """The damage must be reported as a GuestbootError somewhere while reading everything."""
    with pytest.raises(GuestbootError):
        exercise(source)


def survives(source: ByteSource) -> None:
    """Any outcome but a foreign exception (silently different data is possible without
    checksums)."""
    try:
        exercise(source)
    except GuestbootError:
        pass


# --- sanity: the pristine copies read back -------------------------------------------------


def test_pristine_small_images_read_back(csum, plain, ext2, small_tree):
    for image in (csum, plain, ext2):
        verify(image.source, small_tree)


# --- truncation -----------------------------------------------------------------------------


@pytest.mark.timeout(5)
@pytest.mark.parametrize("cut", [0, 1024, 2047, 2048, 4096, 65536, "half", "last-block"])
def test_truncated_images(csum, ext2, cut):
    for image in (csum, ext2):
        size = {"half": image.source.size // 2, "last-block": image.source.size - 1024}.get(cut, cut)
        source = image.patched({}, size=size)
        if size < 2048:
            assert ext.probe(source) is None
        else:
            with pytest.raises(CorruptImage, match="do not fit"):
                ext.probe(source)


# --- superblock and group descriptors ---------------------------------------------------------

SUPER_FIELDS = [0x00, 0x04, 0x14, 0x18, 0x1C, 0x20, 0x28, 0x4C, 0x58, 0x5C, 0x60, 0x64, 0x68, 0xEC, 0xFE, 0x160]


@pytest.mark.timeout(5)
@pytest.mark.parametrize("field", SUPER_FIELDS + [0x38, 0x3FC])
def test_superblock_flip_is_caught_by_its_checksum(csum, field):
    source = csum.flip(1024 + field)
    if field == 0x38:  # the magic: not ext any more
        assert ext.probe(source) is None
    else:
        with pytest.raises(GuestbootError):
            ext.probe(source)


@pytest.mark.timeout(5)
@pytest.mark.parametrize("field", SUPER_FIELDS)
@pytest.mark.parametrize("mask", [0x01, 0x80, 0xFF])
def test_superblock_flip_without_checksums(plain, ext2, field, mask):
    for image in (plain, ext2):
        survives(image.flip(1024 + field, mask))


def _group_desc(image: Pristine) -> int:
    return (1024 // image.bs + 1) * image.bs  # the first descriptor block follows the superblock


@pytest.mark.timeout(5)
@pytest.mark.parametrize("byte", [8, 9, 10, 11, 30])
def test_group_descriptor_flip(csum, plain, ext2, byte):
    damaged(csum.flip(_group_desc(csum) + byte))
    for image in (plain, ext2):
        survives(image.flip(_group_desc(image) + byte))
    # an inode table past the end of the volume
    far = struct.pack("<I", 0x7FFFFFF0)
    damaged(plain.patched({_group_desc(plain) + 8: far}))
    damaged(ext2.patched({_group_desc(ext2) + 8: far}))


# --- inodes -------------------------------------------------------------------------------------


@pytest.mark.timeout(5)
@pytest.mark.parametrize("field", [0x00, 0x04, 0x07, 0x20, 0x22, 0x28, 0x2C, 0x34, 0x40, 0x6C, 0x80])
def test_inode_of_a_known_file(csum, plain, ext2, field):
    for path in ("/big.bin", "/sparse-many", "/link-slow", "/nested"):
        damaged(csum.flip(csum.inode_offset(path) + field))
        for image in (plain, ext2):
            survives(image.flip(image.inode_offset(path) + field))
            survives(image.flip(image.inode_offset(path) + field, 0xFF))


@pytest.mark.timeout(5)
def test_inode_numbers_and_sizes_out_of_range(plain, ext2):
    for image in (plain, ext2):
        big = image.inode_offset("/big.bin")
        # size of 2^63: reading runs into holes and the bounds, never a hang (capped read)
        survives(image.patched({big + 0x6C: struct.pack("<I", 0x80000000)}))
        # a directory entry pointing at inode 0xFFFFFFF0
        block = image.dir_block("/nested")
        damaged(image.patched({block + 24: struct.pack("<I", 0xFFFFFFF0)}))  # after "." and ".."
        # the root inode made a regular file
        root = image.fs.root().private.offset
        damaged(image.patched({root: struct.pack("<H", 0x81A4)}))


# --- extent trees -------------------------------------------------------------------------------


def _index_block(image: Pristine) -> tuple[int, int]:
    """(byte offset of the level-1 index block of /sparse-many, its block number)."""
    inode = image.node("/sparse-many").private
    header = struct.unpack_from("<HHHH", inode.i_block)
    assert header[0] == 0xF30A and header[3] == 2  # the small tree still has depth 2
    lo, hi = struct.unpack_from("<IH", inode.i_block, 12 + 4)
    block = (hi << 32) | lo
    return block * image.bs, block


@pytest.mark.timeout(5)
def test_extent_index_block_damage(csum, plain):
    offset, block = _index_block(plain)
    cases = {
        "magic": {offset: b"\x0b\xf3"},
        "entries above max": {offset + 2: struct.pack("<H", 0xFFFF)},
        "depth": {offset + 6: struct.pack("<H", 3)},
        "self reference": {offset + 12 + 4: struct.pack("<IH", block, 0)},
        "same leaf twice": {offset + 24 + 4: plain.source.pread(offset + 12 + 4, 6)},
        "index out of order": {offset + 24: struct.pack("<I", 0)},
        "leaf past the end": {offset + 12 + 4: struct.pack("<IH", 0xFFFFFFF0, 0xFFFF)},
    }
    for name, patch in cases.items():
        with pytest.raises(CorruptImage):
            exercise(plain.patched(patch))
    coffset, _ = _index_block(csum)
    damaged(csum.flip(coffset + 12))  # checksummed: any flip


@pytest.mark.timeout(5)
def test_extent_root_damage(plain):
    inode = plain.inode_offset("/sparse-many") + 0x28
    with pytest.raises(LimitExceeded, match="max_extent_depth"):
        exercise(plain.patched({inode + 6: struct.pack("<H", 9)}))
    with pytest.raises(CorruptImage):
        exercise(plain.patched({inode + 6: struct.pack("<H", 1)}))  # depth 1 over level-1 nodes
    with pytest.raises(CorruptImage):
        exercise(plain.patched({inode + 4: struct.pack("<H", 5)}))  # 5 entries do not fit in i_block
    big = plain.inode_offset("/big.bin") + 0x28
    # a leaf extent that overlaps its predecessor, and one past the volume
    leaf = plain.node("/big.bin").private.i_block
    if struct.unpack_from("<H", leaf, 2)[0] >= 2:
        with pytest.raises(CorruptImage):
            exercise(plain.patched({big + 24: struct.pack("<I", 0)}))
    with pytest.raises(CorruptImage):
        exercise(plain.patched({big + 12 + 6: struct.pack("<HI", 0xFFFF, 0xFFFFFFFF)}))


@pytest.mark.timeout(5)
def test_indirect_map_damage(ext2):
    big = ext2.node("/big.bin").private
    pointers = struct.unpack("<15I", big.i_block)
    assert pointers[12] and pointers[13]  # single and double indirect in use
    base = big.offset + 0x28
    with pytest.raises(CorruptImage):
        exercise(ext2.patched({base + 4 * 12: struct.pack("<I", 0xFFFFFFFF)}))
    # an indirect block that points at itself: a wrong block map, but bounded
    survives(ext2.patched({pointers[13] * ext2.bs: struct.pack("<I", pointers[13])}))
    survives(ext2.patched({base + 4 * 13: struct.pack("<I", pointers[12])}))
    with pytest.raises(CorruptImage):
        exercise(ext2.patched({pointers[12] * ext2.bs + 8: struct.pack("<I", 0xFFFFFF00)}))


@pytest.mark.timeout(5)
def test_indirect_block_shared_by_a_hostile_map_is_caught(ext2):
    """A triple-indirect block whose pointers all name one double-indirect block whose
    pointers all name one zero block: 256 * 256 scans of empty tables before the first
    data block (1024^3 pointer slots with 4 KiB blocks). A block reached twice ends it."""
    big = ext2.node("/big.bin").private
    pointers = struct.unpack("<15I", big.i_block)
    per = ext2.bs // 4
    triple, double = pointers[0], pointers[1]  # two of the file's own data blocks
    data = ext2.source.data
    zero = next(b for b in range(64, len(data) // ext2.bs) if not any(data[b * ext2.bs : (b + 1) * ext2.bs]))
    source = ext2.patched({
        big.offset + 0x28: struct.pack("<15I", *[0] * 14, triple),
        big.offset + 0x6C: struct.pack("<I", 0x1000),  # a size of 2^44 bytes: the whole triple range
        triple * ext2.bs: struct.pack(f"<{per}I", *[double] * per),
        double * ext2.bs: struct.pack(f"<{per}I", *[zero] * per),
    })
    fs = ext.probe(source)
    with pytest.raises(CorruptImage, match="reached twice"):
        fspath.open_file(fs, "/big.bin").pread(0, 4096)


@pytest.mark.timeout(5)
def test_block_map_tree_bytes_are_bounded(ext2, plain, monkeypatch):
    """max_map_bytes caps the indirect and extent-tree blocks read to map one file."""
    from guestboot.fs.ext import blockmap

    monkeypatch.setattr(blockmap, "LIMITS", blockmap.LIMITS._replace(max_map_bytes=ext2.bs))
    for image, path in ((ext2, "/big.bin"), (plain, "/sparse-many")):
        data = fspath.open_file(ext.probe(image.source), path)
        with pytest.raises(LimitExceeded, match="max_map_bytes"):
            data.pread(0, data.size)


@pytest.mark.timeout(5)
def test_extents_past_the_end_of_a_file_are_not_walked(plain, monkeypatch):
    """/sparse-many (an extent tree of depth 2) altered: its first leaf rewritten to hold
    contiguous one-block extents (which the mapper merges), and its size cut to one
    block. Reading the file needs the index block and the first leaf only: the merging
    stops at the file's end instead of running on through the leaf and into the next
    one. Shown with max_map_bytes set to those two blocks."""
    from guestboot.fs.ext import blockmap

    index_offset, _ = _index_block(plain)
    lo, hi = struct.unpack_from("<IH", plain.source.pread(index_offset + 12 + 4, 6))
    leaf = ((hi << 32) | lo) * plain.bs
    magic, entries = struct.unpack_from("<HH", plain.source.pread(leaf, 4))
    assert magic == 0xF30A and entries >= 8
    start_hi, start_lo = struct.unpack_from("<HI", plain.source.pread(leaf + 12 + 6, 6))
    first = (start_hi << 32) | start_lo
    extents = b"".join(struct.pack("<IHHI", i, 1, 0, first + i) for i in range(entries))
    inode = plain.inode_offset("/sparse-many")
    source = plain.patched({leaf + 12: extents, inode + 0x4: struct.pack("<I", plain.bs),
                            inode + 0x6C: struct.pack("<I", 0)})
    monkeypatch.setattr(blockmap, "LIMITS", blockmap.LIMITS._replace(max_map_bytes=2 * plain.bs))
    data = fspath.open_file(ext.probe(source), "/sparse-many")
    assert data.size == plain.bs
    assert data.pread(0, plain.bs) == plain.source.pread(first * plain.bs, plain.bs)


@pytest.mark.timeout(5)
def test_htree_walk_over_equal_hashes_is_bounded(plain):
    """Every index entry of a three-level hash tree (large_dir) carries the looked-up hash
    with the continuation bit: the leaf walk would visit 124 * 127 * 127 leaves of a
    directory that claims 2^40 bytes. It stops at max_dir_bytes."""
    from guestboot.fs.ext import dirent

    many = plain.node("/many").private
    bs = plain.bs
    root, node1, node2 = (plain.dir_block("/many", i) for i in range(3))
    name = b"no-such-name"
    version = plain.source.data[root + 0x18 + 4] + (3 if plain.fs.g.unsigned_hash else 0)
    again = dirent.name_hash(name, version, plain.fs.g.hash_seed) | 1

    def index(room: int, child: int) -> bytes:
        return struct.pack("<HHI", room, room, child) + struct.pack("<II", again, child) * (room - 1)

    empty_entry = struct.pack("<IHBB", 0, bs, 0, 0)
    source = plain.patched({
        1024 + 0x60: struct.pack("<I", plain.fs.g.incompat | 0x4000),  # large_dir: two index levels
        many.offset + 0x6C: struct.pack("<I", 0x100),
        root + 0x18 + 6: b"\x02",
        root + 0x20: index((bs - 0x20) // 8, 1),
        node1: empty_entry + index((bs - 8) // 8, 2),
        node2: empty_entry + index((bs - 8) // 8, 3),
    })
    with pytest.raises(LimitExceeded, match="max_dir_bytes"):
        fspath.resolve(ext.probe(source), b"/many/" + name)


# --- directories and hash trees --------------------------------------------------------------------


@pytest.mark.timeout(5)
@pytest.mark.parametrize("byte", [0, 4, 5, 6, 7, 12, 16, 17, 18])
def test_directory_block_damage(csum, plain, ext2, byte):
    damaged(csum.flip(csum.dir_block("/nested") + byte))
    for image in (plain, ext2):
        survives(image.flip(image.dir_block("/nested") + byte))
        survives(image.flip(image.dir_block("/") + byte, 0xFF))
    for image in (plain, ext2):
        # rec_len 0, rec_len past the block, name longer than the entry
        for patch in ({4: b"\0\0"}, {4: struct.pack("<H", 4000)}, {16: b"\xff"}):
            block = image.dir_block("/nested")
            damaged(image.patched({block + k: v for k, v in patch.items()}))


@pytest.mark.timeout(5)
def test_htree_root_damage(plain, csum):
    many = plain.node("/many").private
    assert many.flags & 0x1000
    root = plain.dir_block("/many")
    cases = {
        "info length": {root + 0x18 + 5: b"\x00"},
        "levels": {root + 0x18 + 6: b"\x05"},
        "count above limit": {root + 0x20 + 2: struct.pack("<H", 0xFFFF)},
        "zero count": {root + 0x20 + 2: b"\0\0"},
        "first block past the directory": {root + 0x20 + 4: struct.pack("<I", 0x0FFFFFF0)},
        "unknown hash": {root + 0x18 + 4: b"\x09"},  # falls back to a linear scan
    }
    names = [name for name, _ in ext.probe(plain.source).readdir(plain.node("/many"))]
    for case, patch in cases.items():
        fs = ext.probe(plain.patched(patch))
        failures = 0
        for name in names:
            try:
                fspath.resolve(fs, b"/many/" + name)
            except GuestbootError:
                failures += 1
        assert (failures == 0) == (case == "unknown hash"), case
    # the hash of the second index entry made huge: lookups land in the wrong leaf -> not found
    with pytest.raises(GuestbootError):
        for i in range(300):
            fs = ext.probe(plain.patched({root + 0x28: struct.pack("<I", 0)}))
            fspath.resolve(fs, f"/many/entry-{i:04d}")
    damaged(csum.flip(csum.dir_block("/many", 1) + 20))


@pytest.mark.timeout(5)
def test_symlink_loop_and_long_symlink(plain):
    fs = ext.probe(plain.source)
    with pytest.raises(LimitExceeded):
        fspath.resolve(fs, "/loop-a/x")
    # a slow symlink that claims a huge target
    link = plain.inode_offset("/link-slow")
    fs = ext.probe(plain.patched({link + 4: struct.pack("<I", 1 << 20)}))
    with pytest.raises(LimitExceeded, match="max_symlink_size"):
        fspath.resolve(fs, "/link-slow")


# --- seeded random damage -----------------------------------------------------------------------------


def _metadata_ranges(image: Pristine) -> list[tuple[int, int]]:
    """(start, length) of the metadata the reads go through."""
    fs = image.fs
    bs = image.bs
    table = fs.inode_table(0) * bs
    used = 512 * fs.g.inode_size  # the small tree's inodes all live at the start of group 0
    ranges = [(1024, 1024), (_group_desc(image), bs), (table, used)]
    for path in ("/", "/nested", "/nested/a", "/smalldir"):
        ranges.append((image.dir_block(path), bs))
    for index in range(3):
        ranges.append((image.dir_block("/many", index), bs))
    if image.node("/sparse-many").private.flags & 0x80000:
        ranges.append((_index_block(image)[0], bs))
    return ranges


def _random_flips(image: Pristine, count: int, seed: int):
    rng = random.Random(seed)
    ranges = _metadata_ranges(image)
    for _ in range(count):
        start, length = rng.choice(ranges)
        yield start + rng.randrange(length), rng.randrange(1, 256)


@pytest.mark.timeout(180)
def test_random_flips_give_correct_bytes_or_an_error(csum, small_tree):
    errors = 0
    for offset, mask in _random_flips(csum, 200, seed=1):
        try:
            verify(csum.flip(offset, mask), small_tree)
        except GuestbootError:
            errors += 1
    assert errors > 50  # most flips land in checksummed, live metadata


@pytest.mark.timeout(180)
def test_random_flips_without_checksums_stay_in_the_error_tree(plain, ext2):
    for image, seed in ((plain, 2), (ext2, 3)):
        for offset, mask in _random_flips(image, 100, seed):
            survives(image.flip(offset, mask))
