"""The FAT driver on damaged copies of real images: only GuestbootError, within 5 s, in
bounded memory.

The pristine images come from mkfs.fat + mtools (tests/builders/fat.py). Each case patches
bytes of an in-memory copy: the damage is hand-made, the image around it is real. The
structures are located with the driver itself on the pristine image, so every patch hits
the structure it names. Whole reads run in a forked child whose address space is capped
(RLIMIT_AS), so a memory blow-up fails the test instead of the machine.
"""

from __future__ import annotations

import random
import struct
from pathlib import Path

import pytest

import corrupt_child as child
from builders import fat as builder
from corrupt_child import Patched
from guestboot.errors import CorruptImage, GuestbootError, LimitExceeded, Unsupported
from guestboot.fs import fat
from guestboot.fs import path as fspath
from guestboot.fs.base import FileType
from guestboot.source import ByteSource, BytesSource


class Pristine:
    """One real image in memory, and where its structures are."""

    def __init__(self, path: Path):
        self.source = BytesSource(path.read_bytes(), name=path.name)
        self.fs = fat.probe(self.source)
        self.g = self.fs.g

    def node(self, path: str):
        return fspath.resolve(self.fs, path)

    def fat_entry(self, cluster: int) -> int:
        return self.fs.table.entry_offset(cluster)

    def set_next(self, cluster: int, value: int) -> dict[int, bytes]:
        """A patch that makes the FAT entry of ``cluster`` hold ``value``."""
        offset = self.fat_entry(cluster)
        bits = self.g.fat_type.bits
        if bits == 12:
            old = int.from_bytes(self.source.pread(offset, 2), "little")
            new = (old & 0x000F) | (value << 4) if cluster & 1 else (old & 0xF000) | value
            return {offset: new.to_bytes(2, "little")}
        return {offset: value.to_bytes(bits // 8, "little")}

    def chain(self, path: str) -> list[int]:
        first = self.node(path).private
        return [c for start, count in self.fs.table.runs(first, path) for c in range(start, start + count)]

    def patched(self, patches: dict[int, bytes], size: int | None = None) -> Patched:
        return Patched(self.source, patches, size)


def exercise(source: ByteSource) -> None:
    """Probe and read everything (listings, lookups, every byte); compare nothing."""
    fs = fat.probe(source)
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
            else:
                data = fs.open(node)
                for pos in range(0, min(data.size, 1 << 26), 1 << 20):
                    data.pread(pos, min(1 << 20, data.size - pos))


def damaged(source: ByteSource, kind: type[GuestbootError] = GuestbootError) -> str:
    return child.damaged(exercise, source, kind)


def survives(source: ByteSource) -> str:
    return child.survives(exercise, source)


def in_child(source: ByteSource) -> str:
    return child.in_child(exercise, source)


@pytest.fixture(scope="module")
def fat12(tmp_path_factory) -> Pristine:
    return Pristine(builder.image(tmp_path_factory, "fat12"))


@pytest.fixture(scope="module")
def fat16(tmp_path_factory) -> Pristine:
    return Pristine(builder.image(tmp_path_factory, "fat16-2k-sector"))


@pytest.fixture(scope="module")
def fat32(tmp_path_factory) -> Pristine:
    return Pristine(builder.image(tmp_path_factory, "fat32"))


@pytest.fixture(scope="module")
def images(fat12, fat16, fat32) -> tuple[Pristine, ...]:
    return (fat12, fat16, fat32)


def test_pristine_copies_read_back(images):
    for image in images:
        assert in_child(image.source) == "ok"


# --- truncation ---------------------------------------------------------------------------------


@pytest.mark.timeout(20)
@pytest.mark.parametrize("cut", [0, 100, 511, 512, 4096, "half", "last-sector"])
def test_truncated_images(images, cut):
    for image in images:
        size = {"half": image.source.size // 2, "last-sector": image.source.size - 1}.get(cut, cut)
        source = image.patched({}, size=size)
        if size < 512:
            assert fat.probe(source) is None
        else:
            with pytest.raises(CorruptImage, match="do not fit"):
                fat.probe(source)


# --- the boot sector ------------------------------------------------------------------------------

BPB_CASES = {
    "bytes per sector 0": (0x0B, struct.pack("<H", 0)),
    "bytes per sector 3": (0x0B, struct.pack("<H", 3)),
    "bytes per sector 8192": (0x0B, struct.pack("<H", 8192)),
    "sectors per cluster 0": (0x0D, b"\0"),
    "sectors per cluster 3": (0x0D, b"\3"),
    "reserved sectors 0": (0x0E, b"\0\0"),
    "FATs 0": (0x10, b"\0"),
    "media 0": (0x15, b"\0"),
    "total sectors 0": (0x13, b"\0\0"),
    "reserved sectors 0xFFFF": (0x0E, b"\xff\xff"),
}
# fields whose absurd values can still describe a volume that fits: read, never trusted
ODD_CASES = {
    "FATs 255": (0x10, b"\xff"),
    "FATs 3": (0x10, b"\x03"),
    "sectors per cluster 128": (0x0D, b"\x80"),
    "media 0xF0": (0x15, b"\xf0"),
    "reserved sectors 2": (0x0E, b"\x02\x00"),
}


@pytest.mark.timeout(20)
@pytest.mark.parametrize("case", sorted(BPB_CASES))
def test_bpb_fields_zero_or_absurd(images, case):
    offset, value = BPB_CASES[case]
    for image in images:
        patch = {offset: value}
        if case == "total sectors 0":
            patch[0x20] = b"\0\0\0\0"
        # the probe refuses the boot sector, or the volume it describes fails when read
        assert damaged(image.patched(patch), CorruptImage)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", sorted(ODD_CASES))
def test_bpb_fields_odd_but_possible(images, case):
    offset, value = ODD_CASES[case]
    for image in images:
        survives(image.patched({offset: value}))


@pytest.mark.timeout(20)
def test_fat_size_and_root_fields(fat12, fat16, fat32):
    for image in (fat12, fat16):
        # BPB_FATSz16 = 0 is the FAT32 layout: this boot sector's FAT32 fields are boot code
        with pytest.raises((CorruptImage, Unsupported)):
            fat.probe(image.patched({0x16: b"\0\0"}))
        with pytest.raises(CorruptImage, match="fewer entries"):
            fat.probe(image.patched({0x16: b"\1\0"}))  # one sector of FAT for thousands of clusters
        with pytest.raises(CorruptImage, match="no data area"):
            fat.probe(image.patched({0x0E: b"\xff\xff"}))  # 65535 reserved sectors: more than the volume
        survives(image.patched({0x11: b"\xff\xff"}))  # 65535 root entries: 2 MiB of root region
    with pytest.raises(CorruptImage, match="FAT size is 0"):
        fat.probe(fat32.patched({0x24: b"\0\0\0\0"}))
    with pytest.raises(CorruptImage, match="fewer entries"):
        fat.probe(fat32.patched({0x24: struct.pack("<I", 1)}))
    with pytest.raises(CorruptImage, match="no data area"):
        fat.probe(fat32.patched({0x24: struct.pack("<I", 0x7FFFFFFF)}))
    for root in (0, 1, 0x0FFFFFFF):
        with pytest.raises(CorruptImage, match="root directory cluster"):
            fat.probe(fat32.patched({0x2C: struct.pack("<I", root)}))
    with pytest.raises(CorruptImage, match="fixed root entries"):
        fat.probe(fat32.patched({0x11: b"\x10\0"}))
    with pytest.raises(Unsupported, match="FAT32 version 1.0"):
        fat.probe(fat32.patched({0x2A: b"\0\1"}))
    with pytest.raises(CorruptImage, match="active FAT"):
        fat.probe(fat32.patched({0x28: b"\x85\0"}))  # mirroring off, active FAT 5 of 2


def test_non_fat_sectors_are_not_fat(fat12):
    assert fat.probe(BytesSource(bytes(4096))) is None
    mbr = bytearray(512)
    mbr[0:3] = b"\xeb\x63\x90"  # GRUB's boot.img starts so; its BPB area is zeros
    mbr[510:512] = b"\x55\xaa"
    assert fat.probe(BytesSource(bytes(mbr) * 8)) is None
    # an ext superblock, an XFS superblock
    assert fat.probe(BytesSource(b"XFSB" + bytes(8188))) is None


# --- cluster chains ---------------------------------------------------------------------------------


@pytest.mark.timeout(30)
def test_cluster_chain_damage(images):
    for image in images:
        chain = image.chain("/EFI/debian/vmlinuz")
        assert len(chain) > 4
        last = image.g.clusters + 2
        kind = image.g.fat_type
        cases = {
            "loops": image.set_next(chain[3], chain[1]),
            "loops back to cluster": image.set_next(chain[2], chain[2]),
            "a free cluster": image.set_next(chain[1], 0),
            "reserved cluster 1": image.set_next(chain[1], 1),
            "outside the data area": image.set_next(chain[1], last),
            "a bad cluster": image.set_next(chain[1], kind.bad),
            "ends after": image.set_next(chain[1], kind.end),
        }
        for expected, patch in cases.items():
            outcome = damaged(image.patched(patch), CorruptImage)
            assert expected.split()[0] in outcome, (kind.name, expected, outcome)
            # the message names the FAT entry's byte offset
            assert f"at byte offset {next(iter(patch)):#x}" in outcome, outcome


@pytest.mark.timeout(30)
def test_directory_chain_loop_and_bounds(images, monkeypatch):
    for image in images:
        many = image.chain("/many")
        assert len(many) > 2  # the big directory spans clusters
        outcome = damaged(image.patched(image.set_next(many[-1], many[0])), CorruptImage)
        assert "loops" in outcome
        if image.g.fat_type.name == "FAT32":  # the root directory is a chain too
            root = image.g.root_cluster
            assert "loops" in damaged(image.patched(image.set_next(root, root)), CorruptImage)
    from guestboot.fs import budget

    monkeypatch.setattr(budget, "LIMITS", budget.LIMITS._replace(max_dir_bytes=4096))
    for image in images:
        with pytest.raises(LimitExceeded, match="max_dir_bytes"):
            list(fat.probe(image.source).readdir(fspath.resolve(fat.probe(image.source), "/many")))


@pytest.mark.timeout(30)
def test_chain_walks_are_bounded(fat12, monkeypatch):
    """max_map_bytes bounds the FAT entries read for one chain, max_file_runs its
    fragments (the fragmented file has one per filler hole)."""
    from guestboot.fs.fat import table

    source = fspath.open_file(fat.probe(fat12.source), "/" + builder.FRAGMENTED)
    assert len(list(source.runs())) > 3
    monkeypatch.setattr(table, "LIMITS", table.LIMITS._replace(max_file_runs=3))
    data = fspath.open_file(fat.probe(fat12.source), "/" + builder.FRAGMENTED)
    with pytest.raises(LimitExceeded, match="max_file_runs"):
        data.pread(0, data.size)
    monkeypatch.setattr(table, "LIMITS", table.LIMITS._replace(max_map_bytes=16))
    data = fspath.open_file(fat.probe(fat12.source), "/EFI/debian/vmlinuz")
    with pytest.raises(LimitExceeded, match="max_map_bytes"):
        data.pread(0, data.size)


@pytest.mark.timeout(30)
def test_a_directory_that_never_ends(fat32, monkeypatch):
    """A directory chain through every cluster of the volume and no end marker in its
    entries: every cluster after the first filled with copies of one valid entry. The scan
    budget ends it (LimitExceeded), within the time limit."""
    image = fat32
    first = image.chain("/emptydir")[0]
    g = image.g
    clusters = 600
    entry = image.source.pread(image.node("/EFI").ino, 32)  # a valid directory entry
    patches = {}
    for i in range(clusters):
        patches.update(image.set_next(first + i, first + i + 1))
        patches[g.cluster_offset(first + i)] = entry * (g.cluster_size // 32)
    from guestboot.fs import budget

    monkeypatch.setattr(budget, "LIMITS", budget.LIMITS._replace(max_dir_bytes=64 * 1024))
    source = Patched(image.source, patches)
    fs = fat.probe(source)
    with pytest.raises((LimitExceeded, CorruptImage)):
        list(fs.readdir(fspath.resolve(fs, "/emptydir")))


# --- directory entries --------------------------------------------------------------------------------


@pytest.mark.timeout(30)
def test_directory_entry_damage(images):
    for image in images:
        kernel = image.node("/EFI/debian/vmlinuz")
        entry = kernel.ino  # byte offset of its short entry
        lo = entry + 26
        for cluster, what in ((0, "first cluster 0"), (1, "first cluster 1"), (0xFFF0, "first cluster 65520")):
            outcome = damaged(image.patched({lo: struct.pack("<H", cluster)}), CorruptImage)
            assert what in outcome or "leads to" in outcome or "loops" in outcome, outcome
        # a size far beyond the chain
        outcome = damaged(image.patched({entry + 28: struct.pack("<I", 0xFFFFFFF0)}), CorruptImage)
        assert "ends after" in outcome
        # a subdirectory entry naming cluster 0 (only ".." may name the root so)
        debian = image.node("/EFI/debian").ino
        damaged(image.patched({debian + 26: b"\0\0", debian + 20: b"\0\0"}), CorruptImage)


def test_orphaned_and_mismatched_long_names_fall_back_to_the_short_name(fat16):
    image = fat16
    fs = image.fs
    names = image.node("/names")
    entries = {name: node for name, node in fs.readdir(names)}
    target = entries[b"A Long File Name With Spaces.conf"]
    short = target.ino
    # the long-name entry just before the short entry (order 1) carries the checksum at 13
    checksum_at = short - 32 + 13
    bad = image.source.pread(checksum_at, 1)[0] ^ 0xFF
    fs2 = fat.probe(image.patched({checksum_at: bytes([bad])}))
    listing = dict(fs2.readdir(fspath.resolve(fs2, "/names")))
    assert b"A Long File Name With Spaces.conf" not in listing
    shown = [n for n, node in listing.items() if node.ino == short]
    assert shown and shown[0].startswith(b"ALONGF~") and shown[0].endswith(b".CON")
    # an orphan: the short entry deleted, its long-name entries left
    fs3 = fat.probe(image.patched({short: b"\xe5"}))
    listing = dict(fs3.readdir(fspath.resolve(fs3, "/names")))
    assert len(listing) == len(entries) - 1
    assert b"A Long File Name With Spaces.conf" not in listing


@pytest.mark.timeout(120)
@pytest.mark.parametrize("seed", range(6))
def test_random_flips_in_metadata(images, seed):
    """Random bytes of the boot sector, the FAT and the directories changed: any outcome
    but a foreign exception, a hang or a memory blow-up."""
    rng = random.Random(seed)
    for image in images:
        g = image.g
        places = [(0, 512), (g.fat_offset, min(g.fat_bytes, 8192))]
        places += [(image.node(d).ino, 32) for d in ("/EFI", "/many", "/names")]
        places += [(g.cluster_offset(c), g.cluster_size) for c in image.chain("/many")[:2]]
        if g.root_bytes:
            places.append((g.root_offset, g.root_bytes))
        patches = {}
        for _ in range(8):
            start, size = rng.choice(places)
            patches[start + rng.randrange(size)] = bytes([rng.randrange(256)])
        survives(image.patched(patches))


def test_first_name_byte_rules(fat16):
    """Section 6.1 on a real entry without a long name: 0x05 stands for a first byte 0xE5
    (code page 437: "σ"), 0xE5 marks it deleted, 0x00 ends the directory there."""
    image = fat16
    names = image.node("/names")
    listing = list(image.fs.readdir(names))
    node = image.node("/names/NOEXT")
    position = [n for n, _ in listing].index(b"NOEXT")
    escaped = fat.probe(image.patched({node.ino: b"\x05"}))
    renamed = dict(escaped.readdir(fspath.resolve(escaped, "/names")))
    assert "\u03c3OEXT".encode() in renamed and b"NOEXT" not in renamed
    assert fspath.read_bytes(escaped, "/names/\u03c3OEXT", 100) == b"NOEXT\n"
    deleted = fat.probe(image.patched({node.ino: b"\xe5"}))
    assert [n for n, _ in deleted.readdir(fspath.resolve(deleted, "/names"))] == [
        n for n, _ in listing if n != b"NOEXT"]
    ended = fat.probe(image.patched({node.ino: b"\x00"}))
    assert [n for n, _ in ended.readdir(fspath.resolve(ended, "/names"))] == [n for n, _ in listing[:position]]


def test_short_names_no_path_can_name_are_left_out(fat16):
    """A damaged short name that is empty or holds "/" or NUL is not listed (no path could
    reach it); the rest of the directory is."""
    image = fat16
    listing = [n for n, _ in image.fs.readdir(image.node("/names"))]
    node = image.node("/names/NOEXT")
    for raw in (b" " * 11, b"A/B        ", b"AB\0\0\0\0\0\0TXT"):
        fs = fat.probe(image.patched({node.ino: raw}))
        assert [n for n, _ in fs.readdir(fspath.resolve(fs, "/names"))] == [n for n in listing if n != b"NOEXT"]
