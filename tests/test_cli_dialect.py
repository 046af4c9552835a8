"""--grub-dialect on both front ends, and what `list` says about the dialect it used.

The images are made by mke2fs -d from trees holding the expected answer: a grub.cfg that
loads with Fedora's ``linuxefi``/``initrdefi`` (which Debian's GRUB 2.06 does not have),
with an os-release that names Rocky Linux, Debian, or none.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from pathlib import Path

import pytest
from prereq import unavailable

from guestboot.boot.grub2.dialect import DIALECTS
from guestboot.cli import main as guestboot_cli
from guestboot.cli import pygrub as pygrub_cli

GRUB_CFG = """\
set default=0
menuentry 'Linux (EFI loader)' --id efi {
    linuxefi /boot/vmlinuz root=/dev/vda ro
    initrdefi /boot/initrd
}
"""
OS_RELEASE = {
    "rocky": 'NAME="Rocky Linux"\nID="rocky"\nID_LIKE="rhel centos fedora"\n',
    "debian": 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\n',
    "none": None,
}
NO_SIGNS = "no os-release on the image, no Fedora sign in the config"


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    """name -> (whole-disk ext4 image, its tree)."""
    if shutil.which("mke2fs") is None:
        unavailable("mke2fs is not installed (package e2fsprogs)")
    base = tmp_path_factory.mktemp("dialect")
    rng = random.Random(12)
    made = {}
    for name, os_release in {**OS_RELEASE, "legacy": None}.items():
        top = base / name
        (top / "boot/grub2").mkdir(parents=True)
        (top / "boot/vmlinuz").write_bytes(rng.randbytes(50_000))
        (top / "boot/initrd").write_bytes(rng.randbytes(20_000))
        if name == "legacy":
            (top / "boot/grub/").mkdir()
            (top / "boot/grub/menu.lst").write_text("default 0\ntitle Old\n kernel /boot/vmlinuz ro\n")
        else:
            (top / "boot/grub2/grub.cfg").write_text(GRUB_CFG)
        if os_release is not None:
            (top / "etc").mkdir()
            (top / "etc/os-release").write_text(os_release)
        image = base / f"{name}.img"
        subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", "-d", str(top), str(image), "8M"], check=True,
                       capture_output=True)
        made[name] = (image, top)
    return made


@pytest.mark.parametrize("name, option, dialect, reason", [
    ("rocky", None, "fedora", "(hd0)/etc/os-release has 'fedora' in ID_LIKE"),
    ("debian", None, "debian", "(hd0)/etc/os-release has 'debian' in ID"),
    ("none", None, "fedora", "the config has Fedora's 'linuxefi'"),
    ("rocky", "suse", "suse", "chosen by the caller"),
    ("none", "auto", "fedora", "the config has Fedora's 'linuxefi'"),
])
def test_list_says_which_dialect_and_why(images, capsys, name, option, dialect, reason):
    image = str(images[name][0])
    extra = ["--grub-dialect", option] if option else []
    assert guestboot_cli.main(["list", image, *extra]) == 0
    header = capsys.readouterr().out.splitlines()[0]
    assert header == f"(hd0)/boot/grub2/grub.cfg (grub2, {dialect} dialect: {reason})"
    assert guestboot_cli.main(["list", "--json", image, *extra]) == 0
    assert json.loads(capsys.readouterr().out)["dialect"] == {"name": dialect, "reason": reason}


def test_a_format_without_dialects_shows_none(images, capsys):
    image = str(images["legacy"][0])
    assert guestboot_cli.main(["list", image]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "(hd0)/boot/grub/menu.lst (grub-legacy)"
    assert guestboot_cli.main(["list", "--json", image]) == 0
    assert json.loads(capsys.readouterr().out)["dialect"] is None


def test_extract_follows_the_option(images, tmp_path, capsys):
    """Debian's GRUB has no linuxefi: as the image shows (Debian) the entry loads nothing;
    as Fedora's GRUB (the option) it boots."""
    image, tree = images["debian"]
    assert guestboot_cli.main(["extract", str(image), "-o", str(tmp_path / "a")]) == 6
    assert "can't find command `linuxefi'" in capsys.readouterr().err
    assert not (tmp_path / "a").exists()
    out = tmp_path / "b"
    assert guestboot_cli.main(["extract", str(image), "-o", str(out), "--json", "--grub-dialect", "fedora"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["dialect"], result["loader"]) == ({"name": "fedora", "reason": "chosen by the caller"}, "linuxefi")
    assert (out / "kernel").read_bytes() == (tree / "boot/vmlinuz").read_bytes()
    assert (out / "initrd").read_bytes() == (tree / "boot/initrd").read_bytes()


def test_pygrub_front_end_takes_the_option(images, tmp_path, capfd):
    image, tree = images["debian"]
    argv = ["-q", f"--output-directory={tmp_path}", "--output-format=simple0", str(image)]
    assert pygrub_cli.main(argv) == 6
    assert "can't find command `linuxefi'" in capfd.readouterr().err
    assert pygrub_cli.main(["--grub-dialect=fedora", *argv]) == 0
    fields = dict(f.split(" ", 1) for f in capfd.readouterr().out.split("\0") if f)
    assert Path(fields["kernel"]).read_bytes() == (tree / "boot/vmlinuz").read_bytes()
    assert fields["args"] == "root=/dev/vda ro"


def test_an_unknown_dialect_is_a_usage_error(images, capsys):
    image = str(images["rocky"][0])
    assert guestboot_cli.main(["list", image, "--grub-dialect", "arch"]) == 2
    assert f"--grub-dialect arch: choose from auto, {', '.join(DIALECTS)}" in capsys.readouterr().err
    assert pygrub_cli.main(["--grub-dialect=arch", "-q", image]) == 2
    assert f"choose from auto, {', '.join(DIALECTS)}" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["list", "extract"])
def test_help_names_every_dialect(command, capsys):
    with pytest.raises(SystemExit):
        guestboot_cli.main([command, "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert all(name in shown for name in DIALECTS)
