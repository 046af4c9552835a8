"""The exFAT driver on an image made by the real mkfs.exfat and filled by exfat-fuse from
a reference tree; GRUB's exFAT driver (grub-fstest), fsck.exfat and blkid as peers; and
damaged copies of it (only GuestbootError, within 5 s, in a memory-capped child).
"""

from __future__ import annotations

import os
import random
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from prereq import unavailable

import corrupt_child as child
from builders import disk
from builders import exfat as builder
from builders.initramfs import ToolMissing
from corrupt_child import Patched
from guestboot.errors import CorruptImage
from guestboot.fs import exfat
from guestboot.fs import path as fspath
from guestboot.fs.base import FileType
from guestboot.source import ByteSource, BytesSource, FileSource


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, Path]:
    try:
        return builder.image(tmp_path_factory)
    except ToolMissing as err:
        unavailable(str(err))


@pytest.fixture(scope="module")
def fs(built):
    _tree, path = built
    fd = os.open(path, os.O_RDONLY)
    yield exfat.probe(FileSource(fd, name=path.name))
    os.close(fd)


def walk(fs, node=None, prefix: str = "") -> list[tuple[str, object]]:
    found = []
    for name, node_ in fs.readdir(node or fs.root()):
        path = f"{prefix}/{name.decode()}"
        found.append((path + ("/" if node_.type is FileType.DIR else ""), node_))
        if node_.type is FileType.DIR:
            found.extend(walk(fs, node_, path))
    return found


def grub(image: Path, *command: str) -> subprocess.CompletedProcess:
    return subprocess.run(["grub-fstest", str(image), *command], capture_output=True, timeout=120)


def test_tree_reads_back(built, fs):
    tree, path = built
    ours = walk(fs)
    expected = sorted(
        "/" + os.path.relpath(os.path.join(top, n), tree) + ("/" if n in dirs else "")
        for top, dirs, files in os.walk(tree) for n in dirs + files
    )
    assert sorted(p for p, _ in ours) == expected
    for rel, node in ours:
        if node.type is FileType.REG:
            host = tree / rel.lstrip("/")
            assert node.size == host.stat().st_size
            assert fs.open(node).pread(0, node.size) == host.read_bytes(), rel
    assert not any("filler" in p for p, _ in ours)  # deleted entries stay invisible


def test_identity_matches_blkid_and_fsck(built, fs):
    _tree, path = built
    out = subprocess.run(["blkid", "-p", "-o", "export", str(path)], check=True, capture_output=True, text=True)
    tags = dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)
    assert tags["TYPE"] == fs.kind == "exfat"
    assert tags["UUID"] == fs.uuid == builder.UUID
    assert tags["LABEL"] == fs.label == builder.LABEL
    assert fs.g.cluster_size == builder.CLUSTER and fs.warnings == []
    assert "clean" in subprocess.run(["fsck.exfat", "-n", str(path)], capture_output=True, text=True).stdout


def test_grub_lists_and_reads_the_same(built, fs):
    """GRUB's exFAT driver shows names as stored, like us: listings are equal exactly."""
    tree, path = built
    directories = ["/"] + [p for p, node in walk(fs) if node.type is FileType.DIR]
    for directory in directories:
        listing = fs.readdir(fspath.resolve(fs, directory))
        ours = "".join(f"{n.decode()}{'/' if node.type is FileType.DIR else ''} " for n, node in listing)
        done = grub(path, "ls", directory)
        assert done.returncode == 0 and done.stdout.decode().rstrip("\n") == ours, directory
    for rel in ("/fragmented.bin", "/EFI/BOOT/BOOTX64.EFI", "/files/size-4097", "/names/\u65e5\u672c\u8a9e.txt"):
        assert grub(path, "cat", rel).stdout == fspath.read_bytes(fs, rel, 1 << 22) == (tree / rel[1:]).read_bytes()


def test_fragmented_file_runs_match_grub_blocklist(built, fs):
    tree, path = built
    source = fspath.open_file(fs, builder.FRAGMENTED)
    runs = list(source.runs())
    assert len(runs) > 2 and all(run.fd == fs.source.fd for run in runs)
    merged: list[tuple[int, int]] = []
    for run in runs:
        if merged and sum(merged[-1]) == run.offset:
            merged[-1] = (merged[-1][0], merged[-1][1] + run.length)
        else:
            merged.append((run.offset, run.length))
    theirs = []
    for item in grub(path, "blocklist", "/" + builder.FRAGMENTED).stdout.decode().strip().split(","):
        sector, _, rest = item.partition("+") if "+" in item else item.partition("[")
        if "+" in item:
            theirs.append((int(sector) * 512, int(rest) * 512))
        else:
            first, last = rest.rstrip("]").split("-")
            theirs.append((int(sector) * 512 + int(first), int(last) - int(first)))
    joined: list[tuple[int, int]] = []
    for start, length in theirs:
        if joined and sum(joined[-1]) == start:
            joined[-1] = (joined[-1][0], joined[-1][1] + length)
        else:
            joined.append((start, length))
    assert merged == joined


def test_lookup_folds_ascii_case_only_like_grub(built, fs):
    _tree, path = built
    assert fspath.read_bytes(fs, "/efi/boot/bootx64.efi", 1 << 20) == grub(path, "cat", "/efi/boot/bootx64.efi").stdout
    assert fspath.exists(fs, "/NAMES/mixed case with spaces.CONF") is not None
    # the up-case table is not read: a non-ASCII letter must be given in its stored case,
    # and GRUB (which compares with grub_strcasecmp) does not find it either
    assert fspath.exists(fs, "/names/\u00dcber-\u00e9t\u00e9.txt") is None
    assert grub(path, "cat", "/names/\u00dcber-\u00e9t\u00e9.txt").returncode != 0
    assert fspath.exists(fs, "/names/\u00fcber-\u00e9t\u00e9.TXT") is not None


# --- damaged copies ------------------------------------------------------------------------------


def exercise(source: ByteSource) -> None:
    fs = exfat.probe(source)
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


@pytest.fixture(scope="module")
def pristine(built):
    _tree, path = built
    source = BytesSource(path.read_bytes(), name=path.name)
    return source, exfat.probe(source)


def test_pristine_copy_reads_back(pristine):
    assert child.in_child(exercise, pristine[0]) == "ok"


@pytest.mark.timeout(20)
@pytest.mark.parametrize("cut", [0, 511, 512, 4096, "half"])
def test_truncated(pristine, cut):
    source, _fs = pristine
    size = source.size // 2 if cut == "half" else cut
    patched = Patched(source, {}, size)
    if size < 512:
        assert exfat.probe(patched) is None
    else:
        with pytest.raises(CorruptImage):
            exfat.probe(patched)


@pytest.mark.timeout(20)
@pytest.mark.parametrize("field", [11, 64, 72, 80, 84, 88, 92, 96, 100, 104, 108, 109, 110, 200, 510])
def test_boot_sector_flips_are_caught(pristine, field):
    """Every byte of sectors 0-10 but three is covered by the boot checksum."""
    source, _fs = pristine
    flipped = Patched(source, {field: bytes([source.data[field] ^ 0x41])})
    with pytest.raises(CorruptImage, match="exFAT boot sector"):
        exfat.probe(flipped)


@pytest.mark.timeout(30)
def test_chain_and_entry_set_damage(pristine):
    source, fs = pristine
    node = fspath.resolve(fs, "/" + builder.FRAGMENTED)
    first = node.private.stream.first_cluster
    chain = [c for start, count in fs.table.runs(first, "x") for c in range(start, start + count)]
    entry = lambda cluster: fs.table.entry_offset(cluster)  # noqa: E731
    cases = {
        "loops": {entry(chain[3]): struct.pack("<I", chain[1])},
        "free cluster": {entry(chain[1]): struct.pack("<I", 0)},
        "outside the data area": {entry(chain[1]): struct.pack("<I", fs.g.clusters + 2)},
        "ends after": {entry(chain[1]): struct.pack("<I", 0xFFFFFFFF)},
        "checksum mismatch": {node.ino + 40: b"\x7f"},  # a byte of the stream extension
        "secondary entries": {node.ino + 1: b"\x01"},
    }
    for expected, patch in cases.items():
        outcome = child.damaged(exercise, Patched(source, patch), CorruptImage)
        assert expected in outcome, outcome


@pytest.mark.timeout(120)
@pytest.mark.parametrize("seed", range(4))
def test_random_flips_in_metadata(pristine, seed):
    source, fs = pristine
    rng = random.Random(seed)
    g = fs.g
    places = [(g.fat_offset, 4096), (g.cluster_offset(g.root_cluster), g.cluster_size)]
    places += [(fspath.resolve(fs, d).ino, 96) for d in ("/EFI", "/many", "/names")]
    patches = {}
    for _ in range(6):
        start, size = rng.choice(places)
        patches[start + rng.randrange(size)] = bytes([rng.randrange(256)])
    child.survives(exercise, Patched(source, patches))


def test_exfat_partition_through_the_cli(built, tmp_path):
    """The same volume in partition 1 of a GPT disk (sgdisk, type 0700) as a user sees it."""
    tree, path = built
    image = disk.sgdisk_image(tmp_path / "disk.img", builder.SIZE + 4 * 1024 * 1024,
                              ["-n", f"1:2048:{2048 + builder.SIZE // 512 - 1}", "-t", "1:0700"])
    disk.place_image(image, 2048 * 512, path)

    def guestboot(*argv: str) -> bytes:
        done = subprocess.run([sys.executable, "-m", "guestboot", *argv], capture_output=True, timeout=120)
        assert done.returncode == 0, done.stderr.decode()
        return done.stdout

    devices = guestboot("ls", str(image)).decode().splitlines()
    line = next(d for d in devices if d.startswith("(hd0,gpt1)"))
    assert line.split()[1] == "exfat" and line.endswith(f"uuid={builder.UUID} label='{builder.LABEL}'")
    listing = guestboot("ls", str(image), "gpt1:/names").decode().splitlines()[1:]
    assert sorted(row.split(None, 2)[2] for row in listing) == sorted(os.listdir(tree / "names"))
    assert guestboot("cat", str(image), "gpt1:/efi/boot/bootx64.efi") == (tree / "EFI/BOOT/BOOTX64.EFI").read_bytes()
