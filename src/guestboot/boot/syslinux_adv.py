"""SYSLINUX's Auxiliary Data Vector: what ``extlinux --once=LABEL`` and ``--menu-save``
(and the boot loader itself) store beside the boot loader.

Layout (SYSLINUX 6, libinstaller/setadv.c and advio.c; com32/include/syslinux/advconst.h):
the ADV is the last 1024 bytes of ``ldlinux.sys`` (older installs: ``extlinux.sys``) in
the install directory, on the file systems where SYSLINUX keeps it in that file (ext2/3/4,
FAT, NTFS); two copies of 512 bytes. A copy is valid when it starts with ADV_MAGIC1, ends
with ADV_MAGIC3 and its 32-bit little-endian words from byte 4 to byte 508 add up to
ADV_MAGIC2; the first valid copy is used, none means an empty ADV. Bytes 8..508 hold
records: tag, length, data; tag 0 ends them. Tag 1 (BOOTONCE) is a command line
ldlinux boots once before anything else; tag 2 (MENUSAVE) the label ``MENU SAVE``
remembers. btrfs and XFS keep the ADV in a raw area of the device: not read here.
"""

from __future__ import annotations

import posixpath
import struct

from ..errors import GuestbootError, NotFound
from ..fs.base import FileType
from ..fs.path import open_file, resolve

ADV_SIZE = 512
ADV_MAGIC1 = 0x5A2D2FA5  # head signature
ADV_MAGIC2 = 0xA3041767  # total checksum
ADV_MAGIC3 = 0xDD28BF64  # tail signature
ADV_END, ADV_BOOTONCE, ADV_MENUSAVE = 0, 1, 2
FILES = ("ldlinux.sys", "extlinux.sys")  # extlinux's ext_read_adv tries them in this order
_WORDS = struct.Struct("<128I")  # one copy as 32-bit little-endian words


def _valid(copy: bytes) -> bool:
    words = _WORDS.unpack(copy)
    return words[0] == ADV_MAGIC1 and words[-1] == ADV_MAGIC3 and sum(words[1:-1]) & 0xFFFFFFFF == ADV_MAGIC2


def parse(block: bytes) -> dict[int, bytes]:
    """The records of a 1024-byte ADV (both copies); {} when neither copy is valid."""
    for copy in (block[:ADV_SIZE], block[ADV_SIZE : 2 * ADV_SIZE]):
        if len(copy) == ADV_SIZE and _valid(copy):
            break
    else:
        return {}
    records: dict[int, bytes] = {}
    data, pos = copy[8 : ADV_SIZE - 4], 0
    while pos + 2 <= len(data):  # bounded by the 500-byte data area
        tag, size = data[pos], data[pos + 1]
        if tag == ADV_END or pos + 2 + size > len(data):
            break
        records.setdefault(tag, data[pos + 2 : pos + 2 + size])
        pos += 2 + size
    return records


def read(fs, directory: str) -> tuple[str | None, dict[int, bytes]]:
    """(the file the ADV was read from, its records) for an install ``directory``;
    (None, {}) when there is no ldlinux.sys there."""
    for name in FILES:
        path = posixpath.join(directory, name)
        try:
            node = resolve(fs, path)
        except NotFound:
            continue
        except GuestbootError:
            return None, {}
        if node.type is not FileType.REG or node.size < 2 * ADV_SIZE:
            return path, {}
        source = open_file(fs, path)
        return path, parse(source.pread(node.size - 2 * ADV_SIZE, 2 * ADV_SIZE))
    return None, {}


def text(value: bytes) -> str:
    """A record's text (it may end with NUL bytes)."""
    return value.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
