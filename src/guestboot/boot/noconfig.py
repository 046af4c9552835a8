"""No boot configuration at all: the guest's kernels themselves -> Menu(format="noconfig").

Tried only when no config of any format is found on any device (discover.FALLBACKS).
The "config" is the directory holding the kernels: /boot of a root file system, or / of
a separate /boot partition.

* Kernels are the regular files named ``vmlinuz-VERSION`` there. They are listed newest
  first in Debian's ``linux-version sort`` order (digit runs compare as numbers:
  6.1.0-18 after 6.1.0-9; see version_cmp); the default is the newest, unless
  the distribution's own link names one of them (Debian's /vmlinuz, SUSE's
  /boot/vmlinuz), as the system's kernel hooks keep that link on the kernel to boot.
* The initrd is the one of the same version beside it: initrd.img-V (Debian, Ubuntu),
  initramfs-V.img (Fedora, RHEL, Arch), initrd-V (SUSE), initrd-V.img, initramfs-V
  (Alpine: vmlinuz-lts with initramfs-lts); none when there is none.
* ``root=`` comes from the ``/`` line of /etc/fstab on the first device that has one (the
  same device first), with ``rootflags=subvol=…`` for a btrfs subvolume; without an
  fstab, from the file-system UUID of the first device holding /sbin/init or /etc (the
  kernel's own device last). The arguments are ``root=… ro``.

Every choice is said in the menu's warnings (what was found, which kernel, why, where
root= came from), so `guestboot list` explains it.
"""

from __future__ import annotations

import functools
import posixpath
import re

from ..devices import DeviceMap
from ..errors import GuestbootError, LimitExceeded, NotFound
from ..fs.base import FileType
from ..fs.path import read_bytes, resolve
from ..limits import LIMITS
from .discover import matching_files
from .model import BootSpec, DefaultRule, FileRef, Menu, MenuEntry, Pick

__all__ = ["FORMAT", "evaluate", "version_cmp", "version_key"]

FORMAT = "noconfig"
KERNEL_PREFIX = "vmlinuz-"
# The initrd of kernel version V beside it, in the order tried (see the docstring).
INITRD_NAMES = ("initrd.img-{v}", "initramfs-{v}.img", "initrd-{v}", "initrd-{v}.img", "initramfs-{v}")
# Links a distribution keeps on the kernel to boot.
KERNEL_LINKS = ("/vmlinuz", "/boot/vmlinuz")
_RUNS = re.compile(r"\d+|-?[^-\d]*")
_PRE = ("-rc", "-trunk")
_ROOT_SPECS = ("UUID=", "LABEL=", "PARTUUID=", "PARTLABEL=", "/dev/")


def _components(version: str) -> list[str]:
    return _RUNS.findall(version)


def version_cmp(left: str, right: str) -> int:
    """-1, 0 or 1 as Debian's linux-version orders kernel versions (linux-base,
    DebianLinux.pm version_cmp): the versions are split into digit runs and other runs
    (these broken before each '-'); component by component, a "-rc"/"-trunk" pre-release
    is older than anything, even the end; the end is older than anything else; two digit
    runs compare as numbers, anything else as ASCII text (so "." > "-")."""
    a, b = _components(left), _components(right)
    for i in range(max(len(a), len(b)) + 1):
        x = a[i] if i < len(a) else None
        y = b[i] if i < len(b) else None
        x_pre = x in _PRE
        y_pre = y in _PRE
        if x_pre or y_pre:
            if not y_pre:
                return -1
            if not x_pre:
                return 1
        if x is None or y is None:
            return 0 if x is None and y is None else (-1 if x is None else 1)
        if x[:1].isdigit() and y[:1].isdigit():
            if int(x) != int(y):
                return -1 if int(x) < int(y) else 1
        elif x != y:
            return -1 if x.encode("utf-8", "surrogateescape") < y.encode("utf-8", "surrogateescape") else 1
    return 0


version_key = functools.cmp_to_key(version_cmp)


class _Pick(DefaultRule):
    __slots__ = ("index",)

    def __init__(self, index: int):
        self.index = index

    def pick(self, menu: Menu, entered: str | None) -> Pick:
        return Pick(self.index)

    def __repr__(self) -> str:
        return f"NoConfigDefault({self.index})"


def _regular(fs, path: str):
    try:
        node = resolve(fs, path)
    except NotFound:
        return None
    return node if node.type is FileType.REG else None


def _linked_version(fs, directory: str, versions: list[str], warnings: list[str]) -> tuple[str, str] | None:
    """(version, link) when a distribution link (/vmlinuz …) resolves to one of ours."""
    nodes = {}
    for version in versions:
        node = _regular(fs, posixpath.join(directory, KERNEL_PREFIX + version))
        if node is not None:
            nodes[version] = node
    for link in KERNEL_LINKS:
        try:
            node = resolve(fs, link)
        except GuestbootError as err:  # absent, a loop, a dangling link
            if not isinstance(err, NotFound):
                warnings.append(f"{link}: {err}; ignored")
            continue
        for version, candidate in nodes.items():
            if candidate == node:
                return version, link
    return None


def _root_argument(devices: DeviceMap, device: str, warnings: list[str]) -> str | None:
    """root= (and rootflags=) from an fstab, else from a root file system's UUID."""
    order = [device] + [d.name for d in devices if d.name != device and d.fs is not None]
    for name in order:
        fs = devices.get(name).fs if devices.get(name) else None
        if fs is None or _regular(fs, "/etc/fstab") is None:
            continue
        try:
            text = read_bytes(fs, "/etc/fstab", LIMITS.max_config_bytes).decode("utf-8", "replace")
        except GuestbootError as err:  # too large, unreadable: the next place is asked
            warnings.append(f"({name})/etc/fstab: {err}; ignored")
            continue
        for line in text.splitlines():
            fields = line.split("#", 1)[0].split()
            if len(fields) >= 2 and fields[1] == "/":
                spec = fields[0]
                if not spec.startswith(_ROOT_SPECS):
                    warnings.append(f"({name})/etc/fstab: root {spec!r} is no device the kernel knows; ignored")
                    break
                root = f"root={spec}"
                options = fields[3].split(",") if len(fields) >= 4 else []
                subvol = [o for o in options if o.startswith("subvol=")]
                if len(fields) >= 3 and fields[2] == "btrfs" and subvol:
                    root += f" rootflags={subvol[0]}"
                warnings.append(f"{root}: from the / line of ({name})/etc/fstab")
                return root
    for name in order[1:] + order[:1]:
        record = devices.get(name)
        fs = record.fs if record else None
        if fs is None or not fs.uuid:
            continue
        for marker in ("/sbin/init", "/etc"):
            try:
                resolve(fs, marker)
            except GuestbootError:
                continue
            warnings.append(f"root=UUID={fs.uuid}: no /etc/fstab; ({name}) holds {marker}")
            return f"root=UUID={fs.uuid}"
    warnings.append("no /etc/fstab and no root file system found: no root= given")
    return None


def evaluate(
    devices: DeviceMap, device: str, path: str, *, env: dict[str, str] | None = None, check_files: bool = True
) -> Menu:
    """The menu of the kernels in directory ``(device)path``."""
    fs = devices.filesystem(device)
    menu = Menu(origin=f"{device}:{path}", format=FORMAT)
    warnings = menu.warnings
    names = matching_files(fs, path, KERNEL_PREFIX + "*")
    versions = sorted((n[len(KERNEL_PREFIX) :] for n in names), key=version_key, reverse=True)
    if not versions:
        raise NotFound(f"({device}){path}: no {KERNEL_PREFIX}* kernel")
    if len(versions) > LIMITS.max_menu_entries:
        raise LimitExceeded(f"({device}){path}: more than {LIMITS.max_menu_entries} kernels")
    warnings.append(
        f"no boot configuration found: booting a kernel of ({device}){path} without one"
        f" ({len(versions)} found: {', '.join(versions[:8])}{' …' if len(versions) > 8 else ''})"
    )
    linked = _linked_version(fs, path, versions, warnings)
    default = versions.index(linked[0]) if linked is not None else 0
    root = _root_argument(devices, device, warnings)
    args = f"{root} ro" if root else "ro"
    for version in versions:
        kernel = posixpath.join(path, KERNEL_PREFIX + version)
        initrds: tuple[FileRef, ...] = ()
        for pattern in INITRD_NAMES:
            candidate = posixpath.join(path, pattern.format(v=version))
            if _regular(fs, candidate) is not None:
                initrds = (FileRef(device, candidate, candidate),)
                break
        spec = BootSpec(FileRef(device, kernel, kernel), initrds, args, args, "noconfig")
        menu.entries.append(MenuEntry(KERNEL_PREFIX + version, id=version, run=lambda spec=spec: spec))
    chosen = versions[default]
    initrd = menu.entries[default].run().initrds
    why = f"the link {linked[1]} names it" if linked is not None else "the newest version"
    warnings.append(
        f"default: {KERNEL_PREFIX}{chosen} ({why}) with "
        + (f"initrd {posixpath.basename(initrd[0].path)} of the same version" if initrd else "no initrd of its version")
        + f"; arguments {args!r}"
    )
    menu.rule = _Pick(default)
    return menu
