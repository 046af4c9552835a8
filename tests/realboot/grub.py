"""GRUB 2 for the harness: Debian's grub-install (grub-pc-bin, i386-pc) onto an MBR disk
image through a loop device, booted with SeaBIOS (QEMU's default firmware).

The layout every GRUB case shares (a case adds its grub.cfg, its grubenv, its files):

- msdos1, ext4 "gb-boot": a separate /boot, GRUB's prefix (grub-install
  --boot-directory on its mount point: the prefix is (,msdos1)/grub); three kernel
  versions with one marker initrd each ("p1-<version>");
- msdos2, ext4 "gb-root": a root file system with its own kernel and initrd
  (/boot/vmlinuz-6.1.0-99-amd64, marker "p2-initrd") and a file only it holds;
- msdos3, vfat "GBFAT": initrds only ("p3-extra" under /extra).

Configs of the ``mkconfig`` cases are written by the real grub-mkconfig (Debian's
/etc/grub.d scripts) run in a chroot of this same layout: msdos2 mounted as /, msdos1 as
/boot, the host's /usr bound read-only, a private /dev holding the loop device's nodes
and /dev/disk/by-uuid links (as udev would make them; grub-mkconfig then writes
root=UUID=…), the case's /etc/default/grub.

After a boot, the copy that was booted is read with grub-fstest (GRUB's own code) for
what the boot wrote into /grub/grubenv (save_env: next_entry cleared, saved_entry).

Debian packages: grub-pc-bin, grub2-common (grub-install), grub-common (grub-editenv,
grub-fstest).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Mapping

from builders.initramfs import ToolMissing

from .harness import (Answer, DiskImage, FileSpec, GrubEnv, Kernel, Marker, Partition, Payload, Text,
                      answer_from_console, build_disk, loop_device, mounted, package_version, qemu_boot, run)

BOOT_UUID = "0b1c2d3e-4f50-4617-8829-3a4b5c6d7e8f"
ROOT_UUID = "9e8d7c6b-5a49-4382-b1a0-f9e8d7c6b5a4"
FAT_ID = "5eed1e55"  # GRUB and blkid show it as 5EED-1E55
FAT_UUID = "5EED-1E55"
BOOT_LABEL, ROOT_LABEL, FAT_LABEL = "gb-boot", "gb-root", "GBFAT"
VERSIONS = ("6.1.0-10-amd64", "6.1.0-9-amd64", "6.1.0-8-amd64")  # newest first
OTHER_VERSION = "6.1.0-99-amd64"
SERIAL = "serial --unit=0 --speed=115200\nterminal_input serial\nterminal_output serial\n"
GRUB_FAILURES = ("grub> ", "grub rescue> ", "Kernel panic")
BOOTLOADER = "grub"


def boot_files(config: str, env: Mapping[str, str] | None = None, extra: Mapping[str, FileSpec] | None = None
               ) -> dict[str, FileSpec]:
    files: dict[str, FileSpec] = {}
    for version in VERSIONS:
        files[f"/vmlinuz-{version}"] = Kernel()
        files[f"/initrd.img-{version}"] = Marker(f"p1-{version}")
    files["/grub/grub.cfg"] = Text(config)
    if env is not None:
        files["/grub/grubenv"] = GrubEnv(tuple(env.items()))
    files.update(extra or {})
    return files


# GPT partition types (UEFI 5.3.3 and the Discoverable Partitions Specification)
BIOS_BOOT = "21686148-6449-6E6F-744E-656564454649"  # where grub-install embeds core.img on GPT
LINUX_FS = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
BASIC_DATA = "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7"


def layout(config: str, env: Mapping[str, str] | None = None, extra: Mapping[str, FileSpec] | None = None,
           table: str = "dos") -> list[Partition]:
    """The shared layout on an MBR disk (msdos1-3), or on GPT (``table="gpt"``) behind a
    1 MiB BIOS boot partition (gpt1), so /boot, root and FAT are gpt2-4."""
    gpt = table == "gpt"
    parts = [
        Partition("ext4", BOOT_LABEL, BOOT_UUID, boot_files(config, env, extra), size_mib=48,
                  type=LINUX_FS if gpt else "83"),
        Partition("ext4", ROOT_LABEL, ROOT_UUID, {
            f"/boot/vmlinuz-{OTHER_VERSION}": Kernel(),
            "/boot/initrd-other.img": Marker("p2-initrd"),
            "/etc/only-on-root": Text("root\n"),
        }, size_mib=24, type=LINUX_FS if gpt else "83"),
        Partition("vfat", FAT_LABEL, FAT_ID, {"/extra/extra.img": Marker("p3-extra")}, size_mib=8,
                  type=BASIC_DATA if gpt else "c"),
    ]
    return [Partition("none", "", "", {}, size_mib=1, type=BIOS_BOOT), *parts] if gpt else parts


def boot_partition(table: str) -> str:
    """GRUB's name of the /boot partition (its prefix) in ``layout``."""
    return "gpt2" if table == "gpt" else "msdos1"


def mkconfig(workdir: Path, payload: Payload, defaults: Mapping[str, str]) -> dict[str, str]:
    """{name: the grub.cfg grub-mkconfig writes with /etc/default/grub = text} for each
    of ``defaults``, generated on one disk of the shared layout (see the module's doc)."""
    grub_mkconfig = shutil.which("grub-mkconfig", path="/usr/sbin:/sbin:/usr/bin")
    if not grub_mkconfig or not Path("/etc/grub.d/10_linux").exists():
        raise ToolMissing("grub-mkconfig and /etc/grub.d not found (apt-get install grub2-common)")
    image = build_disk(workdir / "mkconfig.img", layout(""), payload)
    configs = {}
    with loop_device(image.path) as device, tempfile.TemporaryDirectory(prefix="realboot-chroot-") as tmp, \
            ExitStack() as mounts:
        root = Path(tmp)
        mounts.enter_context(mounted(device + "p2", root))
        for name in ("bin", "sbin", "lib", "lib64"):
            (root / name).symlink_to(f"usr/{name}")
        for name in ("usr", "dev", "proc", "sys", "tmp", "run", "boot", "etc/default"):
            (root / name).mkdir(parents=True, exist_ok=True)
        shutil.copytree("/etc/grub.d", root / "etc" / "grub.d")
        mounts.enter_context(mounted(device + "p1", root / "boot"))
        mounts.enter_context(mounted("/usr", root / "usr", "--bind", "-o", "ro"))
        mounts.enter_context(mounted("tmpfs", root / "dev", "-t", "tmpfs"))
        _device_nodes(root / "dev", device)
        mounts.enter_context(mounted("proc", root / "proc", "-t", "proc"))
        mounts.enter_context(mounted("sysfs", root / "sys", "-t", "sysfs"))
        for name, text in defaults.items():
            (root / "etc" / "default" / "grub").write_text(text)
            run(["chroot", str(root), "grub-mkconfig", "-o", "/boot/grub/grub.cfg"])
            configs[name] = (root / "boot" / "grub" / "grub.cfg").read_text()
    return configs


def _device_nodes(dev: Path, device: str) -> None:
    """/dev/null, the loop device and its partitions, and by-uuid links for msdos1/2."""
    os.mknod(dev / "null", 0o666 | 0o020000, os.makedev(1, 3))
    for suffix in ("", "p1", "p2", "p3"):
        node = os.stat(device + suffix)
        os.mknod(dev / (Path(device).name + suffix), 0o660 | 0o060000, node.st_rdev)
    links = dev / "disk" / "by-uuid"
    links.mkdir(parents=True)
    for uuid, suffix in ((BOOT_UUID, "p1"), (ROOT_UUID, "p2")):
        (links / uuid).symlink_to(f"../../{Path(device).name}{suffix}")


def install(image: Path, table: str = "dos") -> None:
    """Debian's grub-install for i386-pc on the image's disk, /boot = boot_partition()."""
    grub_install = shutil.which("grub-install") or shutil.which("grub-install", path="/usr/sbin:/sbin")
    if not grub_install or not Path("/usr/lib/grub/i386-pc/boot.img").exists():
        raise ToolMissing("grub-install for i386-pc not found (apt-get install grub2-common grub-pc-bin)")
    with loop_device(image) as device, tempfile.TemporaryDirectory(prefix="realboot-mnt-") as mnt:
        number = boot_partition(table).removeprefix("msdos").removeprefix("gpt")
        with mounted(f"{device}p{number}", Path(mnt)):
            run([grub_install, "--target=i386-pc", f"--boot-directory={mnt}", device])


def build(workdir: Path, payload: Payload, name: str, partitions: list[Partition], table: str = "dos") -> DiskImage:
    image = build_disk(workdir / f"{name}.img", partitions, payload, table=table)
    install(image.path, table)
    return image


def boot(image: DiskImage, table: str = "dos") -> tuple[Answer, dict[str, str], float]:
    """Boot a copy of the image (GRUB may write its grubenv); the answer, the grubenv
    the boot left, the seconds the boot took."""
    copy = image.path.with_suffix(".booted.img")
    shutil.copyfile(image.path, copy)
    console, seconds = qemu_boot(["-drive", f"file={copy},format=raw,if=virtio"], stop_on=GRUB_FAILURES)
    answer = answer_from_console(console)
    env = read_env(copy, boot_partition(table))
    copy.unlink()
    return answer, env, seconds


def read_env(image: Path, partition: str = "msdos1") -> dict[str, str]:
    """The variables of the partition's /grub/grubenv, read by GRUB's own code (grub-fstest)."""
    fstest = shutil.which("grub-fstest")
    if not fstest:
        raise ToolMissing("grub-fstest not found (apt-get install grub-common)")
    done = subprocess.run([fstest, str(image), "cat", f"(loop0,{partition})/grub/grubenv"], capture_output=True, check=False)
    if done.returncode != 0:
        return {}
    values = {}
    for line in done.stdout.decode(errors="replace").splitlines():
        if line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        values[key] = value
    return values


def version() -> str:
    return f"GRUB {package_version('grub-pc-bin')} (grub-pc-bin, i386-pc) on SeaBIOS"
