"""BSD disklabels, Sun labels, the Solaris VTOC and the Solaris EFI label, with GRUB's names.

GRUB (2.06 and 2.12) lists nested partitions ("(hd0,msdos1,bsd1)") but cannot open them by that name
("no such partition"); for those the tree alone is the expected answer.

Real tools where Debian has one: util-linux fdisk writes BSD disklabels inside an MBR
partition (its "b" command, for FreeBSD 0xa5, NetBSD 0xa9 and OpenBSD 0xa6 slices) and
SPARC Sun labels (its "s" command); sgdisk writes Solaris EFI labels (GPT with the Solaris
type GUIDs); mke2fs -d puts file systems from reference trees into the partitions. GRUB
(grub-fstest) is the peer for names and bytes.

No Debian tool writes an x86 Solaris VTOC (bsdlabel/disklabel/format are not packaged):
that one is hand-made below, field by field from the dk_label layout, and checked against
both GRUB's sunpc reader and the real pygrub (which boots from the VTOC's root slice).
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
from builders.disk import random_tree, sfdisk_image, sgdisk_image
from prereq import GRUB_VERSIONS_CHECKED, host_grub_version, need_real_pygrub, unavailable

from guestboot.errors import LimitExceeded
from guestboot.image import open_disks

MiB = 1 << 20
SECTOR = 512
TREE_FILES = {"boot/vmlinuz-bsd": 300_000, "boot/initrd.img-bsd": 200_000, "note": 33}
GRUB_CFG = """\
set default=0
set timeout=1
menuentry 'Labelled' {
    linux /boot/vmlinuz-bsd root=/dev/sda1 ro
    initrd /boot/initrd.img-bsd
}
"""


def _need(tool: str, package: str) -> None:
    if shutil.which(tool) is None:
        unavailable(f"{tool} not installed (apt-get install {package})")


def _tree(top: Path, seed: int) -> Path:
    random_tree(top, seed, TREE_FILES)
    (top / "boot" / "grub").mkdir(parents=True, exist_ok=True)
    (top / "boot" / "grub" / "grub.cfg").write_text(GRUB_CFG)
    return top


def _mke2fs(disk: Path, offset: int, size: int, tree: Path, label: str) -> None:
    subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", "-T", "default", "-L", label, "-d", str(tree),
                    "-E", f"offset={offset}", str(disk), f"{size // 1024}k"], check=True, capture_output=True,
                   timeout=120)


def _grub(disk: Path, *command: str) -> subprocess.CompletedProcess:
    _need("grub-fstest", "grub-common")
    return subprocess.run(["grub-fstest", str(disk), *command], capture_output=True, timeout=120)


def _grub_devices(disk: Path) -> list[str]:
    """GRUB's devices of ``disk``: the disk, then its partitions in the order GRUB's
    partition maps find them (grub-fstest's ls prints the partitions last to first)."""
    listed = [n.strip("()").replace("loop0", "hd0", 1) for n in _grub(disk, "ls").stdout.decode().split()
              if n.startswith("(loop0")]
    return listed[:1] + listed[:0:-1]


def _open(path: Path):
    return open_disks([(os.open(path, os.O_RDONLY | os.O_CLOEXEC), path.name)])


def _agree(disk: Path, tree: Path, device: str, label: str) -> None:
    """guestboot's devices are GRUB's, and the file system on ``device`` reads as the tree,
    byte for byte and as GRUB's CRC of each file."""
    image = _open(disk)
    assert image.devices.names() == _grub_devices(disk)
    assert image.devices.filesystem(device).label == label
    grub_device = device.replace("hd0", "loop0", 1)
    for path in sorted(p for p in tree.rglob("*") if p.is_file()):
        rel = path.relative_to(tree).as_posix()
        source = image.devices.open(device, f"/{rel}")
        assert source.pread(0, source.size) == path.read_bytes(), rel
        grub = _grub(disk, "crc", f"({grub_device})/{rel}")
        if grub.returncode and b"no such partition" in grub.stderr and device.count(",") == 2:
            # GRUB (2.06 and 2.12 alike) lists a partition inside a partition but cannot
            # open it by that name (grub_partition_probe fails on the second level); the
            # tree is the answer
            assert (host_grub_version() or "").startswith(GRUB_VERSIONS_CHECKED), grub.stderr
            continue
        assert grub.returncode == 0, grub.stderr
        assert int(grub.stdout.split()[0], 16) == zlib.crc32(path.read_bytes())


# --- BSD disklabels by fdisk ------------------------------------------------------------

BSD = {"0xa5": "msdos1,bsd", "0xa9": "netbsd", "0xa6": "openbsd"}
A_START, A_SECTORS = 4096, 20480  # "a": 10 MiB
D_START, D_SECTORS = 26624, 16384  # "d": 8 MiB


@pytest.fixture(scope="module")
def bsd_disks(tmp_path_factory) -> dict[str, tuple[Path, Path, Path]]:
    _need("fdisk", "fdisk")
    work = tmp_path_factory.mktemp("bsd")
    made = {}
    for kind in BSD:
        disk = sfdisk_image(work / f"{kind}.img", 64 * MiB,
                            f"label: dos\nstart=2048, size=100000, type={kind[2:]}\nstart=104448, type=83\n")
        # fdisk: b (nested BSD label), y (create one), then "a" and "d" at given sectors
        script = f"b\ny\nn\na\n{A_START}\n+{A_SECTORS - 1}\nn\nd\n{D_START}\n+{D_SECTORS - 1}\nw\nq\n"
        done = subprocess.run(["fdisk", str(disk)], input=script, capture_output=True, text=True, timeout=60)
        assert "Disklabel written" in done.stdout, done.stdout + done.stderr
        trees = (_tree(work / f"{kind}-a", 1), _tree(work / f"{kind}-d", 2))
        _mke2fs(disk, A_START * SECTOR, A_SECTORS * SECTOR, trees[0], "bsd-a")
        _mke2fs(disk, D_START * SECTOR, D_SECTORS * SECTOR, trees[1], "bsd-d")
        made[kind] = (disk, *trees)
    return made


@pytest.mark.parametrize("kind", sorted(BSD))
def test_bsd_labels_read_as_grub_names_them(bsd_disks, kind):
    disk, tree_a, tree_d = bsd_disks[kind]
    prefix = BSD[kind]
    _agree(disk, tree_a, f"hd0,{prefix}1", "bsd-a")
    _agree(disk, tree_d, f"hd0,{prefix}4", "bsd-d")
    image = _open(disk)
    assert image.devices.get(f"hd0,{prefix}1").volume.start == A_START * SECTOR
    if kind == "0xa5":  # GRUB's numeric form reaches a nested partition too
        assert image.devices.canonical("(hd0,1,4)") == "hd0,msdos1,bsd4"


def test_a_guest_on_a_freebsd_slice_lists_and_extracts(bsd_disks, tmp_path):
    disk, tree_a, _tree_d = bsd_disks["0xa5"]
    done = subprocess.run([sys.executable, "-m", "guestboot", "extract", str(disk), "-o", str(tmp_path / "o")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "BOOT_IMAGE=/boot/vmlinuz-bsd root=/dev/sda1 ro"
    assert (tmp_path / "o" / "kernel").read_bytes() == (tree_a / "boot" / "vmlinuz-bsd").read_bytes()


def test_hostile_bsd_labels(bsd_disks, tmp_path):
    disk, _a, _d = bsd_disks["0xa5"]
    with open(disk, "rb") as whole:  # its first 64 MiB only (not the whole disk, then a slice)
        data = bytearray(whole.read(64 * MiB))
    label = 2048 * SECTOR + SECTOR
    # 60000 partitions claimed: the entries that fit in the sector are read, with a warning
    struct.pack_into("<H", data, label + 138, 60000)
    path = tmp_path / "many.img"
    path.write_bytes(bytes(data))
    image = _open(path)
    assert any("lists 60000 partitions" in w and "max_bsd_partitions" in w for w in image.warnings)
    assert image.devices.filesystem("hd0,msdos1,bsd1").label == "bsd-a"
    # an entry that runs past the disk is clipped, one that starts past it is left out
    struct.pack_into("<H", data, label + 138, 4)
    struct.pack_into("<II", data, label + 148 + 16 * 3, 0xFFFFFF00, 0xFFFFFF00)
    path.write_bytes(bytes(data))
    image = _open(path)
    assert "hd0,msdos1,bsd4" not in image.devices.names()
    assert any("bsd4: partition starts past the end" in w for w in image.warnings)


def test_nested_partitions_are_bounded(tmp_path, monkeypatch):
    """A label of 22 entries in each of four slices: more than max_partitions in all is
    LimitExceeded (hand-made: a bound, not a layout, is what is tested)."""
    from guestboot import limits

    disk = tmp_path / "wide.img"
    slices = "".join(f"start={2048 + i * 4096}, size=4096, type=a5\n" for i in range(4))
    sfdisk_image(disk, 32 * MiB, "label: dos\n" + slices)
    data = bytearray(disk.read_bytes())
    for i in range(4):
        label = (2048 + i * 4096) * SECTOR + SECTOR
        struct.pack_into("<I", data, label, 0x82564557)
        struct.pack_into("<I", data, label + 132, 0x82564557)
        struct.pack_into("<H", data, label + 138, 22)
        for entry in range(22):
            struct.pack_into("<II", data, label + 148 + 16 * entry, 8, 2048 + i * 4096 + 16 + entry * 8)
        struct.pack_into("<II", data, label + 148 + 32, 4096, 2048 + i * 4096)  # "c": the slice
    disk.write_bytes(bytes(data))
    assert len(_open(disk).devices.names()) == 1 + 4 + 4 * 21
    import guestboot.volume as volume_stage

    monkeypatch.setattr(volume_stage, "LIMITS", limits.LIMITS._replace(max_partitions=64))
    with pytest.raises(LimitExceeded, match="max_partitions"):
        _open(disk)


# --- Sun labels ---------------------------------------------------------------------------


def test_sparc_sun_label_by_fdisk(tmp_path):
    _need("fdisk", "fdisk")
    disk = tmp_path / "sun.img"
    with open(disk, "wb") as f:
        f.truncate(64 * MiB)
    tree = _tree(tmp_path / "sun-tree", 3)
    _mke2fs(disk, 0, 38 * MiB, tree, "sun-root")  # sun1 starts at cylinder 0, as fdisk makes it
    done = subprocess.run(["fdisk", str(disk)], input="s\nw\n", capture_output=True, text=True, timeout=60)
    assert "altered" in done.stdout, done.stdout + done.stderr
    _agree(disk, tree, "hd0,sun1", "sun-root")
    assert _open(disk).devices.get("hd0,sun2").volume.type_id == "sun:130"  # Linux swap (0x82)


def _vtoc(slices: list[tuple[int, int, int]]) -> bytes:
    """An x86 Solaris VTOC sector (struct dk_label, sys/dklabel.h and sys/vtoc.h):
    v_sanity 0x600DDEEE at 12, v_version 1 at 16, v_sectorsz 512 at 28, v_nparts 16 at 30,
    16 slices of (tag, flag, start, size) at 72, dkl_magic 0xDABE at 508, and dkl_cksum at
    510 making the XOR of all 256 words zero."""
    label = bytearray(SECTOR)
    struct.pack_into("<II", label, 12, 0x600DDEEE, 1)
    struct.pack_into("<HH", label, 28, 512, 16)
    for index, (tag, start, size) in enumerate(slices):
        struct.pack_into("<HHII", label, 72 + 12 * index, tag, 0, start, size)
    struct.pack_into("<H", label, 508, 0xDABE)
    xor = 0
    for (word,) in struct.iter_unpack("<H", bytes(label[:510])):
        xor ^= word
    struct.pack_into("<H", label, 510, xor)
    return bytes(label)


def test_solaris_vtoc_agrees_with_grub_and_pygrub(tmp_path):
    disk = sfdisk_image(tmp_path / "solaris.img", 48 * MiB, "label: dos\nstart=2048, size=80000, type=bf\n")
    root_start, root_size = 4096, 40960  # slice 0 (V_ROOT), counted from the fdisk partition
    with open(disk, "r+b") as f:
        f.seek(2048 * SECTOR + SECTOR)
        f.write(_vtoc([(2, root_start, root_size), (3, 45056, 8192), (5, 0, 80000)]))
    tree = _tree(tmp_path / "sol-tree", 4)
    _mke2fs(disk, (2048 + root_start) * SECTOR, root_size * SECTOR, tree, "sol-root")
    _agree(disk, tree, "hd0,msdos1,sunpc1", "sol-root")
    assert _open(disk).devices.get("hd0,msdos1,sunpc2").volume.type_id == "vtoc:3"
    # the real pygrub finds the root slice through the same VTOC and extracts the same files
    pygrub = need_real_pygrub()
    outputs = []
    for who, command in (("pygrub", [str(pygrub)]), ("ours", [sys.executable, "-m", "guestboot.cli.pygrub"])):
        out = tmp_path / who
        out.mkdir()
        done = subprocess.run([*command, "-q", "--output-format=simple", f"--output-directory={out}", str(disk)],
                              capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        assert done.returncode == 0, (who, done.stderr)
        fields = dict(line.split(" ", 1) for line in done.stdout.splitlines() if line)
        outputs.append((Path(fields["kernel"]).read_bytes(), Path(fields["ramdisk"]).read_bytes(), fields["args"]))
    assert outputs[0] == outputs[1]
    assert outputs[1][0] == (tree / "boot" / "vmlinuz-bsd").read_bytes()
    # a VTOC whose checksum is wrong is not a label (GRUB: "invalid checksum")
    with open(disk, "r+b") as f:
        f.seek(2048 * SECTOR + SECTOR + 510)
        f.write(b"\x00\x01")
    image = _open(disk)
    assert "hd0,msdos1,sunpc1" not in image.devices.names()
    assert any("VTOC checksum does not match" in w for w in image.warnings)


def test_solaris_efi_label_by_sgdisk(tmp_path):
    """A Solaris EFI label is a GPT with Solaris type GUIDs and a reserved partition 9."""
    _need("sgdisk", "gdisk")
    disk = sgdisk_image(tmp_path / "efi.img", 64 * MiB, [
        "-n1:2048:+24M", "-t1:bf00", "-c1:rpool", "-n2:0:+8M", "-t2:bf02", "-n9:-8M:0", "-t9:bf07"])
    tree = _tree(tmp_path / "efi-tree", 5)
    _mke2fs(disk, 2048 * SECTOR, 24 * MiB, tree, "sol-efi")
    _agree(disk, tree, "hd0,gpt1", "sol-efi")
    image = _open(disk)
    assert image.devices.get("hd0,gpt1").volume.type_id == "6a85cf4d-1dd2-11b2-99a6-080020736631"  # Solaris root
    assert image.devices.get("hd0,gpt1").volume.label == "rpool"
    assert "hd0,gpt9" in image.devices.names()


def test_a_bsd_label_inside_a_gpt_partition(bsd_disks, tmp_path):
    """GRUB reads a disklabel inside a GPT partition too ("(hd0,gpt1,bsd1)"), its offsets
    counted from the partition (no "c" kludge there). The label is fdisk's, taken from the
    FreeBSD slice image; sgdisk makes the GPT partition (type a500, FreeBSD disklabel)."""
    _need("sgdisk", "gdisk")
    source, _a, _d = bsd_disks["0xa5"]
    label = source.read_bytes()[2048 * SECTOR + SECTOR : 2048 * SECTOR + 2 * SECTOR]
    disk = sgdisk_image(tmp_path / "gpt-bsd.img", 64 * MiB, ["-n1:2048:+40M", "-t1:a500"])
    with open(disk, "r+b") as f:
        f.seek(2048 * SECTOR + SECTOR)
        f.write(label)
    tree = _tree(tmp_path / "gpt-bsd-tree", 6)
    _mke2fs(disk, (2048 + A_START) * SECTOR, A_SECTORS * SECTOR, tree, "gpt-bsd")
    _agree(disk, tree, "hd0,gpt1,bsd1", "gpt-bsd")
    image = _open(disk)
    assert image.devices.get("hd0,gpt1").volume.type_id == "516e7cb4-6ecf-11d6-8ff8-00022d09712b"
    assert image.devices.get("hd0,gpt1,bsd4").volume.start == (2048 + D_START) * SECTOR
