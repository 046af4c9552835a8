"""End to end on btrfs: an Ubuntu-style disk (GPT, /boot inside subvolume "@") through
the whole pipeline, and the extracted kernel booted in QEMU.

The disk comes from tests/builders/btrfs_guest.py (sgdisk, mkfs.btrfs, the kernel's btrfs
through a loop mount with compress-force=zstd; the real Debian kernel and our busybox
initramfs). ``guestboot list``/``extract`` find (hd0,gpt2)/@/boot/grub/grub.cfg, pick
GRUB's default and write the kernel and initrd byte for byte; the guest's /proc/cmdline is
the command line ``extract`` printed. The real pygrub cannot read btrfs at all: the test
shows it fails on the same disk where guestboot-pygrub succeeds.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from prereq import need_real_pygrub, unavailable

from builders import btrfs as fs_builder
from builders.boot import boot, debian_kernel, qemu_available
from builders.btrfs_guest import UBUNTU_UUID, BtrfsGuest, build_ubuntu_btrfs
from builders.initramfs import ToolMissing

pytestmark = pytest.mark.slow

CLI_TIMEOUT = 120


@pytest.fixture(scope="session")
def ubuntu(tmp_path_factory) -> BtrfsGuest:
    if why := fs_builder.can_mount():
        unavailable(why)
    try:
        return build_ubuntu_btrfs(tmp_path_factory.mktemp("ubuntu-btrfs"), debian_kernel())
    except ToolMissing as err:
        unavailable(str(err))


def run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *argv], stdin=subprocess.DEVNULL, capture_output=True,
                          timeout=CLI_TIMEOUT, check=False)


def ok(done: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert done.returncode == 0, f"exit {done.returncode}: {done.stderr.decode(errors='replace')}"
    return done


def test_list_finds_the_config_in_the_subvolume(ubuntu):
    out = ok(run("guestboot", "list", str(ubuntu.path))).stdout.decode()
    lines = out.splitlines()
    assert lines[0] == ("(hd0,gpt2)/@/boot/grub/grub.cfg (grub2, debian dialect: "
        "no os-release on the image, no Fedora sign in the config)")
    assert lines[1].split() == ["*", "0", "Ubuntu", f"[gnulinux-simple-{UBUNTU_UUID}]"]
    devices = ok(run("guestboot", "ls", str(ubuntu.path))).stdout.decode()
    assert f"(hd0,gpt2)  btrfs" in devices and f"uuid={UBUNTU_UUID}" in devices


def test_extract_default_and_boot_it(ubuntu, tmp_path):
    if missing := qemu_available():
        unavailable(missing)
    out = tmp_path / "out"
    cmdline = ok(run("guestboot", "extract", str(ubuntu.path), "-o", str(out))).stdout.decode().rstrip("\n")
    assert cmdline == ubuntu.default_cmdline
    boot_dir = ubuntu.system / "boot"
    assert (out / "kernel").read_bytes() == (boot_dir / f"vmlinuz-{ubuntu.release}").read_bytes()
    assert (out / "initrd").read_bytes() == (boot_dir / f"initrd.img-{ubuntu.release}").read_bytes()
    report = boot(out / "kernel", out / "initrd", cmdline)
    print(f"QEMU/TCG boot took {report.seconds:.1f} s")
    assert report.cmdline == ubuntu.default_cmdline
    assert report.initrds == [f"initrd.img-{ubuntu.release}"]


def test_extract_recovery_entry(ubuntu, tmp_path):
    out = tmp_path / "out"
    done = ok(run("guestboot", "extract", str(ubuntu.path), "-o", str(out), "--entry", "Ubuntu (recovery mode)"))
    assert done.stdout.decode().rstrip("\n") == ubuntu.recovery_cmdline


def test_real_pygrub_fails_where_guestboot_pygrub_succeeds(ubuntu, tmp_path):
    """pygrub's libfsimage has no btrfs: it cannot find the kernel's partition."""
    pygrub = need_real_pygrub()
    results = {}
    for who, command in (("pygrub", [str(pygrub)]), ("ours", [sys.executable, "-m", "guestboot.cli.pygrub"])):
        out_dir = tmp_path / who
        out_dir.mkdir()
        result = out_dir / "result"
        result.write_bytes(b"")
        done = subprocess.run([*command, "-q", "--output-format=simple0", f"--output-directory={out_dir}",
                               f"--output={result}", str(ubuntu.path)], stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=CLI_TIMEOUT, check=False)
        results[who] = (done, result.read_bytes())
    theirs, _ = results["pygrub"]
    assert theirs.returncode != 0
    assert b"Unable to find partition containing kernel" in theirs.stderr
    ours, written = results["ours"]
    assert ours.returncode == 0, ours.stderr
    assert written.endswith(f"args {ubuntu.default_args}\0\0".encode())
