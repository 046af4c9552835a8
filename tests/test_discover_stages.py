"""The search order of boot/discover.py: pygrub's places on every device first (stage 0),
then the places pygrub does not know (stage 1), then the no-config stand-ins; every
config found is listed (find_configs), one per device for a format that reads a whole
device; --config picks another (chosen_config)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dirfs import DirFileSystem, device_map
from guestboot.boot.discover import FORMATS, chosen_config, find_config, find_configs, find_menu
from guestboot.errors import NotFound


def _fs(root: Path, files: dict[str, str]) -> DirFileSystem:
    for path, text in files.items():
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return DirFileSystem(root)


def test_pygrubs_places_win_across_devices(tmp_path: Path) -> None:
    """A /grub.cfg (stage 1) on the first device loses to /boot/grub/grub.cfg (stage 0,
    pygrub's) on the second, as pygrub would boot the second."""
    dm = device_map(hd0=_fs(tmp_path / "a", {"/grub.cfg": "menuentry a { true }\n",
                                             "/loader/entries/x.conf": "linux /k\n", "/k": ""}),
                    hd1=_fs(tmp_path / "b", {"/boot/grub/grub.cfg": "menuentry b { true }\n"}))
    assert find_config(dm)[:3] == ("hd1", "/boot/grub/grub.cfg", "grub2")
    configs, _ = find_configs(dm)
    assert configs == [("hd1", "/boot/grub/grub.cfg", "grub2"), ("hd0", "/grub.cfg", "grub2")]


def test_whole_device_formats_are_listed_once(tmp_path: Path) -> None:
    fs = _fs(tmp_path, {"/boot/loader/entries/a.conf": "linux /k\n", "/k": ""})
    configs, _ = find_configs(device_map(hd0=fs))
    assert configs == [("hd0", "/boot/loader/entries", "systemd-boot")]


def test_chosen_config(tmp_path: Path) -> None:
    dm = device_map(hd0=_fs(tmp_path, {"/grub.cfg": "menuentry a { true }\n",
                                       "/boot/grub/grub.cfg": "menuentry b { true }\n",
                                       "/other/menu.txt": "title x\nkernel /k\n"}))
    assert [e.title for e in find_menu(dm).entries] == ["b"]
    assert [e.title for e in find_menu(dm, config=("hd0", "/grub.cfg")).entries] == ["a"]
    assert chosen_config(dm, "hd0", "/other/menu.txt") == ("hd0", "/other/menu.txt", "grub-legacy")
    with pytest.raises(NotFound, match="no device"):
        chosen_config(dm, "hd9", "/grub.cfg")
    with pytest.raises(NotFound):
        chosen_config(dm, "hd0", "/missing.cfg")


def test_root_fs_entries_lose_to_an_esp_config_later_in_the_table(tmp_path: Path) -> None:
    """/boot/loader/entries on a root file system is stage 2: a GRUB config anywhere (here
    /grub.cfg on the second device, as an ESP's would be) is read first, and reads the
    entries with blscfg; alone, the entries are read as systemd-boot reads them."""
    root = _fs(tmp_path / "root", {"/boot/loader/entries/a-1.conf": "title A\nlinux /boot/k\n", "/boot/k": ""})
    dm = device_map(hd0=root, hd1=_fs(tmp_path / "esp", {"/grub.cfg": "menuentry g { true }\n"}))
    assert find_config(dm)[:3] == ("hd1", "/grub.cfg", "grub2")
    assert find_config(device_map(hd0=root))[:3] == ("hd0", "/boot/loader/entries", "systemd-boot")


def test_every_format_has_a_stage() -> None:
    assert {fmt.stage for fmt in FORMATS} == {0, 1, 2}
    assert [fmt.name for fmt in FORMATS if fmt.stage == 0] == ["solaris-xpv", "grub2", "syslinux", "grub-legacy"]
