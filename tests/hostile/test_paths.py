"""Path traversal and host paths in config paths: a kernel or initrd path written by the
guest names a file of the GUEST, resolved inside the guest's file system (``..`` at its
root stays at its root, as in GRUB's fshelp and the kernel's path walk), never a file of
the host. Each traversal reaches a guest file whose bytes differ from every host file:
the output is that guest file, or a typed error; a path only the host has is not found.
Generated over every config language and (for GRUB 2) every file system."""

from __future__ import annotations

import pytest

from hostile import configs
from hostile.configs import GUEST_INITRD, GUEST_KERNEL, GUEST_PASSWD, GUEST_SHADOW, LANGUAGES
from hostile.harness import expect_error, expect_kernel, expect_safe, extract
from hostile.images import FILE_SYSTEMS

# (id, kernel path, guest file it must resolve to, or None: only the host has it)
TRAVERSALS = [
    ("root-parent-chain", "/../../../etc/shadow", GUEST_SHADOW),
    ("inner-parent-chain", "/boot/../../../../../etc/passwd", GUEST_PASSWD),
    ("dot-and-slashes", "//./boot/./..//etc///shadow", GUEST_SHADOW),
    ("deep-parent-chain", "/" + "../" * 100 + "etc/passwd", GUEST_PASSWD),
    ("host-only-file", "/etc/hostname", None),
    ("host-proc", "/proc/self/environ", None),
    ("host-dev", "/dev/zero", None),
]


def _expect(result, target, strict: bool) -> None:
    if target is None:
        expect_error(result, {6})
    elif strict:
        expect_kernel(result, target, GUEST_INITRD)
    else:
        expect_safe(result, target)


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("name,path,target", TRAVERSALS, ids=[t[0] for t in TRAVERSALS])
def test_kernel_path_traversal(images, arena, language, name, path, target):
    image = images.fs(f"trav-{language}-{name}", "ext4", configs.guest(language, kernel=path))
    # GRUB resolves ".." at the root to the root (its own path walk): the answer is known
    _expect(extract(arena, image), target, strict=language in ("grub2", "legacy"))


@pytest.mark.parametrize("language", LANGUAGES)
def test_component_bomb_is_a_limit(images, arena, language):
    """More components than a path may have (max_path_components): refused, not walked."""
    image = images.fs(f"trav-bomb-{language}", "ext4", configs.guest(language, kernel="/" + "../" * 5000 + "etc/passwd"))
    expect_error(extract(arena, image), {5, 6, 7})  # SYSLINUX: its line is too long first


@pytest.mark.parametrize("language", LANGUAGES)
def test_initrd_path_traversal(images, arena, language):
    image = images.fs(f"trav-initrd-{language}", "ext4",
                      configs.guest(language, initrd="/boot/../../../../etc/shadow"))
    result = extract(arena, image)
    if language in ("grub2", "legacy"):
        expect_kernel(result, GUEST_KERNEL, GUEST_SHADOW)
    elif result.rc == 0:
        expect_kernel(result, GUEST_KERNEL, GUEST_SHADOW)


@pytest.mark.parametrize("language", ["grub2", "legacy"])
def test_device_prefixed_traversal(images, arena, language):
    """``(hd0)/../..``: the device's root, then the same rule."""
    image = images.fs(f"trav-dev-{language}", "ext4", configs.guest(language, kernel="(hd0)/../../../etc/shadow"))
    expect_kernel(extract(arena, image), GUEST_SHADOW, GUEST_INITRD)


@pytest.mark.parametrize("kind", FILE_SYSTEMS)
def test_traversal_on_every_file_system(images, arena, kind):
    image = images.fs("trav-fs", kind, configs.guest("grub2", kernel="/boot/../../../../etc/shadow"))
    expect_kernel(extract(arena, image), GUEST_SHADOW, GUEST_INITRD)


@pytest.mark.parametrize("kind", FILE_SYSTEMS)
def test_host_path_on_every_file_system_is_not_found(images, arena, kind):
    image = images.fs("trav-host", kind, configs.guest("grub2", kernel="/etc/hostname"))
    expect_error(extract(arena, image), {6})


@pytest.mark.parametrize("language", LANGUAGES)
def test_control_every_language_boots_its_entry(images, arena, language):
    """The control: the same images with honest paths extract the guest's kernel, so the
    cases above fail for the path, not for the image."""
    image = images.fs(f"control-{language}", "ext4", configs.guest(language))
    expect_kernel(extract(arena, image), GUEST_KERNEL, GUEST_INITRD)
