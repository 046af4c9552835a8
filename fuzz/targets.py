"""Fuzz targets: one per parser entry point.

A target's contract: any input ends in a clean return or a GuestbootError subclass.
Anything else (another exception, more than 5 s, more than 256 MiB) is a finding.

Two kinds of input:
- ``image`` targets read a ByteSource: a real seed image (fuzz/seeds.py) with a Mutation
  applied (fuzz/mutate.py). Their ``tags`` name the seeds they start from.
- ``text`` targets read bytes: a boot config, a grubenv block. Their seeds are real configs
  (fuzz/seeds.config_seeds), mutated as bytes.

Every target also exercises what a caller does with a success (walks the file system it
probed and reads its files, evaluates and chooses an entry, reads the disk an image format
holds), with bounds of its own so one input stays small.
"""

from __future__ import annotations

import importlib
import re
from typing import Callable, NamedTuple

from guestboot.errors import GuestbootError
from guestboot.source import ByteSource

MAX_DIRS = 64  # directories one fs target lists
MAX_FILES = 64  # files one fs target reads
READ_BYTES = 256 * 1024  # bytes read from each file
KERNEL = "/boot/vmlinuz-6.1.0-13-amd64"
INITRD = "/boot/initrd.img-6.1.0-13-amd64"


class Target(NamedTuple):
    name: str
    kind: str  # "image" or "text"
    tags: frozenset[str]  # image seeds it starts from (seeds.Seed.tags), or the config format of its text seeds
    run: Callable[[object], object]


# --- image formats ---------------------------------------------------------------------


def _read_disk(disk: ByteSource) -> None:
    """Read what a caller reads: the first MiB, a few places across the disk, its runs."""
    size = disk.size
    disk.pread(0, min(size, 1 << 20))
    for k in range(1, 8):
        at = size * k // 8
        disk.pread(at, min(65536, size - at))
    for _i, _run in zip(range(256), disk.runs(0, min(size, 4 << 20))):
        pass


def _format(module: str) -> Callable[[ByteSource], None]:
    def run(source: ByteSource) -> None:
        from guestboot.source.opener import REFUSE

        reader = importlib.import_module(module)
        if reader.detect(source):
            _read_disk(reader.open(source, REFUSE))
    return run


def _detect_and_scan(source: ByteSource) -> None:
    """Raw detection (source.formats), then the disk's volumes: what image.open_disks does first."""
    from guestboot.source.formats import open_format
    from guestboot.volume import scan_with_warnings

    disk = open_format(source)
    scan_with_warnings(disk)


# --- partition tables and volumes ------------------------------------------------------


def _table(module: str, function: str = "read_table") -> Callable[[ByteSource], None]:
    def run(source: ByteSource) -> None:
        reader = getattr(importlib.import_module(module), function)
        for volume in reader(source, []) or ():
            volume.source.pread(0, min(volume.source.size, 4096))
    return run


def _scan(source: ByteSource) -> None:
    from guestboot.volume import scan_with_warnings

    volumes, _warnings = scan_with_warnings(source)
    for volume in volumes:
        volume.source.pread(0, min(volume.source.size, 4096))


def _stack(names: tuple[str, ...]) -> Callable[[ByteSource], None]:
    def run(source: ByteSource) -> None:
        from guestboot.volume import STACKS
        from guestboot.volume.stack import discover

        found = discover([("hd0", source)], [s for s in STACKS if s[0] in names])
        for volume in found.volumes:
            size = volume.source.size
            volume.source.pread(0, min(size, 4096))
            volume.source.pread(max(0, size - 4096), min(size, 4096))
    return run


# --- file systems ----------------------------------------------------------------------


def walk(fs) -> int:
    """List the tree breadth first and read its files and symlinks, within the module's
    bounds; the number of bytes read (what a caller of the driver would see)."""
    from guestboot.fs.base import FileType
    from guestboot.fs.path import exists

    seen = 0
    dirs, files = [fs.root()], 0
    listed = 0
    while dirs and listed < MAX_DIRS:
        directory = dirs.pop(0)
        listed += 1
        for _name, node in fs.readdir(directory):
            if node.type is FileType.DIR:
                dirs.append(node)
            elif node.type is FileType.LNK:
                fs.readlink(node)
            elif node.type is FileType.REG and files < MAX_FILES:
                files += 1
                data = fs.open(node)
                seen += len(data.pread(0, min(data.size, READ_BYTES)))
                if data.size > READ_BYTES:
                    seen += len(data.pread(data.size - 4096, 4096))
    for path in ("/boot/vmlinuz", "/deep/a/up/grub/grub.cfg", "/deep/a/b/c/file.txt"):
        exists(fs, path)
    fs.default_root_path()
    return seen


def _filesystem(module: str | None) -> Callable[[ByteSource], None]:
    def run(source: ByteSource) -> None:
        if module is None:
            from guestboot.fs import probe

            fs = probe(source)
        else:
            fs = importlib.import_module(module).probe(source)
        if fs is not None:
            walk(fs)
    return run


# --- kernels ---------------------------------------------------------------------------


def _kernel(source: ByteSource) -> None:
    from guestboot.kernel.inspect import inspect
    from guestboot.kernel.stream import Budget, active
    from guestboot.kernels import kind_of

    with active(Budget(64 << 20, "fuzz")):
        kind_of(source)
        inspect(source).data()


def _initrd(source: ByteSource) -> None:
    from guestboot.kernel.initrd import inspect_initrd

    inspect_initrd(source)


# --- configs ---------------------------------------------------------------------------

CONFIG_PATHS = {
    "grub2": "/boot/grub/grub.cfg",
    "grub-legacy": "/boot/grub/menu.lst",
    "syslinux": "/boot/extlinux/extlinux.conf",
    "systemd-boot": "/loader/entries/fuzz.conf",
}


_NAMED = re.compile(rb"(?<![^\s=(),])/[A-Za-z0-9_./+-]{1,200}")  # absolute paths in a config's text
MAX_NAMED = 32


def _config(fmt: str) -> Callable[[bytes], None]:
    def run(text: bytes) -> None:
        from guestboot.boot.discover import evaluate_config
        from guestboot.devices import DeviceMap
        from guestboot.select import boot

        from .memfs import MemFileSystem

        path = CONFIG_PATHS[fmt]
        files = {path: text, KERNEL: b"kernel", INITRD: b"initrd",
                 "/boot/grub/grubenv": b"# GRUB Environment Block\nsaved_entry=0\n".ljust(1024, b"#")}
        # the files the config names exist (a few), so that its entries are evaluated to the end
        for named in _NAMED.findall(text[:65536])[:MAX_NAMED]:
            files.setdefault(named.decode("latin-1"), b"named file")
        devices = DeviceMap.of({"hd0": MemFileSystem(files)})
        where = "/loader/entries" if fmt == "systemd-boot" else path
        # half the inputs check that the files an entry names exist (the image case), half
        # take the paths as written (pygrub's --isconfig)
        menu = evaluate_config(devices, "hd0", where, fmt, check_files=len(text) % 2 == 0)
        boot(menu, None)
    return run


def _grubenv(text: bytes) -> None:
    from guestboot.boot.grubenv import parse

    parse(text)


# --- the registry ----------------------------------------------------------------------

def _image(name: str, tags: str, run: Callable[[ByteSource], None]) -> Target:
    return Target(name, "image", frozenset(tags.split()), run)


FS_MODULES = ("ext", "xfs", "btrfs", "squashfs", "iso9660", "exfat", "fat")

TARGETS: tuple[Target, ...] = (
    _image("format.qcow2", "image", _format("guestboot.source.qcow2")),
    _image("format.vmdk", "image", _format("guestboot.source.vmdk")),
    _image("format.vhdx", "image", _format("guestboot.source.vhdx")),
    _image("format.vhd", "image", _format("guestboot.source.vhd")),
    _image("format.detect", "image table", _detect_and_scan),
    _image("table.gpt", "table", _table("guestboot.volume.gpt")),
    _image("table.mbr", "table", _table("guestboot.volume.mbr")),
    _image("table.sun", "table", _table("guestboot.volume.sunlabel")),
    _image("table.sunpc", "table", _table("guestboot.volume.sunlabel", "read_vtoc_table")),
    _image("table.bsd", "table", _table("guestboot.volume.bsd")),
    _image("table.scan", "table lvm", _scan),
    _image("volume.lvm", "lvm", _stack(("lvm",))),
    _image("volume.md", "md lvm table", _stack(("md",))),
    *(_image(f"fs.{name}", f"fs.{name}", _filesystem(f"guestboot.fs.{name}")) for name in FS_MODULES),
    _image("fs.probe", "fs", _filesystem(None)),
    _image("kernel.inspect", "kernel", _kernel),
    _image("kernel.initrd", "initrd", _initrd),
    *(Target(f"config.{fmt}", "text", frozenset({fmt}), _config(fmt)) for fmt in CONFIG_PATHS),
    Target("config.grubenv", "text", frozenset({"grubenv"}), _grubenv),
)

BY_NAME = {target.name: target for target in TARGETS}


def call(target: Target, data: object) -> str | None:
    """Run ``target`` on ``data``: None when it kept its contract (a result or a typed
    error), else the exception propagates (a finding)."""
    try:
        target.run(data)
    except GuestbootError as err:
        return type(err).__name__
    return None
