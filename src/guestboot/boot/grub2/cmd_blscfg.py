"""Fedora's ``blscfg`` (and its old name ``bls_import``): GRUB menu entries made from Boot
Loader Specification files, as the Fedora/RHEL GRUB does it (rhboot/grub2, branch
fedora-44, grub-core/commands/blscfg.c). Only the "fedora" dialect has the command.

What it does, in the C file's order:

* ``bls_load_entries``: the entries directory is ``$blsdir`` or /loader/entries/ on
  ``$root``; when that directory cannot be listed, /boot/loader/entries/ (a /boot that
  is not its own partition). An argument ``(dev)/dir`` names the directory (no fallback),
  ``(dev)/dir/x.conf`` one file. Every name that does not start with "." and ends in
  ".conf" is read (a file that cannot be opened is skipped). The entries are kept in one
  list for the whole GRUB session, newest first by :func:`vercmp.nvr_cmp` on the file
  name without ".conf"; a file that compares equal to one already listed is dropped.
* ``read_entry``: line by line (carriage returns removed), leading blanks skipped, "#"
  lines skipped; the key ends at the first space (else the first tab); a line without a
  value -- an empty line too -- ends the file.
* ``create_entry``: an entry without ``linux`` is skipped. The menu entry's title is
  ``title`` (else the ``linux`` path, as written), its id the file name without
  ".conf", its extra arguments the ``grub_arg`` lines, its classes ``grub_class``, its
  users ``grub_users``; its body is the script ``load_video`` / ``set gfxpayload=keep`` /
  ``insmod gzio`` / ``linux ($root)LINUX OPTIONS`` / ``initrd ($root)I1 ($root)I2 …``
  (``$early_initrd`` files first, in the directory of the first initrd) / ``devicetree``,
  preceded by ``savedefault`` when ``$save_default`` is "true". Only the FIRST
  ``options`` line counts (``bls_get_val``), expanded now by ``expand_val``; without one,
  ``$default_kernelopts`` is. The body itself runs when the entry is chosen, so its
  ``$root`` (and what ``expand_val`` left) is expanded then.
* ``blscfg default`` / ``non-default`` / ``ID``: only the entries that are (not) the
  ``$default`` one (by id, title or number), or the one with that id; an entry is added
  to the menu at most once per session.
"""

from __future__ import annotations

import bisect
import functools

from ...errors import ConfigError, GuestbootError, LimitExceeded, NotFound
from ...fs import path as fspath
from ...fs.base import FileType
from ...limits import LIMITS
from ..budget import CHAR_LOOP_WORK, HELD_ITEM, WORK_ITEM, check_lines
from .. import grubnum
from ..vercmp import nvr_cmp
from . import errors as E
from . import files
from .errors import GrubError
from .interp import Interp, RawEntry
from .parser import Block
from .registry import command

DEFAULT_DIR = "/loader/entries/"
FALLBACK_DIR = "/boot/loader/entries/"
BOOT_DEVICE = "($root)"  # GRUB_BOOT_DEVICE outside grub-emu


class BlsFile:
    """One parsed entry file: its id (file name without .conf) and its key/value pairs
    in file order."""

    __slots__ = ("name", "pairs", "visible")

    def __init__(self, name: str, pairs: list[tuple[str, str]]) -> None:
        self.name = name
        self.pairs = pairs
        self.visible = False

    def first(self, key: str) -> str | None:
        for k, v in self.pairs:
            if k == key:
                return v
        return None

    def every(self, key: str) -> list[str]:
        return [v for k, v in self.pairs if k == key]


class BlsState:
    """What blscfg.c keeps in static variables for the GRUB session: the sorted entries
    (newest first) and the bytes read so far (LIMITS.max_entries_bytes)."""

    __slots__ = ("entries", "keys", "bytes_read")

    def __init__(self) -> None:
        self.entries: list[BlsFile] = []
        self.keys: list[object] = []  # sort keys of ``entries``, for bisect
        self.bytes_read = 0

    def add(self, entry: BlsFile) -> None:
        """bls_add_entry: before the first entry it is newer than; dropped when equal to
        one (the list is kept sorted, so a binary search finds the same place)."""
        key = _newest_first(entry.name)
        at = bisect.bisect_left(self.keys, key)
        if at < len(self.entries) and nvr_cmp(entry.name, self.entries[at].name) == 0:
            return
        self.entries.insert(at, entry)
        self.keys.insert(at, key)


_newest_first = functools.cmp_to_key(lambda a, b: -nvr_cmp(a, b))


def parse_entry(data: bytes, it: Interp | None = None, where: str = "") -> list[tuple[str, str]]:
    """read_entry's loop: the key/value pairs of an entry file, in order; with ``it``,
    its lines are charged to the evaluation's budget and its bytes held (kept until the
    session ends)."""
    text = data.decode("utf-8", "surrogateescape").replace("\r", "")
    if it is not None:
        check_lines(text, where)
        it.sh.budget.charge(len(text) + WORK_ITEM * (text.count("\n") + 1), where)
        it.sh.budget.hold(len(text) + HELD_ITEM, where)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # grub_file_getline returns nothing after the last newline
    pairs: list[tuple[str, str]] = []
    for raw in lines:
        line = raw.lstrip(" \t")
        if line.startswith("#"):
            continue
        sep = line.find(" ")
        if sep < 0:
            sep = line.find("\t")
        if sep < 0 or sep + 1 == len(line):
            break
        pairs.append((line[:sep], line[sep + 1 :].lstrip(" \t")))
    return pairs


def expand_val(it: Interp, value: str | None) -> str | None:
    """blscfg.c ``expand_val``, quirks included: ``$NAME`` (letters, digits, "_") becomes
    the variable's value and one space, the blank after a name is dropped, an unset
    variable gives nothing, and a piece of one character just before a ``$`` or at the
    very end is lost (the C code compares start and end pointers of an inclusive range)."""
    if value is None:
        return None
    it.sh.budget.charge(len(value) * CHAR_LOOP_WORK + WORK_ITEM, it.at)  # a loop over its characters
    out: list[str] = []
    size = 0
    allocated = False  # the C buffer: NULL until a piece (even an empty one) is added

    def append(is_var: bool, start: int, end: int) -> None:
        nonlocal size, allocated
        field = value[start : end + 1]
        if is_var:
            got = it.get(field) if field else None
            if got is None:
                return
            field = got + " "
        size += len(field)
        if size > LIMITS.max_word_bytes:
            raise LimitExceeded(f"blscfg: an expanded value is longer than {LIMITS.max_word_bytes} bytes (max_word_bytes)")
        out.append(field)
        allocated = True

    start = end = 0
    is_var = False
    for pos, ch in enumerate(value):
        if ch == "$" and value[end] != "\\":
            if start != end:
                append(is_var, start, end)
            is_var = True
            start = pos + 1
        elif is_var and not (ch.isascii() and ch.isalnum()) and ch != "_":
            append(True, start, end)
            is_var = False
            start = pos + 1 if ch == " " else pos
        end = pos
    if value and start != end:
        append(is_var, start, end)
    return "".join(out) if allocated else None  # NULL: as if the key were absent


def _strtol_matches(text: str, index: int) -> bool:
    """is_default_entry's number test: grub_strtol(def_entry, NULL, 0) == idx unless
    no digits were read (GRUB_ERR_BAD_NUMBER)."""
    negative = text.lstrip(" \t").startswith("-")
    body = text.lstrip(" \t")[1:] if negative else text
    parsed = grubnum.strtoul(body, maximum=grubnum.ULONG_MAX_64)
    if parsed.status == grubnum.BAD:
        return False
    value = -parsed.value if negative else parsed.value
    return value == index


def _is_default(def_entry: str | None, entry: BlsFile, index: int) -> bool:
    if def_entry is None:
        return False
    if def_entry == entry.name:
        return True
    title = entry.first("title")
    if title is not None and def_entry == title:
        return True
    return _strtol_matches(def_entry, index)


def _state(it: Interp) -> BlsState:
    if it.sh.bls is None:
        it.sh.bls = BlsState()
    return it.sh.bls


def _read(it: Interp, state: BlsState, name: str, path: str) -> None:
    """read_entry for one file (``path`` as GRUB opens it)."""
    try:
        data = files.read_file(it, path, LIMITS.max_config_bytes)
    except GrubError:
        return  # read_entry skips a file it cannot open
    state.bytes_read += len(data)
    if state.bytes_read > LIMITS.max_entries_bytes:
        raise LimitExceeded(f"blscfg: BLS entry files hold more than {LIMITS.max_entries_bytes} bytes (max_entries_bytes)")
    state.add(BlsFile(name, parse_entry(data, it, path)))


def _list(it: Interp, devid: str, directory: str) -> list[str] | None:
    """Names in ``directory`` on ``devid`` in the file system's order, or None when
    GRUB's fs_dir fails there."""
    _, fs = files.device(it, devid)
    try:
        node = fspath.resolve(fs, files.relative_root(it, fs) + directory) if directory else None
    except NotFound:
        return None
    except GuestbootError as exc:
        it.warn(f"blscfg: ({devid}){directory}: {exc}")
        return None
    if node is None or node.type is not FileType.DIR:
        return None
    names: list[str] = []
    for raw, _child in fs.readdir(node):
        name = raw.decode("utf-8", "surrogateescape")
        if name.startswith(".") or len(name) <= 5 or not name.endswith(".conf"):
            continue
        if len(names) >= LIMITS.max_config_files:
            raise LimitExceeded(f"blscfg: more than {LIMITS.max_config_files} entry files in ({devid}){directory}")
        names.append(name)
    return names


def load_entries(it: Interp, path: str | None) -> None:
    """bls_load_entries."""
    state = _state(it)
    devid: str | None = None
    blsdir: str | None = None
    if path is not None:
        if path.endswith(".conf"):
            base = path.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
            _read_single(it, state, path, base[:-5])
            return
        close = path.find(")")
        if close < 0:
            raise GrubError(E.BAD_ARGUMENT, "Filepath isn't correct")
        devid, blsdir = path[1:close], path[close + 1 :]
    if devid is None:
        devid = it.get("root")
        if devid is None:
            raise GrubError(E.FILE_NOT_FOUND, "variable `root' isn't set")
    files.device(it, devid)  # grub_device_open and grub_fs_probe: errors of the command
    directory = blsdir if blsdir is not None else (it.get("blsdir") or DEFAULT_DIR)
    names = _list(it, devid, directory)
    if names is None and blsdir is None:
        directory = FALLBACK_DIR
        names = _list(it, devid, directory)
    for name in names or []:
        _read(it, state, name[:-5], f"({devid}){directory}/{name}")


def _read_single(it: Interp, state: BlsState, path: str, name: str) -> None:
    data = files.read_file(it, path, LIMITS.max_config_bytes)  # a failure is the command's
    state.bytes_read += len(data)
    if state.bytes_read > LIMITS.max_entries_bytes:
        raise LimitExceeded(f"blscfg: BLS entry files hold more than {LIMITS.max_entries_bytes} bytes (max_entries_bytes)")
    state.add(BlsFile(name, parse_entry(data, it, path)))


def _entry_id(name: str) -> str:
    """create_entry's loop that strips ".conf": GRUB finds the first ".conf" again and
    again, so one that is not at the end makes it loop forever."""
    at = name.find(".conf")
    if at < 0:
        return name
    if at + 5 != len(name):
        raise ConfigError(f"blscfg: entry file name {name!r}.conf makes Fedora's GRUB loop forever (blscfg.c create_entry)")
    return name[:at]


def _initrd_prefix(first: str) -> str:
    slash = first.rfind("/")
    return first[: slash + 1] if slash >= 0 else first  # no "/": the C code copies it all


def create_entry(it: Interp, entry: BlsFile) -> None:
    """create_entry: one menu entry from one file."""
    clinux = entry.first("linux")
    if clinux is None:
        it.warn(f"blscfg: {entry.name}.conf has no 'linux' line and is skipped")
        return
    entry_id = _entry_id(entry.name)
    title = entry.first("title")
    options = expand_val(it, entry.first("options"))
    if options is None:
        options = expand_val(it, it.get("default_kernelopts"))
    initrds = entry.every("initrd")
    devicetree = expand_val(it, entry.first("devicetree"))
    dt_prefix = ""
    if devicetree is None:
        devicetree = expand_val(it, it.get("devicetree"))
        dt_prefix = _initrd_prefix(clinux)
    users = expand_val(it, entry.first("grub_users"))
    classes = tuple(entry.every("grub_class"))
    argv = [title if title is not None else clinux] + entry.every("grub_arg")
    if len(initrds) > LIMITS.max_initrds:
        raise LimitExceeded(f"blscfg: {entry.name}.conf has more than {LIMITS.max_initrds} initrd lines")

    early = it.get("early_initrd")
    initrd_line = ""
    if early is not None or initrds:
        words = ["initrd"]
        if early is not None:
            prefix = _initrd_prefix(initrds[0] if initrds else clinux)
            early_names = early.split(" ")
            if len(early_names) > LIMITS.max_initrds:
                raise LimitExceeded(f"blscfg: $early_initrd names more than {LIMITS.max_initrds} files")
            words += [f" {BOOT_DEVICE}{prefix}{name}" for name in early_names]
        words += [f" {BOOT_DEVICE}{name}" for name in initrds]
        initrd_line = "".join(words) + "\n"
    dt_line = f"devicetree {BOOT_DEVICE}{dt_prefix}{devicetree}\n" if devicetree is not None else ""
    savedefault = "savedefault\n" if it.get("save_default") == "true" else ""
    source = (
        f"{savedefault}load_video\nset gfxpayload=keep\ninsmod gzio\n"
        f"linux {BOOT_DEVICE}{clinux}{' ' + options if options is not None else ''}\n"
        f"{initrd_line}{dt_line}"
    )
    it.sh.entries += 1
    if it.sh.entries > LIMITS.max_menu_entries:
        raise LimitExceeded(f"more than {LIMITS.max_menu_entries} GRUB menu entries")
    it.sh.budget.hold(len(source) + sum(len(a) for a in argv) + HELD_ITEM, it.at)
    it.ctx.menu.append(
        RawEntry(title=argv[0], id=entry_id, classes=classes, users=users, unrestricted=False,
                 args=argv, source=source, submenu=False)
    )


@command("blscfg", "bls_import")
def cmd_blscfg(it: Interp, args: list[str], block: Block | None) -> int:
    path = entry_id = None
    show_default = show_non_default = True
    if len(args) == 1:
        if args[0] == "default":
            show_non_default = False
        elif args[0] == "non-default":
            show_default = False
        elif args[0].startswith("("):
            path = args[0]
        else:
            entry_id = args[0]
            show_default = show_non_default = False
    load_entries(it, path)
    def_entry = it.get("default")
    for index, entry in enumerate(_state(it).entries):
        if entry.visible:
            continue
        is_default = _is_default(def_entry, entry, index)
        if (show_default and is_default) or (show_non_default and not is_default) or entry_id == entry.name:
            create_entry(it, entry)
            entry.visible = True
    return 0
