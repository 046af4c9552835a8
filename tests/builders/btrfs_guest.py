"""Whole guest disks with /boot inside a btrfs subvolume, made by the real tools.

``ubuntu_btrfs``: what Ubuntu's installer leaves with btrfs root: GPT (sgdisk) with a BIOS
boot partition (gpt1) and one btrfs partition (gpt2) holding the subvolumes "@" (the
system, /boot inside it) and "@home"; GRUB's prefix is (hd0,gpt2)/@/boot/grub, so its
grub.cfg names kernels "/@/boot/vmlinuz-…" (upstream GRUB resolves paths from the
top-level subvolume). Files are written by the kernel's btrfs through a loop mount with
compress-force=zstd, so the config and the small files are zstd extents. The kernel is
the real Debian one (tests/builders/boot.py), the initrd our busybox initramfs.

The expected answers (each entry's command line, the default) are written out by hand
from GRUB's rules next to the config text they come from.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from . import btrfs as fs_builder
from .boot import kernel_release
from .disk import place_image, sgdisk_image
from .initramfs import build_initramfs

SECTOR = 512
MiB = 1024 * 1024
UBUNTU_UUID = "3e6b9c1d-2a4f-4b8e-9c7d-5f1e2d3c4b5a"
UBUNTU_DISK_GUID = "8b2d4f6a-1c3e-4a5b-9d7f-0e1f2a3b4c5d"
BTRFS_START = 2 * MiB  # gpt2, after the 1 MiB BIOS boot partition at 1 MiB
BTRFS_SIZE = 160 * MiB


@dataclass(frozen=True)
class BtrfsGuest:
    path: Path  # the disk image
    system: Path  # the tree of subvolume "@": the files a correct extractor returns
    release: str
    default_cmdline: str  # what GRUB gives the kernel for the default entry
    recovery_cmdline: str
    default_args: str  # without BOOT_IMAGE (what pygrub's simple0 carries)


def _grub_cfg(release: str) -> str:
    u = UBUNTU_UUID
    return f"""# as update-grub writes it on Ubuntu with btrfs root (trimmed)
set default="0"
if [ x$feature_menuentry_id = xy ]; then
  menuentry_id_option="--id"
else
  menuentry_id_option=""
fi
export menuentry_id_option
if [ -s $prefix/grubenv ]; then
  load_env
fi
insmod part_gpt
insmod btrfs
search --no-floppy --fs-uuid --set=root {u}
set timeout=5
menuentry 'Ubuntu' --class ubuntu --class gnu-linux --class gnu --class os $menuentry_id_option 'gnulinux-simple-{u}' {{
	insmod part_gpt
	insmod btrfs
	search --no-floppy --fs-uuid --set=root {u}
	linux	/@/boot/vmlinuz-{release} root=UUID={u} ro rootflags=subvol=@ quiet guestboot.entry=btrfs
	initrd	/@/boot/initrd.img-{release}
}}
menuentry 'Ubuntu (recovery mode)' --class ubuntu $menuentry_id_option 'gnulinux-{release}-recovery-{u}' {{
	search --no-floppy --fs-uuid --set=root {u}
	linux	/@/boot/vmlinuz-{release} root=UUID={u} ro rootflags=subvol=@ recovery nomodeset
	initrd	/@/boot/initrd.img-{release}
}}
"""


def _gpt_disk(path: Path, disk_guid: str, volume: Path) -> Path:
    """A GPT disk (sgdisk): a BIOS boot partition (gpt1), then ``volume`` as gpt2 (which
    is then removed)."""
    disk = sgdisk_image(path, BTRFS_START + BTRFS_SIZE + MiB, [
        "-U", disk_guid,
        "-n", f"1:{MiB // SECTOR}:{BTRFS_START // SECTOR - 1}", "-t", "1:ef02",
        "-n", f"2:{BTRFS_START // SECTOR}:{(BTRFS_START + BTRFS_SIZE) // SECTOR - 1}", "-t", "2:8300",
    ])
    place_image(disk, BTRFS_START, volume)
    volume.unlink()
    return disk


def build_ubuntu_btrfs(workdir: Path, kernel: Path) -> BtrfsGuest:
    release = kernel_release(kernel)
    system = workdir / "ubuntu-btrfs-@"
    (system / "boot" / "grub").mkdir(parents=True)
    (system / "etc").mkdir()
    (system / "boot" / f"vmlinuz-{release}").write_bytes(kernel.read_bytes())
    build_initramfs(system / "boot" / f"initrd.img-{release}", f"initrd.img-{release}")
    (system / "boot" / "grub" / "grub.cfg").write_text(_grub_cfg(release))
    (system / "etc" / "fstab").write_text(
        f"UUID={UBUNTU_UUID} /     btrfs defaults,subvol=@     0 1\n"
        f"UUID={UBUNTU_UUID} /home btrfs defaults,subvol=@home 0 2\n")
    (system / "vmlinuz").symlink_to(f"boot/vmlinuz-{release}")

    volume = workdir / "ubuntu-btrfs.fs"
    with open(volume, "wb") as f:
        f.truncate(BTRFS_SIZE)
    subprocess.run(["mkfs.btrfs", "-q", "-f", "-U", UBUNTU_UUID, str(volume)], check=True, capture_output=True)
    with fs_builder.mounted(volume, "compress-force=zstd") as mnt:
        for sub in ("@", "@home"):
            subprocess.run(["btrfs", "-q", "subvolume", "create", str(mnt / sub)], check=True, capture_output=True)
        subprocess.run(["cp", "-a", f"{system}/.", str(mnt / "@")], check=True, capture_output=True)
    disk = _gpt_disk(workdir / "ubuntu-btrfs.img", UBUNTU_DISK_GUID, volume)
    args = f"root=UUID={UBUNTU_UUID} ro rootflags=subvol=@ quiet guestboot.entry=btrfs"
    return BtrfsGuest(
        path=disk,
        system=system,
        release=release,
        default_cmdline=f"BOOT_IMAGE=/@/boot/vmlinuz-{release} {args}",
        recovery_cmdline=f"BOOT_IMAGE=/@/boot/vmlinuz-{release} root=UUID={UBUNTU_UUID} ro rootflags=subvol=@ "
                         "recovery nomodeset",
        default_args=args,
    )


# --- openSUSE: the system in a snapshot that is the default subvolume --------------------------

SUSE_UUID = "5a1e7c3d-9b2f-4e6a-8d1c-2f3e4a5b6c7d"
SUSE_DISK_GUID = "0c9e8d7f-6a5b-4c3d-9e2f-1a0b9c8d7e6f"
SUSE_SNAPSHOT = "@/.snapshots/1/snapshot"
SUSE_OS_RELEASE = 'NAME="openSUSE Tumbleweed"\nID="opensuse-tumbleweed"\nID_LIKE="opensuse suse"\n'


@dataclass(frozen=True)
class SuseGuest:
    path: Path  # the disk image
    system: Path  # the tree of the snapshot (the default subvolume): what GRUB with
    #               btrfs_relative_path reads for "/boot/…"
    top: Path  # the tree of the top-level subvolume's own files: what upstream GRUB reads
    release: str
    args: str  # the default entry's kernel arguments
    default_path: str  # the default subvolume's path, as `btrfs subvolume get-default` prints it


def _suse_grub_cfg(release: str) -> str:
    u = SUSE_UUID
    return f"""# as grub2-mkconfig writes it on openSUSE with SUSE_BTRFS_SNAPSHOT_BOOTING="true" (trimmed)
set btrfs_relative_path="y"
export btrfs_relative_path
if [ -f ${{config_directory}}/grubenv ]; then
  load_env -f ${{config_directory}}/grubenv
elif [ -s $prefix/grubenv ]; then
  load_env
fi
set default="${{saved_entry}}"
if [ x"${{feature_menuentry_id}}" = xy ]; then
  menuentry_id_option="--id"
else
  menuentry_id_option=""
fi
export menuentry_id_option
set timeout=8
menuentry 'openSUSE Tumbleweed' --class opensuse --class gnu-linux --class gnu --class os $menuentry_id_option 'gnulinux-simple-{u}' {{
	insmod gzio
	insmod part_gpt
	insmod btrfs
	search --no-floppy --fs-uuid --set=root {u}
	echo	'Loading Linux {release} ...'
	linux	/boot/vmlinuz-{release} root=UUID={u} ${{extra_cmdline}} splash=silent quiet mitigations=auto
	echo	'Loading initial ramdisk ...'
	initrd	/boot/initrd-{release}
}}
"""


def build_suse_btrfs(workdir: Path, kernel: Path) -> SuseGuest:
    """openSUSE's layout, made through a loop mount: subvolume "@", "@/.snapshots", the
    system in subvolume "@/.snapshots/1/snapshot" set as the default (btrfs subvolume
    set-default), /boot/grub2/grub.cfg inside it, ``kernel`` (a real one) and our busybox
    initramfs in its /boot. The top-level subvolume also holds a /boot with random bytes
    under the same names: what a GRUB that resolves from the top (upstream's, Debian's)
    reads instead, and what cannot boot."""
    import random

    rng = random.Random(6)
    release = kernel_release(kernel)
    system, top = workdir / "suse-snapshot", workdir / "suse-top"
    for tree in (system, top):
        (tree / "boot").mkdir(parents=True)
    (system / "boot" / f"vmlinuz-{release}").write_bytes(kernel.read_bytes())
    build_initramfs(system / "boot" / f"initrd-{release}", f"initrd-{release}")
    (top / "boot" / f"vmlinuz-{release}").write_bytes(rng.randbytes(400_000))
    (top / "boot" / f"initrd-{release}").write_bytes(rng.randbytes(150_000))
    (system / "boot" / "grub2").mkdir()
    (system / "boot" / "grub2" / "grub.cfg").write_text(_suse_grub_cfg(release))
    (system / "etc").mkdir()
    (system / "etc" / "os-release").write_text(SUSE_OS_RELEASE)

    volume = workdir / "suse-btrfs.fs"
    with open(volume, "wb") as f:
        f.truncate(BTRFS_SIZE)
    subprocess.run(["mkfs.btrfs", "-q", "-f", "-U", SUSE_UUID, str(volume)], check=True, capture_output=True)
    subvolume = ["btrfs", "-q", "subvolume"]
    with fs_builder.mounted(volume, "noatime") as mnt:
        for sub in ("@", "@/.snapshots"):
            subprocess.run([*subvolume, "create", str(mnt / sub)], check=True, capture_output=True)
        (mnt / "@/.snapshots/1").mkdir()
        subprocess.run([*subvolume, "create", str(mnt / SUSE_SNAPSHOT)], check=True, capture_output=True)
        subprocess.run(["cp", "-a", f"{system}/.", str(mnt / SUSE_SNAPSHOT)], check=True, capture_output=True)
        subprocess.run(["cp", "-a", f"{top}/.", str(mnt)], check=True, capture_output=True)
        subprocess.run([*subvolume, "set-default", str(mnt / SUSE_SNAPSHOT)], check=True, capture_output=True)
        shown = subprocess.run(["btrfs", "subvolume", "get-default", str(mnt)], check=True,
                               capture_output=True, text=True).stdout
    disk = _gpt_disk(workdir / "suse-btrfs.img", SUSE_DISK_GUID, volume)
    return SuseGuest(disk, system, top, release, f"root=UUID={SUSE_UUID} splash=silent quiet mitigations=auto",
                     shown.split(" path ", 1)[1].strip())
