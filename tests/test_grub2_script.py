"""GRUB 2 script language: GRUB's own script tests (tests/data/corpus/grub-script).

* 20 files are run by GRUB's ``grub-shell-tester``, which requires GRUB's output to equal
  bash's output for the same file. We run each with the real bash and with our evaluator
  and compare the echo output (``grubshell=yes`` is set, as GRUB's grub-shell does).
* 4 files feed snippets to ``grub-script-check``: we run the real tool (package
  grub-common) on each snippet and require the same verdict and error line, and the
  verdict the driver expects.
* grub_script_blockarg.in runs ``test_blockarg``, a command only GRUB's functional-test
  build has; the block-argument text it prints is checked through ``echo`` instead.
* grub_script_expansion.in checks ``insmod regexp`` wildcard expansion over GRUB's device
  list (``*``, ``(*)``); its rules are checked on our DeviceMap below.
Further snippets probe syntax corners against grub-script-check.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from guestboot.boot.grub2.interp import Context, Interp, Shared
from guestboot.boot.grub2.parser import check
from guestboot.devices import DeviceMap

SCRIPTS = Path(__file__).parent / "data" / "corpus" / "grub-script"
TESTER = sorted(p.name for p in SCRIPTS.glob("*.in") if "grub-shell-tester" in p.read_text().splitlines()[0])
_CHECK_LINE = re.compile(r"grub-script-check\s*<<\s*EOF")
CHECKER = sorted(p.name for p in SCRIPTS.glob("*.in") if _CHECK_LINE.search(p.read_text()))


def run_grub(text: str, devices: DeviceMap | None = None, **env: str) -> tuple[str, list[str]]:
    shared = Shared(devices or DeviceMap(), [])
    interp = Interp(shared, Context())
    for name, value in env.items():
        interp.set(name, value)
    interp.run_text(text, config_file=True)
    return "".join(shared.output), shared.warnings


def test_corpus_has_the_expected_files() -> None:
    assert len(TESTER) == 20
    assert CHECKER == [
        "grub_script_blanklines.in",
        "grub_script_dollar.in",
        "grub_script_final_semicolon.in",
        "grub_script_no_commands.in",
    ]


# Where Debian's GRUB itself does not print what bash prints (seen with grub-emu 2.06 on
# Debian 12 and 2.12 on Debian 13: both print the same here).
BASH_DIFFERS = {
    "grub_script_eval.in": "GRUB 2.06's grub_script_execute_sourcecode takes its result from "
    "the last line, and eval's text ends in an empty line, so 'if eval \"\nfalse\n\"' is "
    "true: 'should have failed' (Debian's 2.12 still does; bash says 'failed as expected')",
}


@pytest.mark.parametrize("name", TESTER)
def test_output_equals_bash(name: str) -> None:
    path = SCRIPTS / name
    bash = subprocess.run(["bash", str(path)], capture_output=True, text=True, env={"LC_ALL": "C", "PATH": "/usr/bin:/bin"})
    ours, _warnings = run_grub(path.read_text(), grubshell="yes")
    assert ours  # every tester file prints something
    if name in BASH_DIFFERS:
        assert ours != bash.stdout
        assert ours == real_grub("set grubshell=yes\n" + path.read_text())
    else:
        assert ours == bash.stdout


# --- the real thing: Debian's GRUB built for user space (package grub-emu) --------------
# Expected: 2.06 (Debian 12) or 2.12 (Debian 13), prereq.GRUB_VERSIONS_CHECKED; every
# comparison below gives the same answer on both.
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_ERROR_LINE = re.compile(r"^error: .*\n", re.M)


def real_grub(script: str, *, keep_errors: bool = False, halt: bool = True) -> str:
    """What grub-emu prints running ``script`` as its grub.cfg (then ``halt``). GRUB's
    own disk ``(host)`` is the host's file system; $root is ``host``."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        prefix = Path(tmp) / "prefix"
        prefix.mkdir()
        (prefix / "x86_64-emu").symlink_to("/usr/lib/grub/x86_64-emu")
        (prefix / "grub.cfg").write_text(script + ("\nhalt\n" if halt else ""))
        (Path(tmp) / "device.map").write_text("(host) /\n")
        run = subprocess.run(
            ["grub-emu", "-m", str(Path(tmp) / "device.map"), "-r", "host", "-d", str(prefix)],
            stdin=subprocess.DEVNULL, capture_output=True, timeout=20,
        )
    out = _ANSI.sub("", run.stdout.decode("utf-8", "replace")).replace("\r", "")
    out = out.split("Welcome to GRUB!\n\n", 1)[-1]
    return out if keep_errors else _ERROR_LINE.sub("", out)


@pytest.mark.parametrize("name", TESTER)
def test_output_equals_real_grub(name: str) -> None:
    text = (SCRIPTS / name).read_text()
    ours, _ = run_grub(text, grubshell="yes")
    assert ours == real_grub("set grubshell=yes\n" + text)


def heredocs(name: str) -> list[tuple[str, bool]]:
    """(snippet text as the driver's shell passes it, whether the driver expects success)."""
    lines = (SCRIPTS / name).read_text().splitlines()
    out = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if _CHECK_LINE.search(line):
            body = []
            i += 1
            while lines[i] != "EOF":
                body.append(lines[i])
                i += 1
            shell = "cat <<EOF\n" + "\n".join(body) + "\nEOF\n"
            text = subprocess.run(["bash", "-c", shell], capture_output=True, text=True, check=True).stdout
            out.append((text, "&& exit 1" not in line))
        i += 1
    return out


def real_check(text: str, tmp_path: Path) -> tuple[bool, int | None]:
    path = tmp_path / "snippet.cfg"
    path.write_text(text)
    real = subprocess.run(["grub-script-check", str(path)], capture_output=True, text=True)
    match = re.search(r"Syntax error at line (\d+)", real.stderr)
    return real.returncode == 0, int(match.group(1)) if match else None


@pytest.mark.parametrize("name", CHECKER)
def test_check_driver_snippets(name: str, tmp_path: Path) -> None:
    snippets = heredocs(name)
    assert snippets
    for text, expect_ok in snippets:
        ours = check(text)
        assert (ours.ok, ours.error_line) == real_check(text, tmp_path)
        assert ours.ok == expect_ok


SYNTAX_CORNERS = [
    "echo a\n",
    "echo \"a $ b\"\n",  # '$' without a name is a lexical error
    "echo a $\n",
    "echo {\n",
    "function f { echo a }\n",  # a function body needs ';' before '}'
    "function f { echo a; }\nf\n",
    "menuentry x { echo a }\n",  # a block does not
    "menuentry x {\n}\n",  # an empty block is an error
    "if true; then\necho a\n}\nfi\necho b\n",
    "echo a\necho b }\necho c\n",
    "if true;then t4=4; ;fi\n",
    "echo 'multi\nline'\necho after\n",
    "echo \"open\n",
    "echo a \\\nb\n",
    "  # it's a comment\necho ok\n",
    "echo a#b # c'd\n",
    "for x in a b c; do echo $x; done\n",
    "for in in in; do echo; done\n",
    "while false; do\n  echo\ndone\n",
    "until true; do echo; done\n",
    "if true; then echo; elif false; then echo; else echo; fi\n",
    "echo if then else fi do done for in while until function\n",
    "fi\n",
    "echo a;; echo b\n",
    "echo a | b\n",
    "echo a && b\n",
    "echo [[ a ]]\n",
    "echo ${a}b${1}$#$?$*$@\n",
    "echo ${a\n",
    "echo $\"gettext $x\"\n",
    "menuentry 'a' --class x {\n  linux /v\n  initrd /i\n}\nmenuentry b { true; }\n",
    "submenu s {\n menuentry a {\n  true\n }\n}\n",
    "\n\n\n",
    "function f {\n true\n}\n",
    "echo a\\\n",
    "x=1\n${x}\n",
    "echo \"a\\\"b\" 'c\\'\n",
    "echo 'unterminated\n\n\n",
    "if true\nthen\n\necho\n\nfi\n",
    "{ echo a; }\n",
    "echo a; ; echo b\n",
    "menuentry a { echo } }\n",
    "echo \\$x \\\\ \\' \\\"\n",
]


@pytest.mark.parametrize("text", SYNTAX_CORNERS)
def test_syntax_corner_matches_grub_script_check(text: str, tmp_path: Path) -> None:
    ours = check(text)
    assert (ours.ok, ours.error_line) == real_check(text, tmp_path)


def test_blockarg_text_is_passed_verbatim() -> None:
    """GRUB passes a block to a command as '{' + its source text + '}' (the driver's
    test_blockarg prints that); echo shows the same text."""
    out, _ = run_grub("echo { test_blockarg { true } }\n")
    assert out == "{ test_blockarg { true } }\n"
    out, _ = run_grub("echo { a { b }; c { d } }\n")
    assert out == "{ a { b }; c { d } }\n"


def test_wildcard_expansion_over_devices(tmp_path) -> None:
    """grub_script_expansion.in's rules: after ``insmod regexp``, ``*`` expands to every
    disk and no partition, ``(*)`` to every device (a disk, then its partitions in the
    reverse order GRUB's device iterator gives them)."""
    from dirfs import DirFileSystem, device_map

    fs = DirFileSystem(tmp_path)
    devices = device_map(**{"hd0": None, "hd0,msdos1": fs, "hd0,msdos2": fs, "hd1": fs})
    out, _ = run_grub("echo *\ninsmod regexp\necho *\necho (*)\necho (hd0,*)\n", devices)
    assert out == "*\n(hd0) (hd1)\n(hd0) (hd0,msdos2) (hd0,msdos1) (hd1)\n(hd0,msdos2) (hd0,msdos1)\n"


# --- semantics that the tester files do not cover -------------------------------------
def test_unknown_command_warns_and_sets_status_zero() -> None:
    """execute.c: "can't find command" is printed, but grub_script_execute_cmd then sets
    $? from the command line's return value, which is 0."""
    out, warnings = run_grub("nosuchcmd a b\necho $?\nif nosuchcmd; then echo yes; fi\n")
    assert out == "0\nyes\n"
    assert warnings[0].endswith("error: can't find command `nosuchcmd'")


def test_assignment_only_when_no_command() -> None:
    out, _ = run_grub('a=1 b c\necho $a\n"q=x y"\necho $q\nset v=one two\necho $v\n')
    assert out == "1\nx y\none\n"


def test_syntax_error_skips_the_statement_and_continues() -> None:
    out, warnings = run_grub("echo one\nif true; then echo x; ;fi\necho two\n")
    assert out == "one\ntwo\n"
    assert "syntax error near line 2" in warnings[0]


def test_error_in_block_runs_its_lines_at_top_level() -> None:
    """GRUB reads the config line by line: once a unit fails, the following lines are
    new units. A bad line inside a menuentry leaves its tail to run as commands."""
    out, warnings = run_grub("menuentry a {\necho in; ;\necho tail\n}\necho after\n")
    assert out == "tail\nafter\n"
    assert len(warnings) == 2  # the bad unit, then the stray '}'


def test_lines_starting_with_hash_are_dropped_even_inside_quotes() -> None:
    """normal/main.c skips a line whose first character is '#' before lexing, so it
    vanishes from a multi-line string."""
    out, _ = run_grub("echo 'a\n#b\nc'\n")
    assert out == "a\nc\n"


def test_loop_bound_stops_runaway_script() -> None:
    from guestboot.errors import LimitExceeded

    with pytest.raises(LimitExceeded):
        run_grub("while true; do true; done\n")
    # Recursion ends where GRUB ends it: execute.c's depth limit (64) is an error.
    out, warnings = run_grub("function f { f; }\nf\necho done\n")
    assert out == "done\n"
    assert any("maximum recursion depth exceeded" in w for w in warnings)


HOSTILE = {
    "nested blocks": "menuentry a { " * 200 + "true" + " }" * 200 + "\n",
    "nested ifs": "if true; then " * 300 + "true" + "; fi" * 300 + "\n",
    "elif chain": "if false; then true\n" + "elif false; then true\n" * 20000 + "fi\n",
    "unterminated quote": "echo '" + "x\n" * 100_000,
    "many quoted lines in one word": 'echo "\n"' * 50_000 + "\n",
    "backslash continuations": "echo a\\\n" * 100_000 + "b\n",
    "huge number": "if [ " + "9" * 200_000 + " -gt 1 ]; then true; fi\nbreak " + "9" * 200_000 + "\n",
    "deep recursion": "function f { f; }\nf\n",
    "entry flood": "while true; do menuentry x { true }; done\n",
    "word growth": "x=aaaaaaaaaaaaaaaa\nwhile true; do x=$x$x; done\n",
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_input_is_bounded(name: str) -> None:
    """Guest configs are hostile: each of these ends quickly, with a result or a
    LimitExceeded, and nothing else escapes."""
    from guestboot.errors import LimitExceeded

    try:
        run_grub(HOSTILE[name])
    except LimitExceeded:
        pass


PROBES = {
    "unknown command": "nosuch a\necho st=$?\nif nosuch; then echo yes; fi\n! nosuch\necho $?\n",
    "assignments": 'a=1 b c\necho $a\n"q=x y"\necho $q\nset v=one two\necho $v\nset w\necho $?\n',
    "syntax error recovery": "echo one\nif true; then echo x; ;fi\necho two\n",
    "error inside a block": "menuentry a {\necho in; ;\necho tail\n}\necho after\n",
    "hash line inside quotes": "echo 'a\n#b\nc'\n",
    "quoting": "echo a\\ b \"c\\\"d\" 'e\\f' \"g\\h\" \\$x \\\\ x\\\ny\n",
    "splitting": 'x="a  b"\nfor i in $x; do echo [$i]; done\nfor i in "$x"; do echo [$i]; done\n'
    'echo [$empty] "" x\necho a "" b\n',
    "positional": 'function f {\n echo $# [$*] ["$*"] [$@] ["$@"] $1 ${2} $10\n for a in "$@"; do echo <$a>; done\n}\n'
    'f "a b" c\nf\nf 1 2 3 4 5 6 7 8 9 ten\n',
    "test strings and numbers": "[ a = a -a ! b = c ]; echo $?\n[ -z \"\" ]; echo $?\n[ 010 -eq 8 ]; echo $?\n"
    "[ 0x10 -eq 16 ]; echo $?\n[ -n ]; echo $?\n[ ]; echo $?\n[ a \"<\" b ]; echo $?\n"
    "[ ( a = b ) -o c = c ]; echo $?\ntest vmlinuz-2 -plt vmlinuz-11; echo $?\n[ -5 -lt 3 ]; echo $?\n"
    "[ x -a ]; echo $?\n[ abc ]; echo $?\n",
    "loops": "for i in 1 2 3; do for j in a b c; do if [ $j = b ]; then continue 2; fi; echo $i$j; done; done\n"
    "for i in 1 2; do while true; do break 2; done; echo no; done; echo out\n"
    "x=0\nuntil [ $x = 0111 ]; do x=${x}1; echo $x; done\nbreak\necho $?\n",
    "return values": "function f { return $1; }\nf 0; echo $?\nf 1; echo $?\nf 7; echo $?\n"
    "function g { false; return; }\ng; echo $?\nreturn\necho $?\nsetparams a\necho $?\nshift\necho $?\n",
    "echo options": "echo -n x; echo y\necho -e 'a\\nb\\c'; echo z\necho -ne 'q\\n'\necho -x -n\necho -- -n\n",
    "gettext": 'v=val\necho $"x $v ${v}y \\$v $"\necho $"a\\\\b"\n',
    "menuentry errors": "menuentry\necho $?\nmenuentry t\necho $?\nmenuentry --bogus t { true }\necho $?\n",
    "keywords as words": "echo if then fi do done for in while until function else elif case esac select\n",
    "comments": "echo a#b # comment\necho '#x' \"#y\" \\#z\n  # indented comment\necho end\n",
    "dollar forms": "x=1\necho $x$x ${x}a $xa \"$x\"b '$x' $? $#\n",
    "root hook": "set root=(hd7,3)\necho $root\nroot=(x\necho $root\n",
    "nested quotes over lines": "echo \"a\nb\" 'c\nd' e\\\nf\n",
    "elif": "if false; then echo 1; elif false; then echo 2; elif true; then echo 3; else echo 4; fi\n",
    "exported and unset": "export zz\necho [$zz]\nq=1\nunset q\necho [$q]\nunset\necho $?\n",
    "quoted at with empty args": 'function f { for a in "$@"; do echo [$a]; done; echo n=$#; }\nf\nf ""\nf a "" b\n',
    "search without a type": "search --set=r x\necho [$r] $?\nsearch\necho $?\nsearch -f\necho $?\n",
    "set status": 'set a=1\necho $?\nset 1=x\necho $? [$1]\n"#"=3\necho $?\n',
    "odd names": "a-b=1\necho ${a-b} $?\nx=\necho [$x]\n",
    "double-quote escapes": 'echo "a\\$b" "c\\\\d" "e\\nf" "g\\\\\\\\h"\n',
    "keywords in for": "for x in do done in for; do echo $x; done\n",
    "negation": "! false; echo $?\n! ! true; echo $?\n!\necho $?\n",
    "nested returns": "function a { b; echo a$?; return 4; }\nfunction b { return 2; }\na\necho $?\n",
    "loop status": 'x=\nwhile [ "$x" != aaa ]; do x=a$x; done\necho $? $x\nwhile false; do true; done; echo $?\n',
    "shift counts": "function f { shift 2; echo $# $*; shift 5; echo $? $#; }\nf a b c d\n",
    "break outside loops": "break; echo $?\ncontinue 0\necho $?\nbreak x\necho $?\n",
    "backslash-x is not hex on Debian": 'echo LABEL=CentOS\\x207\\x20x86_64 "q\\x20r"\n',
    "echo -e unknown escapes": "echo -e 'a\\\\qb\\\\\\\\c'\necho -en 'x\\\\'\necho\n",
}


@pytest.mark.parametrize("name", sorted(PROBES))
def test_probe_matches_real_grub(name: str) -> None:
    ours, _ = run_grub(PROBES[name])
    assert ours == real_grub(PROBES[name])


@pytest.fixture
def short_tmp():
    """A directory with a short name: grub-emu's console wraps lines at 80 columns."""
    import shutil
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="g", dir="/tmp"))
    yield path
    shutil.rmtree(path)


def test_file_probes_match_real_grub(short_tmp: Path) -> None:
    """File tests, search, source and load_env on GRUB's (host) disk, with the same files
    seen through our DeviceMap (device "host" = the host's root directory)."""
    from dirfs import DirFileSystem, device_map

    tmp_path = short_tmp

    (tmp_path / "dir").mkdir()
    (tmp_path / "empty").write_bytes(b"")
    (tmp_path / "full").write_bytes(b"data")
    (tmp_path / "link").symlink_to("dir")
    (tmp_path / "part.cfg").write_text("set from_part=yes\necho sourced $1\n")
    subprocess.run(["grub-editenv", str(tmp_path / "env"), "create"], check=True)
    subprocess.run(["grub-editenv", str(tmp_path / "env"), "set", "a=1", "b=two words", "c=3"], check=True)
    d = str(tmp_path)
    script = "\n".join(
        [
            f"for p in {d}/dir {d}/empty {d}/full {d}/missing (host){d}/full (nodisk){d}/full; do",
            "  if [ -e $p ]; then e=e; else e=-; fi",
            "  if [ -f $p ]; then f=f; else f=-; fi",
            "  if [ -d $p ]; then dd=d; else dd=-; fi",
            "  echo $e$f$dd",
            "done",
            # -s opens the file; GRUB's host file system (grub-emu only) opens directories too
            f"for p in {d}/empty {d}/full {d}/missing; do if [ -s $p ]; then echo s; else echo -; fi; done",
            f"search --file {d}/full --set=found",
            "echo found=$found $?",
            f"search --file {d}/nothing --set=nf",
            "echo nf=$nf $?",
            f"source {d}/part.cfg",
            "echo from_part=$from_part",
            f"source {d}/missing.cfg",
            "echo after missing $?",
            f"load_env -f {d}/env a b",
            "echo [$a] [$b] [$c]",
            f"load_env -f {d}/full",
            "echo $?",
            f"function g {{ source {d}/src.cfg; }}",
            "g p q",
            f"source {d}/src.cfg",
            '[ -e "" ]; echo $?',
            '[ -d "" ]; echo $?',
            "[ -e / ]; echo $?",
            f"[ -f {d}/ ]; echo $?",
            f"[ -e {d.lstrip('/')} ]; echo $?",
            "[ -e (host) ]; echo $?",
        ]
    )
    (tmp_path / "src.cfg").write_text("echo src [$1] [$#]\n")
    dm = device_map(host=DirFileSystem("/"))
    ours, _ = run_grub(script + "\n", dm, root="host")
    assert ours == real_grub(script)


def test_menu_entries_run_like_real_grub() -> None:
    """GRUB boots the default entry when the timeout is 0; the entry's body prints its
    positional parameters, $chosen and $default, then halts the emulator. Our MenuEntry
    bodies run the same way (through menu.py's own runner)."""
    from guestboot.boot.grub2.commands import run_config
    from guestboot.boot.grub2 import menu as grubmenu

    script = (
        'set timeout=0\nset default="sub>inner"\nset v=top\nexport e\ne=exp\n'
        "menuentry first x { echo never }\n"
        "submenu sub extra --id sub {\n"
        '  echo in submenu $1 $2 $# [$chosen] [$default] [$v] [$e] [$timeout]\n  set v=changed\n'
        "  menuentry inner arg {\n"
        '    echo entry $1 $2 $# [$chosen] [$default] [$v] [$e]\n'
        "    halt\n"
        "  }\n"
        "}\n"
        "echo v=$v\n"
    )
    real = real_grub(script, halt=False).replace("  Booting `sub'\n\n", "").replace("  Booting `inner'\n\n", "")
    shared = Shared(DeviceMap(), [])
    top = Interp(shared, Context())
    run_config(top, "(host)/grub.cfg", script.encode())
    sub_raw = top.ctx.menu[1]
    sub = Interp(shared, top.ctx.copy_exported(shared))
    sub.set("timeout", "0")
    grubmenu.enter_entry(sub, sub_raw, top)
    sub.run_new_scope(sub_raw.source, sub_raw.args)
    inner_raw = sub.ctx.menu[0]
    grubmenu.enter_entry(sub, inner_raw)
    try:
        sub.run_new_scope(inner_raw.source, inner_raw.args)
    except grubmenu.Halt:
        pass
    assert "".join(shared.output) == real


MENUENTRY_LINES = [
    "menuentry 'Title' extra --class a --class=b --id=the-id --users=alice --hotkey=x",
    "menuentry --users bob Second more",
    "menuentry -- --weird -x",
    "menuentry --id 'a>b' 'T>itle'",
    "menuentry 'T' --unrestricted -q --foo",
    'menuentry "$menuentry_id_option" x',
    "menuentry --id=only 'Only' --users=",
]


@pytest.mark.parametrize("line", MENUENTRY_LINES)
def test_menuentry_arguments_like_real_grub(line: str) -> None:
    """GRUB boots entry 0 (timeout 0); its body prints $chosen (built from the entry's
    id, or its title) and the positional parameters the entry got."""
    from guestboot.boot.grub2 import menu as grubmenu
    from guestboot.boot.grub2.commands import run_config

    script = f'set timeout=0\n{line} {{\n  echo "[$chosen]" $# "[$1]" "[$2]" "[$3]"\n  halt\n}}\necho listed\n'
    real = re.sub(r"  Booting `.*'\n\n", "", real_grub(script, halt=False))
    shared = Shared(DeviceMap(), [])
    top = Interp(shared, Context())
    run_config(top, "(host)/grub.cfg", script.encode())
    if top.ctx.menu:
        raw = top.ctx.menu[0]
        grubmenu.enter_entry(top, raw)
        try:
            top.run_new_scope(raw.source, raw.args)
        except grubmenu.Halt:
            pass
    assert "".join(shared.output) == real


def test_file_tests_on_ext2_like_real_grub(short_tmp: Path) -> None:
    """'[ -e/-f/-d/-s ]' on an ext2 image made by mke2fs -d (package e2fsprogs), read by
    grub-emu through 'loopback'; ours reads the same tree through the DeviceMap. GRUB
    does not follow a final symlink for -e/-f/-d (a link to a directory is a file) but
    -s opens the file, which follows it."""
    from dirfs import DirFileSystem, device_map

    src = short_tmp / "src"
    (src / "dir").mkdir(parents=True)
    (src / "file").write_text("data\n")
    (src / "empty").write_bytes(b"")
    (src / "linkdir").symlink_to("dir")
    (src / "linkfile").symlink_to("file")
    (src / "broken").symlink_to("nowhere")
    image = short_tmp / "img"
    subprocess.run(["mke2fs", "-q", "-t", "ext2", "-d", str(src), "-F", str(image), "1024"], check=True,
                   capture_output=True)
    loop = "for p in dir file empty linkdir linkfile broken missing; do\n" + "".join(
        f" if [ {op} (lo)/$p ]; then v{i}={op[1]}; else v{i}=-; fi\n" for i, op in enumerate(("-e", "-f", "-d", "-s"))
    ) + " echo $p $v0$v1$v2$v3\ndone\n"
    real = real_grub(f"insmod ext2\nloopback lo {image}\n" + loop)
    ours, _ = run_grub(loop, device_map(lo=DirFileSystem(src)), root="lo")
    assert ours == real
    assert "linkdir ef--\n" in ours


SUBMENU_DEFAULTS = [
    ("1", "set default=1\n"),  # the body sets the value it was entered with
    ("1", ""),
    ("1>1", ""),
    ("1>1", "set default=0\n"),
    ("1>1", "unset default\n"),
    ("s>y", "set default=x\n"),
    ("1>0", "set default=1\n"),
]


@pytest.mark.parametrize("default, body", SUBMENU_DEFAULTS)
def test_submenu_default_like_real_grub(tmp_path: Path, default: str, body: str) -> None:
    """Which entry GRUB boots by default when a submenu body may set ``default`` itself:
    grub-emu boots it (timeout 0) and the entry prints its name; ours is select.choose on
    the evaluated menu (boot/grub2/default.py)."""
    from dirfs import DirFileSystem, device_map
    from guestboot.boot.grub2 import evaluate
    from guestboot.select import choose

    script = (
        f"set timeout=0\nset default='{default}'\n"
        "menuentry a { echo booted a; halt }\n"
        "submenu s {\n" + body
        + "  menuentry x { echo booted x; halt }\n  menuentry y { echo booted y; halt }\n}\n"
    )
    real = re.findall(r"booted (\w)", real_grub(script, halt=False))
    (tmp_path / "grub.cfg").write_text(script)
    menu = evaluate(device_map(host=DirFileSystem(tmp_path)), "host", "/grub.cfg")
    assert [choose(menu).names[-1]] == real
