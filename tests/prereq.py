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
