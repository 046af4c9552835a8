"""--isconfig (the image is a config file) against the real pygrub on Xen's own examples.

pygrub prints the chosen entry's kernel, initrd and args. Ours must name the same files;
the args agree once pygrub's verbatim spacing is folded, because GRUB re-joins the words
of a `linux` line with one space (GRUB-NOTES.md) and so do we. Configs where pygrub picks
another entry than GRUB (saved_entry, submenus) are covered in test_pygrub_diff.py.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from prereq import need_real_pygrub

EXAMPLES = Path(__file__).parent / "data" / "corpus" / "pygrub"
# the examples whose default pygrub resolves the way GRUB does (no saved_entry, no submenu)
SAME_CHOICE = ["debian-wheezy-hvm.grub2", "fedora-19.grub2", "rhel-7-beta.grub2"]


def _fields(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition(": ")
        if sep and key in ("kernel", "initrd", "args"):
            out[key] = value
    return out


@pytest.mark.parametrize("name", SAME_CHOICE)
def test_isconfig_agrees_with_pygrub(name, tmp_path):
    pygrub = str(need_real_pygrub())
    config = tmp_path / "grub.cfg"
    shutil.copy(EXAMPLES / name, config)
    theirs = subprocess.run([pygrub, "-q", "--isconfig", str(config)], capture_output=True, text=True, timeout=60)
    assert theirs.returncode == 0, theirs.stderr
    ours = subprocess.run([sys.executable, "-m", "guestboot.cli.pygrub", "-q", "--isconfig", str(config)],
                          capture_output=True, text=True, timeout=60)
    assert ours.returncode == 0, ours.stderr
    expected, got = _fields(theirs.stdout), _fields(ours.stdout)
    assert got["kernel"] == expected["kernel"]
    assert got.get("initrd") == expected.get("initrd")
    assert got["args"] == " ".join(expected["args"].split())
