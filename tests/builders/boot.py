"""A real Debian kernel, and booting kernel + initrd in QEMU to read what the kernel got.

``debian_kernel()`` downloads the package that ``linux-image-amd64`` depends on right now
(``apt-get download``, no version written here), unpacks its boot/vmlinuz-* and keeps it
in the cache directory ($GUESTBOOT_TEST_CACHE, default ~/.cache/guestboot-tests), so one
CI run downloads it once.

``boot()`` runs qemu-system-x86_64 with TCG (no KVM needed) on a kernel and an initrd
from tests/builders/initramfs.py, under a hard timeout, and returns the command line and
initrd names the guest printed.

Debian packages: qemu-system-x86, apt (apt-get download, dpkg-deb), busybox-static, cpio.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .initramfs import CMDLINE_MARKER, DONE_MARKER, INITRD_MARKER, ToolMissing

CACHE_ENV = "GUESTBOOT_TEST_CACHE"
KERNEL_META_PACKAGE = "linux-image-amd64"
QEMU = "qemu-system-x86_64"
CONSOLE_ARG = "console=ttyS0"
BOOT_TIMEOUT = 120.0


def cache_dir() -> Path:
    path = Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "guestboot-tests")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _run(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False, **kwargs)


def kernel_package() -> str:
    """The versioned kernel package the meta package depends on (apt-cache's candidate)."""
    if not shutil.which("apt-cache"):
        raise ToolMissing("apt-cache not found: the Debian kernel comes from Debian's archive")
    done = _run(["apt-cache", "depends", KERNEL_META_PACKAGE])
    found = re.findall(r"^\s*Depends:\s*(linux-image-\S+-amd64)\s*$", done.stdout.decode(), re.M)
    if done.returncode != 0 or not found:
        raise ToolMissing(
            f"apt-cache knows no {KERNEL_META_PACKAGE} dependency (run apt-get update): "
            + done.stderr.decode(errors="replace").strip()
        )
    return found[0]


def debian_kernel(cache: Path | None = None) -> Path:
    """Path of a cached real Debian vmlinuz (downloaded and unpacked on first use)."""
    cache = cache or cache_dir()
    try:
        package = kernel_package()
    except ToolMissing:
        cached = sorted(cache.glob("linux-image-*.vmlinuz"))
        if cached:  # no package lists (offline, or before apt-get update): reuse a download
            return cached[-1]
        raise
    kernel = cache / f"{package}.vmlinuz"
    if kernel.is_file():
        return kernel
    with tempfile.TemporaryDirectory(prefix="kernel-", dir=cache) as tmp:
        done = _run(["apt-get", "download", package], cwd=tmp)
        debs = sorted(Path(tmp).glob(f"{package}_*.deb"))
        if done.returncode != 0 or not debs:
            raise ToolMissing(
                f"apt-get download {package} failed: " + done.stderr.decode(errors="replace").strip()
            )
        payload = Path(tmp) / "data.tar"
        with open(payload, "wb") as out:
            unpack = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(debs[0])], stdout=out,
                                    stderr=subprocess.PIPE, check=False)
        if unpack.returncode != 0:
            raise RuntimeError(f"dpkg-deb --fsys-tarfile {debs[0].name}: {unpack.stderr.decode().strip()}")
        with tarfile.open(payload) as tar:
            members = [m for m in tar.getmembers()
                       if m.isfile() and re.fullmatch(r"\./boot/vmlinuz-[^/]+", m.name)]
            if len(members) != 1:
                raise RuntimeError(f"{debs[0].name} holds {len(members)} boot/vmlinuz-* files, expected 1")
            source = tar.extractfile(members[0])
            staged = Path(tmp) / "vmlinuz"
            with open(staged, "wb") as out:
                shutil.copyfileobj(source, out)
        os.replace(staged, kernel)  # atomic: a concurrent run sees all or nothing
    return kernel


def kernel_release(kernel: Path) -> str:
    """The release string the bzImage header names ("6.1.0-56-amd64")."""
    data = kernel.read_bytes()[:0x10000]
    # Linux boot protocol (Documentation/arch/x86/boot.rst): kernel_version at 0x20e is an
    # offset, relative to 0x200, of a NUL-terminated version string.
    offset = int.from_bytes(data[0x20E:0x210], "little") + 0x200
    end = data.find(b"\0", offset)
    if data[0x202:0x206] != b"HdrS" or end < 0:
        raise RuntimeError(f"{kernel} is not a bzImage with a version string")
    return data[offset:end].decode("ascii", "replace").split()[0]


@dataclass
class BootReport:
    cmdline: str  # /proc/cmdline as the guest printed it, without our console= prefix
    initrds: list[str]  # names found in /guestboot-id: which archives the kernel unpacked
    seconds: float  # wall time of the whole QEMU run
    console: str  # everything QEMU printed (for failure messages)


def qemu_available() -> str | None:
    """None when QEMU can be used, else the reason it cannot."""
    if not shutil.which(QEMU):
        return f"{QEMU} not found (apt-get install qemu-system-x86)"
    return None


def boot(kernel: Path, initrd: Path | None, cmdline: str, timeout: float = BOOT_TIMEOUT) -> BootReport:
    """Boot ``kernel`` (+ ``initrd``) with ``console=ttyS0 <cmdline>`` and report.

    The initrd must be one of ours (tests/builders/initramfs.py): its /init prints the
    markers and powers off, which ends QEMU. Raises AssertionError with the console text
    when the guest does not report, and on timeout.
    """
    missing = qemu_available()
    if missing:
        raise ToolMissing(missing)
    argv = [
        QEMU, "-machine", "pc", "-accel", "tcg", "-m", "512", "-smp", "1",
        "-nographic", "-no-reboot",
        "-kernel", str(kernel), "-append", f"{CONSOLE_ARG} {cmdline}",
    ]
    if initrd is not None:
        argv += ["-initrd", str(initrd)]
    start = time.monotonic()
    try:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as err:
        text = (err.stdout or b"").decode("utf-8", "replace")
        raise AssertionError(f"QEMU did not finish in {timeout:.0f} s; console:\n{text[-4000:]}") from None
    seconds = time.monotonic() - start
    console = done.stdout.decode("utf-8", "replace").replace("\r", "")
    # a marker may follow terminal escapes left on the line by the firmware
    cmdlines = [l.partition(CMDLINE_MARKER)[2] for l in console.splitlines() if CMDLINE_MARKER in l]
    initrds = [l.partition(INITRD_MARKER)[2] for l in console.splitlines() if INITRD_MARKER in l]
    if len(cmdlines) != 1 or len(initrds) != 1 or DONE_MARKER not in console:
        raise AssertionError(f"the guest did not report (QEMU exit {done.returncode}); console:\n{console[-4000:]}")
    seen = cmdlines[0]
    if not seen.startswith(CONSOLE_ARG + " "):
        raise AssertionError(f"/proc/cmdline does not start with {CONSOLE_ARG!r}: {seen!r}")
    names = sorted(initrds[0].split()) if initrds[0].strip() != "*" else []
    return BootReport(seen[len(CONSOLE_ARG) + 1 :], names, seconds, console)
