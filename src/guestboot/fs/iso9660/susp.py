"""System Use areas (SUSP, IEEE P1281) and the Rock Ridge entries read from them (RRIP,
IEEE P1282): NM names, PX modes, SL symlinks, ER (the extension is in use), CE
continuation areas, ST (stop).

A record's System Use area may continue in a continuation area elsewhere on the volume (a
CE entry: block, offset, length), which may hold another CE. The chain is guest data:
each area must lie inside one logical block and inside the volume, no area is visited
twice (a loop is CorruptImage, naming the offset), at most LIMITS.max_susp_continuations
are followed for one record, and every byte read counts against the directory-scan budget
of the directory being read. Unknown entries (TF, RE, CL, PL, SF, AA …) are skipped.
"""

from __future__ import annotations

from typing import Iterator, NamedTuple

from ...errors import CorruptImage, LimitExceeded
from ...limits import LIMITS
from ...source import ByteSource
from ..budget import EntryBudget
from .layout import (
    BLOCK_SIZE,
    NM_CURRENT,
    NM_PARENT,
    RRIP_PX_MODE,
    SL_CONTINUE,
    SL_CURRENT,
    SL_PARENT,
    SL_ROOT,
    SUSP_CE,
    SUSP_HEADER,
    SUSP_SP,
    SP_CHECK,
)


class SuspEntry(NamedTuple):
    signature: bytes
    data: bytes  # the whole entry, header included
    offset: int  # byte offset of the entry in the volume


def entries(source: ByteSource, area: bytes, offset: int, budget: EntryBudget | None, where: str
            ) -> Iterator[SuspEntry]:
    """The entries of the System Use area ``area`` (found at byte ``offset``) and of the
    continuation areas it chains to, in order. ST ends an area; a zero length byte ends it
    too (padding, as GRUB and Linux read it)."""
    seen: set[int] = set()
    hops = 0
    while True:
        pos = 0
        follow: tuple[int, int, int] | None = None
        while pos + SUSP_HEADER.size <= len(area):
            signature, length, _version = SUSP_HEADER.unpack_from(area, pos)
            if length == 0:
                break
            if length < SUSP_HEADER.size or pos + length > len(area):
                raise CorruptImage(f"{where}: System Use entry {_show(signature)} of {length} bytes runs past its"
                                   f" area of {len(area)} bytes", offset=offset + pos)
            if signature == b"ST":
                break
            if signature == b"CE":
                if length < SUSP_CE.size:
                    raise CorruptImage(f"{where}: CE entry of {length} bytes (needs {SUSP_CE.size})",
                                       offset=offset + pos)
                _sig, _len, _ver, block, start, size = SUSP_CE.unpack_from(area, pos)
                follow = (block, start, size)
            else:
                yield SuspEntry(signature, area[pos : pos + length], offset + pos)
            pos += length
        if follow is None:
            return
        block, start, size = follow
        where_ce = block * BLOCK_SIZE + start
        if start + size > BLOCK_SIZE or where_ce + size > source.size:
            raise CorruptImage(f"{where}: continuation area of {size} bytes at block {block} offset {start} lies"
                               f" outside its block or the volume ({source.size} bytes)", offset=offset + pos)
        if where_ce in seen:
            raise CorruptImage(f"{where}: continuation areas form a loop (block {block} offset {start} again)",
                               offset=where_ce)
        seen.add(where_ce)
        hops += 1
        if hops > LIMITS.max_susp_continuations:
            raise LimitExceeded(f"{where}: more than {LIMITS.max_susp_continuations} continuation areas for one"
                                " record (max_susp_continuations)")
        if budget is not None:
            budget.scan(size)
        area = source.pread(where_ce, size)
        offset = where_ce


def sp_skip(area: bytes) -> int | None:
    """LEN_SKP of an SP entry that starts ``area`` (SUSP 5.3), or None when there is none.
    GRUB tests only the signature; the check bytes are tested here too, as Linux does."""
    if len(area) < SUSP_SP.size:
        return None
    signature, length, _version, check, skip = SUSP_SP.unpack_from(area)
    if signature != b"SP" or length < SUSP_SP.size or check != SP_CHECK:
        return None
    return skip


class RockRidge(NamedTuple):
    """What the Rock Ridge entries of one record say. ``name`` is None without NM; b"." and
    b".." for NM's CURRENT/PARENT flags. ``symlink`` is None without SL; ``symlink_long``
    says the target grew past LIMITS.max_symlink_size (readlink refuses it)."""

    name: bytes | None
    mode: int | None
    symlink: bytes | None
    symlink_long: bool


def rock_ridge(items: Iterator[SuspEntry], where: str) -> RockRidge:
    name: bytearray | None = None
    special: bytes | None = None
    mode: int | None = None
    parts: list[bytearray] | None = None
    continuing = False  # the last symlink component continues in the next one
    size = 0
    too_long = False
    for entry in items:
        sig, data = entry.signature, entry.data
        if sig == b"NM":  # RRIP 4.1.4: flags, then a piece of the name
            if len(data) < 5:
                raise CorruptImage(f"{where}: NM entry of {len(data)} bytes", offset=entry.offset)
            flags = data[4]  # NM_CONTINUE only says another NM follows: pieces are joined in order
            if flags & NM_CURRENT:
                special = b"."
            elif flags & NM_PARENT:
                special = b".."
            else:
                name = bytearray() if name is None else name
                name += data[5:]
                if len(name) > LIMITS.max_name_bytes:
                    raise LimitExceeded(f"{where}: Rock Ridge name longer than {LIMITS.max_name_bytes} bytes"
                                        " (max_name_bytes)", offset=entry.offset)
        elif sig == b"PX":  # RRIP 4.1.1
            if len(data) < 4 + RRIP_PX_MODE.size:
                raise CorruptImage(f"{where}: PX entry of {len(data)} bytes", offset=entry.offset)
            mode = RRIP_PX_MODE.unpack_from(data, 4)[0]
        elif sig == b"SL":  # RRIP 4.1.3: flags, then component records
            if len(data) < 5:
                raise CorruptImage(f"{where}: SL entry of {len(data)} bytes", offset=entry.offset)
            parts = [] if parts is None else parts
            pos = 5
            while pos < len(data):
                if pos + 2 > len(data) or pos + 2 + data[pos + 1] > len(data):
                    raise CorruptImage(f"{where}: SL component runs past its entry", offset=entry.offset + pos)
                cflags, clen = data[pos], data[pos + 1]
                if cflags & SL_ROOT:
                    text = b""
                elif cflags & SL_CURRENT:
                    text = b"."
                elif cflags & SL_PARENT:
                    text = b".."
                else:
                    text = data[pos + 2 : pos + 2 + clen]
                size += len(text) + 1
                if size > LIMITS.max_symlink_size:
                    too_long = True
                elif continuing and parts:
                    parts[-1] += text
                else:
                    parts.append(bytearray(text))
                continuing = bool(cflags & SL_CONTINUE)
                pos += 2 + clen
    target = None
    if parts is not None and not too_long:
        target = b"/".join(parts) if parts != [b""] else b"/"
    return RockRidge(special if special is not None else (None if name is None else bytes(name)), mode, target,
                     too_long)


def _show(signature: bytes) -> str:
    return repr(signature)[2:-1]


__all__ = ["SuspEntry", "entries", "sp_skip", "RockRidge", "rock_ridge"]
