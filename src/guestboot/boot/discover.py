"""Finding the boot configuration on a guest, and handing it to its format's module.

Search order, after pygrub (Xen 4.17 ``pygrub``, ``Grub.read_config`` and ``main``):
devices in DeviceMap order (the unpartitioned disk, then partitions in table order), and
on each device the paths of FORMATS in order; the first regular file found (symlinks
followed) is the config, and the device it is on is the one its relative paths mean.

pygrub walks partitions the same way (one partition at a time, every path on it, first
hit wins). Two differences, both on purpose:

* pygrub's ``get_partition_offsets`` means to try the MBR partition marked active first,
  but under Python 3 it compares ``struct.unpack("<c", …)`` (a tuple holding bytes) with
  a tuple holding a str, which is never equal, so it uses table order; and GPT disks are
  always in table order. We use table order everywhere: same answer as pygrub, and the
  usual layouts (a separate /boot as the first partition) work either way.
* pygrub goes on to the next partition when a config fails to parse or names no kernel.
  We stop at the first config found and report its error: silently booting another
  partition's stale config is worse than a clear error. A device whose file system could
  not be read, or a path that cannot be looked up (a symlink loop, a corrupt directory),
  is skipped; the menu's warnings say so, and NotFound lists them when nothing is found.

A format is one module with ``evaluate(devices, device, path, *, env=None, check_files=True) -> Menu``
(whose menus carry the format's DefaultRule) and one Format line in FORMATS, which says
where its configs are: fixed paths, directories holding files that match a pattern
(``Location("/loader/entries", "*.conf")``: the config is the directory, handed to
``evaluate`` as ``path``; BLS entries, UKIs in /EFI/Linux), and the partition types it
looks on (the ESP and XBOOTLDR by type GUID, ``devices.by_type``; none: every device).

Order, and why. The search runs in stages. Stage 0 is pygrub's: devices in probe order
and, on each device, the formats pygrub knows (GRUB 2, then syslinux/extlinux, then
GRUB legacy) at pygrub's paths; the first hit wins, so every image pygrub boots gives
the same config here. Only when stage 0 finds nothing on any device does stage 1 look,
device by device, at the places pygrub never looks: GRUB 2 in a btrfs "@" or default
subvolume, SYSLINUX's own search, systemd-boot's entries and UKIs on the ESP/XBOOTLDR,
GRUB 2 on the ESP (/EFI/BOOT, /EFI/<vendor>: what UEFI firmware starts) and /grub.cfg; on an ESP holding both systemd-boot's entries and a
GRUB config, the one the ESP's removable-media loader \\EFI\\BOOT\\BOOTX64.EFI belongs to
comes first (a disk image has no boot entries in NVRAM: that is what firmware starts).
Stage 2 is BLS entries in /boot/loader/entries of a root file system (read as
systemd-boot reads them), then the FALLBACKS (stage 3). A guest with both a /boot/grub2/grub.cfg and an ESP
stub that ``configfile``s it therefore reads /boot's config (the same menu, and what a
BIOS boot reads); a guest whose only GRUB config is on the ESP (CentOS/RHEL 7 and 8 on
UEFI) reads that one. ``find_configs`` lists every config in this order, and a caller
may choose another than the first (``guestboot list --config``). pygrub tries
syslinux/extlinux between GRUB 2 and GRUB legacy, at /boot/isolinux/isolinux.cfg,
/boot/extlinux/extlinux.conf, /boot/extlinux.conf, /extlinux/extlinux.conf and
/extlinux.conf: that line is between the two below; SYSLINUX's other places come after
them. Formats pygrub does not know
(BLS, systemd-boot, UKIs) go after those: a guest that has both a grub.cfg and BLS
entries boots through GRUB (which reads the BLS entries itself with blscfg), and the
types they are restricted to keep them off the other partitions. Last of GRUB's places,
btrfs's default subvolume when it is not the top one (openSUSE's snapshot layout): GRUB
looks there only as Fedora's and SUSE's builds do, after every place from the top.

FALLBACKS are formats that stand in for a missing config (the kernels in /boot,
boot/noconfig.py): tried, device by device, only when no device holds a config of any
format and no device failed to read.
"""

from __future__ import annotations

import importlib
import posixpath
from typing import NamedTuple

from ..devices import DeviceMap
from ..errors import ConfigError, CorruptImage, GuestbootError, LimitExceeded, NotFound, SymlinkLoop
from ..fs.base import FileType
from ..fs.path import listdir, resolve
from ..limits import LIMITS
from .model import Menu


class Location(NamedTuple):
    """Where a config may be on a device: the file ``path``; or, with ``pattern`` (an
    fnmatch pattern such as "*.conf"), the directory ``path`` when it holds a regular
    file whose name matches. With ``default_root`` the path is taken from the file
    system's default root (FileSystem.default_root_path: btrfs's default subvolume) and
    the location is tried only where that is not the top."""

    path: str
    pattern: str | None = None
    default_root: bool = False

    def __str__(self) -> str:
        shown = posixpath.join(self.path, self.pattern) if self.pattern else self.path
        return f"{shown} in the default subvolume" if self.default_root else shown


class Format(NamedTuple):
    """One config format: its ``name`` (Menu.format), the ``module`` that evaluates it,
    its ``locations`` in the order they are tried, the partition ``types`` it looks on
    (GPT type GUIDs or MBR types as "0xef"; empty: every device), and the ``settings``
    its evaluate() takes as keywords besides env and check_files (the caller's choices
    that only some formats have, such as "grub_dialect"). ``stage`` 0 is what pygrub
    searches; stage 1 is searched on every device only when stage 0 found nothing. A
    location's path may hold one "*" component ("/EFI/*/grub.cfg": the directories in
    name order)."""

    name: str
    module: str
    locations: tuple[Location, ...]
    types: tuple[str, ...] = ()
    settings: tuple[str, ...] = ()
    stage: int = 1


def _files(*paths: str) -> tuple[Location, ...]:
    return tuple(Location(path) for path in paths)


# In pygrub's order (see above).
FORMATS: tuple[Format, ...] = (
    # pygrub's Solaris sniffing: an i86xpv kernel boots before any config is read.
    Format("solaris-xpv", "guestboot.boot.solaris",
           _files("/platform/i86xpv/kernel/amd64/unix", "/platform/i86xpv/kernel/unix"), stage=0),
    Format(
        "grub2",
        "guestboot.boot.grub2",
        _files("/boot/grub/grub.cfg", "/grub/grub.cfg", "/boot/grub2/grub.cfg", "/grub2/grub.cfg"),
        settings=("grub_dialect",),
        stage=0,
    ),
    # SYSLINUX at pygrub's paths (its ExtLinuxConfigFile list), between GRUB 2 and legacy.
    Format(
        "syslinux",
        "guestboot.boot.syslinux",
        _files(
            "/boot/isolinux/isolinux.cfg", "/boot/extlinux/extlinux.conf", "/boot/extlinux.conf",
            "/extlinux/extlinux.conf", "/extlinux.conf",
        ),
        stage=0,
    ),
    Format(
        "grub-legacy",
        "guestboot.boot.legacy",
        _files("/boot/grub/menu.lst", "/boot/grub/grub.conf", "/grub/menu.lst", "/grub/grub.conf"),
        stage=0,
    ),
    # GRUB 2 inside a btrfs subvolume "@" (Ubuntu's and Debian's installers: GRUB's prefix
    # is (hdX,Y)/@/boot/grub and paths resolve from the top-level subvolume). pygrub
    # does not look there; after its paths, so that every image it boots boots the same.
    Format("grub2", "guestboot.boot.grub2", _files("/@/boot/grub/grub.cfg", "/@/boot/grub2/grub.cfg")),
    # GRUB 2 in btrfs's default subvolume: openSUSE's snapshots (/@/.snapshots/N/snapshot
    # set as the default), where Fedora's and SUSE's GRUB find their prefix because their
    # grub-install sets btrfs_relative_path (boot/grub2/menu.py evaluates it so).
    Format("grub2", "guestboot.boot.grub2", tuple(
        Location(path, default_root=True) for path in ("/boot/grub2/grub.cfg", "/boot/grub/grub.cfg"))),
    # The rest of SYSLINUX's own search (core/fs/lib/loadconfig.c: the install directory,
    # /boot/syslinux, /syslinux, / with extlinux.conf then syslinux.cfg; ISOLINUX,
    # core/fs/iso9660/iso9660.c: /boot/isolinux, /isolinux, then those, with isolinux.cfg
    # then syslinux.cfg), after pygrub's paths so that every image it boots boots the same.
    Format(
        "syslinux",
        "guestboot.boot.syslinux",
        _files(
            "/boot/extlinux/syslinux.cfg", "/extlinux/syslinux.cfg", "/boot/syslinux/extlinux.conf",
            "/boot/syslinux/syslinux.cfg", "/syslinux/extlinux.conf", "/syslinux/syslinux.cfg", "/syslinux.cfg",
            "/boot/isolinux/syslinux.cfg", "/isolinux/isolinux.cfg", "/isolinux/syslinux.cfg",
        ),
    ),
    # systemd-boot on the ESP or XBOOTLDR (Type #1 entries, unified kernel images)
    Format(
        "systemd-boot",
        "guestboot.boot.sdboot",
        (Location("/loader/entries", "*.conf"), Location("/EFI/Linux", "*.efi")),
        types=("c12a7328-f81f-11d2-ba4b-00a0c93ec93b", "bc13c2ff-59e6-4262-a352-b275fd6f7172", "0xef", "0xea"),
    ),
    # GRUB 2 on an ESP, where UEFI firmware finds it: GRUB built for the removable-media
    # path \EFI\BOOT\BOOTX64.EFI reads /EFI/BOOT/grub.cfg, a distribution's signed GRUB
    # (behind shim) /EFI/<vendor>/grub.cfg -- the whole config (CentOS/RHEL 7 and 8), or a
    # stub that finds /boot and runs its grub.cfg with configfile (Fedora 34+, RHEL 9,
    # Ubuntu, Debian). FAT names are case-insensitive: /efi/boot is /EFI/BOOT. Last, a
    # grub.cfg at the top of any file system (petitboot's first path).
    Format(
        "grub2",
        "guestboot.boot.grub2",
        _files("/EFI/BOOT/grub.cfg", "/EFI/*/grub.cfg"),
        types=("c12a7328-f81f-11d2-ba4b-00a0c93ec93b", "0xef"),
        settings=("grub_dialect",),
    ),
    Format("grub2", "guestboot.boot.grub2", _files("/grub.cfg"), settings=("grub_dialect",)),
    # Type #1 entries in /boot of a root file system, read as systemd-boot reads them: a
    # guest with no boot loader config (its entries are for a GRUB with blscfg, or a
    # systemd-boot, whose own config is missing). Stage 2: after every config on every
    # device, so that a GRUB config on an ESP that comes later in the table, which reads
    # these entries with blscfg, wins.
    Format("systemd-boot", "guestboot.boot.sdboot", (Location("/boot/loader/entries", "*.conf"),), stage=2),
)


# Formats that stand in for a config: tried on every device, in the same order, only when
# no format of FORMATS found a config on any device.
FALLBACKS: tuple[Format, ...] = (
    # No config at all: the kernels in /boot (a root file system) or / (a /boot partition).
    Format("noconfig", "guestboot.boot.noconfig", (Location("/boot", "vmlinuz-*"), Location("/", "vmlinuz-*")),
           stage=3),
)


def config_paths() -> list[tuple[str, str]]:
    """(location, format) in the order they are tried on a device that every format
    looks on (a directory location is written "directory/pattern")."""
    return [(str(location), fmt.name) for fmt in FORMATS for location in fmt.locations]


def matching_files(fs, directory: str, pattern: str, *, limit: int | None = None) -> list[str]:
    """Names of the regular files in ``directory`` that match ``pattern``, sorted (as
    the Boot Loader Specification orders entries by file name), at most ``limit``
    (LIMITS.max_config_files) of them; NotFound when it is no directory. The directory
    scan itself is bounded by the file system's directory budgets."""
    import fnmatch

    limit = LIMITS.max_config_files if limit is None else limit
    node = resolve(fs, directory)
    if node.type is not FileType.DIR:
        raise NotFound(f"{directory}: not a directory")
    found: list[str] = []
    for raw, child in fs.readdir(node):
        name = raw.decode("utf-8", "surrogateescape")
        if child.type is FileType.REG and fnmatch.fnmatchcase(name, pattern):
            if len(found) >= limit:
                raise LimitExceeded(f"{directory}: more than {limit} files match {pattern!r} (max_config_files)")
            found.append(name)
    return sorted(found)


def _expand(fs, path: str) -> list[str]:
    """``path`` itself, or for a path with a "*" component the existing paths it names
    (directories in name order, at most LIMITS.max_config_files of them)."""
    if "*" not in path:
        return [path]
    head, _star, tail = path.partition("*")
    directory = head.rstrip("/") or "/"
    try:
        node = resolve(fs, directory)
    except NotFound:
        return []
    if node.type is not FileType.DIR:
        return []
    names = []
    for raw, child in fs.readdir(node):
        if child.type is FileType.DIR and raw not in (b".", b".."):
            if len(names) >= LIMITS.max_config_files:
                raise LimitExceeded(f"{directory}: more than {LIMITS.max_config_files} directories (max_config_files)")
            names.append(raw.decode("utf-8", "surrogateescape"))
    return [f"{head}{name}{tail}" for name in sorted(names)]


def _present(fs, location: Location) -> str | None:
    """The path on ``fs`` where ``location`` holds a config, or None."""
    path = location.path
    if location.default_root:
        top = fs.default_root_path()
        if top is None:
            return None
        path = top.rstrip("/") + path
    for path in _expand(fs, path):
        try:
            if location.pattern is None:
                if resolve(fs, path).type is FileType.REG:
                    return path
                continue
            node = resolve(fs, path)
            if node.type is FileType.DIR and matching_files(fs, path, location.pattern):
                return path
        except NotFound:
            continue
    return None


def _looks_on(fmt: Format, device, typed: dict[int, set[str]]) -> bool:
    """Does ``fmt`` look on ``device`` (by its partition type)?"""
    if not fmt.types:
        return True
    return device.name in typed[id(fmt)]


def evaluate_config(
    devices: DeviceMap,
    device: str,
    path: str,
    fmt: str,
    *,
    env: dict[str, str] | None = None,
    check_files: bool = True,
    settings: dict[str, object] | None = None,
) -> Menu:
    """The Menu of config ``(device)path`` read as format ``fmt``. ``settings`` are the
    caller's choices by name (``{"grub_dialect": "fedora"}``); a format gets those it
    declares, and a setting left None is not passed."""
    for entry in FORMATS + FALLBACKS:
        if entry.name == fmt:
            evaluate = importlib.import_module(entry.module).evaluate
            chosen = {k: v for k, v in (settings or {}).items() if k in entry.settings and v is not None}
            return evaluate(devices, device, path, env=env, check_files=check_files, **chosen)
    raise ConfigError(f"unknown config format {fmt!r}; known: {', '.join(f.name for f in FORMATS)}")


def _search(devices: DeviceMap, warnings: list[str], searched: list[str], skipped: list[str],
            failures: list[GuestbootError] | None = None):
    """Every (device, path, format) found, in search order: stage by stage (FORMATS by
    their stage, then FALLBACKS -- not when a device failed to read: that is the likelier
    cause of a missing config), devices in probe order, formats and locations in order."""
    typed = {id(fmt): {d.name for type_id in fmt.types for d in devices.by_type(type_id)} for fmt in FORMATS + FALLBACKS}
    readable = []
    for record in devices:
        if record.fs is None:
            why = record.problem
            if isinstance(why, GuestbootError):  # broken, not merely empty: worth a warning
                warnings.append(f"skipped {why}")  # the error names the device
            else:
                skipped.append(f"({record.name}) skipped: {why}")
            continue
        readable.append(record)
        searched.append(f"({record.name})")
    broken = any(isinstance(d.problem, GuestbootError) for d in devices)
    formats = FORMATS if broken else FORMATS + FALLBACKS
    for stage in sorted({fmt.stage for fmt in formats}):
        for record in readable:
            for fmt in _firmware_order(record, formats, typed):
                if fmt.stage != stage or not _looks_on(fmt, record, typed):
                    continue
                for location in fmt.locations:
                    try:
                        path = _present(record.fs, location)
                    except GuestbootError as err:  # a symlink loop, a corrupt directory …
                        warnings.append(f"({record.name}){location} skipped: {err}")
                        if failures is not None:
                            failures.append(err)
                        continue
                    if path is not None:
                        yield record.name, path, fmt.name, location


REMOVABLE_LOADER = "/EFI/BOOT/BOOTX64.EFI"  # UEFI 2.10 3.5.1.1: what firmware without boot entries starts
SYSTEMD_BOOT_MAGIC = b"#### LoaderInfo: systemd-boot "  # the start of systemd-boot's .sdmagic section


def _firmware_order(record, formats: tuple[Format, ...], typed: dict[int, set[str]]) -> tuple[Format, ...]:
    """``formats`` for ``record``, with systemd-boot's and GRUB's formats for an ESP in the
    order its removable-media loader says: a disk image has no boot entries in NVRAM, so
    the firmware starts \\EFI\\BOOT\\BOOTX64.EFI. When that is not systemd-boot (shim,
    GRUB …) and the ESP holds a GRUB config as well as systemd-boot's entries, GRUB's
    config comes first; otherwise FORMATS order (systemd-boot first)."""
    esp_grub = [fmt for fmt in formats if fmt.name == "grub2" and fmt.types and record.name in typed[id(fmt)]]
    if not esp_grub or _loader_kind(record.fs) != "other":
        return formats
    rest = [fmt for fmt in formats if fmt not in esp_grub]
    at = next((i for i, fmt in enumerate(rest) if fmt.name == "systemd-boot" and fmt.types), len(rest))
    return tuple(rest[:at] + esp_grub + rest[at:])


def _loader_kind(fs) -> str | None:
    """"systemd-boot", "other" (some other EFI program) or None (none there, or unreadable)."""
    from ..fs.path import open_file
    from ..kernel.pe import sections

    try:
        source = open_file(fs, REMOVABLE_LOADER)
        magic = next((s for s in sections(source) if s.name == ".sdmagic"), None)
        if magic is not None and source.pread(magic.offset, min(magic.size, 64)).startswith(SYSTEMD_BOOT_MAGIC):
            return "systemd-boot"
    except NotFound:
        return None
    except GuestbootError:
        return "other"  # there, but no PE we can read: not systemd-boot
    return "other"


def find_configs(devices: DeviceMap) -> tuple[list[tuple[str, str, str]], list[str]]:
    """Every config on the guest as (device, path, format), the one find_config picks
    first, and the warnings of the search. A config is listed once."""
    warnings: list[str] = []
    out: list[tuple[str, str, str]] = []
    whole = set()  # (device, format) of directory locations: the format reads the whole device
    for device, path, fmt, location in _search(devices, warnings, [], []):
        if (device, path, fmt) in out or (device, fmt) in whole:
            continue
        if location.pattern is not None:
            whole.add((device, fmt))
        out.append((device, path, fmt))
    fallbacks = {fmt.name for fmt in FALLBACKS}
    configs = [found for found in out if found[2] not in fallbacks]
    return configs or out, warnings  # a stand-in only when there is no config at all


def find_config(devices: DeviceMap) -> tuple[str, str, str, list[str]]:
    """(device, path, format, warnings) of the first config found, or NotFound saying
    what was tried."""
    warnings: list[str] = []
    searched: list[str] = []
    skipped: list[str] = []  # devices with no file system: said only if nothing is found
    failures: list[GuestbootError] = []  # locations that could not be looked at
    for device, path, fmt, _location in _search(devices, warnings, searched, skipped, failures):
        return device, path, fmt, warnings
    # a device we could not read, a corrupt directory on the way to a location, or a
    # location we stopped looking at on a limit (a directory of more entry files than
    # max_config_files, a directory scan past its budget) is the likelier cause than a guest
    # without a config; a symlink loop there is a path that leads nowhere: "not found"
    broken = [d.problem for d in devices if isinstance(d.problem, GuestbootError)]
    broken += [err for err in failures
               if isinstance(err, (CorruptImage, LimitExceeded)) and not isinstance(err, SymlinkLoop)][:1]
    tried = ", ".join(
        str(location) + (f" (on partitions of type {', '.join(fmt.types)})" if fmt.types else "")
        for fmt in FORMATS + FALLBACKS
        for location in fmt.locations
    )
    where = ", ".join(searched) or "no readable device"
    if broken:
        # A device we could not read is the likelier cause than a guest without a config:
        # report its error class (corrupt, unsupported, limit), naming what it hides.
        first = broken[0]
        raise type(first)(f"no boot configuration found on a readable device ({where}); {first}")
    extra = f"; {'; '.join(skipped + warnings)}" if skipped or warnings else ""
    raise NotFound(f"no boot configuration found: tried {tried} on {where}{extra}")


def _format_by_name(path: str) -> str | None:
    base = posixpath.basename(path)
    for fmt in FORMATS:
        if base in {posixpath.basename(loc.path) for loc in fmt.locations if loc.pattern is None}:
            return fmt.name
    return None


def _format_by_content(devices: DeviceMap, device: str, path: str) -> str:
    """grub2 unless the text looks like GRUB legacy (a ``title`` line and no
    ``menuentry``); pygrub's --isconfig always reads the file as GRUB 2."""
    from ..fs.path import read_bytes

    text = read_bytes(devices.filesystem(device), path, LIMITS.max_config_bytes).decode("utf-8", "replace")
    words = {line.split(None, 1)[0] for line in text.splitlines() if line.strip()}
    if "title" in words and not words & {"menuentry", "submenu"}:
        return "grub-legacy"
    return "grub2"


def config_menu(
    devices: DeviceMap,
    device: str,
    path: str,
    *,
    env: dict[str, str] | None = None,
    check_files: bool = True,
    settings: dict[str, object] | None = None,
) -> Menu:
    """pygrub's --isconfig: the Menu of one given config file, its format taken from its
    name (grub.cfg, menu.lst, grub.conf) or else from its text. The file stands alone, so
    callers pass ``check_files=False``: kernel and initrd paths are taken as written."""
    fmt = _format_by_name(path) or _format_by_content(devices, device, path)
    return evaluate_config(devices, device, path, fmt, env=env, check_files=check_files, settings=settings)


def chosen_config(devices: DeviceMap, device: str, path: str) -> tuple[str, str, str]:
    """(device, path, format) of a config the caller names (``--config``): the format of
    the location it is found at (a directory location: the directory or a file in it),
    else the format its name or text shows."""
    canonical = devices.canonical(device)
    if canonical is None:
        raise NotFound(f"--config: no device ({device})")
    fs = devices.filesystem(canonical)
    for found_device, found_path, fmt, _location in _search(devices, [], [], []):
        if found_device == canonical and (found_path == path or posixpath.dirname(path) == found_path):
            return canonical, found_path, fmt
    try:
        if resolve(fs, path).type is not FileType.REG:
            raise NotFound(f"--config: ({canonical}){path} is not a regular file")
    except NotFound as err:
        raise NotFound(f"--config: ({canonical}){path}: {err.message}") from None
    return canonical, path, _format_by_name(path) or _format_by_content(devices, canonical, path)


def find_menu(
    devices: DeviceMap,
    *,
    isconfig: bool = False,
    env: dict[str, str] | None = None,
    settings: dict[str, object] | None = None,
    config: tuple[str, str] | None = None,
) -> Menu:
    """The menu of the guest's boot configuration: the first one found, or ``config``
    ((device, path), the caller's choice).

    With ``isconfig`` the DeviceMap is a wrapped config file: its first device's root
    directory holds exactly that one file, which is evaluated (see :func:`config_menu`)."""
    if isconfig:
        return _isconfig_menu(devices, env, settings)
    if config is not None:
        device, path, fmt = chosen_config(devices, *config)
        warnings: list[str] = []
    else:
        device, path, fmt, warnings = find_config(devices)
    try:
        menu = evaluate_config(devices, device, path, fmt, env=env, settings=settings)
    except GuestbootError as err:
        raise err.located(f"({device}){path}")
    menu.warnings[:0] = warnings
    return menu


def _isconfig_menu(devices: DeviceMap, env: dict[str, str] | None, settings: dict[str, object] | None) -> Menu:
    filesystems = devices.filesystems()
    if not filesystems:
        raise NotFound("--isconfig: no file given")
    device, fs = filesystems[0]
    files = [name for name, node in listdir(fs, "/") if node.type is FileType.REG]
    if len(files) != 1:
        raise ConfigError(f"--isconfig: expected one file in ({device})/, found {len(files)}")
    path = "/" + files[0].decode("utf-8", "surrogateescape")
    return config_menu(devices, device, path, env=env, check_files=False, settings=settings)
