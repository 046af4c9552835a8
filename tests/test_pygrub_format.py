"""guestboot-pygrub's output bytes against the real pygrub's own formatting functions.

The real pygrub (Debian package xen-utils-<version>) is loaded as a module and its format_sxp /
format_simple are called on the same values: the bytes must be identical, and a value
holding the delimiter must be refused by both (XSA-198).
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys

import pytest
from prereq import need_real_pygrub, real_pygrub_libdir

from guestboot.cli.pygrub import format_output
from guestboot.errors import ConfigError


@pytest.fixture(scope="module")
def real_pygrub():
    pygrub = str(need_real_pygrub())
    libdir = str(real_pygrub_libdir())
    sys.path.insert(0, libdir)
    try:
        loader = importlib.machinery.SourceFileLoader("real_pygrub", pygrub)
        spec = importlib.util.spec_from_loader("real_pygrub", loader)
        module = importlib.util.module_from_spec(spec)
        loader.exec_module(module)
    finally:
        sys.path.remove(libdir)
    return module


VALUES = [
    ("/var/run/xen/pygrub/boot_kernel.abc", "/var/run/xen/pygrub/boot_ramdisk.def", "root=/dev/xvda1 ro quiet"),
    ("/k", None, "console=hvc0"),
    ("/k", "/r", ""),
    ("/k", None, None),
    ("/k", "/r", "a='b' \"c\" \\d é ü \t tab"),
    ("/it's", "/r\"q", "x=\"y z\""),
]


@pytest.mark.parametrize("kernel,ramdisk,args", VALUES)
def test_sxp_identical(real_pygrub, kernel, ramdisk, args):
    expected = real_pygrub.format_sxp(kernel, ramdisk, args).encode()
    assert format_output("sxp", kernel, ramdisk, args) == expected


@pytest.mark.parametrize("fmt,sep", [("simple", "\n"), ("simple0", "\0")])
@pytest.mark.parametrize("kernel,ramdisk,args", VALUES)
def test_simple_identical(real_pygrub, fmt, sep, kernel, ramdisk, args):
    expected = real_pygrub.format_simple(kernel, ramdisk, args, sep).encode()
    assert format_output(fmt, kernel, ramdisk, args) == expected


@pytest.mark.parametrize("fmt,sep", [("simple", "\n"), ("simple0", "\0")])
def test_delimiter_refused_like_pygrub(real_pygrub, fmt, sep):
    args = f"root=/dev/xvda1{sep}kernel /etc/shadow"
    with pytest.raises(RuntimeError):
        real_pygrub.format_simple("/k", None, args, sep)
    with pytest.raises(ConfigError, match="XSA-198"):
        format_output(fmt, "/k", None, args)
