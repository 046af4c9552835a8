"""Bootable ISO images through the whole pipeline: hybrid ISOs (isohybrid MBR, and the
GPT + EFI layout Debian's live images use) and an ISO in a GPT partition made by sgdisk;
`guestboot list`/`extract` find boot/grub/grub.cfg on the ISO and extract the real Debian
kernel byte for byte. The El Torito catalog is compared with xorriso's own report; the
real pygrub reads the Rock Ridge image as we do and lists nothing on a bare ISO without
Rock Ridge, which we read.
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

from builders import boot as boot_builder
from builders import disk as disk_builder
from builders import iso as builder
from guestboot.fs import iso9660
from guestboot.fs import path as fspath
from guestboot.source import FileSource
from prereq import need_real_pygrub, unavailable

EFI_CFG = b"search --no-floppy --label GUESTBOOT_ISO --set root\nconfigfile ($root)/boot/grub/grub.cfg\n"


def _need(tool: str, package: str) -> None:
    if shutil.which(tool) is None:
        unavailable(f"{tool} not found (apt-get install {package})")


@pytest.fixture(scope="module")
def live_tree(tmp_path_factory) -> Path:
    """The reference tree with the real Debian kernel as /live/vmlinuz."""
    for tool, package in (("xorriso", "xorriso"), ("mkfs.vfat", "dosfstools"), ("mcopy", "mtools")):
        _need(tool, package)
    if not builder.ISOHYBRID_MBR.is_file():
        unavailable(f"{builder.ISOHYBRID_MBR} not found (apt-get install isolinux)")
    try:
        kernel = boot_builder.debian_kernel().read_bytes()
    except boot_builder.ToolMissing as err:
        unavailable(str(err))
    return builder.tree(tmp_path_factory, "iso-live", many=20, kernel=kernel, initrd=os.urandom(150_000))


@pytest.fixture(scope="module")
def images(tmp_path_factory, live_tree) -> dict[str, Path]:
    work = tmp_path_factory.mktemp("iso-boot")
    efi = builder.efi_image(work / "efi.img", {"/EFI/BOOT/grub.cfg": EFI_CFG})
    found = {
        "isohybrid-mbr-no-rock-ridge": builder.hybrid(work / "mbr.iso", live_tree, None, rock_ridge=False),
        "isohybrid-gpt-efi": builder.hybrid(work / "gpt.iso", live_tree, efi),
    }
    plain = builder.build(work / "plain.iso", live_tree, builder.VARIANTS["level3"])
    rock = builder.build(work / "rock.iso", live_tree, builder.VARIANTS["rr"])
    gpt_disk = disk_builder.sgdisk_image(
        work / "gpt-disk.img", 8 * 1024 * 1024 + plain.stat().st_size + 1024 * 1024,
        ["-n", "1:2048:+4M", "-t", "1:8300", "-n", f"2:0:+{plain.stat().st_size // 1024}K", "-t", "2:8300"])
    start = int(re.search(r"First sector: (\d+)", subprocess.run(
        ["sgdisk", "-i", "2", str(gpt_disk)], capture_output=True, text=True, check=True).stdout).group(1))
    disk_builder.place_image(gpt_disk, start * 512, plain)
    found["iso-in-gpt-partition"] = gpt_disk
    found["plain"] = plain
    found["rock-ridge"] = rock
    return found


CONFIG_DEVICE = {
    "isohybrid-mbr-no-rock-ridge": "hd0",
    "isohybrid-gpt-efi": "hd0",
    "iso-in-gpt-partition": "hd0,gpt2",
    "plain": "hd0",
    "rock-ridge": "hd0",
}


def guestboot(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "guestboot", *argv], capture_output=True, timeout=120)


@pytest.mark.parametrize("name", sorted(CONFIG_DEVICE))
def test_list_finds_the_isos_grub_cfg(images, name):
    done = guestboot("list", "--json", str(images[name]))
    assert done.returncode == 0, done.stderr.decode()
    menu = json.loads(done.stdout)
    device = CONFIG_DEVICE[name]
    assert menu["config"] == f"({device})/boot/grub/grub.cfg"
    assert [(e["title"], e["id"], e["args"], e["default"]) for e in menu["entries"]] == [
        ("Live system", "live", "boot=live quiet", False),
        ("Live system (safe mode)", "safe", "boot=live nomodeset", True),
        ("Live system (found by label)", "label", "boot=live", False),
    ]
    # `search --fs-uuid` with the ISO's date-derived UUID, and `search --label`, find the
    # ISO (the whole disk first, as GRUB probes it first)
    assert [e["kernel"] for e in menu["entries"]] == [f"({device})/live/vmlinuz"] * 3


@pytest.mark.parametrize("name", ["isohybrid-mbr-no-rock-ridge", "isohybrid-gpt-efi", "iso-in-gpt-partition"])
def test_extract_copies_the_real_kernel(images, live_tree, tmp_path, name):
    out = tmp_path / "out"
    done = guestboot("extract", str(images[name]), "-o", str(out), "--json")
    assert done.returncode == 0, done.stderr.decode()
    result = json.loads(done.stdout)
    assert result["kernel_format"] == "bzImage"
    assert result["cmdline"] == "BOOT_IMAGE=/live/vmlinuz boot=live nomodeset"
    assert (out / "kernel").read_bytes() == (live_tree / "live" / "vmlinuz").read_bytes()
    assert (out / "initrd").read_bytes() == (live_tree / "live" / "initrd.img").read_bytes()


def test_hybrid_disk_and_its_first_partition_are_the_iso(images):
    done = guestboot("ls", str(images["isohybrid-mbr-no-rock-ridge"]))
    assert done.returncode == 0, done.stderr.decode()
    rows = [re.match(r"^\((\S+)\)\s+(\S+).*\suuid=(\S+) label='(.*)'", line)
            for line in done.stdout.decode().splitlines()]
    # the MBR's partition 1 starts at byte 0 and covers the ISO: the same file system
    assert [row.groups() if row else None for row in rows] == [
        ("hd0", "iso9660", builder.UUID, builder.VOLUME_ID),
        ("hd0,msdos1", "iso9660", builder.UUID, builder.VOLUME_ID),
    ]


def xorriso_boot_images(path: Path) -> list[tuple[str, bool, int, int]]:
    """(platform, bootable, load size, LBA) of each El Torito image, as xorriso reports them."""
    done = subprocess.run(["xorriso", "-indev", str(path), "-report_el_torito", "plain"], capture_output=True,
                          text=True, check=True)
    rows = []
    for line in done.stdout.splitlines():
        m = re.match(r"El Torito boot img :\s+\d+\s+(\w+)\s+([yn])\s+\S+\s+\S+\s+\S+\s+(\d+)\s+(\d+)$", line)
        if m:
            rows.append(({"BIOS": "x86", "UEFI": "efi"}[m.group(1)], m.group(2) == "y", int(m.group(3)),
                         int(m.group(4))))
    return rows


def test_el_torito_catalog_as_xorriso_reports_it(images):
    path = images["isohybrid-gpt-efi"]
    fd = os.open(path, os.O_RDONLY)
    try:
        fs = iso9660.probe(FileSource(fd, name=path.name))
        catalog = fs.boot_catalog()
        ours = [(image.platform, image.bootable, image.sector_count, image.load_rba) for image in catalog]
        assert ours == xorriso_boot_images(path)
        assert [image.media for image in catalog] == ["no emulation", "no emulation"]
        # the images are the files the catalog names
        isolinux = fspath.resolve(fs, "/isolinux/isolinux.bin").private.extents[0][0]
        efi = fspath.resolve(fs, "/efi.img").private.extents[0][0]
        assert [image.load_rba * 2048 for image in catalog] == [isolinux, efi]
    finally:
        os.close(fd)


# --- the real pygrub ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pygrub() -> str:
    return str(need_real_pygrub())


def pygrub_titles(pygrub: str, image: Path) -> subprocess.CompletedProcess:
    return subprocess.run([pygrub, "-l", "-n", str(image)], capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("name", ["rock-ridge", "isohybrid-mbr-no-rock-ridge"])
def test_pygrub_agrees_where_it_reads_the_iso(pygrub, images, name):
    """pygrub reads a Rock Ridge ISO, and (through its MBR partition at byte 0) the
    isohybrid one without Rock Ridge."""
    theirs = pygrub_titles(pygrub, images[name])
    assert theirs.returncode == 0, theirs.stderr
    titles = re.findall(r"^title: (.*)$", theirs.stdout, re.M)
    kernels = re.findall(r"^\s+kernel: (.*)$", theirs.stdout, re.M)
    ours = json.loads(guestboot("list", "--json", str(images[name])).stdout)
    assert titles == [e["title"] for e in ours["entries"]]
    assert kernels == [e["kernel"].removeprefix("(hd0)") for e in ours["entries"]]


def test_pygrub_fails_without_rock_ridge_where_we_succeed(pygrub, images):
    """A bare ISO without Rock Ridge: pygrub -l lists nothing (and exits 0)."""
    name = "plain"
    theirs = pygrub_titles(pygrub, images[name])
    assert "title:" not in theirs.stdout, theirs.stdout
    ours = guestboot("list", str(images[name]))
    assert ours.returncode == 0, ours.stderr.decode()
    assert "Live system (safe mode)" in ours.stdout.decode()


def test_efi_partition_is_the_el_torito_efi_image(images):
    """-isohybrid-gpt-basdat: the MBR (and GPT) partition of the EFI image points into the
    ISO, at the block the El Torito EFI entry names; it holds the FAT file system."""
    path = images["isohybrid-gpt-efi"]
    done = guestboot("ls", str(path))
    assert done.returncode == 0, done.stderr.decode()
    rows = {m.group(1): (m.group(2), int(m.group(3))) for m in
            re.finditer(r"^\((\S+)\)\s+(\S+)\s+start=(\d+)", done.stdout.decode(), re.M)}
    assert rows["hd0"] == ("iso9660", 0)
    fd = os.open(path, os.O_RDONLY)
    try:
        efi = [image for image in iso9660.probe(FileSource(fd, name=path.name)).boot_catalog()
               if image.platform == "efi"]
    finally:
        os.close(fd)
    assert len(efi) == 1
    esp = [name for name, (kind, start) in rows.items() if start == efi[0].load_rba * 2048]
    assert len(esp) == 1 and rows[esp[0]][0] == "vfat", rows
    cat = guestboot("cat", str(path), f"({esp[0]})/EFI/BOOT/grub.cfg")
    assert cat.returncode == 0 and cat.stdout == EFI_CFG, cat.stderr.decode()


def pygrub_extract(command: list[str], image: Path, out: Path, *options: str) -> dict[str, bytes]:
    """Run a pygrub front end with simple0 output into ``out``; the files it names, read."""
    out.mkdir(mode=0o777)
    out.chmod(0o777)  # the --runas child writes through the parent's descriptors, but be plain about it
    done = subprocess.run([*command, *options, "-q", "--output-format=simple0", f"--output-directory={out}",
                           str(image)], capture_output=True, timeout=120, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    fields = dict(item.split(b" ", 1) for item in done.stdout.split(b"\0") if b" " in item)
    return {"kernel": Path(fields[b"kernel"].decode()).read_bytes(),
            "ramdisk": Path(fields[b"ramdisk"].decode()).read_bytes(), "args": fields[b"args"]}


def test_pygrub_and_guestboot_pygrub_extract_the_same_files(pygrub, images, live_tree, tmp_path):
    theirs = pygrub_extract([pygrub], images["rock-ridge"], tmp_path / "pygrub")
    ours = pygrub_extract([sys.executable, "-m", "guestboot.cli.pygrub"], images["rock-ridge"], tmp_path / "ours")
    assert ours == theirs
    assert ours["kernel"] == (live_tree / "live" / "vmlinuz").read_bytes()


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping to another uid needs root")
def test_joliet_iso_in_the_deprivileged_child(images, live_tree, tmp_path):
    """--runas: the child reads Joliet (UCS-2) names after dropping privileges; the codec
    it needs was loaded before."""
    ours = pygrub_extract([sys.executable, "-m", "guestboot.cli.pygrub"], images["isohybrid-mbr-no-rock-ridge"],
                          tmp_path / "ours", "--runas=65534")
    assert ours["args"] == b"boot=live nomodeset"
    assert ours["ramdisk"] == (live_tree / "live" / "initrd.img").read_bytes()


def test_partition_offset_layout_reads_the_iso_twice(tmp_path):
    """Ubuntu's layout (-partition_offset 16, an appended EFI partition in a GPT): xorriso
    writes a second descriptor set so that GPT partition 1, 32 KiB into the disk, is an
    ISO 9660 file system too. Both read, and GRUB lists the same config on both."""
    for tool, package in (("xorriso", "xorriso"), ("sgdisk", "gdisk")):
        _need(tool, package)
    if not disk_builder.ISOHYBRID_MBR.is_file():
        unavailable(f"{disk_builder.ISOHYBRID_MBR} not found (apt-get install isolinux)")
    tree = tmp_path / "tree"
    (tree / "boot" / "grub").mkdir(parents=True)
    (tree / "boot" / "grub" / "grub.cfg").write_text("menuentry 'Ubuntu' {\n\tlinux /casper/vmlinuz\n}\n")
    (tree / "casper").mkdir()
    (tree / "casper" / "vmlinuz").write_bytes(b"not a kernel" * 100)
    image = disk_builder.hybrid_iso(tmp_path / "ubuntu-like.iso", tree, gpt="appended")
    done = guestboot("ls", str(image))
    assert done.returncode == 0, done.stderr.decode()
    rows = {m.group(1): (m.group(2), int(m.group(3)), m.group(4)) for m in
            re.finditer(r"^\((\S+)\)\s+(\S+)\s+start=(\d+).*?uuid=(\S+)", done.stdout.decode(), re.M)}
    assert rows["hd0"][:2] == ("iso9660", 0)
    assert rows["hd0,gpt1"][:2] == ("iso9660", 32768)
    assert rows["hd0"][2] == rows["hd0,gpt1"][2]
    for ours, grubs in (("hd0", "loop0"), ("hd0,gpt1", "loop0,gpt1")):
        listing = guestboot("ls", str(image), f"({ours})/boot/grub")
        assert listing.returncode == 0 and b"grub.cfg" in listing.stdout, listing.stderr.decode()
        if shutil.which("grub-fstest"):
            grub = subprocess.run(["grub-fstest", str(image), "ls", f"({grubs})/boot/grub/"], capture_output=True,
                                  check=True)
            assert grub.stdout.split() == [b"grub.cfg"]
    menu = json.loads(guestboot("list", "--json", str(image)).stdout)
    assert menu["config"] == "(hd0)/boot/grub/grub.cfg"
    assert [e["title"] for e in menu["entries"]] == ["Ubuntu"]
