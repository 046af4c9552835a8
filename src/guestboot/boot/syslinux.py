"""SYSLINUX / EXTLINUX / ISOLINUX configs (syslinux.cfg, extlinux.conf, isolinux.cfg)
-> Menu(format="syslinux").

What SYSLINUX 6.03 does, from its com32/elflink/ldlinux/ (readconfig.c parse_config_file,
record, find_label; ldlinux.c main, load_kernel; execute.c; kernel.c new_linux_kernel),
com32/menu/ (readconfig.c, menumain.c) and core/fs/lib/searchconfig.c:

* Lines are read with fgets into a 4096-byte buffer (a longer line goes on as the next
  line); the line ends at its first CR or LF; leading blanks (any byte <= 0x20) are
  skipped. A keyword matches case-insensitively and must be followed by a blank or the
  end of the line. Unknown lines (``#`` comments too) are ignored. ``TEXT HELP`` …
  ``ENDTEXT`` lines are help text.
* ``LABEL name`` records the label before it and starts a new one whose kernel is
  ``name`` (first word). ``KERNEL``/``LINUX``/``BOOT``/``BSS``/``PXE``/``FDIMAGE``/
  ``COMBOOT``/``COM32``/``CONFIG``/``LOCALBOOT`` set the label's kernel (the rest of the
  line) and its type; outside a label they are ignored. ``APPEND`` inside a label is
  the label's, outside it is the global one used by labels without their own; ``APPEND
  -`` means no arguments. ``INITRD`` (labels only) adds `` initrd=FILES`` after the
  arguments. A recorded label's command line is ``kernel[ args][ initrd=…]`` (``.type
  kernel …`` for the explicit types).
* Booting a command line (load_kernel): its first word names a label (first match in
  file order, hidden ones too): the label's command line plus the words after it;
  otherwise an "implicit" kernel path. The type is the label's, or for KERNEL (and
  implicit commands) the file extension: .c32 COM32 module, .img floppy image, .bss/.bin/
  .bs boot sector, .0 PXE, else a Linux kernel. A Linux kernel gets
  ``BOOT_IMAGE=<kernel as written> <args>``; the first ``initrd=`` in that text names
  the initrds, comma-separated, up to the next blank; they are loaded in order.
* What boots when nobody types: ``UI module`` wins over ``DEFAULT``. With a UI (or a
  DEFAULT naming menu.c32/vesamenu.c32) the menu module shows the labels; its default is
  the last ``MENU DEFAULT`` label, replaced (with UI only) by the label DEFAULT names;
  ``MENU BEGIN``/``MENU END`` and ``MENU INCLUDE file tag`` make submenus. On timeout
  (``TIMEOUT`` in tenths of a second, > 0) it boots ``ONTIMEOUT`` when set, else the
  default. Without a UI, DEFAULT is booted at once (``PROMPT 0``, the default), or after
  the ``boot:`` prompt times out (``PROMPT 1``), then ``ONTIMEOUT`` when set. With no
  DEFAULT and no UI SYSLINUX waits at its prompt: we boot the first label and say so.
* Paths are relative to the directory the config was found in (SYSLINUX chdirs there);
  ``CONFIG file [dir]`` restarts with another config (and directory). ``INCLUDE file``
  reads a file as if it were pasted in; ``MENU INCLUDE file tag`` as a submenu. Files
  that cannot be opened are skipped (SYSLINUX ignores them too; we warn).
* The ADV beside the config (ldlinux.sys's last 1 KiB; syslinux_adv.py): a boot-once
  command (``extlinux --once``) boots before anything else; with ``MENU SAVE`` the saved
  label (``extlinux --menu-save``, or the menu itself) is the menu's default. We never
  clear or write it.
* ``mboot.c32`` (KERNEL mboot.c32, APPEND xen --- kernel args --- initrd): a Xen
  multiboot entry. We boot its Linux kernel and initrd as pygrub does (ExtLinuxConf.py:
  the second and third ``---`` parts), and warn that the hypervisor is left out.

Differences from pygrub (Xen's ExtLinuxConf.py), on purpose: pygrub maps a DEFAULT that
is no label (``DEFAULT menu.c32``) to entry 0 and ignores MENU DEFAULT, UI, ONTIMEOUT,
INCLUDE, INITRD and the global APPEND, takes the label text as the title, and removes
``initrd=…`` from the arguments; we follow SYSLINUX, whose kernel receives ``initrd=…``.

Entries: the labels of each menu in file order (hidden ones last, class "hidden"), titled
by MENU LABEL or else the whole LABEL text (menu.c32 shows that; ldlinux names the label
by its first word, the entry's id); separators, disabled lines and MENU GOTO/EXIT/QUIT
lines boot nothing and are left out. When
the default is a command that is no bare label (``DEFAULT vmlinuz root=/dev/sda1``, a
label with added words) it is one more entry, class "command", titled by the command.
"""

from __future__ import annotations

import posixpath

from ..devices import DeviceMap
from ..errors import ConfigError, GuestbootError, LimitExceeded, NotFound, Unsupported
from ..fs.base import FileType
from ..fs.path import read_bytes, resolve
from ..limits import LIMITS
from .budget import WORK_ITEM, ConfigBudget, check_lines
from .grubpath import normalise
from .model import BootSpec, DefaultRule, FileRef, Menu, MenuEntry, Pick

__all__ = ["FORMAT", "evaluate", "parse_config"]

FORMAT = "syslinux"

_MAX_LINE = 4095  # fgets into char line[MAX_LINE = 4096] (readconfig.c)
_MAX_CMDLINE = 2048  # MAX_CMDLINE_LEN (com32/include/menu.h): execute() refuses longer
# kernel_types[] of readconfig.c, in its order (is_kernel_type takes the first match).
_KERNEL_TYPES = ("localboot", "kernel", "linux", "boot", "bss", "pxe", "fdimage", "comboot", "com32", "config")
# file_extensions[] of ldlinux.c: the type of a KERNEL (or implicit) image by its name.
_EXTENSIONS = ((".c32", "com32"), (".img", "fdimage"), (".bss", "bss"), (".bin", "boot"), (".bs", "boot"), (".0", "pxe"))
_MENU_MODULES = frozenset({"menu.c32", "vesamenu.c32"})
_WHAT = {
    "localboot": "a local-disk boot (LOCALBOOT)",
    "boot": "a boot sector (BOOT)",
    "bss": "a boot sector (BSS)",
    "pxe": "a PXE image",
    "fdimage": "a floppy image (FDIMAGE)",
    "comboot": "a COMBOOT program",
}


def _blank(ch: str) -> bool:
    return ord(ch) <= 0x20  # my_isspace()


def _skipspace(text: str, pos: int = 0) -> str:
    while pos < len(text) and _blank(text[pos]):
        pos += 1
    return text[pos:]


def _looking_at(text: str, keyword: str) -> str | None:
    """The text after ``keyword`` when ``text`` starts with it (case-insensitively, as
    looking_at compares with bit 0x20 masked) followed by a blank or the end; else None."""
    if len(text) < len(keyword):
        return None
    for a, b in zip(text, keyword):
        if (ord(a) ^ ord(b)) & ~0x20:
            return None
    if len(text) > len(keyword) and not _blank(text[len(keyword)]):
        return None
    return text[len(keyword) :]


def _first_word(text: str) -> tuple[str, str]:
    """(the first word, the text after the blanks that follow it)."""
    end = 0
    while end < len(text) and not _blank(text[end]):
        end += 1
    return text[:end], _skipspace(text, end)


def _split_command(text: str) -> tuple[str, str]:
    """(first word, rest) without skipping the blanks: find_command() as load_kernel uses it."""
    end = 0
    while end < len(text) and not _blank(text[end]):
        end += 1
    return text[:end], text[end:]


def _image_type(kernel: str) -> str:
    name, _rest = _split_command(kernel)
    for ext, kind in _EXTENSIONS:
        if name.endswith(ext):
            return kind
    return "kernel"


class _Item:
    """One menu line: a label (``cmdline`` set), a submenu (``submenu``), or a separator
    / disabled line (neither)."""

    __slots__ = ("title", "label", "cmdline", "submenu", "hidden", "menu", "index")

    def __init__(self, menu: "_SubMenu", title: str, label: str | None, cmdline: str | None, hidden: bool = False):
        self.title = title
        self.label = label
        self.cmdline = cmdline
        self.submenu: _SubMenu | None = None
        self.hidden = hidden
        self.menu = menu
        self.index = 0


class _SubMenu:
    __slots__ = ("title", "items", "parent", "parent_item", "defentry", "ontimeout")

    def __init__(self, title: str, parent: "_SubMenu | None" = None, parent_item: _Item | None = None):
        self.title = title
        self.items: list[_Item] = []
        self.parent = parent
        self.parent_item = parent_item
        self.defentry = 0
        self.ontimeout = parent.ontimeout if parent else None  # menu.c32 inherits it


class _Label:
    """readconfig.c's struct labeldata: the label being read."""

    __slots__ = ("name", "text", "kernel", "type", "append", "initrd", "menulabel", "menudefault", "hide", "action",
                 "sysappend")

    def __init__(self, name: str, sysappend: int, text: str = ""):
        self.name = name
        self.text = text or name  # the whole LABEL text, as menu.c32 shows it
        self.kernel = name
        self.type = "kernel"
        self.append: str | None = None
        self.initrd: str | None = None
        self.menulabel: str | None = None
        self.menudefault = False
        self.hide = False
        self.action = "cmd"  # or "disabled" (MENU DISABLE / SEPARATOR), "other" (GOTO/EXIT/QUIT)
        self.sysappend = sysappend


class Config:
    """What parsing one config (and its includes) leaves: the menus, the labels in file
    order, and the directives that choose what boots."""

    def __init__(self, device: str, path: str, cwd: str):
        self.device = device
        self.path = path
        self.cwd = cwd
        self.root = _SubMenu("")
        self.hidden: list[_Item] = []
        self.all_items: list[_Item] = []
        self.append: str | None = None  # global APPEND
        self.globaldefault: str | None = None
        self.default_cmd: str | None = None
        self.default_level = 0  # 0 none, 1 DEFAULT, 2 UI
        self.ontimeout: str | None = None
        self.timeout = 0  # tenths of a second
        self.prompt = False
        self.implicit = True  # IMPLICIT 0: only labels may be booted
        self.start: _SubMenu | None = None  # MENU START
        self.sysappend = 0
        self.menu_save = False
        self.saved: tuple[str, str] | None = None  # MENU SAVE's label from the ADV, and where it was read
        self.files_read = 0
        self.bytes_read = 0
        self.budget = ConfigBudget()  # bytes processed by this evaluation (boot/budget.py)
        self.warnings: list[str] = []

    def find_label(self, command: str) -> _Item | None:
        """find_label(): the first recorded label named like the command's first word."""
        name, _rest = _split_command(command)
        for item in self.all_items:
            if item.label == name:
                return item
        return None


class _Parser:
    def __init__(self, devices: DeviceMap, config: Config):
        self.devices = devices
        self.fs = devices.filesystem(config.device)
        self.cfg = config
        self.menu = config.root
        self.ld: _Label | None = None

    # --- files --------------------------------------------------------------------------
    def path_of(self, written: str) -> str:
        return normalise(written if written.startswith("/") else posixpath.join(self.cfg.cwd, written))

    def read(self, written: str, depth: int, what: str) -> str | None:
        """The text of a config file, or None (with a warning) when it cannot be opened:
        SYSLINUX skips an INCLUDE it cannot open."""
        cfg = self.cfg
        if depth > LIMITS.max_source_depth:
            raise LimitExceeded(f"{what} {written!r}: includes nested more than {LIMITS.max_source_depth} deep")
        if cfg.files_read >= LIMITS.max_config_files:
            raise LimitExceeded(f"{what} {written!r}: more than {LIMITS.max_config_files} config files read")
        path = self.path_of(written)
        try:
            data = read_bytes(self.fs, path, LIMITS.max_config_bytes)
        except NotFound as err:
            cfg.warnings.append(f"{what} {written!r}: ({cfg.device}){path} cannot be opened ({err.message}); skipped")
            return None
        cfg.files_read += 1
        cfg.bytes_read += len(data)
        if cfg.bytes_read > LIMITS.max_config_bytes_total:
            raise LimitExceeded(f"{what} {written!r}: more than {LIMITS.max_config_bytes_total} bytes of config read")
        return data.decode("utf-8", "surrogateescape")

    # --- records ------------------------------------------------------------------------
    def record(self) -> None:
        """record(): put the pending label on its menu (hidden ones on the hidden list)."""
        ld, cfg = self.ld, self.cfg
        self.ld = None
        if ld is None:
            return
        if len(cfg.all_items) >= LIMITS.max_menu_entries:
            raise LimitExceeded(f"more than {LIMITS.max_menu_entries} syslinux labels")
        cmdline = None
        if ld.action == "cmd":
            extra = f" initrd={ld.initrd}" if ld.initrd is not None else ""
            if ld.sysappend:
                cfg.warnings.append(
                    f"label {ld.name!r}: IPAPPEND/SYSAPPEND {ld.sysappend:#x} adds strings of the machine it boots on;"
                    " left out"
                )
            append = ld.append if ld.append is not None else cfg.append
            if append is None or append == "-":
                append = ""
            space = " " if append else ""
            if ld.type == "kernel":
                cmdline = f"{ld.kernel}{space}{append}{extra}"
            else:
                cmdline = f".{ld.type} {ld.kernel}{space}{append}{extra}"
        if ld.action != "cmd":
            return  # a separator, a disabled line, MENU GOTO/EXIT/QUIT: boots nothing; not an entry here
        title = (ld.menulabel if ld.menulabel is not None else ld.text).replace("^", "")  # hotkey marks
        item = _Item(self.menu, title, ld.name, cmdline, ld.hide)
        cfg.all_items.append(item)
        if ld.hide:
            cfg.hidden.append(item)
            return
        self.add(self.menu, item)
        if ld.menudefault and cmdline is not None:
            self.menu.defentry = item.index

    def add(self, menu: _SubMenu, item: _Item) -> None:
        item.menu, item.index = menu, len(menu.items)
        menu.items.append(item)

    def begin_submenu(self, tag: str) -> None:
        self.record()
        item = _Item(self.menu, tag.replace("^", ""), None, None)
        self.add(self.menu, item)
        item.submenu = _SubMenu(item.title, self.menu, item)
        self.menu = item.submenu
        if self._depth(self.menu) > LIMITS.max_submenu_depth:
            raise LimitExceeded(f"MENU BEGIN nested more than {LIMITS.max_submenu_depth} deep")

    @staticmethod
    def _depth(menu: _SubMenu) -> int:
        depth = 0
        while menu.parent is not None:
            menu, depth = menu.parent, depth + 1
        return depth

    def end_submenu(self) -> None:
        self.record()
        if self.menu.parent is not None:
            self.menu = self.menu.parent

    # --- lines ----------------------------------------------------------------------------
    def parse(self, text: str, depth: int) -> None:
        where = f"({self.cfg.device}){self.cfg.path}"
        check_lines(text, where)
        self.cfg.budget.charge(len(text) + WORK_ITEM * text.count("\n"), where)  # every line, every INCLUDE
        lines = _lines(text)
        position = 0
        while position < len(lines):
            line = _skipspace(lines[position])
            position += 1
            if _looking_at(line, "text") is not None:
                while position < len(lines) and _looking_at(_skipspace(lines[position]), "endtext") is None:
                    position += 1
                position += 1  # the ENDTEXT line (or past the end); help text is not kept
                continue
            self.line(line, depth)

    def line(self, p: str, depth: int) -> None:
        cfg, ld = self.cfg, self.ld
        if (rest := _looking_at(p, "menu")) is not None:
            self.menu_line(_skipspace(rest), depth)
        elif (rest := _looking_at(p, "include")) is not None:
            name, _ = _first_word(_skipspace(rest))
            text = self.read(name, depth + 1, "INCLUDE")
            if text is not None:
                self.parse(text, depth + 1)
        elif (rest := _looking_at(p, "append")) is not None:
            if ld is not None:
                ld.append = _skipspace(rest)
            else:
                cfg.append = _skipspace(rest)
        elif (rest := _looking_at(p, "initrd")) is not None:
            if ld is not None:
                ld.initrd = _skipspace(rest)
        elif (rest := _looking_at(p, "label")) is not None:
            self.record()
            text = _skipspace(rest)
            self.ld = _Label(_first_word(text)[0], cfg.sysappend, text.rstrip())
        elif (kind := _kernel_type(p)) is not None:
            if ld is not None:
                ld.type, ld.kernel = kind[0], _skipspace(kind[1])
        elif (rest := _looking_at(p, "timeout")) is not None:
            cfg.timeout = _atoi(_skipspace(rest))
        elif (rest := _looking_at(p, "ontimeout")) is not None:
            cfg.ontimeout = self.menu.ontimeout = _skipspace(rest)
        elif (rest := _looking_at(p, "ipappend")) is not None or (rest := _looking_at(p, "sysappend")) is not None:
            value = _strtoul(_skipspace(rest))
            if ld is not None:
                ld.sysappend = value
            else:
                cfg.sysappend = value
        elif (rest := _looking_at(p, "default")) is not None:
            cfg.globaldefault = _skipspace(rest)
            if cfg.default_level < 2:
                cfg.default_level, cfg.default_cmd = 1, cfg.globaldefault
        elif (rest := _looking_at(p, "ui")) is not None:
            cfg.default_level, cfg.default_cmd = 2, _skipspace(rest)
        elif (rest := _looking_at(p, "prompt")) is not None:
            cfg.prompt = _atoi(_skipspace(rest)) != 0
        elif (rest := _looking_at(p, "implicit")) is not None:
            cfg.implicit = _atoi(_skipspace(rest)) != 0

    def menu_line(self, p: str, depth: int) -> None:
        ld, menu = self.ld, self.menu
        if (rest := _looking_at(p, "label")) is not None:
            if ld is not None:
                ld.menulabel = _skipspace(rest)
            elif menu.parent_item is not None:
                menu.parent_item.title = _skipspace(rest).replace("^", "")
        elif (rest := _looking_at(p, "title")) is not None:
            item = menu.parent_item  # MENU TITLE names a submenu still called by its tag
            if item is not None and menu.title == item.title:
                item.title = menu.title = _skipspace(rest).replace("^", "")
        elif _looking_at(p, "default") is not None:
            if ld is not None:
                ld.menudefault = True
            elif menu.parent is not None and menu.parent_item is not None:
                menu.parent.defentry = menu.parent_item.index
        elif _looking_at(p, "hide") is not None:
            if ld is not None:
                ld.hide = True
        elif (rest := _looking_at(p, "include")) is not None:
            name, tag = _first_word(_skipspace(rest))
            text = self.read(name, depth + 1, "MENU INCLUDE")
            if text is not None:
                if tag:
                    self.begin_submenu(tag)
                self.parse(text, depth + 1)
                if tag:
                    self.end_submenu()
        elif _looking_at(p, "separator") is not None:
            self.record()
            self.ld = _Label("", self.cfg.sysappend)
            self.ld.action = "disabled"
            self.record()
        elif _looking_at(p, "disable") is not None or _looking_at(p, "disabled") is not None:
            if ld is not None:
                ld.action = "disabled"
        elif (rest := _looking_at(p, "begin")) is not None:
            self.begin_submenu(_skipspace(rest))
        elif _looking_at(p, "end") is not None:
            self.end_submenu()
        elif _looking_at(p, "start") is not None:
            self.cfg.start = menu
        elif _looking_at(p, "save") is not None:
            self.cfg.menu_save = True
        elif any(_looking_at(p, word) is not None for word in ("goto", "exit", "quit")):
            if ld is not None:
                ld.action = "other"


def _kernel_type(text: str) -> tuple[str, str] | None:
    for kind in _KERNEL_TYPES:
        rest = _looking_at(text, kind)
        if rest is not None:
            return kind, rest
    return None


def _atoi(text: str) -> int:
    sign, pos = 1, 0
    if text[:1] in "+-" and text:
        sign, pos = (-1 if text[0] == "-" else 1), 1
    end = pos
    while end < len(text) and text[end].isascii() and text[end].isdigit():
        end += 1
    return sign * int(text[pos:end]) if end > pos else 0


def _strtoul(text: str) -> int:
    try:
        return int(_first_word(text)[0], 0)
    except ValueError:
        return 0


def _lines(text: str) -> list[str]:
    """The lines as fgets(line, 4096) and the CR/LF cut of parse_config_file read them."""
    out: list[str] = []
    for physical in text.split("\n"):
        while len(physical) > _MAX_LINE:
            out.append(physical[:_MAX_LINE])
            physical = physical[_MAX_LINE:]
        out.append(physical)
    return [line.split("\r", 1)[0] for line in out]


# --- what boots ---------------------------------------------------------------------------------
class SyslinuxDefault(DefaultRule):
    """The entry SYSLINUX boots: ``path`` are indices from this menu down through
    submenus, fixed when the config was read (see the module docstring). A submenu
    entered by default follows the rest of the path; entered by the user, its own
    default."""

    __slots__ = ("path",)

    def __init__(self, path: tuple[int, ...]):
        self.path = path

    def pick(self, menu: Menu, entered: str | None) -> Pick:
        path = tuple(int(n) for n in entered.split(">")) if entered else self.path
        rest = ">".join(str(n) for n in path[1:]) or None
        return Pick(path[0], (), rest)

    def __repr__(self) -> str:
        return f"SyslinuxDefault({self.path!r})"


class _Booter:
    """Runs a SYSLINUX command line the way load_kernel/execute do, to a BootSpec."""

    def __init__(self, devices: DeviceMap, cfg: Config, check_files: bool, depth: int):
        self.devices = devices
        self.cfg = cfg
        self.check_files = check_files
        self.depth = depth

    def load(self, command: str) -> BootSpec:
        """load_kernel(): a label (with the words after it) or an implicit kernel."""
        item = self.cfg.find_label(command)
        if item is not None and item.cmdline is not None:
            _name, rest = _split_command(command)
            extra = _skipspace(rest)
            line = f"{item.cmdline} {extra}" if extra else item.cmdline
            return self.execute(line, _image_type(line))
        if not self.cfg.implicit:
            raise ConfigError(f"{_first_word(command)[0]!r} is no label, and IMPLICIT 0 forbids other images")
        return self.execute(command, _image_type(command))

    def execute(self, cmdline: str, kind: str) -> BootSpec:
        if len(cmdline) >= _MAX_CMDLINE:
            raise ConfigError(f"command line of {len(cmdline)} bytes: SYSLINUX refuses {_MAX_CMDLINE} or more")
        kernel, rest = _split_command(cmdline)
        args = _skipspace(rest)
        if kernel.startswith(".") and kernel[1:] in _KERNEL_TYPES and kernel != ".none":
            kind = kernel[1:]  # a type specifier: run the rest as that type
            if kind == "com32":
                name, after = _split_command(args)
                args = (name if name.endswith(".c32") else name + ".c32") + after
            return self.execute(args, kind)
        if kind == "com32":
            return self.com32(kernel, args)
        if kind == "config":
            return self.config(kernel, args)
        if kind in _WHAT:
            raise Unsupported(f"{kernel!r} is {_WHAT[kind]}; only Linux kernels are booted")
        return self.linux(kernel, args)

    def linux(self, kernel: str, args: str) -> BootSpec:
        """new_linux_kernel(): BOOT_IMAGE= and the initrds of the first initrd=."""
        if not kernel:
            raise ConfigError("empty kernel name")
        cmdline = f"BOOT_IMAGE={kernel} {args}"
        initrds: list[FileRef] = []
        found = cmdline.find("initrd=")
        if found >= 0:
            position = found + len("initrd")
            while True:
                position += 1  # the "=" or ","
                end = position
                while end < len(cmdline) and cmdline[end] not in " ,":
                    end += 1
                if len(initrds) >= LIMITS.max_initrds:
                    raise LimitExceeded(f"more than {LIMITS.max_initrds} files in initrd= (max_initrds)")
                initrds.append(self.file(cmdline[position:end], "initrd"))
                position = end
                if position >= len(cmdline) or cmdline[position] != ",":
                    break
        return BootSpec(self.file(kernel, "kernel"), tuple(initrds), args, cmdline, "linux")

    def file(self, written: str, what: str) -> FileRef:
        cfg = self.cfg
        path = normalise(written if written.startswith("/") else posixpath.join(cfg.cwd, written))
        if self.check_files:
            try:
                node = resolve(self.devices.filesystem(cfg.device), path)
            except GuestbootError as err:
                raise err.located(f"{what} {written!r} ({cfg.device})")
            if node.type is not FileType.REG:
                raise NotFound(f"{what} ({cfg.device}){path} is not a regular file")
        return FileRef(cfg.device, path, written)

    def com32(self, module: str, args: str) -> BootSpec:
        base = posixpath.basename(module).lower()
        if base == "mboot.c32":
            return self.mboot(args)
        if base in _MENU_MODULES:
            raise Unsupported(f"{module!r} as a label's kernel: a menu inside an entry")
        raise Unsupported(f"COM32 module {module!r}; only Linux kernels (and mboot.c32 Xen entries) are booted")

    def mboot(self, args: str) -> BootSpec:
        """mboot.c32 xen.gz ARGS --- vmlinuz ARGS --- initrd [--- more modules]: the
        Linux kernel and its initrd, as pygrub boots them (the hypervisor is dropped)."""
        parts = [part.strip() for part in args.split("---")]
        if len(parts) < 2 or not parts[1]:
            raise ConfigError(f"mboot.c32 {args!r}: no kernel after the hypervisor ('---' missing)")
        kernel, kargs = _first_word(parts[1])
        initrds = tuple(self.file(_first_word(part)[0], "initrd") for part in parts[2:] if part)
        if len(initrds) > LIMITS.max_initrds:
            raise LimitExceeded(f"more than {LIMITS.max_initrds} mboot.c32 modules (max_initrds)")
        self.cfg.warnings.append(
            f"mboot.c32: Xen multiboot entry; booting its kernel {kernel!r} without the hypervisor"
            f" {_first_word(parts[0])[0]!r}, as pygrub does"
        )
        return BootSpec(self.file(kernel, "kernel"), initrds, kargs, kargs, "mboot")

    def config(self, name: str, args: str) -> BootSpec:
        """CONFIG file [dir]: ldlinux starts again on another config; its default boots."""
        cfg = self.cfg
        path = normalise(name if name.startswith("/") else posixpath.join(cfg.cwd, name))
        cwd = posixpath.dirname(path) or "/"
        if args:
            directory, _ = _first_word(args)
            cwd = normalise(directory if directory.startswith("/") else posixpath.join(cfg.cwd, directory))
        menu = parse_config(self.devices, cfg.device, path, cwd=cwd, check_files=self.check_files, depth=self.depth + 1)
        cfg.warnings.extend(menu.warnings)
        return _run_default(menu)


def _run_default(menu: Menu) -> BootSpec:
    """What the new config boots by default (no fallbacks in SYSLINUX)."""
    entry = menu.entries[menu.rule.pick(menu, None).index]
    while entry.submenu is not None:
        sub = entry.submenu
        entry = sub.entries[sub.rule.pick(sub, None).index]
    assert entry.run is not None
    return entry.run()


def _from_adv(fs, cfg: Config) -> tuple[str | None, _SubMenu | None, str]:
    """What the ADV beside the config (syslinux_adv.py) decides: a boot-once command
    (ldlinux.c main boots it before looking at DEFAULT or UI), or with MENU SAVE the
    saved label as the menu's default (readconfig.c parse_configs). (None, None, "")
    when it decides nothing."""
    from . import syslinux_adv

    where, records = syslinux_adv.read(fs, posixpath.dirname(cfg.path) or "/")
    once = syslinux_adv.text(records.get(syslinux_adv.ADV_BOOTONCE, b""))
    if once:
        return once, None, f"({cfg.device}){where} holds a boot-once command (extlinux --once); SYSLINUX boots it"
    saved = syslinux_adv.text(records.get(syslinux_adv.ADV_MENUSAVE, b""))
    if cfg.menu_save and saved:
        cfg.saved = (saved, f"({cfg.device}){where}")  # the menu's default, when a menu is shown
    return None, None, ""


def _chosen(cfg: Config) -> tuple[str | None, _SubMenu | None, str]:
    """What boots when nobody types: (a command line to run, or None; the menu whose
    default entry boots when the command is None; why, for the warnings)."""
    cmd = cfg.default_cmd
    menu_mode = cfg.default_level == 2
    if cfg.default_level == 1 and cmd is not None and cfg.find_label(cmd) is None:
        module, _ = _split_command(cmd)
        if posixpath.basename(module).lower() in _MENU_MODULES or (
            _image_type(module) == "kernel" and posixpath.basename(module).lower() + ".c32" in _MENU_MODULES
        ):
            menu_mode = True
    if menu_mode:
        start = cfg.root if cfg.start is None else cfg.start
        if cfg.default_level == 2 and cfg.globaldefault:
            item = cfg.find_label(cfg.globaldefault)
            if item is not None and not item.hidden:
                item.menu.defentry = item.index
                start = item.menu
        if cfg.saved is not None:  # MENU SAVE: the label saved in the ADV, after DEFAULT
            item = cfg.find_label(cfg.saved[0])
            if item is not None and not item.hidden:
                item.menu.defentry = item.index
                start = item.menu
                cfg.warnings.append(f"default: MENU SAVE: the label {_one_line(cfg.saved[0])!r} saved in {cfg.saved[1]}")
        timed = cfg.timeout > 0 and start.ontimeout
        if timed:
            return start.ontimeout, None, f"the menu times out after TIMEOUT {cfg.timeout} (tenths) and runs ONTIMEOUT"
        return None, start, "the menu's default entry"
    if cfg.default_level == 1 and cmd is not None:
        if cfg.prompt and cfg.timeout > 0 and cfg.ontimeout:
            cmd, why = cfg.ontimeout, "the boot: prompt times out and runs ONTIMEOUT"
        else:
            why = "DEFAULT"
    elif cfg.timeout > 0 and cfg.ontimeout:
        cmd, why = cfg.ontimeout, "no DEFAULT; the boot: prompt times out and runs ONTIMEOUT"
    else:
        return None, None, "no DEFAULT or UI: SYSLINUX stops at its boot: prompt; booting the first label"
    if not cfg.implicit and cfg.find_label(cmd) is None:
        return None, None, (f"{why} {_one_line(cmd)!r} is no label and IMPLICIT 0 forbids it: SYSLINUX stops at"
                            " its boot: prompt; booting the first label")
    return cmd, None, why


def _menu_of(
    devices: DeviceMap, cfg: Config, sub: _SubMenu, booter: _Booter, origin: str, top: bool
) -> Menu:
    menu = Menu(origin=origin, format=FORMAT, warnings=cfg.warnings if top else [],
                timeout=str(cfg.timeout) if top and cfg.timeout > 0 else None)  # tenths of a second
    for item in sub.items:
        menu.entries.append(_entry(devices, cfg, item, booter, origin))
    if top:
        for item in cfg.hidden:
            menu.entries.append(_entry(devices, cfg, item, booter, origin, ("hidden",)))
    menu.rule = SyslinuxDefault((_default_index(sub),))
    return menu


def _entry(devices, cfg: Config, item: _Item, booter: _Booter, origin: str, classes=()) -> MenuEntry:
    if item.submenu is not None:
        return MenuEntry(item.title, submenu=_menu_of(devices, cfg, item.submenu, booter, origin, False))
    assert item.cmdline is not None  # record() keeps only labels that run a command
    command = item.cmdline  # chosen in the menu: executed as it is (menumain.c main)
    return MenuEntry(item.title, id=item.label, classes=classes, run=lambda: booter.execute(command, _image_type(command)))


def _default_index(sub: _SubMenu) -> int:
    default = sub.defentry if 0 <= sub.defentry < len(sub.items) else 0
    return default


def _path_to(item_menu: _SubMenu, index: int) -> tuple[int, ...]:
    path = [index]
    menu = item_menu
    while menu.parent is not None and menu.parent_item is not None:
        path.insert(0, menu.parent_item.index)
        menu = menu.parent
    return tuple(path)


def parse_config(
    devices: DeviceMap, device: str, path: str, *, cwd: str | None = None, check_files: bool = True, depth: int = 0
) -> Menu:
    """The Menu of the SYSLINUX config ``(device)path``; relative paths are read from
    ``cwd`` (the config's directory unless CONFIG gave another)."""
    if depth > LIMITS.max_source_depth:
        raise LimitExceeded(f"CONFIG nested more than {LIMITS.max_source_depth} deep at {path}")
    cfg = Config(device, path, cwd or posixpath.dirname(path) or "/")
    parser = _Parser(devices, cfg)
    fs = devices.filesystem(device)
    data = read_bytes(fs, path, LIMITS.max_config_bytes)
    cfg.files_read, cfg.bytes_read = 1, len(data)
    parser.parse(data.decode("utf-8", "surrogateescape"), 0)
    parser.record()
    booter = _Booter(devices, cfg, check_files, depth)
    origin = f"{device}:{path}"
    command, start, why = _from_adv(fs, cfg) if depth == 0 else (None, None, "")
    if command is None and start is None:
        command, start, why = _chosen(cfg)
    menu = _menu_of(devices, cfg, cfg.root, booter, origin, True)
    menu.default = cfg.globaldefault
    menu.timeout = _seconds(cfg.timeout)
    if command is not None:
        item = cfg.find_label(command)
        _name, rest = _split_command(command)
        if item is not None and not _skipspace(rest) and item.cmdline is not None:
            path_ = _path_to(item.menu, item.index) if not item.hidden else (len(cfg.root.items) + cfg.hidden.index(item),)
        else:
            if len(menu.entries) >= LIMITS.max_menu_entries:
                raise LimitExceeded(f"more than {LIMITS.max_menu_entries} syslinux labels")
            menu.entries.append(MenuEntry(_one_line(command), classes=("command",), run=lambda: booter.load(command)))
            path_ = (len(menu.entries) - 1,)
        if why != "DEFAULT":  # said when it is not the plain DEFAULT line
            cfg.warnings.append(f"default: {why}: {_one_line(command)!r}")
    elif start is not None:
        path_ = _path_to(start, _default_index(start))
    else:
        if not menu.entries:
            raise NotFound(f"({device}){path}: no DEFAULT, no UI and no LABEL: SYSLINUX has nothing to boot")
        path_ = (0,)
        cfg.warnings.append(f"default: {why}")
    menu.rule = SyslinuxDefault(path_)
    return menu


def _seconds(tenths: int) -> str | None:
    if tenths <= 0:
        return None
    whole, part = divmod(tenths, 10)
    return f"{whole}.{part}" if part else str(whole)


def _one_line(text: str) -> str:
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def evaluate(
    devices: DeviceMap, device: str, path: str, *, env: dict[str, str] | None = None, check_files: bool = True
) -> Menu:
    """The registry's common signature (``env`` is GRUB 2's; SYSLINUX has none)."""
    return parse_config(devices, device, path, check_files=check_files)
