"""The kernels of a guest: those its menu entries boot and those lying in /boot, each
inspected once (kernel/inspect.py), with the initrds beside them (kernel/initrd.py).

Files in /boot (and /, /boot/xen, /xen: a separate /boot partition has them at its root;
Xen's PV/PVH bootloaders live in xen/) are recognised by content, not by name: a bzImage,
an ELF, an arm64 Image, a PE, or a compressed file holding an ELF or an Image is a
kernel; a cpio archive, compressed or not, is an initrd. At most
LIMITS.max_inspected_files files are looked at. A file that cannot be read or inspected
is reported with its one-line error; the survey goes on.
"""

from __future__ import annotations

from typing import Any, Iterator

from .boot.model import FileRef
from .devices import DeviceMap
from .errors import GuestbootError, LimitExceeded
from .limits import LIMITS
from .source import ByteSource

DIRECTORIES = ("/boot", "/", "/boot/xen", "/xen")
_HEAD = 64 * 1024


class Inspector:
    """Facts per guest file, computed once per run (several entries boot one kernel)."""

    def __init__(self, devices: DeviceMap):
        from .kernel.stream import Budget

        self.devices = devices
        self.cache: dict[tuple[str, str], dict[str, Any]] = {}
        self.budget = Budget(LIMITS.max_inspect_decompressed, "max_inspect_decompressed")

    def _count(self) -> None:
        if len(self.cache) >= LIMITS.max_inspected_files:
            raise LimitExceeded(f"more than {LIMITS.max_inspected_files} files to inspect"
                                " (limit max_inspected_files)")

    def kernel(self, ref: FileRef) -> dict[str, Any]:
        key = ("kernel", str(ref), ref.section)
        if key not in self.cache:
            self._count()
            self.cache[key] = self.guarded(lambda: _kernel_data(open_ref(self.devices, ref), ref))
        return self.cache[key]

    def initrd(self, ref: FileRef) -> dict[str, Any]:
        key = ("initrd", str(ref), ref.section)
        if key not in self.cache:
            self._count()
            self.cache[key] = self.guarded(lambda: _initrd_data(open_ref(self.devices, ref), ref))
        return self.cache[key]

    def module(self, ref: FileRef) -> dict[str, Any]:
        """A multiboot module: inspected as a kernel or as an initrd, by its content."""
        kind = self.guarded(lambda: kind_of(open_ref(self.devices, ref)))
        if kind == "kernel":
            return {"kind": "kernel", **self.kernel(ref)}
        if kind == "initrd":
            return {"kind": "initrd", **self.initrd(ref)}
        return {"kind": None, **(kind if isinstance(kind, dict) else {})}

    def guarded(self, work) -> Any:
        """``work()`` with its decompression charged to this run's budget; a failure is
        {"error": one line}."""
        from .kernel.stream import active

        try:
            with active(self.budget):
                return work()
        except GuestbootError as err:
            return {"error": str(err)}


def open_ref(devices: DeviceMap, ref: FileRef) -> ByteSource:
    """The bytes ``ref`` means: its file, or the window ``ref.section`` of it (a UKI's
    .linux or .initrd; no copy, the window maps onto the file's own runs)."""
    from .source.base import SliceSource

    source = devices.open(ref.device, ref.path)
    if ref.section is None:
        return source
    start, size = ref.section
    return SliceSource(source, start, size, f"({ref.device}){ref.path}[{start:#x}+{size:#x}]")


def _kernel_data(source: ByteSource, ref: FileRef) -> dict[str, Any]:
    from .kernel.inspect import inspect

    facts = inspect(source, what=str(ref))
    return {"summary": facts.summary(), **facts.data()}


def _initrd_data(source: ByteSource, ref: FileRef) -> dict[str, Any]:
    from .kernel.initrd import inspect_initrd

    return inspect_initrd(source)


def kind_of(source: ByteSource) -> str | None:
    """"kernel", "initrd" or None, from the file's first bytes (decompressed when the file
    is compressed)."""
    from .kernel import bzimage, elf, pe, stream
    from .kernel.initrd import CPIO_MAGICS

    head = source.pread(0, min(source.size, _HEAD))
    if head[:6] in CPIO_MAGICS:
        return "initrd"
    if bzimage.is_bzimage(head) or elf.is_elf(head) or pe.parse_arm64(head) or pe.parse_pe(head):
        return "kernel"
    codec = stream.codec_of(head)
    if codec is None:
        return None
    inner = stream.Reader(source, codec=codec, what=source.name).pread(0, 64)
    if inner[:6] in CPIO_MAGICS:
        return "initrd"
    if elf.is_elf(inner) or pe.parse_arm64(inner):
        return "kernel"
    return None


def boot_files(devices: DeviceMap, inspector: Inspector) -> Iterator[tuple[str, FileRef]]:
    """(kind, file) for each kernel or initrd in the directories of every file system."""
    from .fs.base import FileType
    from .fs.path import exists, listdir, open_file

    seen = 0
    for name, fs in devices.filesystems():
        for directory in DIRECTORIES:
            node = exists(fs, directory)
            if node is None or node.type is not FileType.DIR:
                continue
            try:
                listing = sorted(listdir(fs, directory), key=lambda item: item[0])
            except GuestbootError:
                continue
            for raw, child in listing:
                if child.type is not FileType.REG or child.size == 0:
                    continue
                seen += 1
                if seen > LIMITS.max_inspected_files:
                    raise LimitExceeded(f"more than {LIMITS.max_inspected_files} files to look at"
                                        " (limit max_inspected_files)")
                path = directory.rstrip("/") + "/" + raw.decode("utf-8", "surrogateescape")
                kind = inspector.guarded(lambda: kind_of(open_file(fs, path)))
                if not isinstance(kind, str):
                    continue
                if kind is not None:
                    yield kind, FileRef(name, path, path)


def survey(devices: DeviceMap, inspector: Inspector) -> dict[str, list[dict[str, Any]]]:
    """Every kernel and initrd found in the boot directories, inspected."""
    kernels, initrds = [], []
    for kind, ref in boot_files(devices, inspector):
        if kind == "kernel":
            kernels.append({"file": str(ref), **inspector.kernel(ref)})
        else:
            initrds.append({"file": str(ref), **inspector.initrd(ref)})
    return {"kernels": kernels, "initrds": initrds}
