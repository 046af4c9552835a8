"""openSUSE's btrfs layout: the system in a snapshot that is the default subvolume.

The image (tests/builders/btrfs_guest.py: mkfs.btrfs, then btrfs subvolume create and
set-default on a loop mount) holds grub.cfg only inside the snapshot, and another /boot
with other kernel bytes at the top-level subvolume. Fedora's and SUSE's GRUB resolve
paths from the default subvolume once btrfs_relative_path is set (rhboot/grub2's
grub-core/fs/btrfs.c; their grub-install sets it in the core image, openSUSE's grub.cfg
again at its top); upstream's and Debian's GRUB resolve them from the top-level one, as
grub-fstest (Debian's GRUB) shows. Discovery finds the config in the default subvolume,
the SUSE dialect (its os-release, in the snapshot) reads the snapshot's kernel, and the
Debian dialect reads the top-level one, as Debian's GRUB does. The snapshot's kernel (a
real Debian one) and initrd boot in QEMU with the entry's command line.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest
from prereq import unavailable

from builders import btrfs as fs_builder
from builders.boot import boot, debian_kernel, qemu_available
from builders.btrfs_guest import SUSE_SNAPSHOT, SUSE_UUID, SuseGuest, build_suse_btrfs
from builders.initramfs import ToolMissing
from guestboot.cli.main import main
from guestboot.image import open_image


@pytest.fixture(scope="module")
def suse(tmp_path_factory) -> SuseGuest:
    if why := fs_builder.can_mount():
        unavailable(why)
    try:
        return build_suse_btrfs(tmp_path_factory.mktemp("suse-btrfs"), debian_kernel())
    except ToolMissing as err:
        unavailable(str(err))


def test_default_subvolume_path_is_what_btrfs_progs_says(suse):
    fd = os.open(suse.path, os.O_RDONLY)
    try:
        fs = open_image(fd, "suse").devices.filesystem("hd0,gpt2")
        assert suse.default_path == SUSE_SNAPSHOT
        assert fs.default_root_path() == f"/{suse.default_path}"
    finally:
        os.close(fd)


def test_list_finds_grub_cfg_in_the_default_subvolume(suse, capsys):
    assert main(["list", str(suse.path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == (f"(hd0,gpt2)/{SUSE_SNAPSHOT}/boot/grub2/grub.cfg (grub2, suse dialect: "
                        f"(hd0,gpt2)/{SUSE_SNAPSHOT}/etc/os-release has 'suse' in ID_LIKE)")
    assert lines[1:] == [f"* 0      openSUSE Tumbleweed  [gnulinux-simple-{SUSE_UUID}]"]


def test_extract_reads_the_snapshots_kernel_and_boots_it(suse, tmp_path, capsys):
    if missing := qemu_available():
        unavailable(missing)
    out = tmp_path / "out"
    assert main(["extract", str(suse.path), "-o", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    where = f"(hd0,gpt2)/{SUSE_SNAPSHOT}/boot"
    assert result["source"] == {"kernel": f"{where}/vmlinuz-{suse.release}",
                                "initrds": [f"{where}/initrd-{suse.release}"]}
    assert result["args"] == suse.args
    assert (out / "kernel").read_bytes() == (suse.system / f"boot/vmlinuz-{suse.release}").read_bytes()
    assert (out / "initrd").read_bytes() == (suse.system / f"boot/initrd-{suse.release}").read_bytes()
    assert result["cmdline"] == f"BOOT_IMAGE=/boot/vmlinuz-{suse.release} {suse.args}"
    report = boot(out / "kernel", out / "initrd", result["cmdline"])
    print(f"QEMU/TCG boot took {report.seconds:.1f} s")
    assert report.cmdline == result["cmdline"]
    assert report.initrds == [f"initrd-{suse.release}"]


def test_debians_grub_reads_from_the_top_as_grub_fstest_does(suse, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["extract", str(suse.path), "-o", str(out), "--grub-dialect", "debian"]) == 0
    capsys.readouterr()
    kernel = (out / "kernel").read_bytes()
    assert kernel == (suse.top / f"boot/vmlinuz-{suse.release}").read_bytes()
    if shutil.which("grub-fstest") is None:
        unavailable("grub-fstest is not installed (package grub-common)")
    grub = subprocess.run(["grub-fstest", str(suse.path), "cat", f"(loop0,gpt2)/boot/vmlinuz-{suse.release}"],
                          capture_output=True, timeout=60)
    assert grub.returncode == 0, grub.stderr.decode()
    assert grub.stdout == kernel
