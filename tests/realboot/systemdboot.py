"""systemd-boot for the harness: Debian's systemd-bootx64.efi (systemd-boot-efi) on a FAT
ESP of a GPT disk, booted with OVMF and a fresh copy of its variable store per boot (so
no LoaderEntryDefault/LoaderEntryLastBooted variable exists: ``@saved`` has nothing).

The ESP of every case: two Type #1 entries written by systemd's kernel-install (layout
bls; versions 6.1.0-9 and 6.1.0-57, markers "type1-9"/"type1-57") and two UKIs built
with objcopy on linuxx64.efi.stub (markers "uki-a"/"uki-b") — both by
tests/builders/sdboot.py —, systemd-boot as the removable-media loader
/EFI/BOOT/BOOTX64.EFI (a fresh variable store has no Boot#### entry, so OVMF starts
that), the case's loader.conf and the case's own entry files.

Debian packages: systemd-boot-efi, ovmf, systemd (kernel-install), binutils (objcopy),
dosfstools, mtools.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Mapping

from builders import sdboot
from builders.initramfs import ToolMissing

from .harness import (Answer, DiskImage, FileSpec, HostFile, Kernel, Marker, Partition, Payload, Text,
                      answer_from_console, build_disk, package_version, qemu_boot)

SYSTEMD_BOOT = Path("/usr/lib/systemd/boot/efi/systemd-bootx64.efi")
OVMF_CODE = Path("/usr/share/OVMF/OVMF_CODE_4M.fd")  # the 4 MiB build: Debian 12 and 13 both ship it
OVMF_VARS = Path("/usr/share/OVMF/OVMF_VARS_4M.fd")
ESP_TYPE = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
ESP_ID = "e5b0e5b0"
MARKERS = ("type1-9", "type1-57", "uki-a", "uki-b")
UKIS = {"/EFI/Linux/debian-uki-a.efi": "uki-a", "/EFI/Linux/debian-uki-b.efi": "uki-b"}
MID = sdboot.MACHINE_ID
FAILURES = ("Kernel panic", "Failed to boot", "Error loading", "No loader found")


def generated(workdir: Path, payload: Payload) -> Path:
    """The ESP tree kernel-install and objcopy made (once per session)."""
    tree = workdir / "esp"
    if not tree.exists():
        if not SYSTEMD_BOOT.exists():
            raise ToolMissing(f"{SYSTEMD_BOOT} not found (apt-get install systemd-boot-efi)")
        work = workdir / "esp-work"
        work.mkdir()
        made = sdboot.esp_tree(work, payload.kernel, {n: payload.marker(n) for n in MARKERS}, loader_conf=None)
        shutil.move(made, tree)
    return tree


def esp_files(tree: Path, payload: Payload, loader_conf: str, more: Mapping[str, FileSpec]) -> dict[str, FileSpec]:
    """The generated tree as file specs (a copied marker is that Marker again, so the
    manifest knows it), systemd-boot, loader.conf and the case's files."""
    markers = {payload.marker(n).read_bytes(): n for n in MARKERS}
    kernel = payload.kernel.read_bytes()
    files: dict[str, FileSpec] = {}
    for path in sorted(p for p in tree.rglob("*") if p.is_file()):
        name = "/" + str(path.relative_to(tree))
        data = path.read_bytes()
        files[name] = Marker(markers[data]) if data in markers else Kernel() if data == kernel else HostFile(str(path))
    files["/EFI/BOOT/BOOTX64.EFI"] = HostFile(str(SYSTEMD_BOOT))
    files["/loader/loader.conf"] = Text(loader_conf)
    files.update(more)
    return files


def build(workdir: Path, payload: Payload, name: str, loader_conf: str, more: Mapping[str, FileSpec]) -> DiskImage:
    files = esp_files(generated(workdir, payload), payload, loader_conf, more)
    image = build_disk(workdir / f"{name}.img", [Partition("vfat", "ESP", ESP_ID, files, size_mib=96, type=ESP_TYPE)],
                       payload, table="gpt")
    image.manifest.update({("hd0,gpt1", path): marker for path, marker in UKIS.items()})  # .initrd sections
    return image


def boot(image: DiskImage) -> tuple[Answer, float]:
    for firmware in (OVMF_CODE, OVMF_VARS):
        if not firmware.exists():
            raise ToolMissing(f"{firmware} not found (apt-get install ovmf)")
    variables = image.path.with_suffix(".vars.fd")
    shutil.copyfile(OVMF_VARS, variables)  # a fresh store: no EFI variables from an earlier boot
    try:
        console, seconds = qemu_boot([
            "-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE}",
            "-drive", f"if=pflash,format=raw,unit=1,file={variables}",
            "-drive", f"file={image.path},format=raw,if=virtio,readonly=on",
        ], stop_on=FAILURES)
    finally:
        variables.unlink()
    return answer_from_console(console), seconds


def version() -> str:
    return f"systemd-boot {package_version('systemd-boot-efi')} on OVMF {package_version('ovmf')}"
