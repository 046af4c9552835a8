"""Xen's PV bootloader chainloading protocol: the guest carries its own boot loader.

A guest may hold a Xen PV boot loader at ``/boot/xen/pvboot-<ARCH>.elf``, else
``/xen/pvboot-<ARCH>.elf`` (ARCH ``x86_64`` or ``i386``; Debian's grub-xen installs GRUB's
x86_64-xen/i386-xen image there), and its proposed PVH twin ``/boot/xen/pvhboot-<ARCH>.elf``.
Booting that ELF as the guest's kernel hands the menu to the guest's own loader, which
reads its own configuration inside the guest: the protocol's point.

``find(devices)`` lists the loaders present (file systems in GRUB's device order, the
paths in the order above, x86_64 before i386); ``entries`` turns them into menu entries
("chainload" loader, no initrd, no arguments); ``preferred`` picks the one to boot by
default for a guest type. The pipeline adds the entries after the config's own and boots
one by default with --chainload, or when the guest has no usable config.
"""

from __future__ import annotations

from typing import NamedTuple

from ..devices import DeviceMap
from ..errors import GuestbootError
from .model import BootSpec, FileRef, MenuEntry

ARCHES = ("x86_64", "i386")
# (guest type, path pattern) in the protocol's order of preference
PATHS = (("pv", "/boot/xen/pvboot-{arch}.elf"), ("pv", "/xen/pvboot-{arch}.elf"),
         ("pvh", "/boot/xen/pvhboot-{arch}.elf"))
LOADER = "chainload"


class PvBoot(NamedTuple):
    kind: str  # "pv" or "pvh"
    arch: str
    file: FileRef


def find(devices: DeviceMap) -> list[PvBoot]:
    from ..fs.base import FileType
    from ..fs.path import exists

    found: list[PvBoot] = []
    seen: set[tuple[str, str]] = set()
    for name, fs in devices.filesystems():
        for kind, pattern in PATHS:
            for arch in ARCHES:
                path = pattern.format(arch=arch)
                try:
                    node = exists(fs, path)
                except GuestbootError:
                    continue
                if node is None or node.type is not FileType.REG or (kind, arch) in seen:
                    continue
                seen.add((kind, arch))  # the first file system that has it, as a search would
                found.append(PvBoot(kind, arch, FileRef(name, path, path)))
    return found


def entries(found: list[PvBoot]) -> list[MenuEntry]:
    def runner(item: PvBoot):
        return lambda: BootSpec(item.file, (), "", "", LOADER)

    return [MenuEntry(f"Xen {item.kind.upper()} bootloader of the guest: {item.file} (chainload)",
                      id=f"xen-{item.kind}boot-{item.arch}", run=runner(item)) for item in found]


def preferred(found: list[PvBoot], guest_type: str) -> int | None:
    """Index in ``found`` of the loader to boot for ``guest_type`` ("any": PV first)."""
    for wanted in (("pv",) if guest_type == "pv" else ("pvh",) if guest_type == "pvh" else ("pv", "pvh")):
        for index, item in enumerate(found):
            if item.kind == wanted:
                return index
    return None
