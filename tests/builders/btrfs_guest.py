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
    disk = sgdisk_image(workdir / "ubuntu-btrfs.img", BTRFS_START + BTRFS_SIZE + MiB, [
        "-U", UBUNTU_DISK_GUID,
        "-n", f"1:{MiB // SECTOR}:{BTRFS_START // SECTOR - 1}", "-t", "1:ef02",
        "-n", f"2:{BTRFS_START // SECTOR}:{(BTRFS_START + BTRFS_SIZE) // SECTOR - 1}", "-t", "2:8300",
    ])
    place_image(disk, BTRFS_START, volume)
    volume.unlink()
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
