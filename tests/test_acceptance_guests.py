"""Issue 8's acceptance, guest by guest: ``guestboot list`` (the CLI, in its default
sandbox) on six guests shows the entries and the default that the guest's own bootloader
would, and the default, written out by ``guestboot extract``, boots in QEMU (TCG) with
the command line and initrds that bootloader gives it.

=================  =================================================  ==========================================
guest              image, made by the real tools                      what says which entry boots
=================  =================================================  ==========================================
fedora-bls         builders/bls_guest.py: GPT, FAT ESP with Fedora's  Fedora's blscfg (rhboot/grub2
                   stub, XFS /boot with grub2-mkconfig's BLS          grub-core/commands/blscfg.c: newest first,
                   grub.cfg, loader/entries, grubenv saved_entry      saved_entry names the file); Debian's GRUB
                                                                      has no blscfg, so no real boot here
uki-only-esp       GPT, FAT ESP laid out by bootctl install, two      real systemd-boot on OVMF:
                   UKIs (objcopy onto linuxx64.efi.stub), no Type #1  golden/systemd-boot/accept-uki-only-esp
alpine-extlinux    Alpine's setup-disk "sys" layout: MBR, ext4 /boot  real EXTLINUX on SeaBIOS:
                   (active), swap, ext4 root; update-extlinux's        golden/syslinux/accept-alpine-extlinux
                   extlinux.conf at the top of /boot, extlinux
                   --install there, mbr.bin
isolinux-iso       xorriso ISO 9660 with isolinux.bin, a live-build   real ISOLINUX booted as a CD:
                   style isolinux.cfg that INCLUDEs live.cfg          golden/syslinux/accept-isolinux-iso
illumos-menu-lst   MBR, Solaris partition with bootadm's menu.lst,    GRUB legacy (Solaris): ``default N``;
                   findroot signature, unix + boot_archive            list only: the image holds no Linux kernel
debian-no-config   MBR, ext4 root, three kernels in /boot, Debian's   no bootloader at all: Debian's own
                   /vmlinuz links, /etc/fstab, no boot config         ``linux-version sort`` and /vmlinuz link
=================  =================================================  ==========================================

Stand-ins, said here once: every Linux kernel is the one real Debian kernel
(builders/boot.py; hard links under Fedora's and Alpine's names), every initrd a marker
initramfs that prints its own name and /proc/cmdline (builders/initramfs.py). The
illumos kernel and boot_archive are small stand-in files and the file system is ext4
where illumos uses ZFS (which guestboot does not read; menu.lst's meaning does not
depend on it). The golden files are the real bootloaders' answers on these very images
(tests/realboot/harness.py); ``GUESTBOOT_REALBOOT=all`` boots the real bootloaders again
and compares, ``GUESTBOOT_REALBOOT=record`` rewrites the goldens. The default run boots
each Linux guest's extracted default once, directly (-kernel/-initrd), and no bootloader.

Debian packages: see tests/realboot (extlinux, syslinux-common, isolinux, xorriso,
systemd-boot-efi, systemd, ovmf, binutils, dosfstools, mtools, e2fsprogs, fdisk, gdisk,
xfsprogs, qemu-system-x86, linux-base).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from builders import bls_guest
from builders.boot import boot as direct_boot
from builders.boot import debian_kernel
from builders.boot import qemu_available
from builders.initramfs import ToolMissing
from prereq import unavailable
from realboot import syslinux, systemdboot
from realboot.harness import (Answer, DiskImage, HostFile, Kernel, Marker, Partition, Payload, Symlink, Text,
                              build_disk, cached_image, check_boot, load_golden, loop_device, mode, mounted, run)

TIMEOUT = 300

# --- the guests ----------------------------------------------------------------------------


@dataclass
class Guest:
    """A built guest and what its own bootloader does with it.

    ``entries``: the menu as the guest's config lays it out (a subset of each entry's
    fields, in order). The default is either the real bootloader's recorded boot
    (``golden``: bootloader and case of a golden file) or, where no real bootloader runs
    here, ``default`` (its index) and ``boots`` (what it hands the kernel), with ``why``."""

    disk: DiskImage
    format: str  # the config format guestboot should read it as
    entries: list[dict]
    golden: tuple[str, str] | None = None
    default: int | None = None
    boots: Answer | None = None
    why: str = ""
    linux: bool = True  # the image holds a Linux kernel to boot
    real_boot: Callable[[DiskImage], tuple[Answer, float]] | None = None
    real_version: Callable[[], str] | None = None
    note: str = ""


ALPINE_ROOT_UUID = "a1f1e000-0000-4000-8000-0000a1f1e000"
ALPINE_BOOT_UUID = "a1f1e000-0000-4000-8000-00000000b007"
ALPINE_APPEND = f"root=UUID={ALPINE_ROOT_UUID} modules=sd-mod,usb-storage,ext4 quiet rootfstype=ext4"

# /boot/extlinux.conf as Alpine's update-extlinux (syslinux 6.04_pre1) writes it for two
# kernel flavours with default=virt, timeout=1 and serial_port=0 in /etc/update-extlinux.conf
# (the serial console is the harness's window on the boot); paths are relative to the
# config's directory, the top of the /boot partition.
ALPINE_EXTLINUX_CONF = f"""\
# Generated by update-extlinux 6.04_pre1-r15
SERIAL 0 115200
DEFAULT menu.c32
PROMPT 0
MENU TITLE Alpine/Linux Boot Menu
MENU HIDDEN
MENU AUTOBOOT Alpine will be booted automatically in # seconds.
TIMEOUT 10
LABEL lts
  MENU LABEL Linux lts
  LINUX vmlinuz-lts
  INITRD initramfs-lts
  APPEND {ALPINE_APPEND}

MENU SEPARATOR

LABEL virt
  MENU DEFAULT
  MENU LABEL Linux virt
  LINUX vmlinuz-virt
  INITRD initramfs-virt
  APPEND {ALPINE_APPEND}

MENU SEPARATOR
"""


def build_alpine(workdir: Path, payload: Payload) -> DiskImage:
    """Alpine's "sys" install: boot (ext4, active), swap, root (ext4) on an MBR disk; the
    kernels, initramfs files, extlinux.conf and menu.c32 with its libraries at the top of
    the boot partition, where extlinux --install /boot puts ldlinux.sys; mbr.bin."""
    boot_files = {"/vmlinuz-lts": Kernel(), "/vmlinuz-virt": Kernel(),
                  "/initramfs-lts": Marker("alpine-lts"), "/initramfs-virt": Marker("alpine-virt"),
                  "/extlinux.conf": Text(ALPINE_EXTLINUX_CONF),
                  **{f"/{m}": HostFile(str(syslinux.MODULES / m)) for m in syslinux.MENU_MODULES}}
    root_files = {"/etc/os-release": Text('NAME="Alpine Linux"\nID=alpine\nVERSION_ID=3.20.3\n'),
                  "/etc/fstab": Text(f"UUID={ALPINE_ROOT_UUID}\t/\text4\trw,relatime 0 1\n"
                                     f"UUID={ALPINE_BOOT_UUID}\t/boot\text4\trw,relatime 0 2\n"),
                  "/boot/.keep": Text("")}
    disk = build_disk(workdir / "alpine.img", [
        Partition("ext4", "", ALPINE_BOOT_UUID, boot_files, size_mib=48, bootable=True),
        Partition("none", "", "", {}, size_mib=4, type="82"),
        Partition("ext4", "", ALPINE_ROOT_UUID, root_files, size_mib=8),
    ], payload)
    extlinux = shutil.which("extlinux") or shutil.which("extlinux", path="/usr/sbin:/sbin")
    if not extlinux or not syslinux.MBR_BIN.exists():
        raise ToolMissing("extlinux or mbr.bin not found (apt-get install extlinux syslinux-common)")
    with loop_device(disk.path) as device, tempfile.TemporaryDirectory(prefix="alpine-mnt-") as mnt:
        with mounted(device + "p1", Path(mnt)):
            run([extlinux, "--install", mnt])
    with open(disk.path, "r+b") as f:
        f.write(syslinux.MBR_BIN.read_bytes()[:440])
    return disk


V10, V9, V8 = syslinux.VERSIONS
ISOLINUX_CFG = "SERIAL 0 115200\nUI menu.c32\nPROMPT 0\nTIMEOUT 1\nMENU TITLE Debian Live\nINCLUDE live.cfg\n"
# live-build's shape: labels in a file of their own, lower-case keywords, tab indents,
# kernel and initrd in /live; the second label is the menu's default.
LIVE_CFG = f"""\
label live-amd64
\tmenu label ^Live system (amd64)
\tlinux /live/vmlinuz-{V10}
\tinitrd /live/initrd.img-{V10}
\tappend boot=live components quiet splash

label live-amd64-toram
\tmenu label Live system (amd64, ^copy to RAM)
\tmenu default
\tlinux /live/vmlinuz-{V10}
\tinitrd /live/initrd.img-{V10}
\tappend boot=live components toram

label live-amd64-failsafe
\tmenu label Live system (amd64 fail-safe mode)
\tlinux /live/vmlinuz-{V9}
\tinitrd /live/initrd.img-{V9}
\tappend boot=live components memtest noapic noapm nodma nomce nosmp nosplash vga=788
"""


def build_iso(workdir: Path, payload: Payload) -> DiskImage:
    return syslinux.build_isolinux(workdir, payload, "accept-live", ISOLINUX_CFG,
                                   {"/isolinux/live.cfg": Text(LIVE_CFG)})


def build_uki_only(workdir: Path, payload: Payload) -> DiskImage:
    """The systemd-boot ESP of the harness (bootctl's layout, the two UKIs) without the
    Type #1 entries and their kernel-install directory; loader.conf names no default."""
    files = systemdboot.esp_files(systemdboot.generated(workdir, payload), payload, "timeout 0\n", {})
    files = {path: spec for path, spec in files.items()
             if not path.startswith((f"/{systemdboot.MID}/", "/loader/entries/"))}
    disk = build_disk(workdir / "uki-only.img",
                      [Partition("vfat", "ESP", systemdboot.ESP_ID, files, size_mib=96, type=systemdboot.ESP_TYPE)],
                      payload, table="gpt")
    disk.manifest.update({("hd0,gpt1", path): marker for path, marker in systemdboot.UKIS.items()})
    return disk


# bootadm's menu.lst (illumos/OmniOS): three boot environments and a failsafe entry;
# `default 2` is the third entry (GRUB legacy counts from 0).
ILLUMOS_MENU_LST = """\
#pragma ident	"@(#)menu.lst	1.1	05/09/01 SMI"
default 2
timeout 5
#---------- ADDED BY BOOTADM - DO NOT EDIT ----------
title omnios-r151046
findroot (pool_rpool,0,a)
bootfs rpool/ROOT/omnios-r151046
kernel$ /platform/i86pc/kernel/$ISADIR/unix -B $ZFS-BOOTFS
module$ /platform/i86pc/$ISADIR/boot_archive
#---------------------END BOOTADM--------------------
#---------- ADDED BY BOOTADM - DO NOT EDIT ----------
title omnios-r151048
findroot (pool_rpool,0,a)
bootfs rpool/ROOT/omnios-r151048
kernel$ /platform/i86pc/kernel/$ISADIR/unix -B $ZFS-BOOTFS
module$ /platform/i86pc/$ISADIR/boot_archive
#---------------------END BOOTADM--------------------
#---------- ADDED BY BOOTADM - DO NOT EDIT ----------
title omnios-r151050
findroot (pool_rpool,0,a)
bootfs rpool/ROOT/omnios-r151050
kernel$ /platform/i86pc/kernel/$ISADIR/unix -B $ZFS-BOOTFS,console=ttya
module$ /platform/i86pc/$ISADIR/boot_archive
#---------------------END BOOTADM--------------------
title Solaris failsafe
findroot (pool_rpool,0,a)
kernel /boot/platform/i86pc/kernel/unix -s
module /boot/x86.miniroot-safe
"""


def build_illumos(workdir: Path, payload: Payload) -> DiskImage:
    stand_in = {path: Text(f"stand-in for illumos {path}\n") for path in (
        "/platform/i86pc/kernel/amd64/unix", "/platform/i86pc/amd64/boot_archive",
        "/boot/platform/i86pc/kernel/unix", "/boot/x86.miniroot-safe")}
    files = {**stand_in, "/boot/grub/menu.lst": Text(ILLUMOS_MENU_LST),
             "/boot/grub/bootsign/pool_rpool": Text("")}
    return build_disk(workdir / "illumos.img", [Partition("ext4", "rpool", "0b0e0000-0000-4000-8000-00000000face",
                                                          files, size_mib=8, type="bf", bootable=True)], payload)


NOCONFIG_UUID = "5b1e0c1a-7d2f-4e3b-9a8c-6d5e4f3a2b1c"
NOCONFIG_VERSIONS = ("6.1.0-9-amd64", "5.10.0-28-amd64", "6.1.0-10-amd64")  # as a directory lists them


def debian_order(versions) -> list[str]:
    """Newest first, as Debian's own ``linux-version sort --reverse`` (linux-base) says."""
    done = subprocess.run(["linux-version", "sort", "--reverse"], input="\n".join(versions) + "\n",
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ToolMissing(f"linux-version not found (apt-get install linux-base): {done.stderr.strip()}")
    return done.stdout.split()


def build_no_config(workdir: Path, payload: Payload) -> DiskImage:
    """A Debian root on an MBR disk with no boot loader config: kernels, initrds and
    config files in /boot, the links Debian's linux-update-symlinks keeps (/vmlinuz and
    /initrd.img on the newest, the .old ones on the next), /etc/fstab."""
    newest, older = debian_order(NOCONFIG_VERSIONS)[:2]
    files: dict = {}
    for version in NOCONFIG_VERSIONS:
        files[f"/boot/vmlinuz-{version}"] = Kernel()
        files[f"/boot/initrd.img-{version}"] = Marker(f"initrd-{version}")
        files[f"/boot/config-{version}"] = Text("CONFIG_EXT4_FS=y\n")
    for link, version in (("", newest), (".old", older)):
        files[f"/vmlinuz{link}"] = Symlink(f"boot/vmlinuz-{version}")
        files[f"/initrd.img{link}"] = Symlink(f"boot/initrd.img-{version}")
    files["/etc/fstab"] = Text(f"# /etc/fstab\nUUID={NOCONFIG_UUID} / ext4 errors=remount-ro 0 1\n")
    files["/etc/os-release"] = Text('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\n')
    files["/sbin/init"] = Text("#!/bin/sh\n")
    return build_disk(workdir / "no-config.img", [Partition("ext4", "", NOCONFIG_UUID, files, size_mib=48)], payload)


def fedora(factory, payload: Payload) -> Guest:
    built = bls_guest.session_image(factory)  # the image test_e2e_bls.py reads too
    r_new, r_old = bls_guest.RELEASES
    manifest = {("hd0,gpt2", f"/initramfs-{r}.img"): f"initramfs-{r}.img" for r in bls_guest.RELEASES}
    entries = [{"id": ident, "title": f"Fedora Linux ({r}) 39 (Thirty Nine)", "kernel": f"(hd0,gpt2)/vmlinuz-{r}"}
               for ident, r in zip(built.entry_ids, bls_guest.RELEASES)]
    return Guest(DiskImage(built.path, manifest, []), "grub2", entries, default=built.entry_ids.index(built.saved),
                 boots=Answer(f"BOOT_IMAGE=(hd0,gpt2)/vmlinuz-{r_old} {bls_guest.KERNELOPTS}",
                              (f"initramfs-{r_old}.img",)),
                 why="Fedora's blscfg: entries newest first by RPM version order, ids from the file names; "
                     "grubenv's saved_entry (grubby's) names the older kernel's entry")


def uki_only(factory, payload: Payload) -> Guest:
    workdir = payload.markers.parent
    disk = cached_image("accept/uki-only-esp", lambda: build_uki_only(workdir, payload))
    entries = [{"id": "debian-uki-b.efi", "title": "UKI B", "kernel": "(hd0,gpt1)/EFI/Linux/debian-uki-b.efi"},
               {"id": "debian-uki-a.efi", "title": "UKI A", "kernel": "(hd0,gpt1)/EFI/Linux/debian-uki-a.efi"}]
    return Guest(disk, "systemd-boot", entries, golden=("systemd-boot", "accept-uki-only-esp"), real_boot=systemdboot.boot,
                 real_version=systemdboot.version,
                 note="a UKI-only ESP (bootctl's layout, two UKIs, no Type #1 entries), loader.conf without default")


def alpine(factory, payload: Payload) -> Guest:
    workdir = payload.markers.parent
    disk = cached_image("accept/alpine-extlinux", lambda: build_alpine(workdir, payload))
    entries = [{"id": flavour, "title": f"Linux {flavour}", "kernel": f"(hd0,msdos1)/vmlinuz-{flavour}",
                "initrds": [f"(hd0,msdos1)/initramfs-{flavour}"]} for flavour in ("lts", "virt")]
    return Guest(disk, "syslinux", entries, golden=("syslinux", "accept-alpine-extlinux"), real_boot=syslinux.boot_disk,
                 real_version=syslinux.version,
                 note="Alpine's sys layout: update-extlinux's extlinux.conf at the top of an ext4 /boot, "
                      "DEFAULT menu.c32 with MENU DEFAULT on the second label")


def isolinux(factory, payload: Payload) -> Guest:
    workdir = payload.markers.parent
    disk = cached_image("accept/isolinux-iso", lambda: build_iso(workdir, payload))
    entries = [{"id": "live-amd64", "title": "Live system (amd64)"},
               {"id": "live-amd64-toram", "title": "Live system (amd64, copy to RAM)"},
               {"id": "live-amd64-failsafe", "title": "Live system (amd64 fail-safe mode)"}]
    return Guest(disk, "syslinux", entries, golden=("syslinux", "accept-isolinux-iso"), real_boot=syslinux.boot_cd,
                 real_version=syslinux.version,
                 note="a live ISO: isolinux.cfg with UI menu.c32 INCLUDEs live.cfg, whose second label is MENU DEFAULT")


def illumos(factory, payload: Payload) -> Guest:
    workdir = payload.markers.parent
    disk = cached_image("accept/illumos-menu-lst", lambda: build_illumos(workdir, payload))
    unix = "(hd0,msdos1)/platform/i86pc/kernel/amd64/unix"
    archive = ["(hd0,msdos1)/platform/i86pc/amd64/boot_archive"]
    entries = [{"title": f"omnios-r1510{n}", "kernel": unix, "initrds": archive,
                "args": f"/platform/i86pc/kernel/amd64/unix -B zfs-bootfs=rpool/ROOT/omnios-r1510{n}{tail}"}
               for n, tail in (("46", ""), ("48", ""), ("50", ",console=ttya"))]
    entries.append({"title": "Solaris failsafe", "kernel": "(hd0,msdos1)/boot/platform/i86pc/kernel/unix",
                    "initrds": ["(hd0,msdos1)/boot/x86.miniroot-safe"]})
    return Guest(disk, "grub-legacy", entries, default=2, linux=False,
                 why="GRUB legacy's `default 2` (counted from 0); $ISADIR is amd64 on a 64-bit CPU, "
                     "$ZFS-BOOTFS the entry's bootfs")


def no_config(factory, payload: Payload) -> Guest:
    workdir = payload.markers.parent
    disk = cached_image("accept/debian-no-config", lambda: build_no_config(workdir, payload))
    order = debian_order(NOCONFIG_VERSIONS)
    entries = [{"title": f"vmlinuz-{v}", "kernel": f"(hd0,msdos1)/boot/vmlinuz-{v}",
                "initrds": [f"(hd0,msdos1)/boot/initrd.img-{v}"]} for v in order]
    return Guest(disk, "noconfig", entries, default=0, boots=Answer(f"root=UUID={NOCONFIG_UUID} ro", (f"initrd-{order[0]}",)),
                 why="no bootloader: the newest kernel in linux-version's order, which Debian's /vmlinuz "
                     "link names, with its initrd and root= from /etc/fstab")


GUESTS: dict[str, Callable[..., Guest]] = {
    "fedora-bls": fedora, "uki-only-esp": uki_only, "alpine-extlinux": alpine, "isolinux-iso": isolinux,
    "illumos-menu-lst": illumos, "debian-no-config": no_config,
}
LINUX_GUESTS = [name for name in GUESTS if name != "illumos-menu-lst"]
GOLDEN_GUESTS = ["uki-only-esp", "alpine-extlinux", "isolinux-iso"]


@pytest.fixture(scope="session")
def acceptance_payload(tmp_path_factory) -> Payload:
    try:
        return Payload(tmp_path_factory.mktemp("acceptance"))
    except ToolMissing as err:
        unavailable(str(err))


_BUILT: dict[str, Guest] = {}


@pytest.fixture
def guest(request, acceptance_payload, tmp_path_factory) -> Guest:
    name = request.param
    if name not in _BUILT:
        try:
            _BUILT[name] = GUESTS[name](tmp_path_factory, acceptance_payload)
        except ToolMissing as err:
            unavailable(str(err))
    return _BUILT[name]


# --- the checks ------------------------------------------------------------------------------


def guestboot(*argv: str) -> str:
    """The CLI as a user runs it (the sandboxed child reads the image); its stdout."""
    done = subprocess.run([sys.executable, "-m", "guestboot", *argv], stdin=subprocess.DEVNULL, capture_output=True,
                          timeout=TIMEOUT, check=False)
    assert done.returncode == 0, f"guestboot {' '.join(argv)}: exit {done.returncode}: {done.stderr.decode()}"
    return done.stdout.decode()


_GRUB_REF = re.compile(r"\(([^)]*)\)(.*)")


def answer_of(entry: dict, manifest) -> Answer:
    """What ``entry`` (from ``list --json``) hands its kernel, initrds named by marker."""
    names = []
    for ref in entry.get("initrds", []):
        device, path = _GRUB_REF.fullmatch(ref).groups()
        names.append(manifest.get((device, path)) or manifest.get(("*", path)) or f"<not a marker: {ref}>")
    return Answer(entry["cmdline"], tuple(sorted(names)))


def truth(guest: Guest) -> Answer:
    """What the guest's own bootloader boots: its recorded boot, or the rule in ``why``."""
    if guest.golden is None:
        assert guest.boots is not None
        return guest.boots
    golden = load_golden(*guest.golden)
    if golden is None:
        pytest.fail(f"no golden file {guest.golden}: boot it with GUESTBOOT_REALBOOT=record")
    return Answer(golden.booted.cmdline, golden.booted.initrds)


@pytest.mark.parametrize("guest", list(GUESTS), indirect=True)
def test_list_shows_the_entries_and_the_bootloaders_default(guest):
    listed = json.loads(guestboot("list", "--json", str(guest.disk.path)))
    entries = listed["entries"]
    assert listed["format"] == guest.format, listed["config"]
    assert [{key: e.get(key) for key in want} for e, want in zip(entries, guest.entries)] == guest.entries
    assert len(entries) == len(guest.entries), [e["title"] for e in entries]
    marked = [i for i, e in enumerate(entries) if e["default"]]
    assert listed["default"] == marked and len(marked) == 1, listed["default"]
    if guest.linux:
        theirs = truth(guest)
        booting = [i for i, e in enumerate(entries) if "cmdline" in e and answer_of(e, guest.disk.manifest) == theirs]
        assert booting == marked, (f"the bootloader boots {theirs}; guestboot's default is entry {marked}: "
                                   f"{answer_of(entries[marked[0]], guest.disk.manifest)}")
    if guest.default is not None:
        assert marked == [guest.default], guest.why
    text = guestboot("list", str(guest.disk.path))  # the menu a person reads marks the same entry
    starred = [line for line in text.splitlines() if line.startswith("*")]
    assert len(starred) == 1 and entries[marked[0]]["title"] in starred[0], text


@pytest.mark.slow
@pytest.mark.parametrize("guest", LINUX_GUESTS, indirect=True)
def test_default_boots_in_qemu(guest, tmp_path):
    missing = qemu_available()
    if missing:
        unavailable(missing)
    out = tmp_path / "out"
    result = json.loads(guestboot("extract", "--json", str(guest.disk.path), "-o", str(out)))
    theirs = truth(guest)
    assert result["cmdline"] == theirs.cmdline
    # every Linux kernel here is the Debian kernel: the file (or the UKI's .linux section) whole
    assert (out / "kernel").read_bytes() == debian_kernel().read_bytes()
    report = direct_boot(out / "kernel", out / "initrd" if result["initrd"] else None, result["cmdline"])
    assert Answer(report.cmdline, tuple(report.initrds)) == theirs, report.console[-2000:]


@pytest.mark.slow
@pytest.mark.parametrize("guest", [g for g in GOLDEN_GUESTS if mode()], indirect=True)
def test_real_bootloader_boots_what_the_golden_says(guest):
    """GUESTBOOT_REALBOOT=all|record: the real bootloader on the same image."""
    bootloader, case = guest.golden
    theirs, seconds = guest.real_boot(guest.disk)
    check_boot(bootloader, guest.real_version(), case, guest.note, guest.disk, theirs, seconds)


@pytest.mark.parametrize("guest", ["uki-only-esp"], indirect=True)
def test_uki_entry_is_inspected_as_the_sections_it_boots(guest, tmp_path):
    """A UKI entry's kernel facts are its .linux section's (here the Debian bzImage, so
    the same facts as that file), its initrd's the .initrd section's; so --guest-type
    judges the kernel that boots, not the PE around it."""
    import os

    from guestboot.kernel.inspect import inspect
    from guestboot.source import FileSource

    fd = os.open(debian_kernel(), os.O_RDONLY)
    try:
        own = inspect(FileSource(fd, name="debian kernel"))
    finally:
        os.close(fd)
    listed = json.loads(guestboot("list", "--json", str(guest.disk.path)))
    for entry in listed["entries"]:
        info = entry["kernel_info"]
        assert (info["format"], info["release"], info["supports"]) == ("bzImage", own.release, list(own.supports()))
        (initrd,) = entry["initrd_info"]
        assert "error" not in initrd and initrd["parts"][0]["format"] == "gzip", initrd
    out = tmp_path / "out"
    result = json.loads(guestboot("extract", "--json", "--guest-type", "pvh", str(guest.disk.path), "-o", str(out)))
    assert result["cmdline"] == truth(guest).cmdline and (out / "kernel").exists()
