"""Xen's ELF notes, and what they let a kernel boot as: PV (32/64-bit) or PVH.

The note numbers and value types are those of Xen's public header
xen/include/public/elfnote.h (XEN_ELFNOTE_INFO 0 … XEN_ELFNOTE_PHYS32_RELOC 19); the
rules are those of Xen's domain builder, which is the truth of what boots:

- PV (libelf-dominfo.c, elf_xen_note_check): Xen notes or a legacy ``__xen_guest``
  section; LOADER "generic" or GUEST_OS "linux"; XEN_VERSION "xen-3.0". The guest type
  follows the class and PAE_MODE (xg_dom_elfloader.c: "xen-3.0-x86_64", "xen-3.0-x86_32p"
  for PAE "yes"/"bimodal"/"extended-cr3", else "xen-3.0-x86_32"). Linux writes the same
  GUEST_OS/XEN_VERSION notes in every kernel built with CONFIG_XEN, but the ENTRY note only
  with CONFIG_XEN_PV; without an entry point the PV builder would jump to the ELF entry,
  which is not a PV entry point, so a PV verdict also needs ENTRY (or __xen_guest's
  VIRT_BASE, the legacy layout).
- PVH (the PVH ABI, docs/misc/pvh.pandoc; xg_dom_elfloader.c refuses a PVH guest
  without it): a PHYS32_ENTRY note, the 32-bit physical entry point.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from .elf import Note

NOTE_NAMES = (
    "INFO", "ENTRY", "HYPERCALL_PAGE", "VIRT_BASE", "PADDR_OFFSET", "XEN_VERSION", "GUEST_OS",
    "GUEST_VERSION", "LOADER", "PAE_MODE", "FEATURES", "BSD_SYMTAB", "HV_START_LOW",
    "L1_MFN_VALID", "SUSPEND_CANCEL", "INIT_P2M", "MOD_START_PFN", "SUPPORTED_FEATURES",
    "PHYS32_ENTRY", "PHYS32_RELOC",
)
PHYS32_ENTRY = 18
_STRINGS = {0, 5, 6, 7, 8, 9, 10, 11}  # INFO, XEN_VERSION, GUEST_OS, GUEST_VERSION, LOADER, PAE_MODE, FEATURES, BSD_SYMTAB
_LISTS = {13: None, 19: 4}  # L1_MFN_VALID: (mask, value) of the word size; PHYS32_RELOC: u32 align, min, max
_PAE_MODES = ("yes", "bimodal", "extended-cr3")
_INTS = {1: "B", 2: "H", 4: "I", 8: "Q"}


class XenNotes(NamedTuple):
    values: dict[str, object]  # note name -> str | int | list[int] | hex text
    legacy: dict[str, str]  # __xen_guest's KEY=VALUE pairs


def note_name(kind: int) -> str:
    return NOTE_NAMES[kind] if 0 <= kind < len(NOTE_NAMES) else f"type {kind}"


def _value(note: Note, endian: str, bits: int) -> object:
    desc = note.desc
    if note.type in _STRINGS:
        return desc.split(b"\0", 1)[0].decode("ascii", "backslashreplace")
    if note.type in _LISTS:
        size = _LISTS[note.type] or bits // 8
        count = len(desc) // size
        if count and size in _INTS:
            return list(struct.unpack_from(f"{endian}{count}{_INTS[size]}", desc))
        return desc.hex()
    if len(desc) in _INTS:
        return struct.unpack(endian + _INTS[len(desc)], desc)[0]
    return desc.hex()


def read_notes(notes: tuple[Note, ...], xen_guest: str | None, endian: str, bits: int) -> XenNotes:
    values: dict[str, object] = {}
    for note in notes:
        if note.owner == "Xen":
            values[note_name(note.type)] = _value(note, endian, bits)
    legacy: dict[str, str] = {}
    for item in (xen_guest or "").split(","):
        key, sep, value = item.partition("=")
        if key.strip():
            legacy[key.strip()] = value.strip() if sep else ""
    return XenNotes(values, legacy)


def pv_type(xen: XenNotes, bits: int, machine: str) -> str | None:
    """The PV guest type libxc would build ("xen-3.0-x86_64" …), or None: not a PV kernel."""
    if machine not in ("x86_64", "i386"):
        return None
    values, legacy = xen.values, xen.legacy
    if values:
        loader, guest_os = str(values.get("LOADER", "")), str(values.get("GUEST_OS", ""))
        xen_version, pae = str(values.get("XEN_VERSION", "")), str(values.get("PAE_MODE", ""))
        has_entry = "ENTRY" in values
    elif legacy:
        loader, guest_os = legacy.get("LOADER", ""), legacy.get("GUEST_OS", "")
        xen_version, pae = legacy.get("XEN_VER", ""), legacy.get("PAE", "")
        has_entry = "VIRT_BASE" in legacy
    else:
        return None
    if not (loader.startswith("generic") or guest_os.startswith("linux")):
        return None
    if not xen_version.startswith("xen-3.0") or not has_entry:
        return None
    if bits == 64:
        return "xen-3.0-x86_64"
    return "xen-3.0-x86_32p" if pae.split("[", 1)[0] in _PAE_MODES else "xen-3.0-x86_32"


def pvh_entry(xen: XenNotes) -> int | None:
    value = xen.values.get("PHYS32_ENTRY")
    return value if isinstance(value, int) else None
