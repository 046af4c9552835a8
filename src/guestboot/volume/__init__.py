"""Volumes: where on a disk file systems may live (partitions, or the whole disk).

``scan(disk)`` returns the volumes in GRUB's order; ``scan_with_warnings(disk)`` also
returns one-line warnings about damaged parts of a table that were left out or clipped.

Each table format is one module with ``read_table(disk, warnings) -> list[Volume] | None``
(None: "this is not my table") and one line in ``TABLES``. The first reader that claims
the disk wins, so GPT comes before MBR: a protective MBR means GPT. A disk no reader
claims, or a table with no usable partition, is one whole-disk volume.

GRUB also looks inside every partition for a label of its own (a FreeBSD disklabel in an
MBR slice, a Solaris VTOC): ``NESTED`` readers ``(disk, partition, warnings) -> volumes``
name what they find after the partition ("msdos1,bsd1"), listed right after it; and a
NetBSD/OpenBSD label in an MBR partition describes the whole disk: ``DISK_WIDE`` readers
``(disk, partitions, warnings) -> volumes`` add those ("netbsd1") after the table's own.
"""

from __future__ import annotations

from typing import Callable

from ..errors import LimitExceeded
from ..limits import LIMITS
from ..source import ByteSource
from . import bsd, gpt, mbr, sunlabel
from .base import Scan, Volume, whole_disk

TableReader = Callable[[ByteSource, list[str]], "list[Volume] | None"]

TABLES: tuple[tuple[str, TableReader], ...] = (
    ("gpt", gpt.read_table),
    ("msdos", mbr.read_table),
    ("sun", sunlabel.read_table),
    ("bsd", bsd.read_table),
    ("sunpc", sunlabel.read_vtoc_table),
)

NestedReader = Callable[[ByteSource, Volume, list[str]], "list[Volume]"]
NESTED: tuple[tuple[str, NestedReader], ...] = (
    ("bsd", bsd.read_nested),
    ("sunpc", sunlabel.read_vtoc_nested),
)

DiskWideReader = Callable[[ByteSource, "list[Volume]", list[str]], "list[Volume]"]
DISK_WIDE: tuple[tuple[str, DiskWideReader], ...] = (
    ("netbsd/openbsd", bsd.read_disk_wide),
)

# Stacked-volume types as (name, module) in the order they are offered volumes; each module
# exposes ``assemble(offered, warnings) -> list[Stacked]`` (see volume/stack.py).
STACKS: tuple[tuple[str, str], ...] = (
    ("md", "guestboot.volume.md"),
    ("lvm", "guestboot.volume.lvm"),
)


def scan_with_warnings(disk: ByteSource) -> Scan:
    """Volumes of ``disk`` in GRUB's order, and warnings (a ``Scan``, which unpacks as
    ``volumes, warnings``). Raises CorruptImage / LimitExceeded only when a table is
    clearly present but cannot be read at all (e.g. both GPT headers damaged)."""
    warnings: list[str] = []
    for name, read_table in TABLES:
        volumes = read_table(disk, warnings)
        if volumes is None:
            continue
        if not volumes:
            warnings.append(
                f"{disk.name}: {name} partition table has no usable partition; using the whole disk"
            )
            return Scan([whole_disk(disk)], warnings)
        if name in ("gpt", "msdos"):  # tables whose partitions may hold labels of their own
            volumes = _with_nested(disk, volumes, warnings)
        return Scan(volumes, warnings)
    return Scan([whole_disk(disk)], warnings)


def _with_nested(disk: ByteSource, volumes: list[Volume], warnings: list[str]) -> list[Volume]:
    found: list[Volume] = []
    for volume in volumes:
        found.append(volume)
        for _name, read_nested in NESTED:
            found.extend(read_nested(disk, volume, warnings))
    for _name, read_disk_wide in DISK_WIDE:
        found.extend(read_disk_wide(disk, volumes, warnings))
    if len(found) > LIMITS.max_partitions:
        raise LimitExceeded(f"more than {LIMITS.max_partitions} partitions (limit max_partitions)", where=disk.name)
    return found


def scan(disk: ByteSource) -> list[Volume]:
    """Volumes of ``disk`` in GRUB's order (warnings dropped; see scan_with_warnings)."""
    return scan_with_warnings(disk).volumes


__all__ = ["STACKS", "TABLES", "Scan", "Volume", "scan", "scan_with_warnings"]
