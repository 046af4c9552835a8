"""An ESP as systemd-boot guests have it, made by the real tools.

* Type #1 entries: systemd's ``kernel-install add`` (package systemd) with layout=bls and
  only its 90-loaderentry.install plugin, into a tmpfs mounted for it (the plugin writes
  paths relative to the mount point of $BOOT_ROOT, ``stat -c %m``), copied out after.
* Type #2 unified kernel images: ``objcopy`` (binutils) adds .osrel, .cmdline, .linux and
  .initrd to Debian's linuxx64.efi.stub (package systemd-boot-efi), the recipe of
  systemd's own documentation for systemd 252 (Debian 12 has no ukify).
* The ESP layout: ``bootctl install`` (package systemd-boot) into that tmpfs
  (SYSTEMD_RELAX_ESP_CHECKS=1: not a real ESP; --no-variables: the host's EFI variables
  are not touched): /EFI/systemd/systemd-bootx64.efi, /EFI/BOOT/BOOTX64.EFI, /loader with
  its loader.conf, which a case may replace. Without bootctl, the boot loader is copied
  to /EFI/BOOT/BOOTX64.EFI by :func:`install_bootloader`.
* The FAT ESP on a GPT disk: mkfs.fat + mcopy (fat.esp_disk).

Debian packages: systemd, systemd-boot, binutils, systemd-boot-efi, dosfstools, mtools, gdisk.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from .initramfs import ToolMissing

STUB = Path("/usr/lib/systemd/boot/efi/linuxx64.efi.stub")
PLUGIN = "/usr/lib/kernel/install.d/90-loaderentry.install"
MACHINE_ID = "0123456789abcdef0123456789abcdef"


def _need() -> None:
    for tool, package in (("kernel-install", "systemd"), ("objcopy", "binutils"), ("mcopy", "mtools")):
        if not shutil.which(tool):
            raise ToolMissing(f"{tool} not found (apt-get install {package})")
    if not STUB.exists():
        raise ToolMissing(f"{STUB} not found (apt-get install systemd-boot-efi)")
    if not Path(PLUGIN).exists():
        raise ToolMissing(f"{PLUGIN} not found (package systemd)")
    if os.geteuid() != 0:
        raise ToolMissing("kernel-install's BOOT_ROOT must be a mount point: mounting a tmpfs needs root")


def _run(argv: list[str], **kw) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, check=False, **kw)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout


def kernel_install(esp: Path, work: Path, version: str, kernel: Path, initrd: Path, options: str,
                   os_release: str) -> None:
    """kernel-install add VERSION KERNEL INITRD into ``esp`` (layout bls)."""
    conf = work / "kernel-install-conf"
    conf.mkdir(exist_ok=True)
    (conf / "install.conf").write_text("layout=bls\n")
    (conf / "entry-token").write_text(MACHINE_ID + "\n")  # the entry files' name prefix, on every systemd
    (conf / "cmdline").write_text(options + "\n")
    (esp / MACHINE_ID).mkdir(exist_ok=True)
    (esp / "loader" / "entries").mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, KERNEL_INSTALL_CONF_ROOT=str(conf), MACHINE_ID=MACHINE_ID,
               KERNEL_INSTALL_MACHINE_ID=MACHINE_ID, KERNEL_INSTALL_ENTRY_TOKEN=MACHINE_ID,
               BOOT_ROOT=str(esp), KERNEL_INSTALL_PLUGINS=PLUGIN)
    options = []
    if "--boot-path" in _run(["kernel-install", "--help"]):  # systemd 254+ (Debian 13): BOOT_ROOT as an option
        options = [f"--boot-path={esp}", f"--entry-token=literal:{MACHINE_ID}"]
    _run(["kernel-install", *options, "add", version, str(kernel), str(initrd)], env=env)


def bootctl(esp: Path) -> None:
    """``bootctl install`` into ``esp`` when bootctl is there, else systemd-boot copied as
    the removable-media loader."""
    tool = shutil.which("bootctl")
    if tool is None:
        install_bootloader(esp)
        return
    env = dict(os.environ, SYSTEMD_RELAX_ESP_CHECKS="1")
    _run([tool, f"--esp-path={esp}", "install", "--no-variables", "--make-machine-id-directory=no"], env=env)


def _stub_end() -> int:
    """The first address after the stub's own sections (objdump -h): the added sections
    go above it, as ukify places them, whatever the size of this systemd's stub."""
    end = 0
    for line in _run(["objdump", "-h", str(STUB)]).splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[0].isdigit():
            end = max(end, int(fields[3], 16) + int(fields[2], 16))
    return end


def _layout(sections: list[tuple[str, Path]]) -> list[str]:
    """objcopy arguments adding ``sections`` (name, file) in that order, each at the next
    1 MiB-aligned address above the stub and the previous section."""
    argv: list[str] = []
    at = _stub_end()
    for name, path in sections:
        at = (at + 0xFFFFF) & ~0xFFFFF
        argv += ["--add-section", f"{name}={path}", "--change-section-vma", f"{name}={at:#x}"]
        at += max(path.stat().st_size, 1)
    return argv


def uki(out: Path, kernel: Path, initrd: Path, cmdline: str, os_release: str, work: Path) -> Path:
    """A unified kernel image: Debian's stub with the sections added by objcopy."""
    (work / "uki-osrel").write_text(os_release)
    (work / "uki-cmdline").write_text(cmdline + "\n")
    _run(["objcopy", *_layout([(".osrel", work / "uki-osrel"), (".cmdline", work / "uki-cmdline"),
                               (".linux", kernel), (".initrd", initrd)]), str(STUB), str(out)])
    return out


def esp_tree(work: Path, kernel: Path, initrds: dict[str, Path], loader_conf: str | None,
             with_ukis: bool = True) -> Path:
    """The ESP's files: two kernel-install entries (versions 6.1.0-9 and 6.1.0-57 of one
    kernel file, initrds ``initrds["type1-9"]``/``["type1-57"]``), two UKIs
    (``initrds["uki-a"]``/``["uki-b"]``) and loader.conf."""
    _need()
    esp = work / "esp"
    mnt = work / "boot-root"
    mnt.mkdir()
    osrel = 'ID=debian\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nVERSION_ID="12"\n'
    _run(["mount", "-t", "tmpfs", "-o", "size=512m", "guestboot-test", str(mnt)])
    try:
        bootctl(mnt)
        for version, name in (("6.1.0-9-amd64", "type1-9"), ("6.1.0-57-amd64", "type1-57")):
            kernel_install(mnt, work, version, kernel, initrds[name], f"quiet from={name}", osrel)
        shutil.copytree(mnt, esp)
    finally:
        subprocess.run(["umount", str(mnt)], check=False)
    if with_ukis:
        linux = esp / "EFI" / "Linux"
        linux.mkdir(parents=True, exist_ok=True)  # bootctl made it
        uki(linux / "debian-uki-a.efi", kernel, initrds["uki-a"], "quiet from=uki-a",
            'ID=debian\nPRETTY_NAME="UKI A"\nVERSION_ID="12.1"\n', work)
        uki(linux / "debian-uki-b.efi", kernel, initrds["uki-b"], "quiet from=uki-b",
            'ID=debian\nPRETTY_NAME="UKI B"\nVERSION_ID="12.2"\n', work)
    if loader_conf is not None:
        (esp / "loader" / "loader.conf").write_text(loader_conf)
    return esp


# --- the boot loader itself ------------------------------------------------------------
BOOTLOADER = Path("/usr/lib/systemd/boot/efi/systemd-bootx64.efi")


def install_bootloader(esp: Path) -> None:
    """Debian's systemd-boot as the removable-media loader \\EFI\\BOOT\\BOOTX64.EFI (what
    firmware without boot entries starts: a fresh variable store has none)."""
    if not BOOTLOADER.exists():
        raise ToolMissing(f"{BOOTLOADER} not found (apt-get install systemd-boot-efi)")
    (esp / "EFI" / "BOOT").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(BOOTLOADER, esp / "EFI" / "BOOT" / "BOOTX64.EFI")


def multi_profile_uki(out: Path, kernel: Path, initrd: Path, os_release: str, profiles: list[tuple[str, str]],
                      work: Path) -> Path:
    """A UKI with .profile sections (systemd 257's multi-profile UKIs: base sections, then
    for each profile a .profile section and its own .cmdline), made with objcopy: each
    profile's sections are added under unique names at increasing addresses (objcopy
    orders sections by address) and then renamed, since --add-section takes a name once."""
    (work / "mp-osrel").write_text(os_release)
    sections = [(".osrel", work / "mp-osrel"), (".linux", kernel), (".initrd", initrd)]
    renames = []
    for n, (profile, cmdline) in enumerate(profiles):
        (work / f"mp-profile{n}").write_text(profile)
        (work / f"mp-cmdline{n}").write_text(cmdline)
        sections += [(f".prof{n}", work / f"mp-profile{n}"), (f".cmdl{n}", work / f"mp-cmdline{n}")]
        renames += ["--rename-section", f".prof{n}=.profile", "--rename-section", f".cmdl{n}=.cmdline"]
    argv = ["objcopy", *_layout(sections)]
    staged = work / "mp-staged.efi"
    _run([*argv, str(STUB), str(staged)])
    _run(["objcopy", *renames, str(staged), str(out)])
    return out
