"""Sun disk labels, read and named as GRUB's part_sun and part_sunpc do.

- ``sun`` (grub-core/partmap/sun.c): the SPARC label in sector 0 of a whole disk, big-endian
  (the SMI label util-linux fdisk writes with its "s" command): 8 partitions, each with an
  id (0 unused, 5 the whole disk: both skipped) in the info table at byte 142 and a
  (start cylinder, sector count) pair at byte 444; start = cylinder * ntrks * nsect (the
  geometry at 436/438). Magic 0xDABE at 508; the 16-bit words of the 512 bytes XOR to 0.
  Partition N (0-based) is ``(hd0,sunN+1)``.
- ``sunpc`` (grub-core/partmap/sunpc.c): the x86 Solaris VTOC (``struct dk_label``) in
  sector 1 of what it labels: an MBR partition (Solaris 0xbf or 0x82, where Xen's pygrub
  looks for it; GRUB looks in any partition and on a whole disk), little-endian,
  16 slices of (tag, flags, start sector, sector count) at byte 72 (tag 0 unused, 5 the
  whole disk: skipped), starts counted from the holder's start; magic 0xDABE at 508, the
  words XOR to 0. Slice N is ``(hd0,msdos1,sunpcN+1)``. pygrub boots the slice tagged
  V_ROOT (2); GRUB and guestboot list every slice.
"""

from __future__ import annotations

import struct

from ..source import ByteSource
from .base import Volume, partition_source

SECTOR = 512
MAGIC = 0xDABE
WHOLE_DISK_ID = 5
SUN_INFOS = struct.Struct(">142x" + "xBxx" * 8)  # ids of the 8 partitions
SUN_GEOMETRY = struct.Struct(">436xHH")  # ntrks, nsect
SUN_PARTS = struct.Struct(">444x" + "II" * 8 + "H")  # (start cylinder, sectors) * 8, magic
VTOC_SLICES = struct.Struct("<72x" + "HHII" * 16 + "244xH")  # (tag, flags, start, size) * 16, magic


def _xor_ok(raw: bytes, order: str) -> bool:
    xor = 0
    for (word,) in struct.iter_unpack(order + "H", raw[:SECTOR]):
        xor ^= word
    return xor == 0


def _sector(source: ByteSource, index: int) -> bytes | None:
    if (index + 1) * SECTOR > source.size:
        return None
    return source.pread(index * SECTOR, SECTOR)


def read_table(disk: ByteSource, warnings: list[str]) -> list[Volume] | None:
    """The partitions of a SPARC Sun label on ``disk`` ("sun1" …), or None."""
    raw = _sector(disk, 0)
    if raw is None:
        return None
    fields = SUN_PARTS.unpack_from(raw)
    if fields[-1] != MAGIC:
        return None
    if not _xor_ok(raw, ">"):
        warnings.append(f"{disk.name}: Sun disk label checksum does not match; ignored as GRUB does (at byte offset 0x1fe)")
        return None
    ids = SUN_INFOS.unpack_from(raw)
    ntrks, nsect = SUN_GEOMETRY.unpack_from(raw)
    volumes = []
    for index in range(8):
        cylinder, count = fields[2 * index], fields[2 * index + 1]
        if ids[index] in (0, WHOLE_DISK_ID) or not count:
            continue
        grub_name = f"sun{index + 1}"
        start = cylinder * ntrks * nsect * SECTOR
        source = partition_source(disk, start, count * SECTOR, grub_name, warnings)
        if source is not None:
            volumes.append(Volume(grub_name=grub_name, number=index + 1, start=start, source=source,
                                  type_id=f"sun:{ids[index]}"))
    return volumes


def _vtoc(disk: ByteSource, holder: ByteSource, base: int, prefix: str, where: str,
          warnings: list[str]) -> list[Volume] | None:
    raw = _sector(holder, 1)
    if raw is None:
        return None
    fields = VTOC_SLICES.unpack_from(raw)
    if fields[-1] != MAGIC:
        return None
    if not _xor_ok(raw, "<"):
        warnings.append(f"{where}: Solaris VTOC checksum does not match; ignored as GRUB does"
                        f" (at byte offset {SECTOR + 510:#x})")
        return None
    volumes = []
    for index in range(16):
        tag, _flags, first, count = fields[4 * index : 4 * index + 4]
        if tag in (0, WHOLE_DISK_ID) or not count:
            continue
        grub_name = f"{prefix}{index + 1}"
        start = base + first * SECTOR
        source = partition_source(disk, start, count * SECTOR, grub_name, warnings)
        if source is not None:
            volumes.append(Volume(grub_name=grub_name, number=index + 1, start=start, source=source,
                                  type_id=f"vtoc:{tag}"))
    return volumes


def read_vtoc_table(disk: ByteSource, warnings: list[str]) -> list[Volume] | None:
    """A Solaris VTOC on a whole disk with no other table: ``(hd0,sunpc1)`` …"""
    return _vtoc(disk, disk, 0, "sunpc", disk.name, warnings)


def read_vtoc_nested(disk: ByteSource, partition: Volume, warnings: list[str]) -> list[Volume]:
    """The slices of a Solaris VTOC inside ``partition``: ``(hd0,msdos1,sunpc1)`` …"""
    where = f"{disk.name},{partition.grub_name}"
    return _vtoc(disk, partition.source, partition.start, f"{partition.grub_name},sunpc", where, warnings) or []
