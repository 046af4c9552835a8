"""exFAT directory entry sets (exFAT specification section 6.3 and 7.4-7.7): a File entry,
its Stream Extension, its File Name entries (and possibly vendor entries), checked by the
set checksum; the Volume Label entry of the root directory.

Deleted entries (InUse bit clear) and secondary entries outside a set are skipped, as the
specification says; a set that contradicts itself (wrong count, no stream extension
first, too few name entries, a checksum mismatch, a name holding "/" or NUL) is
CorruptImage at the File entry's byte offset.
"""

from __future__ import annotations

from typing import Iterable, Iterator, NamedTuple

from ...errors import CorruptImage
from .layout import (
    ENTRY_SIZE,
    LABEL,
    NAME_CHARS,
    NAME_OFFSET,
    SET_MAX_SECONDARY,
    SET_MIN_SECONDARY,
    TYPE_END,
    TYPE_FILE,
    TYPE_LABEL,
    TYPE_NAME,
    TYPE_STREAM,
    FileEntry,
    StreamEntry,
    set_checksum,
)


class Entry(NamedTuple):
    name: bytes  # UTF-8
    file: FileEntry
    stream: StreamEntry
    offset: int  # byte offset of the File entry in the volume


class Label(NamedTuple):
    text: str


def _raw_entries(regions: Iterable[tuple[bytes, int]]) -> Iterator[tuple[bytes, int]]:
    for data, base in regions:
        for pos in range(0, len(data) - ENTRY_SIZE + 1, ENTRY_SIZE):
            yield data[pos : pos + ENTRY_SIZE], base + pos


def entries(regions: Iterable[tuple[bytes, int]], where: str) -> Iterator[Entry | Label]:
    """File entry sets (and volume labels) of a directory given as regions (data, byte
    offset in the volume), until the end-of-directory entry."""
    raw = _raw_entries(regions)
    for data, offset in raw:
        kind = data[0]
        if kind == TYPE_END:
            return
        if kind == TYPE_LABEL:
            _type, count, text = LABEL.unpack(data)
            yield Label(text[: 2 * min(count, 11)].decode("utf-16-le", "replace"))
            continue
        if kind != TYPE_FILE:  # deleted, secondary outside a set, bitmap, up-case, GUID …
            continue
        file = FileEntry.from_bytes(data)
        count = file.secondary_count
        if not SET_MIN_SECONDARY <= count <= SET_MAX_SECONDARY:
            raise CorruptImage(f"file entry with {count} secondary entries", where=where, offset=offset)
        members = [data]
        for data2, _offset2 in raw:
            members.append(data2)
            if len(members) == count + 1:
                break
        if len(members) != count + 1:
            raise CorruptImage("directory ends inside a file entry set", where=where, offset=offset)
        whole = b"".join(members)
        if set_checksum(whole) != file.set_checksum:
            raise CorruptImage("file entry set checksum mismatch", where=where, offset=offset)
        stream = StreamEntry.from_bytes(members[1])
        if stream.entry_type != TYPE_STREAM:
            raise CorruptImage("file entry not followed by a stream extension", where=where, offset=offset)
        parts = -(-stream.name_length // NAME_CHARS)
        if stream.name_length == 0 or parts > count - 1:
            raise CorruptImage(f"name of {stream.name_length} characters in {count - 1} entries",
                               where=where, offset=offset)
        names = members[2 : 2 + parts]
        if any(member[0] != TYPE_NAME for member in names):
            raise CorruptImage("file entry set lacks its file name entries", where=where, offset=offset)
        units = b"".join(member[NAME_OFFSET : NAME_OFFSET + 2 * NAME_CHARS] for member in names)
        name = units[: 2 * stream.name_length].decode("utf-16-le", "replace").encode()
        if b"/" in name or b"\0" in name or name in (b".", b".."):
            raise CorruptImage(f"file name {name!r} is not allowed", where=where, offset=offset)
        yield Entry(name, file, stream, offset)
