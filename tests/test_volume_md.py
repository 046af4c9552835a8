"""md RAID arrays made by the real mdadm and md driver (in a QEMU guest, tests/builders/
md_guest.py), read back through guestboot and GRUB's own md drivers (grub-fstest -c N).

One guest run per session makes every array from disk images here:
- md/boot: superblock 1.2, RAID1 of two whole disks (each with the MBR it had before),
  holding an ext4 (tree "boot");
- md/data: superblock 1.0, RAID1 of partition 1 of two MBR disks (sfdisk), holding an MBR
  partition table of its own whose partition 1 is an ext4 (tree "data"): partitions on md;
- md/stripe: superblock 1.1, RAID0 of two whole disks, 64 KiB chunks (tree "stripe");
- md 0.90 minor 3: RAID10 near-2 over three whole disks, 64 KiB chunks (tree "ten");
- md/lvm: superblock 1.2, RAID1 of two disks holding an LVM2 PV (made by lvm2 on the host,
  copied onto the array with dd) whose LV "boot" holds a real Debian kernel, a busybox
  initramfs and a grub.cfg: the end-to-end guest, its two disks converted to compressed
  qcow2 (zlib and zstd) and booted in QEMU through guestboot;
- md 0.90 minor 6: RAID1 of partitions that run to the end of their disks, so the whole
  disk shows the same superblock where its own would be (the partition is the member);
- md/stale: superblock 1.2, RAID1 of three disks; after one file system was written the
  first member was failed and removed (mdadm --fail/--remove) and another written: that
  member is stale (fewer events) and still holds the old file system.
Payloads are images made by mke2fs -d / sfdisk / lvm2 from trees that are the expected
answer; mdadm lays them out, so nothing here writes md metadata by hand except the
hostile cases (a real superblock edited, its checksum made right again).
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from builders import lvm as lvmtool
from builders.disk import random_tree, sfdisk_image
from builders.initramfs import ToolMissing
from prereq import unavailable

from guestboot.errors import CorruptImage, LimitExceeded, Unsupported
from guestboot.image import open_disks
from guestboot.volume import md

MiB = 1 << 20
BOOT_ARGS = "root=/dev/mapper/vg--md-root ro quiet guestboot.test=md-lvm"


def _mkfs(tree: Path, image: Path, size: int, label: str) -> Path:
    subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", "-T", "default", "-L", label, "-d", str(tree), str(image),
                    f"{size // 1024}k"], check=True, capture_output=True, timeout=120)
    return image


def _blank(path: Path, size: int) -> Path:
    with open(path, "wb") as f:
        f.truncate(size)
    return path


class Arrays:
    """The disk images of every array, the trees they hold, and the E2E boot files."""

    def __init__(self, work: Path):
        self.work = work
        self.members: dict[str, list[Path]] = {}
        self.trees: dict[str, Path] = {}
        self.console = ""


GRUB_CFG = f"""\
insmod mdraid1x
insmod lvm
insmod ext2
set default=0
set timeout=3
set root='lvm/vg--md-boot'
menuentry 'Debian on LVM on md RAID1' {{
    linux /vmlinuz {BOOT_ARGS}
    initrd /initrd.img
}}
"""


def _pv_image(work: Path, boot_tree: Path) -> Path:
    """A 24 MiB LVM2 PV (VG "vg-md", LV "boot" holding ext4 of ``boot_tree``), made by lvm2."""
    pv = _blank(work / "pv.img", 24 * MiB)
    with lvmtool.loop_devices([pv]) as (device,):
        tool = lvmtool.Lvm([device])
        tool("pvcreate", "-y", device)
        tool("vgcreate", "-s", "1m", "vg-md", device)
        tool("lvcreate", "-an", "-Zn", "-n", "boot", "-L", "20m", "vg-md")
        fs = _mkfs(boot_tree, work / "lvboot.ext4", 20 * MiB, "mdboot")
        lvmtool.write_into_lv(fs, lvmtool.lv_segments(tool, "vg-md")["boot"], lvmtool.extent_bytes(tool, "vg-md"),
                              lvmtool.pe_starts(tool), {device: (pv, 0)})
    return pv


@pytest.fixture(scope="session")
def arrays(tmp_path_factory) -> Arrays:
    from builders.boot import debian_kernel
    from builders.initramfs import build_initramfs
    from builders.md_guest import run_guest

    for tool, package in (("mdadm", "mdadm"), ("qemu-system-x86_64", "qemu-system-x86")):
        if shutil.which(tool) is None:
            unavailable(f"{tool} not installed (apt-get install {package})")
    missing = lvmtool.lvm_available()
    if missing:
        unavailable(missing)
    work = tmp_path_factory.mktemp("md")
    made = Arrays(work)
    made.trees["boot"] = random_tree(work / "t-boot", 11, {"vmlinuz": 700_000, "grub/grub.cfg": 120, "odd": 65_537})
    made.trees["data"] = random_tree(work / "t-data", 12, {"big.bin": 3_000_000, "etc/hostname": 9})
    made.trees["stripe"] = random_tree(work / "t-stripe", 13, {"big.bin": 5_000_000, "small": 100})
    made.trees["ten"] = random_tree(work / "t-ten", 14, {"big.bin": 5_000_000, "x/y/z": 70_000})
    e2e = work / "t-e2e"
    (e2e / "grub").mkdir(parents=True)
    (e2e / "grub" / "grub.cfg").write_text(GRUB_CFG)
    try:
        shutil.copyfile(debian_kernel(), e2e / "vmlinuz")
        build_initramfs(e2e / "initrd.img", "md-lvm")
    except ToolMissing as err:
        unavailable(str(err))
    made.trees["e2e"] = e2e

    payload_boot = _mkfs(made.trees["boot"], work / "p-boot.ext4", 12 * MiB, "boot")
    payload_data = sfdisk_image(work / "p-data.img", 16 * MiB, "label: dos\nstart=2048, type=83\n")
    data_fs = _mkfs(made.trees["data"], work / "data.ext4", 15 * MiB, "data")
    with open(payload_data, "r+b") as out:
        out.seek(MiB)
        out.write(data_fs.read_bytes())
    payload_stripe = _mkfs(made.trees["stripe"], work / "p-stripe.ext4", 12 * MiB, "stripe")
    payload_ten = _mkfs(made.trees["ten"], work / "p-ten.ext4", 12 * MiB, "ten")
    payload_pv = _pv_image(work, e2e)

    # whole disks that had an MBR before mdadm made them members: the table stays, stale
    made.members["boot"] = [sfdisk_image(work / f"boot{i}.img", 16 * MiB, "label: dos\nstart=2048, type=83\n")
                            for i in range(2)]
    made.members["data"] = [sfdisk_image(work / f"data{i}.img", 24 * MiB, "label: dos\nstart=2048, type=fd\n")
                            for i in range(2)]
    made.members["stripe"] = [_blank(work / f"stripe{i}.img", 8 * MiB) for i in range(2)]
    made.members["ten"] = [_blank(work / f"ten{i}.img", 10 * MiB) for i in range(3)]
    made.members["lvm"] = [_blank(work / f"lvm{i}.img", 28 * MiB) for i in range(2)]
    made.members["stale"] = [_blank(work / f"stale{i}.img", 10 * MiB) for i in range(3)]
    # partition 1 runs to the end of a 64 KiB-aligned disk: its 0.90 superblock is also
    # where a 0.90 superblock of the whole disk would be
    made.members["old"] = [sfdisk_image(work / f"old{i}.img", 12 * MiB, "label: dos\nstart=2048, type=fd\n")
                           for i in range(2)]
    made.trees["old"] = random_tree(work / "t-old", 17, {"vmlinuz": 400_000, "odd": 4097})
    made.trees["stale-old"] = random_tree(work / "t-stale-old", 15, {"which": 5000})
    made.trees["stale"] = random_tree(work / "t-stale", 16, {"which": 5000})
    payload_old = _mkfs(made.trees["stale-old"], work / "p-stale-old.ext4", 8 * MiB, "old")
    payload_new = _mkfs(made.trees["stale"], work / "p-stale.ext4", 8 * MiB, "new")
    payload_old_md = _mkfs(made.trees["old"], work / "p-old.ext4", 8 * MiB, "old090")
    disks = [*made.members["boot"], *made.members["data"], *made.members["stripe"], *made.members["ten"],
             *made.members["lvm"], payload_boot, payload_data, payload_stripe, payload_ten, payload_pv,
             *made.members["stale"], payload_old, payload_new, *made.members["old"], payload_old_md]
    dev = [f"/dev/vd{chr(ord('a') + i)}" for i in range(len(disks))]
    a, b, c, d, e, f, g, h, i, j, k, p1, p2, p3, p4, p5, s1, s2, s3, p6, p7, o1, o2, p8 = dev
    create = "mdadm --create --run --assume-clean --homehost=guestboot"
    job = f"""
{create} /dev/md0 --metadata=1.2 --level=1 --raid-devices=2 --name=boot {a} {b}
{create} /dev/md1 --metadata=1.0 --level=1 --raid-devices=2 --name=data {c}1 {d}1
{create} /dev/md2 --metadata=1.1 --level=0 --raid-devices=2 --chunk=64 --name=stripe {e} {f}
{create} /dev/md3 --metadata=0.90 --level=10 --layout=n2 --raid-devices=3 --chunk=64 {g} {h} {i}
{create} /dev/md4 --metadata=1.2 --level=1 --raid-devices=2 --name=lvm {j} {k}
cat /proc/mdstat
dd if={p1} of=/dev/md0 bs=1M conv=fsync
dd if={p2} of=/dev/md1 bs=1M conv=fsync
dd if={p3} of=/dev/md2 bs=1M conv=fsync
dd if={p4} of=/dev/md3 bs=1M conv=fsync
dd if={p5} of=/dev/md4 bs=1M conv=fsync
{create} /dev/md5 --metadata=1.2 --level=1 --raid-devices=3 --name=stale {s1} {s2} {s3}
dd if={p6} of=/dev/md5 bs=1M conv=fsync
mdadm /dev/md5 --fail {s1}
mdadm /dev/md5 --remove {s1}
dd if={p7} of=/dev/md5 bs=1M conv=fsync
{create} /dev/md6 --metadata=0.90 --level=1 --raid-devices=2 {o1}1 {o2}1
dd if={p8} of=/dev/md6 bs=1M conv=fsync
for n in 0 1 2 3 4 5 6; do mdadm --detail /dev/md$n; done
for n in 0 1 2 3 4 5 6; do mdadm --stop /dev/md$n; done
"""
    try:
        made.console = run_guest(disks, job, work)
    except ToolMissing as err:
        unavailable(str(err))
    return made


def _open(paths):
    fds = [os.open(p, os.O_RDONLY | os.O_CLOEXEC) for p in paths]
    return open_disks([(fd, Path(p).name) for fd, p in zip(fds, paths)])


def _grub(disks, *command: str) -> subprocess.CompletedProcess:
    if shutil.which("grub-fstest") is None:
        unavailable("grub-fstest (grub-common) is not installed")
    return subprocess.run(["grub-fstest", "-c", str(len(disks)), *map(str, disks), *command],
                          capture_output=True, timeout=120)


def _files(tree: Path):
    return sorted(p.relative_to(tree).as_posix() for p in tree.rglob("*") if p.is_file())


# array -> (GRUB device holding the tree's file system, file system label)
HOLDERS = {"boot": ("md/boot", "boot"), "data": ("md/data,msdos1", "data"), "stripe": ("md/stripe", "stripe"),
           "ten": ("md/md3", "ten"), "old": ("md/md6", "old090")}


@pytest.mark.parametrize("name", sorted(HOLDERS))
def test_every_file_reads_as_the_tree_and_as_grub_reads_it(arrays, name):
    members = arrays.members[name]
    device, label = HOLDERS[name]
    image = _open(members)
    assert not image.warnings, image.warnings
    assert image.devices.filesystem(device).label == label
    tree = arrays.trees[name]
    listed = _grub(members, "ls").stdout.decode().split()
    assert f"({device.split(',')[0]})" in listed, listed  # GRUB's name for the array
    for rel in _files(tree):
        source = image.devices.open(device, f"/{rel}")
        expected = (tree / rel).read_bytes()
        assert source.pread(0, source.size) == expected, rel
        grub = _grub(members, "crc", f"({device})/{rel}")
        assert grub.returncode == 0, grub.stderr
        assert int(grub.stdout.split()[0], 16) == zlib.crc32(expected), rel


def test_members_say_whose_they_are_and_mduuid_names_the_array(arrays):
    image = _open(arrays.members["data"])
    # the member partitions are claimed; the disks' own tables stay as they are
    assert image.devices.get("hd0,msdos1").problem == "md member of (md/data)"
    array = image.devices.get("md/data")
    assert array.volume.type_id == "md" and len(array.volume.uuid) == 32
    assert image.devices.canonical(f"mduuid/{array.volume.uuid.upper()},msdos1") == "md/data,msdos1"
    grub = _grub(arrays.members["data"], "ls", f"(mduuid/{array.volume.uuid},msdos1)/")
    assert grub.returncode == 0 and b"big.bin" in grub.stdout
    # a whole-disk member: the stale partition table before a 1.2 superblock is not offered
    boot = _open(arrays.members["boot"])
    assert boot.devices.get("hd0").problem == "md member of (md/boot)"
    assert boot.devices.get("hd1,msdos1").problem == "inside (hd1), md member of (md/boot)"


def test_raid1_reads_from_either_member_alone(arrays):
    for member in arrays.members["boot"]:
        image = _open([member])
        assert image.devices.filesystem("md/boot").label == "boot"
        source = image.devices.open("md/boot", "/odd")
        assert source.pread(0, source.size) == (arrays.trees["boot"] / "odd").read_bytes()


def test_raid10_near_survives_one_missing_member_and_raid0_does_not(arrays):
    ten = arrays.members["ten"]
    for missing in range(3):
        image = _open([m for i, m in enumerate(ten) if i != missing])
        source = image.devices.open("md/md3", "/big.bin")
        assert source.pread(0, source.size) == (arrays.trees["ten"] / "big.bin").read_bytes()
    image = _open(ten[:1])
    with pytest.raises(CorruptImage, match="every copy"):
        image.devices.filesystem("md/md3")
    image = _open(arrays.members["stripe"][1:])
    with pytest.raises(CorruptImage, match="member 0 of 2 is missing"):
        image.devices.filesystem("md/stripe")


def test_lvm_on_md_raid1_lists_and_extracts(arrays, tmp_path):
    members = arrays.members["lvm"]
    image = _open(members)
    assert image.devices.get("md/lvm").problem == "LVM2 physical volume of vg-md"
    assert image.devices.filesystem("lvm/vg--md-boot").label == "mdboot"
    listed = subprocess.run([sys.executable, "-m", "guestboot", "list", *map(str, members)], capture_output=True,
                            text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines()[1].split(None, 2) == ["*", "0", "Debian on LVM on md RAID1"]
    assert "(lvm/vg--md-boot)" in _grub(members, "ls").stdout.decode()


def test_lvm_on_md_raid1_in_compressed_qcow2_boots_in_qemu(arrays, tmp_path):
    """The end-to-end guest: /boot on an LV of a VG whose PV is an md RAID1 of two disks,
    each disk a compressed qcow2 (qemu-img convert -c: one zlib, one zstd); guestboot
    reads the images, assembles the array and the VG, picks the entry and extracts; the
    kernel boots and gets the command line."""
    from builders.boot import boot

    if shutil.which("qemu-img") is None:
        unavailable("qemu-img not installed (apt-get install qemu-utils)")
    images = []
    for member, codec in zip(arrays.members["lvm"], ("zlib", "zstd")):
        image = tmp_path / f"{member.stem}.qcow2"
        subprocess.run(["qemu-img", "convert", "-c", "-f", "raw", "-O", "qcow2", "-o", f"compression_type={codec}",
                        str(member), str(image)], check=True, capture_output=True, timeout=120)
        images.append(image)
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "guestboot", "extract", *map(str, images),
                           "-o", str(out)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    cmdline = done.stdout.strip()
    assert cmdline == f"BOOT_IMAGE=/vmlinuz {BOOT_ARGS}"
    assert (out / "kernel").read_bytes() == (arrays.trees["e2e"] / "vmlinuz").read_bytes()
    report = boot(out / "kernel", out / "initrd", cmdline)
    print(f"QEMU/TCG boot took {report.seconds:.1f} s")
    assert report.cmdline == cmdline
    assert report.initrds == ["md-lvm"]


# --- hostile superblocks: a real one edited, its checksum made right again ---------------


def _sb1_offset(data: bytes) -> int:
    for offset in (0, 4096, ((len(data) // 512 - 16) & ~7) * 512):
        if data[offset : offset + 4] == struct.pack("<I", md.MAGIC):
            return offset
    raise AssertionError("no 1.x superblock")


def _resum1(data: bytearray, offset: int) -> None:
    max_dev = struct.unpack_from("<I", data, offset + 220)[0]
    length = 256 + 2 * min(max_dev, md.SB1_MAX_DEV)
    covered = bytearray(data[offset : offset + length])
    covered[216:220] = bytes(4)
    covered += bytes(-len(covered) % 4)
    total = sum(struct.unpack(f"<{len(covered) // 4}I", covered))
    struct.pack_into("<I", data, offset + 216, ((total & 0xFFFFFFFF) + (total >> 32)) & 0xFFFFFFFF)


def _edited(source: Path, out: Path, field_offset: int, fmt: str, value: int, resum: bool = True) -> Path:
    data = bytearray(source.read_bytes())
    offset = _sb1_offset(data)
    struct.pack_into(fmt, data, offset + field_offset, value)
    if resum:
        _resum1(data, offset)
    out.write_bytes(bytes(data))
    return out


HOSTILE_1X = {
    # name: (field offset, format, value, error, words)
    "thousands of devices": (92, "<I", 5000, LimitExceeded, "max_md_devices"),
    "a huge device table": (220, "<I", 60000, CorruptImage, "device slots"),
    "RAID5": (72, "<i", 5, Unsupported, "RAID5"),
    "data past the end": (136, "<Q", 1 << 40, CorruptImage, "runs past"),
    "reshaping": (8, "<I", md.FEATURE_RESHAPE_ACTIVE, Unsupported, "reshaped"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_1X))
def test_hostile_1x_superblocks_are_typed_errors(arrays, tmp_path, case):
    field, fmt, value, error, words = HOSTILE_1X[case]
    bad = _edited(arrays.members["stripe"][0], tmp_path / "m.img", field, fmt, value)
    image = _open([bad, arrays.members["stripe"][1]])
    device = "md/stripe" if error is Unsupported else "hd0"
    with pytest.raises(error, match=words):
        image.devices.filesystem(device)


def test_a_bad_checksum_is_reported_on_the_member(arrays, tmp_path):
    bad = _edited(arrays.members["boot"][0], tmp_path / "m.img", 100, "<I", 7, resum=False)
    image = _open([bad, arrays.members["boot"][1]])
    with pytest.raises(CorruptImage, match="checksum"):
        image.devices.filesystem("hd0")
    assert image.devices.filesystem("md/boot").label == "boot"  # from the other member
    assert any("md member left out" in w for w in image.warnings)


def test_hostile_090_superblock(arrays, tmp_path):
    member = arrays.members["ten"][0]
    data = bytearray(member.read_bytes())
    sectors = len(data) // 512
    offset = ((sectors & ~127) - 128) * 512
    words = list(struct.unpack_from("<1024I", data, offset))
    assert words[0] == md.MAGIC and words[2] == 90
    for index, value, error, text in ((10, 4000, CorruptImage, "claims 4000 devices"),
                                      (64, 0x201, Unsupported, "far or offset")):
        changed = list(words)
        changed[index] = value
        changed[38] = 0
        total = sum(changed)
        changed[38] = ((total & 0xFFFFFFFF) + (total >> 32)) & 0xFFFFFFFF
        struct.pack_into("<1024I", data, offset, *changed)
        path = tmp_path / "ten0.img"
        path.write_bytes(bytes(data))
        image = _open([path, *arrays.members["ten"][1:]])
        with pytest.raises(error, match=text):
            image.devices.filesystem("hd0" if error is CorruptImage else "md/md3")


def test_an_array_holding_its_own_superblock_is_a_loop_not_read(arrays, tmp_path):
    """md/boot's data starts with a copy of its member's superblock area: read as a
    member, the array would contain itself; it is left out with a warning."""
    members = []
    for index, member in enumerate(arrays.members["boot"]):
        data = bytearray(member.read_bytes())
        offset = _sb1_offset(data)
        data_offset = struct.unpack_from("<Q", data, offset + 128)[0] * 512
        data[data_offset : data_offset + offset + 4096] = data[: offset + 4096]
        path = tmp_path / f"loop{index}.img"
        path.write_bytes(bytes(data))
        members.append(path)
    image = _open(members)
    assert any("holds a superblock of its own array (a loop)" in w for w in image.warnings)
    # no second array made of the copy (md/boot_1); the copied MBR is md/boot's own table now
    assert [n for n in image.devices.names() if n.startswith("md/") and "," not in n] == ["md/boot"]


def test_a_stale_member_is_not_read(arrays):
    members = arrays.members["stale"]
    image = _open(members)
    assert image.devices.filesystem("md/stale").label == "new"
    source = image.devices.open("md/stale", "/which")
    assert source.pread(0, source.size) == (arrays.trees["stale"] / "which").read_bytes()
    assert any("hd0): md member of (md/stale) is stale" in w for w in image.warnings), image.warnings
    # the failed member alone: its own superblock is all there is, so it is read (as the
    # kernel would assemble it, degraded); it holds the old file system
    alone = _open(members[:1])
    assert alone.devices.filesystem("md/stale").label == "old"


def test_mutated_superblocks_give_typed_errors_only(arrays, tmp_path):
    """150 seeded edits of real 1.x and 0.90 superblocks (a field set to a boundary or a
    random value, the checksum made right so assembly sees it): opening the members and
    reading every md device ends in success or a GuestbootError, quickly."""
    import random
    import time

    from guestboot.errors import GuestbootError

    rng = random.Random(11)
    values = [0, 1, 2, 3, 0x7FFFFFFF, 0xFFFFFFFF, 0xFFFF, 0xFFFE, 64, 128, 1 << 20]
    for case in range(150):
        name = rng.choice(["stripe", "boot", "ten"])
        members = arrays.members[name]
        data = bytearray(members[0].read_bytes())
        if name == "ten":  # 0.90: words of the 4 KiB superblock, checksum word 38
            offset = ((len(data) // 512 & ~127) - 128) * 512
            word = rng.choice([7, 8, 9, 10, 11, 64, 65, 992, 993, 995, 996, rng.randrange(1024)])
            struct.pack_into("<I", data, offset + 4 * word, rng.choice(values + [rng.getrandbits(32)]))
            words = list(struct.unpack_from("<1024I", data, offset))
            words[38] = 0
            total = sum(words)
            struct.pack_into("<I", data, offset + 4 * 38, ((total & 0xFFFFFFFF) + (total >> 32)) & 0xFFFFFFFF)
        else:
            offset = _sb1_offset(data)
            field = rng.choice([8, 72, 76, 80, 88, 92, 128, 136, 160, 200, 220, 256, rng.randrange(0, 256, 4)])
            struct.pack_into("<I", data, offset + field, rng.choice(values + [rng.getrandbits(32)]))
            _resum1(data, offset)
        path = tmp_path / "m.img"
        path.write_bytes(bytes(data))
        start = time.monotonic()
        try:
            image = _open([path, *members[1:]])
            for device in image.devices:
                if device.name.startswith("md/"):
                    try:
                        fs = image.devices.filesystem(device.name)
                        fs.root()
                    except GuestbootError:
                        pass
        except GuestbootError:
            pass
        assert time.monotonic() - start < 5, f"case {case} took too long"
