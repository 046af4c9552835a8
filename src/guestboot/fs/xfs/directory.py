"""XFS directory entries: short form in the inode ("Short Form Directories") and the data
blocks of block, leaf and node directories ("Block Directories", "Leaf Directories",
"Node Directories": the entries of all three live in data blocks below the 32 GiB leaf
offset; leaf and free-index blocks only speed up lookups and are not needed to list).

Each function parses one region and yields (name, inode number); every entry is checked
against the region's end, so a hostile length cannot reach past it.
"""

from __future__ import annotations

import struct
from typing import Iterator

from ...errors import CorruptImage
from .layout import (
    DIR2_BLOCK_MAGIC,
    DIR2_BLOCK_TAIL,
    DIR2_DATA_ENTRY_HEAD,
    DIR2_DATA_FREE_TAG,
    DIR2_DATA_HEADER_SIZE,
    DIR2_DATA_MAGIC,
    DIR2_DATA_UNUSED,
    DIR2_LEAF_ENTRY_SIZE,
    DIR2_SF_HEADER,
    DIR3_BLOCK_MAGIC,
    DIR3_DATA_HEADER_SIZE,
    DIR3_DATA_MAGIC,
)

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")


def short_form(fork: bytes, base: int, ftype: bool, where: str) -> tuple[int, list[tuple[bytes, int]]]:
    """(parent inode, [(name, inode)]) of a short-form directory held in ``fork``."""
    if len(fork) < DIR2_SF_HEADER.size + 4:
        raise CorruptImage(f"{where}: short-form directory header cut short", offset=base)
    count, i8count = DIR2_SF_HEADER.unpack_from(fork)
    ino_size = 8 if i8count else 4
    pos = DIR2_SF_HEADER.size
    if pos + ino_size > len(fork):
        raise CorruptImage(f"{where}: short-form directory header cut short", offset=base)
    parent = _inumber(fork, pos, ino_size)
    pos += ino_size
    entries = []
    for _i in range(count):  # count < 256, and each entry advances >= 4 bytes
        if pos + 3 > len(fork):
            raise CorruptImage(f"{where}: short-form entry cut short", offset=base + pos)
        namelen = fork[pos]
        end = pos + 3 + namelen + (1 if ftype else 0) + ino_size
        if namelen == 0 or end > len(fork):
            raise CorruptImage(f"{where}: short-form entry (name length {namelen}) runs past the fork",
                               offset=base + pos)
        name = fork[pos + 3 : pos + 3 + namelen]
        entries.append((name, _inumber(fork, end - ino_size, ino_size)))
        pos = end
    return parent, entries


def _inumber(raw: bytes, pos: int, size: int) -> int:
    return _U64.unpack_from(raw, pos)[0] if size == 8 else _U32.unpack_from(raw, pos)[0]


def data_header_size(crc: bool) -> int:
    return DIR3_DATA_HEADER_SIZE if crc else DIR2_DATA_HEADER_SIZE


def block_kind(raw: bytes, crc: bool) -> str | None:
    """"block" (a single-block directory), "data" (a data block of a leaf or node
    directory) or None (wrong magic for this version)."""
    magic = _U32.unpack_from(raw)[0]
    if magic == (DIR3_BLOCK_MAGIC if crc else DIR2_BLOCK_MAGIC):
        return "block"
    if magic == (DIR3_DATA_MAGIC if crc else DIR2_DATA_MAGIC):
        return "data"
    return None


def data_entries(raw: bytes, base: int, crc: bool, ftype: bool, single: bool, where: str) -> Iterator[tuple[bytes, int]]:
    """Entries of one directory data block (``single``: the block of a block directory,
    whose leaf entries and tail take the end of the block)."""
    size = len(raw)
    end = size
    if single:
        count, _stale = DIR2_BLOCK_TAIL.unpack_from(raw, size - DIR2_BLOCK_TAIL.size)
        end = size - DIR2_BLOCK_TAIL.size - count * DIR2_LEAF_ENTRY_SIZE
        if end < data_header_size(crc):
            raise CorruptImage(f"{where}: block directory claims {count} leaf entries", offset=base + size - 8)
    pos = data_header_size(crc)
    extra = 1 if ftype else 0
    while pos < end:  # each step advances >= 8 bytes
        if pos + 4 > end:
            raise CorruptImage(f"{where}: directory entry cut short", offset=base + pos)
        if _U16.unpack_from(raw, pos)[0] == DIR2_DATA_FREE_TAG:
            length = DIR2_DATA_UNUSED.unpack_from(raw, pos)[1]
            if length < 8 or length % 8 or pos + length > end:
                raise CorruptImage(f"{where}: unused directory space of {length} bytes", offset=base + pos)
            pos += length
            continue
        if pos + DIR2_DATA_ENTRY_HEAD.size > end:
            raise CorruptImage(f"{where}: directory entry cut short", offset=base + pos)
        ino, namelen = DIR2_DATA_ENTRY_HEAD.unpack_from(raw, pos)
        length = (DIR2_DATA_ENTRY_HEAD.size + namelen + extra + 2 + 7) & ~7
        if namelen == 0 or pos + length > end:
            raise CorruptImage(f"{where}: directory entry (name length {namelen}) runs past its block",
                               offset=base + pos)
        if _U16.unpack_from(raw, pos + length - 2)[0] != pos:
            raise CorruptImage(f"{where}: directory entry tag does not match its place", offset=base + pos)
        yield raw[pos + DIR2_DATA_ENTRY_HEAD.size : pos + DIR2_DATA_ENTRY_HEAD.size + namelen], ino
        pos += length
