"""VMDK images made by qemu-img from the raw GPT + ext4 disk, every subformat it writes:
monolithicSparse, streamOptimized (compressed grains), monolithicFlat and the split
twoGbMaxExtent* (a descriptor and extent files, through --allow-backing-dir), and a delta
link onto a parent; each reads back as the raw disk."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from format_check import assert_guest_files, assert_same_disk, open_disk, run_bytes
from prereq import unavailable

from builders.image_formats import convert, format_tree, gpt_ext4_disk, qemu_img
from builders.initramfs import ToolMissing
from guestboot.errors import CorruptImage, LimitExceeded, PermissionDenied, Unsupported
from guestboot.source.opener import DirectoryOpener
from guestboot.source.vmdk import SparseExtent

MiB = 1 << 20
GiB = 1 << 30
SUBFORMATS = ["monolithicSparse", "streamOptimized", "monolithicFlat", "twoGbMaxExtentSparse", "twoGbMaxExtentFlat"]
SELF_CONTAINED = {"monolithicSparse", "streamOptimized"}


@pytest.fixture(scope="session")
def tree(tmp_path_factory) -> Path:
    return format_tree(tmp_path_factory.mktemp("vmdk-tree"))


@pytest.fixture(scope="session")
def raw(tmp_path_factory, tree) -> Path:
    return gpt_ext4_disk(tmp_path_factory.mktemp("vmdk-raw") / "disk.raw", tree)


@pytest.fixture(scope="session")
def vmdks(tmp_path_factory, raw) -> dict[str, Path]:
    made = {}
    for subformat in SUBFORMATS:
        directory = tmp_path_factory.mktemp(subformat)
        try:
            made[subformat] = convert(raw, "vmdk", ["-o", f"subformat={subformat}"], directory / "disk.vmdk")
        except ToolMissing as err:
            unavailable(str(err))
    return made


@pytest.mark.parametrize("subformat", SUBFORMATS)
def test_every_subformat_reads_as_the_raw_disk(vmdks, raw, tree, subformat):
    image = vmdks[subformat]
    opener = None if subformat in SELF_CONTAINED else DirectoryOpener(str(image.parent))
    try:
        disk, fd = open_disk(image, opener)
        try:
            assert_same_disk(disk, raw)
            assert_guest_files(image, tree, opener)
            runs = list(disk.runs())
            if subformat == "streamOptimized":
                assert any(r.data is not None for r in runs)  # compressed grains
            else:
                assert all(r.data is None for r in runs)  # plain grains and flat extents: zero-copy
        finally:
            os.close(fd)
    finally:
        if opener is not None:
            opener.close()


def test_a_descriptor_needs_the_directory_allowed(vmdks, tree, tmp_path):
    image = vmdks["monolithicFlat"]
    with pytest.raises(Unsupported, match="'disk-flat.vmdk'"):
        open_disk(image)
    done = subprocess.run([sys.executable, "-m", "guestboot", "list", str(image)], capture_output=True, timeout=120)
    assert done.returncode == 4
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "guestboot", "extract", "--allow-backing-dir", str(image.parent),
                           str(image), "-o", str(out)], capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (out / "kernel").read_bytes() == (tree / "vmlinuz").read_bytes()


def test_split_extents_of_a_large_disk(raw, tmp_path):
    """A 4.5 GiB disk (the raw disk, then a sparse tail) in three 2 GiB sparse extents."""
    big = tmp_path / "big.raw"
    big.write_bytes(raw.read_bytes())
    os.truncate(big, 4 * GiB + 512 * MiB)
    image = convert(big, "vmdk", ["-o", "subformat=twoGbMaxExtentSparse"], tmp_path / "split.vmdk")
    assert sorted(p.name for p in tmp_path.glob("split-s*.vmdk")) == ["split-s001.vmdk", "split-s002.vmdk",
                                                                      "split-s003.vmdk"]
    expected = raw.read_bytes()
    with DirectoryOpener(str(tmp_path)) as opener:
        disk, fd = open_disk(image, opener)
        try:
            assert disk.size == 4 * GiB + 512 * MiB
            assert disk.pread(0, len(expected)) == expected
            # the rest is holes, across the extents' boundaries, without reading 4 GiB of zeros
            hashed = hashlib.sha256()
            tail = 0
            for run in disk.runs(len(expected)):
                if run.fd is None and run.data is None:
                    tail += run.length
                else:
                    data = run_bytes(run)
                    assert data.count(0) == len(data)
                    tail += len(data)
            assert tail == disk.size - len(expected)
            for at in (2 * GiB - 4096, 4 * GiB - 100, disk.size - 512):
                assert disk.pread(at, 512) == bytes(512)
        finally:
            os.close(fd)


def test_a_delta_link_reads_through_its_parent(raw, tmp_path):
    convert(raw, "vmdk", ["-o", "subformat=monolithicSparse"], tmp_path / "base.vmdk")
    qemu_img("create", "-q", "-f", "vmdk", "-b", "base.vmdk", "-F", "vmdk", "child.vmdk", cwd=tmp_path)
    subprocess.run(["qemu-io", "-f", "vmdk", "-c", "write -P 0x5a 20M 100k", str(tmp_path / "child.vmdk")],
                   check=True, capture_output=True, timeout=60)
    expected = bytearray(raw.read_bytes())
    expected[20 * MiB : 20 * MiB + 102400] = b"\x5a" * 102400
    (tmp_path / "expected.raw").write_bytes(bytes(expected))
    with pytest.raises(Unsupported, match="'base.vmdk'"):
        open_disk(tmp_path / "child.vmdk")
    with DirectoryOpener(str(tmp_path)) as opener:
        disk, fd = open_disk(tmp_path / "child.vmdk", opener)
        try:
            assert isinstance(disk, SparseExtent) and disk.parent is not None
            assert_same_disk(disk, tmp_path / "expected.raw")
        finally:
            os.close(fd)


# --- hostile ---------------------------------------------------------------------------


def _descriptor(tmp_path: Path, extents: str) -> Path:
    path = tmp_path / "d.vmdk"
    path.write_text(f'# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\n'
                    f'createType="monolithicFlat"\n\n# Extent description\n{extents}\n')
    return path


@pytest.mark.parametrize("extents, error, message", [
    ('RW 2048 FLAT "/etc/passwd" 0', PermissionDenied, "outside the directory allowed"),
    ('RW 2048 FLAT "../x.raw" 0', PermissionDenied, "through '..', out of the directory"),
    ('RW 2048 FLAT "link.raw" 0', PermissionDenied, "through a symlink"),
    ('RW 2048 FLAT "nbd://localhost/x" 0', Unsupported, "a protocol or URL"),
    ('RW 4096 FLAT "data.raw" 0', CorruptImage, "past its end"),
    ('RW 2048 VMFSSPARSE "data.raw"', Unsupported, "extents of type VMFSSPARSE"),
    ("\n".join(['RW 1 ZERO'] * 1025), LimitExceeded, "max_image_extents"),
    ("", CorruptImage, "lists no extents"),
])
def test_hostile_descriptors(tmp_path, extents, error, message):
    (tmp_path / "data.raw").write_bytes(bytes(MiB))
    (tmp_path / "link.raw").symlink_to("/etc/passwd")
    image = _descriptor(tmp_path, extents)
    with DirectoryOpener(str(tmp_path)) as opener, pytest.raises(error, match=message):
        open_disk(image, opener)


def test_a_compressed_grain_that_inflates_past_its_size(vmdks, tmp_path):
    import zlib

    image = tmp_path / "bomb.vmdk"
    image.write_bytes(vmdks["streamOptimized"].read_bytes())
    disk, fd = open_disk(image)
    try:
        grain = next(g for g in range(disk.size // disk.grain_size)
                     if disk._table(g // disk.per_table) is not None and disk._table(g // disk.per_table)[g % disk.per_table])
        at = disk._table(grain // disk.per_table)[grain % disk.per_table] * 512
        bomb = zlib.compress(bytes(disk.grain_size + 512))
        size = int.from_bytes(os.pread(fd, 4, at + 8), "little")
        assert len(bomb) <= size
        with open(image, "r+b") as f:
            f.seek(at + 12)
            f.write(bomb)
        fresh, fd2 = open_disk(image)
        with pytest.raises(CorruptImage, match="inflates past its 65536 bytes"):
            fresh.pread(grain * disk.grain_size, 1)
        os.close(fd2)
    finally:
        os.close(fd)


@pytest.mark.parametrize("field, value, error, message", [
    (20, (1 << 40).to_bytes(8, "little"), CorruptImage, "grain of 1099511627776 sectors"),
    (20, (3).to_bytes(8, "little"), CorruptImage, "grain of 3 sectors"),
    (12, (1 << 60).to_bytes(8, "little"), CorruptImage, "capacity of"),
    (12, (1 << 50).to_bytes(8, "little"), LimitExceeded, "max_image_table"),
    (56, (1 << 40).to_bytes(8, "little"), CorruptImage, "grain directory at .* past the end"),
    (4, (9).to_bytes(4, "little"), Unsupported, "version 9"),
])
def test_hostile_sparse_headers(vmdks, tmp_path, field, value, error, message):
    data = bytearray(vmdks["monolithicSparse"].read_bytes())
    data[field : field + len(value)] = value
    (tmp_path / "bad.vmdk").write_bytes(bytes(data))
    with pytest.raises(error, match=message):
        open_disk(tmp_path / "bad.vmdk")


def test_a_stream_optimized_footer_names_the_grain_directory(vmdks, raw, tmp_path):
    """VMware's streamOptimized writer puts GD_AT_END in the header and the real header
    in a footer (after a footer marker, before the end-of-stream marker); qemu-img 7.2
    writes the grain directory offset in the header itself, so that layout is made here
    from its file: the same grains, the header's gdOffset moved into a footer."""
    data = bytearray(vmdks["streamOptimized"].read_bytes())
    header = bytes(data[:512])
    data[56:64] = (0xFFFFFFFFFFFFFFFF).to_bytes(8, "little")  # gdOffset: GD_AT_END
    marker = (1).to_bytes(8, "little") + bytes(4) + (3).to_bytes(4, "little")  # a footer marker (type 3)
    data += marker.ljust(512, b"\0") + header + bytes(512)  # then the end-of-stream marker
    image = tmp_path / "footer.vmdk"
    image.write_bytes(bytes(data))
    disk, fd = open_disk(image)
    try:
        assert_same_disk(disk, raw, ranges=16)
    finally:
        os.close(fd)
    data[-1024:-512] = bytes(512)  # no footer where the header says it is
    image.write_bytes(bytes(data))
    with pytest.raises(CorruptImage, match="no KDMV magic"):
        open_disk(image)
