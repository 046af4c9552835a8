"""Scan budgets every driver shares: bytes and entries scanned per directory
(LIMITS.max_dir_entries, max_dir_bytes), and one total per IMAGE for the whole run
(max_dir_bytes_total for directory data, max_meta_bytes_total for the metadata read to
find things: extent and B-tree blocks, btrfs tree blocks, FAT entries of cluster chains,
squashfs metadata blocks).

Why per image and not per file system: the partitions of one image may all point at the
same bytes (four GPT entries over one hostile file system), and a GRUB ``search`` probes
every device; a budget that restarts for each would multiply by the number of devices.
``image_scope()`` (entered by image.open_disks and pipeline.run) makes one ScanTotal that
every file system probed inside it keeps; outside any scope a file system gets its own.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

from ..errors import LimitExceeded
from ..limits import LIMITS


class ScanTotal:
    """Directory bytes and metadata bytes scanned in one image over the whole run: each
    lookup or walk is bounded by its own limit, and this bounds their sum, so a path, a
    config or a ``search`` that looks things up again and again in huge hostile structures
    (on one partition or on many that alias) cannot run for minutes. A driver keeps the
    one of its image (``shared_total()``) and hands it to every EntryBudget."""

    __slots__ = ("bytes", "meta")

    def __init__(self) -> None:
        self.bytes = 0  # directory data (max_dir_bytes_total)
        self.meta = 0  # tree/map/chain metadata (max_meta_bytes_total)

    def directory(self, size: int, where: str, offset: int | None = None) -> None:
        """``size`` more bytes of directory data (live and deleted slots alike) are scanned."""
        self.bytes += size
        if self.bytes > LIMITS.max_dir_bytes_total:
            raise LimitExceeded(
                f"{where}: more than {LIMITS.max_dir_bytes_total} bytes of directories scanned in this image"
                " (max_dir_bytes_total)", offset=offset)

    def exhausted(self) -> str | None:
        """The limit this total went past (a lookup failed on it), or None."""
        if self.bytes > LIMITS.max_dir_bytes_total:
            return "max_dir_bytes_total"
        if self.meta > LIMITS.max_meta_bytes_total:
            return "max_meta_bytes_total"
        return None

    def metadata(self, size: int, where: str, offset: int | None = None) -> None:
        """``size`` more bytes of metadata (tree blocks, block maps, FAT entries) are read."""
        self.meta += size
        if self.meta > LIMITS.max_meta_bytes_total:
            raise LimitExceeded(
                f"{where}: more than {LIMITS.max_meta_bytes_total} bytes of file-system metadata read in this image"
                " (max_meta_bytes_total)", offset=offset)


_ACTIVE: list[ScanTotal] = []  # the scope entered (one run reads one set of images at a time)


@contextlib.contextmanager
def image_scope() -> Iterator[ScanTotal]:
    """One ScanTotal for every file system probed inside (nested scopes share the outer one)."""
    if _ACTIVE:
        yield _ACTIVE[-1]
        return
    total = ScanTotal()
    _ACTIVE.append(total)
    try:
        yield total
    finally:
        _ACTIVE.pop()


def shared_total() -> ScanTotal:
    """The ScanTotal of the image being read (a new one outside any image_scope)."""
    return _ACTIVE[-1] if _ACTIVE else ScanTotal()


def charge_metadata(size: int, where: str, offset: int | None = None) -> None:
    """Charge metadata bytes to the image being read, when there is one (drivers' per-walk
    budgets call this, so their walks count toward the image's total too)."""
    if _ACTIVE:
        _ACTIVE[-1].metadata(size, where, offset)


class EntryBudget:
    """Counts entries and bytes scanned in one directory against the limits, and the bytes
    also against the image's ScanTotal when one is given."""

    __slots__ = ("where", "entries", "bytes", "total")

    def __init__(self, where: str, total: ScanTotal | None = None):
        self.where = where
        self.entries = 0
        self.bytes = 0
        self.total = total

    def scan(self, size: int, offset: int | None = None) -> None:
        """``size`` more bytes of directory data are about to be scanned."""
        self.bytes += size
        if self.bytes > LIMITS.max_dir_bytes:
            raise LimitExceeded(f"{self.where}: more than {LIMITS.max_dir_bytes} bytes of directory (max_dir_bytes)",
                                offset=offset)
        if self.total is not None:
            self.total.directory(size, self.where, offset)

    def entry(self, count: int = 1) -> None:
        """``count`` more entries were read."""
        self.entries += count
        if self.entries > LIMITS.max_dir_entries:
            raise LimitExceeded(f"{self.where}: more than {LIMITS.max_dir_entries} entries (max_dir_entries)")
