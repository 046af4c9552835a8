"""What an initrd holds: its archives one after another, each cpio or compressed.

Linux unpacks an initramfs as a sequence of archives (init/initramfs.c, unpack_to_rootfs;
Documentation/driver-api/early-userspace/buffer-format.rst): uncompressed "newc" cpio
archives (magic 070701, or 070702 with checksums; 110-byte ASCII-hex headers, name and
data each padded to 4 bytes, ended by "TRAILER!!!"), compressed ones recognised by their
magic, and zero padding between them. Distributions prepend an uncompressed archive with
CPU microcode (kernel/x86/microcode/GenuineIntel.bin, AuthenticAMD.bin) for the kernel's
early loader, then the compressed main archive. This module walks the uncompressed
archives member by member (LIMITS.max_cpio_members), and for a compressed one decodes only
its first bytes to see whether a cpio archive is inside: its end is known only by decoding
all of it, so it is the last part looked at. Shown to the user, never required.
"""

from __future__ import annotations

from typing import Any

from ..errors import CorruptImage, LimitExceeded
from ..limits import LIMITS
from ..source import ByteSource
from .stream import Reader, codec_of

CPIO_MAGICS = (b"070701", b"070702")
_HEADER = 110  # newc header: magic and 13 fields of 8 hex digits
_FILESIZE, _NAMESIZE = 54, 94  # offsets of c_filesize and c_namesize
PATH_MAX = 4096  # Linux's initramfs.c refuses longer names
TRAILER = b"TRAILER!!!"
MICROCODE_DIR = "kernel/x86/microcode/"
_GAP_CHUNK = 4096


def _pad4(value: int) -> int:
    return (value + 3) & ~3


def _hex(header: bytes, at: int, where: int) -> int:
    try:
        return int(header[at : at + 8], 16)
    except ValueError:
        raise CorruptImage(f"cpio header field is not hex: {header[at:at + 8]!r}", offset=where) from None


def walk_cpio(source: ByteSource, start: int) -> tuple[int, int, list[str]]:
    """(members, end offset, microcode file names) of the newc archive at ``start``."""
    at = start
    microcode: list[str] = []
    for count in range(LIMITS.max_cpio_members + 1):
        if count == LIMITS.max_cpio_members:
            raise LimitExceeded(f"cpio archive of more than {count} members (limit max_cpio_members)",
                                offset=start)
        if at + _HEADER > source.size:
            raise CorruptImage("cpio archive ends without a TRAILER!!! member", offset=at)
        header = source.pread(at, _HEADER)
        if header[:6] not in CPIO_MAGICS:
            raise CorruptImage(f"cpio member without the newc magic ({header[:6]!r})", offset=at)
        namesize, filesize = _hex(header, _NAMESIZE, at), _hex(header, _FILESIZE, at)
        if not 0 < namesize <= PATH_MAX or at + _HEADER + namesize > source.size:
            raise CorruptImage(f"cpio member name of {namesize} bytes", offset=at)
        name = source.pread(at + _HEADER, namesize).rstrip(b"\0").decode("utf-8", "backslashreplace")
        data_at = at + _pad4(_HEADER + namesize)
        if name == TRAILER.decode():
            return count, data_at, microcode
        if name.startswith(MICROCODE_DIR) and filesize:
            microcode.append(name)
        at = data_at + _pad4(filesize)
    raise AssertionError("unreachable")  # the loop raises or returns


def _skip_zeros(source: ByteSource, at: int) -> int:
    limit = at + LIMITS.max_initrd_gap
    while at < source.size:
        data = source.pread(at, min(_GAP_CHUNK, source.size - at))
        stripped = data.lstrip(b"\0")
        if stripped:
            return at + len(data) - len(stripped)
        at += len(data)
        if at > limit:
            raise LimitExceeded(f"more than {LIMITS.max_initrd_gap} zero bytes between initrd archives"
                                " (limit max_initrd_gap)", offset=at)
    return at


def inspect_initrd(source: ByteSource) -> dict[str, Any]:
    """The archives of an initrd: [{"offset", "format": "cpio"|codec|"unknown", …}], whether
    it carries microcode, and the codec of its (main) compressed archive."""
    parts: list[dict[str, Any]] = []
    at = 0
    for _ in range(LIMITS.max_initrd_parts):
        at = _skip_zeros(source, at)
        if at >= source.size:
            break
        head = source.pread(at, min(16, source.size - at))
        if head[:6] in CPIO_MAGICS:
            members, end, microcode = walk_cpio(source, at)
            parts.append({"offset": at, "format": "cpio", "members": members, "microcode": microcode})
            at = end
            continue
        codec = codec_of(head)
        if codec is None:
            parts.append({"offset": at, "format": "unknown"})
            break
        inner = Reader(source, codec=codec, offset=at, what=f"{source.name} archive").pread(0, 6)
        parts.append({"offset": at, "format": codec, "cpio": inner in CPIO_MAGICS})
        break
    compressed = [p["format"] for p in parts if p["format"] not in ("cpio", "unknown")]
    return {
        "parts": parts,
        "codec": compressed[0] if compressed else ("none" if parts and parts[-1]["format"] == "cpio" else None),
        "cpio": any(p["format"] == "cpio" or p.get("cpio") for p in parts),
        "microcode": [name for p in parts for name in p.get("microcode", [])],
    }
