"""GRUB 2 configs as golden files: tests/data/own/grub2/<case>/tree is a /boot partition
((hd0,msdos1) of a disk hd0), holding boot/grub/grub.cfg and the files it loads;
expected.json is the menu the evaluator must give -- every entry's title, and the kernel,
initrds and args it boots or the error it fails with -- and the path select.choose takes.
A case may also give "as_debian": the menu with the dialect forced to Debian's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dirfs import DirFileSystem, device_map
from guestboot.boot.grub2 import evaluate
from guestboot.boot.model import Menu
from guestboot.errors import GuestbootError
from guestboot.select import choose

CASES = Path(__file__).parent / "data" / "own" / "grub2"
NAMES = sorted(p.name for p in CASES.iterdir() if (p / "expected.json").exists())


def _entries(menu: Menu, expected: list[dict]) -> list[dict]:
    out = []
    for index, entry in enumerate(menu.entries):
        want = expected[index] if index < len(expected) else {}
        row: dict = {"title": entry.title}
        if entry.submenu is not None:
            sub = entry.submenu
            row.update(default=sub.default, timeout=sub.timeout, entries=_entries(sub, want.get("entries", [])))
        else:
            try:
                spec = entry.run()
            except GuestbootError as err:
                text = f"{type(err).__name__}: {err}"
                row["error"] = want["error"] if want.get("error") and want["error"] in text else text
            else:
                row.update(kernel=str(spec.kernel), initrds=[str(i) for i in spec.initrds], args=spec.args)
        out.append(row)
    return out


def _shape(menu: Menu, expected: dict) -> dict:
    try:
        chosen = list(choose(menu).path)
    except GuestbootError:
        chosen = None
    return {
        "format": menu.format, "dialect": menu.dialect, "default": menu.default, "timeout": menu.timeout,
        "chosen": chosen, "entries": _entries(menu, expected.get("entries", [])),
    }


def _evaluate(name: str, grub_dialect: str | None = None) -> Menu:
    fs = DirFileSystem(CASES / name / "tree")
    devices = device_map(**{"hd0": None, "hd0,msdos1": fs})
    return evaluate(devices, "hd0,msdos1", "/boot/grub/grub.cfg", grub_dialect=grub_dialect)


def test_there_are_cases():
    assert len(NAMES) >= 4


@pytest.mark.parametrize("name", NAMES)
def test_golden(name: str) -> None:
    case = json.loads((CASES / name / "expected.json").read_text())
    assert _shape(_evaluate(name), case["expect"]) == case["expect"]
    if "as_debian" in case:
        assert _shape(_evaluate(name, "debian"), case["as_debian"]) == case["as_debian"]
