"""Directory blocks: linear entries ("Linear (Classic) Directories") and the hash-tree
index ("Hash Tree Directories") of the kernel's ext4 document."""

from __future__ import annotations

from typing import Iterator, NamedTuple

from ...errors import CorruptImage
from . import dirhash
from .layout import (
    DIRENT,
    DIRENT_HEADER_SIZE,
    DIRENT_OLD,
    DX_COUNT_LIMIT,
    DX_ENTRY,
    DX_NODE_OFFSET,
    DX_ROOT_INFO,
    DX_ROOT_INFO_OFFSET,
)


class Entry(NamedTuple):
    ino: int
    name: bytes
    file_type: int


def rec_len(raw: int, block_size: int) -> int:
    """The on-disk rec_len as a byte count (64 KiB blocks encode the top bits in the low ones)."""
    if block_size < 65536:
        return raw
    if raw in (0, 65535):
        return block_size
    return (raw & 65532) | ((raw & 3) << 16)


def entries(data: bytes, base: int, block_size: int, filetype: bool, where: str) -> Iterator[Entry]:
    """Entries of one directory region ``data`` (a block, or an inline area) that begins at
    byte offset ``base`` of the volume. Unused entries (inode 0) are skipped."""
    pos = 0
    end = len(data)
    while pos < end:
        if end - pos < DIRENT_HEADER_SIZE:
            raise CorruptImage(f"{where}: directory entry header cut short", offset=base + pos)
        if filetype:
            ino, raw_len, name_len, file_type = DIRENT.unpack_from(data, pos)
        else:
            ino, raw_len, name_len = DIRENT_OLD.unpack_from(data, pos)
            file_type = 0
        length = rec_len(raw_len, block_size)
        if length < DIRENT_HEADER_SIZE or length % 4 or pos + length > end or DIRENT_HEADER_SIZE + name_len > length:
            raise CorruptImage(
                f"{where}: bad directory entry (rec_len {length}, name_len {name_len})", offset=base + pos
            )
        if ino:
            if name_len == 0:
                raise CorruptImage(f"{where}: directory entry with an empty name", offset=base + pos)
            name = data[pos + DIRENT_HEADER_SIZE : pos + DIRENT_HEADER_SIZE + name_len]
            yield Entry(ino, name, file_type)
        pos += length


class DxRoot(NamedTuple):
    hash_version: int
    levels: int  # index levels below the root (0: root points at leaves)


def dx_root(block: bytes, base: int, largedir: bool, where: str) -> DxRoot:
    reserved, version, info_length, levels, _flags = DX_ROOT_INFO.unpack_from(block, DX_ROOT_INFO_OFFSET)
    if reserved != 0 or info_length != 8:
        raise CorruptImage(
            f"{where}: bad hash-tree root (info length {info_length})", offset=base + DX_ROOT_INFO_OFFSET
        )
    if levels > (2 if largedir else 1):
        raise CorruptImage(f"{where}: hash tree with {levels + 1} levels", offset=base + DX_ROOT_INFO_OFFSET)
    return DxRoot(version, levels)


def dx_entries(block: bytes, start: int, base: int, where: str) -> list[tuple[int, int]]:
    """(hash, block) pairs of one index node; the first entry's hash is taken as 0."""
    if start + DX_COUNT_LIMIT.size > len(block):
        raise CorruptImage(f"{where}: hash-tree node cut short", offset=base + start)
    limit, count, first = DX_COUNT_LIMIT.unpack_from(block, start)
    room = (len(block) - start) // DX_ENTRY.size
    if count == 0 or count > limit or limit > room:
        raise CorruptImage(f"{where}: hash-tree node claims {count} of {limit} entries", offset=base + start)
    pairs = [(0, first)]
    previous = 0
    for i in range(1, count):
        hash_value, child = DX_ENTRY.unpack_from(block, start + i * DX_ENTRY.size)
        if hash_value < previous:
            raise CorruptImage(f"{where}: hash-tree entries out of order", offset=base + start + i * DX_ENTRY.size)
        previous = hash_value
        pairs.append((hash_value, child))
    return pairs


def dx_root_start() -> int:
    return DX_ROOT_INFO_OFFSET + DX_ROOT_INFO.size


def dx_node_start() -> int:
    return DX_NODE_OFFSET


def pick(pairs: list[tuple[int, int]], target: int) -> int:
    """Index of the last entry whose hash is <= target."""
    lo, hi = 1, len(pairs)
    while lo < hi:
        mid = (lo + hi) // 2
        if pairs[mid][0] > target:
            hi = mid
        else:
            lo = mid + 1
    return lo - 1


def name_hash(name: bytes, version: int, seed: bytes) -> int | None:
    """The hash for a lookup, or None for a hash this driver does not compute."""
    if version not in dirhash.KNOWN_VERSIONS:
        return None
    return dirhash.name_hash(name, version, seed)
