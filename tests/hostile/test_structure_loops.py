"""Cycles and impossible counts in on-disk structures, made by altering real images where
the tools put them: an ext4 extent tree whose index points back at itself or at its root
(debugfs says where the blocks are; metadata_csum off so the cycle, not a checksum, is
what the parser meets), FAT cluster chains that loop (in a file and in a directory), an
ISO 9660 Rock Ridge continuation area that continues into itself (XSA-497), a GPT header
claiming 2^32 entries (CRC made valid), MBR extended-partition chains that loop. Every
case ends in a typed error or a bounded, safe result."""

from __future__ import annotations

import struct
import subprocess
import zlib

import pytest

from hostile import configs
from hostile.configs import GUEST_FILES, GUEST_INITRD, GUEST_KERNEL
from hostile.harness import expect_error, expect_kernel, expect_safe, extract, guestboot
from hostile.images import Holey, Link, altered

HOLEY = Holey(400)  # 400 extents: an extent tree of depth 2 in 1 KiB blocks


def _debugfs(image, request: str) -> str:
    return subprocess.run(["debugfs", "-R", request, str(image)], check=True, capture_output=True, text=True).stdout


# --- ext4 extent tree -------------------------------------------------------------------

def _ext4_extent_cycle(kind: str):
    def make(base, work):
        block = int(next(line.split()[-1] for line in _debugfs(base, "stats").splitlines() if line.startswith("Block size:")))
        rows = [line.split() for line in _debugfs(base, "ex /boot/vmlinuz").splitlines()[1:] if line.strip()]
        # " 0/ 2   1/  1    12 -  4791  3650   4780": level, entry, logical range, physical
        root_index = int(next(row for row in rows if row[0] == "0/")[7])
        first_leaf_index = int(next(row for row in rows if row[0] == "1/")[7])
        if kind == "index-to-itself":
            return altered(base, work / "x.img", [(root_index * block + 12 + 4, struct.pack("<I", root_index))])
        # an index block one level down made a depth-1 node pointing back at the first
        return altered(base, work / "x.img", [(first_leaf_index * block + 6, struct.pack("<H", 1)),
                                              (first_leaf_index * block + 12 + 4, struct.pack("<I", root_index))])
    return make


@pytest.mark.parametrize("kind", ["index-to-itself", "index-to-its-parent"])
@pytest.mark.parametrize("sandbox", [True, False], ids=["sandbox", "no-sandbox"])
def test_ext4_extent_tree_cycle(images, arena, kind, sandbox):
    base = images.fs("extent-cycle", "ext4", {**GUEST_FILES, "/boot/vmlinuz": HOLEY, **configs.entry("grub2")},
                     options=("-O", "^metadata_csum", "-b", "1024"))
    image = images.derived(f"ext4-{kind}", lambda work: _ext4_extent_cycle(kind)(base, work))
    expect_error(extract(arena, image, sandbox=sandbox), {3, 5})


def test_ext4_extent_tree_control(images, arena):
    """The same image unaltered: the tree maps the file (so the cycles above are met)."""
    base = images.fs("extent-cycle", "ext4", {**GUEST_FILES, "/boot/vmlinuz": HOLEY, **configs.entry("grub2")},
                     options=("-O", "^metadata_csum", "-b", "1024"))
    result = extract(arena, base)
    assert result.rc == 0 and (arena.out / "kernel").read_bytes() == HOLEY.data(), result


# --- XFS bmap B+tree -------------------------------------------------------------------------

def _xfs_bmbt_cycle(kind, base, work):
    """``self``: the first bmbt block below the inode's root made a node (level 1) whose
    first pointer is itself; ``alias``: the root's second pointer made the first (one
    leaf reached twice, its keys out of order). xfs_db writes the fields, fixing CRCs."""
    out = altered(base, work / "x.img", [])
    listing = subprocess.run(["xfs_db", "-r", "-c", "path /boot", "-c", "ls", str(out)], check=True, capture_output=True,
                             text=True).stdout
    ino = next(line.split()[1] for line in listing.splitlines() if line.split()[-2:-1] == ["vmlinuz"])
    root = subprocess.run(["xfs_db", "-r", "-c", f"inode {ino}", "-c", "print core.format u3.bmbt.ptrs", str(out)],
                          check=True, capture_output=True, text=True).stdout
    assert "btree" in root, root
    child = root.split("= ", 2)[-1].split()[0].split(":")[1]  # "u3.bmbt.ptrs[1-5] = 1:15 2:70 …"
    if kind == "alias":
        subprocess.run(["xfs_db", "-x", "-c", f"inode {ino}", "-c", f"write u3.bmbt.ptrs[2] {child}", str(out)],
                       check=True, capture_output=True)
        return out
    for request in ("write level 1", f"write ptrs[1] {child}"):
        subprocess.run(["xfs_db", "-x", "-c", f"fsblock {child}", "-c", "type bmapbtd", "-c", request, str(out)],
                       check=True, capture_output=True)
    return out


@pytest.mark.parametrize("kind,sandbox", [("self", True), ("self", False), ("alias", True)],
                         ids=["self-sandbox", "self-no-sandbox", "alias-sandbox"])
def test_xfs_bmap_btree_cycle(images, arena, kind, sandbox):
    try:
        base = images.fs("bmbt", "xfs-mounted", {**GUEST_FILES, "/boot/vmlinuz": Holey(600), **configs.entry("grub2")})
    except subprocess.CalledProcessError as err:
        pytest.skip(f"no loop mount of XFS here: {err.stderr!r}")
    image = images.derived(f"xfs-bmbt-{kind}", lambda work: _xfs_bmbt_cycle(kind, base, work))
    expect_error(extract(arena, image, sandbox=sandbox), {3, 5})


# --- btrfs tree -------------------------------------------------------------------------------

NODESIZE = 16384  # mkfs.btrfs's default


def _btrfs_cycle(kind, base, work):
    """The FS tree's level-1 node (btrfs-progs' dump-tree names it): ``self``, its first
    child pointer made the node itself; ``alias``, its second child made the first. Both
    DUP copies, their crc32c made right again (btrfs on-disk format: the checksum covers
    the block from byte 0x20; a key pointer is a 17-byte key, u64 blockptr, u64 generation
    after the 101-byte header)."""
    from guestboot.crc32c import crc32c

    dump = subprocess.run(["btrfs", "inspect-internal", "dump-tree", "-t", "5", str(base)], check=True,
                          capture_output=True, text=True).stdout
    node = next(int(line.split()[1]) for line in dump.splitlines() if line.startswith("node ") and " level 1 " in line)
    data = base.read_bytes()
    patches = []
    for at in range(0, len(data) - NODESIZE, 4096):
        if struct.unpack_from("<Q", data, at + 0x30)[0] != node or data[at + 100] != 1:
            continue
        block = bytearray(data[at : at + NODESIZE])
        assert struct.unpack_from("<I", block, 0)[0] == crc32c(bytes(block[0x20:])), "not a checksummed copy"
        first = struct.unpack_from("<Q", block, 101 + 17)[0]
        target, slot = (node, 0) if kind == "self" else (first, 1)
        struct.pack_into("<Q", block, 101 + 33 * slot + 17, target)
        struct.pack_into("<I", block, 0, crc32c(bytes(block[0x20:])))
        patches.append((at, bytes(block)))
    assert patches, "the node was not found in the image"
    return altered(base, work / "x.img", patches)


BTRFS_TREE = {**GUEST_FILES, **configs.entry("grub2"),
              **{f"/boot/modules/a-long-module-file-name-{n:04d}.ko": b"m" * 100 for n in range(600)}}


@pytest.mark.parametrize("kind,sandbox", [("self", True), ("self", False), ("alias", True)],
                         ids=["self-sandbox", "self-no-sandbox", "alias-sandbox"])
def test_btrfs_tree_cycle(images, arena, kind, sandbox):
    base = images.fs("btrfs-tree", "btrfs", BTRFS_TREE)
    image = images.derived(f"btrfs-{kind}", lambda work: _btrfs_cycle(kind, base, work))
    result = extract(arena, image, sandbox=sandbox)
    if result.rc != 0:
        expect_error(result, {3, 5, 6})
    expect_safe(result, GUEST_KERNEL)
    assert kind == "alias" or result.rc != 0, result  # a node that contains itself is never a tree


# --- FAT cluster chains -------------------------------------------------------------------

def _fat_geometry(data: bytes) -> tuple[int, int, int, int, int]:
    """(bytes per sector, FAT offset, FAT size in bytes, number of FATs, bits per entry):
    the BPB (Microsoft's FAT specification, section 3.1); mkfs.fat's 32 MiB image is FAT16."""
    sector, _per_cluster, reserved, fats = struct.unpack_from("<HBHB", data, 11)
    fat_sectors = struct.unpack_from("<H", data, 22)[0] or struct.unpack_from("<I", data, 36)[0]
    bits = 32 if struct.unpack_from("<H", data, 22)[0] == 0 else 16
    return sector, reserved * sector, fat_sectors * sector, fats, bits


def _fat_loop(name: bytes, kind: str):
    def make(base, work):
        data = base.read_bytes()
        entry = data.index(name)
        first = struct.unpack_from("<H", data, entry + 26)[0] | struct.unpack_from("<H", data, entry + 20)[0] << 16
        _sector, fat_at, fat_size, fats, bits = _fat_geometry(data)
        width = bits // 8
        second = struct.unpack_from("<H" if bits == 16 else "<I", data, fat_at + first * width)[0]
        assert 2 <= second < (0xFFF8 if bits == 16 else 0x0FFFFFF8), "the chain must have a second cluster"
        at, target = (first, first) if kind == "self" else (second, first)
        value = struct.pack("<H" if bits == 16 else "<I", target)
        return altered(base, work / "x.img", [(fat_at + n * fat_size + at * width, value) for n in range(fats)])
    return make


# the kernel and /boot/grub span several clusters (long names: a directory of ~20 KiB)
FAT_TREE = {**GUEST_FILES, "/boot/vmlinuz": GUEST_KERNEL * 4, **configs.entry("grub2"),
            **{f"/boot/grub/a-long-file-name-that-needs-lfn-entries-{n:03d}.mod": b"m" for n in range(120)}}


@pytest.mark.parametrize("kind", ["self", "back-to-first"])
@pytest.mark.parametrize("what,name", [("file", b"VMLINUZ    "), ("directory", b"GRUB       ")])
def test_fat_cluster_chain_loop(images, arena, what, name, kind):
    base = images.fs("fat-loop", "fat", FAT_TREE)
    image = images.derived(f"fat-{what}-{kind}", lambda work: _fat_loop(name, kind)(base, work))
    result = extract(arena, image)
    if result.rc != 0:
        expect_error(result, {3, 5, 6})
    expect_safe(result)  # a file loop may read the looped clusters: bounded by the file's size
    assert result.rc != 0 or what == "file"


# --- ISO 9660 Rock Ridge continuation areas (XSA-497) ----------------------------------------

LONG = "/".join(f"component-{i:02d}-" + "t" * 40 for i in range(12))  # > 255 bytes: continued in a CE area


def _iso_ce_loop(kind: str):
    def make(base, work):
        data = base.read_bytes()
        patches = []
        at = data.find(b"CE\x1c\x01")
        assert at > 0, "xorriso wrote no continuation area"
        while at > 0:
            block, offset, length = (struct.unpack_from("<I", data, at + 4 + 8 * n)[0] for n in range(3))
            if kind == "into-itself":  # the area is the CE entry itself: continues forever
                new = (at // 2048, at % 2048, 28)
            else:  # the area is everything from its start to the end of the image
                new = (block, offset, 0xFFFFFFFF)
            patches.append((at + 4, b"".join(struct.pack("<I", v) + struct.pack(">I", v) for v in new)))
            at = data.find(b"CE\x1c\x01", at + 1)
        return altered(base, work / "x.img", patches)
    return make


@pytest.mark.parametrize("kind", ["into-itself", "huge-length"])
def test_iso9660_continuation_area_loop(images, arena, kind):
    base = images.fs("iso-ce", "iso9660", {**GUEST_FILES, "/boot/long-link": Link(LONG), **configs.entry("grub2")})
    image = images.derived(f"iso-ce-{kind}", lambda work: _iso_ce_loop(kind)(base, work))
    result = extract(arena, image)
    if result.rc != 0:
        expect_error(result, {3, 5})
    expect_safe(result, GUEST_KERNEL)
    listing = guestboot(arena, "ls", str(image), "/boot")
    assert listing.rc in (0, 3, 5), listing


# --- partition tables ---------------------------------------------------------------------

EXTENDED = 69632  # sector of the extended partition


def _disk(work, table: str) -> "Path":
    """A 48 MiB disk, the table made by sfdisk/sgdisk, the guest's 32 MiB ext4 in partition 1."""
    image = work / "disk.img"
    with open(image, "wb") as f:
        f.truncate(48 << 20)
    if table == "gpt":
        subprocess.run(["sgdisk", "-n", "1:2048:+32M", "-t", "1:8300", str(image)], check=True, capture_output=True)
    else:
        script = f"label: dos\nstart=2048, size=65536, type=83\nstart={EXTENDED}, type=5\n" \
                 "start=71680, size=2048, type=83\nstart=75776, size=2048, type=83\nstart=79872, size=2048, type=83\n"
        subprocess.run(["sfdisk", "-q", str(image)], input=script.encode(), check=True, capture_output=True)
    return image


def _gpt_lie(field: str, value: int, both: bool):
    def make(base, work):
        image = _disk(work, "gpt")
        subprocess.run(["dd", f"if={base}", f"of={image}", "bs=1M", "seek=1", "conv=notrunc,sparse"], check=True,
                       capture_output=True)
        data = image.read_bytes()
        patches = []
        for at in (512, len(data) - 512)[: 2 if both else 1]:  # primary (LBA 1), backup (last LBA)
            header = bytearray(data[at : at + 512])
            assert header[:8] == b"EFI PART"
            offset, fmt = {"entries": (80, "<I"), "entry-size": (84, "<I"), "entries-lba": (72, "<Q")}[field]
            struct.pack_into(fmt, header, offset, value)
            size = struct.unpack_from("<I", header, 12)[0]
            struct.pack_into("<I", header, 16, 0)
            struct.pack_into("<I", header, 16, zlib.crc32(bytes(header[:size])))  # UEFI 2.10 5.3.2: a valid CRC
            patches.append((at, bytes(header)))
        return altered(image, work / "x.img", patches)
    return make


GPT_LIES = [("entries", 0xFFFFFFFF), ("entries", 1 << 20), ("entry-size", 0xFFFFFFFF), ("entry-size", 1 << 24),
            ("entries-lba", 1 << 62)]


@pytest.mark.parametrize("both", [False, True], ids=["primary", "both-headers"])
@pytest.mark.parametrize("field,value", GPT_LIES, ids=[f"{f}-{v:#x}" for f, v in GPT_LIES])
def test_gpt_header_lies(images, arena, field, value, both):
    base = images.fs("ptable", "ext4", configs.guest("grub2"))
    image = images.derived(f"gpt-{field}-{value}-{both}", lambda work: _gpt_lie(field, value, both)(base, work))
    result = extract(arena, image)
    if both:  # no usable table: the whole disk has no file system
        expect_error(result, {3, 4, 5, 6})
    else:  # the backup header describes the disk, and the lie is said
        expect_kernel(result, GUEST_KERNEL, GUEST_INITRD)
        assert b"primary GPT header" in result.stderr, result


def _mbr_loop(kind: str):
    def make(base, work):
        image = _disk(work, "dos")
        subprocess.run(["dd", f"if={base}", f"of={image}", "bs=1M", "seek=1", "conv=notrunc,sparse"], check=True,
                       capture_output=True)
        data = image.read_bytes()
        extended = EXTENDED
        # each EBR: entry 1 the logical partition, entry 2 the next EBR relative to the
        # extended partition's start (MBR/EBR layout; sfdisk wrote three)
        ebrs = [extended]
        while True:
            link = data[ebrs[-1] * 512 + 446 + 16 : ebrs[-1] * 512 + 446 + 32]
            start = struct.unpack_from("<I", link, 8)[0]
            if link[4] == 0 or start == 0:
                break
            ebrs.append(extended + start)
        assert len(ebrs) == 3, ebrs
        if kind == "ebr-to-itself":
            target, at = ebrs[0] - extended, ebrs[0]
        elif kind == "last-to-first":
            target, at = 0, ebrs[-1]
        else:  # "second-to-first": a loop of two
            target, at = 0, ebrs[1]
        link = struct.pack("<B3sB3sII", 0, b"\0\0\0", 0x05, b"\0\0\0", target, 2048)
        patches = [(at * 512 + 446 + 16, link)]
        if kind == "ebr-to-itself":  # a link of start 0 is the end of the chain: point at itself by a second extended entry
            patches = [(at * 512 + 446 + 16, struct.pack("<B3sB3sII", 0, b"\0\0\0", 0x05, b"\0\0\0", 0, 2048))]
            patches += [(512 * ebrs[1] + 446 + 16, struct.pack("<B3sB3sII", 0, b"\0\0\0", 0x05, b"\0\0\0",
                                                               ebrs[1] - extended, 2048))]
        return altered(image, work / "x.img", patches)
    return make


@pytest.mark.parametrize("kind", ["ebr-to-itself", "last-to-first", "second-to-first"])
def test_mbr_extended_chain_loop(images, arena, kind):
    base = images.fs("ptable", "ext4", configs.guest("grub2"))
    image = images.derived(f"mbr-{kind}", lambda work: _mbr_loop(kind)(base, work))
    result = extract(arena, image)
    if result.rc != 0:
        expect_error(result, {3, 5})
    expect_safe(result, GUEST_KERNEL)  # the primary partition holds the guest: a bounded chain still finds it
    assert result.rc != 0 or b"loop" in result.stderr, result
    listing = guestboot(arena, "ls", str(image))
    assert listing.rc in (0, 3, 5) and listing.stdout.count(b"\n") < 100, listing
