"""Byte sources made of other sources: concatenated (a linear logical volume, a volume
group spanning disks, md linear) and striped (RAID0, striped logical volumes).

Both map a range to the members' own runs, so extraction through them stays zero-copy.
The number of members is bounded by LIMITS.max_volume_segments.
"""

from __future__ import annotations

import bisect
from typing import Iterator, Sequence

from ..errors import CorruptImage, LimitExceeded
from ..limits import LIMITS
from .base import ByteSource, Run


def _check_members(parts: Sequence[ByteSource], name: str) -> None:
    if not parts:
        raise CorruptImage(f"{name}: a volume made of no parts")
    if len(parts) > LIMITS.max_volume_segments:
        raise LimitExceeded(f"{name}: made of {len(parts)} parts (max_volume_segments)")


class PiecewiseSource(ByteSource):
    """A source whose bytes are pieces of other sources: subclasses map a range to
    (member, offset in it, length) pieces in ``_pieces``; reads and runs follow them."""

    __slots__ = ()

    def _pieces(self, offset: int, length: int) -> Iterator[tuple[ByteSource, int, int]]:
        raise NotImplementedError  # abstract: each layout maps its own way

    def _pread(self, offset: int, length: int) -> bytes:
        return b"".join(part.pread(inner, take) for part, inner, take in self._pieces(offset, length))

    def runs(self, offset: int = 0, length: int | None = None) -> Iterator[Run]:
        length = self._check_range(offset, length)
        for part, inner, take in self._pieces(offset, length):
            yield from part.runs(inner, take)


class ConcatSource(PiecewiseSource):
    """The members one after the other."""

    __slots__ = ("parts", "size", "name", "_starts")

    def __init__(self, parts: Sequence[ByteSource], name: str):
        _check_members(parts, name)
        self.parts = tuple(parts)
        self.name = name
        self._starts: list[int] = []
        total = 0
        for part in self.parts:
            self._starts.append(total)
            total += part.size
        self.size = total

    def __repr__(self) -> str:
        return f"ConcatSource(name={self.name!r}, parts={len(self.parts)}, size={self.size})"

    def _pieces(self, offset: int, length: int) -> Iterator[tuple[ByteSource, int, int]]:
        """(member, offset in it, length) covering the range, in order."""
        index = bisect.bisect_right(self._starts, offset) - 1
        end = offset + length
        while offset < end:
            part = self.parts[index]
            inner = offset - self._starts[index]
            take = min(end - offset, part.size - inner)
            if take > 0:
                yield part, inner, take
                offset += take
            index += 1


class StripeSource(PiecewiseSource):
    """Chunks of ``stripe_size`` bytes dealt to the members in turn: chunk ``i`` is chunk
    ``i // n`` of member ``i % n`` (RAID0 with equal members, an LVM striped segment).
    Every member has the same size, a whole number of chunks."""

    __slots__ = ("parts", "stripe_size", "size", "name")

    def __init__(self, parts: Sequence[ByteSource], stripe_size: int, name: str):
        _check_members(parts, name)
        sizes = {part.size for part in parts}
        if stripe_size <= 0 or len(sizes) != 1 or next(iter(sizes)) % stripe_size:
            raise CorruptImage(
                f"{name}: {len(parts)} stripes of sizes {sorted(sizes)[:4]} do not split into chunks of"
                f" {stripe_size} bytes"
            )
        self.parts = tuple(parts)
        self.stripe_size = stripe_size
        self.size = len(parts) * parts[0].size
        self.name = name

    def __repr__(self) -> str:
        return (
            f"StripeSource(name={self.name!r}, parts={len(self.parts)}, stripe_size={self.stripe_size},"
            f" size={self.size})"
        )

    def _pieces(self, offset: int, length: int) -> Iterator[tuple[ByteSource, int, int]]:
        chunk = self.stripe_size
        n = len(self.parts)
        end = offset + length
        while offset < end:
            index, within = divmod(offset, chunk)
            take = min(end - offset, chunk - within)
            yield self.parts[index % n], (index // n) * chunk + within, take
            offset += take

