"""CRC-32C: the accelerated path (the crc32c package, installed with the test extra) and
the pure-Python fallback agree with each other and with the published check values."""

from __future__ import annotations

import random

import pytest

from guestboot import crc32c
from prereq import unavailable


def test_check_values():
    # RFC 3720 (iSCSI) B.4 test vectors and the catalogue check value
    assert crc32c.crc32c(b"123456789") == 0xE3069283
    assert crc32c.crc32c(bytes(32)) == 0x8A9136AA
    assert crc32c.crc32c(b"\xff" * 32) == 0x62A8AB43
    assert crc32c.crc32c(bytes(range(32))) == 0x46DD794E
    assert crc32c.crc32c(b"") == 0


def test_the_accelerator_is_installed_with_the_test_extra():
    if crc32c.IMPLEMENTATION != "crc32c package":
        unavailable("the crc32c package (pip install -e '.[test]' again)")
    assert crc32c.update(0, b"x") == crc32c.update_python(0, b"x")


@pytest.mark.parametrize("seed", [0, 0xFFFFFFFF, 0x12345678])
def test_pure_python_matches_the_accelerated_path(seed):
    rng = random.Random(seed)
    for length in [*range(0, 70), 511, 512, 4096, 65537]:
        data = rng.randbytes(length)
        assert crc32c.update_python(seed, data) == crc32c.update(seed, data), length
    # chaining: feeding in pieces is the same as feeding at once
    data = rng.randbytes(1000)
    assert crc32c.update_python(crc32c.update_python(seed, data[:333]), data[333:]) == crc32c.update(seed, data)
    assert crc32c.update(seed, memoryview(data)) == crc32c.update(seed, bytearray(data))
