"""LVM2 volume groups: logical volumes from PVs' text metadata, named as GRUB names them.

PV labels and metadata areas are read by volume/lvmlabel.py, the text by the bounded
parser volume/lvmtext.py. The text names the VG, its extent size (sectors), its PVs by
UUID with ``pe_start`` (sector of the first extent) and its LVs as segments: "striped"
(``stripe_count`` 1 is linear; ``stripes`` lists (PV, first extent) pairs), "mirror"
(``mirrors`` lists (sub-LV, first extent) pairs) and "raid1" (``raids`` lists (rmeta,
rimage) sub-LV pairs); a mirror or raid1 LV is read from its first leg whose PVs are all
present; a cached LV (dm-cache) in writethrough or passthrough mode is read from its
origin (as GRUB does), in writeback mode it is Unsupported. Thin pools/volumes, snapshots,
VDO and RAID levels other than 1 become devices whose reading is Unsupported, with a
message that says so. The VG's metadata is
taken from the PV whose copy has the highest ``seqno``.

Naming follows GRUB's grub-core/disk/lvm.c: visible LV "lv" of VG "vg" is ``lvm/vg-lv``
with every "-" inside either name doubled (as device-mapper does); hidden sub-LVs (mirror
and raid images, pool data) are not devices; a VG's LVs come in GRUB's order, the last
one in the metadata first. A volume's uuid is "<VG UUID>/<LV UUID>", GRUB's ``lvmid/``
name.

Bounds (LIMITS): metadata text (max_lvm_metadata_bytes, max_lvm_metadata_total, in
lvmlabel), section nesting (max_lvm_config_depth), sub-LV references (max_lvm_lv_depth),
segments and stripes of one LV (max_volume_segments).
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

from ..errors import CorruptImage, GuestbootError, LimitExceeded, Unsupported
from ..limits import LIMITS
from ..source import ByteSource, SliceSource
from ..source.compose import ConcatSource, StripeSource
from .base import FailingSource, Volume
from .lvmlabel import SECTOR, PhysicalVolume, read_label
from .stack import Stacked


def grub_lv_name(vg: str, lv: str) -> str:
    """GRUB's (and device-mapper's) name: "lvm/" + vg + "-" + lv, "-" doubled in each."""
    return "lvm/" + vg.replace("-", "--") + "-" + lv.replace("-", "--")


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
    duplicates: dict[str, str] = {}  # device -> what it duplicates
    for pv in labelled:
        if pv.uuid in by_uuid:
            first = by_uuid[pv.uuid].volume.device
            warnings.append(f"({pv.volume.device}): LVM2 physical volume {pv.uuid} is also ({first}); the first is used")
            duplicates[pv.volume.device] = f"LVM2 physical volume {pv.uuid}, a duplicate of ({first}); not used"
            continue
        by_uuid[pv.uuid] = pv
    claimed: set[str] = set()
    names: set[str] = set()
    for vg, _source in groups.values():
        stacked = _build_vg(vg, by_uuid, warnings, claimed, names)
        if stacked is not None:
            made.append(stacked)
    for pv in labelled:
        if pv.volume.device in claimed:
            continue
        vg = parsed.get(pv.metadata) if pv.metadata is not None else None
        if isinstance(vg, GuestbootError):
            made.append(Stacked((pv.volume,), (), vg))
        elif pv.volume.device in duplicates:
            made.append(Stacked((pv.volume,), (), duplicates[pv.volume.device]))
        else:
            warnings.append(f"({pv.volume.device}): LVM2 physical volume {pv.uuid} of no volume group found")
            made.append(Stacked((pv.volume,), (), f"LVM2 physical volume {pv.uuid} of no volume group found"))
    return made


def _build_vg(vg: VolumeGroup, by_uuid: dict[str, PhysicalVolume], warnings: list[str], taken: set[str],
              names: set[str]) -> Stacked | None:
    """The VG's LVs over the PVs found; a PV already taken (by another VG, or twice in
    this one) is left out with a warning, and LV names already made get GRUB's "_N"."""
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
        if pv.volume.device in taken:
            warnings.append(f"{where}: physical volume {key} is ({pv.volume.device}), which another PV entry"
                            " or VG has; left out")
            continue
        try:
            pe_start = _int(section, "pe_start", where, f"PV {key}") * SECTOR
        except CorruptImage as err:
            warnings.append(f"{where}: physical volume {key} left out: {err}")
            continue
        taken.add(pv.volume.device)
        members[key] = (pv.volume, pe_start)
    if not members:
        return None
    builder = _LvBuilder(vg, members)
    volumes: list[Volume] = []
    for lv_name, section in vg.lvs.items():
        if not isinstance(section, dict) or not _visible(section):
            continue
        name = _unique(grub_lv_name(vg.name, lv_name), names)
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


def _unique(name: str, names: set[str]) -> str:
    """GRUB's diskfilter gives a name made twice "_1", "_2" … (diskfilter.c vg_register)."""
    if name in names:
        number = 1
        while f"{name}_{number}" in names:
            number += 1
        name = f"{name}_{number}"
    names.add(name)
    return name


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
        kind = str(segment.get("type")).split("+")[0]  # lvm2 may append "+FLAGS" to a type
        size = count * self.vg.extent_bytes
        if kind == "striped":
            return self._striped(lv_name, segment, count)
        if kind == "mirror":
            legs = segment.get("mirrors")
            return self._one_leg(lv_name, _pairs(legs, where, lv_name, "mirrors"), size, depth, "mirror")
        if kind == "raid1":
            raids = segment.get("raids")
            pairs = _pairs(raids, where, lv_name, "raids", numbers=False)
            return self._one_leg(lv_name, [(image, 0) for _meta, image in pairs], size, depth, "raid1")
        if kind == "cache":
            return self._cached(lv_name, segment, size, depth)
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

    def _cached(self, lv_name: str, segment: dict, size: int, depth: int) -> ByteSource:
        """A cached LV (dm-cache): in writethrough (or passthrough) mode every write reached
        the origin, which is read as GRUB reads it; in writeback mode the origin may lack
        what the cache holds: Unsupported."""
        where = f"VG {self.vg.name}"
        origin, pool = segment.get("origin"), segment.get("cache_pool")
        if not isinstance(origin, str) or not isinstance(pool, str):
            raise CorruptImage(f"LVM2 LV {lv_name}: a cache segment without origin or cache_pool", where=where)
        pool_section = self.vg.lvs.get(pool)
        pool_segment = pool_section.get("segment1") if isinstance(pool_section, dict) else None
        mode = pool_segment.get("cache_mode", "writethrough") if isinstance(pool_segment, dict) else None
        if mode not in ("writethrough", "passthrough"):
            raise Unsupported(f"LVM2 LV {lv_name} is cached in {str(mode)[:20]} mode: the origin may be stale;"
                              " not supported", where=where)
        source = self.source(origin, depth + 1)
        if size > source.size:
            raise CorruptImage(f"LVM2 LV {lv_name}: its origin {origin} is smaller than the LV", where=where)
        return SliceSource(source, 0, size, grub_lv_name(self.vg.name, lv_name))

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
