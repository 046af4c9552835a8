"""Whole guest disk images made by the real tools, with the answer GRUB would give.

Three images, each built from directory trees that ARE the expected content:

- ``debian12_gpt``: what the Debian 12 installer leaves on a BIOS machine with a separate
  /boot: GPT (sgdisk) with a BIOS boot partition (gpt1), /boot ext4 (gpt2), root ext4
  (gpt3); /boot/grub/grub.cfg as grub-mkconfig writes it, with ``GRUB_DEFAULT="1>1"``,
  two kernel versions with their own initrds, and a 40_custom entry that loads two
  initrds (an early add-on archive, then the main one).
- ``centos6_mbr``: a CentOS 5/6 style Xen PV guest: MBR (sfdisk), one ext4 partition
  holding / with a GRUB legacy /boot/grub/menu.lst, ``default 1``, ``root (hd0,0)``.
- ``centos7_mbr``: CentOS 7 style: MBR, /boot ext4 (msdos1) with /grub2/grub.cfg using
  linux16/initrd16 and ``set default="${saved_entry}"``, the saved entry written into
  /grub2/grubenv by the real grub-editenv; root ext4 (msdos2).

Every file system is made by ``mke2fs -t ext4 -T default -d TREE -E offset=N`` straight
into the image file. The kernels are one real Debian vmlinuz under several version
names; the initrds come from tests/builders/initramfs.py, each reporting its own name.

The expected answers (``Entry.args``/``Entry.cmdline`` and each image's ``default``) are
written out by hand from GRUB's rules, next to the config text they come from; nothing
here computes them, so they cannot share a bug with the code under test.

Debian packages: gdisk (sgdisk), fdisk (sfdisk), e2fsprogs (mke2fs), grub-common
(grub-editenv), cpio, busybox-static, apt (for the kernel).
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from .boot import debian_kernel, kernel_release
from .initramfs import ToolMissing, build_addon, build_initramfs

SECTOR = 512
MiB = 1024 * 1024


@dataclass(frozen=True)
class Entry:
    """One bootable menu entry and what GRUB makes of it."""

    path: str  # GRUB's menu path by indices ("1>1": submenu 1, entry 1)
    title: str
    id: str | None
    kernel: str  # as written in the config, on the boot partition
    initrds: tuple[str, ...]
    written_args: str  # the text after the kernel path, as written (what pygrub passes on)
    args: str  # what GRUB gives the kernel, without BOOT_IMAGE
    cmdline: str  # what the kernel receives from GRUB on x86 (BOOT_IMAGE= for GRUB 2)


@dataclass
class GuestImage:
    name: str
    path: Path
    partition: str  # GRUB's name of the partition holding the config and kernels
    boot_tree: Path  # that partition's tree: the files a correct extractor returns
    config: str  # where the config is, "gpt2:/grub/grub.cfg"
    entries: list[Entry]  # every bootable entry, depth first (the order pygrub flattens)
    default: Entry  # the entry GRUB boots without a key press
    trees: dict[str, Path] = field(default_factory=dict)  # partition name -> tree

    def entry(self, path: str) -> Entry:
        return next(e for e in self.entries if e.path == path)

    def kernel_bytes(self, entry: Entry) -> bytes:
        return (self.boot_tree / entry.kernel.lstrip("/")).read_bytes()

    def initrd_bytes(self, entry: Entry) -> bytes:
        """The initrds of ``entry`` joined as GRUB loads them (each non-last file here is a
        multiple of 4 bytes, so GRUB's 4-byte alignment adds nothing)."""
        return b"".join((self.boot_tree / p.lstrip("/")).read_bytes() for p in entry.initrds)


# --- the real tools ------------------------------------------------------------------


def _tool(name: str, package: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if not found:
        raise ToolMissing(f"{name} not found (apt-get install {package})")
    return found


def _run(argv: list[str], stdin: bytes | None = None) -> None:
    done = subprocess.run(argv, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}): "
                           f"{(done.stderr or done.stdout).decode(errors='replace').strip()}")


def make_ext4(image: Path, start_sector: int, sectors: int, tree: Path, uuid: str, label: str) -> None:
    """An ext4 file system built from ``tree`` inside ``image`` at ``start_sector``."""
    mke2fs = _tool("mke2fs", "e2fsprogs")
    _run([mke2fs, "-q", "-F", "-t", "ext4", "-T", "default", "-U", uuid, "-L", label,
          "-E", f"offset={start_sector * SECTOR}", "-d", str(tree), str(image),
          f"{sectors * SECTOR // 1024}k"])


def grub_env(path: Path, **values: str) -> None:
    """A grubenv block made by the real grub-editenv."""
    editenv = _tool("grub-editenv", "grub-common")
    _run([editenv, str(path), "create"])
    if values:
        _run([editenv, str(path), "set", *(f"{k}={v}" for k, v in values.items())])


def _blank(path: Path, size: int) -> None:
    with open(path, "wb") as f:
        f.truncate(size)


def _copy_kernel(kernel: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(kernel, dest)


# --- (a) Debian 12, GPT, separate /boot ------------------------------------------------

DEBIAN_ROOT_UUID = "2f1c7a9e-4b3d-4e21-9c55-0d8e6f7a1b42"
DEBIAN_BOOT_UUID = "7d0e5b1a-93c4-4f6e-8a27-c1d2e3f4a5b6"
DEBIAN_DISK_GUID = "5a3c1e2d-6b7f-4a89-9d01-23456789abcd"
DEBIAN_OLD_RELEASE = "6.1.0-13-amd64"  # any name that sorts below the real kernel's

DEBIAN_PARTITIONS = (  # (number, first sector, sectors, type code, name)
    (1, 2048, 2048, "ef02", ""),
    (2, 4096, 64 * MiB // SECTOR, "8300", ""),
    (3, 4096 + 64 * MiB // SECTOR, 32 * MiB // SECTOR, "8300", ""),
)

_DEBIAN_ENTRY_BODY = """\
{indent}load_video
{indent}insmod gzio
{indent}if [ x$grub_platform = xxen ]; then insmod xzio; insmod lzopio; fi
{indent}insmod part_gpt
{indent}insmod ext2
{indent}set root='hd0,gpt2'
{indent}if [ x$feature_platform_search_hint = xy ]; then
{indent}  search --no-floppy --fs-uuid --set=root --hint-bios=hd0,gpt2 --hint-efi=hd0,gpt2 --hint-baremetal=ahci0,gpt2  {boot}
{indent}else
{indent}  search --no-floppy --fs-uuid --set=root {boot}
{indent}fi
{indent}echo	'Loading Linux {release} ...'
{indent}linux	/vmlinuz-{release} {args}
{indent}echo	'Loading initial ramdisk ...'
{indent}initrd	/initrd.img-{release}
"""

_DEBIAN_HEADER = """\
#
# DO NOT EDIT THIS FILE
#
# It is automatically generated by grub-mkconfig using templates
# from /etc/grub.d and settings from /etc/default/grub
#

### BEGIN /etc/grub.d/00_header ###
if [ -s $prefix/grubenv ]; then
  set have_grubenv=true
  load_env
fi
if [ "${{next_entry}}" ] ; then
   set default="${{next_entry}}"
   set next_entry=
   save_env next_entry
   set boot_once=true
else
   set default="1>1"
fi

if [ x"${{feature_menuentry_id}}" = xy ]; then
  menuentry_id_option="--id"
else
  menuentry_id_option=""
fi

export menuentry_id_option

if [ "${{prev_saved_entry}}" ]; then
  set saved_entry="${{prev_saved_entry}}"
  save_env saved_entry
  set prev_saved_entry=
  save_env prev_saved_entry
  set boot_once=true
fi

function savedefault {{
  if [ -z "${{boot_once}}" ]; then
    saved_entry="${{chosen}}"
    save_env saved_entry
  fi
}}
function load_video {{
  if [ x$feature_all_video_module = xy ]; then
    insmod all_video
  else
    insmod efi_gop
    insmod efi_uga
    insmod ieee1275_fb
    insmod vbe
    insmod vga
    insmod video_bochs
    insmod video_cirrus
  fi
}}

if [ x$feature_default_font_path = xy ] ; then
   font=unicode
else
insmod part_gpt
insmod ext2
set root='hd0,gpt3'
if [ x$feature_platform_search_hint = xy ]; then
  search --no-floppy --fs-uuid --set=root --hint-bios=hd0,gpt3 --hint-efi=hd0,gpt3 --hint-baremetal=ahci0,gpt3  {root}
else
  search --no-floppy --fs-uuid --set=root {root}
fi
    font="/usr/share/grub/unicode.pf2"
fi

if loadfont $font ; then
  set gfxmode=auto
  load_video
  insmod gfxterm
  set locale_dir=$prefix/locale
  set lang=en_US
  insmod gettext
fi
terminal_output gfxterm
if [ x$feature_timeout_style = xy ] ; then
  set timeout_style=menu
  set timeout=5
# Fallback normal timeout code in case the timeout_style feature is
# unavailable.
else
  set timeout=5
fi
### END /etc/grub.d/00_header ###

### BEGIN /etc/grub.d/05_debian_theme ###
insmod part_gpt
insmod ext2
set root='hd0,gpt2'
if [ x$feature_platform_search_hint = xy ]; then
  search --no-floppy --fs-uuid --set=root --hint-bios=hd0,gpt2 --hint-efi=hd0,gpt2 --hint-baremetal=ahci0,gpt2  {boot}
else
  search --no-floppy --fs-uuid --set=root {boot}
fi
insmod png
if background_image /grub/.background_cache.png; then
  set color_normal=white/black
  set color_highlight=black/white
else
  set menu_color_normal=cyan/blue
  set menu_color_highlight=white/blue
fi
### END /etc/grub.d/05_debian_theme ###

### BEGIN /etc/grub.d/10_linux ###
"""

_DEBIAN_FOOTER = """\
### END /etc/grub.d/10_linux ###

### BEGIN /etc/grub.d/20_linux_xen ###
### END /etc/grub.d/20_linux_xen ###

### BEGIN /etc/grub.d/30_os-prober ###
### END /etc/grub.d/30_os-prober ###

### BEGIN /etc/grub.d/30_uefi-firmware ###
### END /etc/grub.d/30_uefi-firmware ###

### BEGIN /etc/grub.d/40_custom ###
# This file provides an easy way to add custom menu entries.  Simply type the
# menu entries you want to add after this comment.  Be careful not to change
# the 'exec tail' line above.
menuentry 'Debian GNU/Linux, with Linux {old} and early microcode' --id custom-ucode {{
	search --no-floppy --fs-uuid --set=root {boot}
	linux /vmlinuz-{old} {custom_args}
	initrd /ucode.img /initrd.img-{old}
}}
### END /etc/grub.d/40_custom ###

### BEGIN /etc/grub.d/41_custom ###
if [ -f  ${{config_directory}}/custom.cfg ]; then
  source ${{config_directory}}/custom.cfg
elif [ -z "${{config_directory}}" -a -f  $prefix/custom.cfg ]; then
  source $prefix/custom.cfg
fi
### END /etc/grub.d/41_custom ###
"""


def debian12_entries(new: str, old: str) -> tuple[list[Entry], Entry]:
    """The entries of the Debian image, and the default GRUB picks.

    Debian writes ``ro  quiet`` (two spaces: an empty GRUB_CMDLINE_LINUX); GRUB splits
    the line into words and joins them with one space. ``guestboot.note="two words"`` is
    one word whose quotes GRUB removes; when GRUB rebuilds the line it wraps a word that
    holds a space in double quotes, so the kernel gets ``"guestboot.note=two words"``.
    """
    r = f"root=UUID={DEBIAN_ROOT_UUID} ro"
    entries = [
        Entry("0", "Debian GNU/Linux", f"gnulinux-simple-{DEBIAN_ROOT_UUID}",
              f"/vmlinuz-{new}", (f"/initrd.img-{new}",),
              f"{r}  quiet guestboot.entry=simple",
              f"{r} quiet guestboot.entry=simple",
              f"BOOT_IMAGE=/vmlinuz-{new} {r} quiet guestboot.entry=simple"),
        Entry("1>0", f"Debian GNU/Linux, with Linux {new}", f"gnulinux-{new}-advanced-{DEBIAN_ROOT_UUID}",
              f"/vmlinuz-{new}", (f"/initrd.img-{new}",),
              f"{r}  quiet guestboot.entry=advanced-new",
              f"{r} quiet guestboot.entry=advanced-new",
              f"BOOT_IMAGE=/vmlinuz-{new} {r} quiet guestboot.entry=advanced-new"),
        Entry("1>1", f"Debian GNU/Linux, with Linux {new} (recovery mode)",
              f"gnulinux-{new}-recovery-{DEBIAN_ROOT_UUID}",
              f"/vmlinuz-{new}", (f"/initrd.img-{new}",),
              f'{r} single guestboot.entry=recovery-new guestboot.note="two words"',
              f'{r} single guestboot.entry=recovery-new "guestboot.note=two words"',
              f'BOOT_IMAGE=/vmlinuz-{new} {r} single guestboot.entry=recovery-new "guestboot.note=two words"'),
        Entry("1>2", f"Debian GNU/Linux, with Linux {old}", f"gnulinux-{old}-advanced-{DEBIAN_ROOT_UUID}",
              f"/vmlinuz-{old}", (f"/initrd.img-{old}",),
              f"{r}  quiet guestboot.entry=advanced-old",
              f"{r} quiet guestboot.entry=advanced-old",
              f"BOOT_IMAGE=/vmlinuz-{old} {r} quiet guestboot.entry=advanced-old"),
        Entry("1>3", f"Debian GNU/Linux, with Linux {old} (recovery mode)",
              f"gnulinux-{old}-recovery-{DEBIAN_ROOT_UUID}",
              f"/vmlinuz-{old}", (f"/initrd.img-{old}",),
              f"{r} single guestboot.entry=recovery-old",
              f"{r} single guestboot.entry=recovery-old",
              f"BOOT_IMAGE=/vmlinuz-{old} {r} single guestboot.entry=recovery-old"),
        Entry("2", f"Debian GNU/Linux, with Linux {old} and early microcode", "custom-ucode",
              f"/vmlinuz-{old}", ("/ucode.img", f"/initrd.img-{old}"),
              f"{r} quiet guestboot.entry=custom-ucode",
              f"{r} quiet guestboot.entry=custom-ucode",
              f"BOOT_IMAGE=/vmlinuz-{old} {r} quiet guestboot.entry=custom-ucode"),
    ]
    # GRUB_DEFAULT="1>1": the menu's entry 1 is the submenu, whose entry 1 is the
    # recovery entry of the newest kernel.
    return entries, entries[2]


def debian12_grub_cfg(entries: list[Entry], new: str, old: str) -> str:
    by_path = {e.path: e for e in entries}
    boot = DEBIAN_BOOT_UUID

    def entry_text(e: Entry, release: str, indent: str) -> str:
        body = _DEBIAN_ENTRY_BODY.format(indent=indent + "\t", boot=boot, release=release, args=e.written_args)
        return (f"{indent}menuentry '{e.title}' --class debian --class gnu-linux --class gnu --class os "
                f"$menuentry_id_option '{e.id}' {{\n{body}{indent}}}\n")

    text = _DEBIAN_HEADER.format(root=DEBIAN_ROOT_UUID, boot=boot)
    text += entry_text(by_path["0"], new, "")
    text += (f"submenu 'Advanced options for Debian GNU/Linux' $menuentry_id_option "
             f"'gnulinux-advanced-{DEBIAN_ROOT_UUID}' {{\n")
    text += entry_text(by_path["1>0"], new, "\t")
    text += entry_text(by_path["1>1"], new, "\t")
    text += entry_text(by_path["1>2"], old, "\t")
    text += entry_text(by_path["1>3"], old, "\t")
    text += "}\n\n"
    text += _DEBIAN_FOOTER.format(old=old, boot=boot, custom_args=by_path["2"].written_args)
    return text


def build_debian12_gpt(workdir: Path, kernel: Path) -> GuestImage:
    new = kernel_release(kernel)
    old = DEBIAN_OLD_RELEASE
    entries, default = debian12_entries(new, old)
    boot_tree = workdir / "debian12-boot"
    root_tree = workdir / "debian12-root"
    (boot_tree / "grub").mkdir(parents=True)
    for release in (new, old):
        _copy_kernel(kernel, boot_tree / f"vmlinuz-{release}")
        build_initramfs(boot_tree / f"initrd.img-{release}", f"initrd.img-{release}")
        (boot_tree / f"config-{release}").write_text(f"# Linux/x86 {release} Kernel Configuration\n")
        (boot_tree / f"System.map-{release}").write_text("ffffffff81000000 T _text\n")
    build_addon(boot_tree / "ucode.img", "ucode")
    (boot_tree / "grub" / "grub.cfg").write_text(debian12_grub_cfg(entries, new, old))
    grub_env(boot_tree / "grub" / "grubenv")

    for sub in ("boot", "dev", "proc", "sys", "etc/default", "home", "root", "tmp"):
        (root_tree / sub).mkdir(parents=True, exist_ok=True)
    (root_tree / "etc" / "debian_version").write_text("12.8\n")
    (root_tree / "etc" / "os-release").write_text(
        'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\n'
        'VERSION="12 (bookworm)"\nVERSION_CODENAME=bookworm\nID=debian\n')
    (root_tree / "etc" / "fstab").write_text(
        f"UUID={DEBIAN_ROOT_UUID} /     ext4 errors=remount-ro 0 1\n"
        f"UUID={DEBIAN_BOOT_UUID} /boot ext4 defaults          0 2\n")
    (root_tree / "etc" / "default" / "grub").write_text(
        'GRUB_DEFAULT="1>1"\nGRUB_TIMEOUT=5\nGRUB_DISTRIBUTOR=`lsb_release -i -s 2> /dev/null || echo Debian`\n'
        'GRUB_CMDLINE_LINUX_DEFAULT="quiet"\nGRUB_CMDLINE_LINUX=""\n')
    (root_tree / "vmlinuz").symlink_to(f"boot/vmlinuz-{new}")
    (root_tree / "initrd.img").symlink_to(f"boot/initrd.img-{new}")

    image = workdir / "debian12-gpt.img"
    last = DEBIAN_PARTITIONS[-1]
    _blank(image, (last[1] + last[2] + 2048) * SECTOR)
    sgdisk = _tool("sgdisk", "gdisk")
    argv = [sgdisk, "-o", "-U", DEBIAN_DISK_GUID]
    for number, first, count, code, name in DEBIAN_PARTITIONS:
        argv += ["-n", f"{number}:{first}:{first + count - 1}", "-t", f"{number}:{code}"]
        argv += ["-u", f"{number}:{DEBIAN_DISK_GUID[:-1]}{number}"]
    argv += ["-c", "1:BIOS boot partition", str(image)]
    _run(argv)
    make_ext4(image, DEBIAN_PARTITIONS[1][1], DEBIAN_PARTITIONS[1][2], boot_tree, DEBIAN_BOOT_UUID, "")
    make_ext4(image, DEBIAN_PARTITIONS[2][1], DEBIAN_PARTITIONS[2][2], root_tree, DEBIAN_ROOT_UUID, "")
    return GuestImage("debian12-gpt", image, "gpt2", boot_tree, "gpt2:/grub/grub.cfg", entries, default,
                      {"gpt2": boot_tree, "gpt3": root_tree})


# --- (b) CentOS 6, MBR, GRUB legacy -----------------------------------------------------

CENTOS6_ROOT_UUID = "0b4e2f6a-1c3d-4e5f-8a9b-c0d1e2f3a4b5"
CENTOS6_RELEASES = ("2.6.32-754.35.1.el6.x86_64", "2.6.32-754.el6.x86_64")
CENTOS6_PART = (2048, 64 * MiB // SECTOR)  # first sector, sectors


def centos6_entries() -> tuple[list[Entry], Entry]:
    """GRUB legacy passes the text after the kernel path unchanged and adds no BOOT_IMAGE;
    ``default 1`` is the second ``title``."""
    new, old = CENTOS6_RELEASES
    common = (f"ro root=UUID={CENTOS6_ROOT_UUID} rd_NO_LUKS rd_NO_LVM LANG=en_US.UTF-8 rd_NO_MD "
              "SYSFONT=latarcyrheb-sun16 crashkernel=auto KEYBOARDTYPE=pc KEYTABLE=us rd_NO_DM console=hvc0")
    entries = []
    for index, (title, release) in enumerate(((f"CentOS 6 ({new})", new), (f"CentOS ({old})", old))):
        args = f"{common} guestboot.entry=legacy-{index}"
        entries.append(Entry(str(index), title, None, f"/boot/vmlinuz-{release}",
                             (f"/boot/initramfs-{release}.img",), args, args, args))
    return entries, entries[1]


def centos6_menu_lst(entries: list[Entry]) -> str:
    text = """\
# grub.conf generated by anaconda
#
# Note that you do not have to rerun grub after making changes to this file
# NOTICE:  You do not have a /boot partition.  This means that
#          all kernel and initrd paths are relative to /, eg.
#          root (hd0,0)
#          kernel /boot/vmlinuz-version ro root=/dev/xvda1
#          initrd /boot/initrd-[generic-]version.img
#boot=/dev/xvda
default 1
timeout 5
splashimage=(hd0,0)/boot/grub/splash.xpm.gz
hiddenmenu
"""
    for e in entries:
        text += f"title {e.title}\n\troot (hd0,0)\n\tkernel {e.kernel} {e.written_args}\n\tinitrd {e.initrds[0]}\n"
    return text


def build_centos6_mbr(workdir: Path, kernel: Path) -> GuestImage:
    entries, default = centos6_entries()
    tree = workdir / "centos6-root"
    (tree / "boot" / "grub").mkdir(parents=True)
    for release in CENTOS6_RELEASES:
        _copy_kernel(kernel, tree / "boot" / f"vmlinuz-{release}")
        build_initramfs(tree / "boot" / f"initramfs-{release}.img", f"initramfs-{release}.img")
    (tree / "boot" / "grub" / "menu.lst").write_text(centos6_menu_lst(entries))
    (tree / "etc").mkdir()
    (tree / "etc" / "redhat-release").write_text("CentOS release 6.10 (Final)\n")
    image = workdir / "centos6-mbr.img"
    first, count = CENTOS6_PART
    _blank(image, (first + count) * SECTOR)
    _run([_tool("sfdisk", "fdisk"), "--quiet", str(image)],
         stdin=f"label: dos\nlabel-id: 0x0c3e6a11\nstart={first}, size={count}, type=83, bootable\n".encode())
    make_ext4(image, first, count, tree, CENTOS6_ROOT_UUID, "")
    return GuestImage("centos6-mbr", image, "msdos1", tree, "msdos1:/boot/grub/menu.lst", entries, default,
                      {"msdos1": tree})


# --- (c) CentOS 7, MBR, GRUB 2 with linux16 and a saved entry ---------------------------

CENTOS7_BOOT_UUID = "3e9d1c5b-7a2f-4b6e-9c1d-5f0a8e2b4c6d"
CENTOS7_ROOT_UUID = "6c2b8e4f-0d1a-4f3c-b5e7-9a8d7c6b5a41"
CENTOS7_RELEASES = ("3.10.0-1160.119.1.el7.x86_64", "3.10.0-1160.el7.x86_64", "0-rescue-4c1f0e2a9b8d4e6f")
CENTOS7_PARTS = ((2048, 64 * MiB // SECTOR), (2048 + 64 * MiB // SECTOR, 32 * MiB // SECTOR))

_CENTOS7_HEADER = """\
#
# DO NOT EDIT THIS FILE
#
# It is automatically generated by grub2-mkconfig using templates
# from /etc/grub.d and settings from /etc/default/grub
#

### BEGIN /etc/grub.d/00_header ###
set pager=1

if [ -s $prefix/grubenv ]; then
  load_env
fi
if [ "${next_entry}" ] ; then
   set default="${next_entry}"
   set next_entry=
   save_env next_entry
   set boot_once=true
else
   set default="${saved_entry}"
fi

if [ x"${feature_menuentry_id}" = xy ]; then
  menuentry_id_option="--id"
else
  menuentry_id_option=""
fi

export menuentry_id_option

if [ "${prev_saved_entry}" ]; then
  set saved_entry="${prev_saved_entry}"
  save_env saved_entry
  set prev_saved_entry=
  save_env prev_saved_entry
  set boot_once=true
fi

function savedefault {
  if [ -z "${boot_once}" ]; then
    saved_entry="${chosen}"
    save_env saved_entry
  fi
}

function load_video {
  if [ x$feature_all_video_module = xy ]; then
    insmod all_video
  else
    insmod efi_gop
    insmod efi_uga
    insmod ieee1275_fb
    insmod vbe
    insmod vga
    insmod video_bochs
    insmod video_cirrus
  fi
}

terminal_output console
if [ x$feature_timeout_style = xy ] ; then
  set timeout_style=menu
  set timeout=5
# Fallback normal timeout code in case the timeout_style feature is
# unavailable.
else
  set timeout=5
fi
### END /etc/grub.d/00_header ###

### BEGIN /etc/grub.d/00_tuned ###
set tuned_params=""
set tuned_initrd=""
### END /etc/grub.d/00_tuned ###

### BEGIN /etc/grub.d/01_users ###
if [ -f ${prefix}/user.cfg ]; then
  source ${prefix}/user.cfg
  if [ -n "${GRUB2_PASSWORD}" ]; then
    set superusers="root"
    export superusers
    password_pbkdf2 root ${GRUB2_PASSWORD}
  fi
fi
### END /etc/grub.d/01_users ###

### BEGIN /etc/grub.d/10_linux ###
"""

_CENTOS7_FOOTER = """\
### END /etc/grub.d/10_linux ###

### BEGIN /etc/grub.d/20_linux_xen ###
### END /etc/grub.d/20_linux_xen ###

### BEGIN /etc/grub.d/20_ppc_terminfo ###
### END /etc/grub.d/20_ppc_terminfo ###

### BEGIN /etc/grub.d/30_os-prober ###
### END /etc/grub.d/30_os-prober ###

### BEGIN /etc/grub.d/40_custom ###
# This file provides an easy way to add custom menu entries.  Simply type the
# menu entries you want to add after this comment.  Be careful not to change
# the 'exec tail' line above.
### END /etc/grub.d/40_custom ###

### BEGIN /etc/grub.d/41_custom ###
if [ -f  ${config_directory}/custom.cfg ]; then
  source ${config_directory}/custom.cfg
elif [ -z "${config_directory}" -a -f  $prefix/custom.cfg ]; then
  source $prefix/custom.cfg
fi
### END /etc/grub.d/41_custom ###
"""


def centos7_entries() -> tuple[list[Entry], Entry]:
    """``$tuned_params`` is set to "" by 00_tuned: unquoted and empty, GRUB drops it.
    ``linux16`` puts BOOT_IMAGE= first like ``linux``. grubenv's saved_entry names the
    second entry by title, and ``set default="${saved_entry}"`` picks it."""
    r = (f"root=UUID={CENTOS7_ROOT_UUID} ro crashkernel=auto spectre_v2=retpoline rhgb quiet "
         "LANG=en_US.UTF-8")
    entries = []
    for index, release in enumerate(CENTOS7_RELEASES):
        rescue = release.startswith("0-rescue-")
        title = f"CentOS Linux ({release}) 7 (Core)"
        ident = f"gnulinux-{release}-advanced-{CENTOS7_ROOT_UUID}"
        initrd = f"/initramfs-{release}.img"
        args = f"{r} guestboot.entry=el7-{index}"
        written = args if rescue else f"{args} $tuned_params"
        entries.append(Entry(str(index), title, ident, f"/vmlinuz-{release}", (initrd,), written, args,
                             f"BOOT_IMAGE=/vmlinuz-{release} {args}"))
    return entries, entries[1]


def centos7_grub_cfg(entries: list[Entry]) -> str:
    text = _CENTOS7_HEADER
    for e in entries:
        text += (f"menuentry '{e.title}' --class centos --class gnu-linux --class gnu --class os --unrestricted "
                 f"$menuentry_id_option '{e.id}' {{\n"
                 "\tload_video\n\tset gfxpayload=keep\n\tinsmod gzio\n\tinsmod part_msdos\n\tinsmod ext2\n"
                 "\tset root='hd0,msdos1'\n"
                 "\tif [ x$feature_platform_search_hint = xy ]; then\n"
                 "\t  search --no-floppy --fs-uuid --set=root --hint-bios=hd0,msdos1 --hint-efi=hd0,msdos1 "
                 f"--hint-baremetal=ahci0,msdos1 --hint='hd0,msdos1'  {CENTOS7_BOOT_UUID}\n"
                 "\telse\n"
                 f"\t  search --no-floppy --fs-uuid --set=root {CENTOS7_BOOT_UUID}\n"
                 "\tfi\n"
                 f"\tlinux16 {e.kernel} {e.written_args}\n"
                 f"\tinitrd16 {e.initrds[0]}\n"
                 "}\n")
    return text + _CENTOS7_FOOTER


def build_centos7_mbr(workdir: Path, kernel: Path) -> GuestImage:
    entries, default = centos7_entries()
    boot_tree = workdir / "centos7-boot"
    root_tree = workdir / "centos7-root"
    (boot_tree / "grub2").mkdir(parents=True)
    for release in CENTOS7_RELEASES:
        _copy_kernel(kernel, boot_tree / f"vmlinuz-{release}")
        build_initramfs(boot_tree / f"initramfs-{release}.img", f"initramfs-{release}.img")
    (boot_tree / "grub2" / "grub.cfg").write_text(centos7_grub_cfg(entries))
    grub_env(boot_tree / "grub2" / "grubenv", saved_entry=default.title)
    (root_tree / "etc").mkdir(parents=True)
    (root_tree / "boot").mkdir()
    (root_tree / "etc" / "centos-release").write_text("CentOS Linux release 7.9.2009 (Core)\n")
    image = workdir / "centos7-mbr.img"
    (b1, n1), (b2, n2) = CENTOS7_PARTS
    _blank(image, (b2 + n2) * SECTOR)
    _run([_tool("sfdisk", "fdisk"), "--quiet", str(image)],
         stdin=(f"label: dos\nlabel-id: 0x7e1c9a3d\nstart={b1}, size={n1}, type=83, bootable\n"
                f"start={b2}, size={n2}, type=83\n").encode())
    make_ext4(image, b1, n1, boot_tree, CENTOS7_BOOT_UUID, "")
    make_ext4(image, b2, n2, root_tree, CENTOS7_ROOT_UUID, "")
    return GuestImage("centos7-mbr", image, "msdos1", boot_tree, "msdos1:/grub2/grub.cfg", entries, default,
                      {"msdos1": boot_tree, "msdos2": root_tree})


# --- once per test session -------------------------------------------------------------

BUILDERS = {
    "debian12-gpt": build_debian12_gpt,
    "centos6-mbr": build_centos6_mbr,
    "centos7-mbr": build_centos7_mbr,
}


@functools.cache
def _built(workdir: str, name: str) -> GuestImage:
    where = Path(workdir) / name
    shutil.rmtree(where, ignore_errors=True)  # what a failed earlier attempt left
    where.mkdir(parents=True)
    return BUILDERS[name](where, debian_kernel())


def session_image(tmp_path_factory, name: str) -> GuestImage:
    """The image ``name``, built on first use and shared by every test module of the run
    (a session fixture defined in two modules would otherwise build it twice)."""
    base = tmp_path_factory.getbasetemp() / "guest-images"
    base.mkdir(exist_ok=True)
    return _built(str(base), name)
