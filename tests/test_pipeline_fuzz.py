"""Hostile input through the whole pipeline: only typed errors, never a hang.

Two seeded campaigns of moderate size (longer ones belong in a benchmark run):
- boot-config text: real configs (Xen's pygrub examples, u-root's distro trees, the
  Debian 12 config of our sample image) mutated with the characters and words that stress
  a shell-like parser, then discovered, evaluated, chosen and every entry run;
- image bytes: the Debian 12 GPT image with bytes flipped in its partition tables, the
  /boot file system's metadata and the grub.cfg data, then listed and extracted.
Every case must end in success or a GuestbootError, each within a few seconds.
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import pytest

from builders.guest_images import session_image
from dirfs import DirFileSystem, device_map
from guestboot.boot.discover import find_menu
from guestboot.errors import GuestbootError
from guestboot.image import open_image
from guestboot.select import boot

DATA = Path(__file__).parent / "data" / "corpus"
CASE_SECONDS = 5.0

TOKENS = ["{", "}", '"', "'", "\\", "$", "${", "${#", "$@", "(", ")", "\n", ";", ">", ">>", "|", "&&",
          "fi", "then", "else", "done", "do", "esac", "[", "]", "menuentry x {", "submenu y {",
          "function f { f; }\nf\n", "while true; do true; done\n", "source $prefix/grub.cfg\n",
          "configfile /boot/grub/grub.cfg\n", "set default=", "\0", "\xff", "é", "${a}${a}${a}"]


def _seed_configs() -> list[str]:
    texts = [p.read_text(errors="replace") for p in sorted((DATA / "pygrub").glob("*.grub2"))]
    texts += [p.read_text(errors="replace") for p in sorted(DATA.glob("uroot/**/grub.cfg"))][:6]
    return [t for t in texts if t.strip()]


def _mutate(text: str, rng: random.Random) -> str:
    for _ in range(rng.randint(1, 6)):
        if not text:
            text = rng.choice(TOKENS)
        at = rng.randrange(len(text) + 1)
        kind = rng.randrange(4)
        if kind == 0:
            text = text[:at] + rng.choice(TOKENS) + text[at:]
        elif kind == 1:
            text = text[:at] + text[at + rng.randint(1, 40):]
        elif kind == 2:
            lines = text.split("\n")
            i = rng.randrange(len(lines))
            lines.insert(rng.randrange(len(lines) + 1), lines[i])
            text = "\n".join(lines)
        else:
            text = text[:at] + chr(rng.randrange(1, 256)) + text[at:]
    return text


def _exercise(menu) -> int:
    """What the CLI does with a menu: choose and boot, and run every entry for listing.
    Returns how many of those steps ended in a (typed) error."""
    errors = 0
    try:
        boot(menu)
    except GuestbootError:
        errors += 1
    stack = [menu]
    while stack:
        current = stack.pop()
        for entry in current.entries:
            if entry.submenu is not None:
                stack.append(entry.submenu)
            elif entry.run is not None:
                try:
                    entry.run()
                except GuestbootError:
                    errors += 1
    return errors


@pytest.mark.timeout(120)
@pytest.mark.parametrize("batch", range(4))
def test_mutated_configs_give_only_typed_errors(tmp_path, batch):
    seeds = _seed_configs()
    assert seeds, "the corpus configs are missing"
    rng = random.Random(1000 + batch)
    root = tmp_path / "part"
    (root / "boot" / "grub").mkdir(parents=True)
    (root / "vmlinuz").write_bytes(b"kernel")
    devices = device_map(**{"hd0,msdos1": DirFileSystem(root, uuid="1234-abcd")})
    outcomes = {"ok": 0, "error": 0, "entry errors": 0}
    for case in range(100):
        text = _mutate(rng.choice(seeds), rng)
        (root / "boot" / "grub" / "grub.cfg").write_bytes(text.encode("utf-8", "surrogatepass"))
        started = time.monotonic()
        try:
            outcomes["entry errors"] += _exercise(find_menu(devices))
            outcomes["ok"] += 1
        except GuestbootError:
            outcomes["error"] += 1
        spent = time.monotonic() - started
        assert spent < CASE_SECONDS, f"batch {batch} case {case} took {spent:.1f}s:\n{text[:2000]}"
    assert outcomes["ok"] + outcomes["error"] == 100
    # GRUB turns most broken text into warnings, but the entries must have hit errors
    assert outcomes["entry errors"] > 0, outcomes


@pytest.fixture(scope="module")
def debian(tmp_path_factory):
    return session_image(tmp_path_factory, "debian12-gpt")


def _regions(image: Path) -> list[tuple[int, int]]:
    """(start, length) of the metadata worth damaging: the tables, the /boot superblock and
    group descriptors, and the grub.cfg data (found by its text)."""
    data = image.read_bytes()
    cfg = data.find(b"### BEGIN /etc/grub.d/00_header")
    regions = [(0, 34 * 512), (len(data) - 33 * 512, 33 * 512)]
    boot_start = 2048 * 512 * 2  # gpt2 starts after the 1 MiB BIOS boot partition (see builder)
    regions.append((boot_start, 8192))
    if cfg > 0:
        regions.append((cfg, 4096))
    return regions


@pytest.mark.timeout(300)
def test_damaged_image_gives_only_typed_errors(debian, tmp_path):
    work = tmp_path / "disk.img"
    work.write_bytes(debian.path.read_bytes())
    regions = _regions(work)
    rng = random.Random(77)
    fd = os.open(work, os.O_RDWR)
    seen: dict[str, int] = {}
    try:
        for case in range(300):
            start, length = rng.choice(regions)
            flips = [(start + rng.randrange(length), rng.randrange(256)) for _ in range(rng.randint(1, 8))]
            saved = [(at, os.pread(fd, 1, at)) for at, _ in flips]
            for at, value in flips:
                os.pwrite(fd, bytes([value]), at)
            started = time.monotonic()
            try:
                image = open_image(fd, name="disk.img")
                menu = find_menu(image.devices)
                _exercise(menu)
                _choice, spec = boot(menu)
                for ref in (spec.kernel, *spec.initrds):
                    source = image.devices.open(ref.device, ref.path)
                    for run in source.runs(0, source.size):
                        assert run.length >= 0
                seen["ok"] = seen.get("ok", 0) + 1
            except GuestbootError as err:
                seen[type(err).__name__] = seen.get(type(err).__name__, 0) + 1
            finally:
                for at, value in reversed(saved):
                    os.pwrite(fd, value, at)
            spent = time.monotonic() - started
            assert spent < CASE_SECONDS, f"case {case} ({flips}) took {spent:.1f}s"
    finally:
        os.close(fd)
    assert sum(seen.values()) == 300
    assert len(seen) > 1, f"the damage never showed: {seen}"
