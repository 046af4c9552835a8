"""``guestboot libvirt --domain`` with the real libvirt: Debian's libvirt-daemon-system and
its QEMU driver. The test starts virtlogd and libvirtd itself (unless they already run;
it stops only what it started, by pid), checks the domain XML with ``virt-xml-validate``
(libvirt's own RelaxNG schema), defines the domain, starts it under TCG (domain type
"qemu") and reads the serial log for the command line the guest's kernel received.

Debian packages: libvirt-daemon-system, libvirt-daemon-driver-qemu, libvirt-clients,
libxml2-utils (xmllint, which virt-xml-validate runs).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from builders.initramfs import CMDLINE_MARKER, DONE_MARKER, INITRD_MARKER, ToolMissing
from prereq import unavailable

URI = "qemu:///system"
BOOT_SECONDS = 240


def virsh(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["virsh", "-c", URI, *argv], capture_output=True, text=True, timeout=120, check=check)


@pytest.fixture(scope="module")
def libvirt(tmp_path_factory):
    for tool in ("libvirtd", "virtlogd", "virsh", "virt-xml-validate", "xmllint"):
        if shutil.which(tool) is None and not os.path.exists(f"/usr/sbin/{tool}"):
            unavailable(f"{tool} not found (apt-get install libvirt-daemon-system libvirt-clients libxml2-utils)")
    if os.geteuid() != 0:
        unavailable("the libvirt test runs libvirtd as root (qemu:///system)")
    run_dir = tmp_path_factory.mktemp("libvirt")
    started: list[int] = []
    if virsh("version", check=False).returncode != 0:
        for daemon in ("virtlogd", "libvirtd"):
            pid_file = run_dir / f"{daemon}.pid"
            subprocess.run([shutil.which(daemon) or f"/usr/sbin/{daemon}", "--daemon", "--pid-file", str(pid_file)],
                           check=True, timeout=60)
            for _ in range(100):
                if pid_file.exists() and pid_file.read_text().strip():
                    break
                time.sleep(0.1)
            started.append(int(pid_file.read_text()))
        for _ in range(100):
            if virsh("version", check=False).returncode == 0:
                break
            time.sleep(0.2)
        else:
            pytest.fail(f"libvirtd did not answer on {URI}")
    yield
    for pid in reversed(started):
        os.kill(pid, signal.SIGTERM)


@pytest.fixture(scope="module")
def work():
    """A directory libvirt's QEMU (user libvirt-qemu) can reach: pytest's own are 0700."""
    import tempfile
    from pathlib import Path

    top = Path(tempfile.mkdtemp(prefix="guestboot-libvirt-"))
    top.chmod(0o711)
    yield top
    shutil.rmtree(top, ignore_errors=True)


@pytest.fixture(scope="session")
def guest():
    from builders.kernel_guest import shared_guest

    try:
        return shared_guest()
    except ToolMissing as err:
        unavailable(str(err))


@pytest.mark.timeout(BOOT_SECONDS + 120)
def test_libvirt_domain_boots_the_extracted_kernel(libvirt, guest, work):
    from builders.kernel_guest import ROOT_UUID

    tmp_path = work / "out"
    tmp_path.mkdir(mode=0o711)

    name = f"guestboot-test-{os.getpid()}"
    log = tmp_path / "serial.log"
    done = subprocess.run([sys.executable, "-m", "guestboot", "libvirt", str(guest.image), "-o", str(tmp_path),
                           "--domain", name, "--console", "--memory", "512", "--serial-log", str(log)],
                          capture_output=True, text=True, timeout=300, check=True)
    xml = tmp_path / "domain.xml"
    xml.write_text(done.stdout)
    checked = subprocess.run(["virt-xml-validate", str(xml), "domain"], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    virsh("define", str(xml))
    try:
        started = virsh("start", name, check=False)
        assert started.returncode == 0, started.stderr
        deadline = time.monotonic() + BOOT_SECONDS
        text = ""
        while time.monotonic() < deadline:
            text = log.read_text(errors="replace") if log.exists() else ""
            if DONE_MARKER in text:
                break
            time.sleep(1)
        lines = [l.partition(CMDLINE_MARKER)[2] for l in text.replace("\r", "").splitlines() if CMDLINE_MARKER in l]
        assert lines == [f"BOOT_IMAGE=/boot/vmlinuz-{guest.release} root=UUID={ROOT_UUID} ro quiet"
                         " guestboot.entry=debian console=ttyS0"], text[-3000:]
        assert any(l.endswith(f"{INITRD_MARKER}initrd.img-{guest.release}") for l in text.splitlines())
    finally:
        virsh("destroy", name, check=False)
        virsh("undefine", name, check=False)
