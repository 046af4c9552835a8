"""Volume discovery over several disks, with stacked volumes (LVM2, md RAID …).

Each disk (hd0, hd1, … in the order given) is scanned for a partition table. Then every
stacked-volume type in volume.STACKS is offered the volumes found so far that nobody has
claimed, each disk before its partitions (GRUB's diskfilter looks at the whole disk
first: an md 0.90/1.0 member shows the array's partition table; the partitions of a
claimed disk are not offered); it may claim some as its members and yield new named
volumes ("lvm/vg-root", "md/0"). A new volume may hold a partition table itself (an md array) and is scanned like
a disk. Rounds repeat until nothing new appears, bounded by LIMITS.max_stack_rounds and
LIMITS.max_volumes.

A stacked type is one module exposing ``assemble(offered, warnings) -> list[Stacked]`` and
one line in volume.STACKS. ``offered`` are Volume records (each knows its GRUB ``device``
name, type, UUID, source); each Stacked names the members it claims (at least one) and the
volumes it makes (``grub_name`` their whole GRUB name, ``disk`` ""), and ``role`` says
what the members are ("LVM2 physical volume of vg0"): a member's device says so instead of
"no recognised file system".
"""

from __future__ import annotations

import importlib
from typing import NamedTuple, Sequence

from ..errors import CorruptImage, GuestbootError, LimitExceeded
from ..limits import LIMITS
from ..source import ByteSource
from .base import FailingSource, Volume


class Stacked(NamedTuple):
    """What one stacked type made of some offered volumes."""

    members: tuple[Volume, ...]
    volumes: tuple[Volume, ...]
    role: "str | GuestbootError"  # an error when the members are damaged (kept as the device's problem)


class Discovery(NamedTuple):
    """Every volume in GRUB's probe order (each disk, its partitions, then stacked volumes
    and their partitions), the role of each claimed member by device name, and warnings."""

    volumes: list[Volume]
    roles: "dict[str, str | GuestbootError]"
    warnings: list[str]


def scan_disk(disk: str, source: ByteSource, warnings: list[str]) -> list[Volume]:
    """The volumes of one disk (or stacked volume) named ``disk``: the whole disk first
    (GRUB probes it too; a hybrid ISO has a file system there), then its partitions."""
    from . import scan_with_warnings

    found, more = scan_with_warnings(source)
    warnings.extend(more)
    whole = [v for v in found if not v.grub_name]
    head = whole[0] if whole else Volume(grub_name="", number=0, start=0, source=source)
    return [head._replace(disk=disk)] + [v._replace(disk=disk) for v in found if v.grub_name]


def discover(disks: Sequence[tuple[str, ByteSource]], stacks: Sequence[tuple[str, str]]) -> Discovery:
    """Scan ``disks`` ((GRUB name, source) in order) and assemble stacked volumes with the
    types in ``stacks`` ((name, module) pairs) until nothing new appears."""
    warnings: list[str] = []
    volumes: list[Volume] = []
    for name, source in disks:
        _extend(volumes, scan_disk(name, source, warnings))
    roles: dict[str, str | GuestbootError] = {}
    for _round in range(LIMITS.max_stack_rounds):
        new: list[Volume] = []
        for type_name, module in stacks:
            _hide_partitions_of_members(volumes, roles)
            offered = [v for v in volumes + new if v.device not in roles and not isinstance(v.source, FailingSource)]
            if not offered:
                break
            for stacked in importlib.import_module(module).assemble(offered, warnings):
                _claim(stacked, offered, roles, type_name)
                new.extend(stacked.volumes)
        if not new:
            _hide_partitions_of_members(volumes, roles)
            return Discovery(volumes, roles, warnings)
        for volume in new:
            if volume.disk or not volume.grub_name:
                raise ValueError(f"a stacked volume is named by grub_name alone, not {volume!r}")
            if isinstance(volume.source, FailingSource):  # unreadable: its probe says why
                found = [volume]
            else:
                found = scan_disk(volume.grub_name, volume.source, warnings)
            found[0] = volume._replace(disk=volume.grub_name, grub_name="")  # recorded like a disk
            _extend(volumes, found)
    raise LimitExceeded(
        f"stacked volumes nest more than {LIMITS.max_stack_rounds} levels deep (max_stack_rounds)"
    )


def _hide_partitions_of_members(volumes: list[Volume], roles: "dict[str, str | GuestbootError]") -> None:
    """A whole disk (or array) that is a member holds the stacked volume's data, so the
    partition table seen on it (an array's own table on a 0.90/1.0 member, a stale one
    before a 1.2 superblock) is not offered: its partitions are named as inside it."""
    for volume in volumes:
        if volume.grub_name and volume.disk in roles and volume.device not in roles:
            role = roles[volume.disk]
            what = role.message if isinstance(role, GuestbootError) else role
            roles[volume.device] = f"inside ({volume.disk}), {what}"


def _claim(stacked: Stacked, offered: list[Volume], roles: "dict[str, str | GuestbootError]", type_name: str) -> None:
    if not stacked.members:
        raise ValueError(f"stacked type {type_name} made volumes without claiming a member")
    offered_names = {v.device for v in offered}
    for member in stacked.members:
        if member.device not in offered_names or member.device in roles:
            raise ValueError(f"stacked type {type_name} claimed ({member.device}), which was not offered to it")
        roles[member.device] = stacked.role


def _extend(volumes: list[Volume], found: list[Volume]) -> None:
    names = {v.device for v in volumes}
    for volume in found:
        if volume.device in names:
            raise CorruptImage(f"two volumes are both called ({volume.device})")
        names.add(volume.device)
    if len(volumes) + len(found) > LIMITS.max_volumes:
        raise LimitExceeded(f"more than {LIMITS.max_volumes} volumes in all (max_volumes)")
    volumes.extend(found)
