"""GRUB legacy as Solaris/illumos use it (findroot, bootfs, kernel$/module$ with $ISADIR
and $ZFS-BOOTFS; a multiboot kernel with its boot_archive), and pygrub's Solaris
sniffing (an i86xpv kernel boots before any config: Xen's tools/pygrub/src/pygrub,
sniff_solaris; Debian's xen-utils-4.17 pygrub lacks it, upstream's has it).

The menu.lst below is in the layout illumos's bootadm writes (its own comment block, the
entries between the BOOTADM markers). The image case puts it on an ext2 file system made
by mke2fs -d (illumos itself would use ZFS, which guestboot does not read; the config's
semantics do not depend on the file system).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dirfs import DirFileSystem, device_map
from guestboot.boot import find_menu
from guestboot.errors import ConfigError, NotFound, Unsupported
from guestboot.select import choose
from prereq import unavailable

MENU_LST = """\
#pragma ident	"@(#)menu.lst	1.1	05/09/01 SMI"
#
# default menu entry to boot
default 1
#
# menu timeout in second before default OS is booted
timeout 10
#
# To load a Solaris instance based on grub:
# If GRUB determines if the booting system is 64-bit capable,
# the kernel$ command sets the ISADIR variable to "amd64"
#
#---------- ADDED BY BOOTADM - DO NOT EDIT ----------
title OpenIndiana Hipster 2023.10 (old BE)
findroot (pool_rpool,0,a)
bootfs rpool/ROOT/openindiana-1
kernel$ /platform/i86pc/kernel/$ISADIR/unix -B $ZFS-BOOTFS
module$ /platform/i86pc/$ISADIR/boot_archive
#---------------------END BOOTADM--------------------
#---------- ADDED BY BOOTADM - DO NOT EDIT ----------
title OpenIndiana Hipster 2024.04
findroot (pool_rpool,0,a)
bootfs rpool/ROOT/openindiana-2
splashimage /boot/splashimage.xpm
foreground FF0000
background A8A8A8
kernel$ /platform/i86pc/kernel/$ISADIR/unix -B $ZFS-BOOTFS,console=ttya
module$ /platform/i86pc/$ISADIR/boot_archive
#---------------------END BOOTADM--------------------
title Solaris failsafe
findroot (pool_rpool,0,a)
kernel /boot/platform/i86pc/kernel/unix -s
module /boot/x86.miniroot-safe
"""

FILES = ("/platform/i86pc/kernel/amd64/unix", "/platform/i86pc/amd64/boot_archive",
         "/boot/platform/i86pc/kernel/unix", "/boot/x86.miniroot-safe")


def _tree(top: Path, files=FILES, menu: str | None = MENU_LST, sign: str | None = "pool_rpool") -> Path:
    for name in files:
        path = top / name.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\x7fELF" + name.encode())
    if menu is not None:
        (top / "boot/grub").mkdir(parents=True, exist_ok=True)
        (top / "boot/grub/menu.lst").write_text(menu)
    if sign is not None:
        (top / "boot/grub/bootsign").mkdir(parents=True, exist_ok=True)
        (top / "boot/grub/bootsign" / sign).write_text("")
    return top


def test_illumos_menu_lst(tmp_path):
    # the config on hd0,msdos1; findroot's signature (and the kernels) on hd0,msdos2
    config = _tree(tmp_path / "a", files=(), sign=None)
    root = _tree(tmp_path / "b", menu=None)
    menu = find_menu(device_map(**{"hd0": None, "hd0,msdos1": DirFileSystem(config), "hd0,msdos2": DirFileSystem(root)}))
    assert menu.format == "grub-legacy"
    assert [e.title for e in menu.entries] == [
        "OpenIndiana Hipster 2023.10 (old BE)", "OpenIndiana Hipster 2024.04", "Solaris failsafe"]
    choice = choose(menu)
    assert choice.path == (1,)
    spec = choice.entry.run()
    assert str(spec.kernel) == "(hd0,msdos2)/platform/i86pc/kernel/amd64/unix"
    assert [str(i) for i in spec.initrds] == ["(hd0,msdos2)/platform/i86pc/amd64/boot_archive"]
    # a multiboot kernel gets "FILE ARGS"; Solaris reads its own path first
    assert spec.args == "/platform/i86pc/kernel/amd64/unix -B zfs-bootfs=rpool/ROOT/openindiana-2,console=ttya"
    assert spec.loader == "multiboot"
    assert any("findroot (pool_rpool) is (hd0,msdos2)" in w for w in menu.warnings)
    failsafe = menu.entries[2].run()
    assert failsafe.args == "/boot/platform/i86pc/kernel/unix -s"
    assert [i.path for i in failsafe.initrds] == ["/boot/x86.miniroot-safe"]


def test_findroot_without_its_signature_fails_the_entry(tmp_path):
    menu = find_menu(device_map(hd0=DirFileSystem(_tree(tmp_path, sign="pool_other"))))
    with pytest.raises(NotFound, match="bootsign/pool_rpool"):
        menu.entries[1].run()


@pytest.mark.parametrize("body, error", [
    ("findroot pool_rpool\nkernel /platform/i86pc/kernel/amd64/unix\n", ConfigError),  # no parentheses
    ("findroot (../x,0,a)\nkernel /platform/i86pc/kernel/amd64/unix\n", ConfigError),
    ("kernel$ /platform/i86pc/kernel/$ISADIR/unix -B $ZFS-BOOTFS\n", ConfigError),  # no bootfs before
    # a multiboot entry that is not Solaris: Xen with a Linux module
    ("kernel /xen.gz\nmodule /vmlinuz root=/dev/sda1\n", Unsupported),
])
def test_bad_solaris_lines(tmp_path, body, error):
    _tree(tmp_path, files=FILES + ("/xen.gz", "/vmlinuz"), menu=f"title t\n{body}")
    menu = find_menu(device_map(hd0=DirFileSystem(tmp_path)))
    with pytest.raises(error):
        menu.entries[0].run()


def test_pygrub_sniffs_the_xen_pv_kernel_first(tmp_path):
    files = FILES + ("/platform/i86xpv/kernel/amd64/unix",)
    menu = find_menu(device_map(hd0=DirFileSystem(_tree(tmp_path, files=files))))
    assert menu.format == "solaris-xpv"  # the menu.lst is not read, as in pygrub
    spec = choose(menu).entry.run()
    assert spec.kernel.path == "/platform/i86xpv/kernel/amd64/unix"
    assert [i.path for i in spec.initrds] == ["/platform/i86pc/amd64/boot_archive"]
    assert spec.args == "/platform/i86xpv/kernel/amd64/unix"


def test_pygrub_sniff_32_bit_and_missing_ramdisk(tmp_path):
    menu = find_menu(device_map(hd0=DirFileSystem(_tree(tmp_path, files=("/platform/i86xpv/kernel/unix",), menu=None))))
    with pytest.raises(NotFound, match="/platform/i86pc/boot_archive"):
        menu.entries[0].run()


def test_illumos_image_lists_as_grub_would(tmp_path):
    """`guestboot list` on an ext2 image holding the illumos menu.lst and its files."""
    if shutil.which("mke2fs") is None:
        unavailable("mke2fs not found (apt-get install e2fsprogs)")
    tree = _tree(tmp_path / "tree")
    image = tmp_path / "illumos.img"
    subprocess.run(["mke2fs", "-q", "-F", "-t", "ext2", "-d", str(tree), str(image), "8M"], check=True,
                   capture_output=True)
    done = subprocess.run([sys.executable, "-m", "guestboot", "list", "--json", str(image)], capture_output=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr.decode()
    listed = json.loads(done.stdout)
    assert listed["config"] == "(hd0)/boot/grub/menu.lst"
    assert [(e["title"], e["default"], e["kernel"]) for e in listed["entries"]] == [
        ("OpenIndiana Hipster 2023.10 (old BE)", False, "(hd0)/platform/i86pc/kernel/amd64/unix"),
        ("OpenIndiana Hipster 2024.04", True, "(hd0)/platform/i86pc/kernel/amd64/unix"),
        ("Solaris failsafe", False, "(hd0)/boot/platform/i86pc/kernel/unix"),
    ]
