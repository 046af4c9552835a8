"""Disk images with partition tables, made by the real tools, and the tools' own reading of
them (the oracle the volume tests compare against).

- ``sfdisk_image``: an MBR or GPT disk from an sfdisk script (512-byte sectors).
- ``fdisk_image``: the same script loaded by fdisk with ``-b SECTOR_SIZE`` (4096-byte
  logical sectors; this util-linux's sfdisk has no --sector-size).
- ``sgdisk_image``: a GPT disk from sgdisk options (names, type codes, attributes).
- ``hybrid_iso``: xorriso hybrid ISOs: isolinux's isohybrid MBR, or an MBR + GPT layout.
- ``mke2fs_at``: an ext4 file system written inside a disk image at a byte offset
  (``mke2fs -E offset=N``), to check that a volume's bytes are the partition's bytes.
- ``place_image``: any file-system image copied into a disk image at a byte offset.
- ``table_of``: the partitions as the tool reads them back (``sfdisk --json``, or fdisk's
  dump for 4096-byte sectors), in bytes.
- ``mark_partitions``: a distinct text at the start of each partition, so that reading
  the wrong place shows.
- ``grub_crc``: GRUB's own reading of a partition (``grub-fstest IMAGE crc (loop0,NAME)0+N``):
  the CRC32 of the sectors GRUB's partition code finds under that name.

Debian packages: fdisk (sfdisk, fdisk), gdisk (sgdisk), xorriso, isolinux, e2fsprogs,
dosfstools (mkfs.fat), grub-common (grub-fstest).
"""

from __future__ import annotations

import json
import random
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

ISOHYBRID_MBR = Path("/usr/lib/ISOLINUX/isohdpfx.bin")  # package isolinux
ISOLINUX_BIN = Path("/usr/lib/ISOLINUX/isolinux.bin")


@dataclass(frozen=True)
class ToolPartition:
    """One partition as the partitioning tool reports it, positions in bytes."""

    number: int  # the tool's (= Linux's) number: the suffix of its device node
    start: int
    size: int
    type: str  # MBR type as hex without 0x ("83"), or GPT type GUID in upper case
    bootable: bool = False  # MBR active flag / GPT LegacyBIOSBootable attribute
    name: str = ""
    uuid: str = ""


def _run(argv: list[str], stdin: str | None = None) -> str:
    if shutil.which(argv[0]) is None:
        raise FileNotFoundError(f"{argv[0]} is not installed (see tests/builders/disk.py for packages)")
    done = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def blank(path: Path, size: int) -> Path:
    """A sparse file of ``size`` bytes."""
    with open(path, "wb") as f:
        f.truncate(size)
    return path


def sfdisk_image(path: Path, size: int, script: str) -> Path:
    """A ``size``-byte disk partitioned by ``sfdisk`` from ``script`` (512-byte sectors)."""
    blank(path, size)
    _run(["sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", str(path)], stdin=script)
    return path


def fdisk_image(path: Path, size: int, script: str, sector_size: int) -> Path:
    """Like sfdisk_image with ``sector_size``-byte logical sectors: fdisk -b loads the
    sfdisk-format script with its "I" command and writes it."""
    blank(path, size)
    script_path = path.with_suffix(".sfdisk")
    script_path.write_text(script)
    _run(["fdisk", "-b", str(sector_size), str(path)], stdin=f"I\n{script_path}\nw\n")
    return path


def sgdisk_image(path: Path, size: int, options: list[str]) -> Path:
    """A ``size``-byte GPT disk made by ``sgdisk -o`` then ``options``."""
    blank(path, size)
    _run(["sgdisk", "-o", *options, str(path)])
    return path


def mke2fs_at(disk: Path, offset: int, size: int, label: str) -> None:
    """Write an ext4 file system of ``size`` bytes labelled ``label`` into ``disk`` at
    byte ``offset``, leaving the rest of the disk (its partition table) as it was."""
    _run(
        ["mke2fs", "-q", "-F", "-t", "ext4", "-L", label, "-E", f"offset={offset}", str(disk), f"{size // 1024}k"]
    )


def place_image(disk: Path, offset: int, image: Path) -> None:
    """Copy the file-system image ``image`` into ``disk`` at byte ``offset`` (for file
    systems whose mkfs cannot write at an offset), leaving the rest of the disk alone.
    Zero chunks are not written where the disk already reads zero there, so a hole stays
    a hole: a suite run holds gigabytes of images, most of them empty space."""
    chunk = 1 << 20
    zero = bytes(chunk)
    with open(image, "rb") as src, open(disk, "r+b") as dst:
        position = 0
        while True:
            data = src.read(chunk)
            if not data:
                break
            if data != zero[:len(data)] or dst_reads_nonzero(dst, offset + position, len(data)):
                dst.seek(offset + position)
                dst.write(data)
            position += len(data)
        if dst.seek(0, os.SEEK_END) < offset + position:
            dst.truncate(offset + position)


def dst_reads_nonzero(f, offset: int, size: int) -> bool:
    f.seek(offset)
    return any(f.read(size))


def mark_partitions(disk: Path, parts: list[ToolPartition]) -> None:
    """Write "partition N at OFFSET" into the first sector of each partition (bytes an ext
    file system leaves unused: its superblock starts at 1024)."""
    with open(disk, "r+b") as f:
        for part in parts:
            f.seek(part.start)
            f.write(f"partition {part.number} at {part.start}".encode())


def grub_crc(disk: Path, blocklist: str) -> str:
    """``grub-fstest DISK crc BLOCKLIST``: GRUB's CRC32 (8 hex digits) of e.g.
    "(loop0,msdos5)0+8", the first 8 sectors of what GRUB calls msdos5. RuntimeError
    carries GRUB's message when it cannot ("no such partition", "outside of partition")."""
    return _run(["grub-fstest", str(disk), "crc", blocklist]).strip()


def hybrid_iso(path: Path, tree: Path, *, gpt: str | None = None) -> Path:
    """A bootable isolinux ISO of ``tree`` that is also a disk image.

    gpt=None: ``-isohybrid-mbr`` alone (MBR partition 1 starts at 0 and covers the ISO).
    gpt="basdat": plus ``-isohybrid-gpt-basdat`` (an MBR without 0xEE and a GPT beside it).
    gpt="appended": Ubuntu's layout, ``-partition_offset 16`` and an appended EFI
    partition listed in a GPT behind a protective MBR (``-appended_part_as_gpt``).
    """
    staging = path.with_suffix(".tree")  # the caller's tree stays as it was
    shutil.copytree(tree, staging)
    tree = staging
    (tree / "isolinux").mkdir(exist_ok=True)
    shutil.copyfile(ISOLINUX_BIN, tree / "isolinux" / "isolinux.bin")
    argv = [
        "xorriso", "-as", "mkisofs", "-quiet", "-o", str(path),
        "-isohybrid-mbr", str(ISOHYBRID_MBR),
        "-b", "isolinux/isolinux.bin", "-c", "isolinux/boot.cat",
        "-no-emul-boot", "-boot-load-size", "4", "-boot-info-table",
    ]  # fmt: skip
    if gpt == "basdat":
        efi = blank(path.with_suffix(".efi"), 1 << 20)
        shutil.copyfile(efi, tree / "efi.img")
        argv += ["-eltorito-alt-boot", "-e", "efi.img", "-no-emul-boot", "-isohybrid-gpt-basdat"]
    elif gpt == "appended":
        efi = blank(path.with_suffix(".efi"), 1 << 20)
        argv += [
            "-partition_offset", "16", "--mbr-force-bootable",
            "-append_partition", "2", "0xef", str(efi), "-appended_part_as_gpt",
        ]  # fmt: skip
    elif gpt is not None:
        raise ValueError(f"unknown hybrid layout {gpt!r}")
    _run([*argv, str(tree)])
    return path


def table_of(path: Path, sector_size: int = 512) -> tuple[str, list[ToolPartition]]:
    """(label, partitions) as util-linux reads the image: "dos" or "gpt" and the
    partitions in the tool's order, positions in bytes."""
    if sector_size == 512:
        table = json.loads(_run(["sfdisk", "--json", str(path)]))["partitiontable"]
        rows = table.get("partitions", [])
        label = table["label"]
    else:
        dump_path = path.with_suffix(".dump")
        _run(["fdisk", "-b", str(sector_size), str(path)], stdin=f"O\n{dump_path}\nq\n")
        label, rows = _parse_dump(dump_path.read_text())
    unit = sector_size
    parts = []
    for row in rows:
        number = int(re.search(r"(\d+)$", row["node"]).group(1))
        parts.append(
            ToolPartition(
                number=number,
                start=int(row["start"]) * unit,
                size=int(row["size"]) * unit,
                type=row["type"],
                bootable=bool(row.get("bootable")) or "LegacyBIOSBootable" in row.get("attrs", ""),
                name=row.get("name", ""),
                uuid=row.get("uuid", ""),
            )
        )
    return label, parts


def _parse_dump(text: str) -> tuple[str, list[dict]]:
    """sfdisk's dump format (what fdisk's "O" writes): header lines, then one line per
    partition: ``node : start=N, size=N, type=T, uuid=U, name="X"``."""
    label = ""
    rows = []
    for line in text.splitlines():
        if line.startswith("label:"):
            label = line.split(":", 1)[1].strip()
        elif " : " in line:
            node, fields = line.split(" : ", 1)
            row: dict = {"node": node.strip()}
            for match in re.finditer(r'(\w+)=\s*("(?:[^"\\]|\\.)*"|[^,]*)', fields):
                value = match.group(2).strip()
                row[match.group(1)] = value[1:-1] if value.startswith('"') else value
            if "bootable" in fields.split(","):
                row["bootable"] = True
            rows.append(row)
    return label, rows


def random_tree(top: Path, seed: int, files: dict[str, int]) -> Path:
    """Write ``files`` (relative path -> size) of seeded random bytes under ``top``."""
    rng = random.Random(seed)
    for name, size in files.items():
        path = top / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.randbytes(size))
    return top
