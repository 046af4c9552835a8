"""GRUB's view of the guest's storage: one record per device, behind a small interface.

GRUB calls the image's disks ``hd0``, ``hd1`` … (in the order they were given) and their
partitions ``hd0,msdos1``, ``hd1,gpt2``; stacked volumes have names such as ``lvm/vg-lv``
and ``md/0``; a disk with no partition table is just ``hd0``. Boot-config parsers see
storage only through a DeviceMap, which is what ``search``, ``set root=`` and
``(dev)/path`` resolve against. Tests build one from host directories
(``DeviceMap.of``); image.py builds one from the disks. Only this module writes into it.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Callable, Iterator, NamedTuple

from .errors import GuestbootError, LimitExceeded, NotFound
from .fs.base import FileSystem
from .source import ByteSource

if TYPE_CHECKING:
    from .volume.base import Volume

_LEVEL = re.compile(r"^(?P<scheme>[a-z]*)(?P<num>\d+)$")


def _parts(name: str) -> "tuple[str, list[tuple[str, int]]] | None":
    """"hd0,msdos1,bsd1" -> ("hd0", [("msdos", 1), ("bsd", 1)]); a level may leave out
    its scheme ("hd0,1,1"), as GRUB accepts. None when a level is not [scheme]number."""
    disk, *rest = name.split(",")
    levels = []
    for level in rest:
        m = _LEVEL.match(level)
        if m is None:
            return None
        levels.append((m.group("scheme"), int(m.group("num"))))
    return disk, levels

NO_FILE_SYSTEM = "no recognised file system"
_ALIASES = ("mduuid/", "lvmid/")  # GRUB's names of stacked volumes by UUID (diskfilter.c, lvm.c)


class Device(NamedTuple):
    """One GRUB device. ``volume`` is where it lives and what its table says about it
    (type, label, UUID, flags, start, size; None for a device made up by a test); ``fs``
    its file system, or None and ``problem`` says why: a message, or the error its probe
    raised (which DeviceMap.filesystem raises again, so a corrupt /boot is reported as
    corrupt, not as missing)."""

    name: str
    volume: "Volume | None" = None
    fs: FileSystem | None = None
    problem: str | GuestbootError | None = None


class DeviceMap:
    """Devices by canonical GRUB name. Iteration is GRUB's probe order (each disk, then
    its partitions in table order, then stacked volumes as discovery found them);
    ``search`` walks it in that order."""

    __slots__ = ("_devices", "_backing")

    def __init__(self) -> None:
        self._devices: dict[str, Device] = {}
        self._backing: dict[str, str] = {}  # loop device name -> the guest file it reads

    @classmethod
    def of(
        cls,
        filesystems: dict[str, FileSystem | None] | None = None,
        problems: dict[str, str | GuestbootError] | None = None,
    ) -> "DeviceMap":
        """A map of the given devices in the given order (tests, one wrapped file system);
        a device given None has ``problems[name]`` or "no recognised file system"."""
        devices = cls()
        problems = problems or {}
        for name, fs in (filesystems or {}).items():
            devices.add(name, fs=fs, problem=problems.get(name))
        return devices

    def add(
        self, name: str, *, volume: "Volume | None" = None, fs: FileSystem | None = None,
        problem: str | GuestbootError | None = None,
    ) -> Device:
        """Append device ``name`` (it must be new); without a file system and a problem,
        the problem is "no recognised file system"."""
        if name in self._devices:
            raise ValueError(f"device ({name}) added twice")
        if fs is None and problem is None:
            problem = NO_FILE_SYSTEM
        device = Device(name, volume, fs, None if fs is not None else problem)
        self._devices[name] = device
        return device

    def __repr__(self) -> str:
        return f"DeviceMap({list(self._devices.values())!r})"

    def __iter__(self) -> Iterator[Device]:
        return iter(list(self._devices.values()))

    def __len__(self) -> int:
        return len(self._devices)

    def names(self) -> list[str]:
        return list(self._devices)

    def add_file_disk(self, name: str, backing: str, make: Callable[[], tuple[FileSystem | None, str | GuestbootError | None]]
                      ) -> Device:
        """A disk made of a guest file (GRUB's ``loopback NAME FILE``): device ``name``
        reading the file ``backing`` ("(hd0,msdos1)/live.iso"), its file system from
        ``make()`` (fs, or None and the problem). Naming the same file again gives the
        same device; a name in use for anything else is refused (ValueError; GRUB says
        "device name already exists"); at most LIMITS.max_loop_devices of them."""
        from .limits import LIMITS

        if name in self._devices:
            if self._backing.get(name) == backing:
                return self._devices[name]
            raise ValueError(f"device name already exists: ({name})")
        if len(self._backing) >= LIMITS.max_loop_devices:
            raise LimitExceeded(f"more than {LIMITS.max_loop_devices} loopback devices (max_loop_devices)")
        fs, problem = make()
        self._backing[name] = backing
        return self.add(name, fs=fs, problem=problem)

    def canonical(self, name: str) -> str | None:
        """The canonical name for what a config wrote: strips "(" ")", accepts "hd0,1" for
        "hd0,msdos1"/"hd0,gpt1". None when no such device exists."""
        name = name.strip()
        if name.startswith("(") and name.endswith(")"):
            name = name[1:-1]
        if name in self._devices:
            return name
        if name.startswith(_ALIASES):
            disk, comma, rest = name.partition(",")
            found = self._alias(disk)
            if found is None:
                return None
            name = found + comma + rest
            if name in self._devices:
                return name
        wanted = _parts(name)
        if wanted is None or not wanted[1]:
            return None
        disk, levels = wanted
        for candidate in self._devices:
            have = _parts(candidate)
            if (
                have is not None
                and have[0] == disk
                and len(have[1]) == len(levels)
                and all(n == m and (not s or s == t) for (s, n), (t, m) in zip(levels, have[1]))
            ):
                return candidate
        return None

    def _alias(self, name: str) -> str | None:
        """The device GRUB's other name for a stacked volume means: ``mduuid/<hex>`` (an
        md array by its set UUID, digits in any case) or ``lvmid/<VG UUID>/<LV UUID>``."""
        kind, _, key = name.partition("/")
        want = {"mduuid": "md", "lvmid": "lvm"}[kind]
        for device in self._devices.values():
            volume = device.volume
            if volume is not None and volume.type_id == want and volume.uuid.lower() == key.lower() and key:
                return device.name
        return None

    def get(self, name: str) -> Device | None:
        """The device a config names ("(hd0,1)", "hd0,gpt1", "lvm/vg-root" …), or None."""
        canonical = self.canonical(name)
        return None if canonical is None else self._devices[canonical]

    def filesystem(self, name: str) -> FileSystem:
        """The file system on device ``name``; NotFound names the device and the reason,
        and a device whose probe failed raises that error again."""
        device = self.get(name)
        if device is None:
            raise NotFound(f"no device ({name}); the image has: {', '.join(self._devices) or 'none'}")
        if device.fs is None:
            if isinstance(device.problem, GuestbootError):
                raise device.problem
            raise NotFound(f"device ({device.name}): {device.problem or NO_FILE_SYSTEM}")
        return device.fs

    def open(self, device: str, path: str) -> ByteSource:
        """A regular file on a device, symlinks followed; errors name ``(device)path``."""
        from .fs.path import open_file

        fs = self.filesystem(device)
        try:
            return open_file(fs, path)
        except GuestbootError as err:
            raise err.located(f"({self.canonical(device)}){path}")

    def filesystems(self) -> list[tuple[str, FileSystem]]:
        """(name, file system) of every device that has one, in probe order."""
        return [(d.name, d.fs) for d in self._devices.values() if d.fs is not None]

    def by_fs_uuid(self, uuid: str) -> list[Device]:
        """Devices whose file-system UUID is ``uuid`` (case-insensitive, as GRUB's search)."""
        key = uuid.lower()
        return [d for d in self._devices.values() if d.fs is not None and (d.fs.uuid or "").lower() == key and key]

    def by_label(self, label: str) -> list[Device]:
        """Devices whose file-system label is exactly ``label``."""
        return [d for d in self._devices.values() if d.fs is not None and d.fs.label is not None and d.fs.label == label]

    def by_part_uuid(self, uuid: str) -> list[Device]:
        """Devices whose partition (GPT unique GUID, or MBR "disk signature-NN") is ``uuid``."""
        key = uuid.lower()
        return [d for d in self._devices.values() if key and d.volume is not None and d.volume.uuid.lower() == key]

    def by_type(self, type_id: str) -> list[Device]:
        """Devices whose partition type is ``type_id``: a GPT type GUID (any case) or an MBR
        type as "0x83"."""
        key = type_id.lower()
        if key.startswith("0x"):
            key = f"{int(key, 16):#04x}" if _HEX.match(key) else key
        return [d for d in self._devices.values() if key and d.volume is not None and d.volume.type_id.lower() == key]


_HEX = re.compile(r"^0x[0-9a-f]{1,2}$")
