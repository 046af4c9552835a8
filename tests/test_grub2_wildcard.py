"""GRUB's wildcard expansion (boot/grub2/wildcard.py) against Debian's grub-emu, and a
hand-written config that makes its menu from ``for k in /boot/vmlinuz-*``.

grub-emu has every module built in, so it expands wildcards without ``insmod regexp``;
a BIOS GRUB loads the regexp module (and with it the translator) only on ``insmod
regexp`` or the first ``regexp`` command, which is what we follow. The scripts below
start with ``insmod regexp`` so both agree. GRUB lists a directory in the file system's
own order (grub-emu: the host's readdir order; our test file system: sorted), so lines
are compared as sorted groups where a listing decides the order.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dirfs import DirFileSystem, device_map
from guestboot.boot.grub2 import evaluate
from guestboot.select import choose
from test_grub2_script import real_grub, run_grub

FILES = ("boot/vmlinuz-1", "boot/vmlinuz-2", "boot/vmlinuz-10", "boot/x.y1", "boot/xzy2", "boot/v[m]a",
         "other/vmlinuz-1", "sp ace/vmlinuz-9")

SCRIPT = """insmod regexp
for k in {top}/boot/vmlinuz-*; do echo "k=$k"; done
for k in {top}/boot/nothing-*; do echo "n=$k"; done
for k in {top}/*/vmlinuz-1; do echo "d=$k"; done
for k in {top}/*/vmlinuz-?; do echo "q=$k"; done
for k in "{top}/boot/vmlinuz-*"; do echo "quoted=$k"; done
for k in {top}/boot/vmlinuz-\\*; do echo "esc=$k"; done
set p={top}/boot/vm*
for k in $p; do echo "var=$k"; done
for k in "$p"; do echo "dqvar=$k"; done
if [ -f {top}/boot/vmlinuz-1* ]; then echo f-yes; else echo f-no; fi
if [ -f {top}/boot/nothing* ]; then echo n-yes; else echo n-no; fi
echo {top}/b*t/
for k in {top}/boot/x.y* {top}/boot/v[m]*; do echo "sp=$k"; done
for k in {top}/boot/*-1?; do echo "m=$k"; done
echo nothing* x/*
"""


@pytest.fixture
def tree():
    """A directory with a short name: grub-emu's console wraps lines at 80 columns."""
    import shutil
    import tempfile

    top = Path(tempfile.mkdtemp(prefix="g", dir="/tmp"))
    for name in FILES:
        path = top / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")
    yield top
    shutil.rmtree(top)


def _groups(text: str) -> list[tuple[str, list[str]]]:
    """Lines grouped by their "key=" prefix, each group sorted (listing order aside)."""
    groups: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        key = line.split("=", 1)[0] if "=" in line else line
        if groups and groups[-1][0] == key:
            groups[-1][1].append(line)
        else:
            groups.append((key, [line]))
    return [(key, sorted(lines)) for key, lines in groups]


def test_expansion_as_grub_emu(tree):
    script = SCRIPT.format(top=tree)
    ours, _warnings = run_grub(script, device_map(hd0=DirFileSystem("/")), root="hd0")
    assert _groups(ours) == _groups(real_grub(script))


def test_no_expansion_before_the_regexp_module_is_loaded(tree):
    script = f"echo {tree}/boot/vmlinuz-1*\nregexp x x\necho {tree}/boot/vmlinuz-1*\n"
    ours, _ = run_grub(script, device_map(hd0=DirFileSystem("/")), root="hd0")
    assert ours.splitlines() == [f"{tree}/boot/vmlinuz-1*", f"{tree}/boot/vmlinuz-1 {tree}/boot/vmlinuz-10"]


CONFIG = r"""
insmod regexp
set default=0
for k in /boot/vmlinuz-*; do
  regexp --set v '^/boot/vmlinuz-(.*)$' "$k"
  if [ -f "/boot/initrd.img-$v" ]; then
    menuentry "Linux $v" "$k" "$v" {
      linux $2 root=/dev/vda1 ro
      initrd /boot/initrd.img-$3
    }
  fi
done
"""


def test_menu_made_by_a_wildcard_loop(tmp_path):
    for name in ("vmlinuz-6.1.0-9-amd64", "initrd.img-6.1.0-9-amd64", "vmlinuz-6.1.0-18-amd64",
                 "initrd.img-6.1.0-18-amd64", "vmlinuz-5.10.0-1-amd64"):  # the last one has no initrd
        (tmp_path / "boot" / "grub").mkdir(parents=True, exist_ok=True)
        (tmp_path / "boot" / name).write_text("")
    (tmp_path / "boot/grub/grub.cfg").write_text(CONFIG)
    devices = device_map(**{"hd0": None, "hd0,msdos1": DirFileSystem(tmp_path)})
    menu = evaluate(devices, "hd0,msdos1", "/boot/grub/grub.cfg")
    assert [e.title for e in menu.entries] == ["Linux 6.1.0-18-amd64", "Linux 6.1.0-9-amd64"]  # listing order
    spec = choose(menu).entry.run()
    assert spec.kernel.path == "/boot/vmlinuz-6.1.0-18-amd64"
    assert [i.path for i in spec.initrds] == ["/boot/initrd.img-6.1.0-18-amd64"]
    assert spec.cmdline == "BOOT_IMAGE=/boot/vmlinuz-6.1.0-18-amd64 root=/dev/vda1 ro"


def test_expansion_is_bounded(tmp_path, monkeypatch):
    """The paths one expansion makes count against max_word_bytes (here lowered to 300)."""
    from guestboot.boot.grub2 import wildcard
    from guestboot.errors import LimitExceeded
    from guestboot.limits import LIMITS

    for n in range(40):
        (tmp_path / f"file-{n:03d}").write_text("")
    monkeypatch.setattr(wildcard, "LIMITS", LIMITS._replace(max_word_bytes=300))
    with pytest.raises(LimitExceeded, match="wildcard expansion"):
        run_grub("insmod regexp\necho /file-*\n", device_map(hd0=DirFileSystem(tmp_path)), root="hd0")
    out, _ = run_grub("insmod regexp\necho /file-00*\n", device_map(hd0=DirFileSystem(tmp_path)), root="hd0")
    assert out.split() == [f"/file-{n:03d}" for n in range(10)]
