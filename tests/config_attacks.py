"""Hostile boot configs by class, and a runner that evaluates one in a fresh interpreter
with an address-space limit: shared by tests/test_config_budgets.py and
bench/config_budget_bench.py.

Each generator returns {name: {path: bytes}}: the files of a guest partition (its root
is the partition's root) whose config (CONFIG_PATH[kind]) attacks one class of cost that
command or item counts do not bound: bytes produced by expansion, text held in values,
titles and messages, lines indexed, files re-read. Sizes follow LIMITS, so the cases stay
at the edge of what the bounds allow (and just over it) when the bounds change.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from guestboot.limits import LIMITS

KiB = 1024
MiB = 1024 * KiB

CONFIG_PATH = {"grub": "/grub/grub.cfg", "legacy": "/grub/menu.lst", "syslinux": "/syslinux/syslinux.cfg",
               "sdboot": "/loader/loader.conf"}
ENTRY = "menuentry 'ok' {\n  linux /vmlinuz root=/dev/sda1\n}\n"


def doubled(name: str = "a", size: int = 512 * KiB, seed: str = "xxxxxxxx") -> str:
    """GRUB lines that make $name hold at least ``size`` bytes by doubling ``seed``."""
    lines = [f"set {name}={seed}"]
    have = len(seed)
    while have < size:
        lines.append(f'set {name}="${name}${name}"')
        have *= 2
    return "\n".join(lines) + "\n"


def _loop(body: str) -> str:
    return f"while true; do {body}; done\n"


def _numbers(count: int) -> str:
    return " ".join(str(n) for n in range(count))


def _fill(unit: str, size: int = 4 * MiB - 4 * KiB, head: str = "", tail: str = ENTRY) -> str:
    """``head``, ``unit`` repeated to about ``size`` bytes in all, ``tail``: a config at
    the edge of LIMITS.max_config_bytes whatever the unit."""
    return head + unit * max(1, (size - len(head) - len(tail)) // len(unit)) + tail


def parse_attacks() -> dict[str, str]:
    """One unit whose parse tree, not its text, is large: many tokens on one line (or
    in one construct), each a few bytes of text and a hundred of tree."""
    return {
        "semicolons-one-line": _fill("true;", head="", tail="\n" + ENTRY),
        "words-one-line": _fill(" a", head="true", tail="\n" + ENTRY),
        "one-if-many-commands": _fill("true;", head="if true; then ", tail=" fi\n" + ENTRY),
        "one-block-many-words": _fill(" a", head="menuentry x {", tail=" }\n" + ENTRY),
        # bodies kept after their unit: functions of large bodies, and one redefined
        "function-bodies": _fill("function f{n} { " + "true a b c; " * 300 + "}\n"),
        "function-redefined": _fill("function f { " + "true a b c; " * 300 + "}\n"),
    }


def command_attacks() -> dict[str, str]:
    """Commands whose own work is not the bytes of their arguments: run in a loop until
    a budget stops them."""
    half = doubled("a", 256 * KiB)  # two of it on a command line stay under max_word_bytes
    return {
        "regexp-blowup-loop": doubled("t", 4 * KiB, "aaaaaaaa") + _loop('regexp "(a|aa|aaa|aaaa)*b" "$t"'),
        "regexp-compile-loop": _loop('regexp "' + "(a|b)" * (LIMITS.max_regex_program // 8) + '" x'),
        "test-failing-big-args": doubled("n", 256 * KiB, "99999999") + _loop('test "$n" -lt "$n"'),
        "test-pgt-big-args": half + _loop('test "$a" -pgt "$a"'),
        "test-string-ops": half + _loop('test "$a" "<" "$a" -o "$a" ">=" "$a"'),
        "gettext-loop": _loop('echo -n $"' + "y\\x" * (64 * KiB) + '"'),  # read character by character
        "unknown-command-big-word": half + _loop('"$a"'),
        "search-file-hints": _loop("search --no-floppy --file --set=root "
                                   + " ".join(["--hint=hd0,msdos1"] * 60_000) + " /nonexistent"),
        "exported-many-submenus": f"for i in {_numbers(LIMITS.max_variables - 100)}; do export v$i; done\n"
                                  + f"for j in {_numbers(2000)}; do submenu \"s$j\" {{ menuentry a {{ true; }} }}; done\n"
                                  + ENTRY,
    }


def grub_attacks() -> dict[str, dict[str, bytes]]:
    big = doubled()
    lines = LIMITS.max_config_lines
    cases = {
        # one command, megabytes of work, repeated until the step budget
        "double-then-set": big + _loop('set b="$a"'),
        "double-then-echo": big + _loop('echo "$a"'),
        "double-then-split": big + doubled("s", 64 * KiB, "'x y z w'") + _loop("for w in $s; do true; done"),
        "many-parts-one-word": doubled("a", 1 * KiB) + _loop("set b=" + "$a" * 1000),
        "echo-expansion-bomb": doubled("a", 1 * MiB) + _loop("echo $a $a $a $a $a $a $a $a"),
        "search-hints-loop": _loop("search --no-floppy --fs-uuid --set=root "
                                   + " ".join(["--hint=hd0,msdos1"] * 60_000) + " 0000"),
        "search-90k-hints": _loop("search --no-floppy --fs-uuid --set=root "
                                  + " ".join(["--hint=hd0,msdos1"] * 90_000) + " 0000"),
        "function-recursion": "function f { f; f; }\nf\n" + ENTRY,
        # what is held: values, titles, messages
        "double-as-titles": big + f"for i in {_numbers(400)}; do\n  menuentry \"$a$i\" {{ true; }}\ndone\n",
        "many-big-variables": big + f"for i in {_numbers(LIMITS.max_variables - 100)}; do set v$i=\"$a\"; done\n",
        # lines: indexing, parsing, re-reading
        "newlines-4MiB": "\n" * (4 * MiB - 200) + ENTRY,
        "blank-lines-at-limit": "\n" * (lines - 10) + ENTRY,
        "unknown-commands-at-limit": "x\n" * (lines - 10) + ENTRY,
        "open-braces-at-limit": "if true; then\n" * (lines - 10) + ENTRY,
        "quote-of-newlines": 'echo "' + "\n" * (lines - 10) + '"\n' + ENTRY,
        "one-line-4MiB": "echo " + "y" * (4 * MiB - 300) + "\n" + ENTRY,
        "source-comments-x100": f"for i in {_numbers(100)}; do source /grub/comments.cfg; done\n" + ENTRY,
        "source-lines-x100": f"for i in {_numbers(100)}; do source /grub/lines.cfg; done\n" + ENTRY,
    }
    cases.update(parse_attacks())
    cases.update(command_attacks())
    cases["function-bodies"] = _numbered(cases["function-bodies"])
    out = {name: {CONFIG_PATH["grub"]: text.encode()} for name, text in cases.items()}
    out["wildcard-big-directory-loop"] = {
        CONFIG_PATH["grub"]: ("regexp x x\n" + _loop("for f in /many/*x*; do true; done")).encode(),
        **{f"/many/{'f' * 200}{n:05}": b"" for n in range(2000)},
    }
    out["blscfg-many-large-entries"] = {
        CONFIG_PATH["grub"]: (doubled("a", 4 * KiB) + "blscfg\n" + _loop("blscfg")).encode(),
        **{f"/loader/entries/e{n:04}.conf": (f"title e{n}\nlinux /vmlinuz\n" + f"options $a {'o' * 200}\n" * 60).encode()
           for n in range(LIMITS.max_config_files)},
        "/vmlinuz": b"kernel",
    }
    out["source-comments-x100"]["/grub/comments.cfg"] = ("#" * 79 + "\n").encode() * (4 * MiB // 80)
    out["source-lines-x100"]["/grub/lines.cfg"] = ("true" + " " * 75 + "\n").encode() * (lines - 10)
    return out


def _numbered(text: str) -> str:
    """``{n}`` in ``text`` replaced by 0, 1, 2 … in order (distinct names per line)."""
    pieces = text.split("{n}")
    return "".join(p + (str(i) if i + 1 < len(pieces) else "") for i, p in enumerate(pieces))


def legacy_attacks() -> dict[str, dict[str, bytes]]:
    entry = b"title t\nkernel /vmlinuz\n"
    cases = {
        "legacy-2M-unknown-lines": b"x\n" * (2 * MiB - 64) + entry,
        "legacy-unknown-at-limit": b"x\n" * (LIMITS.max_config_lines - 10) + entry,
        "legacy-titles-at-limit": b"title t\nroot (hd0,0)\n" * (LIMITS.max_menu_entries - 1),
        "legacy-long-lines": (b"title " + b"t" * MiB + b"\nkernel /vmlinuz\n") * 3,
        # warnings: every unknown line of the limit's count, each as long as the bytes allow
        "legacy-long-unknown-lines": (b"x" * (4 * MiB // LIMITS.max_config_lines - 12) + b" y\n")
        * (LIMITS.max_config_lines - 10) + entry,
        # one entry of every line the limit allows, run (the runs spend from the config's budget)
        "legacy-one-long-entry": b"title t\n" + b"root (hd9,0)\n" * (LIMITS.max_config_lines - 10) + b"kernel /vmlinuz\n",
    }
    return {name: {CONFIG_PATH["legacy"]: data} for name, data in cases.items()}


def syslinux_attacks() -> dict[str, dict[str, bytes]]:
    label = b"DEFAULT l\nLABEL l\n  KERNEL /vmlinuz\n"
    path = CONFIG_PATH["syslinux"]
    return {
        "syslinux-include-fanout": {path: label + b"INCLUDE part.cfg\n" * LIMITS.max_config_files,
                                    "/syslinux/part.cfg": b"x\n" * (8 * KiB)},
        "syslinux-include-itself": {path: label + b"INCLUDE syslinux.cfg\n" * 4},
        "syslinux-append-1MiB": {path: label + b"  APPEND " + b"a" * MiB + b"\n"},
        "syslinux-lines-4MiB": {path: label + b"\n" * (4 * MiB - 64)},
    }


def sdboot_attacks() -> dict[str, dict[str, bytes]]:
    """systemd-boot: entry files at the edges of LIMITS (count, bytes, lines)."""
    entries = "/loader/entries"
    kernel = {"/vmlinuz": b"kernel"}
    lines = LIMITS.max_config_lines - 10
    per_file = LIMITS.max_entries_bytes // LIMITS.max_config_files - 64
    return {
        "sdboot-options-lines-at-limit": {f"{entries}/a.conf": b"title a\nlinux /vmlinuz\n"
                                          + (b"options " + b"o" * (4 * MiB // lines - 10) + b"\n") * lines, **kernel},
        "sdboot-options-lines-over": {f"{entries}/a.conf": b"linux /vmlinuz\n" + b"options o\n" * (4 * MiB // 10 - 8), **kernel},
        "sdboot-carriage-returns": {f"{entries}/a.conf": b"linux /vmlinuz\n" + b"\r" * (4 * MiB - 64), **kernel},
        "sdboot-many-large-entries": {**{f"{entries}/e{n:04}.conf": b"linux /vmlinuz\noptions " + b"o" * per_file + b"\n"
                                         for n in range(LIMITS.max_config_files)}, **kernel},
        "sdboot-many-line-entries": {**{f"{entries}/e{n:04}.conf": b"linux /vmlinuz\n" + b"title t\n" * (per_file // 8)
                                        for n in range(LIMITS.max_config_files)}, **kernel},
        "sdboot-one-line-4MiB": {f"{entries}/a.conf": b"linux /vmlinuz\noptions " + b"o" * (4 * MiB - 64) + b"\n",
                                 CONFIG_PATH["sdboot"]: b"x" * (4 * MiB - 64), **kernel},
    }


def all_attacks() -> list[tuple[str, str, dict[str, bytes]]]:
    """(kind, name, files) for every case."""
    return ([("grub", n, f) for n, f in grub_attacks().items()]
            + [("legacy", n, f) for n, f in legacy_attacks().items()]
            + [("syslinux", n, f) for n, f in syslinux_attacks().items()]
            + [("sdboot", n, f) for n, f in sdboot_attacks().items()])


def write_tree(top: Path, files: dict[str, bytes]) -> None:
    for path, data in files.items():
        target = top / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


CHILD = """
import json, sys, time
sys.path.insert(0, sys.argv[3])
from dirfs import DirFileSystem, device_map
from guestboot.errors import GuestbootError
kind, top = sys.argv[1], sys.argv[2]
if kind == "grub":
    from guestboot.boot.grub2 import evaluate
elif kind == "legacy":
    from guestboot.boot.legacy import evaluate
elif kind == "sdboot":
    from guestboot.boot.sdboot import evaluate
else:
    from guestboot.boot.syslinux import evaluate
paths = json.loads(sys.argv[4])
start = time.perf_counter()
try:
    menu = evaluate(device_map(**{"hd0,msdos1": DirFileSystem(top)}), "hd0,msdos1", paths[kind])
    result = {"entries": len(menu.entries)}
    for entry in menu.entries:  # each entry run, as listing them does: they share the budgets
        try:
            if entry.run is not None:
                entry.run()
        except GuestbootError as err:
            if "max_config" in str(err) or "max_script" in str(err):
                raise
except GuestbootError as err:
    result = {"error": type(err).__name__, "typed": True, "message": str(err)[:300]}
except BaseException as err:
    result = {"error": type(err).__name__, "typed": False, "message": str(err)[:300]}
result["seconds"] = time.perf_counter() - start
# VmHWM: this program's peak RSS (ru_maxrss would include the forking parent's, kept over exec)
with open("/proc/self/status") as status:
    hwm = [line.split()[1] for line in status if line.startswith("VmHWM:")]
result["peak_mib"] = int(hwm[0]) / 1024 if hwm else 0.0
print(json.dumps(result))
"""


def run_in_child(kind: str, top: Path, *, as_mib: int = 512, timeout: float = 60.0) -> dict:
    """Evaluate the config under ``top`` in a fresh interpreter limited to ``as_mib`` of
    address space; its result with "seconds" (the evaluation, start-up left out) and
    "peak_mib" (the child's own peak RSS, start-up included), or {"hang": True} when it
    outlived ``timeout``."""
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (as_mib * MiB, as_mib * MiB))

    tests = str(Path(__file__).resolve().parent)
    start = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-c", CHILD, kind, str(top), tests, json.dumps(CONFIG_PATH)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, preexec_fn=limit, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    try:
        out, err = child.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        child.kill()
        child.communicate()
        return {"hang": True, "seconds": time.perf_counter() - start}
    try:
        return json.loads(out.decode().strip().splitlines()[-1])
    except (IndexError, ValueError):
        return {"error": "crashed", "typed": False, "message": err.decode(errors="replace")[-300:],
                "seconds": time.perf_counter() - start, "peak_mib": 0.0}
