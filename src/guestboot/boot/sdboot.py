"""systemd-boot: Boot Loader Specification Type #1 entries (/loader/entries/*.conf), Type #2
unified kernel images (/EFI/Linux/*.efi) and /loader/loader.conf, chosen as systemd-boot
chooses (systemd src/boot/efi/boot.c of v252/v253, the version Debian 12 ships; the
format itself: the UAPI Boot Loader Specification).

* Entries come from the ESP (Type #1, then Type #2) and then from the XBOOTLDR partition
  (Type #2, then Type #1). A name starting with "." or "auto-", or not ending in ".conf"
  (".efi"; any case) is skipped. Lines are "key value" (leading and trailing blanks
  dropped, "#" comments, a value in double quotes unquoted); ``options`` lines are joined
  with a space, ``initrd`` lines are all kept, an ``architecture`` other than "x64" drops
  the entry, an entry needs ``linux`` (or ``efi``: not Linux) and that file must exist on
  the entry's own partition. The id is the file name, lower-cased.
* A UKI needs a non-empty .osrel section: its title is PRETTY_NAME (else IMAGE_ID, NAME,
  ID), its version IMAGE_VERSION (else VERSION, VERSION_ID, BUILD_ID), its sort key
  IMAGE_ID (else ID); its options are the .cmdline section without one final newline.
  Kernel and initrd are the .linux and .initrd sections of the file (no copy).
* Order (``config_entry_compare``): entries whose boot counter is spent ("+0-N") last;
  entries with a sort key before those without; then sort key, machine-id, version
  (newest first, :func:`vercmp.strverscmp_improved`); then the id, newest first.
* Default (``config_default_entry_select``): the EFI variables come first, and a disk
  image has none; then loader.conf's ``default`` glob (lower-cased), the first entry in
  order it matches; ``@saved`` names the EFI variable LoaderEntryLastBooted, so with none
  available the first entry boots (the menu's warnings say so); no match: the first entry.
* Titles shown are made unique as systemd-boot does: the version added, else the first 8
  characters of the machine-id, else the id.

What the kernel receives: systemd-boot starts a Type #1 kernel with "initrd=\\PATH" words
(one per initrd, in order) before the options; ``BootSpec.cmdline`` has that form,
``BootSpec.args`` the options alone (what a direct kernel boot passes along with the
initrds).
"""

from __future__ import annotations

import fnmatch
import functools
import posixpath
import re

from ..devices import DeviceMap
from ..errors import GuestbootError, LimitExceeded, NotFound, Unsupported
from ..fs import path as fspath
from ..fs.base import FileType
from ..limits import LIMITS
from ..volume.base import ESP_TYPE, MBR_ESP_TYPE, MBR_XBOOTLDR_TYPE, XBOOTLDR_TYPE
from .model import BootSpec, DefaultRule, FileRef, Menu, MenuEntry, Pick
from .budget import WORK_ITEM, ConfigBudget, check_lines
from .vercmp import strverscmp_improved

ARCHITECTURE = "x64"  # EFI_MACHINE_TYPE_NAME of the x86-64 build
LOADER_CONF = "/loader/loader.conf"
ENTRIES_DIR = "/loader/entries"
UKI_DIR = "/EFI/Linux"
OSREL_BYTES = 64 * 1024  # .osrel is a few hundred bytes
CMDLINE_BYTES = 64 * 1024  # .cmdline: the kernel's own limit is far below


_BLANK = re.compile("[ \t]")


def parse_lines(text: str) -> list[tuple[str, str]]:
    """line_get_key_value with separators " \\t": (key, value) pairs in order."""
    pairs: list[tuple[str, str]] = []
    for raw in text.replace("\r", "\n").split("\n"):
        line = raw.strip(" \t")
        if not line or line.startswith("#"):
            continue
        blank = _BLANK.search(line)
        if blank is None:
            continue
        cut = blank.start()
        key, value = line[:cut], line[cut:].lstrip(" \t")
        if value.startswith('"') and line.endswith('"') and len(value) >= 2:
            value = value[1:-1]
        pairs.append((key, value))
    return pairs


def parse_osrel(text: str) -> dict[str, str]:
    """line_get_key_value with separator "=": KEY=VALUE lines of an os-release."""
    out: dict[str, str] = {}
    for raw in text.replace("\r", "\n").split("\n"):
        line = raw.strip(" \t")
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        value = value.lstrip("=")
        if value.startswith('"') and line.endswith('"') and len(value) >= 2:
            value = value[1:-1]
        out[key] = value
    return out


def _efi_path(path: str) -> str:
    """xstra_to_path: "/" becomes "\\", repeated separators collapse, one leading "\\"."""
    parts = [p for p in path.replace("\\", "/").split("/") if p]
    return "\\" + "\\".join(parts)


def _tries(name: str, suffix: str) -> tuple[int, int]:
    """config_entry_parse_tries: (tries_left, tries_done) of "NAME+LEFT[-DONE]SUFFIX",
    or (-1, -1) without a valid counter."""
    stem = name[: len(name) - len(suffix)] if name.lower().endswith(suffix) else None
    plus = name.rfind("+")
    if stem is None or plus < 0:
        return -1, -1
    counter = name[plus + 1 : len(name) - len(suffix)]
    left, dash, done = counter.partition("-")
    if not _counter(left) or (dash and not _counter(done)) or not name.endswith(suffix):
        return -1, -1
    return int(left), int(done) if dash else 0


def _counter(text: str) -> bool:
    """ASCII digits whose value fits a C int (parse_number16, then the INT_MAX check)."""
    return 0 < len(text) <= 10 and text.isascii() and text.isdigit() and int(text) <= 0x7FFFFFFF


class SdEntry:
    """One systemd-boot entry. Equality is identity."""

    __slots__ = ("id", "title", "version", "machine_id", "sort_key", "kind", "device", "loader", "initrds", "options",
                 "tries_left", "tries_done", "section", "initrd_section", "title_show", "top", "id_without_profile",
                 "profile")

    def __init__(self, id: str, kind: str, device: str) -> None:
        self.id = id
        self.kind = kind  # "type1", "uki", "efi"
        self.device = device
        self.title: str | None = None
        self.version: str | None = None
        self.machine_id: str | None = None
        self.sort_key: str | None = None
        self.loader: str | None = None  # path on the device as written
        self.initrds: list[str] = []
        self.options: str | None = None
        self.tries_left = -1
        self.tries_done = -1
        self.section: tuple[int, int] | None = None  # UKI .linux
        self.initrd_section: tuple[int, int] | None = None  # UKI .initrd
        self.title_show = ""
        self.top = ""  # the directory standing for the partition's root ("/boot" on a root fs)
        self.id_without_profile: str | None = None  # a UKI's second and later profiles
        self.profile = 0


def compare(a: SdEntry, b: SdEntry) -> int:
    """config_entry_compare (negative: ``a`` comes first)."""
    r = (a.tries_left == 0) - (b.tries_left == 0)
    if r:
        return r
    r = (a.sort_key is None) - (b.sort_key is None)
    if r:
        return r
    if a.sort_key is not None and b.sort_key is not None:
        r = _strcmp(a.sort_key, b.sort_key)
        if r:
            return r
        r = _strcmp(a.machine_id, b.machine_id)
        if r:
            return r
        r = -strverscmp_improved(a.version, b.version)
        if r:
            return r
    r = -strverscmp_improved(a.id_without_profile or a.id, b.id_without_profile or b.id)
    if r:
        return r
    if a.id_without_profile is not None and b.id_without_profile is not None:
        r = (a.profile > b.profile) - (a.profile < b.profile)  # profiles of one UKI in order (systemd 257)
        if r:
            return r
    if a.tries_left < 0 or b.tries_left < 0:
        return 0
    r = -((a.tries_left > b.tries_left) - (a.tries_left < b.tries_left))
    if r:
        return r
    return (a.tries_done > b.tries_done) - (a.tries_done < b.tries_done)


def _strcmp(a: str | None, b: str | None) -> int:
    if a is None or b is None:
        return (a is not None) - (b is not None)
    x, y = a.encode("utf-8", "surrogateescape"), b.encode("utf-8", "surrogateescape")
    return (x > y) - (x < y)


class _Budget:
    """The bytes of entry files and UKI sections one evaluation reads (and keeps:
    LIMITS.max_entries_bytes), and the work of their lines (boot/budget.py: every line
    of every file is a trip through the parser)."""

    def __init__(self) -> None:
        self.bytes = 0
        self.work = ConfigBudget()

    def spend(self, count: int, where: str) -> None:
        self.bytes += count
        if self.bytes > LIMITS.max_entries_bytes:
            raise LimitExceeded(f"{where}: boot entries hold more than {LIMITS.max_entries_bytes} bytes (max_entries_bytes)")

    def lines(self, text: str, where: str) -> None:
        """Charge ``text`` (a file about to be parsed line by line) for its lines."""
        check_lines(text, where)
        self.work.charge(len(text) + WORK_ITEM * (text.count("\n") + text.count("\r") + 1), where)


def _names(fs, directory: str, suffix: str, device: str) -> list[str]:
    try:
        node = fspath.resolve(fs, directory)
    except NotFound:
        return []
    if node.type is not FileType.DIR:
        return []
    names: list[str] = []
    for raw, child in fs.readdir(node):
        name = raw.decode("utf-8", "surrogateescape")
        if name.startswith(".") or name.startswith("auto-") or child.type is FileType.DIR:
            continue
        if not name.lower().endswith(suffix):
            continue
        if len(names) >= LIMITS.max_config_files:
            raise LimitExceeded(f"({device}){directory}: more than {LIMITS.max_config_files} entries (max_config_files)")
        names.append(name)
    return names


def _exists(fs, path: str) -> bool:
    try:
        return fspath.resolve(fs, path).type is FileType.REG
    except GuestbootError:
        return False


def load_type1(fs, device: str, budget: _Budget, warnings: list[str], top: str = "") -> list[SdEntry]:
    """config_load_entries + config_entry_add_type1 on one partition (``top``: the
    directory that stands for the partition's root, "/boot" on a root file system)."""
    out: list[SdEntry] = []
    for name in _names(fs, top + ENTRIES_DIR, ".conf", device):
        path = f"{top}{ENTRIES_DIR}/{name}"
        try:
            data = fspath.read_bytes(fs, path, LIMITS.max_config_bytes)
        except GuestbootError as err:
            warnings.append(f"({device}){path} skipped: {err}")
            continue
        budget.spend(len(data), f"({device}){ENTRIES_DIR}")
        entry = SdEntry(name.lower(), "", device)
        dropped = False
        options: list[str] = []
        text = data.decode("utf-8", "surrogateescape")
        budget.lines(text, f"({device}){path}")
        for key, value in parse_lines(text):
            if key == "title":
                entry.title = value
            elif key == "sort-key":
                entry.sort_key = value
            elif key == "version":
                entry.version = value
            elif key == "machine-id":
                entry.machine_id = value
            elif key == "linux":
                entry.kind, entry.loader = "type1", value
            elif key == "efi":
                entry.kind, entry.loader = "efi", value
            elif key == "architecture":
                if value != ARCHITECTURE:
                    dropped = True
                    break
            elif key == "initrd":
                if len(entry.initrds) >= LIMITS.max_initrds:
                    raise LimitExceeded(f"({device}){path}: more than {LIMITS.max_initrds} initrd lines")
                entry.initrds.append(value)
            elif key == "options":
                options.append(value)  # joined once: appending to a string each time is quadratic
        if options:
            entry.options = " ".join(options)
        if dropped or not entry.kind or entry.loader is None:
            warnings.append(f"({device}){path}: not an entry for this machine (no linux line, or another architecture)")
            continue
        if not _exists(fs, top + _efi_path(entry.loader).replace("\\", "/")):
            warnings.append(f"({device}){path}: its kernel {entry.loader} does not exist; systemd-boot skips it")
            continue
        entry.tries_left, entry.tries_done = _tries(name, ".conf")
        entry.top = top
        out.append(entry)
    return out


def _profiles(table) -> list[dict]:
    """The section sets of a UKI's profiles (systemd 257, pe_locate_profile_sections):
    the base (sections before the first .profile), then for profile N the base with the
    sections from the N-th .profile up to the next one in their place. Without .profile
    sections there is one set, the base."""
    starts = [i for i, sec in enumerate(table) if sec.name == ".profile"]
    base_end = starts[0] if starts else len(table)
    base = {}
    for sec in table[:base_end]:
        base.setdefault(sec.name, sec)
    out = []
    for n, begin in enumerate(starts or [None]):
        found = dict(base)
        if begin is not None:
            stop = starts[n + 1] if n + 1 < len(starts) else len(table)
            for sec in table[begin:stop]:
                found[sec.name] = sec
        out.append(found)
    return out


def _read_text(source, sec, limit: int, where: str) -> str:
    if sec.size > limit:
        raise LimitExceeded(f"{where}: {sec.name} of {sec.size} bytes")
    return source.pread(sec.offset, sec.size).decode("utf-8", "replace")


def _section_osrel(source, sec, budget: _Budget, device: str, where: str) -> dict[str, str]:
    """A UKI section of os-release lines (.osrel, .profile), read and parsed, its bytes
    and lines charged (a section is read again for every profile that uses it)."""
    budget.spend(sec.size, f"({device}){UKI_DIR}")
    text = _read_text(source, sec, OSREL_BYTES, where)
    budget.lines(text, where)
    return parse_osrel(text)


def _mangle_cmdline(text: str) -> str:
    """systemd 257's mangle_stub_cmdline: leading blanks and control characters dropped,
    inner ones made spaces, trailing ones dropped."""
    return "".join(" " if ord(c) <= 0x20 else c for c in text.split("\0", 1)[0]).strip(" ")


def load_ukis(fs, device: str, budget: _Budget, warnings: list[str]) -> list[SdEntry]:
    """config_entry_add_unified on one partition; a UKI with .profile sections gives one
    entry per profile as systemd 257's boot_entry_add_type2 does (ids "name.efi@ID" or
    "name.efi@N" after the first, titles "NAME (TITLE)")."""
    from ..kernel.pe import sections

    out: list[SdEntry] = []
    for name in _names(fs, UKI_DIR, ".efi", device):
        path = f"{UKI_DIR}/{name}"
        where = f"({device}){path}"
        try:
            source = fspath.open_file(fs, path)
            table = sections(source)
        except GuestbootError as err:
            warnings.append(f"{where} skipped: {err}")
            continue
        multi = any(sec.name == ".profile" for sec in table)
        for profile, found in enumerate(_profiles(table)):
            osrel = found.get(".osrel")
            if osrel is None or osrel.size == 0:
                warnings.append(f"{where}: no .osrel section; systemd-boot skips it")
                continue
            rel = _section_osrel(source, osrel, budget, device, where)
            title = next((rel[k] for k in ("PRETTY_NAME", "IMAGE_ID", "NAME", "ID") if k in rel), None)
            if title is None:
                warnings.append(f"{where}: its .osrel names no OS; systemd-boot skips it")
                continue
            entry = SdEntry(name.lower(), "uki", device)
            prof = found.get(".profile")
            if prof is not None and prof.size:
                info = _section_osrel(source, prof, budget, device, where)
                profile_id, profile_title = info.get("ID"), info.get("TITLE")
            else:
                profile_id = profile_title = None
            if profile_title is not None:
                title = f"{title} ({profile_title})"
            elif profile > 0:
                title = f"{title} ({profile_id})" if profile_id is not None else f"{title} (Profile #{profile + 1})"
            if profile > 0:
                entry.id_without_profile = entry.id
                entry.id = f"{entry.id}@{profile_id}" if profile_id is not None else f"{entry.id}@{profile}"
            entry.profile = profile
            entry.title = title
            for key in ("IMAGE_VERSION", "VERSION", "VERSION_ID", "BUILD_ID"):
                if key in rel:
                    entry.version = rel[key]
                    break
            entry.sort_key = rel.get("IMAGE_ID", rel.get("ID"))
            entry.loader = path
            entry.tries_left, entry.tries_done = _tries(name, ".efi")
            linux = found.get(".linux")
            entry.section = (linux.offset, linux.size) if linux is not None and linux.size else None
            initrd = found.get(".initrd")
            entry.initrd_section = (initrd.offset, initrd.size) if initrd is not None and initrd.size else None
            cmdline = found.get(".cmdline")
            if cmdline is not None and cmdline.size:
                text = _read_text(source, cmdline, CMDLINE_BYTES, where)
                if multi:
                    entry.options = _mangle_cmdline(text)
                else:  # systemd 252: one final newline chomped, then read as a C string
                    text = text[:-1] if text.endswith("\n") else text
                    entry.options = text.split("\0", 1)[0]
            out.append(entry)
    return out


def _titles(entries: list[SdEntry]) -> None:
    """config_title_generate."""
    for e in entries:
        e.title_show = e.title if e.title is not None else e.id
    for extra in (lambda e: e.version, lambda e: e.machine_id[:8] if e.machine_id else None, lambda e: e.id):
        counts: dict[str, int] = {}
        for e in entries:
            counts[e.title_show] = counts.get(e.title_show, 0) + 1
        if all(n == 1 for n in counts.values()):
            return
        for e in entries:
            if counts[e.title_show] > 1 and extra(e):
                e.title_show = f"{e.title_show} ({extra(e)})"


class SdBootDefault(DefaultRule):
    """config_default_entry_select without EFI variables: loader.conf's glob, else the
    first entry."""

    __slots__ = ("pattern",)

    def __init__(self, pattern: str | None) -> None:
        self.pattern = pattern

    def pick(self, menu: Menu, entered: str | None) -> Pick:
        if self.pattern is not None and self.pattern != "@saved":
            for i, entry in enumerate(menu.entries):
                if entry.id is not None and fnmatch.fnmatchcase(entry.id, self.pattern):
                    return Pick(i)
        return Pick(0)

    def __repr__(self) -> str:
        return f"SdBootDefault({self.pattern!r})"


def _partitions(devices: DeviceMap, device: str, path: str) -> tuple[list[tuple[str, str]], list[str]]:
    """([(ESP, top)], [XBOOTLDR]): the first of each type in probe order. A config found
    on a device of neither type (an unpartitioned ESP image, or /boot/loader/entries on
    a root file system) stands for the ESP, its top the directory above /loader."""
    esps = [(d.name, "") for t in (ESP_TYPE, MBR_ESP_TYPE) for d in devices.by_type(t)]
    xbl = [d.name for t in (XBOOTLDR_TYPE, MBR_XBOOTLDR_TYPE) for d in devices.by_type(t)]
    canonical = devices.canonical(device) or device
    if canonical not in [e for e, _ in esps] and canonical not in xbl:
        top = path[: path.find("/loader/")] if "/loader/" in path else ""
        esps.insert(0, (canonical, top))
    return esps[:1], xbl[:1]


def evaluate(devices: DeviceMap, device: str, path: str, *, env=None, check_files: bool = True) -> Menu:
    """The systemd-boot menu of the guest whose config was found at (device)path."""
    esps, xbls = _partitions(devices, device, path)
    warnings: list[str] = []
    budget = _Budget()
    entries: list[SdEntry] = []
    pattern: str | None = None
    timeout: str | None = None
    for esp, top in esps:
        fs = devices.filesystem(esp)
        try:
            conf = fspath.read_bytes(fs, top + LOADER_CONF, LIMITS.max_config_bytes)
        except NotFound:
            conf = None
        if conf is not None:
            conf_text = conf.decode("utf-8", "surrogateescape")
            budget.lines(conf_text, f"({esp}){top}{LOADER_CONF}")
            for key, value in parse_lines(conf_text):
                if key == "default":
                    if value.startswith("@") and value.lower() != "@saved":
                        warnings.append(f"loader.conf: unsupported special entry identifier {value!r} (ignored)")
                        continue
                    if len(value) > LIMITS.max_sort_field_bytes:  # ids are no longer: nothing could match
                        raise LimitExceeded(f"({esp}){top}{LOADER_CONF}: a default of {len(value)} bytes,"
                                            f" more than {LIMITS.max_sort_field_bytes} (max_sort_field_bytes)")
                    pattern = value.lower()
                elif key == "timeout":
                    timeout = value
        entries += load_type1(fs, esp, budget, warnings, top)
        entries += load_ukis(fs, esp, budget, warnings)
    for xbl in xbls:
        fs = devices.filesystem(xbl)
        entries += load_ukis(fs, xbl, budget, warnings)
        entries += load_type1(fs, xbl, budget, warnings)
    if len(entries) > LIMITS.max_menu_entries:  # a UKI gives an entry per profile
        raise LimitExceeded(f"more than {LIMITS.max_menu_entries} systemd-boot entries (max_menu_entries)")
    for e in entries:  # sorting compares these again and again: their length is bounded
        for field in (e.id, e.sort_key, e.machine_id, e.version):
            if field is not None and len(field) > LIMITS.max_sort_field_bytes:
                raise LimitExceeded(f"({e.device}): entry {e.id[:64]!r}… has a sort field of {len(field)} bytes,"
                                    f" more than {LIMITS.max_sort_field_bytes} (max_sort_field_bytes)")
    entries.sort(key=functools.cmp_to_key(compare))
    _titles(entries)
    if pattern == "@saved":
        warnings.append("loader.conf: default @saved names the EFI variable LoaderEntryLastBooted, which a disk image"
                        " does not have: systemd-boot boots the first entry")
    elif pattern is not None and not any(fnmatch.fnmatchcase(e.id, pattern) for e in entries):
        warnings.append(f"loader.conf: default {pattern!r} matches no entry: systemd-boot boots the first entry")
    canonical = devices.canonical(device) or device
    return Menu(
        entries=[MenuEntry(title=e.title_show, id=e.id, run=_runner(e)) for e in entries],
        default=pattern,
        timeout=timeout,
        origin=f"{canonical}:{path}",
        format="systemd-boot",
        warnings=warnings,
        rule=SdBootDefault(pattern),
    )


def _runner(entry: SdEntry):
    def run() -> BootSpec:
        if entry.kind == "efi":
            raise Unsupported(f"entry {entry.id!r} starts the EFI program {entry.loader}, not a Linux kernel")
        assert entry.loader is not None
        if entry.kind == "uki":
            if entry.section is None:
                raise NotFound(f"{entry.loader}: the unified kernel image has no .linux section")
            kernel = FileRef(entry.device, entry.loader, entry.loader, entry.section)
            initrds = (FileRef(entry.device, entry.loader, entry.loader, entry.initrd_section),) \
                if entry.initrd_section else ()
            args = entry.options or ""
            return BootSpec(kernel, initrds, args, args, "uki")
        kernel_path = entry.top + _efi_path(entry.loader).replace("\\", "/")
        kernel = FileRef(entry.device, posixpath.normpath(kernel_path), entry.loader)
        initrds = tuple(FileRef(entry.device, entry.top + _efi_path(i).replace("\\", "/"), i) for i in entry.initrds)
        args = entry.options or ""
        words = [f"initrd={_efi_path(i)}" for i in entry.initrds] + ([args] if args else [])
        return BootSpec(kernel, initrds, args, " ".join(words), "linux")

    return run
