"""Real SYSLINUX (Debian's extlinux on ext4, isolinux on an ISO) against guestboot.

Each case is an extlinux.conf (or isolinux.cfg) on the layout of realboot/syslinux.py:
kernels and markers in /boot (the ISO: /live), the config in /boot/extlinux (the ISO:
/isolinux). TIMEOUT is in tenths of a second (1 = 0.1 s). Every case: guestboot's choice
equals the golden file; ``ci`` cases also boot.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from . import syslinux
from .harness import DiskImage, Payload, Text, cached_image, check_boot, check_recorded, mode

pytestmark = pytest.mark.slow

V10, V9, V8 = syslinux.VERSIONS
BOOTLOADER = "syslinux"
HEAD = "SERIAL 0 115200\nPROMPT 0\nTIMEOUT 1\n"


@dataclass(frozen=True)
class Case:
    name: str
    note: str
    config: str
    kind: str = "ext"  # "ext": extlinux on an MBR disk; "iso": isolinux on a CD
    ci: bool = False
    more: dict = field(default_factory=dict)
    adv: tuple[str, ...] = ()  # extlinux options run after the install that write the ADV (--once=, --menu-save=)


def label(name: str, version: str, *, args: str | None = "root=/dev/null", initrd: str | None = "INITRD",
          top: str = "/boot", extra: str = "") -> str:
    """LABEL ``name`` booting /boot/vmlinuz-<version>; its initrd by an INITRD line
    (initrd="INITRD"), inside APPEND (initrd="APPEND") or not at all (None)."""
    lines = [f"LABEL {name}", f"  LINUX {top}/vmlinuz-{version}"]
    if initrd == "INITRD":
        lines.append(f"  INITRD {top}/initrd.img-{version}")
    if args is not None:
        inside = f"initrd={top}/initrd.img-{version} " if initrd == "APPEND" else ""
        lines.append(f"  APPEND {inside}{args} l={name}")
    return "\n".join(lines) + "\n" + extra


THREE = label("ten", V10) + label("nine", V9) + label("eight", V8)

CASES = [
    Case("ext-default-label", "DEFAULT names a label", HEAD + "DEFAULT nine\n" + THREE),
    Case("ext-default-kernel-path", "DEFAULT names no label: syslinux boots it as a command line "
         "(kernel path and arguments)",
         HEAD + f"DEFAULT /boot/vmlinuz-{V8} initrd=/boot/initrd.img-{V8} root=/dev/null d=path\n" + THREE),
    Case("ext-ontimeout", "ONTIMEOUT, not DEFAULT, boots when the timeout runs out",
         "SERIAL 0 115200\nPROMPT 1\nTIMEOUT 1\nDEFAULT ten\nONTIMEOUT eight\n" + THREE, ci=True),
    Case("ext-menu-default", "UI menu.c32 with MENU DEFAULT on a label and no DEFAULT line",
         HEAD + "UI menu.c32\nMENU TITLE test\n" + label("ten", V10) + label("nine", V9, extra="  MENU DEFAULT\n")
         + label("eight", V8), ci=True),
    Case("ext-append-global", "a label without APPEND takes the global APPEND",
         HEAD + "DEFAULT nine\nAPPEND root=/dev/null g=global\n" + label("ten", V10) + label("nine", V9, args=None)
         + label("eight", V8)),
    Case("ext-append-label", "a label's APPEND replaces the global one",
         HEAD + "DEFAULT nine\nAPPEND root=/dev/null g=global\n" + label("ten", V10, args=None) + label("nine", V9)
         + label("eight", V8, args=None)),
    Case("ext-append-dash", "APPEND - : no arguments at all, not even the global APPEND",
         HEAD + "DEFAULT nine\nAPPEND root=/dev/null g=global\n" + label("ten", V10, args=None)
         + f"LABEL nine\n  LINUX /boot/vmlinuz-{V9}\n  INITRD /boot/initrd.img-{V9}\n  APPEND -\n" + label("eight", V8)),
    Case("ext-initrd-list", "INITRD with comma-separated files loads each",
         HEAD + f"DEFAULT two\nLABEL two\n  LINUX /boot/vmlinuz-{V9}\n"
         f"  INITRD /boot/initrd.img-{V9},/boot/extra/extra.img\n  APPEND root=/dev/null\n" + THREE),
    Case("ext-initrd-append-list", "initrd= inside APPEND with a comma-separated list",
         HEAD + f"DEFAULT two\nLABEL two\n  KERNEL /boot/vmlinuz-{V10}\n"
         f"  APPEND root=/dev/null initrd=/boot/extra/extra.img,/boot/initrd.img-{V10} x=1\n" + THREE, ci=True),
    Case("ext-initrd-both", "an INITRD line and an initrd= in APPEND on one label",
         HEAD + f"DEFAULT two\nLABEL two\n  LINUX /boot/vmlinuz-{V10}\n  INITRD /boot/initrd.img-{V8}\n"
         f"  APPEND root=/dev/null initrd=/boot/extra/extra.img\n" + THREE),
    Case("ext-include", "INCLUDE reads another file: its labels and its DEFAULT",
         HEAD + "DEFAULT ten\nINCLUDE /boot/extlinux/more.cfg\n" + label("ten", V10),
         more={"/boot/extlinux/more.cfg": Text("DEFAULT more\n" + label("more", V8) + label("nine", V9))}),
    Case("ext-relative", "paths without a leading slash are relative to the config's directory",
         HEAD + f"DEFAULT rel\nLABEL rel\n  LINUX ../vmlinuz-{V9}\n  INITRD ../extra/extra.img,../initrd.img-{V9}\n"
         "  APPEND root=/dev/null\n" + THREE),
    Case("ext-once", "extlinux --once=eight: the boot-once command in ldlinux.sys's ADV beats DEFAULT",
         HEAD + "DEFAULT ten\n" + THREE, adv=("--once=eight",)),
    Case("ext-menu-save", "UI menu.c32 with MENU SAVE: the label extlinux --menu-save stored beats DEFAULT",
         HEAD + "UI menu.c32\nMENU SAVE\nDEFAULT ten\n" + THREE, adv=("--menu-save=eight",)),
    Case("ext-ui-default-over-menu-default", "UI menu.c32: DEFAULT names the default, over a MENU DEFAULT",
         HEAD + "UI menu.c32\nDEFAULT ten\n" + label("ten", V10) + label("nine", V9, extra="  MENU DEFAULT\n")
         + label("eight", V8)),
    Case("ext-menu-ontimeout", "the menu times out and runs ONTIMEOUT, not the default entry",
         HEAD + "UI menu.c32\nONTIMEOUT eight\n" + label("ten", V10) + label("nine", V9, extra="  MENU DEFAULT\n")
         + label("eight", V8)),
    Case("ext-hidden-default", "DEFAULT names a MENU HIDE label (no UI): it boots",
         HEAD + "DEFAULT nine\n" + label("ten", V10) + label("nine", V9, extra="  MENU HIDE\n") + label("eight", V8)),
    Case("ext-default-menu-module", "DEFAULT menu.c32 without UI: the menu runs, MENU DEFAULT is its default",
         HEAD + "DEFAULT menu.c32\n" + label("ten", V10) + label("nine", V9, extra="  MENU DEFAULT\n")
         + label("eight", V8)),
    Case("ext-default-label-args", "DEFAULT a label followed by words: they go after the label's arguments",
         HEAD + "DEFAULT nine more=words\n" + THREE),
    Case("ext-menu-include-submenu", "UI menu.c32, DEFAULT naming a label inside a MENU INCLUDE submenu",
         HEAD + "UI menu.c32\nDEFAULT eight\n" + label("ten", V10) + "MENU INCLUDE /boot/extlinux/sub.cfg Older\n",
         more={"/boot/extlinux/sub.cfg": Text(label("nine", V9) + label("eight", V8))}),
    Case("ext-config", "CONFIG switches to another config file, whose DEFAULT boots",
         HEAD + "DEFAULT other\nLABEL other\n  CONFIG /boot/extlinux/other.cfg\n" + THREE,
         more={"/boot/extlinux/other.cfg": Text(HEAD + "DEFAULT nine\n" + THREE)}),
    Case("iso-default", "isolinux on a CD: DEFAULT label, kernels outside isolinux/",
         HEAD + "DEFAULT nine\n" + "".join(label(n, v, top="/live") for n, v in (("ten", V10), ("nine", V9), ("eight", V8))),
         kind="iso", ci=True),
    Case("iso-menu-relative", "isolinux with menu.c32, MENU DEFAULT and paths relative to isolinux/",
         HEAD + "UI menu.c32\n" + label("ten", V10, top="/live")
         + f"LABEL rel\n  MENU LABEL relative\n  MENU DEFAULT\n  KERNEL ../live/vmlinuz-{V8}\n"
         f"  APPEND initrd=../live/initrd.img-{V8} root=/dev/null\n", kind="iso"),
]

BOOTED = [case for case in CASES if case.ci or mode()]


def image(case: Case, payload: Payload) -> DiskImage:
    workdir = payload.markers.parent
    if case.kind == "iso":
        return cached_image(f"{BOOTLOADER}/{case.name}",
                            lambda: syslinux.build_isolinux(workdir, payload, case.name, case.config, case.more))
    return cached_image(f"{BOOTLOADER}/{case.name}", lambda: syslinux.build_extlinux(
        workdir, payload, case.name, case.config, case.more, adv=case.adv))


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_guestboot_chooses_what_syslinux_booted(case, payload):
    check_recorded(BOOTLOADER, case.name, case.note, image(case, payload))


@pytest.mark.parametrize("case", BOOTED, ids=lambda c: c.name)
def test_real_syslinux_boot(case, payload):
    disk = image(case, payload)
    theirs, seconds = (syslinux.boot_cd if case.kind == "iso" else syslinux.boot_disk)(disk)
    check_boot(BOOTLOADER, syslinux.version(), case.name, case.note, disk, theirs, seconds)
