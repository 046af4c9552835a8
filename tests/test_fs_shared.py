"""The machinery every file-system driver shares: MappedFile (a file mapped lazily from
runs of blocks), the directory-scan budgets and the bounded LRU cache."""

from __future__ import annotations

import os

import pytest

from guestboot.errors import CorruptImage, LimitExceeded
from guestboot.fs import budget
from guestboot.fs.budget import EntryBudget, ScanTotal
from guestboot.fs.cache import LRU
from guestboot.fs.mapped import MappedFile
from guestboot.limits import LIMITS
from guestboot.source import BytesSource, FileSource

VOLUME = bytes(range(256)) * 64  # 16 KiB, every byte says where it is (mod 256)


def _volume() -> BytesSource:
    return BytesSource(VOLUME, name="vol")


def _read_all(source) -> bytes:
    return source.pread(0, source.size)


def test_runs_holes_and_unwritten_ranges_read_as_the_map_says():
    # 4 blocks of 1 KiB: block 0 at volume block 3, block 1 a hole, block 2 unwritten,
    # block 3 at volume block 0; the file ends 100 bytes into block 3
    runs = iter([(0, 1, 3), (2, 1, None), (3, 1, 0)])
    f = MappedFile(_volume(), 3 * 1024 + 100, 1024, runs, "file")
    expected = VOLUME[3072:4096] + bytes(2048) + VOLUME[:100]
    assert _read_all(f) == expected
    assert f.pread(1000, 100) == expected[1000:1100]  # a read across a run and a hole
    assert f.volume_offset(5) == 3072 + 5
    assert f.volume_offset(1500) is None


def test_map_past_the_last_run_is_a_hole():
    f = MappedFile(_volume(), 4096, 1024, iter([(1, 1, 2)]), "file")
    assert _read_all(f) == bytes(1024) + VOLUME[2048:3072] + bytes(2048)


def test_byte_granular_runs():
    # block size 1: extents in bytes (e.g. Btrfs file extents)
    f = MappedFile(_volume(), 10, 1, iter([(0, 3, 100), (3, 2, None), (5, 5, 7)]), "bytes")
    assert _read_all(f) == VOLUME[100:103] + b"\0\0" + VOLUME[7:12]
    assert [tuple(r[1:3]) for r in f.runs()] == [(100, 3), (3, 2), (7, 5)]


def test_runs_point_into_the_image_file(tmp_path):
    path = tmp_path / "vol.img"
    path.write_bytes(VOLUME)
    fd = os.open(path, os.O_RDONLY)
    try:
        f = MappedFile(FileSource(fd, "vol.img"), 3000, 1024, iter([(0, 2, 5), (2, 1, None)]), "file")
        assert list(f.runs()) == [(fd, 5120, 2048, None), (None, 2048, 952, None)]
        assert list(f.runs(1000, 100)) == [(fd, 5120 + 1000, 100, None)]
        assert _read_all(f) == VOLUME[5120:7168] + bytes(952)
    finally:
        os.close(fd)


def test_the_map_is_pulled_only_as_far_as_reads_need():
    pulled = []

    def mapper():
        for block in range(16):
            pulled.append(block)
            yield (block, 1, block)

    f = MappedFile(_volume(), 16 * 1024, 1024, mapper(), "lazy")
    assert f.pread(0, 10) == VOLUME[:10]
    assert pulled == [0]
    f.pread(2048, 1)
    assert pulled == [0, 1, 2]
    f.pread(0, 10)  # already mapped: nothing more pulled
    assert pulled == [0, 1, 2]


@pytest.mark.parametrize(
    "runs, match",
    [
        ([(0, 2, 0), (1, 1, 5)], "overlaps or goes backwards"),
        ([(2, 1, 0), (0, 1, 5)], "overlaps or goes backwards"),
        ([(0, 0, 0)], "overlaps or goes backwards"),
        ([(0, 1, 16)], "outside the volume"),
        ([(0, 2, 15)], "outside the volume"),
        ([(0, 1, -1)], "outside the volume"),
    ],
)
def test_a_hostile_map_is_corrupt_image(runs, match):
    f = MappedFile(_volume(), 4096, 1024, iter(runs), "file")
    with pytest.raises(CorruptImage, match=match):
        _read_all(f)


def test_a_read_past_the_file_is_corrupt_image():
    f = MappedFile(_volume(), 100, 1024, iter([(0, 1, 0)]), "file")
    with pytest.raises(CorruptImage, match="past the end"):
        f.pread(50, 51)


def test_entry_budget_counts_entries_and_bytes(monkeypatch):
    monkeypatch.setattr(budget, "LIMITS", LIMITS._replace(max_dir_entries=3, max_dir_bytes=100, max_dir_bytes_total=150))
    b = EntryBudget("dir")
    b.entry(3)
    with pytest.raises(LimitExceeded, match="max_dir_entries"):
        b.entry()
    total = ScanTotal()
    EntryBudget("a", total).scan(100)
    with pytest.raises(LimitExceeded, match=r"\(max_dir_bytes\)"):
        EntryBudget("b", total).scan(101)
    with pytest.raises(LimitExceeded, match="max_dir_bytes_total"):
        EntryBudget("c", total).scan(60)  # 100 + 60 scanned in this file system


def test_lru_keeps_the_most_recently_used():
    cache: LRU[int, str] = LRU(2)
    cache.put(1, "a")
    cache.put(2, "b")
    assert cache.get(1) == "a"  # 1 is now the most recent
    cache.put(3, "c")
    assert 2 not in cache and cache.get(1) == "a" and cache.get(3) == "c"
    assert len(cache) == 2
    assert cache.get(2) is None


def test_lru_bounds_the_weight_it_holds():
    cache: LRU[int, bytes] = LRU(100, weigh=len, max_weight=10)
    cache.put(1, b"aaaa")
    cache.put(2, b"bbbb")
    assert cache.weight == 8
    cache.put(3, b"cccc")  # 12 > 10: the least recently used goes
    assert 1 not in cache and cache.weight == 8
    cache.put(2, b"bb")  # replacing an item replaces its weight
    assert cache.weight == 6
    cache.put(4, b"x" * 11)  # heavier than the whole cache: not kept, nothing evicted
    assert 4 not in cache and len(cache) == 2 and cache.weight == 6
    with pytest.raises(ValueError):
        LRU(4, weigh=len)
