"""One rule for a missing host tool or peer: a failure in CI (where .ci/run installs it,
so a skip there would hide a broken set-up), a skip with the reason elsewhere."""

from __future__ import annotations

import functools
import glob
import os
from pathlib import Path

import pytest


def unavailable(reason: str):
    if os.environ.get("CI"):
        pytest.fail(f"CI lacks a test prerequisite: {reason}")
    pytest.skip(reason)


GRUB_VERSIONS_CHECKED = ("2.06", "2.12")  # Debian 12's and Debian 13's GRUB: the peers' answers agree


@functools.cache
def host_grub_version() -> str | None:
    """The host GRUB's version as its tools print it ("2.06-13+deb12u2" on Debian 12,
    "2.12-9+deb13u4" on Debian 13), or None without grub-common. Tests that compare with
    grub-emu, grub-script-check or grub-fstest expect one of GRUB_VERSIONS_CHECKED."""
    import re
    import subprocess

    try:
        done = subprocess.run(["grub-script-check", "--version"], capture_output=True, text=True, timeout=30)
    except OSError:
        return None
    found = re.search(r"\(GRUB\)\s+(\S+)", done.stdout + done.stderr)
    return found.group(1) if found else None


XEN_LIB_GLOB = "/usr/lib/xen-*/bin/pygrub"  # where Debian's xen-utils-<version> puts it


@functools.cache
def real_pygrub() -> Path | None:
    """Xen's own pygrub, wherever the installed xen-utils-<version> put it (Debian 12:
    /usr/lib/xen-4.17/bin/pygrub; Debian 13: /usr/lib/xen-4.20/…); the newest Xen when
    several are installed; None when there is none."""

    def version(path: str) -> tuple[int, ...]:
        tail = Path(path).parent.parent.name.removeprefix("xen-")
        return tuple(int(part) for part in tail.split(".") if part.isdigit())

    found = sorted(glob.glob(XEN_LIB_GLOB), key=version)
    return Path(found[-1]) if found else None


def need_real_pygrub() -> Path:
    """The real pygrub, or unavailable() saying which package provides it."""
    pygrub = real_pygrub()
    if pygrub is None:
        unavailable(f"Xen's pygrub not found ({XEN_LIB_GLOB}): apt-get install xen-utils-<version> "
                    "(scripts/setup-debian picks the release's)")
    return pygrub


def real_pygrub_libdir() -> Path:
    """The directory of the real pygrub's Python modules (grub.GrubConf, xenfsimage)."""
    return need_real_pygrub().parent.parent / "lib" / "python"
