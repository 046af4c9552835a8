"""GRUB dialects (boot/grub2/dialect.py): what differs between Debian's GRUB 2.06 and
Fedora's/SUSE's, checked against Debian's own build (grub-emu) where it can be, and how
the dialect is chosen from what the image shows."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from prereq import unavailable

from dirfs import DirFileSystem, device_map
from guestboot.boot.discover import find_menu
from guestboot.boot.grub2 import evaluate
from guestboot.boot.grub2.dialect import DEBIAN, FEDORA, SUSE
from guestboot.boot.grub2.interp import Context, Interp, Shared
from guestboot.devices import DeviceMap
from guestboot.errors import ConfigError, NotFound
from guestboot.select import boot

CORPUS = Path(__file__).parent / "data" / "corpus"

# What Debian refuses and Fedora accepts: --users with its variable unset, linuxefi.
DIFFERENCES = """\
menuentry 'T' --class x --users $grub_users --id tid {
 echo in T
}
echo listed $?
linuxefi /x
echo linuxefi $?
initrdefi /y
blscfg
echo done
"""


def run_as(dialect, text: str) -> tuple[str, list[str], int]:
    shared = Shared(DeviceMap(), [], dialect=dialect)
    it = Interp(shared, Context())
    it.run_text(text, config_file=True)
    errors = [re.sub(r" \(.*\)$", "", w) for w in shared.warnings]
    return "".join(shared.output), errors, len(it.ctx.menu)


def test_debian_dialect_is_debians_grub():
    """Debian's GRUB (grub-emu 2.06 on Debian 12, 2.12 on 13) prints the same errors and $? values as ours."""
    if shutil.which("grub-emu") is None:
        unavailable("grub-emu is not installed (package grub-emu)")
    from test_grub2_script import real_grub

    real = real_grub(DIFFERENCES, keep_errors=True)
    output, errors, entries = run_as(DEBIAN, DIFFERENCES)
    assert output == re.sub(r"^error: .*\n", "", real, flags=re.M)
    assert [f"{e}." for e in errors] == re.findall(r"^(error: .*)$", real, flags=re.M)
    assert entries == 0  # the entry with --users and no value is dropped


def test_fedora_dialect_accepts_what_fedoras_configs_use():
    output, errors, entries = run_as(FEDORA, DIFFERENCES)
    assert output == "listed 0\nlinuxefi 12\ndone\n"  # a command that runs (and finds no $root)
    assert entries == 1
    assert not any("can't find command" in e for e in errors)
    assert errors[-1] == "error: variable `root' isn't set"  # blscfg runs: it reads entries on $root


def test_suse_dialect_has_linuxefi_but_not_blscfg():
    output, errors, entries = run_as(SUSE, DIFFERENCES)
    assert output == "listed 18\nlinuxefi 12\ndone\n" and entries == 0
    assert any("can't find command `blscfg'" in e for e in errors)


def _tree(base: Path, files: dict[str, str]) -> DirFileSystem:
    for name, text in files.items():
        path = base / name.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return DirFileSystem(base)


PLAIN = "menuentry 'Linux' { linux /vmlinuz root=/dev/sda2 }\n"


@pytest.mark.parametrize("os_release, dialect", [
    ('NAME="Rocky Linux"\nID="rocky"\nID_LIKE="rhel centos fedora"\n', "fedora"),
    ('NAME="openSUSE Leap"\nID="opensuse-leap"\nID_LIKE="suse opensuse"\n', "suse"),
    ("PRETTY_NAME=\"Ubuntu 22.04\"\nID=ubuntu\nID_LIKE=debian\n", "debian"),
    (None, "debian"),
])
def test_dialect_from_os_release_on_the_root_file_system(tmp_path, os_release, dialect):
    """/boot is its own partition; os-release is on the root file system, another device."""
    boot_fs = _tree(tmp_path / "boot", {"/grub2/grub.cfg": PLAIN, "/vmlinuz": "k"})
    root_files = {"/etc/os-release": os_release} if os_release else {"/etc/hostname": "h\n"}
    devices = device_map(**{"hd0": None, "hd0,msdos1": boot_fs, "hd0,msdos2": _tree(tmp_path / "root", root_files)})
    menu = find_menu(devices)
    assert menu.dialect == dialect
    assert menu.format == "grub2"


def test_dialect_from_the_config_and_the_override(tmp_path):
    fs = _tree(tmp_path, {"/boot/grub/grub.cfg": "menuentry 'L' { linuxefi /vmlinuz\n initrdefi /initrd }\n",
                          "/vmlinuz": "k", "/initrd": "i"})
    devices = device_map(hd0=fs)
    menu = find_menu(devices)
    assert menu.dialect == "fedora"
    assert boot(menu)[1].loader == "linuxefi"
    debian = find_menu(devices, settings={"grub_dialect": "debian"})
    assert debian.dialect == "debian"
    with pytest.raises(NotFound, match="loads no kernel .*can't find command `linuxefi'"):
        boot(debian)
    with pytest.raises(ConfigError, match="unknown GRUB dialect 'arch'; known: debian, fedora, suse"):
        find_menu(devices, settings={"grub_dialect": "arch"})


def test_rhel8_config_boots_as_fedora_and_not_as_debian():
    """A RHEL 8 grub.cfg (petitboot's corpus) writes --users $grub_users on every entry:
    Fedora's GRUB boots it; Debian's GRUB refuses every entry."""
    top = CORPUS / "petitboot/test-grub2-rhel8/__test0"
    devices = device_map(hd0=DirFileSystem(top))
    fedora = evaluate(devices, "hd0", "/grub/grub.cfg", check_files=False)
    assert fedora.dialect == "fedora" and len(fedora.entries) == 3
    debian = evaluate(devices, "hd0", "/grub/grub.cfg", check_files=False, grub_dialect="debian")
    assert debian.entries == []
    assert any("missing mandatory option for `users'" in w for w in debian.warnings)


def test_legacy_is_not_given_the_grub_dialect(tmp_path):
    fs = _tree(tmp_path, {"/boot/grub/menu.lst": "title t\n kernel /vmlinuz ro\n", "/vmlinuz": "k"})
    menu = find_menu(device_map(hd0=fs), settings={"grub_dialect": "fedora"})
    assert (menu.format, menu.dialect) == ("grub-legacy", "")


@pytest.mark.parametrize("os_id, dialect", [("ubuntu", "debian"), ("fedora", "fedora")])
def test_dialect_from_os_release_in_subvolume_at(tmp_path, os_id, dialect):
    """Ubuntu's and Fedora's btrfs layouts keep the system, os-release included, in the
    subvolume "@" (the default subvolume stays the top one): read there too."""
    fs = _tree(tmp_path, {"/@/boot/grub/grub.cfg": PLAIN, "/@/etc/os-release": f"ID={os_id}\n", "/vmlinuz": "k"})
    menu = find_menu(device_map(hd0=fs))
    assert (menu.dialect, menu.dialect_reason) == (dialect, f"(hd0)/@/etc/os-release has {os_id!r} in ID")
