"""The real-bootloader harness: images holding marker payloads, a QEMU boot that reads what
the guest's own bootloader booted, guestboot's choice on the same image, golden files.

Payload. Every kernel on an image is the one real Debian kernel (builders/boot.py
downloads it), hard links of one copy per file system; every initrd is a marker initramfs
(builders/initramfs.py) whose /init prints ``GUESTBOOT-CMDLINE: <proc/cmdline>`` and
``GUESTBOOT-INITRD: <names>`` on the first serial port and powers off. A marker's name is
unique on its image, so the names the guest prints say which initrd files the bootloader
loaded (several initrds: every name, sorted; their order does not show), and the command
line says the rest (GRUB and syslinux put the kernel's path in ``BOOT_IMAGE=``).

Answer. What a boot showed: the command line, the marker names, and the entry title when
the bootloader prints it (GRUB on a serial terminal: "Booting `TITLE'"). guestboot's
answer is made the same way from its "plan" on the image: its command line, its initrd
files mapped to marker names through the image's manifest, its entry's title.

Golden files (golden/<bootloader>/<case>.json) keep the real bootloader's answer, the
version that gave it, and for GRUB the environment block the boot left behind. Every case
compares guestboot with the golden file without booting; the cases marked ``ci`` also boot
(a TCG boot is ~8 s with SeaBIOS), and compare the live answer with guestboot and with the
golden file. ``GUESTBOOT_REALBOOT=all`` boots every case; ``GUESTBOOT_REALBOOT=record``
boots every case and rewrites the golden files (then review the diff).

Debian packages: qemu-system-x86, util-linux (losetup, partx, sfdisk), e2fsprogs,
dosfstools, mtools, plus each bootloader's own (see its module).
"""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import subprocess
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Mapping, Union

import pytest
from prereq import unavailable

from builders.disk import place_image
from builders.boot import QEMU, debian_kernel, qemu_available
from builders.initramfs import CMDLINE_MARKER, DONE_MARKER, INITRD_MARKER, ToolMissing, build_initramfs

SECTOR = 512
MiB = 1 << 20
GOLDEN = Path(__file__).parent / "golden"
DISK_ID = "0x5eedb007"  # MBR disk identifier
GPT_DISK_GUID = "5EEDB007-0000-4000-8000-000000000000"
GPT_PART_GUID = "5EEDB007-0000-4000-8000-{:012X}"
MODE_ENV = "GUESTBOOT_REALBOOT"  # "", "all" or "record"
BOOT_TIMEOUT = 240.0  # seconds for one boot: ~8-10 s under TCG on an idle machine, 50 s seen on a loaded one
QEMU_BASE = (QEMU, "-machine", "pc", "-accel", "tcg", "-m", "384", "-smp", "1", "-nodefaults",
             "-vga", "none", "-display", "none", "-serial", "stdio", "-no-reboot")


def mode() -> str:
    value = os.environ.get(MODE_ENV, "")
    if value not in ("", "all", "record"):
        raise ValueError(f"{MODE_ENV}={value!r}: expected 'all' or 'record'")
    return value


def _tool(name: str, package: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if not found:
        raise ToolMissing(f"{name} not found (apt-get install {package})")
    return found


def run(argv: list[str], **kwargs) -> str:
    """Run a tool; RuntimeError with its message when it fails."""
    done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300, check=False, **kwargs)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, argv))} failed ({done.returncode}): "
                           f"{(done.stderr or done.stdout).decode(errors='replace').strip()}")
    return done.stdout.decode(errors="replace")


# --- what a file system holds ------------------------------------------------------------


@dataclass(frozen=True)
class Kernel:
    """The real Debian kernel (a hard link to the file system's one copy where it can)."""


@dataclass(frozen=True)
class Marker:
    """A marker initramfs whose boot prints ``name`` (unique on the image)."""

    name: str


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class HostFile:
    """A copy of a file the host's packages installed (a bootloader's modules)."""

    path: str


@dataclass(frozen=True)
class IsoImage:
    """An ISO 9660 image file (xorriso, Rock Ridge) holding ``files`` (a loopback target)."""

    files: tuple[tuple[str, "FileSpec"], ...]


@dataclass(frozen=True)
class GrubEnv:
    """A GRUB environment block written by the real grub-editenv."""

    values: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Symlink:
    """A symbolic link to ``target`` (Debian's /vmlinuz and /initrd.img links; ext4 keeps
    it, FAT cannot)."""

    target: str


FileSpec = Union[Kernel, Marker, Text, HostFile, IsoImage, GrubEnv, Symlink]


@dataclass(frozen=True)
class Partition:
    """One partition: file system ``fs`` ("ext4", "vfat", or "none" for a partition left
    empty), its label and UUID (vfat: the 8-hex-digit volume id), and its files by
    absolute path."""

    fs: str
    label: str
    uuid: str
    files: Mapping[str, FileSpec]
    size_mib: int = 40
    type: str = "83"
    bootable: bool = False  # the MBR's active flag (syslinux's mbr.bin boots the active one)
    mkfs: tuple[str, ...] = ()  # more mke2fs options


class Payload:
    """The kernel and the marker initrds of one test session (each marker built once)."""

    def __init__(self, workdir: Path) -> None:
        self.kernel = debian_kernel()
        self.markers = workdir / "markers"
        self.markers.mkdir(parents=True, exist_ok=True)

    def marker(self, name: str) -> Path:
        path = self.markers / f"{name}.img"
        if not path.exists():
            build_initramfs(path, name)
        return path

    def materialize(self, files: Mapping[str, FileSpec], tree: Path, *, links: bool = True
                    ) -> dict[tuple[str | None, str], str]:
        """Write ``files`` under ``tree``; returns {(None, path): marker name} for the
        markers, and {("*", path): name} for markers inside an IsoImage (on whatever
        device the bootloader makes of it). Kernels are hard links of the first one
        written when ``links``."""
        first_kernel: Path | None = None
        markers: dict[tuple[str | None, str], str] = {}
        for path, spec in files.items():
            dest = tree / path.lstrip("/")
            dest.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(spec, Kernel):
                if first_kernel is not None and links:
                    os.link(first_kernel, dest)
                else:
                    shutil.copyfile(self.kernel, dest)
                    first_kernel = dest
            elif isinstance(spec, Marker):
                shutil.copyfile(self.marker(spec.name), dest)
                markers[(None, path)] = spec.name
            elif isinstance(spec, Text):
                dest.write_text(spec.text)
            elif isinstance(spec, HostFile):
                if not Path(spec.path).is_file():
                    raise ToolMissing(f"{spec.path} not found (see the bootloader module for its package)")
                shutil.copyfile(spec.path, dest)
            elif isinstance(spec, IsoImage):
                with tempfile.TemporaryDirectory(prefix="realboot-iso-", dir=tree.parent) as tmp:
                    inner = self.materialize(dict(spec.files), Path(tmp), links=False)
                    run(["xorriso", "-as", "mkisofs", "-quiet", "-R", "-J", "-o", str(dest), tmp])
                markers.update({("*", file): name for (_, file), name in inner.items()})
            elif isinstance(spec, Symlink):
                dest.symlink_to(spec.target)
            elif isinstance(spec, GrubEnv):
                editenv = _tool("grub-editenv", "grub-common")
                run([editenv, str(dest), "create"])
                if spec.values:
                    run([editenv, str(dest), "set", *(f"{k}={v}" for k, v in spec.values)])
            else:
                raise TypeError(f"unknown file spec {spec!r}")
        return markers


@dataclass
class DiskImage:
    path: Path
    manifest: dict[tuple[str, str], str]  # (guestboot device name or "*", path) -> marker name
    starts: list[int]  # byte offset of each partition


def build_disk(path: Path, partitions: list[Partition], payload: Payload, *, table: str = "dos") -> DiskImage:
    """A disk partitioned by sfdisk (``table`` "dos" or "gpt"; a partition's ``type`` is
    then an MBR type or a GPT type GUID) with one file system per partition, each made
    from its tree by the real tools (mke2fs -d; mkfs.fat + mcopy); the first MiB left
    free for a bootloader's embedding area. Partitions are msdos1, msdos2, … (gpt1, …)
    in GRUB's names."""
    sfdisk = _tool("sfdisk", "fdisk")
    start = MiB
    # fixed disk and partition identifiers, so that GRUB's probe --part-uuid (and a
    # PARTUUID=) is the same on every build
    script = [f"label: {table}", f"label-id: {DISK_ID if table == 'dos' else GPT_DISK_GUID}"]
    starts = []
    for number, part in enumerate(partitions, 1):
        starts.append(start)
        script.append(f"start={start // SECTOR}, size={part.size_mib * MiB // SECTOR}, type={part.type}"
                      + (", bootable" if part.bootable else "")
                      + (f", uuid={GPT_PART_GUID.format(number)}" if table == "gpt" else ""))
        start += part.size_mib * MiB
    with open(path, "wb") as f:
        f.truncate(start + MiB)  # room for GPT's backup header
    run([sfdisk, "--quiet", "--no-reread", "--no-tell-kernel", str(path)], input="\n".join(script).encode() + b"\n")
    manifest: dict[tuple[str, str], str] = {}
    scheme = "msdos" if table == "dos" else table
    for number, (part, offset) in enumerate(zip(partitions, starts), 1):
        with tempfile.TemporaryDirectory(prefix="realboot-tree-", dir=path.parent) as tmp:
            tree = Path(tmp)
            markers = payload.materialize(part.files, tree, links=part.fs == "ext4")
            write_fs(path, offset, part, tree)
        for (device, file), name in markers.items():
            manifest[(device or f"hd0,{scheme}{number}", file)] = name
    return DiskImage(path, manifest, starts)


def write_fs(disk: Path, offset: int, part: Partition, tree: Path) -> None:
    size = part.size_mib * MiB
    if part.fs == "none":  # a partition for a bootloader's own use (GRUB's BIOS boot partition)
        return
    if part.fs == "ext4":
        mke2fs = _tool("mke2fs", "e2fsprogs")
        run([mke2fs, "-q", "-F", "-t", "ext4", "-T", "default", "-U", part.uuid, "-L", part.label,
             *part.mkfs, "-E", f"offset={offset}", "-d", str(tree), str(disk), f"{size // 1024}k"])
    elif part.fs == "vfat":
        scratch = disk.with_suffix(".fat")
        scratch.unlink(missing_ok=True)
        run([_tool("mkfs.fat", "dosfstools"), "-C", "-n", part.label, "-i", part.uuid, str(scratch), str(size // 1024)])
        top = [str(p) for p in sorted(tree.iterdir())]
        if top:
            run([_tool("mcopy", "mtools"), "-s", "-i", str(scratch), *top, "::/"], env=dict(os.environ, MTOOLS_SKIP_CHECK="1"))
        place_image(disk, offset, scratch)
        scratch.unlink()
    else:
        raise ValueError(f"unknown file system {part.fs!r}")


@contextmanager
def loop_device(image: Path) -> Iterator[str]:
    """The image attached to a free loop device with its partitions (losetup -P; partx
    where the kernel did not scan them); detached afterwards."""
    if os.geteuid() != 0:
        raise ToolMissing("a loop device and mount need root (CI runs as root)")
    losetup = _tool("losetup", "mount")
    device = run([losetup, "-f", "--show", "-P", str(image)]).strip()
    try:
        if not Path(device + "p1").exists():
            subprocess.run([_tool("partx", "util-linux"), "-a", device], capture_output=True, check=False)
        yield device
    finally:
        subprocess.run([losetup, "-d", device], capture_output=True, check=False)


@contextmanager
def mounted(device: str, where: Path, *options: str) -> Iterator[Path]:
    """``mount [options] device where``, unmounted afterwards."""
    where.mkdir(parents=True, exist_ok=True)
    run(["mount", *options, device, str(where)])
    try:
        yield where
    finally:
        run(["umount", str(where)])


# --- a boot ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """What booted: the kernel command line, the marker names of the initrds, and the
    entry's title where the bootloader shows it (None: not shown)."""

    cmdline: str
    initrds: tuple[str, ...]
    entry: str | None = None

    def data(self) -> dict:
        return {"cmdline": self.cmdline, "initrds": list(self.initrds), "entry": self.entry}

    @classmethod
    def from_data(cls, data: Mapping) -> Answer:
        return cls(data["cmdline"], tuple(data["initrds"]), data.get("entry"))


class BootFailed(AssertionError):
    pass


_ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Za-z0-9]|\x1b[=>]")
_GRUB_BOOTING = re.compile(r"(?:Booting|Falling back to) `(.*)'\s*$")  # GRUB's menu.c messages


def qemu_boot(machine: list[str], *, stop_on: tuple[str, ...] = (), timeout: float = BOOT_TIMEOUT) -> tuple[str, float]:
    """Run QEMU (QEMU_BASE + ``machine``) until the marker's DONE line, one of ``stop_on``
    (the bootloader's own failure prompts), the guest powering off, or ``timeout``.
    Returns (console text without terminal escapes, seconds)."""
    missing = qemu_available()
    if missing:
        raise ToolMissing(missing)
    start = time.monotonic()
    proc = subprocess.Popen([*QEMU_BASE, *machine], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    raw = bytearray()
    try:
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        while True:
            left = start + timeout - time.monotonic()
            if left <= 0:
                raise BootFailed(f"no answer from the guest in {timeout:.0f} s; console:\n{_clean(raw)[-3000:]}")
            ready, _, _ = select.select([fd], [], [], min(left, 1.0))
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    break  # QEMU ended: the guest powered off (-no-reboot), or QEMU failed
                raw += chunk
                text = _clean(raw)
                if DONE_MARKER in text:
                    break
                hit = next((s for s in stop_on if s in text), None)
                if hit is not None:
                    time.sleep(0.5)  # let the rest of the message arrive
                    raw += _drain(fd)
                    raise BootFailed(f"the bootloader stopped at {hit!r}; console:\n{_clean(raw)[-3000:]}")
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
    return _clean(raw), time.monotonic() - start


def _drain(fd: int) -> bytes:
    out = bytearray()
    while select.select([fd], [], [], 0)[0]:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        out += chunk
    return bytes(out)


def _clean(raw: bytes) -> str:
    return _ESCAPES.sub("", raw.decode("utf-8", "replace")).replace("\r", "")


def answer_from_console(console: str) -> Answer:
    """The marker's report (and GRUB's last "Booting `TITLE'" or "Falling back to
    `TITLE'") in a console text."""
    lines = console.splitlines()
    cmdlines = [l.partition(CMDLINE_MARKER)[2] for l in lines if CMDLINE_MARKER in l]
    initrds = [l.partition(INITRD_MARKER)[2] for l in lines if INITRD_MARKER in l]
    if len(cmdlines) != 1 or len(initrds) != 1 or DONE_MARKER not in console:
        raise BootFailed(f"the guest did not report; console:\n{console[-3000:]}")
    names = tuple(sorted(initrds[0].split())) if initrds[0].strip() not in ("", "*") else ()
    titles = [m.group(1) for m in map(_GRUB_BOOTING.search, lines) if m]
    return Answer(cmdlines[0].strip(), names, titles[-1] if titles else None)


# --- guestboot's answer --------------------------------------------------------------------


def guestboot_answer(image: Path, manifest: Mapping[tuple[str, str], str]) -> Answer:
    """guestboot's choice on ``image`` (the pipeline's "plan", as ``guestboot extract``
    makes it), as an Answer: initrd files named by the image's manifest."""
    from guestboot.pipeline import Request, run as run_pipeline

    fd = os.open(image, os.O_RDONLY)
    try:
        result = run_pipeline(Request("plan", ((fd, str(image)),)))
    finally:
        os.close(fd)
    names = []
    for ref in result["initrds"]:
        key = (ref["device"], ref["path"])
        names.append(manifest.get(key) or manifest.get(("*", ref["path"]))
                     or f"<not a marker: ({key[0]}){key[1]}>")
    entry = result["entry"]["title"] if result.get("entry") else None
    return Answer(result["cmdline"], tuple(sorted(names)), entry)


def agree(ours: Answer, theirs: Answer) -> bool:
    """Same command line and initrds; the same entry where the bootloader showed one."""
    return (ours.cmdline, ours.initrds) == (theirs.cmdline, theirs.initrds) and (
        theirs.entry is None or ours.entry == theirs.entry)


def explain(what: str, bootloader: str, ours: Answer, theirs: Answer) -> str:
    return f"{what}:\n  guestboot: {ours}\n  {bootloader}: {theirs}"


# --- golden files --------------------------------------------------------------------------


@dataclass
class Golden:
    """A real bootloader's recorded answer on a case."""

    bootloader: str  # which bootloader and version answered
    booted: Answer
    after: dict = field(default_factory=dict)  # state the boot left (GRUB: its grubenv)
    note: str = ""  # the case's description, for a reader of the file

    def data(self) -> dict:
        return {"bootloader": self.bootloader, "booted": self.booted.data(), "after": self.after, "note": self.note}


def golden_path(bootloader: str, case: str) -> Path:
    return GOLDEN / bootloader / f"{case}.json"


def load_golden(bootloader: str, case: str) -> Golden | None:
    path = golden_path(bootloader, case)
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    return Golden(data["bootloader"], Answer.from_data(data["booted"]), data.get("after", {}), data.get("note", ""))


def save_golden(bootloader: str, case: str, golden: Golden) -> None:
    path = golden_path(bootloader, case)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(golden.data(), indent=2, sort_keys=True) + "\n")


def package_version(package: str) -> str:
    """The installed Debian package's version ("2.06-13+deb12u2"), or "unknown"."""
    done = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", package], capture_output=True, text=True, check=False)
    return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else "unknown"


# --- the two checks every case makes ----------------------------------------------------------

_IMAGES: dict[str, DiskImage] = {}


def cached_image(key: str, build: Callable[[], DiskImage]) -> DiskImage:
    """A case's image, built once per session (a missing tool or package: unavailable())."""
    if key not in _IMAGES:
        try:
            _IMAGES[key] = build()
        except ToolMissing as err:
            unavailable(str(err))
    return _IMAGES[key]


def check_recorded(bootloader: str, case: str, note: str, disk: DiskImage) -> None:
    """guestboot chooses on ``disk`` what the real bootloader booted when recorded."""
    golden = load_golden(bootloader, case)
    if golden is None:
        pytest.fail(f"no golden file for {case}: boot it with {MODE_ENV}=record")
    ours = guestboot_answer(disk.path, disk.manifest)
    assert agree(ours, golden.booted), explain(f"{case} ({note})", f"real {bootloader}", ours, golden.booted)


def check_boot(bootloader: str, version: str, case: str, note: str, disk: DiskImage, theirs: Answer,
               seconds: float, after: dict | None = None) -> None:
    """A live boot's answer (and the state it left) equals the golden file (written first
    in record mode), and guestboot chooses the same on ``disk``."""
    print(f"{case}: {bootloader} boot took {seconds:.1f} s")
    after = after or {}
    if mode() == "record":
        save_golden(bootloader, case, Golden(version, theirs, after, note))
    golden = load_golden(bootloader, case)
    assert golden is not None, f"no golden file for {case}: boot it with {MODE_ENV}=record"
    assert (theirs, after) == (golden.booted, golden.after), (
        f"real {bootloader} ({version}) now boots differently from the golden file ({golden.bootloader}):\n"
        f"  now:      {theirs} {after}\n  recorded: {golden.booted} {golden.after}")
    ours = guestboot_answer(disk.path, disk.manifest)
    assert agree(ours, theirs), explain(f"{case} ({note})", f"real {bootloader}", ours, theirs)
