"""What a kernel file is and what it can boot as, from its bytes alone.

``inspect(source)`` identifies the file (x86 bzImage, ELF vmlinux, a gzip/xz/zstd/…
compressed ELF or arm64 Image, an arm64 Image, a PE/UKI, a multiboot kernel), reads what
each format says (bzimage.py, elf.py, pe.py, multiboot.py), decompresses a bzImage's
payload as a stream to read the ELF notes of the vmlinux inside (stream.py, bounded by
LIMITS.max_kernel_decompressed), and gives a verdict per guest type:

- ``pv``: the PV guest type Xen's builder would make (xen.py), or None;
- ``pvh``: the PHYS32_ENTRY address, or None;
- ``hvm``: an HVM/QEMU direct kernel boot can load it (QEMU's -kernel takes a bzImage, an
  ELF with a PVH entry, a multiboot v1 kernel; on arm64 an Image).

The result is plain data (``KernelFacts.data()``), ready for JSON.
"""

from __future__ import annotations

from typing import Any

from ..source import ByteSource
from . import bzimage, elf, multiboot, pe, stream, xen

HEAD = 64 * 1024  # bytes looked at to identify a file (covers the multiboot2 search area)
BANNER = b"Linux version "
_BANNER_MAX = 512
GUEST_TYPES = ("pv", "pvh", "hvm")


class KernelFacts:
    """What inspection found out about one kernel file (a plain class: dataclasses pulls
    inspect, ast and dis into every run, since the sandbox loads every module up front)."""

    __slots__ = ("format", "compressed", "arch", "version", "details", "pv", "pvh", "hvm")

    def __init__(self) -> None:
        self.format = "unknown"  # bzImage, elf, arm64-image, pe, uki, unknown
        self.compressed: str | None = None  # the codec of the whole file (a vmlinux.gz, xen.gz, arm64 vmlinuz)
        self.arch: str | None = None
        self.version = ""
        self.details: dict[str, Any] = {}
        self.pv: str | None = None
        self.pvh: int | None = None
        self.hvm = False

    @property
    def release(self) -> str:
        return self.version.split()[0] if self.version else ""

    def supports(self) -> list[str]:
        return [kind for kind, ok in (("pv", self.pv), ("pvh", self.pvh is not None), ("hvm", self.hvm)) if ok]

    def can_boot(self, guest_type: str) -> bool:
        return guest_type == "any" or guest_type in self.supports()

    def summary(self) -> str:
        """One line: "bzImage 6.1.0-18-amd64 (xz payload): PV, PVH, HVM"."""
        what = self.format + (f" ({self.compressed})" if self.compressed else "")
        codec = self.details.get("payload", {}).get("codec")
        if codec:
            what += f" ({codec} payload)"
        release = f" {self.release}" if self.release else ""
        supports = ", ".join(s.upper() for s in self.supports()) or "none of PV, PVH, HVM"
        return f"{what}{release}: {supports}"

    def data(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "compressed": self.compressed,
            "arch": self.arch,
            "version": self.version,
            "release": self.release,
            "supports": self.supports(),
            "pv": self.pv,
            "pvh_entry": self.pvh,
            "hvm": self.hvm,
            **self.details,
        }


def inspect(source: ByteSource, *, what: str | None = None) -> KernelFacts:
    what = what or source.name
    head = source.pread(0, min(source.size, HEAD))
    facts = KernelFacts()
    if bzimage.is_bzimage(head):
        _bzimage(source, head, facts, what)
    elif elf.is_elf(head):
        _elf(stream.Reader(source, what=what), facts, what, scan_version=True)
    elif stream.codec_of(head) is not None:
        codec = stream.codec_of(head)
        facts.compressed = codec
        reader = stream.Reader(source, codec=codec, what=what)
        _inner(reader, facts, what)
    elif pe.parse_arm64(head) is not None:
        _arm64(stream.Reader(source, what=what), head, facts, what)
    else:
        info = pe.parse_pe(head)
        if info is not None:
            facts.format = "uki" if info.is_uki else "pe"
            facts.arch = info.machine
            facts.details["pe"] = {"machine": info.machine, "sections": info.sections}
    _multiboot(head if facts.compressed is None else None, facts)
    return facts


def _inner(reader: stream.Reader, facts: KernelFacts, what: str) -> None:
    """A compressed file: what is inside (an ELF, an arm64 Image)."""
    head = reader.pread(0, HEAD)
    facts.details["multiboot"] = [m._asdict() for m in multiboot.find(head)]
    if elf.is_elf(head):
        _elf(reader, facts, what, scan_version=True)
    elif pe.parse_arm64(head) is not None:
        _arm64(reader, head, facts, what)
    if facts.details["multiboot"] and not facts.hvm:
        facts.hvm = any(m["version"] == 1 for m in facts.details["multiboot"])
    facts.details["decompressed_size"] = reader.size


def _multiboot(head: bytes | None, facts: KernelFacts) -> None:
    if head is None:
        return
    found = multiboot.find(head)
    facts.details["multiboot"] = [m._asdict() for m in found]
    if any(m.version == 1 for m in found):  # QEMU's -kernel loads multiboot v1 kernels
        facts.hvm = True


def _bzimage(source: ByteSource, head: bytes, facts: KernelFacts, what: str) -> None:
    header = bzimage.parse(source, head)
    facts.format = "bzImage"
    facts.version = header.version
    facts.hvm = True  # QEMU's -kernel, hvmloader, any x86 boot-protocol loader
    facts.arch = "x86_64" if header.xloadflags & 0x1 else "i386"
    details: dict[str, Any] = {
        "protocol": header.protocol_text,
        "loadflags": bzimage.flag_names(header.loadflags, bzimage.LOADFLAGS),
        "xloadflags": bzimage.flag_names(header.xloadflags, bzimage.XLOADFLAGS),
        "efi_stub": pe.parse_pe(head) is not None,
    }
    facts.details.update(details)
    if not header.payload_length or header.payload_offset + header.payload_length > source.size:
        facts.details["payload"] = {"offset": header.payload_offset, "length": header.payload_length,
                                    "codec": None}
        return
    codec_head = source.pread(header.payload_offset, min(16, header.payload_length))
    codec = stream.codec_of(codec_head)
    payload: dict[str, Any] = {"offset": header.payload_offset, "length": header.payload_length, "codec": codec}
    facts.details["payload"] = payload
    if codec is None:
        if elf.is_elf(codec_head):  # CONFIG_KERNEL_UNCOMPRESSED
            payload["codec"] = "none"
            reader = stream.Reader(source, offset=header.payload_offset, length=header.payload_length,
                                   what=f"{what} payload")
            _elf(reader, facts, what, scan_version=False, keep_arch=True)
        return
    reader = stream.Reader(source, codec=codec, offset=header.payload_offset, length=header.payload_length,
                           what=f"{what} payload")
    if elf.is_elf(reader.pread(0, 4)):
        _elf(reader, facts, what, scan_version=False, keep_arch=True)


def _elf(reader: stream.Reader, facts: KernelFacts, what: str, *, scan_version: bool,
         keep_arch: bool = False) -> None:
    found: dict[str, str] = {}

    def scan(first_note: int | None) -> None:  # the banner (in .rodata) usually precedes the notes
        found["version"] = banner(reader, end=first_note)

    want_version = scan_version and not facts.version
    info = elf.parse(reader, what=what, before_notes=scan if want_version else None)
    if want_version:
        facts.version = found.get("version") or banner(reader, start=_notes_end(reader))
    notes = xen.read_notes(info.notes, info.xen_guest, info.endian, info.bits)
    if facts.format == "unknown":
        facts.format = "elf"
    if not keep_arch or facts.arch is None:
        facts.arch = info.machine
    facts.details["elf"] = {"bits": info.bits, "machine": info.machine, "entry": info.entry,
                            "notes_from": info.note_source or None}
    facts.details["xen_notes"] = notes.values
    if notes.legacy:
        facts.details["xen_guest"] = notes.legacy
    facts.pv = xen.pv_type(notes, info.bits, info.machine)
    facts.pvh = xen.pvh_entry(notes) if info.machine in ("x86_64", "i386") else None
    if facts.pvh is not None:
        facts.hvm = True  # QEMU (>= 4.0) loads an ELF with a PVH entry through -kernel


def _arm64(reader: stream.Reader, head: bytes, facts: KernelFacts, what: str) -> None:
    image = pe.parse_arm64(head)
    assert image is not None
    facts.format = "arm64-image"
    facts.arch = "arm64"
    facts.hvm = True  # QEMU's -kernel on an arm64 machine; Xen on arm boots it too
    facts.details["arm64"] = image._asdict()
    facts.details["efi_stub"] = pe.parse_pe(head) is not None
    facts.version = banner(reader)


def _notes_end(reader: stream.Reader) -> int:
    """Where a banner scan goes on after the notes: the reader's position (forward only)."""
    return reader.position()


def banner(reader: stream.Reader, start: int = 0, end: int | None = None) -> str:
    """The version after Linux's "Linux version " banner (init/version.c) between
    ``start`` and ``end``, or ""."""
    at = start
    while True:
        at = reader.find(BANNER, at, end)
        if at < 0:
            return ""
        text = reader.pread(at + len(BANNER), _BANNER_MAX).split(b"\0", 1)[0].split(b"\n", 1)[0]
        if text[:1].isdigit():
            return text.decode("ascii", "replace")
        at += len(BANNER)
