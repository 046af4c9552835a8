"""How long each boot loader's menu waits (boot/timeout.py), from the values its config
gives, as the loaders read them (GRUB 2's grub_strtoul with base 0, GRUB legacy's
decimal, loader.conf's words, SYSLINUX's tenths)."""

from __future__ import annotations

import pytest

from guestboot.boot.model import Menu
from guestboot.boot.timeout import menu_wait


@pytest.mark.parametrize("fmt, raw, wait", [
    ("grub2", "5", 5), ("grub2", "86400", 86400), ("grub2", "0", 0), ("grub2", "0x10", 16), ("grub2", "010", 8),
    ("grub2", " 7s", 7), ("grub2", "-1", None), ("grub2", "abc", None), ("grub2", None, None), ("grub2", "", None),
    ("grub-legacy", "10", 10), ("grub-legacy", None, None), ("grub-legacy", "x", None),
    ("grub-legacy", "\u00b2", None),  # a superscript two: str.isdigit says yes, int() says no
    ("systemd-boot", None, 0), ("systemd-boot", "3", 3), ("systemd-boot", "menu-force", None),
    ("systemd-boot", "menu-hidden", 0), ("systemd-boot", "bogus", 0),
    ("syslinux", "50", 5), ("syslinux", "1", 1), ("syslinux", "15", 2), ("syslinux", None, 0),
    ("noconfig", None, 0),
])
def test_menu_wait(fmt, raw, wait):
    assert menu_wait(Menu(format=fmt, timeout=raw, origin="hd0:/x")) == wait
