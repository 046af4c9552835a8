"""A Fedora/RHEL style guest that boots through Fedora's GRUB ``blscfg``, made by the real
tools.

Layout (what Anaconda leaves on a UEFI machine): GPT (sgdisk); gpt1 the ESP (mkfs.fat +
mcopy) holding Fedora's stub /EFI/fedora/grub.cfg, which finds /boot by UUID and runs
its grub.cfg with configfile; gpt2 /boot on XFS v5 (mkfs.xfs with a protofile) holding
grub2/grub.cfg, grub2/grubenv (written by the real grub-editenv), loader/entries/*.conf
and the kernels; gpt3 the root on XFS v5 with /etc/os-release (ID=fedora).

grub2/grub.cfg is a real grub2-mkconfig output with BLS: the corpus's CentOS 8 Stream
config (tests/data/corpus/uroot/grub/testdata_new/CentOS_8_Stream_x86_64_blscfg_sda1/
EFI/centos/grub.cfg, from u-root's test data, BSD-3-Clause; see tests/data/corpus/
README.md), its /boot UUID replaced by ours and its tboot submenu (a tboot.gz this guest
does not have) left out. grub2-mkconfig is not in Debian, so the config is taken as
Fedora's tooling wrote it. The BLS entries are written in the form of that corpus
tree's entries (grubby's: ``options $kernelopts $tuned_params``, ``initrd ...
$tuned_initrd``, ``grub_users $grub_users``, ``grub_arg --unrestricted``, ``grub_class``).
grubenv holds kernelopts and saved_entry (the older kernel's entry id, as grubby writes
it). The kernels are the real Debian vmlinuz under Fedora version names, each initramfs
the busybox one of tests/builders, named after its kernel.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from . import fat
from .guest_images import SECTOR, _copy_kernel, _run, _tool, grub_env
from .initramfs import build_initramfs
from .xfs_guest import XFS_SIZE, mkfs_xfs_at

CORPUS_CFG = (Path(__file__).parent.parent / "data" / "corpus" / "uroot" / "grub" / "testdata_new"
              / "CentOS_8_Stream_x86_64_blscfg_sda1" / "EFI" / "centos" / "grub.cfg")
CORPUS_UUID = "d0be5cb9-622d-42d5-a531-674aaa120309"
BOOT_UUID = "8f3e2d1c-4b5a-4c6d-9e8f-0a1b2c3d4e5f"
ROOT_UUID = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
MACHINE_ID = "2a6f3c1e8d9b4f7a9c0e1d2b3a4f5e6d"
RELEASES = ("6.5.6-300.fc39.x86_64", "6.4.15-200.fc38.x86_64")  # newest first
KERNELOPTS = f"root=UUID={ROOT_UUID} ro rhgb quiet guestboot.from=kernelopts"
ESP_FIRST = 2048
ESP_SECTORS = fat.VARIANTS["fat32"][1] * 1024 // SECTOR


@dataclass
class BlsGuest:
    path: Path
    boot_tree: Path
    entry_ids: list[str]  # newest first
    saved: str  # grubenv's saved_entry

    def kernel(self, release: str) -> Path:
        return self.boot_tree / f"vmlinuz-{release}"

    def initrd(self, release: str) -> Path:
        return self.boot_tree / f"initramfs-{release}.img"


def fedora_grub_cfg() -> str:
    text = CORPUS_CFG.read_text()
    text = re.sub(r"### BEGIN /etc/grub\.d/20_linux_tboot ###.*?### END /etc/grub\.d/20_linux_tboot ###\n", "",
                  text, flags=re.S)
    return text.replace(CORPUS_UUID, BOOT_UUID)


def esp_stub() -> str:
    """The stub Fedora's grub2-efi package writes to /EFI/fedora/grub.cfg (Fedora 34+)."""
    return (f"search --no-floppy --fs-uuid --set=dev {BOOT_UUID}\n"
            "set prefix=($dev)/grub2\n\nexport $prefix\nconfigfile $prefix/grub.cfg\n")


def bls_entry(release: str) -> str:
    return (f"title Fedora Linux ({release}) 39 (Thirty Nine)\nversion {release}\nlinux /vmlinuz-{release}\n"
            f"initrd /initramfs-{release}.img $tuned_initrd\noptions $kernelopts $tuned_params\n"
            f"id fedora-20231010-{release}\ngrub_users $grub_users\ngrub_arg --unrestricted\ngrub_class fedora\n")


def build(workdir: Path, kernel: Path) -> BlsGuest:
    boot = workdir / "fedora-boot"
    root = workdir / "fedora-root"
    esp = workdir / "fedora-esp"
    (boot / "grub2").mkdir(parents=True)
    (boot / "loader" / "entries").mkdir(parents=True)
    ids = []
    for release in RELEASES:
        _copy_kernel(kernel, boot / f"vmlinuz-{release}")
        build_initramfs(boot / f"initramfs-{release}.img", f"initramfs-{release}.img")
        ident = f"{MACHINE_ID}-{release}"
        (boot / "loader" / "entries" / f"{ident}.conf").write_text(bls_entry(release))
        ids.append(ident)
    (boot / "grub2" / "grub.cfg").write_text(fedora_grub_cfg())
    grub_env(boot / "grub2" / "grubenv", saved_entry=ids[1], kernelopts=KERNELOPTS, boot_success="0")
    for sub in ("boot", "etc", "dev", "proc"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    (root / "etc" / "os-release").write_text('NAME="Fedora Linux"\nVERSION="39 (Thirty Nine)"\nID=fedora\n'
                                            'VERSION_ID=39\nPRETTY_NAME="Fedora Linux 39 (Thirty Nine)"\n')
    (root / "etc" / "fstab").write_text(f"UUID={ROOT_UUID} / xfs defaults 0 0\nUUID={BOOT_UUID} /boot xfs defaults 0 0\n")
    (esp / "EFI" / "fedora").mkdir(parents=True)
    (esp / "EFI" / "fedora" / "grub.cfg").write_text(esp_stub())

    image = workdir / "fedora-bls.img"
    boot_first = ESP_FIRST + ESP_SECTORS
    root_first = boot_first + XFS_SIZE // SECTOR
    with open(image, "wb") as f:
        f.truncate((root_first + XFS_SIZE // SECTOR + 2048) * SECTOR)
    _run([_tool("sgdisk", "gdisk"), "-o",
          "-n", f"1:{ESP_FIRST}:{boot_first - 1}", "-t", "1:ef00",
          "-n", f"2:{boot_first}:{root_first - 1}", "-t", "2:8300",
          "-n", f"3:{root_first}:{root_first + XFS_SIZE // SECTOR - 1}", "-t", "3:8300", str(image)])
    fat.format_at(image, "fat32", ESP_FIRST * SECTOR)
    fat.fill(image, esp, "fat32", ESP_FIRST * SECTOR)
    mkfs_xfs_at(image, boot_first, boot, BOOT_UUID)
    mkfs_xfs_at(image, root_first, root, ROOT_UUID)
    return BlsGuest(image, boot, ids, ids[1])


_BUILT: dict[str, BlsGuest] = {}


def session_image(tmp_path_factory) -> BlsGuest:
    if "fedora" not in _BUILT:
        from .boot import debian_kernel

        _BUILT["fedora"] = build(tmp_path_factory.mktemp("fedora-bls"), debian_kernel())
    return _BUILT["fedora"]
