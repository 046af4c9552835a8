"""Guest symlinks: a link to /etc/passwd, a ``..`` chain, a link to a directory above
itself resolve INSIDE the guest (the bytes out are the guest's file, never the host's);
loops, self-links and chains longer than Linux's 40 hops end in a typed error; a link to
a path only the host has is not found. One image per file system that stores symlinks,
one GRUB 2 entry per case, chosen with --entry."""

from __future__ import annotations

import pytest

from hostile.configs import GUEST_FILES, GUEST_PASSWD, GUEST_SHADOW
from hostile.harness import expect_error, expect_kernel, extract
from hostile.images import WITH_SYMLINKS, Link

HOPS = 40  # limits.max_symlink_hops, Linux's own bound

# (entry id, kernel path, guest bytes it resolves to or the exit codes it may fail with)
CASES = [
    ("absolute-to-passwd", "/boot/l-passwd", GUEST_PASSWD),
    ("dotdot-chain-to-shadow", "/boot/l-chain", GUEST_SHADOW),
    ("through-dir-link-to-parent", "/boot/up/boot/up/boot/up/etc/passwd", GUEST_PASSWD),
    ("through-dir-link-to-root", "/boot/root/boot/root/boot/root/etc/shadow", GUEST_SHADOW),
    ("chain-within-hops", "/boot/hop-01", GUEST_PASSWD),
    ("loop-of-two", "/boot/loop-a", {3, 5, 6}),
    ("self-loop", "/boot/self", {3, 5, 6}),
    ("chain-over-hops", "/boot/long-01", {5, 6}),
    ("dangling-to-host-file", "/boot/l-host", {6}),
    ("dir-link-loop", "/boot/dloop/x/vmlinuz", {3, 5, 6}),
]


def _tree() -> dict[str, object]:
    tree: dict[str, object] = dict(GUEST_FILES)
    tree.update({
        "/boot/l-passwd": Link("/etc/passwd"),
        "/boot/l-chain": Link("../../../../../../../../etc/shadow"),
        "/boot/up": Link(".."),
        "/boot/root": Link("/"),
        "/boot/loop-a": Link("loop-b"),
        "/boot/loop-b": Link("loop-a"),
        "/boot/self": Link("self"),
        "/boot/l-host": Link("/etc/hostname"),
        "/boot/dloop": Link("dloop/x"),
    })
    for n in range(1, HOPS // 2 + 1):  # 20 hops, the last to the guest's passwd
        tree[f"/boot/hop-{n:02d}"] = Link(f"hop-{n + 1:02d}" if n < HOPS // 2 else "/etc/passwd")
    for n in range(1, HOPS + 6):  # 45 hops
        tree[f"/boot/long-{n:02d}"] = Link(f"long-{n + 1:02d}" if n < HOPS + 5 else "/etc/passwd")
    menu = "".join(f"menuentry '{name}' --id {name} {{\n  linux {path} ro\n}}\n" for name, path, _ in CASES)
    tree["/boot/grub/grub.cfg"] = ("set default=0\n" + menu).encode()
    return tree


@pytest.mark.parametrize("kind", WITH_SYMLINKS)
@pytest.mark.parametrize("name,path,expected", CASES, ids=[case[0] for case in CASES])
def test_symlink(images, arena, kind, name, path, expected):
    image = images.fs("symlinks", kind, _tree())
    result = extract(arena, image, "--entry", name)
    if isinstance(expected, bytes):
        expect_kernel(result, expected)
    else:
        expect_error(result, expected)
