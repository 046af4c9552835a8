"""What a kernel file is: the x86 boot-protocol header of a bzImage, or an ELF image.

Layout: Linux's Documentation/arch/x86/boot.rst, "The real-mode kernel header" (offsets
from the start of the file): setup_sects at 0x1f1, boot_flag 0xAA55 at 0x1fe, header
"HdrS" at 0x202, protocol version at 0x206, kernel_version at 0x20e (a pointer to a NUL-
terminated string, minus 0x200, when non-zero). ELF: the ident bytes of the System V ABI.
Only reads the first bytes it needs; never trusts a pointer beyond the file's size.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from ..source import ByteSource

_BOOT_FLAG = struct.Struct("<H")  # at 0x1fe: 0xAA55
_PROTOCOL = struct.Struct("<H")  # at 0x206: major << 8 | minor
_VERSION_PTR = struct.Struct("<H")  # at 0x20e: kernel_version, string at value + 0x200
_HEADER_END = 0x210
_VERSION_MAX = 256


class KernelInfo(NamedTuple):
    kind: str  # "bzImage", "elf64", "elf32", "gzip", "unknown"
    protocol: str = ""  # boot protocol "2.15" for a bzImage
    version: str = ""  # the kernel_version string, e.g. "6.1.0-18-amd64 (debian-kernel@…) #1 SMP …"


def describe(source: ByteSource) -> KernelInfo:
    head = source.pread(0, min(source.size, 0x280))
    if head[:4] == b"\x7fELF":
        return KernelInfo("elf64" if head[4:5] == b"\x02" else "elf32")
    if head[:2] == b"\x1f\x8b":
        return KernelInfo("gzip")
    if len(head) < _HEADER_END:
        return KernelInfo("unknown")
    if _BOOT_FLAG.unpack_from(head, 0x1FE)[0] != 0xAA55 or head[0x202:0x206] != b"HdrS":
        return KernelInfo("unknown")
    protocol = _PROTOCOL.unpack_from(head, 0x206)[0]
    pointer = _VERSION_PTR.unpack_from(head, 0x20E)[0]
    version = ""
    if pointer:
        at = pointer + 0x200
        if at < source.size:
            raw = source.pread(at, min(_VERSION_MAX, source.size - at))
            version = raw.split(b"\0", 1)[0].decode("ascii", "replace")
    return KernelInfo("bzImage", f"{protocol >> 8}.{protocol & 0xFF:02d}", version)
