"""Multiboot headers: what a multiboot loader (GRUB's multiboot/multiboot2) finds.

Multiboot 0.6.96, section 3.1.1 "The layout of Multiboot header": magic 0x1BADB002,
flags, checksum (magic + flags + checksum = 0 mod 2^32), 4-byte aligned within the first
8192 bytes of the image. Multiboot2 1.0, section 3.1.1: magic 0xE85250D6, architecture
(0 i386 protected mode, 4 MIPS32), header_length, checksum (the four sum to 0), 8-byte
aligned within the first 32768 bytes; tags follow (type u16, flags u16, size u32, each
padded to 8), ended by a tag of type 0. GRUB decompresses a gzip/xz/lzop file before it
looks, so callers pass the decompressed head.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

V1_MAGIC, V1_SEARCH, V1_ALIGN = 0x1BADB002, 8192, 4
V2_MAGIC, V2_SEARCH, V2_ALIGN = 0xE85250D6, 32768, 8
_V1 = struct.Struct("<III")  # magic, flags, checksum
_V2 = struct.Struct("<IIII")  # magic, architecture, header_length, checksum
_TAG = struct.Struct("<HHI")  # type, flags, size
V1_FLAGS = {0x1: "page_align", 0x2: "memory_info", 0x4: "video_mode", 0x10000: "address_fields"}
V2_ARCHES = {0: "i386", 4: "mips32"}
V2_TAGS = {1: "information_request", 2: "address", 3: "entry_address", 4: "console_flags",
           5: "framebuffer", 6: "module_align", 7: "efi_boot_services", 8: "efi_i386_entry",
           9: "efi_amd64_entry", 10: "relocatable"}
MAX_TAGS = V2_SEARCH // 8  # every tag is at least 8 bytes: a header holds no more


class Multiboot(NamedTuple):
    version: int  # 1 or 2
    offset: int
    flags: list[str]  # v1: flag names; v2: tag names
    arch: str  # v2's architecture; "i386" for v1 (the only one it has)


def _sum32(*values: int) -> int:
    return sum(values) & 0xFFFFFFFF


def find(head: bytes) -> list[Multiboot]:
    """The valid multiboot headers in ``head`` (the first 32 KiB of the image), v1 then v2."""
    found = []
    for at in range(0, min(len(head), V1_SEARCH) - _V1.size + 1, V1_ALIGN):
        magic, flags, checksum = _V1.unpack_from(head, at)
        if magic == V1_MAGIC and _sum32(magic, flags, checksum) == 0:
            names = [name for bit, name in V1_FLAGS.items() if flags & bit]
            found.append(Multiboot(1, at, names, "i386"))
            break
    for at in range(0, min(len(head), V2_SEARCH) - _V2.size + 1, V2_ALIGN):
        magic, arch, length, checksum = _V2.unpack_from(head, at)
        if magic == V2_MAGIC and _sum32(magic, arch, length, checksum) == 0:
            found.append(Multiboot(2, at, _tags(head, at + _V2.size, at + length),
                                   V2_ARCHES.get(arch, f"architecture {arch}")))
            break
    return found


def _tags(head: bytes, at: int, end: int) -> list[str]:
    names = []
    end = min(end, len(head))
    for _ in range(MAX_TAGS):
        if at + _TAG.size > end:
            break
        kind, _flags, size = _TAG.unpack_from(head, at)
        if kind == 0 or size < _TAG.size:
            break
        names.append(V2_TAGS.get(kind, f"tag {kind}"))
        at += (size + 7) & ~7
    return names
