"""Configs written to exhaust the evaluator: source/configfile/INCLUDE self- and mutual
recursion, function recursion, a million menu entries from a few lines, loops that never
end, values that double, a 100 MiB config (a sparse file: cheap to build, costly to read),
megabytes of empty lines, thousands of BLS entries. Each must end, inside the case's
time and memory, in a typed error (usually a limit, exit 5) or a correct safe result
(the guest's kernel). Generated over the config languages that have each construct."""

from __future__ import annotations

import pytest

from hostile.configs import GUEST_FILES, GUEST_KERNEL
from hostile.harness import expect_error, expect_safe, extract
from hostile.images import Sparse

ENTRY = "menuentry 'ok' {\n  linux /boot/vmlinuz ro\n}\n"


def _decades(levels: int) -> str:
    """Functions m0 (one entry) .. mN (10^N entries), then a call of mN."""
    text = "function m0 {\n  menuentry e {\n    linux /boot/vmlinuz\n  }\n}\n"
    for n in range(1, levels + 1):
        text += f"function m{n} {{\n" + f"  m{n - 1}\n" * 10 + "}\n"
    return text + f"m{levels}\n"


GRUB2 = {
    "source-self": {"/boot/grub/grub.cfg": ENTRY + "source /boot/grub/grub.cfg\n"},
    "source-mutual": {"/boot/grub/grub.cfg": ENTRY + "source /boot/grub/a.cfg\n",
                      "/boot/grub/a.cfg": "source /boot/grub/b.cfg\n", "/boot/grub/b.cfg": "source /boot/grub/a.cfg\n"},
    "configfile-self": {"/boot/grub/grub.cfg": "configfile /boot/grub/grub.cfg\n" + ENTRY},
    "configfile-mutual": {"/boot/grub/grub.cfg": "configfile /boot/grub/a.cfg\n",
                          "/boot/grub/a.cfg": "configfile /boot/grub/grub.cfg\n" + ENTRY},
    "configfile-entry-self": {"/boot/grub/grub.cfg": "menuentry loop {\n  configfile /boot/grub/grub.cfg\n}\n"},
    "function-recursion": {"/boot/grub/grub.cfg": ENTRY + "function f {\n  f\n}\nf\n"},
    "function-mutual": {"/boot/grub/grub.cfg": ENTRY + "function f {\n  g\n}\nfunction g {\n  f\n}\nf\n"},
    "function-fork": {"/boot/grub/grub.cfg": ENTRY + "function f {\n  f; f\n}\nf\n"},
    "million-menuentries": {"/boot/grub/grub.cfg": _decades(6)},
    "million-submenus": {"/boot/grub/grub.cfg": _decades(6).replace("menuentry e {\n    linux /boot/vmlinuz\n  }",
                                                                     "submenu s {\n    true\n  }")},
    "while-forever": {"/boot/grub/grub.cfg": ENTRY + "while true; do\n  true\ndone\n"},
    "doubling-value": {"/boot/grub/grub.cfg": ENTRY + "x=ab\n" + "x=$x$x\n" * 40},
    "doubling-titles": {"/boot/grub/grub.cfg": "x=ab\n" + "x=$x$x\n" * 18 + "for i in 1 2 3 4 5 6 7 8 9; do\n"
                        "  menuentry \"$x$i\" {\n    linux /boot/vmlinuz\n  }\ndone\n"},
    "split-in-loop": {"/boot/grub/grub.cfg": ENTRY + "x='a b '\n" + "x=\"$x$x\"\n" * 17 + "while true; do\n"
                      "  for w in $x; do\n    true\n  done\ndone\n"},
    "sparse-100MiB": {"/boot/grub/grub.cfg": Sparse(100 << 20)},
    "newlines-4MiB": {"/boot/grub/grub.cfg": ENTRY + "\n" * ((4 << 20) - len(ENTRY) - 1)},
    "source-big-comment-100x": {"/boot/grub/grub.cfg": ENTRY + "source /boot/grub/c.cfg\n" * 100,
                                "/boot/grub/c.cfg": "#" + "c" * (1 << 20) + "\n"},
    "deep-if-nesting": {"/boot/grub/grub.cfg": "if true; then\n" * 5000 + ENTRY + "fi\n" * 5000},
    "deep-submenu-nesting": {"/boot/grub/grub.cfg": "submenu s {\n" * 200 + ENTRY + "}\n" * 200},
    "regexp-backtracking": {"/boot/grub/grub.cfg": ENTRY + "x=" + "a" * 30000 + "\n"
                            "while regexp '(a*)*b' \"$x\"; do\n  true\ndone\nregexp '(a*)*b' \"$x\"\n"},
}

LEGACY = {
    "titles-600k": {"/boot/grub/menu.lst": b"default 0\n" + b"title t\n kernel /boot/vmlinuz\n" * 2 + b"title\n" * 600_000},
    "unknown-lines-4MiB": {"/boot/grub/menu.lst": b"title t\n kernel /boot/vmlinuz\n" + b"x\n" * ((4 << 20) // 2 - 20)},
    "sparse-100MiB": {"/boot/grub/menu.lst": Sparse(100 << 20)},
    "configfile-self": {"/boot/grub/menu.lst": b"configfile /boot/grub/menu.lst\ntitle t\n kernel /boot/vmlinuz\n"},
    "default-huge-number": {"/boot/grub/menu.lst": b"default 99999999999999999999999999\ntitle t\n kernel /boot/vmlinuz\n"},
}

SYSLINUX = {
    "include-self": {"/boot/extlinux/extlinux.conf": b"INCLUDE extlinux.conf\nDEFAULT t\nLABEL t\n KERNEL /boot/vmlinuz\n"},
    "include-mutual": {"/boot/extlinux/extlinux.conf": b"DEFAULT t\nLABEL t\n KERNEL /boot/vmlinuz\nINCLUDE a.conf\n",
                       "/boot/extlinux/a.conf": b"INCLUDE b.conf\n", "/boot/extlinux/b.conf": b"INCLUDE a.conf\n"},
    "include-fan-out": {"/boot/extlinux/extlinux.conf": b"DEFAULT t\nLABEL t\n KERNEL /boot/vmlinuz\n" + b"INCLUDE a.conf\n" * 50,
                        "/boot/extlinux/a.conf": b"INCLUDE b.conf\n" * 50, "/boot/extlinux/b.conf": b"# " + b"c" * 60000 + b"\n"},
    "config-self": {"/boot/extlinux/extlinux.conf": b"CONFIG /boot/extlinux/extlinux.conf\nDEFAULT t\nLABEL t\n KERNEL /boot/vmlinuz\n"},
    "labels-300k": {"/boot/extlinux/extlinux.conf": b"DEFAULT t\nLABEL t\n KERNEL /boot/vmlinuz\n" + b"LABEL x\n" * 300_000},
    "sparse-100MiB": {"/boot/extlinux/extlinux.conf": Sparse(100 << 20)},
}

BLS = {
    "3000-entries": {f"/boot/loader/entries/e{n:05d}.conf": b"title t\nlinux /vmlinuz\n" for n in range(3000)},
    "sparse-100MiB-entry": {"/boot/loader/entries/a.conf": Sparse(100 << 20),
                            "/boot/loader/entries/b.conf": b"title t\nlinux /vmlinuz\n"},
    "4MiB-of-options": {"/boot/loader/entries/a.conf": b"title t\nlinux /vmlinuz\n" + b"options " + b"x" * (4 << 20) + b"\n"},
}

CASES = [(f"{lang}-{name}", lang, tree) for lang, table in
         (("grub2", GRUB2), ("legacy", LEGACY), ("syslinux", SYSLINUX), ("bls", BLS)) for name, tree in table.items()]


def _tree(tree: dict[str, object]) -> dict[str, object]:
    files = {**GUEST_FILES, "/vmlinuz": GUEST_KERNEL}
    for path, content in tree.items():
        files[path] = content.encode() if isinstance(content, str) else content
    return files


@pytest.mark.parametrize("name,language,tree", CASES, ids=[case[0] for case in CASES])
def test_config_bomb(images, arena, name, language, tree):
    image = images.fs(f"bomb-{name}", "ext4", _tree(tree))
    result = extract(arena, image)
    if result.rc != 0:
        expect_error(result, {3, 5, 6, 7})
    expect_safe(result, GUEST_KERNEL)


@pytest.mark.parametrize("name", ["function-recursion", "million-menuentries", "sparse-100MiB", "while-forever"])
def test_config_bomb_without_the_sandbox(images, arena, name):
    """The evaluator's own bounds, with no rlimit of the sandbox to fall back on."""
    image = images.fs(f"bomb-grub2-{name}", "ext4", _tree(GRUB2[name]))
    result = extract(arena, image, sandbox=False)
    if result.rc != 0:
        expect_error(result, {3, 5, 6, 7})
    expect_safe(result, GUEST_KERNEL)
