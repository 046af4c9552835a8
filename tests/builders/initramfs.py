"""Tiny initramfs images that report what the kernel received, built with the real cpio.

The main archive holds a static busybox and an /init script that prints, on the serial
console, the kernel command line (``GUESTBOOT-CMDLINE: <contents of /proc/cmdline>``) and
the names found in /guestboot-id (``GUESTBOOT-INITRD: <names>``), then powers off. Each
archive puts its own name in /guestboot-id, so the boot output proves WHICH initrd the
kernel got; an add-on archive (``build_addon``) adds one more name, so a boot of two
concatenated archives proves the boot loader joined them the way GRUB does.

Debian package: busybox-static (a dynamically linked busybox cannot run alone in an
initramfs), cpio.
"""

from __future__ import annotations

import gzip
import os
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path

CMDLINE_MARKER = "GUESTBOOT-CMDLINE: "
INITRD_MARKER = "GUESTBOOT-INITRD: "
DONE_MARKER = "GUESTBOOT-DONE"
ID_DIR = "guestboot-id"
FIXED_MTIME = 1_700_000_000  # archives are byte-for-byte reproducible

# The kernel starts /init with no open console when the archive has no /dev/console
# node (we make none, so building needs no root): mount devtmpfs first, then talk to
# the first serial port directly.
INIT_SCRIPT = f"""#!/bin/sh
/bin/busybox mount -t devtmpfs devtmpfs /dev
exec </dev/null >/dev/ttyS0 2>&1
/bin/busybox mount -t proc proc /proc
echo
echo "{CMDLINE_MARKER}$(/bin/busybox cat /proc/cmdline)"
echo "{INITRD_MARKER}$(cd /{ID_DIR} && echo *)"
echo "{DONE_MARKER}"
/bin/busybox poweroff -f
/bin/busybox reboot -f
"""

BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")


class ToolMissing(RuntimeError):
    """A host tool or package the builders need is not installed (message says which)."""


# ELF64 file header (System V gABI, "ELF Header"): e_phoff at 32, e_phentsize/e_phnum at 54.
_ELF64_HEADER = struct.Struct("<16sHHIQQQIHHHHHH")
# ELF64 program header (gABI, "Program Header"): p_type first.
_ELF64_PHDR = struct.Struct("<IIQQQQQQ")
_PT_INTERP = 3


def is_static_elf(path: Path) -> bool:
    """True when the ELF64 file at ``path`` asks for no program interpreter."""
    with open(path, "rb") as f:
        head = f.read(_ELF64_HEADER.size)
        if len(head) < _ELF64_HEADER.size or head[:4] != b"\x7fELF" or head[4] != 2:
            return False
        fields = _ELF64_HEADER.unpack(head)
        phoff, phentsize, phnum = fields[5], fields[9], fields[10]
        if phentsize < _ELF64_PHDR.size or phnum > 256:
            return False
        for i in range(phnum):
            f.seek(phoff + i * phentsize)
            raw = f.read(_ELF64_PHDR.size)
            if len(raw) < _ELF64_PHDR.size:
                return False
            if _ELF64_PHDR.unpack(raw)[0] == _PT_INTERP:
                return False
    return True


def static_busybox() -> Path:
    for candidate in BUSYBOX_CANDIDATES:
        path = Path(candidate)
        if path.is_file() and is_static_elf(path):
            return path
    raise ToolMissing("no statically linked busybox found (apt-get install busybox-static)")


def _require(tool: str, package: str) -> str:
    found = shutil.which(tool)
    if not found:
        raise ToolMissing(f"{tool} not found (apt-get install {package})")
    return found


def _pack_tree(tree: Path) -> bytes:
    """The newc archive of ``tree`` made by GNU cpio (owner root, fixed times)."""
    cpio = _require("cpio", "cpio")
    names = []
    for dirpath, dirnames, filenames in os.walk(tree):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            full = Path(dirpath) / name
            os.utime(full, (FIXED_MTIME, FIXED_MTIME), follow_symlinks=False)
            names.append(str(full.relative_to(tree)))
    os.utime(tree, (FIXED_MTIME, FIXED_MTIME))
    listing = ("\n".join(sorted(names)) + "\n").encode()
    done = subprocess.run(
        [cpio, "-o", "-H", "newc", "-R", "0:0", "--reproducible", "--quiet"],
        input=listing, cwd=tree, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"cpio failed: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout


def build_initramfs(out: Path, name: str) -> Path:
    """Write a gzip-compressed newc initramfs to ``out`` whose boot prints ``name``."""
    busybox = static_busybox()
    with tempfile.TemporaryDirectory(prefix="initramfs-") as tmp:
        tree = Path(tmp)
        for sub in ("bin", "dev", "proc", ID_DIR):
            (tree / sub).mkdir()
        shutil.copyfile(busybox, tree / "bin" / "busybox")
        (tree / "bin" / "busybox").chmod(0o755)
        (tree / "bin" / "sh").symlink_to("busybox")
        init = tree / "init"
        init.write_text(INIT_SCRIPT)
        init.chmod(0o755)
        (tree / ID_DIR / name).write_text(name + "\n")
        archive = _pack_tree(tree)
    out.write_bytes(gzip.compress(archive, compresslevel=6, mtime=0))
    return out


def build_addon(out: Path, name: str) -> Path:
    """Write an uncompressed newc archive that only adds /guestboot-id/``name``.

    GNU cpio pads its output to 512-byte blocks, so the archive's size is a multiple of
    4: GRUB's 4-byte alignment between concatenated initrds then adds no bytes, and the
    expected concatenation is exactly this file followed by the next one.
    """
    with tempfile.TemporaryDirectory(prefix="initramfs-addon-") as tmp:
        tree = Path(tmp)
        (tree / ID_DIR).mkdir()
        (tree / ID_DIR / name).write_text(name + "\n")
        archive = _pack_tree(tree)
    if len(archive) % 4:
        raise RuntimeError(f"cpio archive of {len(archive)} bytes is not 4-byte aligned")
    out.write_bytes(archive)
    return out
