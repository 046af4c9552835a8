"""Mutations of a seed image without copying it: a list of byte patches and an optional
truncation, applied on the fly by ``PatchedSource`` (target-level fuzzing) or written into
a private working copy and undone again (``WorkingCopy``, for the full pipeline, which
reads a descriptor).

A mutation is plain data (``Mutation``): it is what a reproducer file stores, so a
finding replays exactly. ``mutate(seed, rng)`` draws one from a ``random.Random``: bit
flips, truncation, block swaps and rewrites of integer fields with boundary values, at
offsets biased towards where the seed keeps its metadata (the non-zero blocks near the
start of each data region; see ``Layout``).
"""

from __future__ import annotations

import json
import os
import random
import struct
from typing import Iterator, NamedTuple

from guestboot.source import ByteSource
from guestboot.source.base import Run

BLOCK = 4096
# values that make parsers take unusual paths: zero, one, sign and width boundaries
INTERESTING = (0, 1, 2, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000,
               0xFFFFFFFF, 0x100000000, 0x7FFFFFFFFFFFFFFF, 0xFFFFFFFFFFFFFFFF)
FIELDS = (struct.Struct("<B"), struct.Struct("<H"), struct.Struct("<I"), struct.Struct("<Q"),
          struct.Struct(">H"), struct.Struct(">I"), struct.Struct(">Q"))


class Mutation(NamedTuple):
    """Patches ``(offset, bytes)`` applied in order, then the image cut to ``truncate``
    bytes (None: its own size)."""

    patches: tuple[tuple[int, bytes], ...] = ()
    truncate: int | None = None

    def to_json(self) -> dict:
        return {"patches": [[at, data.hex()] for at, data in self.patches], "truncate": self.truncate}

    @classmethod
    def from_json(cls, data: dict) -> "Mutation":
        return cls(tuple((int(at), bytes.fromhex(hexed)) for at, hexed in data["patches"]), data["truncate"])

    def dumps(self) -> str:
        return json.dumps(self.to_json())


class Layout:
    """Where a seed keeps data: the 4 KiB blocks that are not all zeros (read once, sparse
    regions skipped with SEEK_DATA), so that mutations land on metadata and file data
    rather than on the zeros of a mostly empty image."""

    def __init__(self, blocks: list[int], size: int):
        self.blocks = blocks or [0]
        self.size = size

    @classmethod
    def of_file(cls, path: str, *, max_blocks: int = 1 << 16) -> "Layout":
        blocks: list[int] = []
        fd = os.open(path, os.O_RDONLY)
        try:
            size = os.fstat(fd).st_size
            at = 0
            while at < size and len(blocks) < max_blocks:
                try:
                    at = os.lseek(fd, at, os.SEEK_DATA)
                except OSError:
                    break
                end = os.lseek(fd, at, os.SEEK_HOLE)
                at -= at % BLOCK
                while at < end and len(blocks) < max_blocks:
                    if os.pread(fd, BLOCK, at).strip(b"\0"):
                        blocks.append(at)
                    at += BLOCK
        finally:
            os.close(fd)
        return cls(blocks, size)

    @classmethod
    def of_bytes(cls, data: bytes) -> "Layout":
        blocks = [at for at in range(0, len(data), BLOCK) if data[at:at + BLOCK].strip(b"\0")]
        return cls(blocks, len(data))

    def offset(self, rng: random.Random) -> int:
        """An offset inside the seed: mostly in a non-zero block, early blocks preferred
        (superblocks, tables and headers come first), sometimes anywhere."""
        if self.size == 0:
            return 0
        if rng.random() < 0.1:
            return rng.randrange(self.size)
        # the minimum of two draws favours the first blocks
        index = min(rng.randrange(len(self.blocks)), rng.randrange(len(self.blocks)))
        return min(self.blocks[index] + rng.randrange(BLOCK), self.size - 1)


def mutate(layout: Layout, rng: random.Random, read: "callable", *, max_ops: int = 4) -> Mutation:
    """One random mutation of a seed of ``layout``; ``read(offset, length)`` reads the
    seed (a block swap copies seed bytes)."""
    patches: list[tuple[int, bytes]] = []
    truncate = None
    size = layout.size
    for _ in range(rng.randint(1, max_ops)):
        kind = rng.randrange(10)
        at = layout.offset(rng)
        if kind <= 3:  # bit flips
            byte = read(at, 1) or b"\0"
            patches.append((at, bytes([byte[0] ^ (1 << rng.randrange(8))])))
        elif kind <= 6:  # an integer field rewritten with a boundary value (or a nearby one)
            field = rng.choice(FIELDS)
            at -= at % field.size
            value = rng.choice(INTERESTING) + rng.choice((0, 0, 0, 1, -1))
            value &= (1 << (8 * field.size)) - 1
            if at + field.size <= size:
                patches.append((at, field.pack(value)))
        elif kind <= 8:  # a block (sector or 4 KiB) copied over another
            length = rng.choice((512, BLOCK))
            source_at = layout.offset(rng)
            source_at -= source_at % length
            at -= at % length
            data = read(source_at, length)
            if data and at + len(data) <= size:
                patches.append((at, data))
        else:  # truncation
            truncate = rng.randrange(max(1, size))
    return Mutation(tuple(patches), truncate)


class PatchedSource(ByteSource):
    """``base`` with a Mutation applied, as a byte source (no copy of the base)."""

    def __init__(self, base: ByteSource, mutation: Mutation, name: str | None = None):
        self.base = base
        self.patches = mutation.patches
        self.size = base.size if mutation.truncate is None else min(base.size, mutation.truncate)
        self.name = name or base.name

    def _pread(self, offset: int, length: int) -> bytes:
        length = max(0, min(length, self.size - offset))
        data = self.base.pread(offset, length)
        end = offset + len(data)
        hit = [(at, patch) for at, patch in self.patches if at < end and at + len(patch) > offset]
        if not hit:
            return data
        buf = bytearray(data)
        for at, patch in hit:
            lo, hi = max(at, offset), min(at + len(patch), end)
            buf[lo - offset:hi - offset] = patch[lo - at:hi - at]
        return bytes(buf)

    def runs(self, offset: int = 0, length: int | None = None) -> Iterator[Run]:
        length = self._check_range(offset, length)
        if length:
            yield Run(None, offset, length, self._pread(offset, length))


class WorkingCopy:
    """A private sparse copy of a seed image that a mutation is written into and then
    undone (the pipeline reads a descriptor, as the sandboxed child does)."""

    def __init__(self, seed_path: str, copy_path: str):
        self.seed_fd = os.open(seed_path, os.O_RDONLY)
        self.size = os.fstat(self.seed_fd).st_size
        _sparse_copy(self.seed_fd, copy_path, self.size)
        self.fd = os.open(copy_path, os.O_RDWR)
        self.path = copy_path

    def read_seed(self, offset: int, length: int) -> bytes:
        return os.pread(self.seed_fd, length, offset)

    def apply(self, mutation: Mutation) -> None:
        for at, data in mutation.patches:
            os.pwrite(self.fd, data, at)
        if mutation.truncate is not None:
            os.ftruncate(self.fd, mutation.truncate)

    def undo(self, mutation: Mutation) -> None:
        if mutation.truncate is not None:
            os.ftruncate(self.fd, self.size)
            _copy_data(self.seed_fd, self.fd, mutation.truncate, self.size)
        for at, data in mutation.patches:
            os.pwrite(self.fd, self.read_seed(at, len(data)), at)

    def close(self) -> None:
        os.close(self.fd)
        os.close(self.seed_fd)
        os.unlink(self.path)


def _copy_data(src: int, dst: int, start: int, end: int) -> None:
    """The data regions of ``src`` in [start, end) copied into ``dst`` (holes skipped)."""
    at = start
    while at < end:
        try:
            at = os.lseek(src, at, os.SEEK_DATA)
        except OSError:  # no data after ``at``
            return
        if at >= end:
            return
        stop = min(os.lseek(src, at, os.SEEK_HOLE), end)
        while at < stop:
            done = os.copy_file_range(src, dst, stop - at, at, at)
            if done <= 0:
                break
            at += done


def _sparse_copy(src: int, path: str, size: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.ftruncate(fd, size)
        _copy_data(src, fd, 0, size)
    finally:
        os.close(fd)
