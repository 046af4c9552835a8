"""Raw guest disks and the same disks in other image formats, made by the real tools.

- ``format_tree``: the tree the disks hold (the expected answer): a grub.cfg, a "kernel"
  and an "initrd" of text-like words (compressible, so qemu-img -c really compresses
  them) with random stretches (so some clusters stay plain), from a fixed seed.
- ``gpt_ext4_disk``: a GPT disk (sgdisk) whose partition 1 is an ext4 file system made
  from a tree (mke2fs -d at the partition's offset).
- ``convert``: ``qemu-img convert`` from raw to a format, with its options (package
  qemu-utils); ``qemu_img``: any other qemu-img command.

Debian packages: gdisk, e2fsprogs, qemu-utils.
"""

from __future__ import annotations

import random
import shutil
import subprocess
from pathlib import Path

from .disk import sgdisk_image
from .guest_images import make_ext4
from .initramfs import ToolMissing

MiB = 1024 * 1024
SECTOR = 512
FIRST_SECTOR = 2048
GRUB_CFG = "set default=0\nset timeout=1\nmenuentry 'Guest' {\n    linux /vmlinuz root=/dev/vda1 ro\n" \
           "    initrd /initrd.img\n}\n"
WORDS = [b"guest", b"boot", b"kernel", b"cluster", b"grain", b"sector", b"extent", b"qcow2", b"vhd", b"\n"]


def payload(size: int, seed: int) -> bytes:
    """Text-like words with a random stretch in every 256 KiB (fixed seed)."""
    rng = random.Random(seed)
    out = bytearray()
    while len(out) < size:
        if len(out) % (256 * 1024) < 64:
            out += rng.randbytes(32 * 1024)
        out += b" ".join(rng.choice(WORDS) for _ in range(512))
    return bytes(out[:size])


def format_tree(top: Path, seed: int = 7) -> Path:
    (top / "boot" / "grub").mkdir(parents=True, exist_ok=True)
    (top / "boot" / "grub" / "grub.cfg").write_text(GRUB_CFG)
    (top / "vmlinuz").write_bytes(payload(1536 * 1024 + 123, seed))
    (top / "initrd.img").write_bytes(payload(700 * 1024 + 5, seed + 1))
    return top


def gpt_ext4_disk(path: Path, tree: Path, size: int = 24 * MiB) -> Path:
    """A GPT disk with one Linux partition (sectors 2048 to the end) holding ext4 of ``tree``."""
    last = size // SECTOR - 34
    sgdisk_image(path, size, ["-n", f"1:{FIRST_SECTOR}:{last}", "-t", "1:8300"])
    make_ext4(path, FIRST_SECTOR, last + 1 - FIRST_SECTOR, tree, "5c1f7e6a-2f5e-4a6e-9c39-0a6b2b1d7e11", "guest")
    return path


def qemu_img(*argv: str, cwd: Path | None = None) -> str:
    if shutil.which("qemu-img") is None:
        raise ToolMissing("qemu-img not found (apt-get install qemu-utils)")
    done = subprocess.run(["qemu-img", *argv], capture_output=True, text=True, timeout=120, cwd=cwd)
    if done.returncode != 0:
        raise RuntimeError(f"qemu-img {' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def convert(raw: Path, fmt: str, options: list[str], out: Path) -> Path:
    """``raw`` converted by qemu-img to ``fmt`` with ``options`` (e.g. ["-c"], ["-o", …])."""
    qemu_img("convert", "-f", "raw", "-O", fmt, *options, str(raw), str(out))
    return out


def vhd_differencing(child: Path, parent: Path, parent_name: str) -> Path:
    """Turn ``child``, a dynamic VHD qemu-img made, into a differencing disk whose parent
    is ``parent`` (named ``parent_name`` in a relative-Windows-path locator, "W2ru").

    No tool Debian ships creates differencing VHDs (qemu-img's vpc driver has no backing
    files; blktap's vhd-util is gone), so the header fields the spec's "Implementing a
    Differencing Hard Disk" names are set here: disk type 4 in both footer copies, the
    parent's unique id and name, one locator whose data is a new sector before the footer
    at the end, and the checksums. The blocks stay what qemu-io wrote."""
    data = bytearray(child.read_bytes())
    parent_footer = parent.read_bytes()[-512:]
    header_at = int.from_bytes(data[16:24], "big")
    footer = bytearray(data[-512:])
    footer[60:64] = (4).to_bytes(4, "big")
    _vhd_checksum(footer, 64)
    locator = parent_name.replace("/", "\\").encode("utf-16-le")
    locator_at = len(data) - 512
    header = bytearray(data[header_at : header_at + 1024])
    header[40:56] = parent_footer[68:84]  # the parent's unique id
    header[64:576] = parent_name.rsplit("/", 1)[-1].encode("utf-16-be").ljust(512, b"\0")
    header[576:600] = b"W2ru" + (1).to_bytes(4, "big") + len(locator).to_bytes(4, "big") + bytes(4) + \
        locator_at.to_bytes(8, "big")
    _vhd_checksum(header, 36)
    data[header_at : header_at + 1024] = header
    data[0:512] = footer
    data[locator_at:] = locator.ljust(512, b"\0") + footer
    child.write_bytes(bytes(data))
    return child


def _vhd_checksum(raw: bytearray, at: int) -> None:
    raw[at : at + 4] = bytes(4)
    raw[at : at + 4] = (~sum(raw) & 0xFFFFFFFF).to_bytes(4, "big")


def vhdx_differencing(child: Path, parent: Path, parent_name: str) -> Path:
    """Turn ``child``, an empty-then-written dynamic VHDX qemu-img made, into a
    differencing disk of ``parent`` ([MS-VHDX] 2.6.2.6): no tool Debian ships creates
    differencing VHDX (qemu-img's vhdx driver has no backing files). Set here: HasParent in
    the file parameters, and a parent locator item (VHDX locator type; parent_linkage = the
    parent's DataWriteGuid, relative_path = ``parent_name``, absolute_win32_path) in free space of the metadata
    region. The BAT needs no change while the disk has fewer payload blocks than one
    chunk holds (its differencing layout then matches); the blocks are what qemu-io wrote."""
    import struct
    import uuid

    from guestboot.source.vhdx import FILE_PARAMETERS, METADATA_REGION, PARENT_LOCATOR, VHDX_PARENT_LOCATOR_TYPE

    data = bytearray(child.read_bytes())
    region = _vhdx_region(data, METADATA_REGION)
    count = struct.unpack_from("<H", data, region + 10)[0]
    for index in range(count):
        guid, offset, _length, _flags = struct.unpack_from("<16sIII", data, region + 32 + index * 32)
        if guid == FILE_PARAMETERS:
            struct.pack_into("<I", data, region + offset + 4, struct.unpack_from("<I", data, region + offset + 4)[0] | 2)
    parent_data = parent.read_bytes()
    newest = max((64 * 1024, 128 * 1024), key=lambda at: struct.unpack_from("<Q", parent_data, at + 8)[0])
    linkage = "{" + str(uuid.UUID(bytes_le=parent_data[newest + 32 : newest + 48])) + "}"
    # the keys Hyper-V writes; its absolute path names the machine it ran on (libvhdi, the
    # peer, finds the parent by that path's last component, in the child's directory)
    pairs = [("parent_linkage", linkage), ("relative_path", parent_name),
             ("absolute_win32_path", "C:\\VMs\\" + parent_name.rsplit("\\", 1)[-1])]
    body = bytearray()
    entries = bytearray()
    base = 20 + 12 * len(pairs)
    for key, value in pairs:
        k, v = key.encode("utf-16-le"), value.encode("utf-16-le")
        entries += struct.pack("<IIHH", base + len(body), base + len(body) + len(k), len(k), len(v))
        body += k + v
    locator = VHDX_PARENT_LOCATOR_TYPE + struct.pack("<HH", 0, len(pairs)) + entries + body
    item_offset = 512 * 1024
    data[region + item_offset : region + item_offset + len(locator)] = locator
    struct.pack_into("<16sIII4x", data, region + 32 + count * 32, PARENT_LOCATOR, item_offset, len(locator), 4)
    struct.pack_into("<H", data, region + 10, count + 1)
    child.write_bytes(bytes(data))
    return child


def _vhdx_region(data: bytearray, guid: bytes) -> int:
    import struct

    at = 192 * 1024
    count = struct.unpack_from("<I", data, at + 8)[0]
    for index in range(count):
        found, offset, _length, _required = struct.unpack_from("<16sQII", data, at + 16 + index * 32)
        if found == guid:
            return offset
    raise RuntimeError("no such region")
