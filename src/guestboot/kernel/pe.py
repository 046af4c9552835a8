"""PE/COFF images (an EFI stub kernel, a unified kernel image) and the arm64 Image header.

PE: Microsoft's PE Format, "MS-DOS Stub" (e_lfanew at 0x3c), "Signature" PE\\0\\0, "COFF
File Header" (Machine, NumberOfSections, …, SizeOfOptionalHeader at +16), "Section
Table" (40-byte headers, the name in the first 8 bytes). A PE with a ``.linux`` section
is a unified kernel image (the UAPI group's UKI specification); parsing its sections is
the job of boot/ (BLS/UKI); here it is only named.

arm64 Image: Linux's Documentation/arch/arm64/booting.rst, "Call the kernel image":
a 64-byte header, text_offset at 8, image_size at 16, flags at 24, magic "ARM\\x64" at 56.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from ..limits import LIMITS

_LFANEW = struct.Struct("<I")  # at 0x3c
_COFF = struct.Struct("<HHIIIHH")  # Machine, NumberOfSections, TimeDateStamp, PointerToSymbolTable,
# NumberOfSymbols, SizeOfOptionalHeader, Characteristics (after "PE\0\0")
_SECTION = 40
MACHINES = {0x14C: "i386", 0x8664: "x86_64", 0xAA64: "arm64", 0x1C2: "arm", 0x5064: "riscv64"}
_ARM64 = struct.Struct("<IIQQQQQQII")  # code0, code1, text_offset, image_size, flags, res2-4, magic, res5
ARM64_MAGIC = 0x644D5241


class PeInfo(NamedTuple):
    machine: str
    sections: list[str]

    @property
    def is_uki(self) -> bool:
        return ".linux" in self.sections


def parse_pe(head: bytes) -> PeInfo | None:
    """The PE header in ``head`` (the file's first 64 KiB), or None when there is none."""
    if head[:2] != b"MZ" or len(head) < 0x40:
        return None
    at = _LFANEW.unpack_from(head, 0x3C)[0]
    if at + 4 + _COFF.size > len(head) or head[at : at + 4] != b"PE\0\0":
        return None
    machine, count, _t, _p, _n, opt_size, _c = _COFF.unpack_from(head, at + 4)
    table = at + 4 + _COFF.size + opt_size
    sections = []
    for i in range(min(count, LIMITS.max_pe_sections)):
        start = table + i * _SECTION
        if start + _SECTION > len(head):
            break
        sections.append(head[start : start + 8].rstrip(b"\0").decode("ascii", "backslashreplace"))
    return PeInfo(MACHINES.get(machine, f"machine {machine:#x}"), sections)


class Arm64Image(NamedTuple):
    text_offset: int
    image_size: int
    big_endian: bool
    page_size: str


def parse_arm64(head: bytes) -> Arm64Image | None:
    if len(head) < _ARM64.size:
        return None
    _c0, _c1, text_offset, image_size, flags, _r2, _r3, _r4, magic, _r5 = _ARM64.unpack_from(head)
    if magic != ARM64_MAGIC:
        return None
    page = {0: "unspecified", 1: "4K", 2: "16K", 3: "64K"}[(flags >> 1) & 3]
    return Arm64Image(text_offset, image_size, bool(flags & 1), page)
