"""LVM2 volume groups made by the real lvm2 tools, read back through guestboot and GRUB.

A VG "guest-vg" (a dash, which GRUB's and device-mapper's names double) spans two disk
images: the whole of hd0 is a PV, and hd1 has an MBR whose partition 1 (type 0x8e, made by
sfdisk) is the other PV. lvm2 (activation off) creates a linear LV "boot" on hd0, a
striped LV "root-a" over both PVs and an LV "span" whose two segments lie on different
PVs (lvcreate, then lvextend onto the other PV). ext4 images made by mke2fs -d from
reference trees are written into the LVs at the extents lvs reports. The trees are the
expected answer; GRUB's own LVM driver (grub-fstest -c 2) is the peer for names and bytes.
"""

from __future__ import annotations

import os
import random
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest
from builders import lvm as lvmtool
from builders.disk import random_tree, sfdisk_image
from prereq import unavailable

from guestboot.errors import CorruptImage, LimitExceeded, Unsupported
from guestboot.image import open_disks
from guestboot.pipeline import Request, run
from guestboot.volume import lvm, lvmlabel

MiB = 1 << 20
VG = "guest-vg"
BOOT_UUID = "2f6d7a3c-1b4e-4c59-9d8a-7e6f5a4b3c2d"
GRUB_CFG = f"""\
insmod lvm
insmod ext2
set default=0
set timeout=5
set root='lvm/guest--vg-boot'
if [ x$feature_platform_search_hint = xy ]; then
  search --no-floppy --fs-uuid --set=root --hint='lvm/guest--vg-boot' {BOOT_UUID}
else
  search --no-floppy --fs-uuid --set=root {BOOT_UUID}
fi
menuentry 'Debian GNU/Linux, on LVM' {{
    linux /vmlinuz-6.1.0-lvm root=/dev/mapper/guest--vg-root--a ro quiet
    initrd /initrd.img-6.1.0-lvm
}}
menuentry 'From the span LV' {{
    linux (lvm/guest--vg-span)/kernel root=/dev/mapper/guest--vg-root--a
}}
"""


def _mkfs(tree: Path, image: Path, size: int, label: str, uuid: str | None = None) -> Path:
    argv = ["mke2fs", "-q", "-F", "-t", "ext4", "-T", "default", "-L", label, "-d", str(tree)]
    if uuid:
        argv += ["-U", uuid]
    subprocess.run([*argv, str(image), f"{size // 1024}k"], check=True, capture_output=True, timeout=120)
    return image


class Built:
    def __init__(self, disks, trees, lv_sizes, pv_uuids):
        self.disks = disks
        self.trees = trees
        self.lv_sizes = lv_sizes
        self.pv_uuids = pv_uuids


@pytest.fixture(scope="session")
def vg(tmp_path_factory) -> Built:
    missing = lvmtool.lvm_available()
    if missing:
        unavailable(missing)
    work = tmp_path_factory.mktemp("lvm")
    boot = work / "boot-tree"
    (boot / "grub").mkdir(parents=True)
    (boot / "grub" / "grub.cfg").write_text(GRUB_CFG)
    random_tree(boot, 1, {"vmlinuz-6.1.0-lvm": 1_200_000, "initrd.img-6.1.0-lvm": 900_000})
    trees = {
        "boot": boot,
        "root-a": random_tree(work / "root-tree", 2, {"etc/fstab": 300, "big.bin": 6_000_000, "odd.bin": 65_537}),
        "span": random_tree(work / "span-tree", 3, {"kernel": 3_000_000, "note.txt": 17}),
    }
    d1 = work / "d1.img"
    with open(d1, "wb") as f:
        f.truncate(40 * MiB)
    d2 = sfdisk_image(work / "d2.img", 40 * MiB, "label: dos\nstart=2048, size=75776, type=8e\n")
    part_offset = 2048 * 512
    with lvmtool.loop_devices([d1]) as (l1,):
        # the partition through its own loop device (no partition scan needed)
        done = subprocess.run(["losetup", "-f", "--show", "-o", str(part_offset), "--sizelimit",
                               str(75776 * 512), str(d2)], capture_output=True, text=True, check=True)
        l2 = done.stdout.strip()
        try:
            tool = lvmtool.Lvm([l1, l2])
            tool("pvcreate", "-y", l1, l2)
            tool("vgcreate", "-s", "1m", VG, l1, l2)
            tool("lvcreate", "-an", "-Zn", "-n", "boot", "-L", "12m", VG, l1)
            # 12 MiB: room for big.bin beside the journal and, with e2fsprogs 1.47.2 (Debian
            # 13), the orphan file its mke2fs.conf adds to ext4
            tool("lvcreate", "-an", "-Zn", "-n", "root-a", "-i", "2", "-I", "64k", "-L", "12m", VG)
            tool("lvcreate", "-an", "-Zn", "-n", "span", "-L", "6m", VG, l1)
            tool("lvextend", "-L", "+6m", f"{VG}/span", l2)
            segments = lvmtool.lv_segments(tool, VG)
            starts = lvmtool.pe_starts(tool)
            extent = lvmtool.extent_bytes(tool, VG)
            sizes = {row["lv_name"]: int(row["lv_size"]) for row in tool.report("lvs", "lv_name,lv_size", VG)}
            uuids = {row["pv_name"]: row["pv_uuid"] for row in tool.report("pvs", "pv_name,pv_uuid")}
            where = {l1: (d1, 0), l2: (d2, part_offset)}
            for name, tree in trees.items():
                fs = _mkfs(tree, work / f"{name}.ext4", sizes[name], name, BOOT_UUID if name == "boot" else None)
                lvmtool.write_into_lv(fs, segments[name], extent, starts, where)
        finally:
            subprocess.run(["losetup", "-d", l2], capture_output=True, check=False)
    assert len(segments["span"]) == 2 and segments["root-a"][0].stripes == 2
    return Built([d1, d2], trees, sizes, [uuids[l1], uuids[l2]])


def _open(paths):
    fds = [os.open(p, os.O_RDONLY | os.O_CLOEXEC) for p in paths]
    return open_disks([(fd, Path(p).name) for fd, p in zip(fds, paths)])


def _files(tree: Path):
    return sorted(p.relative_to(tree).as_posix() for p in tree.rglob("*") if p.is_file())


def _grub(disks, *command: str) -> subprocess.CompletedProcess:
    if shutil.which("grub-fstest") is None:
        unavailable("grub-fstest (grub-common) is not installed")
    return subprocess.run(["grub-fstest", "-c", str(len(disks)), *map(str, disks), *command],
                          capture_output=True, timeout=120)


def test_grub_names_with_dashes_doubled():
    assert lvm.grub_lv_name("guest-vg", "root-a") == "lvm/guest--vg-root--a"
    assert lvm.grub_lv_name("vg0", "lv") == "lvm/vg0-lv"
    assert lvm.grub_lv_name("a--b", "-") == "lvm/a----b---"


def test_lvs_of_a_vg_over_two_disks_are_devices_as_grub_lists_them(vg):
    image = _open(vg.disks)
    names = image.devices.names()
    ours = [n for n in names if n.startswith("lvm/")]
    assert sorted(ours) == sorted(lvm.grub_lv_name(VG, lv) for lv in vg.lv_sizes)
    for lv, size in vg.lv_sizes.items():
        assert image.devices.get(lvm.grub_lv_name(VG, lv)).volume.size == size
    boot = image.devices.get(lvm.grub_lv_name(VG, "boot"))
    assert image.devices.canonical(f"lvmid/{boot.volume.uuid}") == boot.name  # GRUB's lvmid/VG-UUID/LV-UUID
    assert len(boot.volume.uuid) == 2 * 38 + 1
    assert b"grub" in _grub(vg.disks, "ls", f"(lvmid/{boot.volume.uuid})/").stdout  # GRUB knows that name too
    assert image.devices.get("hd0").problem == f"LVM2 physical volume of {VG}"
    assert image.devices.get("hd1,msdos1").problem == f"LVM2 physical volume of {VG}"
    assert not image.warnings
    listed = _grub(vg.disks, "ls").stdout.decode().split()
    grub_lvs = [name.strip("()") for name in listed if name.startswith("(lvm/")]
    assert grub_lvs == ours  # the same names, in GRUB's order


def test_every_file_of_every_lv_reads_as_the_tree_and_as_grub_reads_it(vg):
    image = _open(vg.disks)
    for lv, tree in vg.trees.items():
        device = lvm.grub_lv_name(VG, lv)
        assert image.devices.filesystem(device).label == lv
        for rel in _files(tree):
            source = image.devices.open(device, f"/{rel}")
            data = source.pread(0, source.size)
            expected = (tree / rel).read_bytes()
            assert data == expected, (lv, rel)
            grub = _grub(vg.disks, "crc", f"({device})/{rel}")
            assert grub.returncode == 0, grub.stderr
            assert int(grub.stdout.split()[0], 16) == zlib.crc32(expected), (lv, rel)


def test_extraction_from_a_striped_and_spanning_lv_stays_zero_copy(vg):
    image = _open(vg.disks)
    fds = {d.fd for d in image.disks}
    for lv, rel in (("root-a", "big.bin"), ("span", "kernel")):
        source = image.devices.open(lvm.grub_lv_name(VG, lv), f"/{rel}")
        runs = list(source.runs())
        assert {run.fd for run in runs if run.data is None and run.fd is not None} <= fds
        assert all(run.data is None for run in runs)
        assert len({run.fd for run in runs}) == 2  # the pieces lie on both disks


def test_the_menu_on_an_lv_boots_with_set_root_and_search(vg, tmp_path):
    fds = [os.open(p, os.O_RDONLY) for p in vg.disks]
    disks = tuple((fd, p.name) for fd, p in zip(fds, vg.disks))
    plan = run(Request("plan", disks))
    assert plan["kernel"]["grub"] == "(lvm/guest--vg-boot)/vmlinuz-6.1.0-lvm"
    assert plan["cmdline"].endswith("root=/dev/mapper/guest--vg-root--a ro quiet")
    kernel, initrd = tmp_path / "k", tmp_path / "i"
    with open(kernel, "xb") as k, open(initrd, "xb") as i:
        run(Request("extract", disks, kernel_fd=k.fileno(), initrd_fd=i.fileno()))
    assert kernel.read_bytes() == (vg.trees["boot"] / "vmlinuz-6.1.0-lvm").read_bytes()
    assert initrd.read_bytes() == (vg.trees["boot"] / "initrd.img-6.1.0-lvm").read_bytes()
    second = run(Request("plan", disks, entry="1"))
    assert second["kernel"]["grub"] == "(lvm/guest--vg-span)/kernel"


def test_a_missing_pv_leaves_the_lvs_on_the_other_disk_readable(vg):
    image = _open(vg.disks[:1])
    assert image.devices.filesystem("lvm/guest--vg-boot").label == "boot"
    assert any("is missing" in w for w in image.warnings)
    for lv in ("root-a", "span"):
        with pytest.raises(CorruptImage, match="missing"):
            image.devices.filesystem(lvm.grub_lv_name(VG, lv))
    # GRUB agrees: the linear LV is there, the ones that need hd1 are not readable
    assert _grub(vg.disks[:1], "ls", "(lvm/guest--vg-boot)/").returncode == 0


# --- hostile metadata: the real metadata, edited, its CRCs made right again -------------


def _metadata_place(disk: bytes) -> tuple[int, int, int]:
    """(mda start, text offset, text size) of the PV at the start of ``disk``."""
    for sector in range(4):
        if disk[sector * 512 : sector * 512 + 8] == b"LABELONE":
            break
    label = disk[sector * 512 : sector * 512 + 512]
    offset = struct.unpack_from("<I", label, 20)[0]
    pos = offset + 40
    while struct.unpack_from("<Q", label, pos)[0]:
        pos += 16
    mda_start = struct.unpack_from("<Q", label, pos + 16)[0]
    header = disk[mda_start : mda_start + 512]
    text_offset, text_size = struct.unpack_from("<QQ", header, 40)
    return mda_start, text_offset, text_size


def _with_metadata(path: Path, out: Path, edit) -> Path:
    data = bytearray(path.read_bytes())
    mda, text_offset, text_size = _metadata_place(data)
    text = bytes(data[mda + text_offset : mda + text_offset + text_size]).rstrip(b"\0")
    new = edit(text.decode()).encode() + b"\0"
    assert len(new) < 900_000
    data[mda + text_offset : mda + text_offset + len(new)] = new
    struct.pack_into("<QQI", data, mda + 40, text_offset, len(new), lvmlabel.lvm_crc(new))
    struct.pack_into("<I", data, mda, lvmlabel.lvm_crc(bytes(data[mda + 4 : mda + 512])))
    out.write_bytes(data)
    return out


def _seqno_up(text: str) -> str:
    return text.replace("seqno = ", "seqno = 9", 1)


HOSTILE = {
    "absurd segment count": (
        lambda t: t.replace("segment_count = 1", "segment_count = 4000000000", 1), LimitExceeded, "segments"),
    "absurd stripe count": (
        lambda t: t.replace("stripe_count = 2", "stripe_count = 99999999", 1), LimitExceeded, "stripes"),
    "segments that do not add up": (
        lambda t: t.replace("segment_count = 2", "segment_count = 3", 1), CorruptImage, "segment_count"),
    "a thin pool": (lambda t: t.replace('type = "striped"', 'type = "thin-pool"', 1), Unsupported, "thin pool"),
    "an extent past the end of the PV": (
        lambda t: t.replace('"pv0", 0', '"pv0", 900000', 1), CorruptImage, "past the end"),
    "a mirror made of itself": (
        lambda t: t.replace('type = "striped"\nstripe_count = 1', 'type = "mirror"\nmirror_count = 1\nmirrors = ["boot", 0]\nstripe_count = 1', 1),
        LimitExceeded, "max_lvm_lv_depth"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_metadata_is_a_typed_error_on_that_lv(vg, tmp_path, case):
    edit, error, words = HOSTILE[case]
    disk = _with_metadata(vg.disks[0], tmp_path / "d1.img", lambda t: _seqno_up(edit(t)))
    image = _open([disk, vg.disks[1]])
    failed = []
    for lv in vg.lv_sizes:
        try:
            image.devices.filesystem(lvm.grub_lv_name(VG, lv))
        except error as err:
            assert words in str(err)
            failed.append(lv)
    assert failed, f"no LV failed with {error.__name__}"


def test_unparsable_or_deep_metadata_is_reported_on_the_pvs(vg, tmp_path):
    for edit, error, words in (
        (lambda t: t.replace("physical_volumes {", "physical_volumes {{", 1), CorruptImage, "line"),
        (lambda t: t.replace("logical_volumes {", "logical_volumes {" + "a {" * 40 + "}" * 40, 1),
         LimitExceeded, "max_lvm_config_depth"),
        (lambda t: t.replace('id = "', 'id = "\\"', 1)[:-40], CorruptImage, "LVM metadata line"),
    ):
        disk = _with_metadata(vg.disks[0], tmp_path / "bad.img", lambda t: _seqno_up(edit(t)))
        # the damaged copy has the higher seqno but cannot be read: the VG comes from hd1's
        image = _open([disk, vg.disks[1]])
        assert any("LVM2 metadata left out" in w and words in w for w in image.warnings), image.warnings
        assert image.devices.filesystem("lvm/guest--vg-boot").label == "boot"
        # alone, the damaged PV is that error
        alone = _open([disk])
        with pytest.raises(error, match=words):
            alone.devices.filesystem("hd0")
        os.unlink(disk)


def test_damaged_labels_and_areas(vg, tmp_path):
    good = vg.disks[0].read_bytes()[: 2 * MiB]
    cases = []
    bad_crc = bytearray(good)
    bad_crc[512 + 100] ^= 1  # inside the label sector: the label CRC no longer matches
    cases.append((bad_crc, "label CRC"))
    bad_area = bytearray(good)
    _mda, _o, _s = _metadata_place(good)
    bad_area[_mda + 40] ^= 0x40  # the raw_locn offset, and the header CRC with it
    cases.append((bad_area, "header CRC"))
    for data, words in cases:
        path = tmp_path / "label.img"
        path.write_bytes(bytes(data))
        image = _open([path])
        with pytest.raises(CorruptImage, match=words):
            image.devices.filesystem("hd0")
    with pytest.raises(LimitExceeded, match="max_lvm_metadata_bytes"):
        huge = bytearray(good)
        struct.pack_into("<Q", huge, _mda + 48, 64 * MiB)
        struct.pack_into("<I", huge, _mda, lvmlabel.lvm_crc(bytes(huge[_mda + 4 : _mda + 512])))
        path = tmp_path / "huge.img"
        path.write_bytes(bytes(huge))
        _open([path]).devices.filesystem("hd0")


def test_both_front_ends_take_the_disks_in_order(vg, tmp_path):
    """``guestboot list d1 d2`` and ``guestboot-pygrub d1 d2``: the second image is hd1."""
    import sys

    listed = subprocess.run([sys.executable, "-m", "guestboot", "list", *map(str, vg.disks)],
                            capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    assert "(lvm/guest--vg-boot)/grub/grub.cfg" in listed.stdout
    assert listed.stdout.splitlines()[1].split(None, 2) == ["*", "0", "Debian GNU/Linux, on LVM"]
    one = subprocess.run([sys.executable, "-m", "guestboot", "list", str(vg.disks[0])],
                         capture_output=True, text=True, timeout=120)
    assert one.returncode == 0 and "is missing" in one.stderr  # boot LV is on hd0 alone
    out = tmp_path / "out"
    out.mkdir()
    pygrub = subprocess.run(
        [sys.executable, "-c", "import sys; from guestboot.cli.pygrub import main; sys.exit(main())",
         "-q", f"--output-directory={out}", "--output-format=simple", *map(str, vg.disks)],
        capture_output=True, text=True, timeout=120)
    assert pygrub.returncode == 0, pygrub.stderr
    fields = dict(line.split(" ", 1) for line in pygrub.stdout.splitlines() if line)
    assert Path(fields["kernel"]).read_bytes() == (vg.trees["boot"] / "vmlinuz-6.1.0-lvm").read_bytes()
    assert fields["args"] == "root=/dev/mapper/guest--vg-root--a ro quiet"
    swapped = subprocess.run([sys.executable, "-m", "guestboot", "ls", str(vg.disks[1]), "--disk",
                              str(vg.disks[0])], capture_output=True, text=True, timeout=120)
    assert swapped.returncode == 0, swapped.stderr
    assert "hd0,msdos1" in swapped.stdout and "lvm/guest--vg-boot" in swapped.stdout


# --- mirror, raid1, cached and thin LVs: lvm2 needs device-mapper for them, so they are made in a
# QEMU guest (tests/builders/md_guest.py) with the real lvm2 and the kernel's dm targets;
# the file system is written through the activated LVs, so each leg holds it ----------------


@pytest.fixture(scope="session")
def dm_vg(tmp_path_factory):
    from builders.initramfs import ToolMissing
    from builders.md_guest import LVM_CONFIG, run_guest

    for tool, package in (("lvm", "lvm2"), ("qemu-system-x86_64", "qemu-system-x86")):
        if shutil.which(tool) is None:
            unavailable(f"{tool} not installed (apt-get install {package})")
    work = tmp_path_factory.mktemp("lvm-dm")
    tree = random_tree(work / "tree", 21, {"vmlinuz": 2_000_000, "etc/motd": 12, "odd": 65_537})
    payload = _mkfs(tree, work / "payload.ext4", 10 * MiB, "legs")
    disks = []
    for name in ("a", "b"):
        disks.append(work / f"{name}.img")
        with open(disks[-1], "wb") as f:
            f.truncate(48 * MiB)
    def lvm_cmd(command: str) -> str:
        return f"lvm {command} --config '{LVM_CONFIG}'"

    job = "\n".join([
        lvm_cmd("pvcreate") + " -y /dev/vda /dev/vdb",
        lvm_cmd("vgcreate") + " -s 1m vg-dm /dev/vda /dev/vdb",
        lvm_cmd("lvcreate") + " -y --type raid1 -m1 --nosync -n r1 -L 12m vg-dm",
        lvm_cmd("lvcreate") + " -y --type mirror -m1 --mirrorlog core --nosync -n mir -L 12m vg-dm",
        lvm_cmd("lvcreate") + " -y --type thin-pool -n pool -L 8m vg-dm",
        lvm_cmd("lvcreate") + " -y -V 16m -T vg-dm/pool -n thin",
        lvm_cmd("lvcreate") + " -y -n cached -L 12m vg-dm /dev/vda",
        lvm_cmd("lvcreate") + " -y --type cache-pool -n cpool -L 8m vg-dm /dev/vdb",
        lvm_cmd("lvconvert") + " -y --type cache --cachepool vg-dm/cpool --cachemode writethrough vg-dm/cached",
        "dd if=/dev/vdc of=/dev/mapper/vg--dm-r1 bs=1M conv=fsync",
        "dd if=/dev/vdc of=/dev/mapper/vg--dm-mir bs=1M conv=fsync",
        "dd if=/dev/vdc of=/dev/mapper/vg--dm-cached bs=1M conv=fsync",
        lvm_cmd("vgchange") + " -an vg-dm",
        "",
    ])
    try:
        run_guest([*disks, payload], job, work, tools=("lvm",))
    except ToolMissing as err:
        unavailable(str(err))
    return disks, tree


def test_raid1_and_mirror_lvs_read_as_grub_reads_them(dm_vg):
    disks, tree = dm_vg
    image = _open(disks)
    grub_lvs = [n.strip("()") for n in _grub(disks, "ls").stdout.decode().split() if n.startswith("(lvm/")]
    readable = [d.name for d in image.devices if d.name.startswith("lvm/") and d.fs is not None]
    assert readable == grub_lvs == ["lvm/vg--dm-cached", "lvm/vg--dm-mir", "lvm/vg--dm-r1"]
    for device in readable:
        for rel in _files(tree):
            source = image.devices.open(device, f"/{rel}")
            assert source.pread(0, source.size) == (tree / rel).read_bytes(), (device, rel)
            grub = _grub(disks, "crc", f"({device})/{rel}")
            assert int(grub.stdout.split()[0], 16) == zlib.crc32((tree / rel).read_bytes())


def test_each_leg_alone_is_enough(dm_vg):
    disks, tree = dm_vg
    for one in disks:  # hd0 alone: the legs on the other disk are missing (and the cache pool)
        image = _open([one])
        for device in ("lvm/vg--dm-r1", "lvm/vg--dm-mir"):
            source = image.devices.open(device, "/odd")
            assert source.pread(0, source.size) == (tree / "odd").read_bytes()


def test_thin_volumes_say_they_are_not_supported(dm_vg):
    disks, _tree = dm_vg
    image = _open(disks)
    with pytest.raises(Unsupported, match="LV thin is a thin volume: not supported"):
        image.devices.filesystem("lvm/vg--dm-thin")
    with pytest.raises(Unsupported, match="thin pool"):
        image.devices.filesystem("lvm/vg--dm-pool")
    # GRUB skips what it cannot read; guestboot lists it, saying why
    assert "(lvm/vg--dm-thin)" not in _grub(disks, "ls").stdout.decode()


def test_a_pv_inside_its_own_vg_is_a_loop_not_read(vg, tmp_path):
    """The boot LV holds a copy of hd0's first MiB (its PV label and metadata): read as a
    PV it would make the same VG again, inside itself; it is left out with a warning."""
    disk = tmp_path / "d1.img"
    shutil.copyfile(vg.disks[0], disk)
    image = _open([disk, vg.disks[1]])
    boot = image.devices.get("lvm/guest--vg-boot").volume.source
    (_fd, offset, _length), = [(r.fd, r.offset, r.length) for r in boot.runs(0, 4096)]
    head = vg.disks[0].read_bytes()[: 1 << 20]
    with open(disk, "r+b") as f:
        f.seek(offset)
        f.write(head)
    image = _open([disk, vg.disks[1]])
    assert any("holds a physical volume of its own VG guest-vg (a loop)" in w for w in image.warnings)
    assert [n for n in image.devices.names() if n.startswith("lvm/")] == [
        "lvm/guest--vg-span", "lvm/guest--vg-root--a", "lvm/guest--vg-boot"]


def test_a_damaged_first_metadata_copy_falls_back_to_the_second(tmp_path):
    """pvcreate --metadatacopies 2 keeps a second copy at the end of the PV: with the first
    copy's text damaged, the VG is read from the second (lvm2 does the same)."""
    missing = lvmtool.lvm_available()
    if missing:
        unavailable(missing)
    disk = tmp_path / "two-copies.img"
    with open(disk, "wb") as f:
        f.truncate(24 * MiB)
    with lvmtool.loop_devices([disk]) as (device,):
        tool = lvmtool.Lvm([device])
        tool("pvcreate", "-y", "--metadatacopies", "2", device)
        tool("vgcreate", "-s", "1m", "twice", device)
        tool("lvcreate", "-an", "-Zn", "-n", "lv", "-L", "8m", "twice")
    data = bytearray(disk.read_bytes())
    mda, text_offset, _size = _metadata_place(bytes(data))
    data[mda + text_offset + 2] ^= 0x20  # "twice {" -> "tWice {": the text CRC fails
    disk.write_bytes(bytes(data))
    image = _open([disk])
    assert image.devices.get("lvm/twice-lv").volume.size == 8 * MiB
    assert image.devices.get("hd0").problem == "LVM2 physical volume of twice"


# --- a seeded fuzz campaign over the real metadata: only typed errors ------------------

FUZZ_TOKENS = ["{", "}", "[", "]", "=", ",", '"', "\\", "#", "\n", "-1", "99999999999999999999", "0",
               "segment_count = 2\n", 'type = "mirror"\n', 'type = "raid1"\n', 'mirrors = ["boot", 0]\n',
               'raids = ["boot", "span"]\n', 'stripes = ["pv9", 0]\n', "stripe_count = 0\n", "extent_size = 0\n",
               "pv0", "pv1", '"VISIBLE"', "start_extent = 1\n", "extent_count = 0\n", "\0", "\xff"]


def test_mutated_metadata_gives_typed_errors_only(vg, tmp_path):
    """200 mutations of the real text (tokens inserted, deleted, replaced; the CRCs made
    right so the parser and the LV builder see them): opening, probing and reading every
    LV ends in success or a GuestbootError, each in well under a second."""
    import time

    from guestboot.errors import GuestbootError

    rng = random.Random(7)
    original = _metadata_text(vg.disks[0])
    for case in range(200):
        text = original
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(len(text))
            choice = rng.random()
            if choice < 0.4:
                text = text[:at] + rng.choice(FUZZ_TOKENS) + text[at:]
            elif choice < 0.7:
                text = text[:at] + text[at + rng.randint(1, 20):]
            else:
                text = text[:at] + rng.choice(FUZZ_TOKENS) + text[at + rng.randint(1, 8):]
        disk = _with_metadata(vg.disks[0], tmp_path / "fuzz.img", lambda _t, text=text: _seqno_up(text))
        start = time.monotonic()
        try:
            image = _open([disk, vg.disks[1]])
            for device in image.devices:
                if device.name.startswith("lvm/"):
                    try:
                        source = image.devices.filesystem(device.name)
                    except GuestbootError:
                        continue
                    assert source is not None
        except GuestbootError:
            pass
        assert time.monotonic() - start < 5, f"case {case} took too long"


def _metadata_text(path: Path) -> str:
    data = path.read_bytes()[: 2 * MiB]
    mda, text_offset, text_size = _metadata_place(data)
    return data[mda + text_offset : mda + text_offset + text_size].rstrip(b"\0").decode()


def test_a_cloned_disk_given_twice_is_a_duplicate_not_a_second_vg(vg):
    """The same PV image given as hd0 and hd2 (a cloned disk attached twice): the first is
    used, the second says it is a duplicate; the VG is made once."""
    image = _open([vg.disks[0], vg.disks[1], vg.disks[0]])
    assert image.devices.get("hd2").problem.startswith("LVM2 physical volume ")
    assert "a duplicate of (hd0)" in image.devices.get("hd2").problem
    assert sorted(n for n in image.devices.names() if n.startswith("lvm/")) == sorted(
        lvm.grub_lv_name(VG, lv) for lv in vg.lv_sizes)
    assert image.devices.filesystem("lvm/guest--vg-boot").label == "boot"


def test_a_writeback_cache_is_not_read_from_its_origin(dm_vg, tmp_path):
    """The same metadata with the pool's cache_mode edited to writeback: the origin may
    lack what only the cache holds, so the LV says so instead of reading it."""
    disks, _tree = dm_vg
    edited = [_with_metadata(d, tmp_path / d.name, lambda t: _seqno_up(
        t.replace('cache_mode = "writethrough"', 'cache_mode = "writeback"'))) for d in disks]
    image = _open(edited)
    with pytest.raises(Unsupported, match="cached in writeback mode"):
        image.devices.filesystem("lvm/vg--dm-cached")
