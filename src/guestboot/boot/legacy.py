"""GRUB legacy (0.9x) menu.lst / grub.conf -> Menu(format="grub-legacy").

What GRUB 0.97 does, from its stage2/stage2.c (cmain, get_line_from_config),
stage2/cmdline.c (find_command, skip_to), stage2/builtins.c and stage2/boot.c:

* Lines: CR is dropped, a tab is a space, a backslash before a newline joins the lines
  with one space; leading blanks are skipped; a line whose first character is ``#`` is a
  comment; blank lines are skipped.
* A command word ends at a blank or ``=``; its argument starts after the blanks and
  ``=`` signs that follow (so ``default=0`` is ``default 0``).
* Unknown commands are skipped everywhere. Before the first ``title`` only the menu
  commands act (``default``, ``fallback``, ``timeout``, ``hiddenmenu``, ``password`` …);
  other commands there are ignored. A ``title`` followed by no command is dropped.
* ``default N`` is 0-based; ``default saved`` uses the number at the start of the file
  ``default`` in the config's directory (GRUB reads its first 9 bytes; grub-set-default
  writes the number on the first line). An unparsable default line keeps the previous
  value. ``fallback N...`` takes up to 8 distinct numbers.
* In an entry, ``root``/``rootnoverify`` set the device later paths are read from;
  ``(hdX,Y)`` counts partitions from 0, so ``(hd0,0)`` is GRUB 2's ``hd0,msdos1``.
  Without ``root`` the entry reads the device the config was found on.
* ``kernel [--type=T] [--no-mem-option] FILE ARGS``: the kernel gets ARGS verbatim:
  everything after the file name and the blanks after it (boot.c copies from
  ``skip_to(0, arg)``; no BOOT_IMAGE). ``initrd FILE`` loads one file (further words are
  ignored). ``module`` lines make a multiboot entry: booted only for Solaris/illumos
  (see _Entry._multiboot); Xen with Linux modules is Unsupported.
* Solaris/illumos GRUB (bootadm's menu.lst): ``findroot (SIGNATURE,P,S)`` makes the device
  holding /boot/grub/bootsign/SIGNATURE the root; ``bootfs DATASET`` names the ZFS boot
  file system; ``kernel$``/``module$`` are kernel/module with ``$ISADIR`` (amd64) and
  ``$ZFS-BOOTFS`` expanded. ``savedefault`` writes /boot/grub/default when the entry boots:
  guestboot never writes the guest; the next boot's ``default saved`` reads that file.

Differences from pygrub (Xen's GrubConf.py), kept on purpose: pygrub splits commands at
the first blank only when no ``=`` comes first, keeps a title with no commands, strips
trailing blanks of the kernel arguments, and always reads files from the partition the
config was found on. We strip trailing blanks of titles as pygrub does, and follow pygrub
in one case GRUB could not boot: a ``root`` device that is not on this image (a domU
whose menu.lst says ``(hd0,0)`` on an unpartitioned disk) reads the config's device,
with a warning.
"""

from __future__ import annotations

import posixpath
import re

from ..devices import DeviceMap
from ..errors import ConfigError, GuestbootError, LimitExceeded, NotFound, Unsupported
from ..fs.base import FileType
from ..fs.path import open_file, read_bytes, resolve
from ..limits import LIMITS
from .budget import WORK_ITEM, ChargedMessages, ConfigBudget, check_lines
from .grubnum import legacy_number
from .grubpath import MissingParen, split_device
from .model import BootSpec, DefaultRule, FileRef, Menu, MenuEntry, Pick

__all__ = ["FORMAT", "evaluate", "legacy_fallbacks", "legacy_number", "parse", "parse_text"]

FORMAT = "grub-legacy"

# Commands GRUB 0.97 runs before the first title (BUILTIN_MENU), plus the distribution
# patches seen in real configs (splashimage/foreground/background: Red Hat; gfxmenu:
# SUSE and Debian).
MENU_COMMANDS = frozenset("""bootp color default dhcp fallback gfxmenu hiddenmenu hide ifconfig pager partnew
    parttype password rarp serial setkey splashimage terminal terminfo tftpserver timeout
    unhide foreground background""".split())
# All other commands GRUB 0.97 knows (builtins.c builtin_table); only some affect booting.
ENTRY_COMMANDS = frozenset("""blocklist boot cat chainloader cmp configfile debug device displayapm displaymem
    embed find fstest geometry halt help impsprobe initrd install ioprobe kernel lock
    makeactive map md5crypt module modulenounzip pause quit read reboot root rootnoverify
    savedefault setup testload testvbe uppermem vbeprobe""".split()) | MENU_COMMANDS
# The Solaris/illumos GRUB's own commands (its grub-0.97 patches: findroot, bootfs, and
# kernel$/module$, which expand $ISADIR and $ZFS-BOOTFS).
SOLARIS_COMMANDS = frozenset({"findroot", "bootfs", "kernel$", "module$"})
ENTRY_COMMANDS = ENTRY_COMMANDS | SOLARIS_COMMANDS
ISADIR = "amd64"  # what Solaris GRUB sets $ISADIR to on a 64-bit CPU (every Xen/KVM guest)
BOOTSIGN_DIR = "/boot/grub/bootsign"  # where findroot looks for its signature file

_MAX_FALLBACKS = 8  # MAX_FALLBACK_ENTRIES, stage2/shared.h
_DEVICE = re.compile(r"^(?P<disk>[a-z]+)(?P<drive>\d+)(?:,(?P<part>[^,)]*))?(?:,(?P<slice>[^)]*))?$", re.ASCII)


def legacy_fallbacks(text: str) -> list[int] | None:
    """GRUB legacy's fallback_func: up to 8 distinct numbers separated by blanks; None
    when the line is invalid (GRUB then keeps the previous fallback line's list)."""
    entries: list[int] = []
    position = 0
    while position < len(text):
        parsed = legacy_number(text, position)
        if parsed is None:
            return None
        number, position = parsed
        if number in entries:
            continue  # GRUB does not skip to the next word here, so more text fails
        entries.append(number)
        if len(entries) == _MAX_FALLBACKS:
            break
        while position < len(text) and text[position] not in " \t":
            position += 1
        while position < len(text) and text[position] in " \t":
            position += 1
    return entries


class LegacyDefault(DefaultRule):
    """GRUB legacy's default (stage2.c cmain): ``default N`` (0-based) or, for ``default
    saved``, the number in ``Menu.saved``; a default past the last entry becomes the
    first fallback (the rest stay fallbacks), or 0 when there is none; fallbacks past the
    last entry are dropped. No submenus."""

    __slots__ = ()

    def pick(self, menu: Menu, entered: str | None) -> Pick:
        value = menu.saved if menu.default == "saved" else menu.default
        parsed = legacy_number(value) if value else None
        index = parsed[0] if parsed else 0
        fallbacks = list(self.fallbacks(menu))
        if index >= len(menu.entries):
            index = fallbacks.pop(0) if fallbacks else 0
        return Pick(index, tuple(fallbacks))

    def fallbacks(self, menu: Menu) -> tuple[int, ...]:
        return tuple(n for n in (legacy_fallbacks(menu.fallback or "") or []) if n < len(menu.entries))


RULE = LegacyDefault()


def _lines(text: str) -> list[tuple[int, str]]:
    """(line number, command line) as get_line_from_config reads them; the number is
    that of the physical line the command starts on."""
    out: list[tuple[int, str]] = []
    pending: list[str] = []
    start = 0
    for number, physical in enumerate(text.replace("\r", "").replace("\t", " ").split("\n"), 1):
        if not pending:
            start = number
        if physical.endswith("\\"):
            pending.append(physical[:-1] + " ")
            continue
        pending.append(physical)
        line = "".join(pending).split("\0", 1)[0].lstrip(" ")
        pending = []
        if line and not line.startswith("#"):
            out.append((start, line))
    if pending:
        line = "".join(pending).split("\0", 1)[0].lstrip(" ")
        if line and not line.startswith("#"):
            out.append((start, line))
    return out


def _split(line: str) -> tuple[str, str]:
    """(command, argument) as find_command and skip_to(1, …) split a line."""
    end = 0
    while end < len(line) and line[end] not in " =":
        end += 1
    start = end
    while start < len(line) and line[start] in " =":
        start += 1
    return line[:end], line[start:]


def _first_word(text: str) -> tuple[str, str]:
    """(word, rest after the blanks that follow it) as skip_to(0, …) does."""
    end = text.find(" ")
    if end < 0:
        return text, ""
    return text[:end], text[end:].lstrip(" ")


def _device_name(written: str) -> str:
    """GRUB 2's name for a GRUB legacy device: ``hd0,0`` -> ``hd0,1``; Unsupported for a
    BSD slice, ConfigError when it is no device syntax at all."""
    m = _DEVICE.match(written)
    if not m:
        raise ConfigError(f"bad device name ({written})")
    part = m.group("part")
    if m.group("slice") is not None or (part is not None and not (part.isascii() and part.isdigit())):
        raise Unsupported(f"BSD disklabel partition ({written})")
    disk = f"{m.group('disk')}{m.group('drive')}"
    if part is None:
        return disk
    number = legacy_number(part)  # GRUB's safe_parse_maxint: more than MAXINT is an error
    if number is None:
        raise ConfigError(f"bad device name ({written}): partition number out of range")
    return f"{disk},{number[0] + 1}"


class _Entry:
    """The commands of one title, run when the entry is booted (``run``)."""

    def __init__(
        self, devices: DeviceMap, device: str, title: str, lines: list[tuple[int, str]], warn, check_files: bool = True,
        budget: ConfigBudget | None = None,
    ):
        self.budget = ConfigBudget() if budget is None else budget  # the evaluation's: every run spends from it
        self.devices = devices
        self.check_files = check_files
        self.config_device = device
        self.title = title
        self.lines = lines
        self.warn = warn

    def _where(self, written_device: str | None, current: str) -> str:
        if written_device is None:
            return current
        name = _device_name(written_device)
        canonical = self.devices.canonical(name)
        if canonical is None:
            self.warn(
                f"{self.title!r}: ({written_device}) is not on this image; reading the device the "
                f"config is on, ({self.config_device}), as pygrub does"
            )
            return self.config_device
        return canonical

    def _file(self, written: str, current: str, what: str) -> FileRef:
        try:
            device_text, path = split_device(written)
        except MissingParen:
            raise ConfigError(f"{self.title!r}: {what} {written!r}: no ')' after the device") from None
        if not path.startswith("/"):
            raise Unsupported(f"{self.title!r}: {what} {written!r} is not an absolute path (a blocklist?)")
        device = self._where(device_text, current)
        if not self.check_files:
            return FileRef(device, path, written)
        try:
            node = resolve(self.devices.filesystem(device), path)
        except GuestbootError as err:
            raise err.located(f"{self.title!r}: {what} ({device})")
        if node.type is not FileType.REG:
            raise NotFound(f"{self.title!r}: {what} ({device}){path} is not a regular file")
        return FileRef(device, path, written)

    def _findroot(self, number: int, arg: str) -> str:
        """Solaris GRUB's findroot (SIGNATURE[,PART[,SLICE]]): the first device (in probe
        order) holding /boot/grub/bootsign/SIGNATURE. The partition and slice are not
        checked (we do not read Solaris VTOC slices); a warning says which device it is."""
        word, _rest = _first_word(arg)
        if not (word.startswith("(") and word.endswith(")")):
            raise ConfigError(f"line {number}: findroot {arg!r}: expected (signature,part,slice)")
        signature = word[1:-1].split(",", 1)[0]
        if not signature or "/" in signature or signature in (".", ".."):
            raise ConfigError(f"line {number}: findroot {arg!r}: bad signature")
        sign = f"{BOOTSIGN_DIR}/{signature}"
        for name, fs in self.devices.filesystems():
            try:
                if resolve(fs, sign).type is FileType.REG:
                    self.warn(f"{self.title!r}: findroot ({signature}) is ({name}), which holds {sign}")
                    return name
            except GuestbootError:
                continue
        raise NotFound(f"{self.title!r}: findroot: no device holds {sign}")

    def _solaris_expand(self, number: int, text: str, bootfs: str | None) -> str:
        """kernel$/module$: $ISADIR and $ZFS-BOOTFS as Solaris GRUB expands them. Solaris
        GRUB gives zfs-bootfs=POOL/OBJECT-NUMBER from the pool; we cannot read ZFS, so
        the dataset name that bootfs gave stands in (illumos accepts both)."""
        text = text.replace("$ISADIR", ISADIR)
        if "$ZFS-BOOTFS" in text:
            if bootfs is None:
                raise ConfigError(f"line {number}: $ZFS-BOOTFS without a bootfs line before it")
            self.warn(f"{self.title!r}: $ZFS-BOOTFS is zfs-bootfs={bootfs} (the dataset, not its object number)")
            text = text.replace("$ZFS-BOOTFS", f"zfs-bootfs={bootfs}")
        return text

    def run(self) -> BootSpec:
        current = self.config_device
        kernel: FileRef | None = None
        args = ""
        initrd: FileRef | None = None
        modules: list[tuple[int, str, FileRef]] = []
        bootfs: str | None = None
        for number, line in self.lines:
            self.budget.charge(len(line) + WORK_ITEM, f"{self.title!r}: line {number}")
            command, arg = _split(line)
            if command in ("kernel$", "module$"):
                command, arg = command[:-1], self._solaris_expand(number, arg, bootfs)
            if command == "findroot":
                current = self._findroot(number, arg)
            elif command == "bootfs":
                bootfs = _first_word(arg)[0] or None
            elif command in ("root", "rootnoverify"):
                word, _rest = _first_word(arg)
                if not (word.startswith("(") and word.endswith(")")):
                    raise ConfigError(f"line {number}: {command} {arg!r}: expected a device like (hd0,0)")
                current = self._where(word[1:-1], current)
            elif command == "kernel":
                rest = arg
                while rest.startswith("--"):
                    option, rest = _first_word(rest)
                    if option.startswith("--type=") and option[7:] not in ("linux", "biglinux"):
                        raise Unsupported(f"line {number}: kernel {option}: only Linux kernels are booted")
                    if not (option.startswith("--type=") or option == "--no-mem-option"):
                        raise ConfigError(f"line {number}: kernel: unknown option {option}")
                written, args = _first_word(rest)
                if not written:
                    raise ConfigError(f"line {number}: kernel without a file")
                kernel = self._file(written, current, "kernel")
            elif command == "initrd":
                written, _ignored = _first_word(arg)
                if not written:
                    raise ConfigError(f"line {number}: initrd without a file")
                initrd = self._file(written, current, "initrd")
            elif command in ("module", "modulenounzip"):
                written, _margs = _first_word(arg)
                if len(modules) >= LIMITS.max_initrds:
                    raise LimitExceeded(f"{self.title!r}: more than {LIMITS.max_initrds} modules (max_initrds)")
                modules.append((number, arg, self._file(written, current, "module")))
            elif command == "chainloader":
                raise Unsupported(f"{self.title!r}: chainloader entry (line {number})")
            elif command == "configfile":
                raise Unsupported(f"{self.title!r}: configfile (line {number})")
        if kernel is None:
            raise NotFound(f"{self.title!r}: no kernel line")
        if modules:
            return self._multiboot(kernel, args, modules)
        return BootSpec(
            kernel=kernel, initrds=(initrd,) if initrd else (), args=args, cmdline=args, loader="kernel"
        )

    def _multiboot(self, kernel: FileRef, args: str, modules: list[tuple[int, str, FileRef]]) -> BootSpec:
        """A multiboot entry. Only Solaris/illumos is booted: its kernel is
        [/boot]/platform/<arch>/kernel/[<isa>/]unix and its module the boot_archive (the root
        file system image, handed over as the ramdisk). GRUB gives a multiboot kernel the
        whole "FILE ARGS" text as its command line, file name first, and Solaris reads
        it so. Other multiboot entries (Xen with Linux modules …) stay Unsupported."""
        if not ("/platform/" in kernel.path and posixpath.basename(kernel.path) == "unix"):
            number = modules[0][0]
            raise Unsupported(f"{self.title!r}: multiboot entry (line {number}: module); only Linux kernels are booted")
        cmdline = f"{kernel.written} {args}" if args else kernel.written
        return BootSpec(kernel, tuple(ref for _n, _a, ref in modules), cmdline, cmdline, "multiboot")


def _saved(devices: DeviceMap, device: str, path: str, warnings: list[str]) -> str:
    """The entry number in the ``default`` file next to the config (0 when absent)."""
    default_file = posixpath.join(posixpath.dirname(path) or "/", "default")
    try:
        source = open_file(devices.filesystem(device), default_file)
    except NotFound:
        warnings.append(f"default saved: no {default_file} on ({device}); using entry 0")
        return "0"
    head = source.pread(0, min(source.size, 9)).split(b"\0", 1)[0].decode("ascii", "replace")
    parsed = legacy_number(head)
    if parsed is None:
        warnings.append(f"default saved: ({device}){default_file} holds no entry number; using entry 0")
        return "0"
    return str(parsed[0])


def parse_text(text: str, devices: DeviceMap, device: str, path: str, *, check_files: bool = True) -> Menu:
    """The Menu of config ``text`` that was read from ``(device)path``. With
    ``check_files`` off (pygrub's --isconfig) kernel and initrd paths are not looked up."""
    check_lines(text, f"({device}){path}")  # GRUB legacy has no loops: the work is linear in the lines
    menu = Menu(origin=f"{device}:{path}", format=FORMAT, rule=RULE)
    budget = ConfigBudget()  # one per evaluation: the config's lines, its entries' runs, the warnings
    where = f"({device}){path}"
    budget.charge(len(text) + WORK_ITEM * text.count("\n"), where)
    warnings = menu.warnings = ChargedMessages(budget, where)
    title: str | None = None
    body: list[tuple[int, str]] = []

    def close() -> None:
        if title is None:
            return
        if not body:
            warnings.append(f"title {title!r} has no commands: GRUB legacy drops it")
            return
        if len(menu.entries) >= LIMITS.max_menu_entries:
            raise LimitExceeded(f"({device}){path}: more than {LIMITS.max_menu_entries} menu entries")
        entry = _Entry(devices, device, title, list(body), warnings.append, check_files, budget)
        menu.entries.append(MenuEntry(title=title, run=entry.run))

    for number, line in _lines(text):
        command, arg = _split(line)
        if command == "title":
            close()
            title, body = arg.rstrip(" "), []
            continue
        if command not in ENTRY_COMMANDS:
            warnings.append(f"line {number}: unknown command {command!r} skipped")
            continue
        if title is not None:
            body.append((number, line))
            continue
        if command == "default":
            if arg.strip() == "saved":
                menu.default = "saved"
            elif (parsed := legacy_number(arg)) is not None:
                menu.default = str(parsed[0])
            else:
                warnings.append(f"line {number}: default {arg!r} is not a number; ignored")
        elif command == "fallback":
            numbers = legacy_fallbacks(arg)
            if numbers is None:
                warnings.append(f"line {number}: fallback {arg!r} is not a list of numbers; ignored")
            else:
                menu.fallback = " ".join(str(n) for n in numbers) or None
        elif command == "timeout":
            menu.timeout = arg.strip()
        elif command not in MENU_COMMANDS:
            warnings.append(
                f"line {number}: {command} before the first title is ignored (GRUB legacy runs only menu commands there)"
            )
    close()
    if menu.default == "saved":
        menu.saved = _saved(devices, device, path, warnings)
    return menu


def parse(devices: DeviceMap, device: str, path: str, *, check_files: bool = True) -> Menu:
    """Read ``(device)path`` (bounded by LIMITS.max_config_bytes) and parse it."""
    fs = devices.filesystem(device)
    data = read_bytes(fs, path, LIMITS.max_config_bytes)
    return parse_text(data.decode("utf-8", "surrogateescape"), devices, device, path, check_files=check_files)


def evaluate(
    devices: DeviceMap, device: str, path: str, *, env: dict[str, str] | None = None, check_files: bool = True
) -> Menu:
    """The registry's common signature (``env`` is GRUB 2's; GRUB legacy has none)."""
    return parse(devices, device, path, check_files=check_files)
