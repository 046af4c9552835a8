"""From an open image descriptor to GRUB's device map: volumes found, file systems probed.

The caller (the CLI, or later the sandbox parent) opens the image; this module only reads
through the descriptor it is given. A partition whose file system is broken does not stop
the others from being read: its error is kept and raised only if something needs it.
"""

from __future__ import annotations

from . import fs as filesystems
from .devices import DeviceMap
from .errors import GuestbootError
from .source import ByteSource, FileSource, SliceSource
from .volume.base import Volume, whole_disk

DISK = "hd0"  # GRUB's name for the one disk a guest image is


class GuestImage:
    """An opened image: the disk, the volumes found on it, GRUB's device map, and one-line
    warnings about damaged partition tables."""

    __slots__ = ("source", "volumes", "devices", "warnings")

    source: ByteSource
    volumes: list[Volume]
    devices: DeviceMap
    warnings: list[str]

    def __init__(
        self, source: ByteSource, volumes: list[Volume], devices: DeviceMap, warnings: list[str] | None = None
    ) -> None:
        self.source = source
        self.volumes = volumes
        self.devices = devices
        self.warnings = [] if warnings is None else warnings

    def __repr__(self) -> str:
        return (
            f"GuestImage(source={self.source!r}, volumes={self.volumes!r}, devices={self.devices!r},"
            f" warnings={self.warnings!r})"
        )


def _probe_into(devices: DeviceMap, name: str, source: ByteSource, volume: Volume | None = None) -> None:
    try:
        found = filesystems.probe(source)
    except GuestbootError as err:
        # the driver names its source ("disk.img,gpt2"); name the device when it did not
        devices.add(name, volume=volume, problem=err if err.where else err.located(f"({name})"))
        return
    devices.add(name, volume=volume, fs=found)


def open_image(fd: int, name: str = "image", *, offset: int | None = None) -> GuestImage:
    """Scan the image on ``fd``. ``offset`` (pygrub's --offset) says a file system starts at
    that byte and no partition table is read."""
    from .volume import scan_with_warnings

    disk = FileSource(fd, name=name)
    devices = DeviceMap()
    if offset is not None:
        source = SliceSource(disk, offset, disk.size - offset, name=f"{name}@{offset}")
        volume = Volume(grub_name="", number=0, start=offset, source=source, disk=DISK)
        _probe_into(devices, DISK, source, volume)
        return GuestImage(disk, [volume], devices)
    volumes, warnings = scan_with_warnings(disk)
    volumes = [volume._replace(disk=DISK) for volume in volumes]
    whole = [v for v in volumes if not v.grub_name]
    if whole:
        _probe_into(devices, DISK, whole[0].source, whole[0])
    else:
        # A partitioned disk: GRUB still probes the disk itself first (a hybrid ISO has a
        # file system there), then each partition in table order.
        _probe_into(devices, DISK, disk, whole_disk(disk)._replace(disk=DISK))
    for volume in volumes:
        if volume.grub_name:
            _probe_into(devices, f"{DISK},{volume.grub_name}", volume.source, volume)
    return GuestImage(disk, volumes, devices, list(warnings))
