"""SYSLINUX configs on real images made by the real tools, through the whole pipeline.

* An EXTLINUX guest: Debian's u-boot-update (package u-boot-menu) writes
  /boot/extlinux/extlinux.conf for two kernels (newest first, a rescue entry each), the
  tree goes into an ext4 partition of an MBR disk, and Debian's extlinux installs itself
  there (extlinux --install on the mounted partition; mbr.bin from syslinux-common).
  `guestboot list` shows u-boot-update's entries and default; the default's real Debian
  kernel and its marker initrd, extracted, boot in QEMU and the guest prints the command
  line SYSLINUX builds (BOOT_IMAGE=…, initrd=…).
* An ISOLINUX ISO made by xorriso (isolinux.bin from the isolinux package) whose
  isolinux.cfg uses a menu with MENU DEFAULT and a hidden label; the MENU DEFAULT
  label's kernel (the real Debian kernel) and initrd boot in QEMU.

Debian packages: u-boot-menu, extlinux, syslinux-common, isolinux, xorriso, e2fsprogs,
fdisk (sfdisk), util-linux (mount, losetup, unshare), qemu-system-x86.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from builders import boot as boot_builder
from builders import disk as disk_builder
from builders import iso as iso_builder
from builders.initramfs import ToolMissing, build_initramfs
from prereq import unavailable

MBR_BIN = Path("/usr/lib/syslinux/mbr/mbr.bin")
OLD = "5.10.0-28-amd64"  # a second, older version (the same real kernel under another name)


def _need(tool: str, package: str) -> None:
    if shutil.which(tool) is None:
        unavailable(f"{tool} not found (apt-get install {package})")


def guestboot(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "guestboot", *argv], capture_output=True, timeout=300,
                          stdin=subprocess.DEVNULL)


def _run(argv: list[str], **kw) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, check=False, **kw)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {done.stderr.strip()}")
    return done.stdout


@pytest.fixture(scope="module")
def extlinux_guest(tmp_path_factory) -> dict:
    for tool, package in (("u-boot-update", "u-boot-menu"), ("extlinux", "extlinux"), ("sfdisk", "fdisk"),
                          ("mke2fs", "e2fsprogs"), ("unshare", "util-linux"), ("losetup", "mount")):
        _need(tool, package)
    if os.geteuid() != 0:
        unavailable("extlinux --install needs a mounted file system (root)")
    try:
        kernel = boot_builder.debian_kernel()
        release = boot_builder.kernel_release(kernel)
    except ToolMissing as err:
        unavailable(str(err))
    work = tmp_path_factory.mktemp("extlinux-guest")
    tree = work / "tree"
    boot = tree / "boot"
    boot.mkdir(parents=True)
    for version in (release, OLD):
        shutil.copyfile(kernel, boot / f"vmlinuz-{version}")
        build_initramfs(boot / f"initrd.img-{version}", f"initrd-{version}")
    # u-boot-update writes the config of the system it runs on: give it our /boot.
    env = dict(os.environ, U_BOOT_ROOT="root=/dev/vda1", U_BOOT_PARAMETERS="ro quiet", U_BOOT_TIMEOUT="30")
    _run(["unshare", "-m", "sh", "-c", f"mount --bind '{boot}' /boot && u-boot-update"], env=env)
    config = (boot / "extlinux" / "extlinux.conf").read_text()
    # the partition: ext4 from the tree, then extlinux installed into it for real
    part = work / "part.img"
    _run(["mke2fs", "-q", "-F", "-t", "ext4", "-L", "EXTBOOT", "-d", str(tree), str(part), "160M"])
    mnt = work / "mnt"
    mnt.mkdir()
    loop = _run(["losetup", "--find", "--show", str(part)]).strip()
    try:
        _run(["mount", loop, str(mnt)])
        try:
            _run(["extlinux", "--install", str(mnt / "boot" / "extlinux")])
        finally:
            _run(["umount", str(mnt)])
    finally:
        _run(["losetup", "-d", loop])
    disk = disk_builder.sfdisk_image(work / "disk.img", part.stat().st_size + (1 << 20),
                                     "label: dos\nstart=2048, type=83, bootable\n")
    disk_builder.place_image(disk, 2048 * 512, part)
    if MBR_BIN.is_file():
        with open(disk, "r+b") as f:
            f.write(MBR_BIN.read_bytes()[:440])
    return {"disk": disk, "tree": tree, "release": release, "config": config}


def test_extlinux_guest_lists_u_boot_updates_entries(extlinux_guest):
    release = extlinux_guest["release"]
    assert "default l0" in extlinux_guest["config"]  # what u-boot-update wrote
    done = guestboot("list", "--json", str(extlinux_guest["disk"]))
    assert done.returncode == 0, done.stderr.decode()
    menu = json.loads(done.stdout)
    assert menu["config"] == "(hd0,msdos1)/boot/extlinux/extlinux.conf"
    entries = [(e["id"], e["kernel"], e["default"]) for e in menu["entries"]]
    # newest first (linux-version sort --reverse), each with its rescue entry; DEFAULT l0
    assert entries == [
        ("l0", f"(hd0,msdos1)/boot/vmlinuz-{release}", True),
        ("l0r", f"(hd0,msdos1)/boot/vmlinuz-{release}", False),
        ("l1", f"(hd0,msdos1)/boot/vmlinuz-{OLD}", False),
        ("l1r", f"(hd0,msdos1)/boot/vmlinuz-{OLD}", False),
    ]
    assert all(e["title"].endswith((release, OLD, f"{release} (rescue target)", f"{OLD} (rescue target)"))
               for e in menu["entries"])
    # ldlinux.sys, installed by extlinux, sits beside the config
    done = guestboot("ls", str(extlinux_guest["disk"]), "(hd0,msdos1)/boot/extlinux")
    assert done.returncode == 0 and "ldlinux.sys" in done.stdout.decode(), done.stderr.decode()


def test_extlinux_default_boots_in_qemu(extlinux_guest, tmp_path):
    missing = boot_builder.qemu_available()
    if missing:
        unavailable(missing)
    release = extlinux_guest["release"]
    out = tmp_path / "out"
    done = guestboot("extract", str(extlinux_guest["disk"]), "-o", str(out), "--json")
    assert done.returncode == 0, done.stderr.decode()
    result = json.loads(done.stdout)
    # what SYSLINUX's new_linux_kernel hands the kernel: BOOT_IMAGE=, APPEND, then INITRD as initrd=
    expected = f"BOOT_IMAGE=/boot/vmlinuz-{release} root=/dev/vda1 ro quiet initrd=/boot/initrd.img-{release}"
    assert result["cmdline"] == expected
    assert (out / "kernel").read_bytes() == (extlinux_guest["tree"] / "boot" / f"vmlinuz-{release}").read_bytes()
    report = boot_builder.boot(out / "kernel", out / "initrd", result["cmdline"])
    assert report.cmdline == expected
    assert report.initrds == [f"initrd-{release}"]


ISOLINUX_CFG = """\
UI menu.c32
PROMPT 0
TIMEOUT 50
MENU TITLE Live
APPEND boot=live
LABEL live
  MENU LABEL ^Live system
  KERNEL /live/vmlinuz
  INITRD /live/initrd.img
LABEL safe
  MENU LABEL Live system (^safe mode)
  MENU DEFAULT
  KERNEL /live/vmlinuz
  APPEND boot=live nomodeset initrd=/live/initrd.img
LABEL hidden
  MENU HIDE
  LINUX /live/vmlinuz
"""


@pytest.fixture(scope="module")
def isolinux_iso(tmp_path_factory) -> Path:
    _need("xorriso", "xorriso")
    if not iso_builder.ISOLINUX_BIN.is_file():
        unavailable(f"{iso_builder.ISOLINUX_BIN} not found (apt-get install isolinux)")
    work = tmp_path_factory.mktemp("isolinux")
    tree = work / "tree"
    (tree / "isolinux").mkdir(parents=True)
    (tree / "live").mkdir()
    shutil.copyfile(iso_builder.ISOLINUX_BIN, tree / "isolinux" / "isolinux.bin")
    (tree / "isolinux" / "isolinux.cfg").write_text(ISOLINUX_CFG)
    try:
        shutil.copyfile(boot_builder.debian_kernel(), tree / "live" / "vmlinuz")
        build_initramfs(tree / "live" / "initrd.img", "iso-initrd")
    except ToolMissing as err:
        unavailable(str(err))
    return iso_builder.build(work / "live.iso", tree, ["-R", "-J", "-b", "isolinux/isolinux.bin", "-c",
                                                       "isolinux/boot.cat", "-no-emul-boot", "-boot-load-size", "4",
                                                       "-boot-info-table"])


def test_isolinux_default_boots_in_qemu(isolinux_iso, tmp_path):
    missing = boot_builder.qemu_available()
    if missing:
        unavailable(missing)
    out = tmp_path / "out"
    done = guestboot("extract", str(isolinux_iso), "-o", str(out), "--json")
    assert done.returncode == 0, done.stderr.decode()
    expected = "BOOT_IMAGE=/live/vmlinuz boot=live nomodeset initrd=/live/initrd.img"  # MENU DEFAULT's label
    assert json.loads(done.stdout)["cmdline"] == expected
    report = boot_builder.boot(out / "kernel", out / "initrd", expected)
    assert report.cmdline == expected and report.initrds == ["iso-initrd"]


def test_isolinux_iso_lists_the_menu_and_its_default(isolinux_iso):
    done = guestboot("list", "--json", str(isolinux_iso))
    assert done.returncode == 0, done.stderr.decode()
    menu = json.loads(done.stdout)
    assert menu["config"] == "(hd0)/isolinux/isolinux.cfg"
    assert [(e["title"], e["id"], e["args"], e["default"]) for e in menu["entries"]] == [
        ("Live system", "live", "boot=live initrd=/live/initrd.img", False),
        ("Live system (safe mode)", "safe", "boot=live nomodeset initrd=/live/initrd.img", True),
        ("hidden", "hidden", "boot=live", False),
    ]


# --- the real pygrub (Xen's ExtLinuxConf.py) on the same images ---------------------------------
ALPINE = Path(__file__).parent / "data" / "corpus" / "pygrub" / "alpine-linux-2.3.2.extlinux"


def _pygrub_list(image: Path) -> subprocess.CompletedProcess:
    from prereq import need_real_pygrub

    return subprocess.run([str(need_real_pygrub()), "-l", "-n", str(image)], capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL)


def test_pygrub_agrees_on_its_own_alpine_example_but_for_initrd_in_args(tmp_path):
    """pygrub's example (KERNEL and APPEND initrd=… only): the same kernel and initrd; our
    args keep initrd=, which SYSLINUX hands the kernel and pygrub cuts out."""
    _need("mke2fs", "e2fsprogs")
    tree = tmp_path / "tree"
    (tree / "boot/extlinux").mkdir(parents=True)
    shutil.copyfile(ALPINE, tree / "boot/extlinux/extlinux.conf")
    for name in ("vmlinuz-3.0.10-grsec", "initramfs-3.0.10-grsec"):
        (tree / "boot/extlinux" / name).write_bytes(os.urandom(1000))
    image = tmp_path / "alpine.img"
    _run(["mke2fs", "-q", "-F", "-t", "ext4", "-d", str(tree), str(image), "8M"])
    theirs = _pygrub_list(image)
    assert theirs.returncode == 0, theirs.stderr
    fields = dict(re.findall(r"^\s*(kernel|initrd|args): (.*)$", theirs.stdout, re.M))
    done = guestboot("list", "--json", str(image))
    assert done.returncode == 0, done.stderr.decode()
    (entry,) = json.loads(done.stdout)["entries"]
    assert entry["kernel"] == "(hd0)/boot/extlinux/" + fields["kernel"]  # pygrub prints it as written
    assert entry["initrds"] == ["(hd0)/boot/extlinux/" + fields["initrd"]]
    assert entry["args"] == "initrd=initramfs-3.0.10-grsec " + fields["args"]
    assert re.findall(r"^title: (.*)$", theirs.stdout, re.M) == [entry["id"]]  # pygrub titles by LABEL


def test_pygrub_lists_no_kernel_for_u_boot_updates_config(extlinux_guest):
    """u-boot-update writes LINUX/INITRD/MENU LABEL lines, which ExtLinuxConf.py does not
    know: pygrub prints the first label and no kernel; we list and boot them."""
    theirs = _pygrub_list(extlinux_guest["disk"])
    assert "Unknown image directive linux" in theirs.stderr
    assert "title: l0" in theirs.stdout and "kernel:" not in theirs.stdout


# --- the ADV: what extlinux --once and --menu-save store in ldlinux.sys ---------------------------
def _on_mounted_copy(disk: Path, work: Path, commands) -> Path:
    """A copy of ``disk`` whose partition 1 (at 1 MiB) is loop-mounted while ``commands``
    (a function of the mount point) runs; returns the copy."""
    copy = work / "copy.img"
    shutil.copyfile(disk, copy)
    mnt = work / "mnt"
    mnt.mkdir()
    loop = _run(["losetup", "--find", "--show", "--offset", str(2048 * 512), str(copy)]).strip()
    try:
        _run(["mount", loop, str(mnt)])
        try:
            commands(mnt)
        finally:
            _run(["umount", str(mnt)])
    finally:
        _run(["losetup", "-d", loop])
    return copy


def _default_id(image: Path) -> tuple[str, list[str]]:
    done = guestboot("list", "--json", str(image))
    assert done.returncode == 0, done.stderr.decode()
    listed = json.loads(done.stdout)
    return [e["id"] for e in listed["entries"] if e["default"]][0], listed.get("warnings", [])


def test_extlinux_once_boots_that_label(extlinux_guest, tmp_path):
    copy = _on_mounted_copy(extlinux_guest["disk"], tmp_path,
                            lambda mnt: _run(["extlinux", "--once=l1r", str(mnt / "boot/extlinux")]))
    chosen, _warnings = _default_id(copy)
    assert chosen == "l1r"  # not DEFAULT l0: ldlinux boots the boot-once command first


def test_extlinux_menu_save_is_the_menus_default(extlinux_guest, tmp_path):
    def menu_save(mnt: Path) -> None:
        config = mnt / "boot/extlinux/extlinux.conf"
        config.write_text("UI menu.c32\nMENU SAVE\n" + config.read_text())
        _run(["extlinux", "--menu-save=l1", str(mnt / "boot/extlinux")])

    copy = _on_mounted_copy(extlinux_guest["disk"], tmp_path, menu_save)
    assert _default_id(copy)[0] == "l1"  # MENU SAVE's label beats DEFAULT l0 in the menu


def test_syslinux_on_fat(tmp_path):
    """SYSLINUX on a FAT file system (mkfs.vfat, mtools, Debian's `syslinux --install`):
    /syslinux.cfg at the top is found (SYSLINUX's own search, after pygrub's paths), and
    a relative path is read from the config's directory, the root."""
    for tool, package in (("mkfs.vfat", "dosfstools"), ("mcopy", "mtools"), ("syslinux", "syslinux")):
        _need(tool, package)
    image = tmp_path / "fat.img"
    with open(image, "wb") as f:
        f.truncate(32 << 20)
    _run(["mkfs.vfat", "-n", "SLFAT", str(image)])
    files = {"syslinux.cfg": "DEFAULT b\nLABEL a\n  KERNEL /vmlinuz-a\n  APPEND root=/dev/sda1\n"
             "LABEL b\n  KERNEL vmlinuz-b\n  APPEND initrd=initrd-b x=b\n",
             "vmlinuz-a": "a", "vmlinuz-b": "b", "initrd-b": "i"}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
        _run(["mcopy", "-i", str(image), str(tmp_path / name), f"::/{name}"])
    _run(["syslinux", "--install", str(image)])
    done = guestboot("list", "--json", str(image))
    assert done.returncode == 0, done.stderr.decode()
    listed = json.loads(done.stdout)
    assert listed["config"] == "(hd0)/syslinux.cfg"
    assert [(e["id"], e["default"], e["kernel"], e["initrds"]) for e in listed["entries"]] == [
        ("a", False, "(hd0)/vmlinuz-a", []),
        ("b", True, "(hd0)/vmlinuz-b", ["(hd0)/initrd-b"]),
    ]
    done = guestboot("ls", str(image), "(hd0)/")
    assert "ldlinux.sys" in done.stdout.decode()  # the installer's work is on the file system
