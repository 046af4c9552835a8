"""The directory-name hashes of ext3/ext4 hash-tree (htree) directories.

Section "Hash Tree Directories" of the kernel's ext4 document: the root names a hash
version (legacy, half-MD4, TEA; each signed or unsigned by how name bytes are widened,
chosen by the superblock's unsigned-hash flag) and the superblock gives a 16-byte seed.
Written from the algorithm's description: 32-bit arithmetic, hash with the low bit clear.
"""

from __future__ import annotations

import struct

MASK = 0xFFFFFFFF

LEGACY, HALF_MD4, TEA, LEGACY_UNSIGNED, HALF_MD4_UNSIGNED, TEA_UNSIGNED = range(6)
KNOWN_VERSIONS = frozenset(range(6))

_DEFAULT_SEED = (0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476)
_SEED = struct.Struct("<4I")


def _widen(byte: int, signed: bool) -> int:
    return byte - 256 if signed and byte >= 128 else byte


def _legacy(name: bytes, signed: bool) -> int:
    h0, h1 = 0x12A3FE2D, 0x37ABE8F9
    for byte in name:
        value = (h1 + (h0 ^ ((_widen(byte, signed) * 7152373) & MASK))) & MASK
        if value & 0x80000000:
            value = (value - 0x7FFFFFFF) & MASK
        h1, h0 = h0, value
    return (h0 << 1) & MASK


def _words(chunk: bytes, total_left: int, count: int, signed: bool) -> list[int]:
    """Pack up to count*4 name bytes into count words, padded with a length pattern."""
    pad = (total_left | (total_left << 8)) & MASK
    pad = (pad | (pad << 16)) & MASK
    value = pad
    words: list[int] = []
    for i, byte in enumerate(chunk[: count * 4]):
        value = (_widen(byte, signed) + (value << 8)) & MASK
        if i % 4 == 3:
            words.append(value)
            value = pad
    if len(words) < count:
        words.append(value)
    while len(words) < count:
        words.append(pad)
    return words


def _rol(x: int, s: int) -> int:
    return ((x << s) | (x >> (32 - s))) & MASK


_K2 = 0o13240474631
_K3 = 0o15666365641


def _half_md4(buf: list[int], w: list[int]) -> None:
    a, b, c, d = buf

    def f(x, y, z):
        return z ^ (x & (y ^ z))

    def g(x, y, z):
        return ((x & y) + ((x ^ y) & z)) & MASK

    def h(x, y, z):
        return x ^ y ^ z

    # Round 1, 2, 3: (function, word index, shift, constant), the registers rotating a,d,c,b.
    for fn, order, shifts, k in (
        (f, (0, 1, 2, 3, 4, 5, 6, 7), (3, 7, 11, 19), 0),
        (g, (1, 3, 5, 7, 0, 2, 4, 6), (3, 5, 9, 13), _K2),
        (h, (3, 7, 2, 6, 1, 5, 0, 4), (3, 9, 11, 15), _K3),
    ):
        for step, index in enumerate(order):
            s = shifts[step % 4]
            x = (w[index] + k) & MASK
            slot = step % 4
            if slot == 0:
                a = _rol((a + fn(b, c, d) + x) & MASK, s)
            elif slot == 1:
                d = _rol((d + fn(a, b, c) + x) & MASK, s)
            elif slot == 2:
                c = _rol((c + fn(d, a, b) + x) & MASK, s)
            else:
                b = _rol((b + fn(c, d, a) + x) & MASK, s)
    buf[0] = (buf[0] + a) & MASK
    buf[1] = (buf[1] + b) & MASK
    buf[2] = (buf[2] + c) & MASK
    buf[3] = (buf[3] + d) & MASK


def _tea(buf: list[int], w: list[int]) -> None:
    total = 0
    b0, b1 = buf[0], buf[1]
    a, b, c, d = w
    for _round in range(16):
        total = (total + 0x9E3779B9) & MASK
        b0 = (b0 + ((((b1 << 4) + a) & MASK) ^ ((b1 + total) & MASK) ^ (((b1 >> 5) + b) & MASK))) & MASK
        b1 = (b1 + ((((b0 << 4) + c) & MASK) ^ ((b0 + total) & MASK) ^ (((b0 >> 5) + d) & MASK))) & MASK
    buf[0] = (buf[0] + b0) & MASK
    buf[1] = (buf[1] + b1) & MASK


def name_hash(name: bytes, version: int, seed: bytes) -> int:
    """The major hash of ``name`` (low bit clear) for a hash ``version`` in KNOWN_VERSIONS."""
    signed = version in (LEGACY, HALF_MD4, TEA)
    if version in (LEGACY, LEGACY_UNSIGNED):
        value = _legacy(name, signed)
    else:
        seed_words = _SEED.unpack(seed)
        buf = list(seed_words) if any(seed_words) else list(_DEFAULT_SEED)
        if version in (HALF_MD4, HALF_MD4_UNSIGNED):
            pos = 0
            while True:
                _half_md4(buf, _words(name[pos:], len(name) - pos, 8, signed))
                pos += 32
                if pos >= len(name):
                    break
            value = buf[1]
        else:
            pos = 0
            while True:
                _tea(buf, _words(name[pos:], len(name) - pos, 4, signed))
                pos += 16
                if pos >= len(name):
                    break
            value = buf[0]
    value &= ~1 & MASK
    if value == 0xFFFFFFFE:  # the end-of-directory marker is reserved
        value = 0xFFFFFFFC
    return value
