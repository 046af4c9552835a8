"""A stacked-volume type that lives outside the package, to prove the mechanism: it is
registered by a test (one line in guestboot.volume.STACKS) and touches no module of ours.

Its format (ours, for tests only): a member volume starts with a 512-byte header,
``MEMBER`` below; its data follows at ``data_offset``. The members of one set, in index
order, concatenated, are one volume called ``fake/<set name>``.
"""

from __future__ import annotations

import struct
from typing import Sequence

from guestboot.source import SliceSource
from guestboot.source.compose import ConcatSource
from guestboot.volume.base import Volume
from guestboot.volume.stack import Stacked

MAGIC = b"FAKESTK1"
MEMBER = struct.Struct("<8s16sIIQ")  # magic, set name (NUL padded), index, count, data_offset
HEADER_SIZE = 512


def header(name: str, index: int, count: int, data_offset: int) -> bytes:
    return MEMBER.pack(MAGIC, name.encode(), index, count, data_offset).ljust(HEADER_SIZE, b"\0")


def assemble(offered: Sequence[Volume], warnings: list[str]) -> list[Stacked]:
    sets: dict[str, dict[int, tuple[Volume, int, int]]] = {}
    for volume in offered:
        if volume.size < HEADER_SIZE:
            continue
        magic, name, index, count, data_offset = MEMBER.unpack(volume.source.pread(0, MEMBER.size))
        if magic != MAGIC or not HEADER_SIZE <= data_offset <= volume.size:
            continue
        sets.setdefault(name.rstrip(b"\0").decode(), {})[index] = (volume, count, data_offset)
    made = []
    for name, members in sets.items():
        count = next(iter(members.values()))[1]
        if sorted(members) != list(range(count)):
            warnings.append(f"fake/{name}: {len(members)} of {count} members present; left out")
            continue
        ordered = [members[i] for i in range(count)]
        parts = [SliceSource(v.source, off, v.size - off, f"{v.source.name}+{off}") for v, _c, off in ordered]
        volume = Volume(grub_name=f"fake/{name}", number=0, start=0, source=ConcatSource(parts, f"fake/{name}"))
        made.append(Stacked(tuple(v for v, _c, _o in ordered), (volume,), f"member of (fake/{name})"))
    return made
