"""A config format added from outside the package boots through the real front end.

tests/fakeboot.py is a format with its own default rule; here its one line is added to
boot/discover.py's FORMATS at run time, and `guestboot list`/`extract` (the CLI's main(),
in-process) read a real disk made by sgdisk and mke2fs -d. select.py, the CLI and the
other formats are not touched: choosing its default is the format's own business.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from prereq import unavailable

from builders.disk import blank
from guestboot.boot import discover
from guestboot.cli.main import main
from guestboot.volume.base import ESP_TYPE

MiB = 1024 * 1024
ENTRIES = {  # file name -> fields; file-name order is menu order
    "10-old.entry": {"title": "Old kernel", "kernel": "/vmlinuz-old", "args": "root=/dev/sda2 ro", "priority": "1"},
    "20-new.entry": {"title": "New kernel", "kernel": "/vmlinuz-new", "initrd": "/initrd-new",
                     "args": "root=/dev/sda2 quiet", "priority": "5"},
    "30-rescue.entry": {"title": "Rescue", "kernel": "/vmlinuz-old", "args": "single", "priority": "0"},
}


def _tree(top: Path, with_entries: bool) -> Path:
    (top / "fakeboot/entries").mkdir(parents=True)
    if with_entries:
        for name, fields in ENTRIES.items():
            (top / "fakeboot/entries" / name).write_text("".join(f"{k} {v}\n" for k, v in fields.items()))
        (top / "fakeboot/entries/README").write_text("not an entry\n")
        (top / "vmlinuz-old").write_bytes(b"old kernel bytes " * 100)
        (top / "vmlinuz-new").write_bytes(b"new kernel bytes " * 200)
        (top / "initrd-new").write_bytes(b"new initrd " * 300)
    else:  # a decoy: the right files on a partition that is not an ESP
        (top / "fakeboot/entries/99-decoy.entry").write_text("title Decoy\nkernel /nothing\npriority 9\n")
    return top


@pytest.fixture(scope="module")
def disk(tmp_path_factory) -> tuple[Path, Path]:
    """(disk image, the ESP's tree): partition 1 a Linux partition holding a decoy entry,
    partition 2 the ESP holding the entries and the files they load."""
    for tool in ("sgdisk", "mke2fs"):
        if shutil.which(tool) is None:
            unavailable(f"{tool} is not installed (packages gdisk, e2fsprogs)")
    base = tmp_path_factory.mktemp("fakeboot")
    decoy, esp = _tree(base / "decoy", False), _tree(base / "esp", True)
    image = blank(base / "disk.img", 20 * MiB)
    subprocess.run(["sgdisk", "-o", "-n", "1:2048:+8M", "-t", "1:8300", "-n", "2:0:0", "-t", "2:ef00", str(image)],
                   check=True, capture_output=True)
    for number, start, size, tree in ((1, 2048 * 512, 8 * MiB, decoy), (2, 2048 * 512 + 8 * MiB, None, esp)):
        part = base / f"part{number}.img"
        size = size if size is not None else image.stat().st_size - start - 34 * 512 - 1 * MiB
        subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", "-d", str(tree), str(part), f"{size // 1024}k"],
                       check=True, capture_output=True)
        with open(part, "rb") as src, open(image, "r+b") as dst:
            dst.seek(start)
            shutil.copyfileobj(src, dst)
    return image, esp


@pytest.fixture
def registered(monkeypatch):
    line = discover.Format("fakeboot", "fakeboot", (discover.Location("/fakeboot/entries", "*.entry"),), (ESP_TYPE,))
    monkeypatch.setattr(discover, "FORMATS", discover.FORMATS + (line,))


def test_unregistered_format_is_not_found(disk, capsys):
    image, _esp = disk
    # no config the registry knows: only the no-config fallback's kernels are listed
    assert main(["list", str(image)]) == 0
    captured = capsys.readouterr()
    assert "no boot configuration found" in captured.err
    assert captured.out.splitlines()[0].endswith("(noconfig)") and "fakeboot" not in captured.out


def test_list_shows_the_formats_own_default(disk, registered, capsys):
    image, _esp = disk
    assert main(["list", str(image)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "(hd0,gpt2)/fakeboot/entries (fakeboot)"  # the ESP, not the decoy on gpt1
    assert out[1:] == ["  0      Old kernel", "* 1      New kernel", "  2      Rescue"]
    assert main(["list", "--json", str(image)]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert (listed["format"], listed["default"]) == ("fakeboot", [1])
    assert [e["kernel"] for e in listed["entries"]] == ["(hd0,gpt2)/vmlinuz-old", "(hd0,gpt2)/vmlinuz-new",
                                                         "(hd0,gpt2)/vmlinuz-old"]


@pytest.mark.parametrize("entry, kernel, initrd, args", [
    (None, "vmlinuz-new", "initrd-new", "root=/dev/sda2 quiet"),  # the format's default
    ("Rescue", "vmlinuz-old", None, "single"),  # --entry takes GRUB's syntax on every format
    ("0", "vmlinuz-old", None, "root=/dev/sda2 ro"),
])
def test_extract_boots_through_the_format(disk, registered, tmp_path, capsys, entry, kernel, initrd, args):
    image, esp = disk
    out = tmp_path / "out"
    argv = ["extract", str(image), "-o", str(out), "--json"] + (["--entry", entry] if entry else [])
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["args"] == args
    assert (out / "kernel").read_bytes() == (esp / kernel).read_bytes()
    assert (out / "initrd").exists() == (initrd is not None)
    if initrd:
        assert (out / "initrd").read_bytes() == (esp / initrd).read_bytes()
