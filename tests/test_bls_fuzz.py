"""Hostile BLS entries, loader.conf and unified kernel images: only typed errors, never a
hang. A seeded campaign of moderate size: the corpus's BLS entries (Fedora, CentOS,
petitboot's, u-root's) and loader.conf mutated with the characters that stress their
line parsers and Fedora's expand_val (``$``, ``\\``, blanks, ``.conf`` inside a name),
evaluated both by systemd-boot's reader and by Fedora's blscfg, every entry run; and a
real UKI (objcopy on linuxx64.efi.stub) with bytes of its headers and section table
flipped. Each case must end in success or a GuestbootError within a few seconds.
"""

from __future__ import annotations

import random
import shutil
import time
from pathlib import Path

import pytest

from dirfs import DirFileSystem, device_map
from guestboot.boot import sdboot
from guestboot.boot.grub2 import evaluate
from guestboot.errors import GuestbootError

DATA = Path(__file__).parent / "data" / "corpus"
CASE_SECONDS = 5.0
TOKENS = ["$", "$$", "${", "\\$", "\\", " ", "\t", "\n", "\r", "#", "\"", "'", "\0", "\xff", "é", "~", "+", "-",
          "^", ".", "@", "*", "[", "]", "?", "linux ", "initrd ", "options ", "title ", "sort-key ", "version ",
          "architecture ", "machine-id ", "grub_arg ", "grub_users $grub_users\n", "$kernelopts", "default ",
          "timeout ", "@saved"]


def _seeds() -> list[str]:
    found = sorted(DATA.glob("**/loader/entries/*.conf")) + sorted(DATA.glob("**/typeone/*.conf"))
    return [p.read_text(errors="replace") for p in found]


def _mutate(text: str, rng: random.Random) -> str:
    for _ in range(rng.randint(1, 6)):
        at = rng.randrange(len(text) + 1)
        kind = rng.randrange(3)
        if kind == 0:
            text = text[:at] + rng.choice(TOKENS) + text[at:]
        elif kind == 1:
            text = text[:at] + text[at + rng.randint(1, 8):]
        else:
            text = text[:at] + text[at:] * rng.randint(1, 3)
    return text


def _run_all(menu) -> None:
    for entry in menu.entries:
        try:
            entry.run()
        except GuestbootError:
            pass


@pytest.mark.parametrize("seed", range(4))
def test_mutated_entries(tmp_path: Path, seed: int) -> None:
    rng = random.Random(20261204 + seed)
    seeds = _seeds()
    assert seeds
    for case in range(40):
        root = tmp_path / f"c{case}"
        entries = root / "loader" / "entries"
        entries.mkdir(parents=True)
        (root / "grub2").mkdir()
        for i in range(rng.randint(1, 4)):
            name = rng.choice(["a", "6c06-4.15.2-302.fc28", "x.conf", "UP", "b+0-3", "c+1", "~1", "auto-x"])
            (entries / f"{name}{i}.conf").write_text(_mutate(rng.choice(seeds), rng), errors="surrogateescape")
        (root / "loader" / "loader.conf").write_text(_mutate("timeout 3\ndefault a*\n", rng))
        (root / "grub2" / "grub.cfg").write_text(_mutate("set kernelopts='root=/dev/x ro'\nblscfg\n", rng))
        for path in ("/vmlinuz-4.15.2-302.fc28.x86_64", "/k", "/boot/vmlinuz-5.18.0"):
            (root / path.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
            (root / path.lstrip("/")).write_bytes(b"")
        dm = device_map(hd0=DirFileSystem(root))
        start = time.monotonic()
        for read in (lambda: sdboot.evaluate(dm, "hd0", "/loader/entries"),
                     lambda: evaluate(dm, "hd0", "/grub2/grub.cfg", grub_dialect="fedora")):
            try:
                _run_all(read())
            except GuestbootError:
                pass
        assert time.monotonic() - start < CASE_SECONDS, f"case {case} took too long"
        shutil.rmtree(root)


def test_flipped_uki_headers(tmp_path: Path) -> None:
    """Bytes of a real UKI's MZ/PE headers and section table flipped (the payload is not
    what is parsed)."""
    from builders import sdboot as builder
    from builders.initramfs import ToolMissing

    work = tmp_path / "work"
    work.mkdir()
    kernel = work / "kernel"
    kernel.write_bytes(b"MZ" + bytes(4094))  # the payload is not parsed: any bytes do
    (work / "initrd").write_bytes(b"initrd")
    try:
        good = builder.uki(work / "good.efi", kernel, work / "initrd", "quiet", "ID=x\n", work).read_bytes()
    except (ToolMissing, FileNotFoundError) as err:
        pytest.skip(str(err))
    except RuntimeError as err:
        pytest.skip(f"objcopy: {err}")
    header_end = min(len(good), 0x1000)
    rng = random.Random(7)
    for case in range(150):
        data = bytearray(good)
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(header_end)] = rng.randrange(256)
        root = tmp_path / f"u{case}"
        (root / "EFI" / "Linux").mkdir(parents=True)
        (root / "EFI" / "Linux" / "x.efi").write_bytes(bytes(data))
        start = time.monotonic()
        try:
            _run_all(sdboot.evaluate(device_map(esp=DirFileSystem(root)), "esp", "/EFI/Linux"))
        except GuestbootError:
            pass
        assert time.monotonic() - start < CASE_SECONDS
        shutil.rmtree(root)
