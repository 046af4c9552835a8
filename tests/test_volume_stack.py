"""Stacked volumes and several disks, proven with a stacked type registered from outside
the package (tests/fake_stack.py): two partitions made by sgdisk on two disk images hold
the two halves of an ext4 file system made by mke2fs -d from a tree; through the fake
type, guestboot lists the menu and extracts the kernel from that tree."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
from pathlib import Path

import pytest
from builders.disk import sgdisk_image, table_of
from prereq import unavailable

import fake_stack
from guestboot import limits, volume
from guestboot.errors import CorruptImage, LimitExceeded
from guestboot.image import open_disks
from guestboot.pipeline import Request, load_menu, run
from guestboot.volume import stack

MiB = 1 << 20
DATA_OFFSET = 4096
GRUB_CFG = """\
set default=0
set timeout=1
menuentry 'Stacked Linux' {
    linux /vmlinuz root=/dev/mapper/fake ro
    initrd /initrd.img
}
"""


@pytest.fixture(scope="session")
def boot_tree(tmp_path_factory) -> Path:
    top = tmp_path_factory.mktemp("stack-tree")
    (top / "grub").mkdir()
    (top / "grub" / "grub.cfg").write_text(GRUB_CFG)
    rng = random.Random(5)
    (top / "vmlinuz").write_bytes(rng.randbytes(1_500_000))
    (top / "initrd.img").write_bytes(rng.randbytes(700_000))
    return top


@pytest.fixture(scope="session")
def fs_image(boot_tree, tmp_path_factory) -> bytes:
    """An 8 MiB ext4 made by mke2fs -d from the tree."""
    fs = tmp_path_factory.mktemp("stack-fs") / "fs.img"
    subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", "-T", "default", "-L", "stacked", "-d", str(boot_tree),
                    str(fs), "8M"], check=True, capture_output=True, timeout=60)
    return fs.read_bytes()


def _member_sectors(data: bytes) -> int:
    return (DATA_OFFSET + len(data) // 2) // 512


def _write_member(disk: Path, number: int, index: int, data: bytes, name: str = "boot") -> None:
    half = len(data) // 2
    start = next(p.start for p in table_of(disk)[1] if p.number == number)
    with open(disk, "r+b") as f:
        f.seek(start)
        f.write(fake_stack.header(name, index, 2, DATA_OFFSET))
        f.seek(start + DATA_OFFSET)
        f.write(data[index * half : (index + 1) * half])


@pytest.fixture(scope="session")
def halves(fs_image, tmp_path_factory) -> tuple[Path, Path]:
    """hd0: gpt1 holds member 0. hd1: gpt1 is an unrelated empty partition, gpt2 holds
    member 1. The members are the halves of the ext4 image."""
    work = tmp_path_factory.mktemp("stack")
    sectors = _member_sectors(fs_image)
    disk0 = sgdisk_image(work / "disk0.img", 8 * MiB, [f"-n1:2048:+{sectors}"])
    disk1 = sgdisk_image(work / "disk1.img", 10 * MiB, ["-n1:2048:+1M", f"-n2:0:+{sectors}"])
    _write_member(disk0, 1, 0, fs_image)
    _write_member(disk1, 2, 1, fs_image)
    return disk0, disk1


@pytest.fixture(scope="session")
def one_disk(fs_image, tmp_path_factory) -> Path:
    """One disk: gpt1 holds member 1, gpt2 member 0 (the set's order, not the table's)."""
    sectors = _member_sectors(fs_image)
    disk = sgdisk_image(tmp_path_factory.mktemp("stack1") / "one.img", 16 * MiB,
                        [f"-n1:2048:+{sectors}", f"-n2:0:+{sectors}"])
    _write_member(disk, 1, 1, fs_image)
    _write_member(disk, 2, 0, fs_image)
    return disk


@pytest.fixture
def registered(monkeypatch):
    """The fake type joins the registry: one line, no module of ours edited."""
    monkeypatch.setattr(volume, "STACKS", volume.STACKS + (("fake", "fake_stack"),))


def _open(*paths: Path):
    fds = [os.open(p, os.O_RDONLY | os.O_CLOEXEC) for p in paths]
    return open_disks([(fd, p.name) for fd, p in zip(fds, paths)]), fds


def test_two_disks_are_hd0_and_hd1_in_the_order_given(halves):
    image, fds = _open(*halves)
    assert image.devices.names() == ["hd0", "hd0,gpt1", "hd1", "hd1,gpt1", "hd1,gpt2"]
    assert image.devices.get("(hd1,2)").volume.start == table_of(halves[1])[1][1].start
    swapped, more = _open(halves[1], halves[0])
    assert swapped.devices.names() == ["hd0", "hd0,gpt1", "hd0,gpt2", "hd1", "hd1,gpt1"]
    for fd in fds + more:
        os.close(fd)


def test_a_registered_stacked_type_joins_partitions_of_two_disks(halves, boot_tree, registered, tmp_path):
    image, fds = _open(*halves)
    devices = image.devices
    assert devices.names() == ["hd0", "hd0,gpt1", "hd1", "hd1,gpt1", "hd1,gpt2", "fake/boot"]
    assert devices.get("hd0,gpt1").problem == "member of (fake/boot)"
    assert devices.get("hd1,gpt2").problem == "member of (fake/boot)"
    assert devices.filesystem("fake/boot").label == "stacked"
    # the tree is the expected answer
    for name in ("vmlinuz", "initrd.img", "grub/grub.cfg"):
        source = devices.open("(fake/boot)", f"/{name}")
        assert source.pread(0, source.size) == (boot_tree / name).read_bytes()
    menu = load_menu(devices)
    assert menu.origin.startswith("fake/boot:")
    # the pipeline the front ends and the sandboxed child run, given both disks
    disks = tuple((fd, p.name) for fd, p in zip(fds, halves))
    plan = run(Request("plan", disks))
    assert (plan["kernel"]["grub"], plan["cmdline"]) == ("(fake/boot)/vmlinuz", "BOOT_IMAGE=/vmlinuz root=/dev/mapper/fake ro")
    kernel_out, initrd_out = tmp_path / "kernel", tmp_path / "initrd"
    with open(kernel_out, "xb") as k, open(initrd_out, "xb") as i:
        run(Request("extract", disks, kernel_fd=k.fileno(), initrd_fd=i.fileno()))
    assert kernel_out.read_bytes() == (boot_tree / "vmlinuz").read_bytes()
    assert initrd_out.read_bytes() == (boot_tree / "initrd.img").read_bytes()
    # zero-copy: every run of the kernel and initrd is a piece of one of the two image
    # files, and copying those pieces gives the tree's files
    for name in ("vmlinuz", "initrd.img"):
        runs = list(devices.open("fake/boot", f"/{name}").runs())
        assert {r.fd for r in runs} <= set(fds)
        assert b"".join(os.pread(r.fd, r.length, r.offset) for r in runs) == (boot_tree / name).read_bytes()
    for fd in fds:
        os.close(fd)


def test_guestboot_lists_and_extracts_through_the_stacked_volume(one_disk, boot_tree, registered, tmp_path, capsys):
    """The CLI's own commands on one disk whose two partitions are the members."""
    from guestboot.cli.main import main

    disk = one_disk
    assert main(["list", str(disk)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == ("(fake/boot)/grub/grub.cfg (grub2, debian dialect: "
        "no os-release on the image, no Fedora sign in the config)")
    assert main(["ls", str(disk)]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert [row.split()[0] for row in rows] == ["(hd0)", "(hd0,gpt1)", "(hd0,gpt2)", "(fake/boot)"]
    assert rows[0].endswith("no recognised file system")
    assert rows[1].endswith("member of (fake/boot)") and rows[2].endswith("member of (fake/boot)")
    assert " ext4 " in rows[3] and "stacked" in rows[3]
    assert "Stacked Linux" in out
    outdir = tmp_path / "out"
    outdir.mkdir()
    assert main(["extract", str(disk), "-o", str(outdir)]) == 0
    assert capsys.readouterr().out.strip() == "BOOT_IMAGE=/vmlinuz root=/dev/mapper/fake ro"
    assert (outdir / "kernel").read_bytes() == (boot_tree / "vmlinuz").read_bytes()
    assert (outdir / "initrd").read_bytes() == (boot_tree / "initrd.img").read_bytes()


def test_an_incomplete_set_is_left_out_with_a_warning(halves, registered):
    image, fds = _open(halves[0])
    assert image.devices.names() == ["hd0", "hd0,gpt1"]
    assert image.warnings == ["fake/boot: 1 of 2 members present; left out"]
    os.close(fds[0])


def test_stacking_depth_is_bounded(halves, registered, monkeypatch):
    monkeypatch.setattr(stack, "LIMITS", limits.LIMITS._replace(max_stack_rounds=1))
    with pytest.raises(LimitExceeded, match="max_stack_rounds"):
        _open(*halves)


def test_volume_count_is_bounded(halves, monkeypatch):
    monkeypatch.setattr(stack, "LIMITS", limits.LIMITS._replace(max_volumes=4))
    with pytest.raises(LimitExceeded, match="max_volumes"):
        _open(*halves)


def test_two_stacked_volumes_of_one_name_are_corrupt(halves, monkeypatch, tmp_path):
    """Two sets both called "boot" (a copy of each disk given twice)."""
    copies = []
    for i, disk in enumerate(halves):
        copy = tmp_path / f"copy{i}.img"
        copy.write_bytes(disk.read_bytes())
        copies.append(copy)
    monkeypatch.setattr(volume, "STACKS", (("fake", "fake_stack"), ("again", "fake_stack")))
    with pytest.raises(CorruptImage, match=r"two volumes are both called \(fake/boot\)"):
        _open(*halves, *copies)


def test_disk_count_is_bounded_before_anything_is_read(halves, monkeypatch):
    from guestboot import image as image_stage
    from guestboot.errors import NotFound

    monkeypatch.setattr(image_stage, "LIMITS", limits.LIMITS._replace(max_disks=1))
    with pytest.raises(LimitExceeded, match="2 disk images given \\(max_disks\\)"):
        open_disks([(-1, "a.img"), (-1, "b.img")])  # no descriptor is touched
    with pytest.raises(NotFound, match="no disk image given"):
        open_disks([])


def test_grub_names_the_disks_in_the_same_order(halves):
    """grub-fstest -c 2 calls the images loop0 and loop1 in the order given: the bytes
    GRUB finds under (loopN,gptK) are those we find under (hdN,gptK), whole partitions."""
    import zlib

    if shutil.which("grub-fstest") is None:
        unavailable("grub-fstest (package grub-common) is not installed")
    image, fds = _open(*halves)
    checked = 0
    for device in image.devices:
        v = device.volume
        if not v.number:
            continue
        sectors = v.size // 512
        grub = subprocess.run(
            ["grub-fstest", "-c", "2", *map(str, halves), "crc", f"(loop{v.disk[2:]},{v.grub_name})0+{sectors}"],
            check=True, capture_output=True, text=True, timeout=60).stdout.strip()
        assert grub == f"{zlib.crc32(v.source.pread(0, v.size)):08x}", device.name
        checked += 1
    assert checked == 3
    for fd in fds:
        os.close(fd)


def test_a_stacked_volume_may_hold_a_partition_table(boot_tree, registered, tmp_path):
    """Like an md array partitioned inside: the joined volume is a GPT disk (sgdisk) whose
    partition holds ext4 (mke2fs -d); discovery scans it like a disk: (fake/arr,gpt1)."""
    inner = sgdisk_image(tmp_path / "inner.img", 12 * MiB, ["-n1:2048:0"])
    part = table_of(inner)[1][0]
    subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", "-T", "default", "-d", str(boot_tree), "-E",
                    f"offset={part.start}", str(inner), f"{part.size // 1024}k"], check=True, capture_output=True,
                   timeout=60)
    data = inner.read_bytes()
    sectors = _member_sectors(data)
    outer = sgdisk_image(tmp_path / "outer.img", 16 * MiB, [f"-n1:2048:+{sectors}", f"-n2:0:+{sectors}"])
    _write_member(outer, 1, 0, data, "arr")
    _write_member(outer, 2, 1, data, "arr")
    image, fds = _open(outer)
    devices = image.devices
    assert devices.names() == ["hd0", "hd0,gpt1", "hd0,gpt2", "fake/arr", "fake/arr,gpt1"]
    assert devices.get("(fake/arr,1)").volume.start == part.start
    assert devices.get("fake/arr,gpt1").volume.uuid == part.uuid.lower()
    kernel = devices.open("(fake/arr,gpt1)", "/vmlinuz")
    assert kernel.pread(0, kernel.size) == (boot_tree / "vmlinuz").read_bytes()
    assert load_menu(devices).origin == "fake/arr,gpt1:/grub/grub.cfg"
    os.close(fds[0])
