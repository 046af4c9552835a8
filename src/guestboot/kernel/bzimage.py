"""The x86 Linux boot protocol's setup header: what a bzImage says about itself.

Layout: Linux's Documentation/arch/x86/boot.rst, "The real-mode kernel header" (offsets
from the start of the file): setup_sects at 0x1f1, boot_flag 0xAA55 at 0x1fe, "HdrS" at
0x202, version at 0x206, kernel_version at 0x20e (the version string's offset minus
0x200), loadflags at 0x211, xloadflags at 0x236 (protocol 2.12), payload_offset and
payload_length at 0x248 (2.08; the payload is the compressed vmlinux, counted from the
start of the protected-mode code, which follows the (setup_sects or 4) + 1 sectors of
the real-mode part), init_size at 0x260 (2.10). Only the header's bytes are trusted as
far as the file's size allows.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from ..source import ByteSource

HEADER_END = 0x270  # through kernel_info_offset (2.15)
_VERSION_MAX = 256  # bytes of the kernel_version string read

_SETUP_SECTS = struct.Struct("<B")  # 0x1f1
_BOOT_FLAG = struct.Struct("<H")  # 0x1fe
_VERSION = struct.Struct("<H")  # 0x206 protocol, 0x20e kernel_version pointer
_LOADFLAGS = struct.Struct("<B")  # 0x211
_XLOADFLAGS = struct.Struct("<H")  # 0x236
_PAYLOAD = struct.Struct("<II")  # 0x248 payload_offset, payload_length
_INIT_SIZE = struct.Struct("<I")  # 0x260

LOADFLAGS = {0x01: "LOADED_HIGH", 0x20: "QUIET_FLAG", 0x40: "KEEP_SEGMENTS", 0x80: "CAN_USE_HEAP"}
XLOADFLAGS = {
    0x01: "XLF_KERNEL_64", 0x02: "XLF_CAN_BE_LOADED_ABOVE_4G", 0x04: "XLF_EFI_HANDOVER_32",
    0x08: "XLF_EFI_HANDOVER_64", 0x10: "XLF_EFI_KEXEC", 0x20: "XLF_5LEVEL", 0x40: "XLF_5LEVEL_ENABLED",
}


class SetupHeader(NamedTuple):
    protocol: tuple[int, int]
    version: str  # "6.1.0-18-amd64 (debian-kernel@…) #1 SMP …", "" when absent
    loadflags: int
    xloadflags: int
    setup_size: int  # bytes before the protected-mode code
    payload_offset: int  # from the start of the file; 0 when the protocol has no payload fields
    payload_length: int
    init_size: int

    @property
    def protocol_text(self) -> str:
        return f"{self.protocol[0]}.{self.protocol[1]:02d}"


def flag_names(value: int, names: dict[int, str]) -> list[str]:
    out = [name for bit, name in names.items() if value & bit]
    rest = value & ~sum(names)
    if rest:
        out.append(f"{rest:#x}")
    return out


def is_bzimage(head: bytes) -> bool:
    return (len(head) >= 0x210 and _BOOT_FLAG.unpack_from(head, 0x1FE)[0] == 0xAA55
            and head[0x202:0x206] == b"HdrS")


def parse(source: ByteSource, head: bytes) -> SetupHeader:
    """The setup header; ``head`` holds the file's first bytes (at least 0x210)."""
    head = head[:HEADER_END].ljust(HEADER_END, b"\0")
    raw = _VERSION.unpack_from(head, 0x206)[0]
    protocol = (raw >> 8, raw & 0xFF)
    pointer = _VERSION.unpack_from(head, 0x20E)[0]
    version = ""
    if pointer and pointer + 0x200 < source.size:
        at = pointer + 0x200
        data = source.pread(at, min(_VERSION_MAX, source.size - at))
        version = data.split(b"\0", 1)[0].decode("ascii", "replace")
    setup_size = ((_SETUP_SECTS.unpack_from(head, 0x1F1)[0] or 4) + 1) * 512
    payload_offset = payload_length = init_size = 0
    if protocol >= (2, 8):
        offset, payload_length = _PAYLOAD.unpack_from(head, 0x248)
        payload_offset = setup_size + offset
    if protocol >= (2, 10):
        init_size = _INIT_SIZE.unpack_from(head, 0x260)[0]
    xloadflags = _XLOADFLAGS.unpack_from(head, 0x236)[0] if protocol >= (2, 12) else 0
    return SetupHeader(protocol, version, _LOADFLAGS.unpack_from(head, 0x211)[0], xloadflags,
                       setup_size, payload_offset, payload_length, init_size)
