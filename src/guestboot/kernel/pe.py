"""PE/COFF images (an EFI stub kernel, a unified kernel image) and the arm64 Image header.

PE: Microsoft's PE Format, "MS-DOS Stub" (e_lfanew at 0x3c), "Signature" PE\\0\\0, "COFF
File Header" (Machine, NumberOfSections, …, SizeOfOptionalHeader at +16), "Section
Table" (40-byte headers, the name in the first 8 bytes). A PE with a ``.linux`` section
is a unified kernel image (the UAPI group's UKI specification). :func:`sections` reads the
section table of a file through a byte source, for boot/sdboot.py: a section's bytes are
at ``PointerToRawData``; its length is ``VirtualSize`` (the size when loaded, which
systemd's stub and systemd-boot use; the raw size is padded to FileAlignment), clipped to
``SizeOfRawData``.

arm64 Image: Linux's Documentation/arch/arm64/booting.rst, "Call the kernel image":
a 64-byte header, text_offset at 8, image_size at 16, flags at 24, magic "ARM\\x64" at 56.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from ..errors import CorruptImage, LimitExceeded
from ..limits import LIMITS

_LFANEW = struct.Struct("<I")  # at 0x3c
_COFF = struct.Struct("<HHIIIHH")  # Machine, NumberOfSections, TimeDateStamp, PointerToSymbolTable,
# NumberOfSymbols, SizeOfOptionalHeader, Characteristics (after "PE\0\0")
_SECTION = 40
_SECTION_HEADER = struct.Struct("<8sIIII")  # Name, VirtualSize, VirtualAddress, SizeOfRawData, PointerToRawData
_MAX_HEADER_OFFSET = 1 << 20  # e_lfanew beyond this is no PE a boot loader loads
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


class Section(NamedTuple):
    name: str
    offset: int  # in the file
    size: int  # bytes of payload (VirtualSize, clipped to the raw data)


def sections(source) -> list[Section]:
    """The sections of the PE image in byte source ``source``, in table order;
    CorruptImage naming the offset when a header or a section lies outside the file,
    LimitExceeded beyond LIMITS.max_pe_sections."""
    where = source.name
    if source.size < 0x40 or source.pread(0, 2) != b"MZ":
        raise CorruptImage("not a PE image (no MZ header)", where=where, offset=0)
    at = _LFANEW.unpack(source.pread(0x3C, 4))[0]
    if at > _MAX_HEADER_OFFSET or at + 4 + _COFF.size > source.size:
        raise CorruptImage(f"PE header offset {at:#x} is outside the file", where=where, offset=0x3C)
    if source.pread(at, 4) != b"PE\0\0":
        raise CorruptImage("no PE signature", where=where, offset=at)
    _m, count, _t, _p, _n, opt_size, _c = _COFF.unpack(source.pread(at + 4, _COFF.size))
    if count > LIMITS.max_pe_sections:
        raise LimitExceeded(f"{where}: {count} PE sections, more than {LIMITS.max_pe_sections} (max_pe_sections)")
    table = at + 4 + _COFF.size + opt_size
    if table + count * _SECTION > source.size:
        raise CorruptImage(f"PE section table ({count} entries) runs past the end of the file", where=where,
                           offset=table)
    raw = source.pread(table, count * _SECTION)
    out: list[Section] = []
    for i in range(count):
        name, vsize, _va, rsize, rptr = _SECTION_HEADER.unpack_from(raw, i * _SECTION)
        size = min(vsize, rsize) if vsize else rsize
        text = name.rstrip(b"\0").decode("ascii", "backslashreplace")
        if size and rptr + size > source.size:
            raise CorruptImage(f"PE section {text!r} lies outside the file", where=where, offset=table + i * _SECTION)
        out.append(Section(text, rptr, size))
    return out
