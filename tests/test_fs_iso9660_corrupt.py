"""The ISO 9660 driver on damaged copies of real images: only GuestbootError, never a hang,
never a memory blow-up.

The pristine images come from xorriso (tests/builders/iso.py, a small tree). Each case
patches bytes of a copy: the damage is hand-made, the image around it is real. Structures
are located with the driver itself on the pristine image, so every patch hits the
structure it names. The damaged images are read in a child process under an address-space
limit; each image's probe and full walk must end within 5 s.
"""

from __future__ import annotations

import json
import os
import random
import resource
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from builders import iso as builder
from guestboot.errors import CorruptImage, LimitExceeded
from guestboot.fs import iso9660
from guestboot.fs import path as fspath
from guestboot.fs.iso9660 import susp
from guestboot.fs.iso9660.layout import BLOCK_SIZE, FLAG_MULTI_EXTENT, SUSP_CE
from guestboot.limits import LIMITS
from guestboot.source import BytesSource, FileSource
from prereq import unavailable

MEMORY_CAP = 512 * 1024 * 1024  # RLIMIT_AS of the child
PER_IMAGE = 5.0  # seconds for one damaged image: probe and read everything

EXERCISE = """
    import json, os, sys, time
    from guestboot.errors import GuestbootError
    from guestboot.fs import iso9660
    from guestboot.fs.base import FileType
    from guestboot.source import FileSource

    def exercise(fs):
        pending, seen = [fs.root()], 0
        while pending and seen < 20000:  # a hostile DAG of directories may list one child many times
            directory = pending.pop()
            for name, node in fs.readdir(directory):
                seen += 1
                fs.lookup(directory, name)
                if node.type is FileType.DIR:
                    pending.append(node)
                elif node.type is FileType.LNK:
                    fs.readlink(node)
                elif node.type is FileType.REG:
                    data = fs.open(node)
                    for pos in range(0, min(data.size, 1 << 26), 1 << 20):
                        data.pread(pos, min(1 << 20, data.size - pos))
                    sum(run.length for run in data.runs())
        fs.boot_catalog()

    results = []
    for path in sys.argv[1:]:
        started = time.monotonic()
        fd = os.open(path, os.O_RDONLY)
        try:
            fs = iso9660.probe(FileSource(fd, name=os.path.basename(path)))
            if fs is not None:
                exercise(fs)
            outcome = ["ok" if fs is not None else "none", ""]
        except GuestbootError as err:
            outcome = [type(err).__name__, str(err)]
        finally:
            os.close(fd)
        results.append([os.path.basename(path), *outcome, time.monotonic() - started])
    print(json.dumps(results))
"""


def run_damaged(paths: list[Path]) -> dict[str, tuple[str, str]]:
    """name -> (outcome, message) for each image, read in a capped child."""
    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))

    done = subprocess.run([sys.executable, "-c", textwrap.dedent(EXERCISE), *map(str, paths)], preexec_fn=cap,
                          capture_output=True, text=True, timeout=30 + PER_IMAGE * len(paths))
    assert done.returncode == 0, done.stderr[-3000:]  # a traceback here is an untyped error: a bug
    results = {}
    for name, outcome, message, elapsed in json.loads(done.stdout):
        assert elapsed < PER_IMAGE, (name, elapsed, message)
        results[name] = (outcome, message)
    return results


class Pristine:
    """One real image in memory and the locations of its structures (found with the driver)."""

    def __init__(self, path: Path):
        self.data = path.read_bytes()
        self.fs = iso9660.probe(BytesSource(self.data, name=path.name))
        assert self.fs is not None

    def node(self, path: str):
        return fspath.resolve(self.fs, path, follow=False)

    def record(self, path: str) -> int:
        """Byte offset of the directory record of ``path``."""
        return self.node(path).private.record

    def extent(self, path: str) -> int:
        return self.node(path).private.extents[0][0]

    def su_entry(self, record: int, signature: bytes) -> int:
        """Byte offset of the first System Use entry ``signature`` of the record at ``record``."""
        length, id_len = self.data[record], self.data[record + 32]
        pos = record + 33 + id_len + (0 if id_len % 2 else 1)
        while pos + 4 <= record + length and self.data[pos + 2]:
            if self.data[pos : pos + 2] == signature:
                return pos
            pos += self.data[pos + 2]
        raise LookupError(signature)

    def write(self, path: Path, patches: dict[int, bytes], size: int | None = None) -> Path:
        data = bytearray(self.data if size is None else self.data[:size])
        for offset, new in patches.items():
            data[offset : offset + len(new)] = new
        path.write_bytes(bytes(data))
        return path


@pytest.fixture(scope="module")
def small_tree(tmp_path_factory) -> Path:
    return builder.tree(tmp_path_factory, "iso-small", many=30)


@pytest.fixture(scope="module")
def rr(tmp_path_factory, small_tree) -> Pristine:
    return Pristine(builder.image(tmp_path_factory, small_tree, "rr-joliet"))


@pytest.fixture(scope="module")
def plain(tmp_path_factory, small_tree) -> Pristine:
    return Pristine(builder.image(tmp_path_factory, small_tree, "level3"))


def test_truncated_images(rr, plain, tmp_path):
    paths = []
    for image, tag in ((rr, "rr"), (plain, "plain")):
        root = image.extent("/")
        for cut in (16 * BLOCK_SIZE + 10, 17 * BLOCK_SIZE, root, root + 100, image.extent("/deep") + 40,
                    len(image.data) // 2, len(image.data) - BLOCK_SIZE):
            paths.append(image.write(tmp_path / f"{tag}-cut-{cut}.iso", {}, size=cut))
    results = run_damaged(paths)
    assert {outcome for outcome, _m in results.values()} <= {"CorruptImage", "none", "ok"}
    assert results[f"rr-cut-{rr.extent('/')}.iso"][0] == "CorruptImage"


def test_flipped_bytes_in_descriptors_and_directories(rr, plain, tmp_path):
    rng = random.Random(5)
    paths = []
    for image, tag in ((rr, "rr"), (plain, "plain")):
        areas = [(16 * BLOCK_SIZE, 3 * BLOCK_SIZE), (image.extent("/"), BLOCK_SIZE),
                 (image.extent("/many"), 2 * BLOCK_SIZE), (image.extent("/deep"), BLOCK_SIZE)]
        if image is rr:  # the continuation area the root's "." record chains to (it holds ER)
            _sig, _len, _ver, block, offset, length = SUSP_CE.unpack_from(image.data, image.su_entry(
                image.extent("/"), b"CE"))
            areas.append((block * BLOCK_SIZE + offset, length))
        for number in range(60):
            start, length = areas[number % len(areas)]
            offset = start + rng.randrange(length)
            flipped = bytes([image.data[offset] ^ rng.choice((0x01, 0x80, 0xFF, 0x5A))])
            paths.append(image.write(tmp_path / f"{tag}-flip-{number}-{offset}.iso", {offset: flipped}))
    results = run_damaged(paths)
    assert {outcome for outcome, _m in results.values()} <= {"CorruptImage", "LimitExceeded", "Unsupported",
                                                               "NotFound", "none", "ok"}


def test_continuation_area_loop(rr, tmp_path):
    """XSA-497's shape: a CE entry whose continuation area holds that CE entry again."""
    record = rr.record("/MixedCase.TXT")
    px = rr.su_entry(record, b"PX")  # 36 bytes: room for a 28-byte CE, rewritten in place
    length = rr.data[px + 2]
    block, offset = divmod(px, BLOCK_SIZE)
    ce = SUSP_CE.pack(b"CE", length, 1, block, offset, length)[:length]
    path = rr.write(tmp_path / "ce-loop.iso", {px: struct.pack("<2sBB", b"CE", length, 1) + ce[4:]})
    outcome, message = run_damaged([path])["ce-loop.iso"]
    assert outcome == "CorruptImage" and "loop" in message, message


def test_continuation_area_past_the_end(rr, tmp_path):
    dot = rr.extent("/")
    ce = rr.su_entry(dot, b"CE")
    path = rr.write(tmp_path / "ce-far.iso", {ce + 4: struct.pack("<I", 0x7FFFFFF0)})
    outcome, message = run_damaged([path])["ce-far.iso"]
    assert outcome == "CorruptImage" and "continuation area" in message, message
    path = rr.write(tmp_path / "ce-long.iso", {ce + 20: struct.pack("<I", 4000)})  # longer than its block
    outcome, message = run_damaged([path])["ce-long.iso"]
    assert outcome == "CorruptImage" and "continuation area" in message, message


def test_long_chain_of_continuation_areas_is_bounded():
    """Distinct continuation areas, each pointing at the next: stopped at the limit."""
    hops = LIMITS.max_susp_continuations + 5
    volume = bytearray(BLOCK_SIZE * (hops + 2))
    for hop in range(hops + 1):
        at = (hop + 1) * BLOCK_SIZE
        volume[at : at + SUSP_CE.size] = SUSP_CE.pack(b"CE", SUSP_CE.size, 1, hop + 2, 0,
                                                                         SUSP_CE.size)
    first = SUSP_CE.pack(b"CE", SUSP_CE.size, 1, 1, 0, SUSP_CE.size)
    with pytest.raises(LimitExceeded, match="max_susp_continuations"):
        list(susp.entries(BytesSource(bytes(volume)), first, 0, None, "test"))


def test_directory_records_with_absurd_lengths(rr, plain, tmp_path):
    paths = []
    for image, tag in ((rr, "rr"), (plain, "plain")):
        record = image.record("/MixedCase.TXT" if image is rr else "/mixedcase.txt")
        for value in (1, 33, 255):
            paths.append(image.write(tmp_path / f"{tag}-len-{value}.iso", {record: bytes([value])}))
        paths.append(image.write(tmp_path / f"{tag}-idlen.iso", {record + 32: b"\xff"}))
    results = run_damaged(paths)
    for name, (outcome, message) in results.items():
        if "len-255" in name:  # fits in its sector: it swallows the records after it, which may parse
            assert outcome in ("CorruptImage", "ok"), (name, message)
        else:
            assert outcome == "CorruptImage", (name, message)


def test_directory_cycle(rr, plain, tmp_path):
    """A directory record pointing at the extent of an enclosing directory."""
    paths = []
    for image, tag in ((rr, "rr"), (plain, "plain")):
        level1 = image.record("/deep/level0/level1")
        for target, name in ((image.extent("/"), "root"), (image.extent("/deep"), "grandparent"),
                             (image.extent("/deep/level0"), "parent")):
            block = struct.pack("<I", target // BLOCK_SIZE) + struct.pack(">I", target // BLOCK_SIZE)
            paths.append(image.write(tmp_path / f"{tag}-cycle-{name}.iso", {level1 + 2: block}))
    results = run_damaged(paths)
    for name, (outcome, message) in results.items():
        assert outcome == "CorruptImage" and "cycle" in message, (name, message)


def test_multi_extent_chain_that_never_ends(rr, plain, tmp_path):
    paths = []
    for image, tag in ((rr, "rr"), (plain, "plain")):
        directory = image.node("/many")
        records = [node.private.record for _name, node in image.fs.readdir(directory)]
        patches = {record + 25: bytes([image.data[record + 25] | FLAG_MULTI_EXTENT]) for record in records}
        paths.append(image.write(tmp_path / f"{tag}-multi-all.iso", patches))
        last = max(records)
        paths.append(image.write(tmp_path / f"{tag}-multi-last.iso",
                                 {last + 25: bytes([image.data[last + 25] | FLAG_MULTI_EXTENT])}))
        deep = image.record("/deep")
        paths.append(image.write(tmp_path / f"{tag}-multi-dir.iso",
                                 {deep + 25: bytes([image.data[deep + 25] | FLAG_MULTI_EXTENT])}))
    results = run_damaged(paths)
    for name, (outcome, message) in results.items():
        assert outcome == "CorruptImage", (name, message)
        assert "multi-extent" in message, (name, message)


def test_volume_descriptor_set_without_terminator(rr, tmp_path):
    terminator = next(16 + i for i in range(8) if rr.data[(16 + i) * BLOCK_SIZE] == 255)
    path = rr.write(tmp_path / "no-terminator.iso", {terminator * BLOCK_SIZE: b"\x03"})  # a partition descriptor
    outcome, message = run_damaged([path])["no-terminator.iso"]
    assert outcome == "CorruptImage" and "CD001" in message, message


def test_endless_volume_descriptor_set_is_bounded():
    volume = bytearray(BLOCK_SIZE * (16 + LIMITS.max_volume_descriptors + 2))
    for index in range(LIMITS.max_volume_descriptors + 2):
        at = (16 + index) * BLOCK_SIZE
        volume[at : at + 7] = b"\x03CD001\x01"
    with pytest.raises(LimitExceeded, match="max_volume_descriptors"):
        iso9660.probe(BytesSource(bytes(volume)))


def test_descriptor_set_runs_off_the_image():
    volume = bytearray(BLOCK_SIZE * 18)
    volume[16 * BLOCK_SIZE : 16 * BLOCK_SIZE + 7] = b"\x03CD001\x01"
    volume[17 * BLOCK_SIZE : 17 * BLOCK_SIZE + 7] = b"\x03CD001\x01"
    with pytest.raises(CorruptImage, match="no terminator"):
        iso9660.probe(BytesSource(bytes(volume)))


def test_pristine_images_read_back(rr, plain, small_tree, tmp_path):
    paths = [rr.write(tmp_path / "rr.iso", {}), plain.write(tmp_path / "plain.iso", {})]
    assert run_damaged(paths) == {"rr.iso": ("ok", ""), "plain.iso": ("ok", "")}
    assert fspath.read_bytes(rr.fs, "/MixedCase.TXT", 100) == (small_tree / "MixedCase.TXT").read_bytes()


def test_probe_ignores_other_data(tmp_path):
    assert iso9660.probe(BytesSource(bytes(64 * 1024))) is None
    assert iso9660.probe(BytesSource(b"CD001" * 10)) is None
    fd = os.open(__file__, os.O_RDONLY)
    try:
        assert iso9660.probe(FileSource(fd, name="text")) is None
    finally:
        os.close(fd)


def test_rereading_huge_directories_is_bounded_in_total(monkeypatch, tmp_path):
    """Directories too large to keep are parsed again on each lookup: the records parsed in
    all are bounded, so a config that looks names up again and again stops."""
    top = tmp_path / "tree"
    for name in ("a", "b"):
        (top / name).mkdir(parents=True)
        for i in range(300):
            (top / name / f"f{i:05d}").touch()
    image = builder.build(tmp_path / "huge.iso", top, ["-R"])
    fs = iso9660.probe(BytesSource(image.read_bytes()))
    monkeypatch.setattr("guestboot.fs.iso9660.filesystem.LISTING_CACHE_ENTRIES", 100)
    monkeypatch.setattr("guestboot.fs.iso9660.filesystem.LIMITS", LIMITS._replace(max_dir_entries_total=2_000))
    assert fspath.resolve(fs, "/a/f00299") is not None
    assert fspath.resolve(fs, "/a/f00001") is not None  # the last large listing is kept
    with pytest.raises(LimitExceeded, match="max_dir_entries_total"):
        for _round in range(10):
            fspath.resolve(fs, "/a/f00001")
            fspath.resolve(fs, "/b/f00001")


@pytest.fixture(scope="module")
def bootable(tmp_path_factory, small_tree) -> Pristine:
    if not builder.ISOLINUX_BIN.is_file():
        unavailable(f"{builder.ISOLINUX_BIN} not found (apt-get install isolinux)")
    return Pristine(builder.hybrid(tmp_path_factory.mktemp("iso-boot") / "boot.iso", small_tree, None))


def test_damaged_boot_catalog(bootable, tmp_path):
    """The catalog is read only when asked for; damage there is CorruptImage or
    LimitExceeded from boot_catalog(), and the files stay readable."""
    assert [image.platform for image in bootable.fs.boot_catalog()] == ["x86"]
    catalog = bootable.fs.descriptors.boot_catalog * BLOCK_SIZE
    record = next(16 + i for i in range(8) if bootable.data[(16 + i) * BLOCK_SIZE] == 0) * BLOCK_SIZE
    cases = {
        "header": {catalog: b"\x02"},
        "checksum": {catalog + 4: b"\x01"},
        "key": {catalog + 30: b"\x00"},
        "indicator": {catalog + 32: b"\x42"},
        "endless-section": {catalog + 64: struct.pack("<BBH", 0x91, 0xEF, 0xFFFF),
                            **{catalog + 96 + 32 * i: b"\x88" for i in range(60)}},
        "far-catalog": {record + 71: struct.pack("<I", 0x7FFFFFF0)},
    }
    paths = [bootable.write(tmp_path / f"catalog-{name}.iso", patches) for name, patches in cases.items()]
    results = run_damaged(paths)
    for name, (outcome, message) in results.items():
        assert outcome in ("CorruptImage", "LimitExceeded") and "boot catalog" in message, (name, message)
    damaged = iso9660.probe(BytesSource((tmp_path / "catalog-header.iso").read_bytes()))
    assert fspath.read_bytes(damaged, "/MixedCase.TXT", 100) == b"Mixed case name\n"
    with pytest.raises(CorruptImage, match="validation entry"):
        damaged.boot_catalog()


def test_rock_ridge_name_pieces_are_bounded():
    """NM pieces join into one name; continuation areas could make it as long as the
    directory budget: bounded by max_name_bytes."""
    piece = struct.pack("<2sBBB", b"NM", 5 + 200, 1, 1) + b"n" * 200  # flag CONTINUE: more follows
    area = piece * (LIMITS.max_name_bytes // 200 + 2)
    with pytest.raises(LimitExceeded, match="max_name_bytes"):
        susp.rock_ridge(susp.entries(BytesSource(area), area, 0, None, "test"), "test")
    short = piece * 2
    assert susp.rock_ridge(susp.entries(BytesSource(short), short, 0, None, "test"), "test").name == b"n" * 400
