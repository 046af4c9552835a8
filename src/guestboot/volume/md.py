"""Linux md RAID arrays: superblocks 0.90, 1.0, 1.1 and 1.2; RAID1, RAID0 and RAID10 (near).

Layouts follow the kernel's include/uapi/linux/raid/md_p.h and drivers/md (md.c,
raid0.c, raid10.c), as mdadm(8) and md(4) describe them:

- 0.90: a 4 KiB superblock 64 KiB from the end of the member, at sector
  ``(sectors & ~127) - 128``; 32-bit words in the host's order (little-endian on x86,
  the only order read here); data from the member's first byte. The set UUID is four
  words; ``md_minor`` the preferred minor; ``this_disk`` the member's own descriptor.
  Checksum: the words summed with the checksum word as zero, folded to 32 bits.
- 1.x: a little-endian superblock at the end (1.0: sector ``(sectors - 16) & ~7``), at
  the start (1.1) or 4 KiB in (1.2), with ``super_offset`` saying where it is; data from
  ``data_offset`` for ``data_size`` sectors; ``dev_roles[dev_number]`` is the member's
  role (0xffff spare, 0xfffe faulty). Checksum: the little-endian words of the first
  256 + 2 * max_dev bytes summed with ``sb_csum`` as zero, folded to 32 bits.

The members of one array share the set UUID; the copy with the most ``events`` is the
truth and members with fewer events are stale (left out, with a warning). RAID1 reads one
up-to-date member (not one still being recovered); RAID0 deals chunks to the members in
role order (members of equal size: one zone); RAID10 "near" keeps ``near`` copies of each
chunk on consecutive members (raid10.c with far_copies 1) and reads the first copy that is
present. Other levels, far/offset RAID10 and arrays being reshaped are Unsupported.

Naming follows GRUB (grub-core/disk/diskfilter.c, mdraid_linux.c, mdraid1x_linux.c): a 1.x
array is ``md/<name>`` with its name's "homehost:" prefix dropped; a 0.90 array is
``md/md<minor>``; a second array of the same name gets "_1", "_2" …; the UUID (GRUB's
``mduuid/<32 hex digits>`` alias) is the set UUID's bytes (0.90: its four words, each
big-endian). Device records carry type_id "md" and that UUID.
"""

from __future__ import annotations

import struct
from typing import Iterator, NamedTuple, Sequence

from ..errors import CorruptImage, GuestbootError, LimitExceeded, Unsupported
from ..limits import LIMITS
from ..source import ByteSource, SliceSource
from ..source.compose import PiecewiseSource, StripeSource
from .base import FailingSource, Volume
from .stack import Stacked

SECTOR = 512
MAGIC = 0xA92B4EFC

# md_p.h, mdp_superblock_1: the 256 bytes before dev_roles[]
SB1 = struct.Struct("<IIII16s32sQiIQIIiIQIIIiQQQQII16sBBHIQQQII32s")
SB1_FIELDS = (
    "magic major_version feature_map pad0 set_uuid set_name ctime level layout size chunksize raid_disks"
    " bitmap_offset new_level reshape_position delta_disks new_layout new_chunk new_offset data_offset"
    " data_size super_offset recovery_offset dev_number cnt_corrected_read device_uuid devflags bblog_shift"
    " bblog_size bblog_offset utime events resync_offset sb_csum max_dev pad3"
).split()
SB1_CSUM_OFFSET = 216
SB1_MAX_DEV = (4096 - 256) // 2  # md.c: a larger max_dev is refused
FEATURE_RECOVERY_OFFSET = 2
FEATURE_RESHAPE_ACTIVE = 4
ROLE_SPARE = 0xFFFF
ROLE_FAULTY = 0xFFFE

# md_p.h, mdp_super_t (0.90): 1024 32-bit words
SB0_BYTES = 4096
SB0_RESERVED = 64 * 1024  # MD_RESERVED_BYTES
SB0_WORDS = struct.Struct("<1024I")
SB0_CSUM_WORD = 38  # sb_csum in the generic state section (words 32-63)
SB0_DISKS = 27  # MD_SB_DISKS
SB0_THIS_DISK = 992  # MD_SB_DESCRIPTOR_OFFSET: number, major, minor, raid_disk, state
DISK_FAULTY = 1 << 0

LEVEL_MULTIPATH = -4


class Member(NamedTuple):
    """What one member's superblock says, reduced to what assembly needs."""

    volume: Volume
    version: str  # "0.90", "1.0", "1.1", "1.2"
    uuid: bytes  # 16 bytes, in GRUB's mduuid order
    name: str  # GRUB's name without "md/"
    level: int
    layout: int
    chunk: int  # bytes
    raid_disks: int
    role: int  # raid slot, or -1 for a spare/faulty member
    events: int
    data_offset: int  # bytes
    data_size: int  # bytes this member holds for the array
    array_member_size: int  # bytes of each member the array uses ("size"), 0 when not given
    recovering: bool
    reshaping: bool


def _fold(total: int) -> int:
    return ((total & 0xFFFFFFFF) + (total >> 32)) & 0xFFFFFFFF


def read_member(volume: Volume, warnings: list[str]) -> Member | None:
    """The md superblock of ``volume`` (1.x first, in GRUB's order 1.0, 1.1, 1.2, then
    0.90), or None. A superblock that is there but wrong is CorruptImage/LimitExceeded.
    An array that holds a superblock of its own set (a loop) is None, with a warning."""
    source = volume.source
    sectors = source.size // SECTOR
    for version, sector in (("1.0", (sectors - 16) & ~7), ("1.1", 0), ("1.2", 8)):
        offset = sector * SECTOR
        if sector < 0 or offset + SB1.size > source.size:
            continue
        raw = source.pread(offset, SB1.size)
        if struct.unpack_from("<I", raw)[0] != MAGIC:
            continue
        sb = dict(zip(SB1_FIELDS, SB1.unpack(raw)))
        if sb["super_offset"] != sector:
            continue
        if _is_loop(volume, sb["set_uuid"], warnings):
            return None
        return _member_1x(volume, version, offset, sb)
    if sectors >= 2 * SB0_RESERVED // SECTOR:
        offset = ((sectors & ~(SB0_RESERVED // SECTOR - 1)) - SB0_RESERVED // SECTOR) * SECTOR
        head = source.pread(offset, 12)
        magic, major, minor = struct.unpack("<III", head)
        if magic == MAGIC and major == 0 and minor == 90:
            member = _member_090(volume, offset, source.pread(offset, SB0_BYTES))
            return None if _is_loop(volume, member.uuid, warnings) else member
    return None


def _is_loop(volume: Volume, uuid: bytes, warnings: list[str]) -> bool:
    if volume.type_id == "md" and volume.uuid == uuid.hex():
        warnings.append(f"({volume.device}): holds a superblock of its own array (a loop); not read as a member")
        return True
    return False


def _member_1x(volume: Volume, version: str, offset: int, sb: dict) -> Member:
    where = f"({volume.device})"
    if sb["major_version"] != 1:
        raise Unsupported(f"md superblock version {sb['major_version']}", where=where, offset=offset)
    if sb["max_dev"] > SB1_MAX_DEV:
        raise CorruptImage(f"md superblock lists {sb['max_dev']} device slots (at most {SB1_MAX_DEV})",
                           where=where, offset=offset + 220)
    if sb["raid_disks"] > LIMITS.max_md_devices:
        raise LimitExceeded(f"md array of {sb['raid_disks']} devices (max_md_devices = {LIMITS.max_md_devices})",
                            where=where, offset=offset + 92)
    length = 256 + 2 * sb["max_dev"]
    raw = volume.source.pread(offset, length) if offset + length <= volume.source.size else b""
    if len(raw) != length:
        raise CorruptImage("md superblock runs past the end of the device", where=where, offset=offset)
    covered = bytearray(raw)
    covered[SB1_CSUM_OFFSET : SB1_CSUM_OFFSET + 4] = bytes(4)
    if length % 4:
        covered += bytes(4 - length % 4)
    computed = _fold(sum(struct.unpack(f"<{len(covered) // 4}I", covered)))
    if computed != sb["sb_csum"]:
        raise CorruptImage(f"md superblock checksum is {sb['sb_csum']:#010x}, computed {computed:#010x}",
                           where=where, offset=offset + SB1_CSUM_OFFSET)
    role = -1
    if sb["dev_number"] < sb["max_dev"]:
        slot = struct.unpack_from("<H", raw, 256 + 2 * sb["dev_number"])[0]
        if slot < sb["raid_disks"]:
            role = slot
    name = sb["set_name"].split(b"\0", 1)[0].decode("utf-8", "replace")
    features = sb["feature_map"]
    data_offset = sb["data_offset"] * SECTOR
    data_size = sb["data_size"] * SECTOR
    if data_offset + data_size > volume.source.size:
        raise CorruptImage(
            f"md member data ({data_size} bytes at {data_offset}) runs past the device ({volume.source.size} bytes)",
            where=where, offset=offset + 128,
        )
    return Member(
        volume, version, sb["set_uuid"], name.partition(":")[2] if ":" in name else name, sb["level"],
        sb["layout"], sb["chunksize"] * SECTOR, sb["raid_disks"], role, sb["events"], data_offset, data_size,
        sb["size"] * SECTOR, bool(features & FEATURE_RECOVERY_OFFSET), bool(features & FEATURE_RESHAPE_ACTIVE),
    )


def _member_090(volume: Volume, offset: int, raw: bytes) -> Member:
    where = f"({volume.device})"
    words = list(SB0_WORDS.unpack(raw))
    stored = words[SB0_CSUM_WORD]
    words[SB0_CSUM_WORD] = 0
    computed = _fold(sum(words))
    if computed != stored:
        raise CorruptImage(f"md 0.90 superblock checksum is {stored:#010x}, computed {computed:#010x}",
                           where=where, offset=offset + 4 * SB0_CSUM_WORD)
    level = struct.unpack("<i", struct.pack("<I", words[7]))[0]
    size_kib, raid_disks, md_minor = words[8], words[10], words[11]
    if raid_disks > SB0_DISKS:
        raise CorruptImage(f"md 0.90 superblock claims {raid_disks} devices (at most {SB0_DISKS})",
                           where=where, offset=offset + 40)
    uuid = struct.pack(">IIII", words[5], words[13], words[14], words[15])
    _number, _major, _minor, raid_disk, state = words[SB0_THIS_DISK : SB0_THIS_DISK + 5]
    role = raid_disk if raid_disk < raid_disks and not state & DISK_FAULTY else -1
    events = words[39] | words[40] << 32  # events_lo, events_hi on a little-endian host
    layout, chunk = words[64], words[65]
    return Member(volume, "0.90", uuid, f"md{md_minor}", level, layout, chunk, raid_disks, role, events, 0,
                  offset, size_kib * 1024, False, False)


# --- assembly ---------------------------------------------------------------------------


def assemble(offered: Sequence[Volume], warnings: list[str]) -> list[Stacked]:
    """Every array whose members are among ``offered``; a damaged superblock is a warning
    and its volume says what was wrong."""
    sets: dict[bytes, list[Member]] = {}
    made: list[Stacked] = []
    for volume in offered:
        try:
            member = read_member(volume, warnings)
        except GuestbootError as err:
            warnings.append(f"({volume.device}): md member left out: {err}")
            made.append(Stacked((volume,), (), err))
            continue
        if member is not None:
            sets.setdefault(member.uuid, []).append(member)
    names: set[str] = set()
    for uuid, members in sets.items():
        made.append(_array(uuid, members, names, warnings))
    return made


def _grub_name(name: str, names: set[str]) -> str:
    """GRUB's name, with "_N" added when an array of that name exists already."""
    full = f"md/{name}"
    if full in names:
        number = 1
        while f"{full}_{number}" in names:
            number += 1
        full = f"{full}_{number}"
    names.add(full)
    return full


def _array(uuid: bytes, members: list[Member], names: set[str], warnings: list[str]) -> Stacked:
    newest = max(members, key=lambda m: m.events)
    name = _grub_name(newest.name, names)
    role = f"md member of ({name})"
    claimed = tuple(m.volume for m in members)
    current: dict[int, Member] = {}
    for member in members:
        if member.events < newest.events:
            warnings.append(f"({member.volume.device}): md member of ({name}) is stale"
                            f" ({member.events} events, the array has {newest.events}); not read")
        elif member.role >= 0 and (member.role not in current or member.volume.size < current[member.role].volume.size):
            # the same superblock seen twice (a 0.90 member partition that ends where its
            # disk ends): the smaller device is the member, as GRUB's insert_array decides
            current[member.role] = member
    try:
        source = _source(name, newest, current)
    except GuestbootError as err:
        if not isinstance(err, Unsupported):
            warnings.append(f"({name}): {err}")
        source = FailingSource(0, name, err)
    volume = Volume(grub_name=name, number=0, start=0, source=source, type_id="md", uuid=uuid.hex())
    return Stacked(claimed, (volume,), role)


def _source(name: str, sb: Member, members: dict[int, Member]) -> ByteSource:
    if sb.reshaping:
        raise Unsupported("md array is being reshaped: not supported", where=f"({name})")
    level = 1 if sb.level == LEVEL_MULTIPATH else sb.level
    if level == 1:
        good = [m for _role, m in sorted(members.items()) if not m.recovering]
        if not good:
            raise CorruptImage(f"md RAID1 has no up-to-date member of {sb.raid_disks}", where=f"({name})")
        member = good[0]
        size = sb.array_member_size or member.data_size
        return _data(member, min(size, member.data_size), name)
    if level == 0:
        return _raid0(name, sb, members)
    if level == 10:
        return _raid10(name, sb, members)
    what = {-1: "linear", 4: "RAID4", 5: "RAID5", 6: "RAID6"}.get(level, f"level {level}")
    raise Unsupported(f"md {what} array: not supported", where=f"({name})")


def _data(member: Member, size: int, name: str) -> SliceSource:
    return SliceSource(member.volume.source, member.data_offset, size, f"{name}@{member.volume.device}")


def _all_present(name: str, sb: Member, members: dict[int, Member]) -> None:
    missing = [r for r in range(sb.raid_disks) if r not in members]
    if missing:
        raise CorruptImage(f"md RAID{sb.level} member {missing[0]} of {sb.raid_disks} is missing", where=f"({name})")


def _chunked(sb: Member, member: Member, name: str) -> int:
    if sb.chunk <= 0 or sb.chunk % SECTOR:
        raise CorruptImage(f"md chunk size {sb.chunk} bytes", where=f"({name})")
    return member.data_size // sb.chunk * sb.chunk


def _raid0(name: str, sb: Member, members: dict[int, Member]) -> ByteSource:
    _all_present(name, sb, members)
    ordered = [members[r] for r in range(sb.raid_disks)]
    sizes = {_chunked(sb, m, name) for m in ordered}
    if len(sizes) != 1:
        raise Unsupported("md RAID0 with members of different sizes (several zones): not supported",
                          where=f"({name})")
    size = sizes.pop()
    return StripeSource([_data(m, size, name) for m in ordered], sb.chunk, name)


def _raid10(name: str, sb: Member, members: dict[int, Member]) -> ByteSource:
    near, far, offset = sb.layout & 0xFF, (sb.layout >> 8) & 0xFF, sb.layout >> 16
    if far != 1 or offset or near < 1:
        raise Unsupported(f"md RAID10 layout {sb.layout:#x} (far or offset copies): only near is read",
                          where=f"({name})")
    disks = sb.raid_disks
    if near > disks or disks == 0:
        raise CorruptImage(f"md RAID10 keeps {near} copies on {disks} devices", where=f"({name})")
    present = [m for m in members.values()]
    if not present:
        raise CorruptImage("md RAID10 has no member", where=f"({name})")
    per_member = min(_chunked(sb, m, name) for m in present)
    if sb.array_member_size:
        per_member = min(per_member, sb.array_member_size // sb.chunk * sb.chunk)
    for start in sorted({(i * near) % disks for i in range(disks)}):
        if all((start + j) % disks not in members for j in range(near)):
            raise CorruptImage(f"md RAID10: every copy of some chunks is missing (members {start} to"
                               f" {(start + near - 1) % disks})", where=f"({name})")
    parts = [_data(members[r], per_member, name) if r in members else None for r in range(disks)]
    chunks = per_member // sb.chunk * disks // near
    return NearRaid10Source(parts, near, sb.chunk, chunks * sb.chunk, name)


class NearRaid10Source(PiecewiseSource):
    """RAID10 with ``near`` copies (raid10.c, far_copies 1): array chunk ``c`` has its
    copies at slots ``c * near + j`` (j < near) of the member sequence; slot ``s`` is
    chunk ``s // n`` of member ``s % n``. Each piece is read from its first present copy."""

    def __init__(self, parts: list, near: int, chunk: int, size: int, name: str):
        self.parts = parts
        self.near = near
        self.chunk = chunk
        self.size = size
        self.name = name

    def _pieces(self, offset: int, length: int) -> Iterator[tuple[ByteSource, int, int]]:
        count = len(self.parts)
        end = offset + length
        while offset < end:
            index, within = divmod(offset, self.chunk)
            take = min(end - offset, self.chunk - within)
            for copy in range(self.near):
                slot = index * self.near + copy
                part = self.parts[slot % count]
                if part is not None:
                    yield part, (slot // count) * self.chunk + within, take
                    break
            else:  # assembly checked that some copy of every chunk is present
                raise CorruptImage("md RAID10: no copy of this chunk is present", where=self.name, offset=offset)
            offset += take

