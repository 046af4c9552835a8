"""The hypervisor front doors on the guest of tests/builders/kernel_guest.py.

- ``guestboot boot`` extracts into a private directory and boots the guest in QEMU (TCG),
  console on its stdout: the guest's /init prints the command line the kernel got and the
  initrd it unpacked (one boot). The directory is gone afterwards.
- ``guestboot qemu`` prints a command whose files are a fresh directory per run: the
  second run never names the first run's files (the README's old recipe reused them).
- ``guestboot firecracker``: the boot-source body of Firecracker's API. The schema is
  ``BootSource`` in src/firecracker/swagger/firecracker.yaml of
  github.com/firecracker-microvm/firecracker (commit 81b38b9dad60): an object with
  ``kernel_image_path`` required and ``boot_args``, ``initrd_path`` optional, all strings.
  Its docs/rootfs-and-kernel-setup.md: on x86_64 an uncompressed ELF vmlinux is the
  recommended kernel; the one handed over is byte for byte what the real xz gets out of
  the bzImage (Linux's extract-vmlinux way), and inspection says ELF x86_64 with PVH.
- ``guestboot cloud-hypervisor``: arguments as its README shows them (``--kernel``,
  ``--cmdline``, ``--initramfs`` from cloud-hypervisor/src/main.rs, ``--disk path=``,
  ``--serial tty --console off``; github.com/cloud-hypervisor/cloud-hypervisor commit
  ae44c2971c83); the kernel an ELF with a PVH entry; a kernel without one is refused.
- ``guestboot libvirt``: the ``<os>`` element; the libvirt test (defining and starting a
  domain) is in test_front_doors_libvirt.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from builders.boot import qemu_available
from builders.debian_files import vmlinux_of
from builders.initramfs import CMDLINE_MARKER, DONE_MARKER, INITRD_MARKER, ToolMissing
from guestboot.kernel.inspect import inspect
from guestboot.source import FileSource
from prereq import unavailable


@pytest.fixture(scope="session")
def guest():
    from builders.kernel_guest import shared_guest

    try:
        return shared_guest()
    except ToolMissing as err:
        unavailable(str(err))


def guestboot(*argv: str, cwd=None, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "guestboot", *argv], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, stdin=subprocess.DEVNULL)
    if check and done.returncode != 0:
        raise AssertionError(f"guestboot {' '.join(argv)}: exit {done.returncode}: {done.stderr}")
    return done


def _sha(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


@pytest.mark.timeout(400)
def test_boot_runs_the_guest_with_its_console_here(guest, tmp_path):
    if qemu_available():
        unavailable(qemu_available())
    env_tmp = tmp_path / "tmp"
    env_tmp.mkdir()
    done = subprocess.run([sys.executable, "-m", "guestboot", "boot", str(guest.image), "--accel", "tcg",
                           "--memory", "512", "--", "-no-reboot"],
                          capture_output=True, text=True, timeout=360, stdin=subprocess.DEVNULL,
                          env={**os.environ, "TMPDIR": str(env_tmp)})
    console = done.stdout.replace("\r", "")
    lines = [line.partition(CMDLINE_MARKER)[2] for line in console.splitlines() if CMDLINE_MARKER in line]
    assert DONE_MARKER in console, console[-3000:]
    assert lines == [f"BOOT_IMAGE=/boot/vmlinuz-{guest.release} root=UUID={guest_root(guest)} ro quiet"
                     " guestboot.entry=debian console=ttyS0"]
    initrd = [line.partition(INITRD_MARKER)[2] for line in console.splitlines() if INITRD_MARKER in line]
    assert initrd == [f"initrd.img-{guest.release}"]
    assert list(env_tmp.iterdir()) == []  # the private directory is gone


def guest_root(guest) -> str:
    from builders.kernel_guest import ROOT_UUID

    return ROOT_UUID


def test_qemu_prints_a_command_on_fresh_files(guest, tmp_path):
    first = shlex.split(guestboot("qemu", str(guest.image), "-o", str(tmp_path), "--", "-smp", "2").stdout)
    second = shlex.split(guestboot("qemu", str(guest.image), "-o", str(tmp_path)).stdout)
    kernel1, kernel2 = first[first.index("-kernel") + 1], second[second.index("-kernel") + 1]
    assert os.path.dirname(kernel1) != os.path.dirname(kernel2)
    assert {os.path.dirname(kernel1), os.path.dirname(kernel2)} == {str(p) for p in tmp_path.iterdir()}
    assert _sha(kernel1) == _sha(guest.tree / "boot" / f"vmlinuz-{guest.release}")
    assert _sha(first[first.index("-initrd") + 1]) == _sha(guest.tree / "boot" / f"initrd.img-{guest.release}")
    assert first[first.index("-append") + 1].endswith("guestboot.entry=debian")
    assert first[first.index("-drive") + 1] == f"file={guest.image},format=raw,if=virtio"
    assert first[-2:] == ["-smp", "2"] and first[0] == "qemu-system-x86_64"


def test_firecracker_boot_source_is_the_elf_vmlinux(guest, tmp_path):
    body = json.loads(guestboot("firecracker", str(guest.image), "-o", str(tmp_path)).stdout)
    # firecracker.yaml, definitions/BootSource: kernel_image_path required; three string properties
    assert set(body) <= {"kernel_image_path", "boot_args", "initrd_path"} and "kernel_image_path" in body
    assert all(isinstance(value, str) for value in body.values())
    vmlinux, _codec = vmlinux_of(guest.tree / "boot" / f"vmlinuz-{guest.release}")
    assert _sha(body["kernel_image_path"]) == _sha(vmlinux)
    fd = os.open(body["kernel_image_path"], os.O_RDONLY)
    try:
        facts = inspect(FileSource(fd, name="vmlinux"))
    finally:
        os.close(fd)
    assert facts.format == "elf" and facts.arch == "x86_64" and facts.release == guest.release
    assert body["boot_args"].endswith("guestboot.entry=debian")
    assert _sha(body["initrd_path"]) == _sha(guest.tree / "boot" / f"initrd.img-{guest.release}")


def test_cloud_hypervisor_arguments_and_refusal(guest, tmp_path):
    argv = shlex.split(guestboot("cloud-hypervisor", str(guest.image), "-o", str(tmp_path)).stdout)
    assert argv[0] == "cloud-hypervisor"
    options = dict(zip(argv[1::2], argv[2::2]))
    assert set(options) == {"--kernel", "--cmdline", "--memory", "--cpus", "--serial", "--console", "--initramfs",
                            "--disk"}
    fd = os.open(options["--kernel"], os.O_RDONLY)
    try:
        facts = inspect(FileSource(fd, name="vmlinux"))
    finally:
        os.close(fd)
    assert facts.format == "elf" and facts.pvh is not None
    assert options["--disk"] == f"path={guest.image}"
    refused = guestboot("cloud-hypervisor", str(guest.image), "-o", str(tmp_path / "x"), "--entry", "1", check=False)
    assert refused.returncode == 4 and "memtest86+x64.bin" in refused.stderr and "no ELF kernel" in refused.stderr


def test_libvirt_os_element(guest, tmp_path):
    text = guestboot("libvirt", str(guest.image), "-o", str(tmp_path), "--console").stdout
    os_el = ET.fromstring(text)
    assert os_el.tag == "os" and os_el.find("type").text == "hvm"
    assert _sha(os_el.find("kernel").text) == _sha(guest.tree / "boot" / f"vmlinuz-{guest.release}")
    assert os_el.find("cmdline").text.endswith("guestboot.entry=debian console=ttyS0")
    pv = ET.fromstring(guestboot("libvirt", str(guest.image), "-o", str(tmp_path), "--guest-type", "pv").stdout)
    assert pv.find("type").text == "xen"


@pytest.mark.timeout(600)
def test_boot_xen_with_its_modules(guest, tmp_path):
    """The multiboot2 entry (Xen, the Debian kernel and initrd as modules) through
    ``guestboot boot``: QEMU's multiboot loader starts the decompressed Xen, which prints
    its command line, builds dom0 from module 1 (a PV 64-bit kernel) with module 2 as its
    initrd, and dom0's kernel prints the command line module 1 was given. The guest's
    /init (from module 2) powers the machine off; what it echoes is not relied on (dom0's
    console may not flush before power-off)."""
    if qemu_available():
        unavailable(qemu_available())
    env_tmp = tmp_path / "tmp"
    env_tmp.mkdir()
    done = subprocess.run([sys.executable, "-m", "guestboot", "boot", str(guest.image), "--entry", "2",
                           "--accel", "tcg", "--memory", "1536", "--", "-no-reboot"],
                          capture_output=True, text=True, timeout=560, stdin=subprocess.DEVNULL,
                          env={**os.environ, "TMPDIR": str(env_tmp)})
    console = done.stdout.replace("\r", "")
    assert "(XEN) Command line: placeholder dom0_mem=512M console=com1\n" in console, console[-3000:]
    # Xen's dom0 builder says what it loaded: "Dom0 kernel: 64-bit, PAE, lsb" on Xen 4.17,
    # "Dom0 kernel: 64-bit, lsb, paddr …" on Xen 4.20 (Debian 13), and on 4.17 the
    # "Init. ramdisk: START->END" line (checked where printed). On every release dom0's own
    # kernel line (module 1 with its arguments) and its /init, which only module 2 holds
    # (Debian's kernel has no built-in initramfs), are required below.
    required = "Xen version 4.17" in console  # Debian 12's Xen prints the ramdisk line
    kernel_line = re.search(r"\(XEN\)\s+Dom0 kernel: (.*)", console)
    assert kernel_line, console[-3000:]
    assert re.match(r"64-bit, (PAE, )?lsb", kernel_line.group(1)), kernel_line.group(0)
    initrd_size = (guest.tree / "boot" / f"initrd.img-{guest.release}").stat().st_size
    found = re.search(r"\(XEN\)\s+Init\. ramdisk: ([0-9a-f]+)->([0-9a-f]+)", console)
    if found or required:
        assert found and int(found.group(2), 16) - int(found.group(1), 16) == initrd_size
    assert (f"Kernel command line: placeholder root=UUID={guest_root(guest)} ro console=hvc0"
            " guestboot.entry=xen-dom0\n") in console
    assert "Run /init as init process" in console and "reboot: Power down" in console
    assert list(env_tmp.iterdir()) == []


def test_qemu_expresses_multiboot_modules(guest, tmp_path):
    argv = shlex.split(guestboot("qemu", str(guest.image), "-o", str(tmp_path), "--entry", "2").stdout)
    out = next(tmp_path.iterdir())
    assert argv[argv.index("-append") + 1] == "placeholder dom0_mem=512M console=com1"
    modules = argv[argv.index("-initrd") + 1].split(",")
    assert modules == [f"{out}/module-1 placeholder root=UUID={guest_root(guest)} ro console=hvc0 guestboot.entry=xen-dom0",
                       f"{out}/module-2"]
    assert _sha(out / "module-1") == _sha(guest.tree / "boot" / f"vmlinuz-{guest.release}")
