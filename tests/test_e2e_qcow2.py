"""End to end through an image format: the Debian 12 GPT guest (tests/builders/
guest_images.py) converted by qemu-img to a zstd-compressed qcow2, under an empty
overlay (a backing chain); `guestboot extract --allow-backing-dir` writes the default
entry's kernel and initrd, and that pair boots in QEMU (TCG) with the command line
extract printed. One boot."""

from __future__ import annotations

import subprocess
import sys

import pytest
from prereq import unavailable

from builders.boot import boot, qemu_available
from builders.guest_images import session_image
from builders.image_formats import qemu_img
from builders.initramfs import ToolMissing

pytestmark = pytest.mark.slow


def test_a_compressed_qcow2_chain_boots(tmp_path_factory, tmp_path):
    try:
        debian = session_image(tmp_path_factory, "debian12-gpt")
        qemu_img("convert", "-f", "raw", "-O", "qcow2", "-c", "-o", "compression_type=zstd", str(debian.path),
                 str(tmp_path / "base.qcow2"))
    except ToolMissing as err:
        unavailable(str(err))
    missing = qemu_available()
    if missing:
        unavailable(missing)
    qemu_img("create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", "guest.qcow2", cwd=tmp_path)
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "guestboot", "extract", "--allow-backing-dir", str(tmp_path),
                           str(tmp_path / "guest.qcow2"), "-o", str(out)], capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    default = debian.default
    assert (out / "kernel").read_bytes() == debian.kernel_bytes(default)
    assert (out / "initrd").read_bytes() == debian.initrd_bytes(default)
    cmdline = done.stdout.decode().rstrip("\n")
    assert cmdline == default.cmdline
    report = boot(out / "kernel", out / "initrd", cmdline)
    print(f"QEMU/TCG boot took {report.seconds:.1f} s")
    assert report.cmdline == default.cmdline
