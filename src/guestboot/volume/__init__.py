"""Volumes: where on a disk file systems may live (partitions, or the whole disk).

``scan(disk)`` returns the volumes in GRUB's order; ``scan_with_warnings(disk)`` also
returns one-line warnings about damaged parts of a table that were left out or clipped.

Each table format is one module with ``read_table(disk, warnings) -> list[Volume] | None``
(None: "this is not my table") and one line in ``TABLES``. The first reader that claims
the disk wins, so GPT comes before MBR: a protective MBR means GPT. A disk no reader
claims, or a table with no usable partition, is one whole-disk volume.
"""

from __future__ import annotations

from typing import Callable

from ..source import ByteSource
from . import gpt, mbr
from .base import Scan, Volume, whole_disk

TableReader = Callable[[ByteSource, list[str]], "list[Volume] | None"]

TABLES: tuple[tuple[str, TableReader], ...] = (
    ("gpt", gpt.read_table),
    ("msdos", mbr.read_table),
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
        return Scan(volumes, warnings)
    return Scan([whole_disk(disk)], warnings)


def scan(disk: ByteSource) -> list[Volume]:
    """Volumes of ``disk`` in GRUB's order (warnings dropped; see scan_with_warnings)."""
    return scan_with_warnings(disk).volumes


__all__ = ["STACKS", "TABLES", "Scan", "Volume", "scan", "scan_with_warnings"]
