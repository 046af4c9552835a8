"""Checksums of btrfs metadata: the superblock's csum_type names the algorithm used for
the superblock and every tree block ("Checksum algorithms" in the btrfs documentation).

The checksum covers everything after the 32-byte csum field. CRC-32C is stored as a
little-endian u32 (the standard CRC, seed ~0 and final inversion); XXH64 (seed 0) as a
little-endian u64; SHA-256 and BLAKE2b-256 as their 32-byte digests. The standard library
has no XXH64: it is written out below from the algorithm's specification (xxHash's
doc/xxhash_spec.md, "XXH64"), about 2 ms per 16 KiB tree block.
"""

from __future__ import annotations

import struct
from typing import Callable

from .layout import CSUM_BLAKE2, CSUM_CRC32C, CSUM_NAMES, CSUM_SHA256, CSUM_SIZE, CSUM_XXHASH

_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_M64 = (1 << 64) - 1
_P1, _P2, _P3 = 0x9E3779B185EBCA87, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9
_P4, _P5 = 0x85EBCA77C2B2AE63, 0x27D4EB2F165667C5


def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (64 - r))) & _M64


def _round(acc: int, lane: int) -> int:
    acc = (acc + lane * _P2) & _M64
    return (_rotl(acc, 31) * _P1) & _M64


def xxh64(data: bytes, seed: int = 0) -> int:
    """XXH64 of ``data``."""
    n = len(data)
    pos = 0
    if n >= 32:
        v1, v2, v3, v4 = (seed + _P1 + _P2) & _M64, (seed + _P2) & _M64, seed, (seed - _P1) & _M64
        lanes = struct.unpack_from(f"<{(n // 32) * 4}Q", data)
        for i in range(0, len(lanes), 4):
            v1 = _round(v1, lanes[i])
            v2 = _round(v2, lanes[i + 1])
            v3 = _round(v3, lanes[i + 2])
            v4 = _round(v4, lanes[i + 3])
        pos = len(lanes) * 8
        h = (_rotl(v1, 1) + _rotl(v2, 7) + _rotl(v3, 12) + _rotl(v4, 18)) & _M64
        for v in (v1, v2, v3, v4):
            h = ((h ^ _round(0, v)) * _P1 + _P4) & _M64
    else:
        h = (seed + _P5) & _M64
    h = (h + n) & _M64
    while pos + 8 <= n:
        h = (_rotl(h ^ _round(0, _U64.unpack_from(data, pos)[0]), 27) * _P1 + _P4) & _M64
        pos += 8
    if pos + 4 <= n:
        h = (_rotl(h ^ (_U32.unpack_from(data, pos)[0] * _P1 & _M64), 23) * _P2 + _P3) & _M64
        pos += 4
    while pos < n:
        h = (_rotl(h ^ (data[pos] * _P5 & _M64), 11) * _P1) & _M64
        pos += 1
    h ^= h >> 33
    h = (h * _P2) & _M64
    h ^= h >> 29
    h = (h * _P3) & _M64
    return h ^ (h >> 32)


def _xxhash(data: bytes) -> bytes:
    return _U64.pack(xxh64(data))


def _crc32c(data: bytes) -> bytes:
    from ... import crc32c  # lazily: probing a volume that is not btrfs needs none of this

    return _U32.pack(crc32c.crc32c(data))


def _sha256(data: bytes) -> bytes:
    import hashlib  # lazily: loading OpenSSL costs start-up time most volumes never need

    return hashlib.sha256(data).digest()


def _blake2b(data: bytes) -> bytes:
    import hashlib

    return hashlib.blake2b(data, digest_size=32).digest()


_ALGORITHMS: dict[int, Callable[[bytes], bytes]] = {
    CSUM_CRC32C: _crc32c,
    CSUM_XXHASH: _xxhash,
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
