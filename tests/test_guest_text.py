"""Guest text cannot forge terminal output (issue 9; XSA-198's cousin on the screen).

A real ext4 image (mke2fs -d) whose grub.cfg carries a title with a newline, a fake
default line, ESC/OSC/BEL sequences and a bidi override, an id with a newline, an argument
with a newline, a kernel path with a newline that ends in a not-found error, a regexp
whose warning would split, and a file whose name holds a newline. Every human-readable
output (list, ls, errors, warnings, the entry named on stderr, pygrub's -l, plain menu and
--isconfig) keeps each piece of guest text on its line with the controls escaped; the
machine formats keep the exact text (JSON) or refuse it (simple, simple0).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

TITLE = "x\n* 0 Injected default entry\x1b[2J\x1b]0;owned\x07"
GRUB_CFG = (
    "set default=0\n"
    "regexp '(a\nguestboot: error: forged by regexp' x\n"
    f"menuentry '{TITLE}' --id 'id\n* 9 forged id' {{\n"
    "  linux /boot/vmlinuz root=/dev/sda1 'arg\nforged-arg'\n"
    "  initrd /boot/initrd\n"
    "}\n"
    "menuentry 'missing \u202egnissim' {\n"
    "  linux '/boot/no\nguestboot: error: forged by path'\n"
    "}\n"
)
FORGED = ("* 0 Injected", "* 9 forged", "guestboot: error: forged", "guestboot-pygrub: error: forged",
          "forged-arg", "forged by", "name-forged")
RAW = ("\x1b", "\x07", "\u202e")


@pytest.fixture(scope="module")
def image(tmp_path_factory) -> Path:
    top = tmp_path_factory.mktemp("hostile-text-tree")
    (top / "boot" / "grub").mkdir(parents=True)
    (top / "boot" / "grub" / "grub.cfg").write_text(GRUB_CFG)
    (top / "boot" / "vmlinuz").write_bytes(b"k" * 5000)
    (top / "boot" / "initrd").write_bytes(b"i" * 3000)
    (top / "boot" / "evil\nname-forged\x1b[31m").write_bytes(b"e")
    image = tmp_path_factory.mktemp("hostile-text-img") / "disk.img"
    subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", "-d", str(top), str(image), "8M"],
                   check=True, capture_output=True)
    return image


def run(module: str, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *argv], capture_output=True, timeout=60)


def assert_no_forged_line(proc: subprocess.CompletedProcess) -> str:
    text = (proc.stdout + proc.stderr).decode("utf-8", "surrogateescape")
    for line in text.splitlines():
        assert not line.lstrip().startswith(FORGED), line
        if not line.startswith(("guestboot:", "guestboot-pygrub:", "title:", "  ", "* ", "(hd0)", "d ", "- ", "BOOT_IMAGE=")):
            pytest.fail(f"a line no front end writes: {line!r}")
    for raw in RAW:
        assert raw not in text
    assert "Traceback" not in text
    return text


def test_list_shows_titles_ids_and_warnings_on_one_line_each(image):
    proc = run("guestboot", "list", str(image))
    assert proc.returncode == 0
    text = assert_no_forged_line(proc)
    out = proc.stdout.decode().splitlines()
    assert out[1] == "* 0      x\\n* 0 Injected default entry\\x1b[2J\\x1b]0;owned\\x07  [id\\n* 9 forged id]"
    assert out[2] == "  1      missing \\u202egnissim"
    assert len(out) == 3
    assert "regexp (a\\nguestboot: error: forged by regexp: unmatched" in text  # a pattern regcomp refuses


def test_json_keeps_the_exact_text(image):
    proc = run("guestboot", "list", "--json", str(image))
    assert proc.returncode == 0
    data = json.loads(proc.stdout)
    assert data["entries"][0]["title"] == TITLE
    assert data["entries"][0]["args"] == "root=/dev/sda1 arg\nforged-arg"
    assert "/boot/no\nguestboot: error: forged by path" in data["entries"][1]["error"]


def test_an_error_naming_a_guest_path_is_one_line(image, tmp_path):
    proc = run("guestboot", "extract", "-e", "1", "-o", str(tmp_path / "out"), str(image))
    assert proc.returncode == 6
    assert_no_forged_line(proc)
    errors = [line for line in proc.stderr.decode().splitlines() if "warning:" not in line]
    assert len(errors) == 1 and errors[0].startswith("guestboot: not found: entry 'missing \\u202egnissim'")


def test_extract_names_the_entry_and_prints_the_command_line_escaped(image, tmp_path):
    proc = run("guestboot", "extract", "-o", str(tmp_path / "out"), str(image))
    assert proc.returncode == 0
    assert_no_forged_line(proc)
    assert proc.stdout.decode() == "BOOT_IMAGE=/boot/vmlinuz root=/dev/sda1 arg\\nforged-arg\n"
    assert (tmp_path / "out" / "kernel").read_bytes() == b"k" * 5000


def test_ls_shows_a_file_name_with_a_newline_on_one_line(image):
    proc = run("guestboot", "ls", str(image), "/boot")
    assert proc.returncode == 0
    assert_no_forged_line(proc)
    assert "-            1 evil\\nname-forged\\x1b[31m" in proc.stdout.decode().splitlines()


@pytest.mark.parametrize("argv", [["-l"], ["-n"], ["-n", "-q", "--entry=1"], ["-n", "-q", "--output-format=simple"],
                                  ["-n", "-q", "--output-format=simple0"]])
def test_pygrub_outputs_never_split_guest_text(image, argv):
    proc = run("guestboot.cli.pygrub", *argv, str(image))
    if argv == ["-n"]:  # the plain menu on stderr, then sxp (repr quoting) on stdout
        assert proc.returncode == 0
        assert proc.stdout.decode().endswith("(args 'root=/dev/sda1 arg\\nforged-arg')")
        proc = subprocess.CompletedProcess(proc.args, 0, b"", proc.stderr)
    elif "--output-format=simple" in argv:
        assert proc.returncode == 7 and proc.stdout == b""
        assert "the args value contains a newline, which the simple format cannot carry" in proc.stderr.decode()
    elif "--output-format=simple0" in argv:  # NUL-separated: the newline is carried exactly
        assert proc.returncode == 0
        assert b"args root=/dev/sda1 arg\nforged-arg\0" in proc.stdout
        proc = subprocess.CompletedProcess(proc.args, 0, b"", proc.stderr)
    assert_no_forged_line(proc)


def test_shown_escapes_every_class_and_leaves_text_alone():
    from guestboot.cli.render import shown

    assert shown("Debian GNU/Linux, with Linux 6.1.0-18-amd64 (é, ü, 日本)") == \
        "Debian GNU/Linux, with Linux 6.1.0-18-amd64 (é, ü, 日本)"
    assert shown("a\tb\rc\nd\x00e\x7ff") == "a\\tb\\rc\\nd\\x00e\\x7ff"
    assert shown("\x85\x9b") == "\\x85\\x9b"  # C1: NEL, CSI
    assert shown("\u2028\u2029\u202a\u202e\u2066\u2069\u200f") == "\\u2028\\u2029\\u202a\\u202e\\u2066\\u2069\\u200f"
    assert shown(b"\xff\xfe".decode("utf-8", "surrogateescape")) == "\\xff\\xfe"


def test_debug_traceback_keeps_the_guest_message_on_one_line(image, tmp_path):
    proc = run("guestboot", "extract", "--debug", "-e", "1", "-o", str(tmp_path / "out"), str(image))
    assert proc.returncode == 6
    text = proc.stderr.decode()
    assert "Traceback (most recent call last):" in text
    for line in text.splitlines():
        assert not line.lstrip().startswith(FORGED), line
    for raw in RAW:
        assert raw not in text
    assert "guestboot.errors.NotFound: entry 'missing \\u202egnissim'" in text
