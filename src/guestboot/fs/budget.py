"""Directory-scan budgets every driver shares: bytes and entries scanned, per directory
and per file system (LIMITS.max_dir_entries, max_dir_bytes, max_dir_bytes_total)."""

from __future__ import annotations

from ..errors import LimitExceeded
from ..limits import LIMITS


class ScanTotal:
    """Directory bytes scanned in one file system over its whole life: each lookup is
    bounded by max_dir_bytes, and this bounds their sum, so a path (or a config) that
    looks names up again and again in huge hostile directories cannot run for minutes.
    A driver keeps one per mounted file system and hands it to every EntryBudget."""

    __slots__ = ("bytes",)

    def __init__(self) -> None:
        self.bytes = 0


class EntryBudget:
    """Counts entries and bytes scanned in one directory against the limits, and the bytes
    also against the file system's ScanTotal when one is given."""

    __slots__ = ("where", "entries", "bytes", "total")

    def __init__(self, where: str, total: ScanTotal | None = None):
        self.where = where
        self.entries = 0
        self.bytes = 0
        self.total = total

    def scan(self, size: int) -> None:
        """``size`` more bytes of directory data are about to be scanned."""
        self.bytes += size
        if self.bytes > LIMITS.max_dir_bytes:
            raise LimitExceeded(f"{self.where}: more than {LIMITS.max_dir_bytes} bytes of directory (max_dir_bytes)")
        if self.total is not None:
            self.total.bytes += size
            if self.total.bytes > LIMITS.max_dir_bytes_total:
                raise LimitExceeded(
                    f"{self.where}: more than {LIMITS.max_dir_bytes_total} bytes of directories scanned in all"
                    " (max_dir_bytes_total)"
                )

    def entry(self, count: int = 1) -> None:
        """``count`` more entries were read."""
        self.entries += count
        if self.entries > LIMITS.max_dir_entries:
            raise LimitExceeded(f"{self.where}: more than {LIMITS.max_dir_entries} entries (max_dir_entries)")
