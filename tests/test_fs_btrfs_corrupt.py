"""The btrfs driver on damaged copies of real images: only GuestbootError, never a hang.

The pristine images come from mkfs.btrfs (tests/builders/btrfs.py, the small tree; DUP
metadata, so every tree block has two copies). Each case patches bytes over the real
image: the damage is hand-made, the image around it is real. Structures are located with
the driver itself on the pristine image, so every patch hits what it names. Where a case
must reach the structure checks behind the checksums, the patched block's CRC-32C is
recomputed ("resealed"), as a forger would.
"""

from __future__ import annotations

import os
import random
import resource
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from builders import btrfs as builder
from guestboot import crc32c
from guestboot.errors import CorruptImage, GuestbootError, LimitExceeded, Unsupported
from guestboot.fs import btrfs
from guestboot.fs import path as fspath
from guestboot.fs.base import FileType
from guestboot.fs.btrfs.layout import (
    DIR_ITEM_KEY,
    EXTENT_DATA_KEY,
    FILE_EXTENT_HEAD,
    HEADER_SIZE,
    ITEM,
    KEY_PTR,
    MAX_KEY_OFFSET,
    SUPER_OFFSETS,
)
from guestboot.fs.btrfs.tree import Budget
from guestboot.source import ByteSource, FileSource, Run
from prereq import unavailable

TESTS = Path(__file__).parent
MEMORY_CAP = 768 * 1024 * 1024  # RLIMIT_AS of the campaign's child


class Patched(ByteSource):
    """The image at ``base`` with some bytes replaced (and the size possibly cut)."""

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

    def __init__(self, path: Path):
        self.path = path
        self.fd = os.open(path, os.O_RDONLY)
        self.source = FileSource(self.fd, name=path.name)
        self.fs = btrfs.probe(self.source)
        self.nodesize = self.fs.trees.nodesize

    def patched(self, patches: dict[int, bytes], size: int | None = None) -> Patched:
        return Patched(self.source, patches, size)

    def copies(self, logical: int) -> list[int]:
        return self.fs.chunks.copies(logical, self.nodesize)[1]

    def leaf_with(self, tree: int, key: tuple[int, int, int]) -> tuple[int, int]:
        """(logical address, item index) of the leaf item with ``key`` in subvolume/tree ``tree``."""
        root = self.fs.subvolume(tree)
        logical, level = root.bytenr, root.level
        while True:
            block = self.fs.trees.block(logical, level, Budget("test"))
            if level == 0:
                return logical, block.keys.index(key)
            index = max(i for i, k in enumerate(block.keys) if k <= key)
            logical, level = block.refs[index][0], level - 1

    def block(self, logical: int) -> bytes:
        return self.source.pread(self.copies(logical)[0], self.nodesize)

    def sealed(self, logical: int, change) -> dict[int, bytes]:
        """Patches that put ``change(bytearray of the block)`` with a valid checksum into
        every copy of the tree block at ``logical``."""
        raw = bytearray(self.block(logical))
        change(raw)
        raw[0:4] = struct.pack("<I", crc32c.crc32c(bytes(raw[32:])))
        return {physical: bytes(raw) for physical in self.copies(logical)}

    def node(self, path: str, follow: bool = True):
        return fspath.resolve(self.fs, path, follow=follow)


@pytest.fixture(scope="module")
def small_tree(tmp_path_factory) -> Path:
    return builder.tree(tmp_path_factory, "small")


@pytest.fixture(scope="module")
def plain(tmp_path_factory) -> Pristine:
    if not Path("/usr/sbin/mkfs.btrfs").exists() and not Path("/sbin/mkfs.btrfs").exists():
        unavailable("mkfs.btrfs (btrfs-progs) is not installed")
    image = Pristine(builder.image(tmp_path_factory, "rootdir", "small"))
    yield image
    os.close(image.fd)


@pytest.fixture(scope="module")
def zstd(tmp_path_factory) -> Pristine:
    if why := builder.can_mount():
        unavailable(why)
    image = Pristine(builder.image(tmp_path_factory, "zstd", "small"))
    yield image
    os.close(image.fd)


def exercise(source: ByteSource) -> None:
    """Probe and read everything (listings, links, every byte); compare nothing."""
    fs = btrfs.probe(source)
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
                pending.append(node)
            elif node.type is FileType.LNK:
                fs.readlink(node)
            elif node.type is FileType.REG:
                data = fs.open(node)
                for pos in range(0, min(data.size, 1 << 26), 1 << 20):
                    data.pread(pos, min(1 << 20, data.size - pos))


def verify(source: ByteSource, tree: Path) -> list[str]:
    """Probe and read everything through paths, asserting it equals the tree; the warnings."""
    fs = btrfs.probe(source)
    assert fs is not None
    for top, dirs, files in os.walk(tree):
        rel = os.path.relpath(top, tree)
        here = "/" if rel == "." else "/" + rel
        assert sorted(name for name, _ in fspath.listdir(fs, here)) == sorted(os.fsencode(n) for n in dirs + files)
        for name in files:
            host = Path(top) / name
            inner = f"{here.rstrip('/')}/{name}"
            if host.is_symlink():
                assert fs.readlink(fspath.resolve(fs, inner, follow=False)) == os.fsencode(os.readlink(host))
            else:
                assert fspath.read_bytes(fs, inner, 1 << 27) == host.read_bytes(), inner
    return fs.warnings


def damaged(source: ByteSource, kind: type[GuestbootError] = GuestbootError, match: str | None = None):
    with pytest.raises(kind, match=match) as info:
        exercise(source)
    assert "\n" not in str(info.value)
    return info.value


def test_pristine_small_images_read_back(plain, zstd, small_tree):
    assert verify(plain.source, small_tree) == []
    assert verify(zstd.source, small_tree) == []


# --- truncation and the superblock ---------------------------------------------------------------


@pytest.mark.timeout(5)
@pytest.mark.parametrize("cut", [0, 65536, 65536 + 4095, 1 << 20, 22 << 20, "half", "mirror", "last"])
def test_truncated_images(plain, cut):
    size = {"half": plain.source.size // 2, "mirror": SUPER_OFFSETS[1] + 100,
            "last": plain.source.size - 4096}.get(cut, cut)
    source = plain.patched({}, size=size)
    if size < SUPER_OFFSETS[0] + 4096:
        assert btrfs.probe(source) is None
        return
    error = damaged(source, CorruptImage)
    assert error.offset is not None or "past the end" in str(error)


@pytest.mark.timeout(5)
@pytest.mark.parametrize("field", [0x20, 0x30, 0x50, 0x58, 0x90, 0x94, 0xA0, 0xC6, 0x12B, 0x32B, 0xFFF])
def test_damaged_primary_superblock_falls_back_to_its_mirror(plain, small_tree, field):
    """A flipped byte breaks the primary's checksum: the mirror at 64 MiB is used, said."""
    offset = SUPER_OFFSETS[0] + field
    original = plain.source.pread(offset, 1)[0]
    warnings = verify(plain.patched({offset: bytes([original ^ 0x5A])}), small_tree)
    assert len(warnings) == 1 and "primary superblock damaged" in warnings[0] and "0x4000000" in warnings[0]


@pytest.mark.timeout(5)
def test_superblock_and_mirror_damaged(plain):
    patches = {SUPER_OFFSETS[0] + 0x94: b"\x11", SUPER_OFFSETS[1] + 0x94: b"\x11"}
    error = damaged(plain.patched(patches), CorruptImage, "checksum mismatch")
    assert error.offset == SUPER_OFFSETS[0]


def _resealed_super(plain: Pristine, changes: dict[int, bytes]) -> dict[int, bytes]:
    """Both superblock copies with ``changes`` (offsets within the superblock), checksums valid."""
    out = {}
    for base in SUPER_OFFSETS[:2]:
        raw = bytearray(plain.source.pread(base, 4096))
        for at, value in changes.items():
            raw[at : at + len(value)] = value
        raw[0:4] = struct.pack("<I", crc32c.crc32c(bytes(raw[32:])))
        out[base] = bytes(raw)
    return out


@pytest.mark.timeout(5)
@pytest.mark.parametrize("change,kind,match", [
    ({0x94: struct.pack("<I", 12345)}, CorruptImage, "node size"),
    ({0x90: struct.pack("<I", 0)}, CorruptImage, "sector size"),
    ({0xA0: struct.pack("<I", 4000)}, CorruptImage, "system chunk array"),
    ({0xA0: struct.pack("<I", 0)}, CorruptImage, "empty system chunk array"),
    ({0xA0: struct.pack("<I", 20)}, CorruptImage, "chunk item cut short"),
    ({0xC6: b"\x09"}, CorruptImage, "tree levels"),
    ({0xBC: struct.pack("<Q", 1 << 12)}, Unsupported, "zoned"),
    ({0xBC: struct.pack("<Q", 1 << 40)}, Unsupported, "unknown bit"),
    ({0xC4: struct.pack("<H", 9)}, Unsupported, "checksum type 9"),
    ({0x50: struct.pack("<Q", 1 << 50)}, CorruptImage, "in no chunk"),
    ({0x58: struct.pack("<Q", 4096 * 3)}, CorruptImage, "in no chunk"),
    ({0xC9 + 8: struct.pack("<Q", 1 << 40)}, CorruptImage, "does not fit"),
    ({0xC9: struct.pack("<Q", 7)}, Unsupported, "device 1, which is missing"),
])
def test_resealed_superblock_fields(plain, change, kind, match):
    damaged(plain.patched(_resealed_super(plain, change)), kind, match)


# --- tree blocks --------------------------------------------------------------------------------


def _small_txt_leaf(plain: Pristine) -> tuple[int, int]:
    ino = plain.node("/small.txt").private.objectid
    return plain.leaf_with(5, (ino, EXTENT_DATA_KEY, 0))


@pytest.mark.timeout(5)
def test_one_bad_copy_of_a_tree_block_reads_from_the_other(plain, small_tree):
    """DUP metadata: a damaged first copy is passed over, the second copy is read."""
    logical, _index = _small_txt_leaf(plain)
    first, second = plain.copies(logical)
    assert verify(plain.patched({first + 200: b"\xff\xfe"}), small_tree) == []
    error = damaged(plain.patched({first + 200: b"\xff\xfe", second + 200: b"\xff\xfe"}), CorruptImage,
                    "checksum mismatch")
    assert error.offset == first


def _leaf_item(raw: bytearray, index: int, field: str, value: int) -> None:
    pos = HEADER_SIZE + index * ITEM.size
    objectid, type_, offset, data_offset, size = ITEM.unpack_from(raw, pos)
    fields = dict(objectid=objectid, type=type_, offset=offset, data_offset=data_offset, size=size)
    fields[field] = value
    ITEM.pack_into(raw, pos, *fields.values())


@pytest.mark.timeout(5)
@pytest.mark.parametrize("what,change,match", [
    ("nritems", lambda raw, i: raw.__setitem__(slice(0x60, 0x64), struct.pack("<I", 100_000)), "do not fit"),
    ("level", lambda raw, i: raw.__setitem__(0x64, 1), "level 1, expected 0"),
    ("bytenr", lambda raw, i: raw.__setitem__(slice(0x30, 0x38), struct.pack("<Q", 4096)), "header says"),
    ("fsid", lambda raw, i: raw.__setitem__(0x20, raw[0x20] ^ 1), "another file system"),
    ("data offset", lambda raw, i: _leaf_item(raw, i, "data_offset", 1 << 30), "outside the leaf"),
    ("data size", lambda raw, i: _leaf_item(raw, i, "size", 1 << 20), "outside the leaf"),
    ("key order", lambda raw, i: _leaf_item(raw, i, "objectid", 1 << 62), "out of order"),
])
def test_resealed_leaf_damage(plain, what, change, match):
    logical, index = _small_txt_leaf(plain)
    damaged(plain.patched(plain.sealed(logical, lambda raw: change(raw, index))), CorruptImage, match)


def _root_node(plain: Pristine, levels_wanted: int = 1) -> int:
    root = plain.fs.subvolume(5)
    assert root.level >= levels_wanted, "the small tree's FS tree has an index node"
    return root.bytenr


@pytest.mark.timeout(5)
@pytest.mark.parametrize("target", ["self", "nowhere", "unaligned", "leaf-of-other-key"])
def test_resealed_node_pointers(plain, target):
    """Pointers to itself (a loop: the level check), outside every chunk, unaligned, or to a
    child whose first key is not the pointer's key."""
    logical = _root_node(plain)
    raw = plain.block(logical)
    level = raw[0x64]
    child = {"self": logical, "nowhere": 1 << 52, "unaligned": logical + 1}.get(target)

    def change(block: bytearray) -> None:
        objectid, type_, offset, pointer, generation = KEY_PTR.unpack_from(block, HEADER_SIZE)
        if child is None:  # the second child under the first pointer's key
            pointer = KEY_PTR.unpack_from(block, HEADER_SIZE + KEY_PTR.size)[3]
        KEY_PTR.pack_into(block, HEADER_SIZE, objectid, type_, offset, pointer if child is None else child,
                          generation)

    assert level >= 1
    error = damaged(plain.patched(plain.sealed(logical, change)), CorruptImage)
    assert error.offset is not None or "logical address" in str(error) or "aligned" in str(error)


@pytest.mark.timeout(5)
def test_tree_walks_are_bounded(plain, monkeypatch):
    """A listing that visits more tree bytes than max_tree_bytes stops with LimitExceeded."""
    from guestboot.fs.btrfs import tree

    fs = btrfs.probe(plain.source)
    assert fs.subvolume(5).level >= 1  # a root node, then leaves: two blocks for any walk
    monkeypatch.setattr(tree, "LIMITS", tree.LIMITS._replace(max_tree_bytes=plain.nodesize))
    with pytest.raises(LimitExceeded, match="max_tree_bytes"):
        list(fs.readdir(fspath.resolve(fs, "/many")))


# --- items ---------------------------------------------------------------------------------------


def _item_data_offset(plain: Pristine, tree: int, key) -> int:
    root = plain.fs.subvolume(tree)
    for found_key, _raw, offset in plain.fs.trees.items(root.bytenr, root.level, key, key, Budget("test")):
        return offset
    raise AssertionError(key)


def _patch_item(plain: Pristine, key, at: int, value: bytes) -> Patched:
    """The item ``key`` of the top-level FS tree with ``value`` at byte ``at`` of its data."""
    logical, index = plain.leaf_with(5, key)
    data_at = _item_data_offset(plain, 5, key) - plain.copies(logical)[0]

    def change(raw: bytearray) -> None:
        raw[data_at + at : data_at + at + len(value)] = value

    return plain.patched(plain.sealed(logical, change))


@pytest.mark.timeout(5)
@pytest.mark.parametrize("path,at,value,kind,match", [
    ("/big.bin", 20, b"\x09", CorruptImage, "file extent type 9"),
    ("/big.bin", 16, b"\x07", Unsupported, "compression type 7"),
    ("/big.bin", 17, b"\x01", Unsupported, "encrypted"),
    ("/big.bin", FILE_EXTENT_HEAD, struct.pack("<Q", 1 << 50), CorruptImage, "in no chunk"),
    ("/big.bin", FILE_EXTENT_HEAD + 16, struct.pack("<Q", 1 << 40), CorruptImage, "uses bytes"),
    ("/big.bin", FILE_EXTENT_HEAD + 24, struct.pack("<Q", 0), CorruptImage, "extent of 0 bytes"),
    ("/files/text-2047", 16, b"\x03", GuestbootError, None),  # inline data claimed zstd: garbage
    ("/files/text-2047", 8, struct.pack("<Q", 1 << 30), None, None),  # ram_bytes of an uncompressed inline: unused
])
def test_resealed_file_extent_items(plain, path, at, value, kind, match):
    ino = plain.node(path).private.objectid
    source = _patch_item(plain, (ino, EXTENT_DATA_KEY, 0), at, value)
    if kind is None:
        exercise(source)
    else:
        damaged(source, kind, match)


@pytest.mark.timeout(5)
def test_resealed_inline_compressed_extent_claiming_a_huge_size(plain):
    ino = plain.node("/files/text-2047").private.objectid
    source = _patch_item(plain, (ino, EXTENT_DATA_KEY, 0), 8, struct.pack("<QB", 1 << 30, 3))
    damaged(source, LimitExceeded, "max_compressed_extent")


@pytest.mark.timeout(5)
@pytest.mark.parametrize("at,value,match", [
    (27, struct.pack("<H", 60000), "does not fit"),  # name_len
    (25, struct.pack("<H", 60000), "does not fit"),  # data_len
    (8, b"\x30", "key type 48"),  # location key type
    (0, struct.pack("<Q", 999_999), "no inode 999999"),  # location objectid
    (0, struct.pack("<Q", 4242) + bytes([132]), "subvolume 4242 has no root item"),
])
def test_resealed_directory_items(plain, at, value, match):
    from guestboot.fs.btrfs.filesystem import name_hash

    key = (256, DIR_ITEM_KEY, name_hash(b"small.txt"))
    damaged(_patch_item(plain, key, at, value), CorruptImage, match)


# --- compressed data (no checksums on data: the codecs must reject, never run away) -----------


@pytest.mark.timeout(5)
@pytest.mark.parametrize("where", [0, 5, 100, 1000])
def test_damaged_compressed_extent_data(zstd, where):
    fs = zstd.fs
    node = fspath.resolve(fs, "/big.bin")
    ino = node.private.objectid
    root = fs.subvolume(5)
    items = list(fs.trees.items(root.bytenr, root.level, (ino, EXTENT_DATA_KEY, 0),
                                (ino, EXTENT_DATA_KEY, MAX_KEY_OFFSET), Budget("test")))
    disk = None
    for _key, raw, _offset in items:
        if raw[16] == 3:  # zstd
            disk = struct.unpack_from("<Q", raw, FILE_EXTENT_HEAD)[0]
            break
    assert disk is not None
    physical = fs.chunks.copies(disk, 1)[1][0]
    source = zstd.patched({physical + where: b"\xde\xad\xbe\xef"})
    try:
        exercise(source)
    except GuestbootError as exc:
        assert "zstd" in str(exc)


# --- a random campaign in a child under an address-space cap ---------------------------------------


@pytest.mark.timeout(120)
def test_random_resealed_damage_campaign(plain):
    """150 random byte flips in resealed blocks of the top-level FS tree: each read of
    everything ends in a typed error or succeeds, within 5 s each, in a child whose address
    space is capped."""
    code = textwrap.dedent(f"""
        import sys, time, random
        sys.path.insert(0, {str(TESTS)!r})
        import test_fs_btrfs_corrupt as t
        from guestboot.errors import GuestbootError
        from guestboot.fs.btrfs.tree import Budget
        from pathlib import Path
        image = t.Pristine(Path({str(plain.path)!r}))
        fs = image.fs
        logicals = set()
        def walk(logical, level):
            block = fs.trees.block(logical, level, Budget("campaign"))
            logicals.add(logical)
            if level:
                for child, _ in block.refs:
                    walk(child, level - 1)
        for tree in (5,):
            root = fs.subvolume(tree)
            walk(root.bytenr, root.level)
        rng = random.Random(1204)
        logicals = sorted(logicals)
        worst = 0.0
        outcomes = {{}}
        for case in range(150):
            logical = rng.choice(logicals)
            at = rng.randrange(32, image.nodesize)
            mask = rng.randrange(1, 256)
            patches = image.sealed(logical, lambda raw: raw.__setitem__(at, raw[at] ^ mask))
            started = time.monotonic()
            try:
                t.exercise(image.patched(patches))
                outcome = "read"
            except GuestbootError as exc:
                outcome = type(exc).__name__
            worst = max(worst, time.monotonic() - started)
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
        print(worst, sorted(outcomes.items()))
    """)

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))

    done = subprocess.run([sys.executable, "-c", code], cwd=TESTS, preexec_fn=cap, capture_output=True, text=True,
                          timeout=110)
    assert done.returncode == 0, done.stderr[-3000:]
    worst, outcomes = done.stdout.split(" ", 1)
    assert float(worst) < 5.0, done.stdout
    assert "CorruptImage" in outcomes, done.stdout


@pytest.fixture(scope="module")
def lzo_image(tmp_path_factory) -> Pristine:
    if why := builder.can_mount():
        unavailable(why)
    image = Pristine(builder.image(tmp_path_factory, "lzo", "small"))
    yield image
    os.close(image.fd)


@pytest.mark.timeout(60)
def test_mutated_lzo_extents(lzo_image, small_tree):
    """Our LZO1X decoder on real kernel-written extents with bytes flipped, cut or
    zeroed: CorruptImage (naming lzo) or data, never another exception, never more than
    the extent declares, each read well within 5 s."""
    import time

    from guestboot import lzo

    fs = lzo_image.fs
    node = fspath.resolve(fs, "/big.bin")
    pieces = [p for p in fs.open(node).extents if p.kind == "compressed" and p.compression == 2]
    assert pieces, "the image holds LZO extents"
    raw = fs.read_logical(pieces[0].logical, pieces[0].disk_size)
    segment = raw[8 : 8 + int.from_bytes(raw[4:8], "little")]  # the first LZO1X stream
    assert lzo.decompress(segment, 4096) == (small_tree / "big.bin").read_bytes()[:4096]
    rng = random.Random(44)
    outcomes = {"data": 0, "corrupt": 0}
    for case in range(400):
        data = bytearray(segment)
        kind = case % 4
        if kind == 0:
            data[rng.randrange(len(data))] ^= rng.randrange(1, 256)
        elif kind == 1:
            del data[rng.randrange(len(data)) :]
        elif kind == 2:
            start = rng.randrange(len(data))
            data[start : start + 64] = bytes(min(64, len(data) - start))
        else:
            data[rng.randrange(len(data))] = rng.choice([0, 16, 17, 32, 64, 255])
        started = time.monotonic()
        try:
            out = lzo.decompress(bytes(data), 4096, what="lzo case")
            assert len(out) <= 4096
            outcomes["data"] += 1
        except CorruptImage as exc:
            assert "lzo case" in str(exc)
            outcomes["corrupt"] += 1
        assert time.monotonic() - started < 5
    assert outcomes["corrupt"] > 100
