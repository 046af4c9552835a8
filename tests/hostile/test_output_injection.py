"""XSA-198 and terminal forgery: NUL, newline, escape and s-expression bytes in titles and
kernel arguments, through every output format. Machine formats (pygrub's sxp, simple,
simple0; JSON) carry the guest's exact bytes where the format can, decoded as their
consumer decodes them, or refuse with exit 7 where it cannot (a newline in simple, a NUL
in simple0); the kernel and ramdisk they name are always files in the output directory.
Human formats (``guestboot list``, pygrub's ``-l`` and ``-i`` menu) show every entry on one
line, control characters escaped, so a title cannot forge a line. The args every machine
format gives must equal what ``list --json`` reports for the same image."""

from __future__ import annotations

import ast
import json

import pytest

from hostile import configs
from hostile.configs import GUEST_FILES
from hostile.harness import expect_error, guestboot, pygrub

# (id, title, args): raw bytes as they appear in the config file
GRUB2_PAYLOADS = [
    ("title-newline", b"x\n* 0 Injected default entry", b"ro"),
    ("title-escape", b"x\x1b[2J\x1b]0;owned\x07", b"ro"),
    ("title-nul", b"x\x00(kernel /etc/passwd)", b"ro"),
    ("args-newline", b"plain", b"'ro\nkernel /etc/passwd\nramdisk /etc/shadow'"),
    ("args-nul", b"plain", b"'ro\x00kernel /etc/passwd'"),
    ("args-sxp", b"plain", b"\"ro') (kernel /etc/passwd) (args 'x\""),
    ("args-escape", b"plain", b"'ro\x1b]0;owned\x07\r'"),
]
# line-based languages cannot put a newline in a value
OTHER_PAYLOADS = [
    ("title-escape", b"x\x1b[2J\x1b]0;owned\x07", b"ro"),
    ("title-nul", b"x\x00(kernel /etc/passwd)", b"ro"),
    ("args-nul", b"plain", b"ro\x00kernel /etc/passwd"),
    ("args-sxp", b"plain", b"ro') (kernel /etc/passwd) (args 'x"),
    ("args-escape", b"plain", b"ro\x1b]0;owned\x07\r"),
]
MACHINE = ("sxp", "simple", "simple0")
HUMAN = ("list", "pygrub-l", "pygrub-i")


def _image(images, language, name, title, args):
    return images.fs(f"inject-{language}-{name}", "ext4", {**GUEST_FILES, **configs.entry(language, title=title, args=args)})


_JSON_ARGS: dict[str, str | None] = {}  # per image: the images are built once per session


def _json_args(arena, image) -> str | None:
    """The entry's args as ``list --json`` gives them; None when the config has no entry
    (GRUB reads a line only up to a NUL: a NUL inside quotes leaves them open)."""
    if str(image) not in _JSON_ARGS:
        result = guestboot(arena, "list", "--json", str(image))
        assert result.rc == 0, result
        entries = json.loads(result.stdout)["entries"]
        assert len(entries) <= 1, entries
        _JSON_ARGS[str(image)] = entries[0]["args"] if entries else None
    return _JSON_ARGS[str(image)]


def _unquote_sxp(data: str) -> dict[str, str]:
    """pygrub's sxp line: ``linux (kernel 'v')(ramdisk 'v')(args 'v')``, each value a
    Python string literal (repr quoting: either quote, backslash escapes)."""
    assert data.startswith("linux "), data
    pos, fields = len("linux "), {}
    while pos < len(data) and data[pos] != "\n":
        assert data[pos] == "(", (pos, data)
        key_end = data.index(" ", pos)
        key = data[pos + 1 : key_end]
        quote = data[key_end + 1]
        assert quote in "'\"", data
        end = key_end + 2
        while data[end] != quote:
            end += 2 if data[end] == "\\" else 1
        assert data[end + 1] == ")", data
        assert key not in fields, f"{key} twice: {data!r}"
        fields[key] = ast.literal_eval(data[key_end + 1 : end + 1])
        pos = end + 2
    assert data[pos:] in ("", "\n"), f"trailing {data[pos:]!r}"
    return fields


def _decode(fmt: str, stdout: bytes) -> dict[str, str]:
    text = stdout.decode("utf-8", "surrogateescape")
    if fmt == "sxp":
        return _unquote_sxp(text)
    separator = "\n" if fmt == "simple" else "\0"
    fields = {}
    for item in text.split(separator):
        if item:
            key, _, value = item.partition(" ")
            assert key not in fields, f"{key} twice: {text!r}"
            fields[key] = value
    return fields


def _check_machine(arena, image, fmt) -> None:
    expected = _json_args(arena, image)
    result = pygrub(arena, "-q", f"--output-format={fmt}", f"--output-directory={arena.out}", str(image))
    if expected is None:
        expect_error(result, {6})
        return
    if result.rc == 7:  # refused: only where the format really cannot carry the value
        cannot = {"simple": "\n", "simple0": "\0", "sxp": "\0"}[fmt]
        assert cannot in expected, f"{fmt} refused args it can carry: {expected!r}\n{result}"
        return
    assert result.rc == 0, result
    fields = _decode(fmt, result.stdout)
    assert set(fields) <= {"kernel", "ramdisk", "args"} and "kernel" in fields, fields
    for key in ("kernel", "ramdisk"):
        if key in fields:
            path = (arena.root / fields[key]) if not fields[key].startswith("/") else None
            written = path if path is not None else type(arena.out)(fields[key])
            assert written.parent.resolve() == arena.out.resolve(), f"{key} {fields[key]!r} is not in the output directory"
    assert fields.get("args", "") == expected, (fields, expected)


def _check_human(arena, image, how) -> None:
    entries = 0 if _json_args(arena, image) is None else 1
    if how == "list":
        result = guestboot(arena, "list", str(image))
        entry_lines = [line for line in result.stdout.decode().splitlines() if line[:2] in ("* ", "  ")]
    elif how == "pygrub-l":
        result = pygrub(arena, "-l", str(image))
        entry_lines = [line for line in result.stdout.decode().splitlines() if line.startswith("title:")]
    else:  # the menu pygrub -i shows (text on stderr), then it boots the default
        result = pygrub(arena, "-i", f"--output-directory={arena.out}", "--output-format=simple0", str(image))
        entry_lines = []
    assert result.rc in ((0, 7) if entries else (0, 6)), result
    human = result.stdout if how != "pygrub-i" else b""  # -i: the menu is on stderr (checked for every run)
    for line in human.decode("utf-8", "replace").splitlines():
        assert line.isprintable(), f"control character reaches the terminal: {line!r}"
        assert not line.lstrip("* ").startswith("0 Injected"), f"a forged line: {line!r}"
    if how != "pygrub-i":
        assert len(entry_lines) == entries, f"one entry, one line: {entry_lines}"


@pytest.mark.parametrize("output", MACHINE + HUMAN)
@pytest.mark.parametrize("name,title,args", GRUB2_PAYLOADS, ids=[p[0] for p in GRUB2_PAYLOADS])
def test_grub2_payload(images, arena, output, name, title, args):
    image = _image(images, "grub2", name, title, args)
    (_check_machine if output in MACHINE else _check_human)(arena, image, output)


@pytest.mark.parametrize("output", ["simple0", "sxp", "list"])
@pytest.mark.parametrize("language", ["legacy", "syslinux", "bls"])
@pytest.mark.parametrize("name,title,args", OTHER_PAYLOADS, ids=[p[0] for p in OTHER_PAYLOADS])
def test_other_language_payload(images, arena, language, output, name, title, args):
    image = _image(images, language, name, title, args)
    (_check_machine if output in MACHINE else _check_human)(arena, image, output)


@pytest.mark.parametrize("name,title,args", GRUB2_PAYLOADS, ids=[p[0] for p in GRUB2_PAYLOADS])
def test_extract_json_carries_exact_text(images, arena, name, title, args):
    image = _image(images, "grub2", name, title, args)
    expected = _json_args(arena, image)
    result = guestboot(arena, "extract", str(image), "-o", str(arena.out), "--json")
    if expected is None:
        expect_error(result, {6})
        return
    assert result.rc == 0, result
    assert json.loads(result.stdout)["args"] == expected


@pytest.mark.parametrize("language", ["grub2", "legacy", "syslinux", "bls"])
def test_non_utf8_title_and_args(images, arena, language):
    """Bytes that are not UTF-8 in a title and the args: shown escaped, carried exactly
    by simple0 (or refused with exit 7)."""
    args = b"ro x=\xc3\x28 y=\xa0"
    image = _image(images, language, "non-utf8", b"caf\xe9 \xff\xfe", b"'" + args + b"'" if language == "grub2" else args)
    _check_human(arena, image, "list")
    result = pygrub(arena, "-q", "--output-format=simple0", f"--output-directory={arena.out}", str(image))
    if result.rc == 0:
        assert b"x=\xc3\x28 y=\xa0" in result.stdout, result
    else:
        expect_error(result, {7})
