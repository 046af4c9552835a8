"""pygrub's Solaris sniffing -> Menu(format="solaris-xpv").

A Solaris or illumos domU boots under Xen PV through its i86xpv platform kernel, not the
i86pc one its menu.lst names. pygrub (Xen's tools/pygrub/src/pygrub, sniff_solaris) looks
for that kernel on each partition *before* reading any boot config, and when it is there
boots it whatever the config says:

* /platform/i86xpv/kernel/amd64/unix with the ramdisk /platform/i86pc/amd64/boot_archive,
  else /platform/i86xpv/kernel/unix with /platform/i86pc/boot_archive;
* the arguments are the kernel's path (Solaris reads its own path as the first word of its
  command line; pygrub then puts the user's root=/ip= words first, the path, the others).

We do the same (the registry line is the first of discover.FORMATS, as pygrub sniffs
first), with one entry. pygrub also rewrites zfs-bootfs= from the ZFS pool it reads; we
read no ZFS (nor UFS): a Solaris root on those is not found at all. A missing ramdisk fails
the entry (NotFound), as pygrub fails to copy it.
"""

from __future__ import annotations

from ..devices import DeviceMap
from ..errors import NotFound
from ..fs.base import FileType
from ..fs.path import resolve
from .model import BootSpec, FileRef, Menu, MenuEntry

__all__ = ["FORMAT", "KERNELS", "evaluate"]

FORMAT = "solaris-xpv"
# (kernel, its ramdisk) in the order pygrub tries them.
KERNELS = (
    ("/platform/i86xpv/kernel/amd64/unix", "/platform/i86pc/amd64/boot_archive"),
    ("/platform/i86xpv/kernel/unix", "/platform/i86pc/boot_archive"),
)


def evaluate(
    devices: DeviceMap, device: str, path: str, *, env: dict[str, str] | None = None, check_files: bool = True
) -> Menu:
    """The one-entry menu of the i86xpv kernel ``(device)path``."""
    menu = Menu(origin=f"{device}:{path}", format=FORMAT)
    ramdisks = [ramdisk for kernel, ramdisk in KERNELS if kernel == path]
    if not ramdisks:
        raise NotFound(f"({device}){path} is not a Solaris i86xpv kernel pygrub knows")
    fs = devices.filesystem(device)
    menu.warnings.append(f"Solaris/illumos Xen PV kernel ({device}){path}: booted as pygrub does, before any boot config")
    kernel = FileRef(device, path, path)
    ramdisk = FileRef(device, ramdisks[0], ramdisks[0])

    def run() -> BootSpec:
        if check_files:
            try:
                if resolve(fs, ramdisk.path).type is not FileType.REG:
                    raise NotFound(f"{ramdisk}: not a regular file")
            except NotFound as err:
                raise NotFound(f"the Solaris ramdisk {ramdisk} is missing ({err.message})") from None
        return BootSpec(kernel, (ramdisk,), path, path, "multiboot")

    menu.entries.append(MenuEntry(f"Solaris/illumos ({path})", id="solaris-xpv", run=run))
    return menu
