"""Checksums of btrfs metadata: the superblock's csum_type names the algorithm used for
the superblock and every tree block ("Checksum algorithms" in the btrfs documentation).

The checksum covers everything after the 32-byte csum field. CRC-32C is stored as a
little-endian u32 (the standard CRC, seed ~0 and final inversion); SHA-256 and BLAKE2b-256
as their 32-byte digests. xxhash64 has no implementation in the standard library: such
volumes are read with their metadata checksums unverified (structure is still checked)
and a warning says so.
"""

from __future__ import annotations

import hashlib
import struct
from typing import Callable

from ... import crc32c
from .layout import CSUM_BLAKE2, CSUM_CRC32C, CSUM_NAMES, CSUM_SHA256, CSUM_SIZE

_U32 = struct.Struct("<I")


def _crc32c(data: bytes) -> bytes:
    return _U32.pack(crc32c.crc32c(data))


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _blake2b(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=32).digest()


_ALGORITHMS: dict[int, Callable[[bytes], bytes]] = {
    CSUM_CRC32C: _crc32c,
    CSUM_SHA256: _sha256,
    CSUM_BLAKE2: _blake2b,
}


class Checker:
    """Verifies blocks for one csum_type; ``verifies`` is False for an algorithm we lack."""

    def __init__(self, csum_type: int):
        self.csum_type = csum_type
        self.name = CSUM_NAMES.get(csum_type, f"type {csum_type}")
        self._digest = _ALGORITHMS.get(csum_type)
        self.verifies = self._digest is not None

    def known(self) -> bool:
        return self.csum_type in CSUM_NAMES

    def good(self, block: bytes) -> bool:
        """Whether ``block`` (its csum field first) carries the checksum of its contents."""
        if self._digest is None:
            return True
        digest = self._digest(block[CSUM_SIZE:])
        return block[: len(digest)] == digest
