"""What a kernel file is, and what it can boot as.

``describe(source)`` is the cheap look every extraction takes (the first bytes only:
bzImage header and version string, or ELF class); ``inspect.inspect(source)`` is the full
look (payload decompressed, ELF notes, PV/PVH/HVM verdict), imported on demand:

- bzimage.py   the x86 boot protocol's setup header
- stream.py    codecs by magic; bounded streaming decoders; a forward reader over them
- elf.py       ELF headers, notes (segments, then sections), the __xen_guest section
- xen.py       Xen's note numbers and the PV/PVH rules of Xen's domain builder
- multiboot.py multiboot v1/v2 headers where the specs say to search
- pe.py        PE/UKI identification and the arm64 Image header
- initrd.py    an initrd's archives: cpio, codec, microcode prepends
"""

from __future__ import annotations

from typing import NamedTuple

from ..source import ByteSource


class KernelInfo(NamedTuple):
    kind: str  # "bzImage", "elf64", "elf32", "gzip", "unknown"
    protocol: str = ""  # boot protocol "2.15" for a bzImage
    version: str = ""  # the kernel_version string, e.g. "6.1.0-18-amd64 (debian-kernel@…) #1 SMP …"


def describe(source: ByteSource) -> KernelInfo:
    from . import bzimage

    head = source.pread(0, min(source.size, bzimage.HEADER_END))
    if head[:4] == b"\x7fELF":
        return KernelInfo("elf64" if head[4:5] == b"\x02" else "elf32")
    if head[:2] == b"\x1f\x8b":
        return KernelInfo("gzip")
    if not bzimage.is_bzimage(head):
        return KernelInfo("unknown")
    header = bzimage.parse(source, head)
    return KernelInfo("bzImage", header.protocol_text, header.version)
