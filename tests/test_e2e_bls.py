"""End to end on a Fedora-style guest (tests/builders/bls_guest.py): an ESP with Fedora's
stub config, /boot on XFS with a grub2-mkconfig BLS config (blscfg), BLS entries and a
grubenv with kernelopts and saved_entry. ``guestboot list`` shows the entries Fedora's
GRUB makes (rhboot/grub2 grub-core/commands/blscfg.c: newest first, ids from the file
names) and its default (saved_entry). The ESP's stub, chosen with --config, gives the
same menu. The default's kernel, extracted, boots in QEMU with the command line GRUB
gives it in tests/test_acceptance_guests.py (fedora-bls), on this same image.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from prereq import unavailable

from builders import bls_guest
from builders.initramfs import ToolMissing

TIMEOUT = 120
R_NEW, R_OLD = bls_guest.RELEASES


@pytest.fixture(scope="session")
def fedora(tmp_path_factory) -> bls_guest.BlsGuest:
    try:
        return bls_guest.session_image(tmp_path_factory)
    except ToolMissing as err:
        unavailable(str(err))


def guestboot(*argv: str) -> str:
    done = subprocess.run([sys.executable, "-m", "guestboot", *argv], stdin=subprocess.DEVNULL, capture_output=True,
                          timeout=TIMEOUT, check=False)
    assert done.returncode == 0, f"exit {done.returncode}: {done.stderr.decode(errors='replace')}"
    return done.stdout.decode()


def test_list_shows_blscfg_entries_and_saved_default(fedora) -> None:
    data = json.loads(guestboot("list", "--json", str(fedora.path)))
    assert data["config"] == "(hd0,gpt2)/grub2/grub.cfg"
    assert data["dialect"]["name"] == "fedora"
    assert [e["id"] for e in data["entries"]] == fedora.entry_ids
    assert [e["title"] for e in data["entries"]] == [f"Fedora Linux ({r}) 39 (Thirty Nine)" for r in bls_guest.RELEASES]
    assert data["default"] == [1]  # saved_entry names the older kernel's file
    old = data["entries"][1]
    assert old["kernel"] == f"(hd0,gpt2)/vmlinuz-{R_OLD}"
    assert old["initrds"] == [f"(hd0,gpt2)/initramfs-{R_OLD}.img"]
    assert old["args"] == bls_guest.KERNELOPTS
    assert [c["config"] for c in data["configs"]] == ["(hd0,gpt2)/grub2/grub.cfg", "(hd0,gpt1)/EFI/fedora/grub.cfg"]
    text = guestboot("list", str(fedora.path))
    assert "other configs (--config): (hd0,gpt1)/EFI/fedora/grub.cfg (grub2)" in text


def test_esp_stub_gives_the_same_menu(fedora) -> None:
    """--config the ESP's stub: search --fs-uuid finds /boot, configfile runs its grub.cfg."""
    data = json.loads(guestboot("list", "--json", "--config", "(hd0,gpt1)/EFI/fedora/grub.cfg", str(fedora.path)))
    assert data["config"] == "(hd0,gpt1)/EFI/fedora/grub.cfg"
    assert [e["id"] for e in data["entries"]] == fedora.entry_ids
    assert data["default"] == [1]
    assert data["entries"][1]["args"] == bls_guest.KERNELOPTS
