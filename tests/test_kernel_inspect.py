"""Kernel inspection on real kernels from Debian's archive, checked against real peers.

- Debian's amd64 kernel (the bzImage linux-image-amd64 points at): its version is the
  package's; its payload codec is the one whose real decompressor (Linux's
  scripts/extract-vmlinux way: magic, then the tool) yields the ELF vmlinux; its Xen notes
  are what ``readelf -n`` prints for that vmlinux; PV/PVH agree with ``grub-file
  --is-x86_64-xen-domu`` (GRUB's own Xen loader reads the notes) and with note 18.
- Every codec Linux uses for a payload: the vmlinux compressed by the real tool as
  Linux's scripts/Makefile.lib does (then the 4-byte size Linux appends), decoded by us to
  the same bytes and notes.
- Xen's hypervisor (xen-hypervisor-*-amd64's xen-*.gz): a gzip-compressed multiboot v1 +
  v2 kernel, as ``grub-file --is-x86-multiboot{,2}`` says.
- GRUB's Xen images (grub-xen-host): the pvboot ELFs are PV (grub-file agrees, 32-bit PAE
  and 64-bit), the _pvh one is PVH only.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from builders.boot import debian_kernel, kernel_package
from builders.debian_files import depends_on, package_file, vmlinux_of, xen_pv_by_peer
from builders.initramfs import ToolMissing
from guestboot.errors import CorruptImage, LimitExceeded
from guestboot.kernel import elf, stream
from guestboot.kernel.initrd import inspect_initrd
from guestboot.kernel.inspect import inspect
from guestboot.limits import LIMITS
from guestboot.source import BytesSource, FileSource
from prereq import unavailable


def _need(*tools: str) -> None:
    for tool in tools:
        if shutil.which(tool) is None:
            unavailable(f"{tool} not found (scripts/debian-packages.txt lists its package)")


def _open(path: Path) -> FileSource:
    fd = os.open(path, os.O_RDONLY)
    return FileSource(fd, name=path.name)


@pytest.fixture(scope="session")
def bzimage() -> Path:
    try:
        return debian_kernel()
    except ToolMissing as err:
        unavailable(str(err))


@pytest.fixture(scope="session")
def vmlinux(bzimage) -> tuple[Path, str]:
    _need("xz", "gzip")
    return vmlinux_of(bzimage)


def readelf_notes(path: Path) -> list[tuple[str, str]]:
    """(owner, descriptor hex) of every note readelf -n prints with its data."""
    _need("readelf")
    done = subprocess.run(["readelf", "-nW", str(path)], capture_output=True, text=True, check=True)
    found = re.findall(r"^\s+(\S+)\s+0x[0-9a-f]+\s.*description data: ([0-9a-f ]*)$", done.stdout, re.M)
    return [(owner, data.replace(" ", "")) for owner, data in found]


def grub_file(option: str, path: Path) -> bool:
    _need("grub-file")
    return subprocess.run(["grub-file", option, str(path)], check=False).returncode == 0


# --- Debian's amd64 kernel ------------------------------------------------------------


def test_debian_bzimage_version_codec_and_xen_notes(bzimage, vmlinux):
    vmlinux_path, codec = vmlinux
    facts = inspect(_open(bzimage))
    assert facts.format == "bzImage" and facts.arch == "x86_64"
    try:
        assert facts.release == kernel_package().removeprefix("linux-image-")
    except ToolMissing:  # no package lists: the cached file's name carries the package name
        assert bzimage.name == f"linux-image-{facts.release}.vmlinuz"
    assert facts.details["payload"]["codec"] == codec
    assert "XLF_KERNEL_64" in facts.details["xloadflags"]
    # the notes we read through our decoder are readelf's notes of the real tool's vmlinux
    peer = [(o, d) for o, d in readelf_notes(vmlinux_path) if o == "Xen"]
    info = elf.parse(stream.Reader(_open(vmlinux_path)))
    assert [(n.owner, n.desc.hex()) for n in info.notes if n.owner == "Xen"] == peer
    # PV as GRUB's Xen loader judges it (readelf where GRUB cannot read the payload); PVH iff
    # readelf shows note 18
    assert (facts.pv == "xen-3.0-x86_64") == xen_pv_by_peer(bzimage, vmlinux_path, codec)
    has_18 = re.search(r"Xen\s+0x[0-9a-f]+\s+Unknown note type: \(0x00000012\)",
                       subprocess.run(["readelf", "-nW", str(vmlinux_path)], capture_output=True,
                                      text=True).stdout)
    assert (facts.pvh is not None) == bool(has_18)
    assert facts.hvm
    assert set(facts.supports()) >= {"hvm"}


def test_debian_vmlinux_elf_and_banner(vmlinux, bzimage):
    vmlinux_path, _codec = vmlinux
    facts = inspect(_open(vmlinux_path))
    assert facts.format == "elf" and facts.arch == "x86_64"
    release = inspect(_open(bzimage)).release
    assert facts.release == release  # "Linux version <release> (…" in the vmlinux's rodata
    assert (facts.pv is not None) == grub_file("--is-x86_64-xen-domu", vmlinux_path)
    assert facts.details["elf"]["bits"] == 64


# --- every payload codec ----------------------------------------------------------------

# codec -> compressor argv (stdin to stdout) as Linux's scripts/Makefile.lib runs it, at
# fast levels (the level changes the bytes, not the format the decoder reads)
COMPRESSORS = {
    "gzip": ["gzip", "-n", "-1", "-c"],
    "bzip2": ["bzip2", "-1", "-c"],
    "lzma": ["lzma", "-0", "-c"],
    "xz": ["xz", "--check=crc32", "--x86", "--lzma2=preset=0", "-c"],
    "lzo": ["lzop", "-1", "-c"],
    "lz4": ["lz4", "-l", "-1", "-c"],
    "zstd": ["zstd", "-1", "-q", "-c"],
}


@pytest.fixture(scope="session")
def compressed(vmlinux, tmp_path_factory):
    made: dict[str, Path] = {}
    path = vmlinux[0]
    out_dir = tmp_path_factory.mktemp("payloads")

    def make(codec: str) -> Path:
        if codec not in made:
            argv = COMPRESSORS[codec]
            _need(argv[0])
            out = out_dir / f"vmlinux.{codec}"
            with open(path, "rb") as src, open(out, "wb") as dst:
                subprocess.run(argv, stdin=src, stdout=dst, check=True)
            with open(out, "ab") as dst:  # scripts/Makefile.lib's size_append
                dst.write(struct.pack("<I", path.stat().st_size))
            made[codec] = out
        return made[codec]

    return make


@pytest.mark.timeout(300)
@pytest.mark.parametrize("codec", list(COMPRESSORS))
def test_payload_codec_decodes_to_the_vmlinux(codec, compressed, vmlinux):
    path = compressed(codec)
    source = _open(path)
    assert stream.codec_of(source.pread(0, 16)) == codec
    want = hashlib.sha256(vmlinux[0].read_bytes()).hexdigest()
    digest = hashlib.sha256()
    size = stream.Reader(source, codec=codec).stream_to(digest.update)
    assert size == vmlinux[0].stat().st_size and digest.hexdigest() == want
    # the ELF facts through the stream equal those of the plain file
    assert inspect(source).data() | {"compressed": None, "decompressed_size": None} == \
        inspect(_open(vmlinux[0])).data() | {"compressed": None, "decompressed_size": None}


@pytest.mark.parametrize("codec", ["gzip", "xz", "zstd", "lz4", "lzo", "bzip2", "lzma"])
def test_cut_payload_is_corrupt_and_output_is_bounded(codec, compressed):
    data = compressed(codec).read_bytes()
    cut = BytesSource(data[: len(data) // 3], name="cut")
    with pytest.raises(CorruptImage):
        stream.Reader(cut, codec=codec).stream_to(lambda piece: None)
    whole = BytesSource(data, name="whole")
    with pytest.raises(LimitExceeded, match="max_kernel_decompressed"):
        for _ in stream.decode(whole, 0, whole.size, codec, what="payload", limit=3 << 20):
            pass


def test_reader_restarts_are_bounded(compressed):
    source = _open(compressed("gzip"))
    reader = stream.Reader(source, codec="gzip")
    assert reader.pread(5 << 20, 4)  # the first pass
    for _ in range(LIMITS.max_kernel_passes - 1):  # a read behind the chunk in hand: one more pass
        assert reader.pread(0, 4) == b"\x7fELF"
        assert reader.pread(5 << 20, 4)
    with pytest.raises(LimitExceeded, match="max_kernel_passes"):
        reader.pread(0, 4)


# --- Xen and GRUB's Xen images ------------------------------------------------------------


@pytest.fixture(scope="session")
def xen_gz() -> Path:
    try:
        package = depends_on("xen-system-amd64", r"xen-hypervisor-\S+-amd64")
        return package_file(package, r"\./boot/xen-[0-9.]+-amd64\.gz")
    except ToolMissing as err:
        unavailable(str(err))


@pytest.fixture(scope="session")
def grub_xen() -> dict[str, Path]:
    try:
        return {arch: package_file("grub-xen-host", rf"\./usr/lib/grub-xen/grub-{arch}\.bin")
                for arch in ("i386-xen", "x86_64-xen", "i386-xen_pvh")}
    except ToolMissing as err:
        unavailable(str(err))


def test_xen_hypervisor_is_a_compressed_multiboot_kernel(xen_gz):
    facts = inspect(_open(xen_gz))
    assert facts.compressed == "gzip" and facts.format == "elf"
    versions = {m["version"]: m for m in facts.details["multiboot"]}
    assert (1 in versions) == grub_file("--is-x86-multiboot", xen_gz)
    assert (2 in versions) == grub_file("--is-x86-multiboot2", xen_gz)
    assert versions[1]["offset"] % 4 == 0 and versions[1]["offset"] < 8192
    assert versions[2]["offset"] % 8 == 0 and versions[2]["offset"] < 32768
    assert facts.pv is None and facts.pvh is None  # a hypervisor, not a guest kernel
    assert not grub_file("--is-x86_64-xen-domu", xen_gz)


def test_grub_pvboot_images(grub_xen):
    i386, x86_64, pvh = (inspect(_open(grub_xen[k])) for k in ("i386-xen", "x86_64-xen", "i386-xen_pvh"))
    assert x86_64.pv == "xen-3.0-x86_64" and grub_file("--is-x86_64-xen-domu", grub_xen["x86_64-xen"])
    assert i386.pv == "xen-3.0-x86_32p" and grub_file("--is-i386-xen-pae-domu", grub_xen["i386-xen"])
    assert x86_64.pvh is None and i386.pvh is None
    assert pvh.pv is None and pvh.pvh is not None
    peer = readelf_notes(grub_xen["i386-xen_pvh"])
    assert peer == [("Xen", struct.pack("<I", pvh.pvh).hex())]
    assert x86_64.details["xen_notes"]["GUEST_OS"] == "GRUB"


# --- hostile bytes ---------------------------------------------------------------------------


def test_hostile_headers_are_typed_errors(vmlinux):
    data = bytearray(vmlinux[0].read_bytes()[:1 << 20])
    struct.pack_into("<H", data, 56, 60000)  # e_phnum
    with pytest.raises(LimitExceeded, match="max_elf_headers"):
        inspect(BytesSource(bytes(data), name="phnum"))
    data = bytearray(vmlinux[0].read_bytes()[:1 << 20])  # cut before the note segment
    with pytest.raises(CorruptImage, match="past the end"):
        inspect(BytesSource(bytes(data), name="cut"))
    with pytest.raises(CorruptImage, match="gzip"):
        inspect(BytesSource(b"\x1f\x8b" + bytes(100), name="junk"))


# --- initrds ---------------------------------------------------------------------------------


def _cpio(tree: Path, out: Path) -> bytes:
    _need("cpio")
    names = sorted(str(p.relative_to(tree)) for p in tree.rglob("*"))
    done = subprocess.run(["cpio", "-o", "-H", "newc", "--quiet"], cwd=tree, input="\n".join(names).encode(),
                          capture_output=True, check=True)
    return done.stdout


@pytest.mark.parametrize("codec", ["zstd", "gzip", "xz", "lz4"])
def test_initrd_with_a_microcode_prepend(codec, tmp_path):
    """As Debian's initramfs-tools lays it out: an uncompressed cpio of CPU microcode,
    then the main archive compressed (cpio and the codec's own tool make both)."""
    early = tmp_path / "early"
    (early / "kernel/x86/microcode").mkdir(parents=True)
    (early / "kernel/x86/microcode/GenuineIntel.bin").write_bytes(os.urandom(3000))
    main = tmp_path / "main"
    (main / "bin").mkdir(parents=True)
    (main / "init").write_text("#!/bin/sh\n")
    argv = COMPRESSORS[codec]
    _need(argv[0])
    packed = subprocess.run(argv, input=_cpio(main, tmp_path / "m"), capture_output=True, check=True).stdout
    first = _cpio(early, tmp_path / "e")
    initrd = BytesSource(first + packed, name="initrd.img")
    facts = inspect_initrd(initrd)
    assert [p["format"] for p in facts["parts"]] == ["cpio", codec]
    assert facts["parts"][0]["members"] == 4  # kernel, kernel/x86, kernel/x86/microcode, the file
    assert facts["microcode"] == ["kernel/x86/microcode/GenuineIntel.bin"]
    assert facts["codec"] == codec and facts["cpio"] is True
    plain = BytesSource(_cpio(main, tmp_path / "p"), name="plain")
    assert inspect_initrd(plain)["codec"] == "none" and inspect_initrd(plain)["microcode"] == []


# --- the legacy __xen_guest section; PE images -----------------------------------------------


def test_legacy_xen_guest_section(xen_gz, tmp_path):
    """A kernel of the Xen 3.0 era carried "KEY=VALUE,…" in an ELF section named
    __xen_guest instead of notes. objcopy adds one to Xen's own ELF (which has no Xen
    notes, so libelf's rules fall back to the section): PV, 32-bit with PAE."""
    import gzip

    _need("objcopy")
    plain = tmp_path / "xen.elf"
    plain.write_bytes(gzip.decompress(xen_gz.read_bytes()))
    text = tmp_path / "xen_guest.txt"
    text.write_bytes(b"GUEST_OS=linux,XEN_VER=xen-3.0,VIRT_BASE=0xC0000000,LOADER=generic,PAE=yes[extended-cr3]\0")
    with_section = tmp_path / "legacy.elf"
    subprocess.run(["objcopy", "--add-section", f"__xen_guest={text}", str(plain), str(with_section)], check=True)
    assert inspect(_open(plain)).pv is None
    facts = inspect(_open(with_section))
    assert facts.pv == "xen-3.0-x86_32p" and facts.details["xen_guest"]["XEN_VER"] == "xen-3.0"
    without_pae = tmp_path / "nopae.elf"
    text.write_bytes(b"GUEST_OS=linux,XEN_VER=xen-3.0,VIRT_BASE=0xC0000000,LOADER=generic\0")
    subprocess.run(["objcopy", "--add-section", f"__xen_guest={text}", str(plain), str(without_pae)], check=True)
    assert inspect(_open(without_pae)).pv == "xen-3.0-x86_32"


def test_pe_image_is_named(xen_gz):
    """Xen's EFI binary from the same package: a PE (x86_64), not a UKI (no .linux)."""
    try:
        efi = package_file(xen_gz.name.split("__", 1)[0], r"\./boot/xen-[0-9.]+-amd64\.efi")
    except ToolMissing as err:
        unavailable(str(err))
    facts = inspect(_open(efi))
    assert facts.format == "pe" and facts.arch == "x86_64" and ".text" in facts.details["pe"]["sections"]


# --- hostile bytes: damaged real kernels give facts or a typed error, never anything else ------


@pytest.mark.timeout(300)
def test_damaged_kernels_are_typed_errors(bzimage, vmlinux, xen_gz, grub_xen):
    """Bytes flipped in the parts the parsers read (setup header, ELF and program headers,
    the note segment, the compressed stream's start, the multiboot area), and the files
    cut short: inspection returns facts or raises a GuestbootError; nothing else escapes."""
    import random

    from guestboot.errors import GuestbootError

    rng = random.Random(20261204)
    vm = vmlinux[0].read_bytes()
    firsts: list = []  # where the note segment starts: aim damage there too
    elf.parse(stream.Reader(BytesSource(vm, name="vmlinux")), before_notes=firsts.append)
    note_at = firsts[0]
    samples = {
        "bzImage": (bzimage.read_bytes(), [(0x1F0, 0x280), (0x4000, 0x5400)]),
        "vmlinux": (vm[: note_at + 4096], [(0, 0x200), (note_at, note_at + 0x200)]),
        "xen.gz": (xen_gz.read_bytes(), [(0, 64)]),
        "pvboot": (grub_xen["x86_64-xen"].read_bytes(), [(0, 0x200)]),
    }
    outcomes = {"facts": 0, "error": 0}

    def cases(data: bytes, regions):  # one at a time: fifteen copies of a vmlinux held at once took 500 MB
        for _ in range(3):
            yield data[: rng.randrange(1, len(data))]
        for _ in range(12):
            damaged = bytearray(data)
            start, end = regions[rng.randrange(len(regions))]
            for _ in range(rng.randrange(1, 9)):
                damaged[rng.randrange(start, min(end, len(damaged)))] = rng.randrange(256)
            yield bytes(damaged)

    for name, (data, regions) in samples.items():
        for case in cases(data, regions):
            try:
                inspect(BytesSource(case, name=name))
                outcomes["facts"] += 1
            except GuestbootError as err:
                assert str(err) and "\n" not in str(err)
                outcomes["error"] += 1
    assert outcomes["facts"] and outcomes["error"]  # both kinds of damage were met


def test_one_budget_for_all_streams_of_a_run(compressed):
    """Many kernels each just under the per-stream bound would still be a lot of work:
    an Inspector charges every stream it decodes to one budget (max_inspect_decompressed)."""
    data = BytesSource(compressed("zstd").read_bytes(), name="vmlinux.zstd")
    budget = stream.Budget(50 << 20, "max_inspect_decompressed")
    with stream.active(budget):
        stream.Reader(data, codec="zstd").pread(30 << 20, 4)  # 31 MiB decoded
        with pytest.raises(LimitExceeded, match="max_inspect_decompressed"):
            stream.Reader(data, codec="zstd").pread(30 << 20, 4)  # 62 MiB in all
    assert stream.Reader(data, codec="zstd").pread(30 << 20, 4)  # outside the block: not charged
