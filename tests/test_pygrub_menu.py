"""pygrub's interactive menu on a terminal (guestboot-pygrub without -q or --entry), driven
through a pseudo-terminal the way libxl hands one to its bootloader: standard input,
output and error on the pty, the result in --output.

What is checked is what a person at the console sees and gets: the bootable entries with
the default highlighted, the config's own countdown (GRUB 2's ``timeout``), that a key
stops it, that Up/Down/Enter boot the entry chosen (also one inside a submenu), that guest
text cannot move the cursor or forge a line, and that the terminal is given back as it was.
"""

from __future__ import annotations

import fcntl
import os
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

CONFIG = """\
set default=1
set timeout={timeout}
menuentry 'First' {{
    linux /boot/vmlinuz-1 root=/dev/sda1 first
}}
menuentry 'Second' --id second {{
    linux /boot/vmlinuz-2 root=/dev/sda1 second
    initrd /boot/initrd-2
}}
submenu 'More' {{
    menuentry 'Third {title}' {{
        linux /boot/vmlinuz-3 third{args}
    }}
}}
"""
EVIL = "\x1b[2J\x1b]0;owned\x07\n* 9 Injected"


def make_disk(work: Path, timeout: str, title: str = "", args: str = "") -> Path:
    tree = work / "tree"
    (tree / "boot" / "grub").mkdir(parents=True)
    (tree / "boot" / "grub" / "grub.cfg").write_text(CONFIG.format(timeout=timeout, title=title, args=args))
    for name in ("vmlinuz-1", "vmlinuz-2", "vmlinuz-3", "initrd-2"):
        (tree / "boot" / name).write_bytes(name.encode() * 100)
    image = work / "disk.img"
    subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", "-d", str(tree), str(image), "8M"], check=True,
                   capture_output=True)
    return image


@pytest.fixture(scope="module")
def disk(tmp_path_factory) -> Path:
    return make_disk(tmp_path_factory.mktemp("menu"), "4")  # long enough for a loaded machine to type in time


class Console:
    """guestboot-pygrub on a fresh pty (24 x 80): read what it draws, type keys."""

    def __init__(self, *argv: str, module: str = "guestboot.cli.pygrub"):
        for arg in argv:  # libxl makes the --output file before it starts the bootloader
            if arg.startswith("--output="):
                Path(arg.split("=", 1)[1]).touch()
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        self.modes = termios.tcgetattr(slave)
        self.proc = subprocess.Popen([sys.executable, "-m", module, *argv], stdin=slave,
                                     stdout=slave, stderr=slave, start_new_session=True)
        self.slave = slave
        self.screen = b""

    def _read(self, timeout: float) -> bool:
        """Read what is there within ``timeout``; False when nothing came."""
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return False
        try:
            data = os.read(self.master, 65536)
        except OSError:  # EIO: every writer closed the pty
            return False
        self.screen += data
        return bool(data)

    def wait_for(self, needle: bytes, timeout: float = 60) -> float:
        """Seconds until ``needle`` was drawn."""
        start = time.monotonic()
        while needle not in self.screen:
            assert time.monotonic() - start < timeout, self.screen[-2000:]
            ended = self.proc.poll() is not None
            self._read(0.2)
            if ended and needle not in self.screen:
                raise AssertionError(f"ended before {needle!r}: {self.screen[-2000:]!r}")
        return time.monotonic() - start

    def type(self, *keys: bytes) -> None:
        for key in keys:
            os.write(self.master, key)
            time.sleep(0.15)  # one key per read, as a person types

    def finish(self, timeout: float = 60) -> int:
        status = self.proc.wait(timeout=timeout)
        while self._read(0.1):
            pass
        assert termios.tcgetattr(self.slave) == self.modes  # the terminal is given back as it was
        os.close(self.slave)
        os.close(self.master)
        return status


def test_the_countdown_boots_the_default_after_the_configs_timeout(disk, tmp_path):
    out = tmp_path / "out"
    console = Console("--output-format=simple", f"--output={out}", "-n", str(disk))
    console.wait_for(b"Will boot selected entry in  4 seconds")
    start = time.monotonic()
    assert console.finish() == 0
    assert time.monotonic() - start > 2.5  # it waited (the countdown drew 4, 3, 2, 1)
    assert b"Will boot selected entry in  3 seconds" in console.screen
    assert b"Will boot selected entry in  1 seconds" in console.screen
    # the default (entry 1, "Second") was the highlighted line
    assert b"\x1b[7m 1      Second" in console.screen
    assert out.read_bytes() == b"kernel <kernel:/boot/vmlinuz-2>\nramdisk <ramdisk:/boot/initrd-2>\n" \
                               b"args root=/dev/sda1 second\n\n"


def test_down_into_a_submenu_entry_and_enter_boots_it(disk, tmp_path):
    """A key stops the countdown; Down twice from the default reaches "More > Third"."""
    outdir = tmp_path / "d"
    outdir.mkdir()
    out = tmp_path / "out"
    console = Console("--output-format=simple", f"--output={out}", f"--output-directory={outdir}", str(disk))
    console.wait_for(b"Will boot selected entry in")
    console.type(b"\x1b[B")
    console.wait_for(b"\x1b[7m 2>0    More > Third")
    time.sleep(4.5)  # past the config's timeout: the key stopped it
    assert console.proc.poll() is None
    console.type(b"\x1b[B", b"\r")  # the last entry stays the last
    assert console.finish() == 0
    [kernel] = outdir.glob("boot_kernel.*")
    assert kernel.read_bytes() == b"vmlinuz-3" * 100
    assert out.read_bytes() == f"kernel {kernel}\nargs third\n\n".encode()


def test_up_and_enter_boot_the_first_entry(disk, tmp_path):
    out = tmp_path / "out"
    console = Console("--output-format=simple", f"--output={out}", "-n", str(disk))
    console.wait_for(b"Will boot selected entry in")
    console.type(b"k", b"k", b"\r")  # vi keys too; Up at the top stays there
    assert console.finish() == 0
    assert out.read_bytes() == b"kernel <kernel:/boot/vmlinuz-1>\nargs root=/dev/sda1 first\n\n"


def test_guest_titles_cannot_drive_the_terminal(tmp_path):
    """A title with a clear-screen, a window-title sequence and a newline that would forge
    a menu line: shown escaped on its one line."""
    image = make_disk(tmp_path, "1", EVIL)
    out = tmp_path / "out"
    console = Console(f"--output={out}", "-n", str(image))
    console.wait_for(b"Will boot selected entry in")
    assert console.finish() == 0
    assert b"More > Third \\x1b[2J\\x1b]0;owned\\x07\\n* 9 Injected" in console.screen
    assert b"\x1b]0;owned" not in console.screen and b"\n* 9 Injected" not in console.screen


@pytest.mark.parametrize("timeout", ["0", "-1", "86400"])
def test_timeout_zero_boots_at_once_and_longer_waits_are_cut(tmp_path, timeout):
    """0: GRUB boots at once. -1 (GRUB waits for a key) and a day: the guest cannot hold
    the host's toolstack, the countdown is the host's 60 s."""
    image = make_disk(tmp_path, timeout)
    out = tmp_path / "out"
    console = Console(f"--output={out}", "-n", str(image))
    if timeout == "0":  # GRUB boots at once: no menu is drawn
        assert console.finish() == 0
        assert b"Press enter" not in console.screen and b"\x1b[7m" not in console.screen
        assert b"entry 1: Second" in console.screen  # what it booted, said on stderr as always
    else:  # GRUB would wait for a key: the host's cap (LIMITS.max_menu_wait_seconds) counts down
        console.wait_for(b"Will boot selected entry in 60 seconds")
        time.sleep(1.5)
        assert console.proc.poll() is None
        console.type(b"\r")
        assert console.finish() == 0
    assert b"vmlinuz-2" in out.read_bytes()


def test_quiet_and_entry_never_ask(disk, tmp_path):
    """-q and --entry are pygrub's non-interactive modes: no menu even on a terminal."""
    for args in (["-q"], ["--entry=0"]):
        out = tmp_path / "out"
        console = Console(f"--output={out}", "-n", *args, str(disk))
        assert console.finish() == 0
        assert b"Will boot" not in console.screen
        out.unlink()


def test_ctrl_c_at_the_menu_is_an_interruption(disk, tmp_path):
    out = tmp_path / "out"
    console = Console(f"--output={out}", "-n", str(disk))
    console.wait_for(b"Will boot selected entry in")
    console.type(b"\x03")
    assert console.finish() == 130
    assert not out.exists() or out.read_bytes() == b""


def test_keys_that_arrive_together_each_count(disk, tmp_path):
    """A paste (or a fast typist) gives several keys in one read: each one moves."""
    out = tmp_path / "out"
    console = Console(f"--output={out}", "--output-format=simple", "-n", str(disk))
    console.wait_for(b"Will boot selected entry in")
    os.write(console.master, b"\x1b[H\x1b[B\x1b[B\x1bOA\r")  # Home, Down, Down, Up, Enter: entry 1
    assert console.finish() == 0
    assert b"vmlinuz-2" in out.read_bytes()
    out.unlink()
    console = Console(f"--output={out}", "--output-format=simple", "-n", str(disk))
    console.wait_for(b"Will boot selected entry in")
    os.write(console.master, b"\x1b[Hj\x1b[F\r")  # Home, j, End, Enter: the last entry
    assert console.finish() == 0
    assert b"vmlinuz-3" in out.read_bytes()


def test_keys_splits_control_sequences_whole():
    from guestboot.cli.console_menu import keys

    assert keys(b"jj\x1b[B\x1bOA\x1b[5~\r\x03\x1b") == [b"j", b"j", b"\x1b[B", b"\x1bOA", b"\x1b[5~", b"\r",
                                                         b"\x03", b"\x1b"]


def test_a_edits_the_kernel_arguments_of_the_highlighted_entry(disk, tmp_path):
    """pygrub's 'a': the line editor starts with the entry's own arguments; End, a word
    typed, Home and Delete; Enter boots with the line, --args still appended."""
    out = tmp_path / "out"
    console = Console("--output-format=simple", f"--output={out}", "-n", "--args=console=hvc0", str(disk))
    console.wait_for(b"Will boot selected entry in")
    console.type(b"k", b"a")  # entry 0, whose arguments come from a run of its own
    console.wait_for(b"Kernel arguments of 0 First")
    console.wait_for(b"root=/dev/sda1 first")
    console.type(b" single", b"\x1b[H", b"\x1b[3~" * 5, b"\r")  # drop "root=" from the front
    assert console.finish() == 0
    assert out.read_bytes() == b"kernel <kernel:/boot/vmlinuz-1>\nargs /dev/sda1 first single console=hvc0\n\n"
    assert b"kernel arguments typed at the console: /dev/sda1 first single console=hvc0" in console.screen


def test_escape_leaves_the_editor_and_the_entry_boots_as_configured(disk, tmp_path):
    out = tmp_path / "out"
    console = Console("--output-format=simple", f"--output={out}", "-n", str(disk))
    console.wait_for(b"Will boot selected entry in")
    console.type(b"a")
    console.wait_for(b"root=/dev/sda1 second")
    console.type(b"\x15garbage", b"\x1b")  # Ctrl-U, typing, then Esc: nothing kept
    console.wait_for(b"Press enter to boot the selected OS")
    console.type(b"\r")
    assert console.finish() == 0
    assert out.read_bytes().endswith(b"args root=/dev/sda1 second\n\n")
    assert b"typed at the console" not in console.screen


def test_arguments_with_control_characters_are_not_edited(tmp_path):
    """The editor shows what it edits; guest arguments with an escape character cannot be
    shown as they are, so 'a' says so (escaped) and the entry can still boot unchanged."""
    image = make_disk(tmp_path, "5", args=" x\x1b[2Jy")
    out = tmp_path / "out"
    console = Console("--output-format=simple", f"--output={out}", "-n", str(image))
    console.wait_for(b"Will boot selected entry in")
    console.type(b"j", b"a")
    console.wait_for(b"entry 2>0: its arguments hold control characters; not editable here")
    console.type(b"\r")
    assert console.finish() == 0
    assert out.read_bytes() == b"kernel <kernel:/boot/vmlinuz-3>\nargs third x\x1b[2Jy\n\n"


def test_a_console_that_hangs_up_boots_the_highlighted_entry(disk, tmp_path):
    """The person's side of the pty closes while the menu is up (a console client gone):
    the highlighted entry boots, with no error and no wait for the countdown."""
    out = tmp_path / "out"
    console = Console("--output-format=simple", f"--output={out}", "-n", str(disk))
    console.wait_for(b"Will boot selected entry in  4")
    console.type(b"k")  # stop the countdown on entry 0
    console.wait_for(b"\x1b[7m 0      First")
    os.close(console.master)
    assert console.proc.wait(timeout=30) == 0
    assert out.read_bytes() == b"kernel <kernel:/boot/vmlinuz-1>\nargs root=/dev/sda1 first\n\n"
    os.close(console.slave)


@pytest.mark.parametrize("command", ["extract", "qemu"])
def test_guestboot_interactive_chooses_the_entry(disk, tmp_path, command):
    """guestboot's own commands take the same menu with -i (extract, and the front doors)."""
    out = tmp_path / "out"
    argv = ["extract", "-i", str(disk), "-o", str(out)] if command == "extract" else \
        ["qemu", "-i", str(disk), "-o", str(tmp_path), "--no-drive"]
    console = Console(*argv, module="guestboot")
    console.wait_for(b"Will boot selected entry in")
    console.type(b"k", b"\r")
    assert console.finish() == 0
    if command == "extract":
        assert (out / "kernel").read_bytes() == b"vmlinuz-1" * 100 and not (out / "initrd").exists()
        assert b"BOOT_IMAGE=/boot/vmlinuz-1 root=/dev/sda1 first" in console.screen
    else:
        [made] = tmp_path.glob("guestboot-*")
        assert (made / "kernel").read_bytes() == b"vmlinuz-1" * 100
        assert b"root=/dev/sda1 first" in console.screen


def test_guestboot_interactive_needs_a_terminal_and_no_entry(disk, tmp_path):
    done = subprocess.run([sys.executable, "-m", "guestboot", "extract", "-i", str(disk), "-o", str(tmp_path / "o")],
                          stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    assert done.returncode == 2 and b"needs a terminal on standard input" in done.stderr
    assert not (tmp_path / "o").exists()
    console = Console("extract", "-i", "--entry=0", str(disk), "-o", str(tmp_path / "o"), module="guestboot")
    assert console.finish() == 2
    assert b"--interactive and --entry both choose the entry" in console.screen
