"""GPT GUIDs as guestboot prints them (UEFI Appendix A: TimeLow, TimeMid and
TimeHighAndVersion little-endian, the last eight bytes in order), checked against the
standard library's reading of the same bytes and against GUIDs the UEFI spec lists."""

from __future__ import annotations

import random
import uuid

import pytest

from guestboot.volume.gpt import _guid


@pytest.mark.parametrize(
    "stored, expected",
    [
        # EFI System Partition (UEFI 5.3.3 Table 5-7), as sgdisk writes it on disk
        ("28732ac11ff8d211ba4b00a0c93ec93b", "c12a7328-f81f-11d2-ba4b-00a0c93ec93b"),
        # Linux filesystem data
        ("af3dc60f838472478e793d69d8477de4", "0fc63daf-8483-4772-8e79-3d69d8477de4"),
        # BIOS boot partition ("Hah!IdontNeedEFI")
        ("4861682149646f6e744e656564454649", "21686148-6449-6e6f-744e-656564454649"),
        ("00" * 16, "00000000-0000-0000-0000-000000000000"),
        ("ff" * 16, "ffffffff-ffff-ffff-ffff-ffffffffffff"),
    ],
)
def test_known_guids(stored, expected):
    raw = bytes.fromhex(stored)
    assert _guid(raw) == expected
    assert _guid(raw) == str(uuid.UUID(bytes_le=raw))


def test_agrees_with_uuid_bytes_le():
    rng = random.Random(20261125)
    for _ in range(2000):
        raw = rng.randbytes(16)
        assert _guid(raw) == str(uuid.UUID(bytes_le=raw)), raw.hex()
