"""Differential tests: guestboot-pygrub against the real pygrub (Xen 4.17 on Debian 12, 4.20 on 13).

Both run on the same images (tests/builders/guest_images.py) with the same options, the
way libxl runs them (-q, --output-directory, --output to a file that already exists).
Where they must agree they are compared byte for byte after the random parts of the
output file names are masked. Where guestboot answers differently ON PURPOSE, the test
states both answers and says why GRUB's is ours: pygrub reads grub.cfg line by line,
evaluates no ``if``, no variables and no quoting, flattens submenus, cannot follow a
``>`` path or a saved entry, and opens a multi-file ``initrd`` line as one file name.

Needs: xen-utils-<version> (pygrub and its xenfsimage module; prereq.real_pygrub finds it).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from prereq import need_real_pygrub, unavailable

from builders.guest_images import GuestImage, session_image
from builders.initramfs import ToolMissing

pytestmark = pytest.mark.slow

OURS = [sys.executable, "-m", "guestboot.cli.pygrub"]
IMAGES = ("debian12-gpt", "centos6-mbr", "centos7-mbr")
FORMATS = ("sxp", "simple", "simple0")
TIMEOUT = 120

# The entry the real pygrub boots by default, and why it is not GRUB's.
PYGRUB_DEFAULT = {
    # 00_header's `set default="${next_entry}"` becomes 0 in pygrub (it special-cases the
    # text "${next_entry}"), then `set default="1>1"` fails int() and becomes 0 too; pygrub
    # evaluates no `if`, so both lines count. GRUB runs only the else branch (next_entry is
    # unset) and follows "1>1" into the submenu: the newest kernel's recovery entry.
    "debian12-gpt": "0",
    # GRUB legacy `default 1`: both agree.
    "centos6-mbr": "1",
    # `set default="${saved_entry}"` becomes 0 in pygrub; GRUB's load_env reads grubenv,
    # whose saved_entry (written by grub-editenv) names entry 1 by title.
    "centos7-mbr": "0",
}




@pytest.fixture(scope="session")
def pygrub() -> list[str]:
    pygrub = need_real_pygrub()
    # pygrub has no option that exits 0 without an image; load what it imports instead,
    # with its own interpreter (the #! line) and its own module directory.
    interpreter = pygrub.read_bytes().split(b"\n", 1)[0][2:].decode().split()
    libdir = pygrub.parent.parent / "lib" / "python"
    probe = f"import sys; sys.path.insert(1, {str(libdir)!r}); import xenfsimage, grub.GrubConf"
    done = subprocess.run([*interpreter, "-c", probe], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=TIMEOUT, check=False)
    if done.returncode != 0:
        last = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no message"]
        unavailable(f"{pygrub} cannot load its modules: {last[0]}")
    return [str(pygrub)]


def _image(tmp_path_factory, name: str) -> GuestImage:
    try:
        return session_image(tmp_path_factory, name)
    except ToolMissing as err:
        unavailable(str(err))


@pytest.fixture(scope="session", params=IMAGES)
def any_image(request, tmp_path_factory) -> GuestImage:
    return _image(tmp_path_factory, request.param)


@pytest.fixture(scope="session")
def images(tmp_path_factory):
    return lambda name: _image(tmp_path_factory, name)


# --- running either front end -------------------------------------------------------------


class Run:
    def __init__(self, done: subprocess.CompletedProcess, output: bytes, out_dir: Path):
        self.done = done
        self.raw = output
        self.out_dir = out_dir

    @property
    def normalised(self) -> bytes:
        """The output with the run's directory and random name parts masked."""
        pattern = re.escape(str(self.out_dir).encode()) + rb"/boot_(kernel|ramdisk)\.[a-z0-9_]{8}"
        return re.sub(pattern, rb"<DIR>/boot_\1.XXXXXXXX", self.raw)

    def file(self, kind: str) -> bytes:
        found = re.search(re.escape(str(self.out_dir).encode()) + rb"/boot_" + kind.encode()
                          + rb"\.[a-z0-9_]{8}", self.raw)
        assert found, (kind, self.raw)
        return Path(found.group().decode()).read_bytes()


def front_end(command: list[str], image: GuestImage, tmp_path: Path, *options: str) -> Run:
    tmp_path.mkdir(parents=True)
    out_dir = tmp_path / "dir"
    out_dir.mkdir()
    output = tmp_path / "output"
    output.write_bytes(b"")  # as libxl: --output exists before the boot loader runs
    done = subprocess.run([*command, "-q", *options, f"--output-directory={out_dir}", f"--output={output}",
                           str(image.path)], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=TIMEOUT, check=False)
    return Run(done, output.read_bytes(), out_dir)


def succeeded(run: Run, who: str) -> Run:
    assert run.done.returncode == 0, f"{who} exit {run.done.returncode}: {run.done.stderr.decode(errors='replace')}"
    return run


def pygrub_format(fmt: str, kernel: str, ramdisk: str | None, args: str | None) -> bytes:
    """What pygrub's format_sxp / format_simple print (written from reading them)."""
    if fmt == "sxp":
        text = "linux (kernel %r)" % kernel
        text += "(ramdisk %r)" % ramdisk if ramdisk else ""
        text += "(args %r)" % args if args else ""
        return text.encode()
    sep = "\n" if fmt == "simple" else "\0"
    text = f"kernel {kernel}{sep}"
    text += f"ramdisk {ramdisk}{sep}" if ramdisk else ""
    text += f"args {args}{sep}" if args else ""
    return (text + sep).encode()


MASKED = ("<DIR>/boot_kernel.XXXXXXXX", "<DIR>/boot_ramdisk.XXXXXXXX")


def parse_listing(text: str) -> list[dict[str, str]]:
    """pygrub -l's blocks: 'title: T' then indented 'key: value' lines."""
    blocks: list[dict[str, str]] = []
    for line in text.splitlines():
        if line.startswith("title: "):
            blocks.append({"title": line[len("title: "):]})
        elif line.startswith("  ") and blocks:
            key, sep, value = line[2:].partition(": ")
            assert sep, f"not a 'key: value' line: {line!r}"
            blocks[-1][key] = value
        else:
            raise AssertionError(f"unexpected line in a -l listing: {line!r}")
    return blocks


# --- the menu --------------------------------------------------------------------------


def test_list_entries(pygrub, any_image, tmp_path):
    theirs = succeeded(front_end(pygrub, any_image, tmp_path / "pygrub", "-l", "-n"), "pygrub")
    ours = succeeded(front_end(OURS, any_image, tmp_path / "ours", "-l", "-n"), "guestboot-pygrub")
    listed_theirs = parse_listing(theirs.done.stdout.decode())
    listed_ours = parse_listing(ours.done.stdout.decode())
    entries = any_image.entries

    # Both list every bootable entry, depth first. pygrub shows a submenu entry by its
    # own title only (it drops the submenu line); guestboot shows the submenu path
    # "submenu>entry", which is also how GRUB's `default` names it.
    assert [b["title"] for b in listed_theirs] == [e.title for e in entries]
    assert [b["title"].split(">")[-1] for b in listed_ours] == [e.title for e in entries]
    for e, b in zip(entries, listed_ours):
        assert (">" in b["title"]) == (">" in e.path), b["title"]

    for e, theirs_b, ours_b in zip(entries, listed_theirs, listed_ours):
        assert theirs_b["kernel"] == ours_b["kernel"] == e.kernel
        # pygrub keeps the initrd line's text as one path; guestboot lists the files.
        assert theirs_b["initrd"] == ours_b["initrd"] == " ".join(e.initrds)
        # pygrub passes the linux line's text through; GRUB splits it into words
        # (collapsing "ro  quiet"), removes quotes, expands variables ($tuned_params is
        # set to "") and rebuilds the line: the kernel gets GRUB's version.
        assert theirs_b["args"] == e.written_args
        assert ours_b["args"] == e.args
        assert any_image.partition in ours_b["root"]


# --- the default entry, every output format ----------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_default_entry(pygrub, any_image, tmp_path, fmt):
    theirs = succeeded(front_end(pygrub, any_image, tmp_path / "pygrub", f"--output-format={fmt}"), "pygrub")
    ours = succeeded(front_end(OURS, any_image, tmp_path / "ours", f"--output-format={fmt}"), "guestboot-pygrub")
    their_pick = any_image.entry(PYGRUB_DEFAULT[any_image.name])
    grub_pick = any_image.default

    assert theirs.normalised == pygrub_format(fmt, *MASKED, their_pick.written_args)
    assert theirs.file("kernel") == any_image.kernel_bytes(their_pick)
    assert theirs.file("ramdisk") == any_image.initrd_bytes(their_pick)

    assert ours.normalised == pygrub_format(fmt, *MASKED, grub_pick.args)
    assert ours.file("kernel") == any_image.kernel_bytes(grub_pick)
    assert ours.file("ramdisk") == any_image.initrd_bytes(grub_pick)

    if any_image.name == "centos6-mbr":
        assert ours.normalised == theirs.normalised  # GRUB legacy: same entry, same bytes
    else:
        # The deliberate difference explained in PYGRUB_DEFAULT: GRUB's default differs.
        assert their_pick is not grub_pick
        assert ours.normalised != theirs.normalised


def test_not_really(pygrub, any_image, tmp_path):
    """-n copies nothing. pygrub's copy_from_image builds "<kernel:PATH>" for -n but the
    caller drops that value and prints its unset temporary-file name: "kernel None", and
    no ramdisk at all. guestboot prints the guest paths it would copy, which is what -n
    is for; the args and the rest of the format are the same."""
    theirs = succeeded(front_end(pygrub, any_image, tmp_path / "pygrub", "-n", "--output-format=simple"), "pygrub")
    ours = succeeded(front_end(OURS, any_image, tmp_path / "ours", "-n", "--output-format=simple"),
                     "guestboot-pygrub")
    their_pick = any_image.entry(PYGRUB_DEFAULT[any_image.name])
    grub_pick = any_image.default
    assert theirs.raw == pygrub_format("simple", "None", None, their_pick.written_args)
    assert ours.raw == pygrub_format("simple", f"<kernel:{grub_pick.kernel}>",
                                     f"<ramdisk:{' '.join(grub_pick.initrds)}>", grub_pick.args)
    assert os.listdir(theirs.out_dir) == os.listdir(ours.out_dir) == []


# --- one entry named on both sides -------------------------------------------------------

# (image, pygrub's --entry, guestboot's --entry, the entry's GRUB path). pygrub numbers the
# flattened list; guestboot takes what GRUB's `default` takes ("1>3" = submenu 1, entry 3).
SAME_ENTRY = [
    ("debian12-gpt", "0", "0", "0"),  # args differ: "ro  quiet" is two words for GRUB
    ("debian12-gpt", "2", "1>1", "1>1"),  # args differ: GRUB re-quotes guestboot.note="two words"
    ("debian12-gpt", "4", "1>3", "1>3"),  # args written in GRUB's own form: identical
    ("centos6-mbr", "0", "0", "0"),  # GRUB legacy: identical
    ("centos7-mbr", "1", "1", "1"),  # args differ: pygrub keeps "$tuned_params" literally
    ("centos7-mbr", "2", "2", "2"),  # the rescue entry has no variable: identical
]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name,their_spec,our_spec,path", SAME_ENTRY,
                         ids=[f"{c[0]}-{c[3]}" for c in SAME_ENTRY])
def test_same_entry(pygrub, images, tmp_path, fmt, name, their_spec, our_spec, path):
    image = images(name)
    entry = image.entry(path)
    extra = "guestboot.extra=1"  # --args: both append it after one space
    theirs = succeeded(front_end(pygrub, image, tmp_path / "pygrub", f"--entry={their_spec}", f"--args={extra}",
                                 f"--output-format={fmt}"), "pygrub")
    ours = succeeded(front_end(OURS, image, tmp_path / "ours", f"--entry={our_spec}", f"--args={extra}",
                               f"--output-format={fmt}"), "guestboot-pygrub")

    assert theirs.normalised == pygrub_format(fmt, *MASKED, f"{entry.written_args} {extra}")
    assert ours.normalised == pygrub_format(fmt, *MASKED, f"{entry.args} {extra}")
    assert theirs.file("kernel") == ours.file("kernel") == image.kernel_bytes(entry)
    assert theirs.file("ramdisk") == ours.file("ramdisk") == image.initrd_bytes(entry)
    if entry.written_args == entry.args:
        assert ours.normalised == theirs.normalised
    else:
        assert ours.normalised != theirs.normalised  # GRUB's rebuilt line, as commented above


def test_two_initrds(pygrub, images, tmp_path):
    """`initrd /ucode.img /initrd.img-…` loads two files one after the other. pygrub takes
    the whole text as one file name, finds no such file and fails; GRUB (and guestboot)
    load both."""
    image = images("debian12-gpt")
    entry = image.entry("2")
    theirs = front_end(pygrub, image, tmp_path / "pygrub", "--entry=5", "--output-format=simple0")
    assert theirs.done.returncode != 0
    assert b"Error opening" in theirs.done.stderr
    assert theirs.raw == b""

    ours = succeeded(front_end(OURS, image, tmp_path / "ours", f"--entry={entry.id}", "--output-format=simple0"),
                     "guestboot-pygrub")
    assert ours.normalised == pygrub_format("simple0", *MASKED, entry.args)
    assert ours.file("kernel") == image.kernel_bytes(entry)
    assert ours.file("ramdisk") == image.initrd_bytes(entry)
