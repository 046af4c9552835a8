"""Decompression bombs: compressed data that inflates far past what its container allows.
A bzImage whose payload (boot protocol 2.08 payload_offset/payload_length) is a gzip
stream of 1.25 GiB of zeros (decompressed by ``inspect`` and by --guest-type checks:
bounded by max_kernel_decompressed, 1 GiB, Xen's own cap), a qcow2 compressed cluster
(qemu-img convert -c) re-pointed at a raw-deflate stream of 64 MiB, a VMDK streamOptimized
grain replaced by a zlib stream of 8 MiB, a squashfs xz data block replaced by an xz
stream of 16 MiB. Each must stop at its limit (or a corruption check) with a typed error,
in bounded time and memory, with nothing left behind.

The bombs are made by repeating one byte-aligned deflate block (Z_FULL_FLUSH resets the
compressor, so the same input gives the same bytes): cheap to make, and the reader meets
the limit long before the (absent) end of the stream."""

from __future__ import annotations

import lzma
import struct
import subprocess
import zlib

import pytest
from builders.image_formats import payload

from hostile import configs
from hostile.configs import GUEST_FILES
from hostile.harness import expect_error, expect_kernel, extract, guestboot
from hostile.images import altered

MiB = 1 << 20
TEXT_KERNEL = payload(1536 * 1024 + 123, 7)  # text-like: qemu-img and mksquashfs really compress it
TEXT_INITRD = payload(700 * 1024 + 5, 8)


def deflate_bomb(total: int, wbits: int, chunk: int = 16 * MiB) -> bytes:
    """A deflate stream (``wbits``: 31 gzip, 15 zlib, -15 raw) of ``total`` zero bytes, no end."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, wbits)
    head = compressor.compress(b"")
    block = compressor.compress(bytes(chunk)) + compressor.flush(zlib.Z_FULL_FLUSH)
    return head + block * (total // chunk)


def text_tree():
    return {**GUEST_FILES, "/boot/vmlinuz": TEXT_KERNEL, "/boot/initrd.img": TEXT_INITRD, **configs.entry("grub2")}


# --- bzImage payload ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def bzimage_bombs(images):
    from builders.boot import debian_kernel
    from builders.initramfs import ToolMissing

    try:
        real = debian_kernel().read_bytes()
    except ToolMissing as err:
        pytest.skip(f"no real bzImage to take a header from: {err}")
    setup = (real[0x1F1] or 4) * 512 + 512
    offset, length = struct.unpack_from("<II", real, 0x248)
    head = bytearray(real[: setup + offset])
    bomb = deflate_bomb(1280 * MiB, 31)
    zeros = bytearray(head)
    struct.pack_into("<II", zeros, 0x248, offset, len(bomb))
    length_lie = bytearray(real)
    struct.pack_into("<II", length_lie, 0x248, offset, 0xFFFFFFFF)
    offset_lie = bytearray(real)
    struct.pack_into("<II", offset_lie, 0x248, 0xFFFFFF00, length)
    kernels = {"gzip-1.25GiB-of-zeros": bytes(zeros) + bomb, "payload-length-lie": bytes(length_lie),
               "payload-offset-lie": bytes(offset_lie)}
    return {name: images.fs(f"bzbomb-{name}", "ext4", {**GUEST_FILES, "/boot/vmlinuz": kernel, **configs.entry("grub2")})
            for name, kernel in kernels.items()}


@pytest.mark.parametrize("how", ["inspect", "extract-guest-type-pvh"])
@pytest.mark.parametrize("name", ["gzip-1.25GiB-of-zeros", "payload-length-lie", "payload-offset-lie"])
def test_bzimage_payload(bzimage_bombs, arena, name, how):
    image = bzimage_bombs[name]
    if how == "inspect":
        result = guestboot(arena, "inspect", str(image))
        assert result.rc in (0, 3, 4, 5), result
    else:
        expect_error(extract(arena, image, "--guest-type", "pvh"), {3, 4, 5})


# --- qcow2 compressed cluster -----------------------------------------------------------------

def _qcow2_bomb(kind: str):
    def make(base, work):
        image = work / "c.qcow2"
        subprocess.run(["qemu-img", "convert", "-q", "-c", "-f", "raw", "-O", "qcow2", str(base), str(image)], check=True,
                       capture_output=True)
        data = image.read_bytes()
        # QEMU's qcow2 spec (docs/interop/qcow2.txt): big-endian header; cluster_bits at 20,
        # l1_size at 36, l1_table_offset at 40; L2 entry bit 62 = compressed, then
        # x = 62 - (cluster_bits - 8) bits of host offset and the additional sector count
        cluster_bits = struct.unpack_from(">I", data, 20)[0]
        if kind == "l1-size-lie":  # 2^31 - 1 entries declared (16 GiB), more than the disk needs
            return altered(image, work / "x.qcow2", [(36, struct.pack(">I", 0x7FFFFFFF))])
        if kind == "virtual-size-lie":  # a disk of 2^60 bytes needs an L1 table of 16 GiB
            return altered(image, work / "x.qcow2", [(24, struct.pack(">Q", 1 << 60))])
        l1 = struct.unpack_from(">Q", data, 40)[0]
        l2 = struct.unpack_from(">Q", data, l1)[0] & 0x00FFFFFFFFFFFE00
        entry_at = l2  # guest cluster 0: the ext4 superblock, read by every run
        entry = struct.unpack_from(">Q", data, entry_at)[0]
        assert entry >> 62 & 1, "qemu-img -c left cluster 0 uncompressed"
        x = 62 - (cluster_bits - 8)
        end = (len(data) + 511) // 512 * 512
        if kind == "offset-past-eof":
            new = (1 << 62) | (1 << x) | (1 << 50)
            return altered(image, work / "x.qcow2", [(entry_at, struct.pack(">Q", new))])
        bomb = deflate_bomb(64 * MiB, -15, chunk=1 * MiB)
        sectors = (len(bomb) + 511) // 512
        assert sectors - 1 < 1 << (cluster_bits - 8)
        new = (1 << 62) | ((sectors - 1) << x) | end
        return altered(image, work / "x.qcow2", [(end, bomb.ljust(sectors * 512, b"\0")), (entry_at, struct.pack(">Q", new))])
    return make


@pytest.mark.parametrize("kind", ["cluster-inflates-to-64MiB", "offset-past-eof", "l1-size-lie", "virtual-size-lie"])
def test_qcow2_compressed_cluster(images, arena, kind):
    base = images.fs("bomb-text", "ext4", text_tree())
    image = images.derived(f"qcow2-{kind}", lambda work: _qcow2_bomb(kind)(base, work))
    result = extract(arena, image)
    if kind == "l1-size-lie":  # an L1 over 32 MiB declared: refused as QEMU refuses it ("L1 table too large")
        expect_error(result, {5}, contains="max_image_table")
    else:
        expect_error(result, {3, 4, 5})


# --- VMDK streamOptimized grain ------------------------------------------------------------------

def _vmdk_bomb(base, work):
    image = work / "s.vmdk"
    subprocess.run(["qemu-img", "convert", "-q", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized", str(base),
                    str(image)], check=True, capture_output=True)
    data = image.read_bytes()
    bomb = zlib.compress(bytes(8 * MiB), 9)
    # VMDK 5.0 spec, "Stream-Optimized Compressed Sparse Extents": a grain is a marker
    # (u64 lba, u32 size) at a sector boundary, then size bytes of zlib data
    patches = []
    for at in range(512, len(data) - 512, 512):
        lba, size = struct.unpack_from("<QI", data, at)
        if len(bomb) <= size <= 2 * 65536 and data[at + 12] == 0x78:
            patches.append((at + 8, struct.pack("<I", len(bomb)) + bomb))
    assert patches, "no grain large enough for the bomb"
    return altered(image, work / "x.vmdk", patches)


def test_vmdk_stream_optimized_grain(images, arena):
    base = images.fs("bomb-text", "ext4", text_tree())
    image = images.derived("vmdk-grain-bomb", lambda work: _vmdk_bomb(base, work))
    expect_error(extract(arena, image), {3, 5})


# --- squashfs xz block ------------------------------------------------------------------------

XZ_MAGIC = b"\xfd7zXZ\x00"


def _squashfs_bomb(base, work):
    data = base.read_bytes()
    first = data.index(XZ_MAGIC, 96)  # the first data block follows the 96-byte superblock
    assert first == 96, first
    length = data.index(XZ_MAGIC, first + 1) - first
    bomb = lzma.compress(bytes(16 * MiB), format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC32, preset=0)
    assert len(bomb) <= length, (len(bomb), length)
    return altered(base, work / "x.squashfs", [(first, bomb.ljust(length, b"\0"))])


def test_squashfs_xz_block(images, arena):
    base = images.fs("bomb-text-xz", "squashfs", {"/boot/vmlinuz": TEXT_KERNEL, "/boot/initrd.img": TEXT_INITRD,
                                                  **configs.entry("grub2")}, options=("-comp", "xz"))
    image = images.derived("squashfs-xz-bomb", lambda work: _squashfs_bomb(base, work))
    expect_error(extract(arena, image), {3, 5})


# --- btrfs zstd extent ------------------------------------------------------------------------

def _btrfs_zstd_bomb(base, work):
    """The first extent of /vmlinuz (btrfs-progs' dump-tree: its inode by INODE_REF name,
    its EXTENT_DATA's disk bytenr and size; the chunk tree maps it to the device) replaced
    by a zstd frame of 64 MiB of zeros (the zstd tool), padded to the extent's size."""
    def dump(tree: str) -> list[str]:
        return subprocess.run(["btrfs", "inspect-internal", "dump-tree", "-t", tree, str(base)], check=True,
                              capture_output=True, text=True).stdout.splitlines()

    fs_tree = dump("5")
    ino = next(fs_tree[n].split("(")[1].split()[0] for n in range(len(fs_tree) - 1)
               if "INODE_REF" in fs_tree[n] and "name: vmlinuz" in fs_tree[n + 1] + fs_tree[min(n + 2, len(fs_tree) - 1)])
    at = next(n for n, line in enumerate(fs_tree) if f"key ({ino} EXTENT_DATA 0)" in line)
    words = next(line for line in fs_tree[at : at + 4] if "disk byte" in line).split()
    logical, size = int(words[words.index("byte") + 1]), int(words[words.index("nr") + 1])
    assert any("compression 3" in line for line in fs_tree[at : at + 6]), fs_tree[at : at + 6]
    chunks = dump("3")
    physical = None
    for n, line in enumerate(chunks):
        if "CHUNK_ITEM" in line:
            start = int(line.split("CHUNK_ITEM")[1].split(")")[0])
            length = int(chunks[n + 1].split()[1])
            stripe = int(next(x for x in chunks[n + 2 : n + 6] if "stripe 0" in x).split()[-1])
            if start <= logical < start + length:
                physical = stripe + logical - start
    zeros = subprocess.run(["zstd", "-19", "-q", "-c"], input=bytes(64 * MiB), check=True, capture_output=True).stdout
    assert physical is not None and len(zeros) <= size
    return altered(base, work / "x.img", [(physical, zeros.ljust(size, b"\0"))])


def test_btrfs_zstd_extent(images, arena):
    """The extent decompresses into at most its declared size (btrfs caps an extent at
    128 KiB, as the kernel's zstd path stops at the pages it fills): a typed error, or a
    kernel of exactly the file's size. btrfs data checksums are not verified (the kernel
    would fail the read with EIO): said in the report of this suite."""
    try:
        base = images.fs("bomb-zstd", "btrfs-zstd", {"/vmlinuz": TEXT_KERNEL,
                                                    "/boot/grub/grub.cfg": b"menuentry z {\n  linux /vmlinuz\n}\n"})
    except subprocess.CalledProcessError as err:
        pytest.skip(f"no loop mount of btrfs here: {err.stderr!r}")
    image = images.derived("btrfs-zstd-bomb", lambda work: _btrfs_zstd_bomb(base, work))
    result = extract(arena, image)
    if result.rc != 0:
        expect_error(result, {3, 5})
    else:
        assert (arena.out / "kernel").stat().st_size == len(TEXT_KERNEL), result
