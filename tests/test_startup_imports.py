"""Start-up cost: the modules an extraction runs through must not import the heavy
``dataclasses`` (it pulls inspect, dis, ast …) nor ``uuid`` (it pulls platform). Checked
in a fresh interpreter, since this test process has imported everything already."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import guestboot

# Everything `guestboot extract` loads, the GRUB 2 interpreter included.
MODULES = (
    "guestboot.cli.main",
    "guestboot.cli.frontdoors",  # its parsers are built on every run
    "guestboot.cli.common",
    "guestboot.image",
    "guestboot.devices",
    "guestboot.pipeline",
    "guestboot.select",
    "guestboot.extract",
    "guestboot.kernel",
    "guestboot.volume",
    "guestboot.volume.gpt",
    "guestboot.volume.mbr",
    "guestboot.fs",
    "guestboot.fs.ext",
    "guestboot.fs.squashfs",
    "guestboot.fs.xfs",  # probed on every disk whose partitions are not all ext
    "guestboot.fs.xfs.dirindex",
    "guestboot.fs.path",
    "guestboot.boot.model",
    "guestboot.boot.legacy",
    "guestboot.boot.discover",
    "guestboot.boot.grub2.menu",
    "guestboot.boot.grub2.interp",
    "guestboot.boot.grub2.state",
    "guestboot.boot.grub2.files",
    "guestboot.boot.grub2.dialect",
    "guestboot.boot.grub2.default",
    "guestboot.boot.grubnum",
    "guestboot.boot.grubpath",
    "guestboot.boot.menupath",
    "guestboot.boot.grub2.lexer",
    "guestboot.boot.grub2.parser",
    "guestboot.boot.grub2.options",
    "guestboot.boot.grub2.commands",
    # image formats: every reader is imported to detect its format, on every run
    "guestboot.source.formats",
    "guestboot.source.opener",
    "guestboot.source.mapped",
    "guestboot.source.qcow2",
    "guestboot.source.vmdk",
    "guestboot.source.vhdx",
    "guestboot.source.vhd",
    "guestboot.source.vhd_dynamic",
)


# subprocess (with threading, selectors) and tempfile (with random) serve only the front
# doors (guestboot qemu/boot --exec): list and extract must not load them.
@pytest.mark.parametrize("heavy", ["dataclasses", "uuid", "subprocess", "tempfile"])
def test_core_modules_do_not_import(heavy):
    code = (
        f"import sys\nassert {heavy!r} not in sys.modules, 'imported by the interpreter itself'\n"
        + "".join(f"import {name}\n" for name in MODULES)
        + f"print({heavy!r} in sys.modules)\n"
    )
    # -S: no site hooks (they may import anything); guestboot found through PYTHONPATH
    env = {**os.environ, "PYTHONPATH": str(Path(guestboot.__file__).resolve().parent.parent)}
    out = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False", f"{heavy} is imported; run python3 -X importtime to see by whom"
