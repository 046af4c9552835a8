"""Concatenated and striped byte sources (linear/striped LVs, RAID0, a VG over disks),
on their own: reads agree with the layout they describe, runs stay in the members' files."""

from __future__ import annotations

import os

import pytest

from guestboot import limits
from guestboot.errors import CorruptImage, LimitExceeded
from guestboot.source import BytesSource, FileSource, SliceSource
from guestboot.source import compose
from guestboot.source.compose import ConcatSource, StripeSource

DATA = bytes((i * 7 + i // 256) & 0xFF for i in range(1 << 16))


def _files(tmp_path, count: int, size: int) -> list[FileSource]:
    sources = []
    for i in range(count):
        path = tmp_path / f"m{i}"
        path.write_bytes(DATA[i * size : (i + 1) * size])
        sources.append(FileSource(os.open(path, os.O_RDONLY | os.O_CLOEXEC), name=f"m{i}"))
    return sources


@pytest.fixture
def members(tmp_path):
    sources = _files(tmp_path, 3, 8192)
    yield sources
    for s in sources:
        os.close(s.fd)


def _copy_by_runs(source) -> bytes:
    out = bytearray()
    for run in source.runs():
        if run.fd is None:
            out += run.data if run.data is not None else bytes(run.length)
        else:
            out += os.pread(run.fd, run.length, run.offset)
    return bytes(out)


def test_concat_reads_and_runs(members):
    cat = ConcatSource([SliceSource(members[0], 100, 5000, "a"), members[1], SliceSource(members[2], 0, 10, "c")], "cat")
    expected = DATA[100:5100] + DATA[8192:16384] + DATA[16384:16394]
    assert cat.size == len(expected)
    assert cat.pread(0, cat.size) == expected
    assert cat.pread(4990, 20) == expected[4990:5010]  # across a member boundary
    assert _copy_by_runs(cat) == expected
    # zero-copy: the runs are offsets of the members' own descriptors
    assert [(r.fd, r.offset, r.length) for r in cat.runs(4990, 20)] == [
        (members[0].fd, 5090, 10), (members[1].fd, 0, 10)]


@pytest.mark.parametrize("chunk", [512, 4096])
def test_stripes_deal_chunks_in_turn(members, chunk):
    stripe = StripeSource(members, chunk, "raid0")
    expected = bytearray()
    for row in range(8192 // chunk):
        for m in range(3):
            expected += DATA[m * 8192 + row * chunk : m * 8192 + (row + 1) * chunk]
    assert stripe.size == 3 * 8192
    assert stripe.pread(0, stripe.size) == bytes(expected)
    assert stripe.pread(chunk - 3, 10) == bytes(expected[chunk - 3 : chunk + 7])
    assert _copy_by_runs(stripe) == bytes(expected)
    assert [(r.fd, r.offset, r.length) for r in stripe.runs(chunk - 3, 10)] == [
        (members[0].fd, chunk - 3, 3), (members[1].fd, 0, 7)]


def test_reads_past_the_end_are_corrupt_image(members):
    cat = ConcatSource(members[:2], "cat")
    with pytest.raises(CorruptImage, match="past the end"):
        cat.pread(cat.size - 1, 2)
    with pytest.raises(CorruptImage, match="past the end"):
        list(StripeSource(members, 512, "s").runs(3 * 8192 - 1, 2))


@pytest.mark.parametrize(
    "parts, chunk",
    [([BytesSource(b"x" * 1024), BytesSource(b"x" * 512)], 512), ([BytesSource(b"x" * 1000)], 512),
     ([BytesSource(b"x" * 1024)], 0), ([], 512)],
)
def test_impossible_stripes_are_corrupt_image(parts, chunk):
    with pytest.raises(CorruptImage):
        StripeSource(parts, chunk, "s")


def test_member_count_is_bounded(monkeypatch):
    monkeypatch.setattr(compose, "LIMITS", limits.LIMITS._replace(max_volume_segments=4))
    with pytest.raises(LimitExceeded, match="max_volume_segments"):
        ConcatSource([BytesSource(b"a")] * 5, "cat")
    with pytest.raises(CorruptImage, match="no parts"):
        ConcatSource([], "cat")
