"""Files out of Debian packages, downloaded once and cached (like boot.debian_kernel).

``package_file(package, member)`` runs ``apt-get download PACKAGE`` and keeps one member of
its data archive (a path regex) in the cache directory; ``depends_on(meta, pattern)``
names the versioned package a meta package points at today (xen-system-amd64 →
xen-hypervisor-4.17-amd64 on Debian 12, -4.20- on 13), so no version is written here.
``vmlinux_of(bzimage)`` is Linux's scripts/extract-vmlinux done with the real tools: find
each codec's magic in the file, pipe the rest through that codec's decompressor, keep the
first output that is an ELF file.

Debian packages: apt (apt-get download, dpkg-deb), xz-utils, gzip, bzip2, zstd, lz4, lzop.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from .boot import cache_dir
from .initramfs import ToolMissing


def depends_on(meta: str, pattern: str) -> str:
    """The package ``meta`` depends on whose name matches ``pattern`` (apt-cache's view)."""
    done = subprocess.run(["apt-cache", "depends", meta], capture_output=True, text=True, check=False)
    found = re.findall(rf"^\s*Depends:\s*({pattern})\s*$", done.stdout, re.M)
    if done.returncode != 0 or not found:
        raise ToolMissing(f"apt-cache knows no {meta} dependency matching {pattern} (run apt-get update)")
    return found[0]


def package_file(package: str, member: str, cache: Path | None = None) -> Path:
    """The member of ``package`` whose path (like "./boot/xen-4.17-amd64.gz") fully matches
    the regex ``member``; cached as PACKAGE__BASENAME."""
    cache = cache or cache_dir()
    for found in cache.glob(f"{package}__*"):
        if re.fullmatch(member, "./" + found.name.split("__", 1)[1].replace("%", "/")):
            return found
    with tempfile.TemporaryDirectory(prefix="deb-", dir=cache) as tmp:
        done = subprocess.run(["apt-get", "download", package], cwd=tmp, capture_output=True, check=False)
        debs = sorted(Path(tmp).glob(f"{package}_*.deb"))
        if done.returncode != 0 or not debs:
            raise ToolMissing(f"apt-get download {package} failed: {done.stderr.decode(errors='replace').strip()}")
        payload = Path(tmp) / "data.tar"
        with open(payload, "wb") as out:
            subprocess.run(["dpkg-deb", "--fsys-tarfile", str(debs[0])], stdout=out, check=True)
        with tarfile.open(payload) as tar:
            members = [m for m in tar.getmembers() if m.isfile() and re.fullmatch(member, m.name)]
            if len(members) != 1:
                raise RuntimeError(f"{debs[0].name}: {len(members)} members match {member!r}, expected 1")
            target = cache / f"{package}__{members[0].name[2:].replace('/', '%')}"
            staged = Path(tmp) / "member"
            with open(staged, "wb") as out:
                shutil.copyfileobj(tar.extractfile(members[0]), out)
            os.replace(staged, target)
    return target


# codec -> (magic, decompressor argv reading stdin), as scripts/extract-vmlinux tries them
EXTRACTORS = {
    "gzip": (b"\x1f\x8b\x08", ["gzip", "-dc"]),
    "xz": (b"\xfd7zXZ\x00", ["xz", "-dc"]),
    "bzip2": (b"BZh", ["bzip2", "-dc"]),
    "lzma": (b"\x5d\x00\x00\x00", ["xz", "--format=lzma", "-dc"]),
    "lzo": (b"\x89LZO", ["lzop", "-dc"]),
    "lz4": (b"\x02\x21\x4c\x18", ["lz4", "-dc"]),
    "zstd": (b"\x28\xb5\x2f\xfd", ["zstd", "-dcq"]),
}


def vmlinux_of(bzimage: Path, cache: Path | None = None) -> tuple[Path, str]:
    """(the ELF vmlinux inside ``bzimage``, the codec that held it), cached beside it."""
    cache = cache or cache_dir()
    data = bzimage.read_bytes()
    for codec, (magic, argv) in EXTRACTORS.items():
        target = cache / f"{bzimage.name}.{codec}.vmlinux"
        if target.is_file():
            return target, codec
        at = data.find(magic)
        while at >= 0:
            if shutil.which(argv[0]) is None:
                raise ToolMissing(f"{argv[0]} not found")
            done = subprocess.run(argv, input=data[at:], capture_output=True, check=False)
            if done.stdout[:4] == b"\x7fELF":  # trailing garbage makes the tools complain; the output counts
                staged = target.with_suffix(".part")
                staged.write_bytes(done.stdout)
                os.replace(staged, target)
                return target, codec
            at = data.find(magic, at + 1)
    raise RuntimeError(f"no codec's magic in {bzimage} leads to an ELF file")


# GRUB's Xen loader (grub-core/loader/i386/xen_file.c) opens a bzImage's payload through
# GRUB's decompression filters, which are gzio, xzio and lzopio: GRUB 2.12 has no zstd, lz4,
# bzip2 or lzma filter, so `grub-file --is-x86_64-xen-domu` cannot judge such a kernel
# (Debian 13's kernels carry a zstd payload) and says no whatever its notes say.
GRUB_XEN_CODECS = frozenset({"gzip", "xz", "lzo"})


def xen_pv_by_peer(bzimage: Path, vmlinux: Path, codec: str) -> bool:
    """Whether a real tool finds ``bzimage`` bootable as a 64-bit Xen PV guest: GRUB's
    grub-file where GRUB can decompress the payload, else readelf: the vmlinux has a Xen
    note whose descriptor is the "xen-3.0" interface version (XEN_ELFNOTE_XEN_VERSION)."""
    if codec in GRUB_XEN_CODECS:
        return subprocess.run(["grub-file", "--is-x86_64-xen-domu", str(bzimage)], check=False).returncode == 0
    notes = subprocess.run(["readelf", "-nW", str(vmlinux)], capture_output=True, text=True, check=True).stdout
    found = re.findall(r"^\s+Xen\s+0x[0-9a-f]+\s.*description data: ([0-9a-f ]*)$", notes, re.M)
    return b"xen-3.0\0".hex() in {data.replace(" ", "") for data in found}
