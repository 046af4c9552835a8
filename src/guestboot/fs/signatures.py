"""What a volume holds when no driver in PROBES claims it: the magic numbers of common file
systems and other volume contents, so that a device can say "xfs file system: not
supported yet" instead of "no recognised file system".

One line per kind in SIGNATURES. When a driver for a kind lands, its line here goes and
its module joins fs.PROBES: this table is consulted only after every driver said no.
Each check is (byte offset, magic); an offset may be computed from the volume's size.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

from ..source import ByteSource

KiB = 1024


def _md_090(size: int) -> int:
    # md superblock 0.90 (Linux md_p.h MD_NEW_SIZE_SECTORS): the last 64 KiB-aligned
    # 64 KiB of the device
    return (size & ~(64 * KiB - 1)) - 64 * KiB


def _md_10(size: int) -> int:
    # md superblock 1.0 (Linux md_p.h, struct mdp_superblock_1): 8 KiB before the end,
    # rounded down to 4 KiB
    return (size - 8 * KiB) & ~(4 * KiB - 1)


class Signature(NamedTuple):
    """``what`` the volume holds when every (offset, magic) of ``checks`` matches.
    ``unsupported``: we cannot read it (the device's problem is Unsupported); False for
    contents that hold no files at all (swap), which are only named."""

    what: str
    checks: tuple[tuple["int | Callable[[int], int]", bytes], ...]
    unsupported: bool = True


MD_MAGIC = b"\xfc\x4e\x2b\xa9"  # 0xa92b4efc little-endian (Linux md_p.h MD_SB_MAGIC)

SIGNATURES: tuple[Signature, ...] = (
    Signature("NTFS file system", ((3, b"NTFS    "),)),  # NTFS boot sector OEM ID
    Signature("f2fs file system", ((1 * KiB, b"\x10\x20\xf5\xf2"),)),  # f2fs superblock F2FS_SUPER_MAGIC
    Signature("LUKS encrypted volume", ((0, b"LUKS\xba\xbe"),)),  # LUKS1 / LUKS2 on-disk format: magic
    Signature("LVM2 physical volume", ((0, b"LABELONE"), (24, b"LVM2 001"))),  # LVM2 label, sectors 0-3
    Signature("LVM2 physical volume", ((512, b"LABELONE"), (512 + 24, b"LVM2 001"))),
    Signature("LVM2 physical volume", ((1024, b"LABELONE"), (1024 + 24, b"LVM2 001"))),
    Signature("LVM2 physical volume", ((1536, b"LABELONE"), (1536 + 24, b"LVM2 001"))),
    Signature("md RAID member", ((0, MD_MAGIC),)),  # md superblock 1.1: at the start
    Signature("md RAID member", ((4 * KiB, MD_MAGIC),)),  # md superblock 1.2: 4 KiB in
    Signature("md RAID member", ((_md_10, MD_MAGIC),)),  # md superblock 1.0: near the end
    Signature("md RAID member", ((_md_090, MD_MAGIC),)),  # md superblock 0.90: the last 64 KiB
    Signature("Linux swap space", ((4 * KiB - 10, b"SWAPSPACE2"),), unsupported=False),  # mkswap, 4 KiB pages
    Signature("Linux swap space", ((64 * KiB - 10, b"SWAPSPACE2"),), unsupported=False),  # 64 KiB pages
)


def identify(source: ByteSource) -> Signature | None:
    """The first signature whose every check matches ``source``, or None. Reads a few
    bytes per check; offsets outside the source do not match."""
    size = source.size
    for signature in SIGNATURES:
        for where, magic in signature.checks:
            offset = where(size) if callable(where) else where
            if offset < 0 or offset + len(magic) > size or source.pread(offset, len(magic)) != magic:
                break
        else:
            return signature
    return None
