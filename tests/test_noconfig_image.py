"""A config-less Debian guest made by the real tools: an ext4 root file system (mke2fs -d
from the tree below, a fixed UUID) on an MBR disk (sfdisk), holding two kernels in /boot
(the real Debian kernel under two versions), an initrd for each (our marker initramfs),
Debian's /vmlinuz and /initrd.img links and an /etc/fstab naming the root by UUID, and no
boot loader config at all. `guestboot list` shows the kernels newest first and explains
the default. (tests/test_acceptance_guests.py, debian-no-config, boots the default of
such a guest in QEMU: the guest sees root=UUID=… from the fstab and its version's initrd.)

Debian packages: e2fsprogs, fdisk, qemu-system-x86 (and the kernel from Debian's archive).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from builders import boot as boot_builder
from builders import disk as disk_builder
from builders.initramfs import ToolMissing, build_initramfs
from prereq import unavailable

UUID = "5b1e0c1a-7d2f-4e3b-9a8c-6d5e4f3a2b1c"
OLD = "5.10.0-28-amd64"


def guestboot(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "guestboot", *argv], capture_output=True, timeout=300,
                          stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def debian_without_config(tmp_path_factory) -> dict:
    for tool, package in (("mke2fs", "e2fsprogs"), ("sfdisk", "fdisk")):
        if shutil.which(tool) is None:
            unavailable(f"{tool} not found (apt-get install {package})")
    try:
        kernel = boot_builder.debian_kernel()
        release = boot_builder.kernel_release(kernel)
    except ToolMissing as err:
        unavailable(str(err))
    work = tmp_path_factory.mktemp("noconfig")
    tree = work / "tree"
    (tree / "boot").mkdir(parents=True)
    (tree / "etc").mkdir()
    (tree / "sbin").mkdir()
    for version in (release, OLD):
        shutil.copyfile(kernel, tree / "boot" / f"vmlinuz-{version}")
        build_initramfs(tree / "boot" / f"initrd.img-{version}", f"initrd-{version}")
    (tree / "vmlinuz").symlink_to(f"boot/vmlinuz-{release}")
    (tree / "initrd.img").symlink_to(f"boot/initrd.img-{release}")
    (tree / "vmlinuz.old").symlink_to(f"boot/vmlinuz-{OLD}")
    (tree / "etc" / "fstab").write_text(f"# /etc/fstab\nUUID={UUID} / ext4 errors=remount-ro 0 1\n")
    part = work / "root.img"
    subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", "-U", UUID, "-d", str(tree), str(part), "128M"],
                   check=True, capture_output=True)
    disk = disk_builder.sfdisk_image(work / "disk.img", part.stat().st_size + (1 << 20),
                                     "label: dos\nstart=2048, type=83\n")
    disk_builder.place_image(disk, 2048 * 512, part)
    return {"disk": disk, "tree": tree, "release": release}


def test_list_shows_the_kernels_and_explains_the_default(debian_without_config):
    release = debian_without_config["release"]
    done = guestboot("list", "--json", str(debian_without_config["disk"]))
    assert done.returncode == 0, done.stderr.decode()
    menu = json.loads(done.stdout)
    assert menu["config"] == "(hd0,msdos1)/boot"
    assert [(e["title"], e["default"]) for e in menu["entries"]] == [
        (f"vmlinuz-{release}", True), (f"vmlinuz-{OLD}", False)]
    text = guestboot("list", str(debian_without_config["disk"]))
    said = text.stdout.decode() + text.stderr.decode()
    assert "no boot configuration found" in said and f"root=UUID={UUID}" in said, said
