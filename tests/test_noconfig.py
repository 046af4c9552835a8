"""A guest with no boot configuration at all (boot/noconfig.py), through discover: the
newest kernel (or the one the distribution's /vmlinuz link names) with the initrd of its
version, root= from /etc/fstab or a file-system UUID, and the choice said in the warnings.

The real-image case (a config-less Debian /boot made by mke2fs, booted in QEMU) is in
test_noconfig_image.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dirfs import DirFileSystem, device_map
from prereq import unavailable
from guestboot.boot import find_menu
from guestboot.boot.noconfig import version_key
from guestboot.errors import NotFound
from guestboot.select import choose

UUID = "0f3c9d5e-8a1b-4c2d-9e7f-1a2b3c4d5e6f"


def _tree(top: Path, files: dict[str, str], links: dict[str, str] = {}) -> DirFileSystem:
    for name, text in files.items():
        path = top / name.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for name, target in links.items():
        (top / name.lstrip("/")).symlink_to(target)
    return DirFileSystem(top, uuid=UUID)


def _default(devices):
    menu = find_menu(devices)
    choice = choose(menu)
    return menu, choice.entry.run()


VERSIONS = ["6.1.0-9-amd64", "6.1.0-18-amd64", "5.10.0-28-amd64", "6.1.0-rc7", "0-rescue-abc", "6.10.1", "lts",
            "6.5.6-300.fc39.x86_64", "6.5.12-300.fc39.x86_64", "6.1", "6.1.0", "4.19.0-trunk-amd64", "4.19.0-1-amd64",
            "2.6.32.5", "2.6.32-5-xen-amd64", "6.8.0-31-generic", "6.8.0-101-generic"]


def test_version_order_is_linux_versions():
    """Debian's own sorter (linux-base's linux-version) is the peer."""
    import shutil
    import subprocess

    if shutil.which("linux-version") is None:
        unavailable("linux-version not found (apt-get install linux-base)")
    theirs = subprocess.run(["linux-version", "sort", "--reverse"], input="\n".join(VERSIONS) + "\n",
                            capture_output=True, text=True, check=True).stdout.split()
    assert sorted(VERSIONS, key=version_key, reverse=True) == theirs


def test_newest_kernel_with_its_initrd_and_fstab_root(tmp_path):
    fs = _tree(tmp_path, {
        "/boot/vmlinuz-6.1.0-9-amd64": "", "/boot/initrd.img-6.1.0-9-amd64": "",
        "/boot/vmlinuz-6.1.0-18-amd64": "", "/boot/initrd.img-6.1.0-18-amd64": "",
        "/boot/config-6.1.0-18-amd64": "",
        "/etc/fstab": "# <file system> <mount point> <type>\nUUID=abcd-ef / ext4 errors=remount-ro 0 1\n",
    })
    menu, spec = _default(device_map(hd0=fs))
    assert menu.format == "noconfig" and menu.origin == "hd0:/boot"
    assert [e.title for e in menu.entries] == ["vmlinuz-6.1.0-18-amd64", "vmlinuz-6.1.0-9-amd64"]
    assert spec.kernel.path == "/boot/vmlinuz-6.1.0-18-amd64"
    assert [i.path for i in spec.initrds] == ["/boot/initrd.img-6.1.0-18-amd64"]
    assert spec.args == spec.cmdline == "root=UUID=abcd-ef ro"
    said = " | ".join(menu.warnings)
    assert "no boot configuration found" in said and "the newest version" in said and "/etc/fstab" in said


def test_debian_link_names_the_default(tmp_path):
    fs = _tree(tmp_path, {"/boot/vmlinuz-6.1.0-9-amd64": "", "/boot/vmlinuz-6.1.0-18-amd64": "x"},
               links={"/vmlinuz": "boot/vmlinuz-6.1.0-9-amd64"})
    menu, spec = _default(device_map(hd0=fs))
    assert spec.kernel.path == "/boot/vmlinuz-6.1.0-9-amd64" and spec.initrds == ()
    assert any("the link /vmlinuz names it" in w for w in menu.warnings)
    # no fstab: root= from the UUID of the file system holding /etc or /sbin/init; none here
    assert spec.args == "ro"


@pytest.mark.parametrize(
    "kernel, initrd",
    [
        ("vmlinuz-6.5.6-300.fc39.x86_64", "initramfs-6.5.6-300.fc39.x86_64.img"),  # Fedora
        ("vmlinuz-lts", "initramfs-lts"),  # Alpine
        ("vmlinuz-6.4.0-150600.21-default", "initrd-6.4.0-150600.21-default"),  # SUSE
    ],
)
def test_initrd_names_of_the_distributions(tmp_path, kernel, initrd):
    fs = _tree(tmp_path, {f"/boot/{kernel}": "", f"/boot/{initrd}": "", "/boot/initrd-other": "", "/etc/hostname": ""})
    _menu, spec = _default(device_map(hd0=fs))
    assert spec.initrds[0].path == f"/boot/{initrd}"
    assert spec.args == f"root=UUID={UUID} ro"  # the device holds /etc


def test_separate_boot_partition_and_btrfs_subvolume_root(tmp_path):
    boot = _tree(tmp_path / "boot", {"/vmlinuz-6.1.0-18-amd64": "", "/initrd.img-6.1.0-18-amd64": ""})
    root = _tree(tmp_path / "root", {
        "/@/etc/fstab": "",  # not the root's fstab: only /etc/fstab of a device is read
        "/etc/fstab": "UUID=1111 /boot ext4 defaults 0 2\nUUID=2222 / btrfs defaults,subvol=@,compress=zstd 0 0\n",
    })
    menu, spec = _default(device_map(**{"hd0": None, "hd0,msdos1": boot, "hd0,msdos2": root}))
    assert str(spec.kernel) == "(hd0,msdos1)/vmlinuz-6.1.0-18-amd64"
    assert spec.args == "root=UUID=2222 rootflags=subvol=@ ro"


def test_a_config_anywhere_wins_over_kernels(tmp_path):
    first = _tree(tmp_path / "a", {"/boot/vmlinuz-6.1.0-18-amd64": ""})
    second = _tree(tmp_path / "b", {"/boot/grub/menu.lst": "title t\n kernel /vmlinuz-x\n", "/vmlinuz-x": ""})
    menu = find_menu(device_map(**{"hd0,msdos1": first, "hd0,msdos2": second}))
    assert menu.format == "grub-legacy"


def test_nothing_at_all(tmp_path):
    fs = _tree(tmp_path, {"/etc/fstab": ""})
    with pytest.raises(NotFound, match="vmlinuz-"):
        find_menu(device_map(hd0=fs))


def test_unusual_fstab_root_is_ignored(tmp_path):
    fs = _tree(tmp_path, {"/boot/vmlinuz-1": "", "/etc/fstab": "rootfs / ext4 defaults 0 0\n"})
    menu, spec = _default(device_map(hd0=fs))
    assert spec.args == f"root=UUID={UUID} ro"
    assert any("no device the kernel knows" in w for w in menu.warnings)


def test_hostile_links_and_fstab(tmp_path):
    """A /vmlinuz symlink loop and an fstab past max_config_bytes are warnings, not failures."""
    from guestboot.limits import LIMITS

    fs = _tree(tmp_path, {"/boot/vmlinuz-2": "", "/boot/vmlinuz-10": "", "/sbin/init": ""},
               links={"/vmlinuz": "vmlinuz.old", "/vmlinuz.old": "vmlinuz"})
    (tmp_path / "etc").mkdir()
    with open(tmp_path / "etc/fstab", "wb") as f:
        f.truncate(LIMITS.max_config_bytes + 1)
    menu, spec = _default(device_map(hd0=fs))
    assert spec.kernel.path == "/boot/vmlinuz-10" and spec.args == f"root=UUID={UUID} ro"
    said = " | ".join(menu.warnings)
    assert "/vmlinuz:" in said and "/etc/fstab:" in said
