"""GRUB's view of the guest's storage: device names mapped to file systems.

GRUB calls the image's disk ``hd0`` and its partitions ``hd0,msdos1``, ``hd0,gpt2``; a
disk with no partition table is just ``hd0``. Boot-config parsers see storage only through
a DeviceMap, which is what ``search``, ``set root=`` and ``(dev)/path`` resolve against.
Tests build one from host directories; the CLI builds one from an image (image.py).
"""

from __future__ import annotations

import re

from .errors import GuestbootError, NotFound
from .fs.base import FileSystem
from .source import ByteSource

_PART = re.compile(r"^(?P<disk>[a-z]+\d+)(?:,(?P<scheme>[a-z]*)(?P<num>\d+))?$")


class DeviceMap:
    """``devices`` maps canonical GRUB names to a FileSystem, or to None when the device
    holds nothing we can read. Insertion order is GRUB's probe order (disk, then its
    partitions in table order); ``search`` walks it in that order."""

    __slots__ = ("devices", "problems")

    devices: dict[str, FileSystem | None]
    # name -> why it has no file system: a message, or the error its probe raised (which
    # filesystem() raises again, so a corrupt /boot is reported as corrupt, not as missing)
    problems: dict[str, str | GuestbootError]

    def __init__(
        self,
        devices: dict[str, FileSystem | None] | None = None,
        problems: dict[str, str | GuestbootError] | None = None,
    ) -> None:
        self.devices = {} if devices is None else devices
        self.problems = {} if problems is None else problems

    def __repr__(self) -> str:
        return f"DeviceMap(devices={self.devices!r}, problems={self.problems!r})"

    def names(self) -> list[str]:
        return list(self.devices)

    def canonical(self, name: str) -> str | None:
        """The canonical name for what a config wrote: strips "(" ")", accepts "hd0,1" for
        "hd0,msdos1"/"hd0,gpt1". None when no such device exists."""
        name = name.strip()
        if name.startswith("(") and name.endswith(")"):
            name = name[1:-1]
        if name in self.devices:
            return name
        m = _PART.match(name)
        if not m:
            return None
        disk, scheme, num = m.group("disk"), m.group("scheme"), m.group("num")
        if num is None:
            return name if name in self.devices else None
        for candidate in self.devices:
            cm = _PART.match(candidate)
            if (
                cm
                and cm.group("disk") == disk
                and cm.group("num") == num
                and (not scheme or cm.group("scheme") == scheme)
            ):
                return candidate
        return None

    def filesystem(self, name: str) -> FileSystem:
        """The file system on device ``name``; NotFound names the device and the reason."""
        canonical = self.canonical(name)
        if canonical is None:
            raise NotFound(f"no device ({name}); the image has: {', '.join(self.devices) or 'none'}")
        fs = self.devices[canonical]
        if fs is None:
            why = self.problems.get(canonical, "no recognised file system")
            if isinstance(why, GuestbootError):
                raise why
            raise NotFound(f"device ({canonical}): {why}")
        return fs

    def open(self, device: str, path: str) -> ByteSource:
        """A regular file on a device, symlinks followed; errors name ``(device)path``."""
        from .fs.path import open_file

        fs = self.filesystem(device)
        try:
            return open_file(fs, path)
        except GuestbootError as err:
            raise err.located(f"({self.canonical(device)}){path}")

    def filesystems(self) -> list[tuple[str, FileSystem]]:
        return [(name, fs) for name, fs in self.devices.items() if fs is not None]
