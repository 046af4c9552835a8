"""Logical to physical addresses: the system chunk array and the chunk tree ("Chunk tree"
and "Chunk item" in the btrfs on-disk format page).

Every address in a btrfs tree is logical. A chunk maps ``length`` logical bytes from
``start`` onto stripes on devices, by profile: SINGLE and DUP/RAID1/RAID1C3/RAID1C4 (each
stripe a full copy), RAID0 (``stripe_len`` pieces round-robin), RAID10 (RAID0 over mirror
sets of ``sub_stripes``). RAID5/6 chunks are refused as Unsupported when read. Only this
device is open: a stripe on another device is skipped when another copy exists and is
Unsupported ("device N missing") otherwise.
"""

from __future__ import annotations

import bisect
from typing import Iterator, NamedTuple

from ...errors import CorruptImage, LimitExceeded, Unsupported
from ...limits import LIMITS
from .layout import (
    BG_DUP,
    BG_PROFILE_MASK,
    BG_RAID0,
    BG_RAID1,
    BG_RAID1C3,
    BG_RAID1C4,
    BG_RAID5,
    BG_RAID6,
    BG_RAID10,
    CHUNK,
    CHUNK_ITEM_KEY,
    DISK_KEY,
    STRIPE,
)

_MIRRORED = BG_DUP | BG_RAID1 | BG_RAID1C3 | BG_RAID1C4
_COPIES = {0: 1, BG_DUP: 2, BG_RAID1: 2, BG_RAID1C3: 3, BG_RAID1C4: 4}


class Chunk(NamedTuple):
    start: int  # logical
    length: int
    type: int
    stripe_len: int
    sub_stripes: int
    stripes: tuple[tuple[int, int], ...]  # (devid, physical offset)
    offset: int  # where the item was read (for error messages)


def parse_chunk(raw: bytes, pos: int, logical: int, base: int, where: str) -> tuple[Chunk, int]:
    """The chunk item at ``pos`` of ``raw`` (``base`` is raw's byte offset, for errors) and
    its size in bytes."""
    if pos + CHUNK.size > len(raw):
        raise CorruptImage(f"{where}: chunk item cut short", offset=base + pos)
    length, _owner, stripe_len, type_, _align, _width, _sector, num_stripes, sub_stripes = CHUNK.unpack_from(raw, pos)
    size = CHUNK.size + num_stripes * STRIPE.size
    if num_stripes == 0 or pos + size > len(raw):
        raise CorruptImage(f"{where}: chunk at {logical:#x} with {num_stripes} stripes does not fit its item",
                           offset=base + pos)
    if length == 0 or logical + length > 1 << 64:
        raise CorruptImage(f"{where}: chunk at {logical:#x} of {length} bytes", offset=base + pos)
    profile = type_ & BG_PROFILE_MASK
    if profile & (BG_RAID0 | BG_RAID10) and (stripe_len == 0 or stripe_len & (stripe_len - 1)):
        raise CorruptImage(f"{where}: chunk at {logical:#x} has stripe length {stripe_len}", offset=base + pos)
    if profile & BG_RAID10 and (sub_stripes == 0 or num_stripes % sub_stripes):
        raise CorruptImage(f"{where}: RAID10 chunk at {logical:#x} with {num_stripes} stripes in sets of "
                           f"{sub_stripes}", offset=base + pos)
    if profile in _COPIES and num_stripes < _COPIES[profile]:
        raise CorruptImage(f"{where}: chunk at {logical:#x} has {num_stripes} stripes for its profile",
                           offset=base + pos)
    if profile & (profile - 1):
        raise CorruptImage(f"{where}: chunk at {logical:#x} has several profiles ({type_:#x})", offset=base + pos)
    stripes = tuple(
        STRIPE.unpack_from(raw, pos + CHUNK.size + i * STRIPE.size)[:2] for i in range(num_stripes)
    )
    return Chunk(logical, length, type_, stripe_len, sub_stripes, stripes, base + pos), size


def sys_chunks(array: bytes, base: int, where: str) -> Iterator[Chunk]:
    """Chunks of the superblock's sys_chunk_array (key, chunk item, key, chunk item …)."""
    pos = 0
    while pos < len(array):  # each step consumes at least a key and a chunk header
        if pos + DISK_KEY.size > len(array):
            raise CorruptImage(f"{where}: system chunk array entry cut short", offset=base + pos)
        _objectid, key_type, logical = DISK_KEY.unpack_from(array, pos)
        if key_type != CHUNK_ITEM_KEY:
            raise CorruptImage(f"{where}: system chunk array holds key type {key_type}", offset=base + pos)
        pos += DISK_KEY.size
        chunk, size = parse_chunk(array, pos, logical, base, where)
        yield chunk
        pos += size


class ChunkMap:
    """Sorted, non-overlapping chunks; ``copies(logical, length)`` says where to read."""

    def __init__(self, devid: int, device_size: int, where: str):
        self.devid = devid
        self.device_size = device_size
        self.where = where
        self._starts: list[int] = []
        self._chunks: list[Chunk] = []

    def __len__(self) -> int:
        return len(self._chunks)

    def add(self, chunk: Chunk) -> None:
        if len(self._chunks) >= LIMITS.max_chunks:
            raise LimitExceeded(f"{self.where}: more than {LIMITS.max_chunks} chunks (max_chunks)",
                                offset=chunk.offset)
        i = bisect.bisect_right(self._starts, chunk.start)
        if i > 0 and self._chunks[i - 1][:-1] == chunk[:-1]:
            return  # the chunk tree repeats the system chunks of the superblock
        if (i > 0 and self._chunks[i - 1].start + self._chunks[i - 1].length > chunk.start) or (
            i < len(self._chunks) and chunk.start + chunk.length > self._starts[i]
        ):
            raise CorruptImage(f"{self.where}: chunk at {chunk.start:#x} overlaps another", offset=chunk.offset)
        self._starts.insert(i, chunk.start)
        self._chunks.insert(i, chunk)

    def find(self, logical: int) -> Chunk:
        i = bisect.bisect_right(self._starts, logical) - 1
        if i >= 0:
            chunk = self._chunks[i]
            if logical < chunk.start + chunk.length:
                return chunk
        raise CorruptImage(f"{self.where}: logical address {logical:#x} is in no chunk")

    def copies(self, logical: int, length: int) -> tuple[int, list[int]]:
        """(bytes mappable from ``logical`` up to ``length``, device offsets of the copies on
        this device, first choice first). Unsupported when no copy is on this device."""
        chunk = self.find(logical)
        rel = logical - chunk.start
        avail = min(length, chunk.length - rel)
        profile = chunk.type & BG_PROFILE_MASK
        if profile & (BG_RAID5 | BG_RAID6):
            raise Unsupported(f"{self.where}: RAID5/6 chunk at {chunk.start:#x}", offset=chunk.offset)
        if profile & (BG_RAID0 | BG_RAID10):
            stripe_nr, in_stripe = divmod(rel, chunk.stripe_len)
            avail = min(avail, chunk.stripe_len - in_stripe)
            sets = len(chunk.stripes) // (chunk.sub_stripes if profile & BG_RAID10 else 1)
            row, column = divmod(stripe_nr, sets)
            dev_rel = row * chunk.stripe_len + in_stripe
            if profile & BG_RAID10:
                candidates = chunk.stripes[column * chunk.sub_stripes : (column + 1) * chunk.sub_stripes]
            else:
                candidates = chunk.stripes[column : column + 1]
        else:
            dev_rel = rel
            candidates = chunk.stripes if profile & _MIRRORED else chunk.stripes[:1]
        here = []
        missing = []
        for devid, physical in candidates:
            if devid != self.devid:
                missing.append(devid)
                continue
            where = physical + dev_rel
            if where + avail > self.device_size:
                raise CorruptImage(f"{self.where}: chunk at {chunk.start:#x} maps past the end of the device "
                                   f"({where + avail:#x} > {self.device_size:#x})", offset=chunk.offset)
            here.append(where)
        if not here:
            ids = sorted(set(missing))
            which = f"device {ids[0]}, which is" if len(ids) == 1 else f"devices {', '.join(map(str, ids))}, which are"
            raise Unsupported(f"{self.where}: logical address {logical:#x} lives on {which} missing"
                              " (multi-device file system)", offset=chunk.offset)
        return avail, here
