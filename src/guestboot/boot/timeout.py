"""How long each boot loader shows its menu before it boots the default entry.

``menu_wait(menu)`` is in whole seconds: 0 boots at once (no menu is drawn), None waits
for a key. Each loader reads its own setting its own way:

- GRUB 2 (grub-core/normal/menu.c, grub_menu_get_timeout): the ``timeout`` variable read
  by grub_strtoul with base 0 (decimal, 0x hex, 0 octal; text after the digits is
  ignored); unset, no digits or negative: the menu waits for a key. pygrub reads it the
  same way and ignores ``timeout_style``, as we do.
- GRUB legacy (stage2/cmdline.c, ``timeout SEC``): a decimal number; unset: wait.
- systemd-boot (loader.conf(5) ``timeout``): seconds; unset, ``0``, ``menu-hidden`` and
  ``menu-disabled`` boot at once; ``menu-force``: wait; a value it cannot parse is ignored.
- SYSLINUX (``TIMEOUT`` in tenths of a second, rounded up here to whole seconds): as
  pygrub does, ``TIMEOUT 0`` or none boots at once (SYSLINUX itself would wait at a shown
  prompt or menu; pygrub never did, and libxl's callers rely on it).
- Formats without a menu of their own (kernels found without a config, pygrub's
  Solaris and PV-boot sniffing): at once.
"""

from __future__ import annotations

import re

from .model import Menu

_GRUB_NUMBER = re.compile(r"\s*(-?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)")
_DECIMAL = re.compile(r"\s*([0-9]{1,9})\s*")  # ASCII digits only (str.isdigit takes others)


def _grub_strtoul(text: str) -> int | None:
    """grub_strtoul(text, 0, 0) as the menu uses it: None when there are no digits."""
    match = _GRUB_NUMBER.match(text)
    if match is None:
        return None
    digits = match.group(2)
    if digits[:2] in ("0x", "0X"):
        value = int(digits, 16)
    elif digits[0] == "0":
        value = int(digits, 8)
    else:
        value = int(digits)
    return -value if match.group(1) else value


def _decimal(text: str | None) -> int | None:
    match = _DECIMAL.fullmatch(text) if text is not None else None
    return int(match.group(1)) if match else None


def menu_wait(menu: Menu) -> int | None:
    raw = menu.timeout
    if menu.format == "grub2":
        value = _grub_strtoul(raw) if raw is not None else None
        return value if value is not None and value >= 0 else None
    if menu.format == "grub-legacy":
        return _decimal(raw)
    if menu.format == "systemd-boot":
        if raw is not None and raw.strip() == "menu-force":
            return None
        return _decimal(raw) or 0
    if menu.format == "syslinux":
        tenths = _decimal(raw)
        return -(-tenths // 10) if tenths else 0
    return 0
