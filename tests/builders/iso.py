"""ISO 9660 fixture images, made by the real xorriso from a reference tree.

``write_tree`` writes the directory tree that is the expected answer; ``build`` turns it
into an image with ``xorriso -as mkisofs`` and the options of one variant. Tests read the
image with guestboot and compare with the tree, and with grub-fstest (GRUB's own driver),
xorriso's own listing and the real pygrub.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
from pathlib import Path

ISOLINUX_DIR = Path("/usr/lib/ISOLINUX")  # package isolinux
ISOHYBRID_MBR = ISOLINUX_DIR / "isohdpfx.bin"
ISOLINUX_BIN = ISOLINUX_DIR / "isolinux.bin"
VOLUME_ID = "GUESTBOOT_ISO"
# A fixed modification date, so the UUID GRUB derives from it is known in advance.
MODIFIED = "2026120401020304"  # YYYYMMDDhhmmsscc
UUID = "2026-12-04-01-02-03-04"

FILE_SIZES = (0, 1, 2047, 2048, 2049, 4096 * 3 + 7, 100_000, 1_600_000)
MANY = 150  # entries in one directory: its records span several 2048-byte sectors
DEEP = 12  # directory levels below /deep (ISO 9660 level 1-3 allow 8 without Rock Ridge)
LONG_TARGET = "/".join(f"component-{i:02d}-" + "t" * 40 for i in range(12))  # > 255 bytes: several SL entries

GRUB_CFG = """\
if loadfont $prefix/font.pf2 ; then
	set gfxmode=800x600
	insmod gfxterm
	terminal_output gfxterm
fi
search --no-floppy --set=root --fs-uuid 2026-12-04-01-02-03-04
set default=1
set timeout=5
menuentry 'Live system' --id live {
	linux /live/vmlinuz boot=live quiet
	initrd /live/initrd.img
}
menuentry 'Live system (safe mode)' --id safe {
	linux /live/vmlinuz boot=live nomodeset
	initrd /live/initrd.img
}
menuentry 'Live system (found by label)' --id label {
	search --no-floppy --set=root --label GUESTBOOT_ISO
	linux /live/vmlinuz boot=live
	initrd /live/initrd.img
}
"""

# variant -> xorriso -as mkisofs options. "rr*" have Rock Ridge; --norock turns off what
# xorriso's mkisofs emulation otherwise always writes.
VARIANTS: dict[str, list[str]] = {
    "rr-joliet": ["-R", "-J", "-joliet-long"],
    "rr": ["-R"],
    "joliet": ["--norock", "-J", "-joliet-long"],
    "level1": ["--norock", "-iso-level", "1"],
    "level2": ["--norock", "-iso-level", "2"],
    "level3": ["--norock", "-iso-level", "3"],
    "rr-level4": ["-R", "-iso-level", "4"],
    # ISO 9660:1999: an enhanced volume descriptor (type 2, version 2, no Joliet escapes)
    # beside the primary; GRUB, and we, read the primary's tree
    "level4": ["--norock", "-iso-level", "4"],
}


def write_tree(top: Path, seed: int = 20261204, *, many: int = MANY, kernel: bytes | None = None,
               initrd: bytes | None = None) -> Path:
    """Write the reference tree under ``top`` (created) and return it."""
    rng = random.Random(seed)
    top.mkdir(parents=True)
    files = top / "files"
    files.mkdir()
    for size in FILE_SIZES:
        (files / f"size-{size}").write_bytes(rng.randbytes(size))
    (top / "MixedCase.TXT").write_text("Mixed case name\n")
    (top / "a name with spaces.txt").write_text("spaces\n")
    (top / ("long-" + "n" * 150 + ".txt")).write_text("a long name\n")
    (top / "\u00fcml\u00e4ut-\u65e5\u672c.txt").write_text("unicode name\n")
    deep = top / "deep"
    for level in range(DEEP):
        deep = deep / f"level{level}"
    deep.mkdir(parents=True)
    (deep / "bottom.txt").write_text("at the bottom\n")
    many_dir = top / "many"
    many_dir.mkdir()
    for i in range(many):
        (many_dir / f"entry-{i:04d}-{'x' * (i % 50)}").write_bytes(b"%d\n" % i)
    links = top / "links"
    links.mkdir()
    os.symlink("../MixedCase.TXT", links / "relative")
    os.symlink("/files/size-1", links / "absolute")
    os.symlink("../deep", links / "to-dir")
    os.symlink("missing-target", links / "dangling")
    os.symlink(LONG_TARGET, links / "long")
    boot = top / "boot" / "grub"
    boot.mkdir(parents=True)
    (boot / "grub.cfg").write_text(GRUB_CFG)
    live = top / "live"
    live.mkdir()
    (live / "vmlinuz").write_bytes(kernel if kernel is not None else rng.randbytes(300_000))
    (live / "initrd.img").write_bytes(initrd if initrd is not None else rng.randbytes(200_000))
    return top


def xorriso(argv: list[str]) -> None:
    done = subprocess.run(["xorriso", "-as", "mkisofs", "-quiet", *argv], stdin=subprocess.DEVNULL,
                          capture_output=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"xorriso -as mkisofs {' '.join(argv)}: {done.stderr.decode(errors='replace')}")


def build(path: Path, tree: Path, options: list[str]) -> Path:
    """``xorriso -as mkisofs OPTIONS -o PATH TREE`` with a fixed label and dates."""
    xorriso(["-V", VOLUME_ID, "--modification-date=" + MODIFIED, *options, "-o", str(path), str(tree)])
    return path


def efi_image(path: Path, tree: dict[str, bytes]) -> Path:
    """A small FAT image made by mkfs.vfat and filled with mtools' mcopy."""
    with open(path, "wb") as f:
        f.truncate(2 << 20)
    subprocess.run(["mkfs.vfat", "-n", "ESP", str(path)], check=True, capture_output=True)
    for name, data in tree.items():
        parts = name.strip("/").split("/")
        for depth in range(1, len(parts)):
            subprocess.run(["mmd", "-D", "s", "-i", str(path), "::/" + "/".join(parts[:depth])],
                           capture_output=True, check=False)  # exists already: fine
        staged = path.with_suffix(".part")
        staged.write_bytes(data)
        subprocess.run(["mcopy", "-i", str(path), str(staged), "::/" + "/".join(parts)], check=True,
                       capture_output=True)
        staged.unlink()
    return path


def hybrid(path: Path, tree: Path, efi: Path | None, *, rock_ridge: bool = True) -> Path:
    """A bootable isolinux ISO that is also a disk (``-isohybrid-mbr``), and with ``efi``
    an El Torito EFI image that is also a GPT partition (``-isohybrid-gpt-basdat``), as
    Debian's live images are made."""
    staging = path.with_suffix(".tree")
    shutil.copytree(tree, staging, symlinks=True)
    (staging / "isolinux").mkdir(exist_ok=True)
    shutil.copyfile(ISOLINUX_BIN, staging / "isolinux" / "isolinux.bin")
    options = [] if rock_ridge else ["--norock"]
    options += ["-J", "-isohybrid-mbr", str(ISOHYBRID_MBR), "-b", "isolinux/isolinux.bin", "-c", "isolinux/boot.cat",
                "-no-emul-boot", "-boot-load-size", "4", "-boot-info-table"]
    if efi is not None:
        shutil.copyfile(efi, staging / "efi.img")
        options += ["-eltorito-alt-boot", "-e", "efi.img", "-no-emul-boot", "-isohybrid-gpt-basdat"]
    build(path, staging, options)
    shutil.rmtree(staging)
    return path


def tree(tmp_path_factory, name: str = "iso-tree", **kwargs) -> Path:
    return write_tree(tmp_path_factory.mktemp(name) / "tree", **kwargs)


def image(tmp_path_factory, tree_path: Path, variant: str) -> Path:
    return build(tmp_path_factory.mktemp(f"iso-{variant}") / f"{variant}.iso", tree_path, VARIANTS[variant])


BIG_SIZE = 4 * 1024**3 + 512 * 1024**2 + 12345  # over 4 GiB: xorriso writes two extents
BIG_DATA = (0, 4 * 1024**3 - 2048 - 1500, BIG_SIZE - 5000)  # random 3000-5000 bytes at each; holes between


def big_tree(top: Path, seed: int = 4) -> Path:
    """A tree with one sparse file over 4 GiB (data across the first extent's end)."""
    rng = random.Random(seed)
    top.mkdir(parents=True)
    with open(top / "big.bin", "wb") as f:
        f.truncate(BIG_SIZE)
        for offset in BIG_DATA:
            f.seek(offset)
            f.write(rng.randbytes(min(5000, BIG_SIZE - offset)))
    (top / "small.txt").write_text("next to a big file\n")
    return top


def sparse_iso(path: Path, tree: Path, options: list[str]) -> Path:
    """``xorriso -as mkisofs -o -`` copied into ``path`` with the all-zero MiBs left as
    holes, so a 4.5 GiB image takes a few MiB of disk."""
    zero = bytes(1 << 20)
    with subprocess.Popen(["xorriso", "-as", "mkisofs", "-quiet", "-V", VOLUME_ID, *options, "-o", "-", str(tree)],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as proc, open(path, "wb") as out:
        assert proc.stdout is not None
        while chunk := proc.stdout.read(1 << 20):
            if chunk == zero[: len(chunk)]:
                out.seek(len(chunk), os.SEEK_CUR)
            else:
                out.write(chunk)
        out.truncate()
    if proc.returncode != 0:
        raise RuntimeError(f"xorriso -as mkisofs {' '.join(options)} -o - exited {proc.returncode}")
    return path
