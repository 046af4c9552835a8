"""The El Torito boot catalog (El Torito 1.0, sections 2.0-2.5 and 3.0-3.6): which boot
images a bootable CD offers, for BIOS ("x86") and UEFI ("efi") firmware.

The catalog is read only when asked for (``IsoFileSystem.boot_catalog()``): a damaged
catalog never stops the file system from being read. Entries are bounded by
LIMITS.max_boot_catalog_entries; the catalog must lie inside the volume.
"""

from __future__ import annotations

from typing import NamedTuple

from ...errors import CorruptImage, LimitExceeded
from ...limits import LIMITS
from ...source import ByteSource
from .layout import (
    BLOCK_SIZE,
    BOOTABLE,
    CATALOG_ENTRY_SIZE,
    DEFAULT_ENTRY,
    EXTENSION_ENTRY,
    MEDIA,
    NOT_BOOTABLE,
    PLATFORMS,
    SECTION_FINAL,
    SECTION_HEADER,
    SECTION_MORE,
    VALIDATION_ENTRY,
    VALIDATION_KEY,
)


class BootImage(NamedTuple):
    """One initial/default or section entry (El Torito 2.2, 2.4). ``load_rba`` is the
    image's first 2048-byte block; ``sector_count`` counts 512-byte virtual sectors
    (0 or 1 often means "ask the file system", as xorriso writes for large EFI images)."""

    platform: str  # "x86", "efi", … or the id as "0x12"
    bootable: bool
    media: str
    load_segment: int
    system_type: int
    sector_count: int
    load_rba: int
    offset: int  # byte offset of the entry in the volume


def _platform(value: int) -> str:
    return PLATFORMS.get(value, f"{value:#04x}")


def _entry(raw: bytes, pos: int, platform: int, offset: int, where: str) -> BootImage:
    indicator, media, segment, system, count, rba = DEFAULT_ENTRY.unpack_from(raw, pos)
    if indicator not in (BOOTABLE, NOT_BOOTABLE):
        raise CorruptImage(f"{where}: boot entry indicator {indicator:#04x} (0x88 or 0x00)", offset=offset)
    return BootImage(_platform(platform), indicator == BOOTABLE, MEDIA.get(media & 0x0F, f"type {media & 0x0F}"),
                     segment, system, count, rba, offset)


def read_catalog(source: ByteSource, block: int, where: str) -> tuple[BootImage, ...]:
    """The boot images the catalog at logical block ``block`` lists, in catalog order."""
    where = f"{where}: El Torito boot catalog"
    start = block * BLOCK_SIZE
    if start + BLOCK_SIZE > source.size:
        raise CorruptImage(f"{where} at block {block} lies past the end ({source.size} bytes)", offset=start)
    entry_limit = LIMITS.max_boot_catalog_entries
    # at most every entry in a catalog that spans enough blocks for the limit
    span = min(source.size - start, (entry_limit + 2) * CATALOG_ENTRY_SIZE)
    raw = source.pread(start, span)
    header, platform, _reserved, _ident, _checksum, key = VALIDATION_ENTRY.unpack_from(raw)
    if header != 1 or key != VALIDATION_KEY:
        raise CorruptImage(f"{where}: no validation entry (header {header:#04x}, key {key.hex()})", offset=start)
    if sum(int.from_bytes(raw[i : i + 2], "little") for i in range(0, CATALOG_ENTRY_SIZE, 2)) & 0xFFFF:
        raise CorruptImage(f"{where}: validation entry checksum does not sum to zero", offset=start)
    images = [_entry(raw, CATALOG_ENTRY_SIZE, platform, start + CATALOG_ENTRY_SIZE, where)]
    pos = 2 * CATALOG_ENTRY_SIZE
    while pos + CATALOG_ENTRY_SIZE <= len(raw):
        kind, platform, count, _ident = SECTION_HEADER.unpack_from(raw, pos)
        if kind not in (SECTION_MORE, SECTION_FINAL):
            break  # 2.3: anything else ends the catalog
        pos += CATALOG_ENTRY_SIZE
        taken = 0
        while taken < count:
            if pos + CATALOG_ENTRY_SIZE > len(raw):
                if span == source.size - start:  # the volume ends here
                    raise CorruptImage(f"{where}: section of {count} entries runs past the catalog",
                                       offset=start + pos)
                raise LimitExceeded(f"{where}: more than {entry_limit} entries (max_boot_catalog_entries)")
            if raw[pos] == EXTENSION_ENTRY:  # 3.6: belongs to the entry before it
                pos += CATALOG_ENTRY_SIZE
                continue
            images.append(_entry(raw, pos, platform, start + pos, where))
            taken += 1
            pos += CATALOG_ENTRY_SIZE
        if kind == SECTION_FINAL:
            break
    return tuple(images)
