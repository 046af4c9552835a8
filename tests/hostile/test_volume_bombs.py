"""LVM2 metadata bombs: a real volume group (pvcreate/vgcreate/lvcreate on a loop device,
activation off; the guest's ext4 written into its LV where lvm2 put it) whose metadata
text is then edited, and its checksums made right again, to attack the parser: sections
nested thousands deep, 1500 LVs, absurd segment/extent counts, an 800 KB string,
a text size or offset that lies. The control reads the guest through the LV; every
attack ends in a typed error or the same safe result."""

from __future__ import annotations

import struct
import subprocess

import pytest
from builders import lvm as lvmtool
from prereq import unavailable

from guestboot.volume import lvmlabel
from hostile import configs
from hostile.configs import GUEST_INITRD, GUEST_KERNEL
from hostile.harness import expect_error, expect_kernel, expect_safe, extract, guestboot
from hostile.images import altered

MiB = 1 << 20
VG = "hostilevg"


@pytest.fixture(scope="module")
def pv_disk(images, tmp_path_factory):
    missing = lvmtool.lvm_available()
    if missing:
        unavailable(missing)
    fs = images.fs("lvm-guest", "ext4", configs.guest("grub2"))
    work = tmp_path_factory.mktemp("lvm-bombs")
    disk = work / "pv.img"
    with open(disk, "wb") as f:
        f.truncate(48 * MiB)
    with lvmtool.loop_devices([disk]) as (loop,):
        tool = lvmtool.Lvm([loop])
        tool("pvcreate", "-y", loop)
        tool("vgcreate", "-s", "1m", VG, loop)
        tool("lvcreate", "-an", "-Zn", "-n", "boot", "-L", "32m", VG)
        segments = lvmtool.lv_segments(tool, VG)
        lvmtool.write_into_lv(fs, segments["boot"], lvmtool.extent_bytes(tool, VG), lvmtool.pe_starts(tool),
                              {loop: (disk, 0)})
    return disk


def _metadata_place(disk: bytes) -> tuple[int, int, int]:
    """(metadata area start, text offset, text size): LVM2's on-disk format (label in one of
    the first four sectors, its PV header's metadata area list, the area's raw_locn)."""
    sector = next(n for n in range(4) if disk[n * 512 : n * 512 + 8] == b"LABELONE")
    label = disk[sector * 512 : sector * 512 + 512]
    pos = struct.unpack_from("<I", label, 20)[0] + 40
    while struct.unpack_from("<Q", label, pos)[0]:  # data areas, up to a zero entry
        pos += 16
    mda = struct.unpack_from("<Q", label, pos + 16)[0]
    text_offset, text_size = struct.unpack_from("<QQ", disk, mda + 40)
    return mda, text_offset, text_size


def _edited(edit, header=None):
    def make(disk, work):
        data = disk.read_bytes()
        mda, text_offset, text_size = _metadata_place(data)
        text = data[mda + text_offset : mda + text_offset + text_size].rstrip(b"\0").decode()
        new = edit(text).replace("seqno = ", "seqno = 9", 1).encode() + b"\0"
        assert len(new) < 1000 * 1024, len(new)
        locn = struct.pack("<QQI", text_offset, len(new), lvmlabel.lvm_crc(new))
        if header is not None:
            locn = header(text_offset, len(new), lvmlabel.lvm_crc(new))
        area = bytearray(data[mda : mda + 512])
        area[40 : 40 + len(locn)] = locn
        struct.pack_into("<I", area, 0, lvmlabel.lvm_crc(bytes(area[4:512])))
        return altered(disk, work / "x.img", [(mda + text_offset, new), (mda, bytes(area))])
    return make


def _many_lvs(text: str) -> str:
    start = text.index("boot {")
    depth, end = 0, start
    while True:  # the boot LV's section, braces balanced
        depth += {"{": 1, "}": -1}.get(text[end], 0)
        end += 1
        if depth == 0 and text[end - 1] == "}":
            break
    section = text[start:end]
    copies = "\n".join(section.replace("boot {", f"lv{n} {{", 1) for n in range(1500))
    return text[:end] + "\n" + copies + text[end:]


ATTACKS = {
    "nesting-5000-deep": (_edited(lambda t: t.replace("logical_volumes {", "logical_volumes {" + "a {" * 5000
                                                    + "}" * 5000, 1)), {3, 5}),
    "1500-lvs": (_edited(_many_lvs), None),
    "segment-count-4e9": (_edited(lambda t: t.replace("segment_count = 1", "segment_count = 4000000000", 1)), {3, 5}),
    "extent-count-2e63": (_edited(lambda t: t.replace("extent_count = 32", "extent_count = 9223372036854775807", 1)),
                          {3, 5}),
    "800KB-string": (_edited(lambda t: t.replace('creation_host = "', 'creation_host = "' + "h" * 800_000, 1)), None),
    "text-size-lie": (_edited(lambda t: t, lambda off, size, crc: struct.pack("<QQI", off, 1 << 40, crc)), {3, 5}),
    "text-offset-lie": (_edited(lambda t: t, lambda off, size, crc: struct.pack("<QQI", 1 << 50, size, crc)), {3, 5}),
}


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_lvm_metadata_attack(images, arena, pv_disk, name):
    make, codes = ATTACKS[name]
    image = images.derived(f"lvm-{name}", lambda work: make(pv_disk, work))
    result = extract(arena, image)
    if codes is None:  # big but legal: the guest still boots, within bounds, or a limit
        if result.rc != 0:
            expect_error(result, {3, 5})
        expect_safe(result, GUEST_KERNEL)
    else:
        expect_error(result, codes | {6})  # 6: "no config", its message naming the metadata error
        assert b"lvm" in result.stderr.lower(), result  # the error names the LVM structure


def test_lvm_control(arena, pv_disk):
    result = extract(arena, pv_disk)
    expect_kernel(result, GUEST_KERNEL, GUEST_INITRD)
    listing = guestboot(arena, "ls", str(pv_disk))
    assert b"lvm/hostilevg-boot" in listing.stdout, listing
