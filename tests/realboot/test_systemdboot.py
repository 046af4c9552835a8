"""Real systemd-boot (Debian's systemd-bootx64.efi on OVMF) against guestboot.

Each case is a loader.conf and maybe entry files of its own, on the ESP of
realboot/systemdboot.py (two kernel-install entries, two UKIs). systemd-boot shows no
title on the console: the command line and the initrds say which entry booted (every
entry has its own options and markers). Every case: guestboot's choice equals the golden
file; ``ci`` cases also boot.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from . import systemdboot
from .harness import DiskImage, Kernel, Marker, Payload, Text, cached_image, check_boot, check_recorded, mode

pytestmark = pytest.mark.slow

BOOTLOADER = "systemd-boot"


@dataclass(frozen=True)
class Case:
    name: str
    note: str
    loader_conf: str
    ci: bool = False
    more: dict = field(default_factory=dict)


def entry(title: str, version: str, kernel: str, *, sort_key: str, initrds: tuple[str, ...], options: tuple[str, ...]) -> Text:
    lines = [f"title {title}", f"version {version}", f"sort-key {sort_key}", f"linux {kernel}"]
    lines += [f"initrd {i}" for i in initrds] + [f"options {o}" for o in options]
    return Text("\n".join(lines) + "\n")


# Two hand-written entries with the lowest sort key: versions 6.1.0-10 and 6.1.0-9 (a plain
# string order puts 9 first; systemd-boot's version order puts 10 first), one with two
# initrd and two options lines.
OWN = {
    "/own/vmlinuz": Kernel(),
    "/own/one.img": Marker("own-one"),
    "/own/two.img": Marker("own-two"),
    "/loader/entries/aaa-nine.conf": entry("Own nine", "6.1.0-9", "/own/vmlinuz", sort_key="aaa",
                                           initrds=("/own/one.img", "/own/two.img"),
                                           options=("root=/dev/null own=nine", "second=line")),
    "/loader/entries/aaa-ten.conf": entry("Own ten", "6.1.0-10", "/own/vmlinuz", sort_key="aaa",
                                          initrds=("/own/two.img",), options=("root=/dev/null own=ten",)),
}

def own(name: str, marker: str, *extra: str, sort_key: str = "aaa") -> Text:
    """An entry on /own/vmlinuz with sort key ``sort_key`` and the marker ``marker``."""
    lines = [f"title {name}", f"sort-key {sort_key}", "linux /own/vmlinuz", f"initrd /own/{marker}.img",
             f"options root=/dev/null own={name}", *extra]
    return Text("\n".join(lines) + "\n")


# Boot counting (the "+LEFT-DONE" suffix): "aaa-spent+0-3" would sort first by its key,
# but its tries are spent; "aaa-left+2-1" still has tries.
SPENT = {
    "/own/vmlinuz": Kernel(), "/own/own-spent.img": Marker("own-spent"), "/own/own-left.img": Marker("own-left"),
    "/loader/entries/aaa-spent+0-3.conf": own("spent", "own-spent", sort_key="aa"),
    "/loader/entries/aaa-left+2-1.conf": own("left", "own-left"),
}
# Two entries that would sort first but that systemd-boot drops, then one it keeps.
SKIPPED = {
    "/own/vmlinuz": Kernel(), "/own/own-kept.img": Marker("own-kept"),
    "/loader/entries/aaa-gone.conf": Text("title gone\nsort-key aa\nlinux /own/missing\noptions own=gone\n"),
    "/loader/entries/aaa-arm.conf": own("arm", "own-kept", "architecture aa64", sort_key="aa"),
    "/loader/entries/aaa-kept.conf": own("kept", "own-kept"),
}
# A file name in capitals, chosen by a default pattern in other capitals.
UPPER = {
    "/own/vmlinuz": Kernel(), "/own/own-upper.img": Marker("own-upper"),
    "/loader/entries/AAA-Upper.conf": own("upper", "own-upper", sort_key="zzz"),
}

CASES = [
    Case("sd-no-default", "no default: the first entry in systemd-boot's order", "timeout 0\n"),
    Case("sd-saved-no-variable", "default @saved with no EFI variable (a fresh store): the first entry",
         "timeout 0\ndefault @saved\n", ci=True),
    Case("sd-default-glob", "a default glob matching one kernel-install entry", "timeout 0\ndefault *-6.1.0-9-*\n"),
    Case("sd-default-uki", "a default naming a UKI that is not first in order",
         "timeout 0\ndefault debian-uki-a.efi\n"),
    Case("sd-default-glob-several", "a glob matching both UKIs: the first of them in order",
         "timeout 0\ndefault debian-uki-*\n"),
    Case("sd-sort-version", "sort-key before the others; version order (6.1.0-10 above 6.1.0-9)",
         "timeout 0\n", ci=True, more=OWN),
    Case("sd-two-initrds-options", "an entry with two initrd lines and two options lines",
         "timeout 0\ndefault aaa-nine.conf\n", more=OWN),
    Case("sd-default-nomatch", "a default glob that matches nothing: the first entry", "timeout 0\ndefault zzz*\n"),
    Case("sd-tries-spent", "boot counting: an entry whose tries are spent (+0-3) sorts after all others, "
         "even those without a sort key", "timeout 0\n", more=SPENT),
    Case("sd-skipped-entries", "entries systemd-boot leaves out: a missing kernel, another architecture; "
         "the next entry boots", "timeout 0\n", more=SKIPPED),
    Case("sd-default-case-folded", "the default pattern and the ids are compared lower-cased",
         "timeout 0\ndefault AAA-UPPER.CONF\n", more=UPPER),
]

BOOTED = [case for case in CASES if case.ci or mode()]


def image(case: Case, payload: Payload) -> DiskImage:
    workdir = payload.markers.parent
    return cached_image(f"{BOOTLOADER}/{case.name}",
                        lambda: systemdboot.build(workdir, payload, case.name, case.loader_conf, case.more))


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_guestboot_chooses_what_systemd_boot_booted(case, payload):
    check_recorded(BOOTLOADER, case.name, case.note, image(case, payload))


@pytest.mark.parametrize("case", BOOTED, ids=lambda c: c.name)
def test_real_systemd_boot(case, payload):
    disk = image(case, payload)
    theirs, seconds = systemdboot.boot(disk)
    check_boot(BOOTLOADER, systemdboot.version(), case.name, case.note, disk, theirs, seconds)
