"""Guest files as GRUB 2's commands reach them: a name ``(device)/path`` or a path on
``$root`` resolved through the DeviceMap, with grub_file_open's errors (GrubError), for
the loaders, ``source``/``configfile``, ``load_env``, ``search --file`` and ``test``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...errors import GuestbootError, NotFound
from ...fs import path as fspath
from ...fs.base import FileSystem, FileType, Node
from ..grubpath import MissingParen, normalise, split_device, split_device_leniently
from ..model import FileRef
from . import errors as E
from .errors import GrubError

if TYPE_CHECKING:
    from .interp import Interp


def split_path(it: Interp, text: str) -> tuple[str, str]:
    """(device as written or $root, path) for a GRUB file name."""
    try:
        device, path = split_device(text)
    except MissingParen as exc:
        raise GrubError(E.BAD_FILENAME, str(exc)) from None
    if device is not None:
        return device, path
    root = it.get("root")
    if not root:
        raise GrubError(E.UNKNOWN_DEVICE, "no device is set ($root is empty)")
    return root, text


def device(it: Interp, name: str) -> tuple[str, FileSystem]:
    """(canonical name, file system) of a device as GRUB names it."""
    canonical = it.sh.devices.canonical(name)
    if canonical is None:
        raise GrubError(E.UNKNOWN_DEVICE, f"disk `{name}' not found")
    fs = it.sh.devices.get(canonical).fs
    if fs is None:
        raise GrubError(E.UNKNOWN_FS, f"unknown filesystem on ({canonical})")
    return canonical, fs


def relative_root(it: Interp, fs: FileSystem) -> str:
    """What GRUB puts before a path on ``fs``: the default subvolume's path when this
    GRUB honours $btrfs_relative_path and it is set ("y…" or "1…", dialect.py), else ""."""
    if not it.sh.dialect.btrfs_relative_path or (it.get("btrfs_relative_path") or "")[:1] not in ("y", "1"):
        return ""
    try:
        top = fs.default_root_path()
    except GuestbootError as exc:
        raise GrubError(E.BAD_FS, f"default subvolume: {exc}") from None
    return "" if top is None else top.rstrip("/")


def open_ref(it: Interp, text: str) -> tuple[FileRef, Node, FileSystem]:
    """A regular file named the GRUB way; GrubError as grub_file_open fails. The
    FileRef's path is the one on the file system (from its top)."""
    dev, path = split_path(it, text)
    canonical, fs = device(it, dev)
    if not path.startswith("/"):
        raise GrubError(E.BAD_FILENAME, f"invalid file name `{text}'")
    path = relative_root(it, fs) + path
    try:
        node = fspath.resolve(fs, path)
    except NotFound:
        raise GrubError(E.FILE_NOT_FOUND, f"file `{text}' not found") from None
    except GuestbootError as exc:
        raise GrubError(E.BAD_FS, f"{text}: {exc}") from None
    if node.type is not FileType.REG:
        raise GrubError(E.BAD_FILE_TYPE, f"`{text}' is not a regular file")
    return FileRef(canonical, normalise(path), text), node, fs


def loader_ref(it: Interp, text: str) -> FileRef:
    """The file a loader command names: opened as GRUB does, or, when the config is
    evaluated on its own (``check_files`` off), only named."""
    if it.sh.check_files:
        return open_ref(it, text)[0]
    dev, path = split_path(it, text)
    if not path.startswith("/"):
        raise GrubError(E.BAD_FILENAME, f"invalid file name `{text}'")
    return FileRef(it.sh.devices.canonical(dev) or dev, normalise(path), text)


def read_file(it: Interp, text: str, limit: int) -> bytes:
    """A whole small file (a config, an environment block), at most ``limit`` bytes."""
    ref, node, fs = open_ref(it, text)
    if node.size > limit:  # refused: the command fails, the script goes on
        raise GrubError(E.OUT_OF_RANGE, f"{ref}: {node.size} bytes, more than the {limit} guestboot reads")
    try:
        return fs.open(node).pread(0, node.size)
    except GuestbootError as exc:
        raise GrubError(E.FILE_READ_ERROR, f"{text}: {exc}") from None


def file_info(it: Interp, text: str) -> Node | None:
    """test's get_fileinfo: the directory entry of the last component (not followed
    when it is a symlink) or None; a device alone is its root directory."""
    dev, path = split_device_leniently(text)
    if dev is None:
        dev = it.get("root") or ""
    try:
        _, fs = device(it, dev)
        top = relative_root(it, fs)
    except GrubError:
        return None
    path = path.rstrip("/")
    try:
        if not path:
            return fspath.resolve(fs, top) if top else fs.root()
        slash = path.rfind("/")
        parent, name = (path[: slash + 1], path[slash + 1 :]) if slash >= 0 else ("/", path)
        if not parent.startswith("/"):
            return None  # GRUB's file systems only list absolute directories
        directory = fspath.resolve(fs, top + parent)
        if directory.type is not FileType.DIR:
            return None
        return fs.lookup(directory, name.encode("utf-8", "surrogateescape"))
    except GuestbootError:
        return None
