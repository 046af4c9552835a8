"""pygrub's ``e`` (edit the highlighted entry's commands) and ``c`` (a command line) in the
interactive menu, driven through a pseudo-terminal as in test_pygrub_menu.py.

What a person at the console does and gets: the entry's ``linux``/``initrd`` lines with
their devices, a line edited, removed or opened, ``b`` boots what the lines say (the
kernel and initrds are then read from the image and written out like any entry's), a
command line where commands are typed one by one and ``boot`` boots them, and clear
notes (not a crash, not a silent default) for what cannot be booted or edited.
"""

from __future__ import annotations

import fcntl
import os
import struct
import subprocess
import termios

import pytest
from prereq import need_real_pygrub

from guestboot.cli.console_menu import Edited, entry_lines, parse_entry
from test_pygrub_menu import Console, make_disk


@pytest.fixture(scope="module")
def disk(tmp_path_factory):
    return make_disk(tmp_path_factory.mktemp("menu-edit"), "10")


def _boot_dir(tmp_path):
    out_dir = tmp_path / "boot"
    out_dir.mkdir()
    return out_dir


def _written(out_dir, prefix):
    found = sorted(out_dir.glob(prefix + "*"))
    return found[0].read_bytes() if found else None


def test_e_shows_the_entrys_commands_and_b_boots_them_edited(disk, tmp_path):
    """The default entry's two lines; the linux line rewritten (another kernel, other
    arguments), the initrd line removed; b boots that: the other kernel is extracted, no
    ramdisk, --args still appended."""
    out, out_dir = tmp_path / "out", _boot_dir(tmp_path)
    console = Console("--output-format=simple", f"--output={out}", f"--output-directory={out_dir}",
                      "--args=console=hvc0", str(disk))
    console.wait_for(b"Will boot selected entry in")
    console.type(b"e")
    console.wait_for(b"Commands of entry 1 Second")
    console.wait_for(b"linux (hd0)/boot/vmlinuz-2 root=/dev/sda1 second")
    console.wait_for(b"initrd (hd0)/boot/initrd-2")
    console.type(b"e")
    console.wait_for(b"Line 1 of entry 1 Second")
    console.type(b"\x15linux (hd0)/boot/vmlinuz-3 root=/dev/sda1 edited", b"\r")
    console.wait_for(b"linux (hd0)/boot/vmlinuz-3 root=/dev/sda1 edited")
    console.type(b"\x1b[B", b"d", b"b")
    assert console.finish() == 0
    assert _written(out_dir, "boot_kernel.") == b"vmlinuz-3" * 100
    assert _written(out_dir, "boot_ramdisk.") is None
    text = out.read_text()
    assert text.startswith(f"kernel {out_dir}/boot_kernel.") and "ramdisk" not in text
    assert text.endswith("\nargs root=/dev/sda1 edited console=hvc0\n\n")
    assert b"booting commands edited at the console: linux (hd0)/boot/vmlinuz-3 root=/dev/sda1 edited" \
        in console.screen


class RealPygrub(Console):
    """The real pygrub (curses) on a fresh pty of the same size."""

    def __init__(self, pygrub, *argv: str):
        out = [a for a in argv if a.startswith("--output=")][0].split("=", 1)[1]
        open(out, "wb").close()
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        self.modes = termios.tcgetattr(slave)
        self.proc = subprocess.Popen([str(pygrub), *argv], stdin=slave, stdout=slave, stderr=slave,
                                     start_new_session=True, env=dict(os.environ, TERM="xterm"))
        self.slave = slave
        self.screen = b""


def test_e_then_b_boots_the_entry_as_the_real_pygrub_does(disk, tmp_path):
    """The peer: pygrub's 'e' then 'b' with nothing changed boots the highlighted entry;
    the same keys here give the same kernel, ramdisk and arguments. (pygrub 4.17's 'c'
    ends with exit 1 at once on a GRUB 2 config, and its 'e' with -n prints "kernel
    None": no peer for those.)"""
    pygrub = need_real_pygrub()
    results = []
    for name in ("real", "ours"):
        out, out_dir = tmp_path / f"{name}.out", tmp_path / name
        out_dir.mkdir()
        argv = ("--output-format=simple", f"--output={out}", f"--output-directory={out_dir}", str(disk))
        console = RealPygrub(pygrub, *argv) if name == "real" else Console(*argv)
        console.wait_for(b"Will boot selected entry in")
        console.type(b"e")
        console.wait_for(b"'e' to edit the selected")  # both show the entry editor's keys
        console.type(b"b")
        assert console.proc.wait(timeout=60) == 0, console.screen[-1000:]
        os.close(console.slave)
        os.close(console.master)
        text = out.read_text()
        results.append((_written(out_dir, "boot_kernel."), _written(out_dir, "boot_ramdisk."),
                        text[text.index("\nargs "):]))
    assert results[0] == results[1]
    assert results[1] == (b"vmlinuz-2" * 100, b"initrd-2" * 100, "\nargs root=/dev/sda1 second\n\n")


def test_o_opens_a_line_and_the_last_initrd_line_counts_as_in_grub(disk, tmp_path):
    """A new line after the linux line, typed as an initrd command naming two files: GRUB
    loads the last initrd command's files, concatenated in order."""
    out, out_dir = tmp_path / "out", _boot_dir(tmp_path)
    console = Console("--output-format=simple", f"--output={out}", f"--output-directory={out_dir}", str(disk))
    console.wait_for(b"Will boot selected entry in")
    console.type(b"e")
    console.wait_for(b"initrd (hd0)/boot/initrd-2")
    console.type(b"o", b"e")
    console.wait_for(b"Line 2 of entry 1 Second")
    console.type(b"initrd /boot/vmlinuz-1 (hd0)/boot/initrd-2", b"\r")
    console.wait_for(b" initrd /boot/vmlinuz-1 (hd0)/boot/initrd-2")
    # the old initrd line is now the third, after the one typed: it is the last, so it counts
    console.type(b"\x1b[B", b"d", b"\x18")  # remove it; Ctrl-X boots, as in GRUB's editor
    assert console.finish() == 0
    assert _written(out_dir, "boot_kernel.") == b"vmlinuz-2" * 100
    assert _written(out_dir, "boot_ramdisk.") == b"vmlinuz-1" * 100 + b"initrd-2" * 100
    assert out.read_text().endswith("\nargs root=/dev/sda1 second\n\n")


def test_c_boots_the_commands_typed_and_refuses_others(disk, tmp_path):
    out = tmp_path / "out"
    console = Console("--output-format=simple", f"--output={out}", "-n", str(disk))
    console.wait_for(b"Will boot selected entry in")
    console.type(b"c")
    console.wait_for(b"GRUB command line")
    console.type(b"linux /boot/vmlinuz-1 quiet splash", b"\r")
    console.wait_for(b"grub> linux /boot/vmlinuz-1 quiet splash")
    console.type(b"insmod gzio", b"\r")
    console.wait_for(b"unknown command 'insmod' (linux, kernel, initrd and boot are understood)")
    console.type(b"initrd (hd0)/boot/initrd-2", b"\r", b"boot", b"\r")
    assert console.finish() == 0
    assert out.read_bytes() == (b"kernel <kernel:/boot/vmlinuz-1>\nramdisk <ramdisk:/boot/initrd-2>\n"
                                b"args quiet splash\n\n")


def test_b_with_no_kernel_line_says_so_and_esc_goes_back(disk, tmp_path):
    out = tmp_path / "out"
    console = Console("--output-format=simple", f"--output={out}", "-n", str(disk))
    console.wait_for(b"Will boot selected entry in")
    console.type(b"e")
    console.wait_for(b"initrd (hd0)/boot/initrd-2")
    console.type(b"d", b"b")  # the linux line removed
    console.wait_for(b"no 'linux' (or 'kernel') line: nothing to boot")
    console.type(b"\x1b")
    console.wait_for(b"Press enter to boot the selected OS")
    console.type(b"\r")  # the entry boots as the config has it: the edit was dropped
    assert console.finish() == 0
    assert out.read_bytes() == b"kernel <kernel:/boot/vmlinuz-2>\nramdisk <ramdisk:/boot/initrd-2>\n" \
                               b"args root=/dev/sda1 second\n\n"


def test_a_kernel_typed_that_is_not_there_is_one_error_line(disk, tmp_path):
    out = tmp_path / "out"
    console = Console("--output-format=simple", f"--output={out}", "-n", str(disk))
    console.wait_for(b"Will boot selected entry in")
    console.type(b"c")
    console.wait_for(b"GRUB command line")
    console.type(b"linux /boot/missing", b"\r", b"boot", b"\r")
    assert console.finish() == 6  # NotFound
    errors = [line for line in console.screen.split(b"\r\n") if line.startswith(b"guestboot-pygrub: ")]
    assert len(errors) == 1 and b"/boot/missing" in errors[0], console.screen[-600:]
    assert out.read_bytes() == b""


def test_an_entry_with_control_characters_is_not_edited(tmp_path):
    image = make_disk(tmp_path, "5", args=" x\x1b[2Jy")
    out = tmp_path / "out"
    console = Console("--output-format=simple", f"--output={out}", "-n", str(image))
    console.wait_for(b"Will boot selected entry in")
    console.type(b"j", b"e")
    console.wait_for(b"entry 2>0: not editable here (control characters or spaces in its lines)")
    console.type(b"\r")
    assert console.finish() == 0
    assert out.read_bytes() == b"kernel <kernel:/boot/vmlinuz-3>\nargs third x\x1b[2Jy\n\n"


def _planned(**changes):
    ref = {"device": "hd0,gpt2", "path": "/vmlinuz", "written": "/vmlinuz", "grub": "(hd0,gpt2)/vmlinuz"}
    planned = {"kernel": ref, "initrds": [dict(ref, path="/initrd", grub="(hd0,gpt2)/initrd")],
               "args": "root=/dev/xvda1 ro", "loader": "linux", "modules": []}
    planned.update(changes)
    return planned


def test_entry_lines_name_the_files_with_their_devices():
    assert entry_lines(_planned()) == ["linux (hd0,gpt2)/vmlinuz root=/dev/xvda1 ro", "initrd (hd0,gpt2)/initrd"]
    assert entry_lines(_planned(initrds=[], args="", loader="kernel")) == ["kernel (hd0,gpt2)/vmlinuz"]
    assert entry_lines(_planned(loader="chainloader"))[0].startswith("linux ")


@pytest.mark.parametrize("changes, why", [
    ({"modules": [{"grub": "(hd0)/m"}]}, "multiboot"),
    ({"kernel": {"grub": "(hd0,gpt1)/EFI/Linux/uki.efi", "section": {"offset": 1, "size": 2}}}, "unified kernel image"),
    ({"kernel": {"grub": "(hd0)/boot/my kernel"}}, "spaces"),
    ({"args": "quiet\x1b[2J"}, "control characters"),
])
def test_entries_that_cannot_be_written_as_lines_are_refused(changes, why):
    with pytest.raises(ValueError, match=why):
        entry_lines(_planned(**changes))


def test_parse_entry_follows_the_last_commands():
    assert parse_entry(["linux /a one", "initrd /i", "", "kernel (hd0)/b  two  three ", "initrd /j /k"]) == \
        Edited("(hd0)/b", ("/j", "/k"), "two  three")
    assert parse_entry(["linux16 /a"]) == Edited("/a", (), "")
    for lines, message in ((["initrd /i"], "no 'linux'"), (["linux"], "needs the kernel's path"),
                           (["linux /a", "initrd"], "needs the initrd's path"), (["set x=1"], "unknown command 'set'")):
        with pytest.raises(ValueError, match=message):
            parse_entry(lines)
