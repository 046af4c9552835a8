"""The numbers and file names GRUB 2 and GRUB legacy share (boot/grubnum.py,
boot/grubpath.py): one reading for the evaluator, the choice and the legacy parser."""

from __future__ import annotations

import pytest

from guestboot.boot import grubnum, grubpath


@pytest.mark.parametrize("text, parsed", [
    (" \t\r\n7", ("ok", 7)),  # grub_isspace: space, tab, CR, LF
    ("\f7", ("bad", 0)),  # no form feed …
    ("\v7", ("bad", 0)),  # … and no vertical tab
    ("0x1F", ("ok", 31)),
    ("0X1F", ("ok", 0)),  # only a lower-case x makes hex; "0" then stops at "X"
    ("017", ("ok", 15)),
    ("08", ("ok", 8)),  # 0 followed by no octal digit: decimal
    ("0x", ("bad", 0)),
    ("4294967295", ("ok", 4294967295)),
    ("4294967296", ("overflow", 4294967295)),
    ("-1", ("bad", 0)),
])
def test_strtoul(text, parsed):
    assert grubnum.strtoul(text)[:2] == parsed


def test_strtoul_width():
    assert grubnum.strtoul("4294967296", maximum=grubnum.ULONG_MAX_64)[:2] == ("ok", 4294967296)
    assert grubnum.strtoul("1" * 30, maximum=grubnum.ULONG_MAX_64).status == "overflow"


@pytest.mark.parametrize("text, parsed", [
    ("12", (12, 2)), ("0x10 x", (16, 4)), (" 1", None), ("2147483648", None), ("2147483647", (2147483647, 10)),
])
def test_legacy_number(text, parsed):
    assert grubnum.legacy_number(text) == parsed


@pytest.mark.parametrize("text, split", [
    ("(hd0,1)/boot/vmlinuz", ("hd0,1", "/boot/vmlinuz")),
    ("/boot/vmlinuz", (None, "/boot/vmlinuz")),
    ("(hd0)", ("hd0", "")),
])
def test_split_device(text, split):
    assert grubpath.split_device(text) == split


def test_unclosed_device():
    with pytest.raises(grubpath.MissingParen, match="missing `\\)'"):
        grubpath.split_device("(hd0/boot")
    assert grubpath.split_device_leniently("(hd0/boot") == ("hd0/boot", "")


@pytest.mark.parametrize("path, normal", [("/a/./b/../c", "/a/c"), ("//x//", "/x"), ("/../..", "/"), ("", "/")])
def test_normalise(path, normal):
    assert grubpath.normalise(path) == normal
