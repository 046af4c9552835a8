"""systemd-boot on the corpus's BLS trees (u-root's pkg/boot/bls/testdata): golden files in
tests/data/own/sdboot/*.json give, for each tree, the entries in systemd-boot's order,
what each boots, the default and why (systemd 252 src/boot/efi/boot.c; each file's "why"
says where u-root's own answer, *.uroot.json, differs). A tree is copied before files are
added: "place" puts a stand-alone tree under that directory, "touch" adds the empty
kernel and initrd files its entries name.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from dirfs import DirFileSystem, device_map
from guestboot.boot import sdboot
from guestboot.errors import GuestbootError
from guestboot.select import choose

DATA = Path(__file__).parent / "data"
CASES = sorted((DATA / "own" / "sdboot").glob("*.json"))


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.stem)
def test_golden(case: Path, tmp_path: Path) -> None:
    want = json.loads(case.read_text())
    root = tmp_path / "esp"
    shutil.copytree(DATA / "corpus" / want["tree"], root / want.get("place", "").lstrip("/"))
    for path in want.get("touch", []):
        (root / path.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        (root / path.lstrip("/")).write_bytes(b"")
    menu = sdboot.evaluate(device_map(esp=DirFileSystem(root)), "esp", "/loader/entries")
    got = []
    for entry in menu.entries:
        spec = entry.run()
        got.append({"id": entry.id, "title": entry.title, "kernel": spec.kernel.path,
                    "initrds": [r.path for r in spec.initrds], "args": spec.args, "cmdline": spec.cmdline})
    assert got == want["entries"]
    try:
        default = menu.entries[choose(menu).path[0]].id
    except GuestbootError:
        default = None
    assert default == want["default"]
    for text in want["warnings"]:
        assert any(text in w for w in menu.warnings), (text, menu.warnings)
    if not want["warnings"]:
        assert menu.warnings == []
