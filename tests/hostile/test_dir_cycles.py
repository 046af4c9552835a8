"""Directory cycles: ext4 directories hard-linked into themselves and to the root with
debugfs ``link`` (what no kernel allows, what a hostile image can hold). A path around the
cycle is still a path (it resolves to the guest's file, or stops at the path limit); what
walks directories (GRUB wildcards, ``ls``, ``inspect``, the config search, the no-config
fallback scanning /boot) must end within its budget, never loop."""

from __future__ import annotations

import subprocess

import pytest

from hostile import configs
from hostile.configs import GUEST_FILES, GUEST_INITRD, GUEST_KERNEL
from hostile.harness import expect_error, expect_kernel, extract, guestboot
from hostile.images import altered

LINKS = ("link /boot /boot/loop", "link / /boot/root", "link /boot/grub /boot/grub/again")


def _cycled(base, work):
    out = altered(base, work / "cycles.img", [])
    for request in LINKS:
        subprocess.run(["debugfs", "-w", "-R", request, str(out)], check=True, capture_output=True)
    listing = subprocess.run(["debugfs", "-R", "ls -l /boot/loop/root/boot", str(out)], check=True, capture_output=True,
                             text=True).stdout
    assert "vmlinuz" in listing, listing  # debugfs itself walks the cycle
    return out


def _image(images, name, tree):
    base = images.fs(f"cycle-{name}", "ext4", tree)
    return images.derived(f"cycle-{name}", lambda work: _cycled(base, work))


AROUND = [
    ("loop-10-times", "/boot/" + "loop/" * 10 + "vmlinuz", GUEST_KERNEL),
    ("root-and-back", "/boot/root/boot/loop/root/boot/root/etc/passwd", configs.GUEST_PASSWD),
    ("dotdot-inside-cycle", "/boot/loop/loop/../loop/vmlinuz", GUEST_KERNEL),
    ("past-the-path-limit", "/boot/" + "loop/" * 300 + "vmlinuz", {5, 6}),
]


@pytest.mark.parametrize("name,path,expected", AROUND, ids=[a[0] for a in AROUND])
def test_path_around_a_cycle(images, arena, name, path, expected):
    image = _image(images, f"around-{name}", {**GUEST_FILES, **configs.entry("grub2", kernel=path, initrd=None)})
    result = extract(arena, image)
    if isinstance(expected, bytes):
        expect_kernel(result, expected)
    else:
        expect_error(result, expected)


WALKERS = {
    # GRUB wildcards: each * a directory level; the cycles give several names per level
    "grub-wildcard": {"/boot/grub/grub.cfg": b"insmod regexp\nmenuentry w {\n  linux /boot/*/*/*/*/*/*/*/*/*/*/vmlinuz\n}\n"},
    "grub-for-over-glob": {"/boot/grub/grub.cfg": b"insmod regexp\nfor f in /boot/*/*/*/*/*/*/*/*/*/*/*/*; do\n"
                           b"  menuentry \"$f\" {\n    linux /boot/vmlinuz\n  }\ndone\n"},
    "no-config": {},  # the fallback scans /boot and / for vmlinuz-*
}


@pytest.mark.parametrize("walker", sorted(WALKERS))
def test_walkers_end(images, arena, walker):
    files = {**GUEST_FILES, **WALKERS[walker]}
    if walker == "no-config":
        files = {"/boot/vmlinuz-6.1.0-1-amd64": GUEST_KERNEL, "/boot/initrd.img-6.1.0-1-amd64": GUEST_INITRD,
                 "/boot/grub/unicode.pf2": b"font"}
    image = _image(images, f"walk-{walker}", files)
    result = extract(arena, image)
    if result.rc != 0:
        expect_error(result, {5, 6, 7})
    else:
        assert (arena.out / "kernel").read_bytes() == GUEST_KERNEL


@pytest.mark.parametrize("command", [("ls", "/boot/loop/loop/root"), ("inspect",), ("list",)])
def test_commands_on_a_cyclic_image(images, arena, command):
    image = _image(images, "commands", configs.guest("grub2"))
    result = guestboot(arena, command[0], str(image), *command[1:])
    assert result.rc in (0, 5), result
