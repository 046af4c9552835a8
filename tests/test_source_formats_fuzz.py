"""Hostile image-format metadata: images qemu-img made (every reader: qcow2 plain, zlib,
zstd, extended L2; VHD dynamic; VHDX; VMDK sparse and streamOptimized) with bytes
flipped in their headers and tables, or cut short, then opened and read at random
ranges. Every case ends in success or a GuestbootError, within a few seconds."""

from __future__ import annotations

import random
import time

import pytest
from prereq import unavailable

from builders.image_formats import convert, format_tree, gpt_ext4_disk
from builders.initramfs import ToolMissing
from guestboot.errors import GuestbootError
from guestboot.source import BytesSource
from guestboot.source.formats import open_format

CASES = 120
CASE_SECONDS = 5.0
FORMATS = {
    "qcow2": ("qcow2", []),
    "qcow2-zlib": ("qcow2", ["-c"]),
    "qcow2-zstd-l2": ("qcow2", ["-c", "-o", "compression_type=zstd,extended_l2=on"]),
    "vhd": ("vpc", ["-o", "subformat=dynamic"]),
    "vhdx": ("vhdx", ["-o", "subformat=dynamic,block_size=1M"]),
    "vmdk": ("vmdk", ["-o", "subformat=monolithicSparse"]),
    "vmdk-stream": ("vmdk", ["-o", "subformat=streamOptimized"]),
}


@pytest.fixture(scope="session")
def images(tmp_path_factory) -> dict[str, bytes]:
    top = tmp_path_factory.mktemp("fuzz-formats")
    raw = gpt_ext4_disk(top / "disk.raw", format_tree(top / "tree"), size=8 << 20)
    try:
        return {name: convert(raw, fmt, options, top / name).read_bytes() for name, (fmt, options) in FORMATS.items()}
    except ToolMissing as err:
        unavailable(str(err))


def _metadata_offsets(data: bytes, rng: random.Random) -> int:
    """Where to flip: mostly the first 64 KiB and the last sectors (headers, tables,
    footers), sometimes anywhere."""
    pick = rng.random()
    if pick < 0.6:
        return rng.randrange(min(len(data), 64 * 1024))
    if pick < 0.75:
        return len(data) - 1 - rng.randrange(min(len(data), 2048))
    return rng.randrange(len(data))


@pytest.mark.parametrize("name", FORMATS)
def test_mutated_images_fail_typed(images, name):
    rng = random.Random(f"formats-{name}")
    original = images[name]
    for case in range(CASES):
        data = bytearray(original)
        for _ in range(rng.randint(1, 16)):
            data[_metadata_offsets(data, rng)] = rng.randrange(256)
        if rng.random() < 0.1:
            del data[rng.randrange(len(data)) :]
        started = time.monotonic()
        try:
            disk = open_format(BytesSource(bytes(data), name=f"{name}-{case}"))
            for _ in range(8):
                at = rng.randrange(max(1, disk.size))
                length = min(rng.randrange(256 * 1024), disk.size - at)
                disk.pread(at, length)
                for _run in disk.runs(at, length):
                    pass
        except GuestbootError:
            pass
        assert time.monotonic() - started < CASE_SECONDS, f"case {case} of {name} took too long"
