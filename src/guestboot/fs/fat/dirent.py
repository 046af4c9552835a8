"""Directory entries: short 8.3 entries (fatgen103 section 6) and the long-name entries
that precede them (section 7, "FAT Long Directory Entries").

Names follow what Linux and Windows show: the long name when its entries are complete, in
order and carry the checksum of the short entry they precede; otherwise (orphaned,
out-of-order or mismatched long-name entries are ignored) the short name, with the NT
lower-case bits of DIR_NTRes applied and OEM bytes above 0x7F read as code page 437
(Linux's default). GRUB lower-cases every short name instead; the two agree on lookups,
which are case-insensitive in both. Long names are UTF-16, turned into UTF-8 (an unpaired
surrogate becomes U+FFFD); a long name holding "/" or NUL cannot be a path component and
falls back to the short name.
"""

from __future__ import annotations

from typing import Iterable, Iterator, NamedTuple

from ..dates import days_from_civil, days_in_month
from .layout import (
    ATTR_LONG_NAME,
    ATTR_LONG_NAME_MASK,
    ATTR_VALID,
    DIR_ENTRY_SIZE,
    LFN_LAST,
    LFN_MAX_ENTRIES,
    LFN_ORDER_MASK,
    NAME_END,
    NAME_FREE,
    NAME_KANJI_E5,
    NT_LOWER_BASE,
    NT_LOWER_EXT,
    DirEntry,
    LfnEntry,
    short_name_checksum,
)


class Entry(NamedTuple):
    name: bytes  # as shown: the long name, or the short name with its case bits
    entry: DirEntry  # the short entry
    offset: int  # byte offset of the short entry in the volume
    cluster: int  # first cluster (FAT32 adds DIR_FstClusHI)

    @property
    def mtime(self) -> int:
        return fat_time(self.entry.write_date, self.entry.write_time)


def fat_time(date: int, time: int) -> int:
    """Seconds since 1970 of a FAT date and time (stored as local time, read as UTC, as
    GRUB does); 0 when the fields are not a valid date."""
    day, month, year = date & 0x1F, (date >> 5) & 0x0F, 1980 + (date >> 9)
    seconds, minutes, hours = (time & 0x1F) * 2, (time >> 5) & 0x3F, time >> 11
    if not (1 <= day <= 31 and 1 <= month <= 12 and seconds < 60 and minutes < 60 and hours < 24):
        return 0
    if day > days_in_month(year, month):
        return 0
    return days_from_civil(year, month, day) * 86400 + hours * 3600 + minutes * 60 + seconds


def short_name(raw: bytes, nt_case: int) -> bytes:
    """The 8.3 name as Linux shows it: "NAME.EXT", lower-cased parts per DIR_NTRes."""
    base, ext = raw[:8].rstrip(b" "), raw[8:].rstrip(b" ")
    if nt_case & NT_LOWER_BASE:
        base = base.lower()
    if nt_case & NT_LOWER_EXT:
        ext = ext.lower()
    name = base + b"." + ext if ext else base
    return name.decode("cp437").encode() if max(name, default=0) > 0x7F else name


def label_name(raw: bytes) -> str:
    """A volume label entry's 11 bytes as text (trailing spaces dropped)."""
    return raw.rstrip(b" \0").decode("cp437")


def _long_name(parts: list[bytes]) -> bytes | None:
    units = b"".join(parts)
    for i in range(0, len(units), 2):
        if units[i : i + 2] == b"\0\0":
            units = units[:i]
            break
    if not units:
        return None
    name = units.decode("utf-16-le", "replace").encode()
    if b"/" in name or b"\0" in name:
        return None
    return name


def entries(regions: Iterable[tuple[bytes, int]], fat32: bool) -> Iterator[Entry]:
    """Entries of a directory given as regions (data, byte offset in the volume), in order,
    until the end marker. Deleted entries and long-name entries are consumed here; volume
    labels, "." and ".." are yielded (the caller decides)."""
    parts: list[bytes] = []
    expected = 0  # the long-name order number the next entry must carry
    checksum = -1
    for data, base in regions:
        for pos in range(0, len(data) - DIR_ENTRY_SIZE + 1, DIR_ENTRY_SIZE):
            first = data[pos]
            if first == NAME_END:
                return
            if first == NAME_FREE:
                checksum = -1
                continue
            entry = DirEntry.from_bytes(data, pos)
            if entry.attr & ATTR_LONG_NAME_MASK == ATTR_LONG_NAME:
                lfn = LfnEntry.from_bytes(data, pos)
                order = lfn.order & LFN_ORDER_MASK
                if lfn.order & LFN_LAST and 1 <= order <= LFN_MAX_ENTRIES:
                    parts = [b""] * order
                    checksum = lfn.checksum
                    expected = order
                if checksum < 0 or order != expected or lfn.checksum != checksum or order == 0:
                    checksum = -1
                    continue
                parts[order - 1] = lfn.name1 + lfn.name2 + lfn.name3
                expected -= 1
                continue
            if entry.attr & ~ATTR_VALID & 0xFF:
                checksum = -1
                continue
            raw = entry.name if first != NAME_KANJI_E5 else b"\xe5" + entry.name[1:]
            name = None
            if checksum >= 0 and expected == 0 and short_name_checksum(entry.name) == checksum:
                name = _long_name(parts)
            checksum = -1
            if name is None:
                name = short_name(raw, entry.nt_case)
            cluster = entry.cluster_lo | (entry.cluster_hi << 16 if fat32 else 0)
            yield Entry(name, entry, base + pos, cluster)

