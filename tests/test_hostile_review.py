"""Cases found by an adversarial review of the file-system parsers, and a small seeded
campaign of multi-byte overwrites of ext metadata (real mke2fs images, damaged in memory).
(The review's boot-config cases are in test_bootcfg_hostile.py.)

Each case must end in a GuestbootError or a clean result, within 5 seconds.
"""

from __future__ import annotations

import random
import struct

import pytest
from builders import ext as builder

from guestboot.errors import GuestbootError, LimitExceeded
from guestboot.fs import ext
from guestboot.fs.base import FileType
from guestboot.source import ByteSource, BytesSource

# --- seeded multi-byte damage of ext metadata ------------------------------------------------

CAMPAIGN_VARIANTS = ("ext2-1k", "ext3-4k", "ext4-1k-nocsum", "ext4-inline")
CASES_PER_VARIANT = 40


def _exercise(source: ByteSource) -> None:
    """Probe, list, look up and read everything reachable (each directory once)."""
    fs = ext.probe(source)
    if fs is None:
        return
    pending = [fs.root()]
    seen: set[int] = set()
    while pending:
        directory = pending.pop()
        if directory.ino in seen:
            continue
        seen.add(directory.ino)
        for name, node in fs.readdir(directory):
            fs.lookup(directory, name)
            if node.type is FileType.DIR:
                pending.append(node)
            elif node.type is FileType.LNK:
                fs.readlink(node)
            elif node.type is FileType.REG and node.ino not in seen:
                seen.add(node.ino)
                data = fs.open(node)
                for pos in range(0, min(data.size, 1 << 26), 1 << 20):
                    data.pread(pos, min(1 << 20, data.size - pos))
        fs.lookup(directory, b"no-such-entry")


def _metadata(fs, bs: int) -> list[tuple[int, int]]:
    """(start, length) of superblock, first descriptor block, the used inodes, and the
    first blocks of a few directories."""
    ranges = [(1024, 1024), ((1024 // bs + 1) * bs, bs), (fs.inode_table(0) * bs, 512 * fs.g.inode_size)]
    root = fs.root()
    for name, node in fs.readdir(root):
        if node.type is FileType.DIR and node.size >= bs and not node.private.flags & 0x10000000:
            for index in range(min(node.size // bs, 3)):
                ranges.append((fs.directory_source(node.private).volume_offset(index * bs), bs))
    return ranges


def _damage(rng: random.Random, data: bytes, ranges: list[tuple[int, int]], bs: int) -> bytes:
    out = bytearray(data)
    start, length = rng.choice(ranges)
    for _ in range(rng.randint(1, 8)):
        pos = start + rng.randrange(length)
        kind = rng.random()
        if kind < 0.4:
            new = rng.randbytes(rng.randint(1, 4))
        elif kind < 0.8:
            value = rng.choice([0, 1, 2, 8, 12, bs, bs - 1, 0xFFFF, 0x10000, 0x7FFFFFFF, 0xFFFFFFFF])
            new = struct.pack("<I", value)
        else:  # another metadata block's number: aliasing of structures
            new = struct.pack("<I", rng.choice(ranges)[0] // bs)
        out[pos : pos + len(new)] = new[: len(out) - pos]
    return bytes(out)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("variant", CAMPAIGN_VARIANTS)
def test_seeded_multibyte_damage_stays_in_the_error_tree(tmp_path_factory, variant):
    pristine = BytesSource(builder.image(tmp_path_factory, variant, "small").read_bytes(), name=variant)
    fs = ext.probe(pristine)
    ranges = _metadata(fs, fs.block_size)
    rng = random.Random(f"review-{variant}")
    for _ in range(CASES_PER_VARIANT):
        damaged = BytesSource(_damage(rng, pristine.data, ranges, fs.block_size), name="damaged")
        try:
            _exercise(damaged)
        except GuestbootError:
            pass


@pytest.mark.timeout(20)
def test_repeated_lookups_share_one_directory_scan_budget(tmp_path, monkeypatch):
    """Each lookup is bounded by max_dir_bytes, but a hostile path or config can repeat
    lookups in a huge directory; the file system's total scan budget bounds their sum.
    Shown with a lowered total on a real mke2fs image (a plain, unindexed directory)."""
    import subprocess

    from guestboot.fs import budget
    from guestboot.fs.path import resolve
    from guestboot.limits import LIMITS
    from guestboot.source import FileSource

    tree = tmp_path / "tree"
    (tree / "big").mkdir(parents=True)
    for n in range(600):
        (tree / "big" / f"file-with-a-long-name-{n:04d}").write_bytes(b"")
    image = tmp_path / "fs.img"
    subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", "-T", "default", "-O", "^dir_index", "-N", "2048", "-d", str(tree),
                    str(image), "8M"], check=True, capture_output=True)
    with open(image, "rb") as f:
        from guestboot.fs.ext import probe

        fs = probe(FileSource(f.fileno(), "fs.img"))
        big = resolve(fs, "/big")
        assert big.size > 16 * 1024  # every miss scans the whole directory
        from guestboot.fs.cache import LRU

        fs._dir_names = LRU(1)  # as for a directory larger than the parsed-names cache: every miss parses every block
        monkeypatch.setattr(budget, "LIMITS", LIMITS._replace(max_dir_bytes_total=40 * big.size))
        lookups = 0
        with pytest.raises(LimitExceeded, match="max_dir_bytes_total"):
            for _ in range(1000):
                fs.lookup(big, b"no-such-name")
                lookups += 1
        assert 30 <= lookups <= 40
