"""Issue 5's acceptance: each of the four registries takes a new format from outside the
package, by one line, and a guest nesting all four lists and extracts.

The four formats live in test-local modules: tests/fake_image.py (an image format: the
disk XORed behind a header), tests/fake_stack.py (a stacked volume: members concatenated),
tests/fake_fs.py (a file system: a table of paths), tests/fakeboot.py (a config format:
a directory of entry files with its own default rule). The test adds one line to each
registry at run time (source.formats.READERS, volume.STACKS, fs.PROBES,
boot.discover.FORMATS) and changes nothing else. The guest: fake image ⊃ GPT made by
sfdisk ⊃ two partitions, each a member of one fake stacked volume ⊃ a fake file system
packed from a host tree (the expected answer) ⊃ fakeboot entries naming a kernel and an
initrd whose bytes straddle the two members.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest

import fake_fs
import fake_image
import fake_stack
from builders.disk import sfdisk_image
from guestboot import fs, volume
from guestboot.boot import discover
from guestboot.cli.main import main
from guestboot.fs import path as fspath
from guestboot.pipeline import Request, run
from guestboot.source import BytesSource, formats

SECTOR = 512
MiB = 1 << 20
ENTRIES = {  # file name -> fields; file-name order is menu order; the highest priority boots
    "10-old.entry": {"title": "Old kernel", "kernel": "/vmlinuz-old", "args": "root=/dev/vda ro", "priority": "1"},
    "20-new.entry": {"title": "New kernel", "kernel": "/boot/vmlinuz-new", "initrd": "/boot/initrd-new",
                     "args": "root=/dev/vda quiet", "priority": "5"},
    "30-rescue.entry": {"title": "Rescue", "kernel": "/vmlinuz-old", "args": "single", "priority": "0"},
}
REGISTRATIONS = {  # registry owner, attribute, the one line added
    "image format": (formats, "READERS", (fake_image.NAME, "fake_image")),
    "stacked volume": (volume, "STACKS", ("fake", "fake_stack")),
    "file system": (fs, "PROBES", ("tinyfs", "fake_fs")),
    "config format": (discover, "FORMATS",
                      discover.Format("fakeboot", "fakeboot", (discover.Location("/fakeboot/entries", "*.entry"),))),
}


def _tree(top: Path) -> Path:
    rng = random.Random(5)
    (top / "fakeboot/entries").mkdir(parents=True)
    for name, fields in ENTRIES.items():
        (top / "fakeboot/entries" / name).write_text("".join(f"{k} {v}\n" for k, v in fields.items()))
    (top / "boot").mkdir()
    (top / "vmlinuz-old").write_bytes(rng.randbytes(100_000))
    (top / "boot/vmlinuz-new").write_bytes(rng.randbytes(1_300_000))  # across the two members
    (top / "boot/initrd-new").write_bytes(rng.randbytes(700_001))
    return top


@pytest.fixture(scope="module")
def guest(tmp_path_factory) -> tuple[Path, Path]:
    """(the fake image, the tree its file system holds)."""
    base = tmp_path_factory.mktemp("registries")
    tree = _tree(base / "tree")
    volume_bytes = fake_fs.pack(tree)
    # a member's data is the rest of its partition: partition 1 ends where the first half does
    cut = (len(volume_bytes) // 2 + SECTOR - 1) // SECTOR * SECTOR
    kernel = fspath.resolve(fake_fs.probe(BytesSource(volume_bytes)), "/boot/vmlinuz-new").private
    assert kernel[0] < cut < kernel[0] + kernel[1]  # its bytes come from both members
    members = [fake_stack.header("boot", i, 2, fake_stack.HEADER_SIZE) + part
               for i, part in enumerate((volume_bytes[:cut], volume_bytes[cut:]))]
    sizes = [-(-len(m) // SECTOR) * SECTOR for m in members]
    starts = [MiB, MiB + -(-sizes[0] // MiB) * MiB]
    script = "label: gpt\n" + "".join(f"start={s // SECTOR}, size={n // SECTOR}\n" for s, n in zip(starts, sizes))
    disk = sfdisk_image(base / "disk.raw", starts[1] + sizes[1] + MiB, script)
    with open(disk, "r+b") as f:
        for start, member in zip(starts, members):
            f.seek(start)
            f.write(member)
    image = base / "guest.xor5a"
    image.write_bytes(fake_image.wrap(disk.read_bytes()))
    return image, tree


def _register(monkeypatch, leave_out: str | None = None) -> None:
    for what, (owner, name, line) in REGISTRATIONS.items():
        if what != leave_out:
            monkeypatch.setattr(owner, name, getattr(owner, name) + (line,))


def test_pipeline_lists_and_extracts_through_four_new_formats(guest, monkeypatch, tmp_path):
    image, tree = guest
    _register(monkeypatch)
    fd = os.open(image, os.O_RDONLY)
    try:
        disks = ((fd, image.name),)
        menu = run(Request("menu", disks))
        assert (menu["config"], menu["format"], menu["default"]) == ("(fake/boot)/fakeboot/entries", "fakeboot", [1])
        assert [e["title"] for e in menu["entries"]] == ["Old kernel", "New kernel", "Rescue"]
        assert menu["entries"][1]["initrds"][0]["grub"] == "(fake/boot)/boot/initrd-new"
        devices = {row["name"]: row for row in run(Request("devices", disks))["devices"]}
        assert devices["fake/boot"]["fs"] == "tinyfs"
        assert devices["hd0,gpt1"]["problem"] == devices["hd0,gpt2"]["problem"] == "member of (fake/boot)"
        with open(tmp_path / "k", "wb") as kernel, open(tmp_path / "i", "wb") as initrd:
            done = run(Request("extract", disks, entry="Old kernel", kernel_fd=kernel.fileno(),
                               initrd_fd=initrd.fileno()))
    finally:
        os.close(fd)
    assert (done["args"], done["initrd"]) == ("root=/dev/vda ro", False)
    assert (tmp_path / "k").read_bytes() == (tree / "vmlinuz-old").read_bytes()


def test_cli_lists_and_extracts_through_four_new_formats(guest, monkeypatch, tmp_path, capsys):
    image, tree = guest
    _register(monkeypatch)
    assert main(["list", str(image)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "(fake/boot)/fakeboot/entries (fakeboot)", "  0      Old kernel", "* 1      New kernel", "  2      Rescue"]
    out = tmp_path / "out"
    assert main(["extract", "--format", fake_image.NAME, str(image), "-o", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["args"] == "root=/dev/vda quiet"
    assert result["source"] == {"kernel": "(fake/boot)/boot/vmlinuz-new", "initrds": ["(fake/boot)/boot/initrd-new"]}
    assert (out / "kernel").read_bytes() == (tree / "boot/vmlinuz-new").read_bytes()
    assert (out / "initrd").read_bytes() == (tree / "boot/initrd-new").read_bytes()


@pytest.mark.parametrize("leave_out", sorted(REGISTRATIONS))
def test_each_registration_is_what_finds_the_guest(guest, monkeypatch, capsys, leave_out):
    image, _tree = guest
    _register(monkeypatch, leave_out)
    if leave_out == "config format":  # the file system is read: only the no-config fallback finds kernels
        assert main(["list", str(image)]) == 0
        captured = capsys.readouterr()
        assert "no boot configuration found" in captured.err and "fakeboot" not in captured.out
        assert captured.out.splitlines()[0].endswith(")/boot (noconfig)")
        return
    assert main(["list", str(image)]) == 6
    assert "no boot configuration found" in capsys.readouterr().err
