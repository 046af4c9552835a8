"""Image formats that name other files: a qcow2 backing file, a VHD differencing parent,
a VMDK extent, pointing at host files (/etc/shadow), protocols QEMU would open (json:,
nbd://, file:), ``..`` out of the allowed directory, symlinks out of it, a FIFO, the
image itself. Without --allow-backing-dir every such name is refused (exit 4); with it,
only a regular file inside the directory is opened (the control case extracts the
guest's kernel through the chain), everything else is a typed error. Overlays are made
by qemu-img (qcow2, VMDK descriptor) from a real mke2fs disk; VHD parents as
builders.image_formats makes them (no Debian tool writes differencing VHDs)."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from builders.image_formats import vhd_differencing

from hostile import configs
from hostile.configs import GUEST_INITRD, GUEST_KERNEL
from hostile.harness import expect_error, expect_kernel, extract

SIZE = 32 << 20  # the mke2fs disk the overlays sit on

# (id, name the image gives): hostile names, then the control
QCOW2_NAMES = [
    ("host-shadow", "/etc/shadow"),
    ("json-protocol", 'json:{"file.driver":"file","file.filename":"/etc/shadow"}'),
    ("nbd-url", "nbd://127.0.0.1:10809/export"),
    ("file-protocol", "file:/etc/passwd"),
    ("dotdot-out", "../host/etc/passwd"),
    ("proc-fd", "/proc/self/fd/0"),
    ("symlink-out", "link-out.raw"),
    ("symlink-up", "link-up.raw"),
    ("fifo", "fifo.raw"),
    ("itself", "overlay.img"),
    ("control", "base.raw"),
]
VHD_NAMES = [("host-shadow", "/etc/shadow"), ("dotdot-out", "..\\host\\etc\\passwd"),
             ("symlink-out", "link-out.vhd"), ("itself", "overlay.img"), ("control", "base.vhd")]
VMDK_NAMES = [("host-shadow", "/etc/shadow"), ("nbd-url", "nbd://127.0.0.1/x"), ("dotdot-out", "../host/etc/passwd"),
              ("symlink-out", "link-out.raw"), ("fifo", "fifo.raw"), ("control", "base.raw")]
MODES = ("default", "allowed")


@pytest.fixture(scope="module")
def base(images):
    return images.fs("pointers", "ext4", configs.guest("grub2"))


@pytest.fixture(scope="module")
def base_vhd(base, tmp_path_factory):
    path = tmp_path_factory.mktemp("vhd") / "base.vhd"
    subprocess.run(["qemu-img", "convert", "-q", "-f", "raw", "-O", "vpc", "-o", "subformat=dynamic", str(base), str(path)],
                   check=True, capture_output=True)
    return path


def _allowed_dir(arena, base, base_vhd=None):
    """arena/images: the bases, symlinks out, a FIFO."""
    top = arena.root / "images"
    top.mkdir()
    subprocess.run(["cp", "--sparse=always", str(base), str(top / "base.raw")], check=True)
    if base_vhd is not None:
        shutil.copyfile(base_vhd, top / "base.vhd")
    for name in ("link-out.raw", "link-out.vhd"):
        os.symlink("/etc/passwd", top / name)
    os.symlink("../host/etc/passwd", top / "link-up.raw")
    os.mkfifo(top / "fifo.raw")
    return top


def _run(arena, image, mode):
    extra = ("--allow-backing-dir", str(image.parent)) if mode == "allowed" else ()
    return extract(arena, image, *extra)


def _expect(result, mode, name):
    if name == "control" and mode == "allowed":
        expect_kernel(result, GUEST_KERNEL, GUEST_INITRD)
    elif mode == "default":
        expect_error(result, {4}, contains="another file")
    else:
        expect_error(result, {3, 4, 5, 6, 9})


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name,backing", QCOW2_NAMES, ids=[n[0] for n in QCOW2_NAMES])
def test_qcow2_backing_file(arena, base, mode, name, backing):
    top = _allowed_dir(arena, base)
    overlay = top / "overlay.img"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-u", "-b", backing, "-F", "raw", str(overlay), str(SIZE)],
                   check=True, capture_output=True)
    _expect(_run(arena, overlay, mode), mode, name)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name,parent", VHD_NAMES, ids=[n[0] for n in VHD_NAMES])
def test_vhd_parent(arena, base, base_vhd, mode, name, parent):
    top = _allowed_dir(arena, base, base_vhd)
    overlay = top / "overlay.img"
    subprocess.run(["qemu-img", "create", "-q", "-f", "vpc", "-o", "subformat=dynamic", str(overlay), str(SIZE)],
                   check=True, capture_output=True)
    vhd_differencing(overlay, base_vhd, parent)
    _expect(_run(arena, overlay, mode), mode, name)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name,extent", VMDK_NAMES, ids=[n[0] for n in VMDK_NAMES])
def test_vmdk_extent(arena, base, mode, name, extent):
    top = _allowed_dir(arena, base)
    made = top / "made.vmdk"
    subprocess.run(["qemu-img", "create", "-q", "-f", "vmdk", "-o", "subformat=monolithicFlat", str(made), str(SIZE)],
                   check=True, capture_output=True)
    text = made.read_text()
    os.unlink(made)
    os.unlink(top / "made-flat.vmdk")
    assert '"made-flat.vmdk"' in text
    descriptor = top / "overlay.img"
    descriptor.write_text(text.replace('"made-flat.vmdk"', f'"{extent}"'))
    _expect(_run(arena, descriptor, mode), mode, name)
