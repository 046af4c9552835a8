"""The btrfs superblock and its mirrors ("Superblock" in the btrfs on-disk format page).

The primary copy at 64 KiB decides whether the volume is btrfs at all (its magic). When
the primary is damaged (bad checksum, contradicting fields), a mirror at 64 MiB or 256 GiB
that lies inside the volume, passes its own checks and says where it lives (bytenr) is
used instead, with a warning. Beside a good primary, a mirror counts only when it belongs
to the same file system (fsid): a larger, older file system may have left one behind. GRUB reads the copies the same way and
takes the newest generation among the good ones; so do we.
"""

from __future__ import annotations

from typing import NamedTuple

from ...errors import CorruptImage, Unsupported
from ...source import ByteSource
from .checksum import Checker
from .layout import (
    INCOMPAT_METADATA_UUID,
    INCOMPAT_NAMES,
    INCOMPAT_SUPPORTED,
    MAX_LEVEL,
    OFF_CSUM_TYPE,
    OFF_DEV_ITEM,
    OFF_INCOMPAT,
    OFF_NODESIZE,
    OFF_SYS_CHUNK_ARRAY_SIZE,
    SUPER_MAGIC,
    SUPER_OFFSETS,
    SUPER_SIZE,
    SYS_CHUNK_ARRAY_MAX,
    SYS_CHUNK_ARRAY_OFFSET,
    DevItem,
    Superblock,
)


class Volume(NamedTuple):
    """A checked superblock and what follows from it."""

    sb: Superblock
    offset: int  # where the copy in use lives
    dev: DevItem
    fsid: bytes  # what tree block headers carry (metadata_uuid when that feature is on)
    sys_chunk_array: bytes
    checker: Checker
    uuid: str
    label: str | None
    warnings: list[str]


def format_uuid(raw: bytes) -> str:
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _feature_names(bits: int) -> str:
    return ", ".join(INCOMPAT_NAMES.get(1 << b, f"unknown bit {1 << b:#x}") for b in range(64) if bits & (1 << b))


def _check(raw: bytes, offset: int, source: ByteSource) -> tuple[Superblock, Checker]:
    """The superblock in ``raw`` read at ``offset``; CorruptImage/Unsupported naming the field."""
    name = source.name
    sb = Superblock.from_bytes(raw)

    def bad(message: str, field: int) -> CorruptImage:
        return CorruptImage(f"btrfs superblock: {message}", where=name, offset=offset + field)

    checker = Checker(sb.csum_type)
    if not checker.known():
        raise Unsupported(f"btrfs: checksum type {sb.csum_type}", where=name, offset=offset + OFF_CSUM_TYPE)
    if not checker.good(raw):
        raise bad(f"{checker.name} checksum mismatch", 0)
    if sb.bytenr != offset:
        raise bad(f"copy at {offset:#x} says it lives at {sb.bytenr:#x}", 0x30)
    unknown = sb.incompat_flags & ~INCOMPAT_SUPPORTED
    if unknown:
        raise Unsupported(f"btrfs: incompatible features not supported: {_feature_names(unknown)}", where=name,
                          offset=offset + OFF_INCOMPAT)
    if sb.sectorsize < 512 or sb.sectorsize > 65536 or sb.sectorsize & (sb.sectorsize - 1):
        raise bad(f"sector size {sb.sectorsize}", 0x90)
    if sb.nodesize < sb.sectorsize or sb.nodesize > 65536 or sb.nodesize & (sb.nodesize - 1):
        raise bad(f"node size {sb.nodesize}", OFF_NODESIZE)
    if sb.sys_chunk_array_size > SYS_CHUNK_ARRAY_MAX:
        raise bad(f"system chunk array of {sb.sys_chunk_array_size} bytes", OFF_SYS_CHUNK_ARRAY_SIZE)
    if sb.root_level >= MAX_LEVEL or sb.chunk_root_level >= MAX_LEVEL:
        raise bad(f"tree levels {sb.root_level}/{sb.chunk_root_level}", 0xC6)
    if sb.num_devices == 0:
        raise bad("zero devices", 0x88)
    return sb, checker


def read_superblock(source: ByteSource) -> Volume | None:
    """The superblock to use, or None when the primary copy has no btrfs magic."""
    first = SUPER_OFFSETS[0]
    if source.size < first + SUPER_SIZE:
        return None
    primary = source.pread(first, SUPER_SIZE)
    if Superblock.from_bytes(primary).magic != SUPER_MAGIC:
        return None
    warnings: list[str] = []
    try:
        best = (*_check(primary, first, source), first, primary)
        damage = None
    except CorruptImage as exc:
        best = None
        damage = exc
    primary_fsid = Superblock.from_bytes(primary).fsid
    for offset in SUPER_OFFSETS[1:]:
        if offset + SUPER_SIZE > source.size:
            break
        raw = source.pread(offset, SUPER_SIZE)
        mirror = Superblock.from_bytes(raw)
        if mirror.magic != SUPER_MAGIC or (damage is None and mirror.fsid != primary_fsid):
            continue  # a stale copy of an earlier file system, or none
        try:
            sb, checker = _check(raw, offset, source)
        except (CorruptImage, Unsupported):
            continue  # a damaged mirror is passed over, as GRUB does
        if best is None or sb.generation > best[0].generation:
            best = (sb, checker, offset, raw)
    if best is None:
        assert damage is not None
        raise damage
    if damage is not None:
        warnings.append(f"primary superblock damaged ({damage.message}); using the copy at {best[2]:#x}")
    sb, checker, offset, raw = best
    dev = DevItem.from_bytes(raw, OFF_DEV_ITEM)
    name = source.name
    if dev.total_bytes > source.size:
        raise CorruptImage(f"btrfs superblock: device of {dev.total_bytes} bytes does not fit in {source.size} bytes",
                           where=name, offset=offset + OFF_DEV_ITEM + 8)
    fsid = sb.metadata_uuid if sb.incompat_flags & INCOMPAT_METADATA_UUID else sb.fsid
    if not checker.verifies:
        warnings.append(f"metadata checksums ({checker.name}) not verified")
    label = sb.label.split(b"\0", 1)[0]
    return Volume(
        sb=sb,
        offset=offset,
        dev=dev,
        fsid=fsid,
        sys_chunk_array=raw[SYS_CHUNK_ARRAY_OFFSET : SYS_CHUNK_ARRAY_OFFSET + sb.sys_chunk_array_size],
        checker=checker,
        uuid=format_uuid(sb.fsid),
        label=label.decode("utf-8", "replace") if label else None,
        warnings=warnings,
    )
