"""End to end: real guest images in, a real Debian kernel booted in QEMU out.

The images come from tests/builders/guest_images.py (sgdisk/sfdisk + mke2fs -d from
trees that are the expected answer). Two QEMU boots in this file, both of files the
command line tools wrote:

1. what ``guestboot-pygrub`` writes for libxl (simple0) on the Debian 12 GPT image: the
   entry GRUB boots by default ("1>1"), its kernel and initrd byte for byte, and the
   guest's /proc/cmdline equal to that entry's args;
2. what ``guestboot extract`` writes for the 40_custom entry with two initrds: the guest
   unpacks both archives (GRUB-style concatenation) and receives the command line
   ``extract`` printed, BOOT_IMAGE= included.

The remaining tests read the same images without booting.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from prereq import unavailable

from builders.boot import boot, qemu_available
from builders.guest_images import DEBIAN_ROOT_UUID, GuestImage, session_image
from builders.initramfs import ToolMissing

pytestmark = pytest.mark.slow

CLI_TIMEOUT = 120
IMAGES = ("debian12-gpt", "centos6-mbr", "centos7-mbr")




def image(tmp_path_factory, name: str) -> GuestImage:
    try:
        return session_image(tmp_path_factory, name)
    except ToolMissing as err:
        unavailable(str(err))


@pytest.fixture(scope="session")
def debian(tmp_path_factory) -> GuestImage:
    return image(tmp_path_factory, "debian12-gpt")


@pytest.fixture(scope="session", params=IMAGES)
def any_image(request, tmp_path_factory) -> GuestImage:
    return image(tmp_path_factory, request.param)


@pytest.fixture(scope="session")
def qemu() -> None:
    missing = qemu_available()
    if missing:
        unavailable(missing)


def run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *argv], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=CLI_TIMEOUT, check=False)


def guestboot(*argv: str) -> subprocess.CompletedProcess:
    return run("guestboot", *argv)


def guestboot_pygrub(*argv: str) -> subprocess.CompletedProcess:
    return run("guestboot.cli.pygrub", *argv)


def ok(done: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert done.returncode == 0, f"exit {done.returncode}: {done.stderr.decode(errors='replace')}"
    return done


# --- the acceptance test: libxl's call, then boot what it produced ---------------------


def test_pygrub_frontend_simple0_boots_grub_default(debian, qemu, tmp_path):
    default = debian.default
    assert default.path == "1>1"  # GRUB_DEFAULT="1>1": second entry of the submenu
    out_dir = tmp_path / "pygrub-out"
    out_dir.mkdir()
    result = tmp_path / "result"
    result.write_bytes(b"")  # libxl creates --output before it runs the boot loader

    done = ok(guestboot_pygrub("--output-format=simple0", f"--output-directory={out_dir}",
                               f"--output={result}", str(debian.path)))

    assert done.stdout == b"", "everything goes to --output"
    names = sorted(os.listdir(out_dir))
    assert len(names) == 2, names
    kernel_name, ramdisk_name = names
    assert re.fullmatch(r"boot_kernel\.[a-z0-9_]{8}", kernel_name), kernel_name
    assert re.fullmatch(r"boot_ramdisk\.[a-z0-9_]{8}", ramdisk_name), ramdisk_name
    # pygrub's format_simple with "\0": kernel, ramdisk, args, each ended by the
    # separator, and one more separator at the end; the args carry no BOOT_IMAGE=.
    expected = (f"kernel {out_dir}/{kernel_name}\0ramdisk {out_dir}/{ramdisk_name}\0"
                f"args {default.args}\0\0").encode()
    assert result.read_bytes() == expected
    kernel, ramdisk = out_dir / kernel_name, out_dir / ramdisk_name
    assert kernel.read_bytes() == debian.kernel_bytes(default)
    assert ramdisk.read_bytes() == debian.initrd_bytes(default)

    report = boot(kernel, ramdisk, default.args)
    print(f"QEMU/TCG boot took {report.seconds:.1f} s")
    assert report.cmdline == default.args
    assert report.initrds == [Path(default.initrds[0]).name]


def test_extract_boots_two_concatenated_initrds(debian, qemu, tmp_path):
    entry = debian.entry("2")
    assert entry.id == "custom-ucode" and len(entry.initrds) == 2
    out = tmp_path / "extract-out"

    done = ok(guestboot("extract", str(debian.path), "-o", str(out), "--entry", entry.id))

    cmdline = done.stdout.decode()
    assert cmdline == entry.cmdline + "\n"
    assert cmdline.startswith(f"BOOT_IMAGE={entry.kernel} ")
    assert (out / "kernel").read_bytes() == debian.kernel_bytes(entry)
    # GRUB loads the initrds one after the other (4-byte aligned; ucode.img is a
    # multiple of 512 bytes, so nothing is inserted between them).
    assert (out / "initrd").read_bytes() == debian.initrd_bytes(entry)

    report = boot(out / "kernel", out / "initrd", cmdline.rstrip("\n"))
    print(f"QEMU/TCG boot took {report.seconds:.1f} s")
    assert report.cmdline == entry.cmdline
    # both archives were unpacked: the add-on's marker and the main initrd's
    assert report.initrds == sorted(["ucode", Path(entry.initrds[1]).name])


# --- the same images, no boot -----------------------------------------------------------


def test_extract_json_default(any_image, tmp_path):
    default = any_image.default
    out = tmp_path / "out"

    data = json.loads(ok(guestboot("extract", str(any_image.path), "-o", str(out), "--json")).stdout)

    assert data["entry"]["title"] == default.title
    assert data["entry"]["id"] == default.id
    assert data["entry"]["path"] == default.path
    assert data["args"] == default.args
    assert data["cmdline"] == default.cmdline
    assert Path(data["kernel"]) == out / "kernel"
    assert Path(data["initrd"]) == out / "initrd"
    assert (out / "kernel").read_bytes() == any_image.kernel_bytes(default)
    assert (out / "initrd").read_bytes() == any_image.initrd_bytes(default)
    assert sorted(os.listdir(out)) == ["initrd", "kernel"]


@pytest.mark.parametrize("spec_of", ["path", "id", "title"])
def test_extract_every_entry_by_spec(debian, tmp_path, spec_of):
    """--entry takes what GRUB's ``default`` takes: an index path, an id, a title; a
    submenu entry is named through its submenu (``submenu>entry``)."""
    submenu_title = "Advanced options for Debian GNU/Linux"
    submenu_id = f"gnulinux-advanced-{DEBIAN_ROOT_UUID}"
    for n, entry in enumerate(debian.entries):
        inside = ">" in entry.path
        if spec_of == "path":
            spec = entry.path
        elif spec_of == "id":
            spec = f"{submenu_id}>{entry.id}" if inside else entry.id
        else:
            spec = f"{submenu_title}>{entry.title}" if inside else entry.title
        out = tmp_path / f"out{n}"
        data = json.loads(ok(guestboot("extract", str(debian.path), "-o", str(out), "--entry", spec,
                                       "--json")).stdout)
        assert (data["entry"]["path"], data["cmdline"]) == (entry.path, entry.cmdline), spec
        assert (out / "initrd").read_bytes() == debian.initrd_bytes(entry), spec


def test_list_marks_default(any_image):
    lines = ok(guestboot("list", str(any_image.path))).stdout.decode().splitlines()
    marked = [line for line in lines if line.startswith("*")]
    # the default entry, and on a submenu path every submenu leading to it
    assert len(marked) == any_image.default.path.count(">") + 1, lines
    assert any_image.default.title in marked[-1], lines
    for entry in any_image.entries:
        assert any(entry.title in line for line in lines), (entry.title, lines)


def test_cat_config_and_ls_boot_partition(any_image):
    partition, _, config = any_image.config.partition(":")
    done = ok(guestboot("cat", str(any_image.path), any_image.config))
    assert done.stdout == (any_image.trees[partition] / config.lstrip("/")).read_bytes()

    header, *listing = ok(guestboot("ls", str(any_image.path), f"{partition}:/")).stdout.decode().splitlines()
    assert header == f"(hd0,{partition})/:"  # which device was listed
    names = {line.split(None, 2)[2].split(" -> ")[0].rstrip("/") for line in listing}
    expected = set(os.listdir(any_image.trees[partition])) | {"lost+found"}
    assert names == expected


@pytest.mark.parametrize("name", ["debian12-gpt", "centos7-mbr"])
def test_builder_configs_pass_grub_script_check(tmp_path_factory, name):
    """The grub.cfg files the builders write are valid GRUB script for GRUB's own parser."""
    script_check = shutil.which("grub-script-check")
    if not script_check:
        unavailable("grub-script-check not found (apt-get install grub-common)")
    built = image(tmp_path_factory, name)
    partition, _, config = built.config.partition(":")
    done = subprocess.run([script_check, str(built.trees[partition] / config.lstrip("/"))],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=CLI_TIMEOUT, check=False)
    assert done.returncode == 0, done.stdout.decode(errors="replace")
