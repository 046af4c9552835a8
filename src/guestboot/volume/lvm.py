"""LVM2 volume groups: physical-volume labels, text metadata, logical volumes as GRUB names them.

On-disk layout (lvm2's lib/label/label.h and lib/format_text/layout.h, and lvm(8)):
a PV has a 512-byte label in one of its first four sectors: ``label_header`` ("LABELONE",
the sector it is in, a CRC over the rest of the sector, the offset of the ``pv_header``,
"LVM2 001"), then the ``pv_header``: the PV's UUID (32 characters), its size and two
zero-terminated lists of ``disk_locn`` (offset, size): data areas, then metadata areas.
A metadata area starts with an ``mda_header`` (CRC, magic " LVM2 x[5A%r0N*>", version 1,
its own start and size, ``raw_locn`` records); ``raw_locn[0]`` says where in the area the
current text metadata is (a ring buffer after the 512-byte header: text that runs past
the area's end continues right after the header), its size and CRC. Every CRC is lvm2's
calc_crc: CRC-32 (the zlib polynomial) started at 0xf597a6cf, without the final inversion.

The text metadata (volume/lvmtext.py) names the VG, its extent size (sectors), its PVs by
UUID with ``pe_start`` (sector of the first extent) and its LVs as segments:
"striped" (``stripe_count`` 1 is linear; ``stripes`` lists (PV, first extent) pairs),
"mirror" (``mirrors`` lists (sub-LV, first extent) pairs) and "raid1" (``raids`` lists
(rmeta, rimage) sub-LV pairs); a mirror or raid1 LV is read from its first leg whose
PVs are all present. Thin pools/volumes, caches, snapshots, VDO and RAID levels other than
1 become devices whose reading is Unsupported, with a message that says so.

Naming follows GRUB's grub-core/disk/lvm.c: visible LV "lv" of VG "vg" is ``lvm/vg-lv``
with every "-" inside either name doubled (as device-mapper does); hidden sub-LVs (mirror
and raid images, pool data) are not devices; a VG's LVs come in GRUB's order, the last
one in the metadata first. A volume's uuid is "<VG UUID>/<LV UUID>", GRUB's
``lvmid/`` name. The VG's metadata is taken from the PV whose
copy has the highest ``seqno``.

Bounds (LIMITS): the text of one metadata copy (max_lvm_metadata_bytes), all metadata text
parsed in one discovery (max_lvm_metadata_total), section nesting (max_lvm_config_depth),
sub-LV references (max_lvm_lv_depth), segments and stripes of one LV (max_volume_segments).
"""

from __future__ import annotations

import struct
import zlib
from typing import NamedTuple, Sequence

from ..errors import CorruptImage, GuestbootError, LimitExceeded, Unsupported
from ..limits import LIMITS
from ..source import ByteSource, SliceSource
from ..source.compose import ConcatSource, StripeSource
from .base import FailingSource, Volume
from .stack import Stacked

SECTOR = 512
LABEL_SCAN_SECTORS = 4  # label.h: LABEL_SCAN_SECTORS
LABEL_ID = b"LABELONE"
LABEL_TYPE = b"LVM2 001"
# label.h struct label_header: id[8], sector_xl, crc_xl, offset_xl, type[8]
LABEL_HEADER = struct.Struct("<8sQII8s")
LABEL_CRC_FROM = 20  # the CRC covers the sector from the byte after crc_xl
# layout.h struct pv_header: pv_uuid[32], device_size_xl, then disk_locn lists
PV_HEADER = struct.Struct("<32sQ")
DISK_LOCN = struct.Struct("<QQ")  # offset, size (bytes)
# layout.h struct mda_header: checksum_xl, magic[16], version, start, size, raw_locns[]
MDA_HEADER = struct.Struct("<I16sIQQ")
MDA_HEADER_SIZE = 512
MDA_MAGIC = b" LVM2 x[5A%r0N*>"
MDA_VERSION = 1
RAW_LOCN = struct.Struct("<QQII")  # offset (from the area's start), size, checksum, flags
RAW_LOCN_IGNORED = 1
INITIAL_CRC = 0xF597A6CF  # lvm2 lib/misc/crc.h


def lvm_crc(data: bytes, crc: int = INITIAL_CRC) -> int:
    """lvm2's calc_crc: the zlib CRC-32 without its pre- and post-inversion."""
    return zlib.crc32(data, crc ^ 0xFFFFFFFF) ^ 0xFFFFFFFF


def grub_lv_name(vg: str, lv: str) -> str:
    """GRUB's (and device-mapper's) name: "lvm/" + vg + "-" + lv, "-" doubled in each."""
    return "lvm/" + vg.replace("-", "--") + "-" + lv.replace("-", "--")


def _uuid(raw: str) -> str:
    """A 32-character LVM UUID in lvm2's printed form (6-4-4-4-4-4-6)."""
    cuts = (6, 4, 4, 4, 4, 4, 6)
    parts, at = [], 0
    for n in cuts:
        parts.append(raw[at : at + n])
        at += n
    return "-".join(parts)


class PhysicalVolume(NamedTuple):
    """What a PV's label says: its UUID (printed form), and the metadata text of its first
    metadata area (None when it keeps none)."""

    volume: Volume
    uuid: str
    metadata: bytes | None


def read_label(volume: Volume, budget: list[int]) -> PhysicalVolume | None:
    """The PV label of ``volume``, or None when it has none. A label that is there but
    damaged, or metadata that cannot be read, is CorruptImage / LimitExceeded."""
    source = volume.source
    where = f"({volume.device})"
    head = source.pread(0, min(source.size, LABEL_SCAN_SECTORS * SECTOR))
    for sector in range(len(head) // SECTOR):
        raw = head[sector * SECTOR : (sector + 1) * SECTOR]
        ident, sector_xl, crc, offset, kind = LABEL_HEADER.unpack_from(raw)
        if ident == LABEL_ID and kind == LABEL_TYPE:
            break
    else:
        return None
    at = sector * SECTOR
    if lvm_crc(raw[LABEL_CRC_FROM:]) != crc:
        raise CorruptImage("LVM2 label CRC does not match", where=where, offset=at + 16)
    if sector_xl != sector:
        raise CorruptImage(f"LVM2 label in sector {sector} says it is in sector {sector_xl}", where=where, offset=at)
    if not LABEL_HEADER.size <= offset <= SECTOR - PV_HEADER.size - 2 * DISK_LOCN.size:
        raise CorruptImage(f"LVM2 label puts its PV header at {offset}", where=where, offset=at + 20)
    uuid_raw, _device_size = PV_HEADER.unpack_from(raw, offset)
    uuid = _uuid(uuid_raw.decode("ascii", "replace"))
    areas = _disk_locn_lists(raw, offset + PV_HEADER.size, where, at)
    metadata = None
    for mda_offset, mda_size in areas[1][:1]:  # GRUB and lvm2 read the first copy
        metadata = _read_metadata(source, mda_offset, mda_size, where, budget)
    return PhysicalVolume(volume, uuid, metadata)


def _disk_locn_lists(raw: bytes, pos: int, where: str, at: int) -> tuple[list, list]:
    """The data-area and metadata-area lists of a pv_header (each ends with a zero offset)."""
    lists: tuple[list, list] = ([], [])
    for current in lists:
        while True:
            if pos + DISK_LOCN.size > len(raw):
                raise CorruptImage("LVM2 PV header's area lists run past its sector", where=where, offset=at)
            offset, size = DISK_LOCN.unpack_from(raw, pos)
            pos += DISK_LOCN.size
            if offset == 0:
                break
            current.append((offset, size))
    return lists


def _read_metadata(source: ByteSource, start: int, size: int, where: str, budget: list[int]) -> bytes | None:
    """The current text metadata in the metadata area at ``start`` (None when ignored)."""
    if size < MDA_HEADER_SIZE or start + size > source.size:
        raise CorruptImage(
            f"LVM2 metadata area of {size} bytes at {start} lies outside the volume ({source.size} bytes)",
            where=where, offset=start,
        )
    header = source.pread(start, MDA_HEADER_SIZE)
    checksum, magic, version, mda_start, mda_size = MDA_HEADER.unpack_from(header)
    if magic != MDA_MAGIC or version != MDA_VERSION:
        raise CorruptImage("LVM2 metadata area has no ' LVM2 x[5A%r0N*>' version 1 header", where=where, offset=start)
    if lvm_crc(header[4:]) != checksum:
        raise CorruptImage("LVM2 metadata area header CRC does not match", where=where, offset=start)
    if mda_start != start or mda_size != size:
        raise CorruptImage(
            f"LVM2 metadata area header says it is {mda_size} bytes at {mda_start}", where=where, offset=start
        )
    text_offset, text_size, text_crc, flags = RAW_LOCN.unpack_from(header, MDA_HEADER.size)
    if flags & RAW_LOCN_IGNORED or text_offset == 0:
        return None
    if text_size > LIMITS.max_lvm_metadata_bytes:
        raise LimitExceeded(
            f"LVM2 metadata text of {text_size} bytes (max_lvm_metadata_bytes = {LIMITS.max_lvm_metadata_bytes})",
            where=where, offset=start + text_offset,
        )
    ring = size - MDA_HEADER_SIZE
    if not MDA_HEADER_SIZE <= text_offset < size or text_size > ring:
        raise CorruptImage(
            f"LVM2 metadata text of {text_size} bytes at {text_offset} does not fit its area ({size} bytes)",
            where=where, offset=start,
        )
    budget[0] -= text_size
    if budget[0] < 0:
        raise LimitExceeded(
            f"more than {LIMITS.max_lvm_metadata_total} bytes of LVM2 metadata (max_lvm_metadata_total)", where=where
        )
    first = min(text_size, size - text_offset)
    text = source.pread(start + text_offset, first)
    if first < text_size:  # wrapped round the ring: the rest follows the header
        text += source.pread(start + MDA_HEADER_SIZE, text_size - first)
    if lvm_crc(text) != text_crc:
        raise CorruptImage("LVM2 metadata text CRC does not match", where=where, offset=start + text_offset)
    return text.rstrip(b"\0")


# --- volume groups ----------------------------------------------------------------------


class VolumeGroup(NamedTuple):
    name: str
    uuid: str
    seqno: int
    extent_bytes: int
    pvs: dict  # PV key ("pv0") -> section
    lvs: dict  # LV name -> section


def parse_vg(text: bytes, where: str) -> VolumeGroup:
    """The VG described by one copy of text metadata."""
    from . import lvmtext  # only when a PV is found: its token pattern is compiled on import

    top = lvmtext.parse(text, where)
    sections = [(name, value) for name, value in top.items() if isinstance(value, dict)]
    if len(sections) != 1:
        raise CorruptImage(f"LVM2 metadata holds {len(sections)} volume groups, not 1", where=where)
    name, vg = sections[0]
    extent_sectors = _int(vg, "extent_size", where, name)
    if extent_sectors <= 0:
        raise CorruptImage(f"LVM2 VG {name}: extent_size {extent_sectors}", where=where)
    pvs = vg.get("physical_volumes", {})
    lvs = vg.get("logical_volumes", {})
    if not isinstance(pvs, dict) or not isinstance(lvs, dict):
        raise CorruptImage(f"LVM2 VG {name}: physical_volumes/logical_volumes are not sections", where=where)
    return VolumeGroup(name, _str(vg, "id", where, name), _int(vg, "seqno", where, name),
                       extent_sectors * SECTOR, pvs, lvs)


def _int(section: dict, key: str, where: str, what: str) -> int:
    value = section.get(key)
    if not isinstance(value, int) or value < 0:
        raise CorruptImage(f"LVM2 {what}: {key} is {value!r}, not a count", where=where)
    return value


def _str(section: dict, key: str, where: str, what: str) -> str:
    value = section.get(key)
    if not isinstance(value, str):
        raise CorruptImage(f"LVM2 {what}: {key} is {value!r}, not a string", where=where)
    return value


def assemble(offered: Sequence[Volume], warnings: list[str]) -> list[Stacked]:
    """Every VG whose metadata one of ``offered`` carries: its PVs claimed, its visible LVs
    made. A damaged label or VG is a warning; its PVs say what was wrong."""
    budget = [LIMITS.max_lvm_metadata_total]
    labelled: list[PhysicalVolume] = []
    broken: list[tuple[Volume, GuestbootError]] = []
    for volume in offered:
        try:
            pv = read_label(volume, budget)
        except GuestbootError as err:
            warnings.append(f"({volume.device}): LVM2 physical volume left out: {err}")
            broken.append((volume, err))
            continue
        if pv is not None:
            labelled.append(pv)
    made = [Stacked((volume,), (), err) for volume, err in broken]
    groups: dict[str, tuple[VolumeGroup, PhysicalVolume]] = {}
    parsed: dict[bytes, VolumeGroup | GuestbootError] = {}
    looped: set[str] = set()
    for pv in labelled:
        if pv.metadata is None:
            continue
        if pv.metadata not in parsed:
            try:
                parsed[pv.metadata] = parse_vg(pv.metadata, f"({pv.volume.device})")
            except GuestbootError as err:
                parsed[pv.metadata] = err
                warnings.append(f"({pv.volume.device}): LVM2 metadata left out: {err}")
        vg = parsed[pv.metadata]
        if isinstance(vg, VolumeGroup) and pv.volume.type_id == "lvm" and pv.volume.uuid.startswith(vg.uuid + "/"):
            warnings.append(f"({pv.volume.device}): holds a physical volume of its own VG {vg.name} (a loop);"
                            " not read as one")
            looped.add(pv.volume.device)
            continue
        if isinstance(vg, VolumeGroup) and (vg.uuid not in groups or groups[vg.uuid][0].seqno < vg.seqno):
            groups[vg.uuid] = (vg, pv)
    labelled = [pv for pv in labelled if pv.volume.device not in looped]
    by_uuid: dict[str, PhysicalVolume] = {}
    for pv in labelled:
        if pv.uuid in by_uuid:
            warnings.append(
                f"({pv.volume.device}): LVM2 physical volume {pv.uuid} is also ({by_uuid[pv.uuid].volume.device});"
                " the first is used"
            )
            continue
        by_uuid[pv.uuid] = pv
    claimed: set[str] = set()
    for vg, _source in groups.values():
        stacked = _build_vg(vg, by_uuid, warnings)
        if stacked is not None:
            claimed.update(member.device for member in stacked.members)
            made.append(stacked)
    for pv in labelled:
        if pv.volume.device in claimed:
            continue
        vg = parsed.get(pv.metadata) if pv.metadata is not None else None
        if isinstance(vg, GuestbootError):
            made.append(Stacked((pv.volume,), (), vg))
        else:
            warnings.append(f"({pv.volume.device}): LVM2 physical volume {pv.uuid} of no volume group found")
            made.append(Stacked((pv.volume,), (), f"LVM2 physical volume {pv.uuid} of no volume group found"))
    return made


def _build_vg(vg: VolumeGroup, by_uuid: dict[str, PhysicalVolume], warnings: list[str]) -> Stacked | None:
    where = f"VG {vg.name}"
    members: dict[str, tuple[Volume, int]] = {}  # PV key -> (volume, byte offset of extent 0)
    for key, section in vg.pvs.items():
        if not isinstance(section, dict):
            continue
        uuid = section.get("id")
        pv = by_uuid.get(uuid) if isinstance(uuid, str) else None
        if pv is None:
            warnings.append(f"{where}: physical volume {key} ({uuid}) is missing; its extents cannot be read")
            continue
        try:
            pe_start = _int(section, "pe_start", where, f"PV {key}") * SECTOR
        except CorruptImage as err:
            warnings.append(f"{where}: physical volume {key} left out: {err}")
            continue
        members[key] = (pv.volume, pe_start)
    if not members:
        return None
    builder = _LvBuilder(vg, members)
    volumes: list[Volume] = []
    for lv_name, section in vg.lvs.items():
        if not isinstance(section, dict) or not _visible(section):
            continue
        name = grub_lv_name(vg.name, lv_name)
        try:
            source = builder.source(lv_name, depth=0)
        except GuestbootError as err:
            if not isinstance(err, Unsupported):
                warnings.append(f"({name}): {err}")
            source = FailingSource(builder.declared_size(lv_name), name, err)
        lv_id = section.get("id") if isinstance(section.get("id"), str) else ""
        volumes.append(Volume(grub_name=name, number=0, start=0, source=source, uuid=f"{vg.uuid}/{lv_id}",
                              type_id="lvm"))
    # GRUB's lvm.c puts each LV at the head of the VG's list: it lists them last to first
    return Stacked(tuple(volume for volume, _ in members.values()), tuple(reversed(volumes)),
                   f"LVM2 physical volume of {vg.name}")


def _visible(section: dict) -> bool:
    status = section.get("status")
    return isinstance(status, list) and "VISIBLE" in status


class _LvBuilder:
    """Byte sources of the LVs of one VG (sub-LVs resolved by name, depth bounded)."""

    def __init__(self, vg: VolumeGroup, members: dict[str, tuple[Volume, int]]):
        self.vg = vg
        self.members = members
        self.built: dict[str, ByteSource] = {}

    def declared_size(self, lv_name: str) -> int:
        """What the segments add up to (0 when they cannot be read at all)."""
        try:
            return sum(count for _s, count, _seg in self._segments(lv_name)) * self.vg.extent_bytes
        except GuestbootError:
            return 0

    def _segments(self, lv_name: str) -> list[tuple[int, int, dict]]:
        where = f"VG {self.vg.name}"
        section = self.vg.lvs.get(lv_name)
        if not isinstance(section, dict):
            raise CorruptImage(f"LVM2 LV {lv_name[:64]!r} is referred to but not defined", where=where)
        what = f"LV {lv_name}"
        count = _int(section, "segment_count", where, what)
        if count > LIMITS.max_volume_segments:
            raise LimitExceeded(f"LVM2 {what} has {count} segments (max_volume_segments)", where=where)
        segments = [value for key, value in section.items() if key.startswith("segment") and isinstance(value, dict)]
        if len(segments) != count:
            raise CorruptImage(f"LVM2 {what}: segment_count {count} but {len(segments)} segments", where=where)
        out = []
        for segment in segments:
            out.append((_int(segment, "start_extent", where, what), _int(segment, "extent_count", where, what), segment))
        out.sort(key=lambda item: item[0])
        return out

    def source(self, lv_name: str, depth: int) -> ByteSource:
        if lv_name in self.built:
            return self.built[lv_name]
        where = f"VG {self.vg.name}"
        if depth > LIMITS.max_lvm_lv_depth:
            raise LimitExceeded(
                f"LVM2 LV {lv_name[:64]!r}: sub-LVs nest deeper than {LIMITS.max_lvm_lv_depth} (max_lvm_lv_depth)",
                where=where,
            )
        name = grub_lv_name(self.vg.name, lv_name)
        parts: list[ByteSource] = []
        expected = 0
        for start, count, segment in self._segments(lv_name):
            if start != expected or count == 0:
                raise CorruptImage(
                    f"LVM2 LV {lv_name}: segment at extent {start} of {count} extents (expected one at {expected})",
                    where=where,
                )
            expected += count
            parts.append(self._segment(lv_name, segment, count, depth))
        source = parts[0] if len(parts) == 1 else ConcatSource(parts, name)
        self.built[lv_name] = source
        return source

    def _segment(self, lv_name: str, segment: dict, count: int, depth: int) -> ByteSource:
        where = f"VG {self.vg.name}"
        kind = segment.get("type")
        size = count * self.vg.extent_bytes
        if kind == "striped":
            return self._striped(lv_name, segment, count)
        if kind == "mirror":
            legs = segment.get("mirrors")
            return self._one_leg(lv_name, _pairs(legs, where, lv_name, "mirrors")[::1], size, depth, "mirror")
        if kind == "raid1":
            raids = segment.get("raids")
            pairs = _pairs(raids, where, lv_name, "raids", numbers=False)
            return self._one_leg(lv_name, [(image, 0) for _meta, image in pairs], size, depth, "raid1")
        what = {
            "thin-pool": "a thin pool", "thin": "a thin volume", "cache": "a cached LV",
            "cache-pool": "a cache pool", "snapshot": "a snapshot", "vdo": "a VDO volume",
            "vdo-pool": "a VDO pool", "writecache": "a writecache LV", "integrity": "an integrity LV",
        }.get(str(kind), f"segment type {str(kind)[:32]!r}")
        raise Unsupported(f"LVM2 LV {lv_name} is {what}: not supported", where=where)

    def _striped(self, lv_name: str, segment: dict, count: int) -> ByteSource:
        where = f"VG {self.vg.name}"
        what = f"LV {lv_name}"
        stripe_count = _int(segment, "stripe_count", where, what)
        if stripe_count > LIMITS.max_volume_segments:
            raise LimitExceeded(f"LVM2 {what} has {stripe_count} stripes (max_volume_segments)", where=where)
        stripes = _pairs(segment.get("stripes"), where, lv_name, "stripes")
        if stripe_count == 0 or len(stripes) != stripe_count or count % stripe_count:
            raise CorruptImage(
                f"LVM2 {what}: {stripe_count} stripes declared, {len(stripes)} listed, {count} extents", where=where
            )
        per_stripe = count // stripe_count * self.vg.extent_bytes
        parts = []
        for pv_key, first in stripes:
            if pv_key not in self.members:
                if pv_key in self.vg.pvs:
                    raise CorruptImage(f"LVM2 {what} lies on physical volume {pv_key}, which is missing", where=where)
                raise CorruptImage(f"LVM2 {what} names physical volume {pv_key[:64]!r}, not in the VG", where=where)
            volume, pe_start = self.members[pv_key]
            offset = pe_start + first * self.vg.extent_bytes
            parts.append(SliceSource(volume.source, offset, per_stripe, f"{grub_lv_name(self.vg.name, lv_name)}@{pv_key}"))
        if stripe_count == 1:
            return parts[0]
        stripe_size = _int(segment, "stripe_size", where, what) * SECTOR
        return StripeSource(parts, stripe_size, grub_lv_name(self.vg.name, lv_name))

    def _one_leg(self, lv_name: str, legs: list, size: int, depth: int, kind: str) -> ByteSource:
        """The first leg of a mirror/raid1 segment that can be read in full."""
        where = f"VG {self.vg.name}"
        problems = []
        for leg, first in legs:
            if not isinstance(leg, str):
                raise CorruptImage(f"LVM2 LV {lv_name}: {kind} leg {leg!r} is not a name", where=where)
            try:
                source = self.source(leg, depth + 1)
            except CorruptImage as err:
                problems.append(err)
                continue
            offset = first * self.vg.extent_bytes
            if offset + size > source.size:
                raise CorruptImage(f"LVM2 LV {lv_name}: {kind} leg {leg} is smaller than the LV", where=where)
            return SliceSource(source, offset, size, grub_lv_name(self.vg.name, lv_name))
        if problems:
            raise CorruptImage(f"LVM2 LV {lv_name}: no {kind} leg can be read ({problems[0].message})", where=where)
        raise CorruptImage(f"LVM2 LV {lv_name}: {kind} segment lists no legs", where=where)


def _pairs(value, where: str, lv_name: str, key: str, numbers: bool = True) -> list[tuple]:
    """An array of (name, extent) pairs (``numbers``) or of (name, name) pairs."""
    if not isinstance(value, list) or len(value) % 2:
        raise CorruptImage(f"LVM2 LV {lv_name}: {key} is not a list of pairs", where=where)
    if len(value) // 2 > LIMITS.max_volume_segments:
        raise LimitExceeded(f"LVM2 LV {lv_name}: {len(value) // 2} {key} (max_volume_segments)", where=where)
    pairs = list(zip(value[0::2], value[1::2]))
    for first, second in pairs:
        if not isinstance(first, str) or (isinstance(second, int) and second < 0) or \
                (numbers and not isinstance(second, int)) or (not numbers and not isinstance(second, str)):
            raise CorruptImage(f"LVM2 LV {lv_name}: {key} holds {first!r}, {second!r}", where=where)
    return pairs
