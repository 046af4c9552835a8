"""The name hash of XFS directories and attributes (xfs_da_hashname): a rotating hash over
the name, four bytes at a time. Section "Directory and Attribute Hashing" (da btrees) of
"XFS Algorithms & Data Structures"."""

from __future__ import annotations

_MASK = 0xFFFFFFFF


def _rol32(value: int, shift: int) -> int:
    return ((value << shift) | (value >> (32 - shift))) & _MASK


def hashname(name: bytes) -> int:
    """The 32-bit hash XFS keeps in directory leaf entries for ``name``."""
    h = 0
    n = len(name)
    i = 0
    while n - i >= 4:
        h = (name[i] << 21) ^ (name[i + 1] << 14) ^ (name[i + 2] << 7) ^ name[i + 3] ^ _rol32(h, 7 * 4)
        i += 4
    left = n - i
    if left == 3:
        h = (name[i] << 14) ^ (name[i + 1] << 7) ^ name[i + 2] ^ _rol32(h, 7 * 3)
    elif left == 2:
        h = (name[i] << 7) ^ name[i + 1] ^ _rol32(h, 7 * 2)
    elif left == 1:
        h = name[i] ^ _rol32(h, 7)
    return h & _MASK
