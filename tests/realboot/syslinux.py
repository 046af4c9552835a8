"""SYSLINUX for the harness: Debian's extlinux on an ext4 partition of an MBR disk (mbr.bin
from syslinux-common in the first 440 bytes, the partition marked active), booted with
SeaBIOS; ISOLINUX on an ISO 9660 image made by xorriso (-b isolinux/isolinux.bin -c
boot.cat -no-emul-boot -boot-load-size 4 -boot-info-table), booted as a CD.

Both hold three kernel versions with a marker initrd each, an extra marker initrd in a
subdirectory, and the case's config; a config that says ``UI menu.c32`` gets menu.c32 and
the libraries it loads beside ldlinux.c32. Every config starts with ``SERIAL 0 115200`` so
that a failure (the ``boot:`` prompt, "Could not find kernel image") shows on the console.

Debian packages: extlinux, syslinux-common (mbr.bin, the .c32 modules), isolinux, xorriso.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Mapping

from builders.initramfs import ToolMissing

from .harness import (Answer, DiskImage, FileSpec, HostFile, Kernel, Marker, Partition, Payload, Text,
                      answer_from_console, build_disk, loop_device, mounted, package_version, qemu_boot, run)

MBR_BIN = Path("/usr/lib/syslinux/mbr/mbr.bin")
MODULES = Path("/usr/lib/syslinux/modules/bios")
ISOLINUX_BIN = Path("/usr/lib/ISOLINUX/isolinux.bin")
MENU_MODULES = ("menu.c32", "libutil.c32", "libcom32.c32")
VERSIONS = ("6.1.0-10-amd64", "6.1.0-9-amd64", "6.1.0-8-amd64")
EXT_UUID = "3c4d5e6f-7081-4293-a4b5-c6d7e8f90a1b"
FAILURES = ("Could not find kernel image", "Kernel panic", "No DEFAULT or UI configuration")


def files(config_path: str, config: str, more: Mapping[str, FileSpec] | None = None, *, top: str = "/boot",
          tag: str = "x") -> dict[str, FileSpec]:
    """Kernels and markers under ``top`` ("x-<version>" markers, "x-extra" in extra/), the
    config at ``config_path``, menu.c32 and its libraries when the config uses it."""
    out: dict[str, FileSpec] = {}
    for version in VERSIONS:
        out[f"{top}/vmlinuz-{version}"] = Kernel()
        out[f"{top}/initrd.img-{version}"] = Marker(f"{tag}-{version}")
    out[f"{top}/extra/extra.img"] = Marker(f"{tag}-extra")
    out[config_path] = Text(config)
    if "menu.c32" in config.lower():
        directory = config_path.rsplit("/", 1)[0]
        for module in MENU_MODULES:
            out[f"{directory}/{module}"] = HostFile(str(MODULES / module))
    out.update(more or {})
    return out


def _need(path: Path, package: str) -> None:
    if not path.exists():
        raise ToolMissing(f"{path} not found (apt-get install {package})")


def build_extlinux(workdir: Path, payload: Payload, name: str, config: str,
                   more: Mapping[str, FileSpec] | None = None, adv: tuple[str, ...] = ()) -> DiskImage:
    """An MBR disk, one active ext4 partition with /boot/extlinux/extlinux.conf = config,
    extlinux --install'ed into /boot/extlinux (then ``extlinux ADV…`` when given, such as
    --once=LABEL or --menu-save=LABEL, which write the ADV), mbr.bin in the MBR."""
    _need(MBR_BIN, "syslinux-common")
    extlinux = shutil.which("extlinux") or shutil.which("extlinux", path="/usr/sbin:/sbin")
    if not extlinux:
        raise ToolMissing("extlinux not found (apt-get install extlinux)")
    part = Partition("ext4", "sl-boot", EXT_UUID, files("/boot/extlinux/extlinux.conf", config, more, tag="ext"),
                     size_mib=48, bootable=True)
    image = build_disk(workdir / f"{name}.img", [part], payload)
    with loop_device(image.path) as device, tempfile.TemporaryDirectory(prefix="realboot-mnt-") as mnt:
        with mounted(device + "p1", Path(mnt)):
            run([extlinux, "--install", f"{mnt}/boot/extlinux"])
            if adv:
                run([extlinux, *adv, f"{mnt}/boot/extlinux"])
    with open(image.path, "r+b") as disk:
        disk.write(MBR_BIN.read_bytes()[:440])  # boot code only: the partition table stays
    return image


def build_isolinux(workdir: Path, payload: Payload, name: str, config: str,
                   more: Mapping[str, FileSpec] | None = None) -> DiskImage:
    """An ISO 9660 image (Rock Ridge, xorriso) booting isolinux/isolinux.bin, its config
    isolinux/isolinux.cfg. Markers are keyed by path alone (any device guestboot names)."""
    _need(ISOLINUX_BIN, "isolinux")
    _need(MODULES / "ldlinux.c32", "syslinux-common")
    tree_files = files("/isolinux/isolinux.cfg", config, more, top="/live", tag="iso")
    tree_files["/isolinux/isolinux.bin"] = HostFile(str(ISOLINUX_BIN))
    tree_files["/isolinux/ldlinux.c32"] = HostFile(str(MODULES / "ldlinux.c32"))
    path = workdir / f"{name}.iso"
    with tempfile.TemporaryDirectory(prefix="realboot-iso-", dir=workdir) as tmp:
        markers = payload.materialize(tree_files, Path(tmp), links=False)
        run(["xorriso", "-as", "mkisofs", "-quiet", "-R", "-J", "-o", str(path),
             "-b", "isolinux/isolinux.bin", "-c", "isolinux/boot.cat",
             "-no-emul-boot", "-boot-load-size", "4", "-boot-info-table", tmp])
    return DiskImage(path, {("*", file): marker for (_, file), marker in markers.items()}, [0])


def boot_disk(image: DiskImage) -> tuple[Answer, float]:
    console, seconds = qemu_boot(["-drive", f"file={image.path},format=raw,if=virtio,readonly=on"], stop_on=FAILURES)
    return answer_from_console(console), seconds


def boot_cd(image: DiskImage) -> tuple[Answer, float]:
    console, seconds = qemu_boot(["-cdrom", str(image.path), "-boot", "d"], stop_on=FAILURES)
    return answer_from_console(console), seconds


def version() -> str:
    return f"SYSLINUX {package_version('extlinux')} (extlinux, isolinux {package_version('isolinux')}) on SeaBIOS"
