"""ELF files (a vmlinux, Xen's pvboot, a bzImage's payload): class, machine, entry, notes.

Layout: the System V ABI, "ELF Header", "Program Header" and "Section Header" (the
generic ABI, 32- and 64-bit forms, either byte order); notes ("Note Section"): namesz,
descsz, type, then name and descriptor each padded to 4 bytes. Notes are read where Xen's
libelf looks for them (xen/common/libelf/libelf-dominfo.c, elf_xen_parse): the PT_NOTE
segments; when those hold no Xen note, the SHT_NOTE sections and the legacy
``__xen_guest`` section (a string "GUEST_OS=linux,XEN_VER=xen-3.0,…").

Everything is read through a ``stream.Reader``, in increasing offsets where possible
(a decompressed payload is read forward; the section headers, at the end, may cost one
more pass). Counts and sizes are bounded by LIMITS.max_elf_headers and
LIMITS.max_elf_note_bytes; headers that point outside the data are CorruptImage.
"""

from __future__ import annotations

import struct
from typing import Callable, NamedTuple

from ..errors import CorruptImage, LimitExceeded
from ..limits import LIMITS
from .stream import Reader

MAGIC = b"\x7fELF"
PT_NOTE = 4
SHT_NOTE = 7
MACHINES = {3: "i386", 62: "x86_64", 40: "arm", 183: "arm64", 243: "riscv", 8: "mips", 20: "ppc", 21: "ppc64"}

# (class, byte order) -> header layouts, field order as in the ABI
_EHDR = {  # e_type, e_machine, e_version, e_entry, e_phoff, e_shoff, e_flags, e_ehsize,
    # e_phentsize, e_phnum, e_shentsize, e_shnum, e_shstrndx (after the 16 ident bytes)
    (1, "<"): struct.Struct("<HHIIIIIHHHHHH"), (1, ">"): struct.Struct(">HHIIIIIHHHHHH"),
    (2, "<"): struct.Struct("<HHIQQQIHHHHHH"), (2, ">"): struct.Struct(">HHIQQQIHHHHHH"),
}
_PHDR = {  # 32: type, offset, vaddr, paddr, filesz, memsz, flags, align; 64: type, flags, offset, …
    1: "IIIIIIII", 2: "IIQQQQQQ",
}
_SHDR = {1: "IIIIIIIIII", 2: "IIQQQQIIQQ"}  # name, type, flags, addr, offset, size, link, info, align, entsize
_NOTE = {"<": struct.Struct("<III"), ">": struct.Struct(">III")}  # namesz, descsz, type


class Note(NamedTuple):
    owner: str
    type: int
    desc: bytes


class Segment(NamedTuple):
    offset: int
    size: int


class ElfInfo(NamedTuple):
    bits: int  # 32 or 64
    endian: str  # "<" little, ">" big
    machine: str  # "x86_64", "i386", … or "machine N"
    entry: int
    notes: tuple[Note, ...]  # from PT_NOTE segments (or SHT_NOTE sections when those hold no Xen note)
    xen_guest: str | None  # the legacy __xen_guest section's text
    note_source: str  # "segments", "sections" or ""


def _align4(value: int) -> int:
    return (value + 3) & ~3


def parse_notes(data: bytes, endian: str, *, what: str, base: int, end: int | None = None) -> list[Note]:
    """The notes that start in ``data[:end]`` (one note segment or section). ``data`` may
    run on past ``end``: like Xen's libelf, a note that starts inside the segment is read
    whole even where its descriptor runs past it (GRUB's Xen images end so)."""
    layout = _NOTE[endian]
    notes = []
    at = 0
    stop = len(data) if end is None else min(end, len(data))
    while at + layout.size <= stop:
        namesz, descsz, kind = layout.unpack_from(data, at)
        name_at = at + layout.size
        desc_at = name_at + _align4(namesz)
        if desc_at > len(data):
            raise CorruptImage(f"{what}: ELF note name of {namesz} bytes runs past the end of the file",
                               offset=base + at)
        owner = data[name_at : name_at + namesz].split(b"\0", 1)[0].decode("ascii", "backslashreplace")
        # a descriptor cut by the end of the file keeps what is there (readelf warns, libelf
        # reads what its bounds checks allow); nothing can follow it
        notes.append(Note(owner, kind, data[desc_at : desc_at + descsz]))
        at = desc_at + _align4(descsz)
    return notes


def is_elf(head: bytes) -> bool:
    return head[:4] == MAGIC


def parse(reader: Reader, *, what: str = "kernel", before_notes: Callable[[int | None], None] | None = None) -> ElfInfo:
    """Class, machine, entry and notes of the ELF file ``reader`` reads. ``before_notes``
    is called with the offset of the first note segment (None: there is none) once the
    program headers are read and before any note is: a caller that scans the data too
    (for a version string) can do it then, in the same forward pass over a stream."""
    ident = reader.pread(0, 64)
    if len(ident) < 52 or ident[:4] != MAGIC or ident[4] not in (1, 2) or ident[5] not in (1, 2):
        raise CorruptImage(f"{what}: not a valid ELF header", offset=0)
    bits = 32 * ident[4]
    endian = "<" if ident[5] == 1 else ">"
    layout = _EHDR[(ident[4], endian)]
    if len(ident) < 16 + layout.size:
        raise CorruptImage(f"{what}: ELF header cut short", offset=0)
    (_type, machine, _version, entry, phoff, shoff, _flags, _ehsize,
     phentsize, phnum, shentsize, shnum, shstrndx) = layout.unpack_from(ident, 16)
    phdr = struct.Struct(endian + _PHDR[ident[4]])
    shdr = struct.Struct(endian + _SHDR[ident[4]])
    budget = [LIMITS.max_elf_note_bytes]

    notes: list[Note] = []
    segments = _note_segments(reader, phoff, phnum, phentsize, phdr, bits, what)
    if before_notes is not None:
        before_notes(segments[0].offset if segments else None)
    for seg in segments:
        notes.extend(parse_notes(_read(reader, seg, budget, what, slack=True), endian, what=what,
                                 base=seg.offset, end=seg.size))
    source = "segments" if notes else ""
    xen_guest = None
    if not any(n.owner == "Xen" for n in notes) and shoff and shnum:
        section_notes, xen_guest = _from_sections(reader, shoff, shnum, shentsize, shstrndx, shdr, endian,
                                                  budget, what)
        if any(n.owner == "Xen" for n in section_notes):
            notes, source = section_notes, "sections"
    return ElfInfo(bits, endian, MACHINES.get(machine, f"machine {machine}"), entry, tuple(notes),
                   xen_guest, source)


def _headers(reader: Reader, offset: int, count: int, entsize: int, layout: struct.Struct,
             what: str, kind: str) -> list[tuple]:
    if count > LIMITS.max_elf_headers:
        raise LimitExceeded(f"{what}: {count} ELF {kind} headers (limit max_elf_headers)", offset=offset)
    if entsize < layout.size:
        raise CorruptImage(f"{what}: ELF {kind} header size {entsize} is less than {layout.size}", offset=offset)
    data = reader.pread(offset, count * entsize)
    if len(data) < count * entsize:
        raise CorruptImage(f"{what}: ELF {kind} headers run past the end of the file", offset=offset)
    return [layout.unpack_from(data, i * entsize) for i in range(count)]


def _note_segments(reader: Reader, phoff: int, phnum: int, phentsize: int, phdr: struct.Struct,
                   bits: int, what: str) -> list[Segment]:
    if not phoff or not phnum:
        return []
    out = []
    for row in _headers(reader, phoff, phnum, phentsize, phdr, what, "program"):
        if row[0] != PT_NOTE:
            continue
        offset, size = (row[1], row[4]) if bits == 32 else (row[2], row[5])
        out.append(Segment(offset, size))
    return sorted(out)


_NOTE_SLACK = 4096  # bytes read past a note segment for a last note that runs past it


def _read(reader: Reader, seg: Segment, budget: list[int], what: str, *, slack: bool = False) -> bytes:
    if seg.size > budget[0]:
        raise LimitExceeded(f"{what}: ELF notes larger than {LIMITS.max_elf_note_bytes} bytes"
                            " (limit max_elf_note_bytes)", offset=seg.offset)
    budget[0] -= seg.size
    data = reader.pread(seg.offset, seg.size + (_NOTE_SLACK if slack else 0))
    if len(data) < seg.size:
        raise CorruptImage(f"{what}: ELF segment of {seg.size} bytes runs past the end of the file",
                           offset=seg.offset)
    return data


def _from_sections(reader: Reader, shoff: int, shnum: int, shentsize: int, shstrndx: int,
                   shdr: struct.Struct, endian: str, budget: list[int], what: str) -> tuple[list[Note], str | None]:
    rows = _headers(reader, shoff, shnum, shentsize, shdr, what, "section")
    if shstrndx >= len(rows):
        return [], None
    names = _read(reader, Segment(rows[shstrndx][4], rows[shstrndx][5]), budget, what)
    notes: list[Note] = []
    xen_guest = None
    pieces = []
    for row in rows:
        name = names[row[0] : names.find(b"\0", row[0])] if row[0] < len(names) else b""
        if row[1] == SHT_NOTE:
            pieces.append((Segment(row[4], row[5]), "note"))
        elif name == b"__xen_guest":
            pieces.append((Segment(row[4], row[5]), "xen_guest"))
    for seg, kind in sorted(pieces):
        data = _read(reader, seg, budget, what, slack=kind == "note")
        if kind == "note":
            notes.extend(parse_notes(data, endian, what=what, base=seg.offset, end=seg.size))
        else:
            xen_guest = data.split(b"\0", 1)[0].decode("ascii", "backslashreplace")
    return notes, xen_guest
