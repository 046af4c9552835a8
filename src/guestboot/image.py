"""From open image descriptors to GRUB's device map: image formats read, volumes found
(partition tables and stacked volumes over every disk), file systems probed.

The caller (the CLI, or the sandbox parent) opens the images; this module only reads
through the descriptors it is given. A device whose file system is broken does not stop
the others from being read: its error is kept and raised only if something needs it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from . import fs as filesystems
from .devices import DeviceMap
from .errors import GuestbootError, LimitExceeded, NotFound, Unsupported
from .limits import LIMITS
from .source import ByteSource, FileSource, SliceSource
from .volume.base import FailingSource, Volume

if TYPE_CHECKING:
    from .source.opener import Opener

DISK = "hd0"  # GRUB's name for the first disk; the others are hd1, hd2, … in the order given


class GuestImage:
    """Opened images: the disks (what each image holds), every volume found on them, GRUB's
    device map, and one-line warnings about damaged partition tables."""

    __slots__ = ("disks", "volumes", "devices", "warnings")

    disks: list[ByteSource]
    volumes: list[Volume]
    devices: DeviceMap
    warnings: list[str]

    def __init__(
        self, disks: list[ByteSource], volumes: list[Volume], devices: DeviceMap, warnings: list[str] | None = None
    ) -> None:
        self.disks = disks
        self.volumes = volumes
        self.devices = devices
        self.warnings = [] if warnings is None else warnings

    @property
    def source(self) -> ByteSource:
        """The first disk (hd0)."""
        return self.disks[0]

    def __repr__(self) -> str:
        return (
            f"GuestImage(disks={self.disks!r}, volumes={self.volumes!r}, devices={self.devices!r},"
            f" warnings={self.warnings!r})"
        )


def _probe_into(devices: DeviceMap, volume: Volume, role: str | None = None,
                warnings: list[str] | None = None) -> None:
    """Probe ``volume`` and add its device; what the file system warns about (a mirror
    used for a damaged superblock, a journal not replayed) goes into ``warnings``."""
    name = volume.device
    if role is not None:  # a member of a stacked volume: that is what it holds
        devices.add(name, volume=volume, problem=role)
        return
    if isinstance(volume.source, FailingSource):  # a volume that exists but cannot be read
        devices.add(name, volume=volume, problem=volume.source.error)
        return
    try:
        found = filesystems.probe(volume.source)
        if found is None:
            devices.add(name, volume=volume, problem=_what_else(volume.source, name))
            return
    except GuestbootError as err:
        # the driver names its source ("disk.img,gpt2"); name the device when it did not
        devices.add(name, volume=volume, problem=err if err.where else err.located(f"({name})"))
        return
    devices.add(name, volume=volume, fs=found)
    if warnings is not None:
        warnings.extend(f"({name}): {found.kind}: {warning}" for warning in getattr(found, "warnings", ()))


def _what_else(source: ByteSource, name: str) -> str | GuestbootError:
    """Why a volume no driver claims has no file system: what its magic says it is."""
    from .fs.signatures import identify

    signature = identify(source)
    if signature is None:
        return "no recognised file system"
    if signature.unsupported:
        return Unsupported(f"{signature.what}: not supported yet", where=f"({name})")
    return signature.what


def disk_name(index: int) -> str:
    """GRUB's name for the ``index``-th disk given: hd0, hd1, …"""
    return f"hd{index}"


def open_disks(
    disks: Sequence[tuple[int, str]],
    *,
    offset: int | None = None,
    image_format: str | None = None,
    opener: "Opener | None" = None,
) -> GuestImage:
    """Read the images ``disks`` ((fd, display name) in order: hd0, hd1, …): each image's
    format (detected by content, or ``image_format`` for all), the partition tables of
    every disk, stacked volumes over them, and the file system of every device.

    ``offset`` (pygrub's --offset) says the first disk has a file system at that byte and
    no partition table is read there. A format that needs another file asks ``opener``
    (the default refuses). The file systems found share one scan budget (fs/budget.py:
    the run's when pipeline.run opened a scope, else one for these disks)."""
    from .fs.budget import image_scope

    with image_scope():
        return _open_disks(disks, offset, image_format, opener)


def _open_disks(disks: Sequence[tuple[int, str]], offset: int | None, image_format: str | None,
                opener: "Opener | None") -> GuestImage:
    from .source.formats import open_format
    from .volume import STACKS
    from .volume.stack import discover

    if not disks:
        raise NotFound("no disk image given")
    if len(disks) > LIMITS.max_disks:
        raise LimitExceeded(f"{len(disks)} disk images given (max_disks)")
    sources = [
        open_format(FileSource(fd, name=name), image_format=image_format, opener=opener) for fd, name in disks
    ]
    devices = DeviceMap()
    if offset is not None:
        first = sources[0]
        source = SliceSource(first, offset, first.size - offset, name=f"{first.name}@{offset}")
        volume = Volume(grub_name="", number=0, start=offset, source=source, disk=DISK)
        warnings: list[str] = []
        _probe_into(devices, volume, warnings=warnings)
        return GuestImage(sources, [volume], devices, warnings)
    found = discover([(disk_name(i), source) for i, source in enumerate(sources)], STACKS)
    for volume in found.volumes:
        _probe_into(devices, volume, found.roles.get(volume.device), found.warnings)
    return GuestImage(sources, found.volumes, devices, found.warnings)


def open_image(fd: int, name: str = "image", *, offset: int | None = None, image_format: str | None = None,
               opener: "Opener | None" = None) -> GuestImage:
    """One disk image (hd0): ``open_disks([(fd, name)], …)``."""
    return open_disks([(fd, name)], offset=offset, image_format=image_format, opener=opener)
