"""Seed corpora for the fuzz targets, made by the real tools from one small guest tree.

``build(cache)`` makes (once; kept in ``cache``) one small image per file system (mke2fs -d,
mkfs.xfs and mkfs.exfat filled through a mount, mkfs.btrfs --rootdir, mkfs.vfat + mcopy,
xorriso, mksquashfs), partition tables (sfdisk, sgdisk, fdisk's Sun and nested BSD labels),
an LVM2 physical volume (pvcreate/vgcreate/lvcreate on a loop device, activation off),
image formats (qemu-img convert to qcow2, compressed qcow2, vhd, vhdx, vmdk), GRUB's
environment block (grub-editenv), an initrd (cpio + gzip) and the kernels the tests
already download (Debian's vmlinuz, GRUB's Xen PV images, Xen's EFI binary, systemd's
stubs). A seed a tool cannot make here is left out and named in ``missing``.

Config seeds are the conformance corpus in tests/data (real configs of real
distributions, from pygrub, petitboot and u-root), read in place.

md RAID needs the md driver (mdadm --create), which this kernel may lack: the md seeds
(one member of a two-disk RAID1 with superblock 1.2, one with 0.90, each holding the ext4
seed) are made by mdadm in a QEMU guest (tests/builders/md_guest.py, one short boot).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import NamedTuple

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "tests" / "data"
CACHE_ENV = "GUESTBOOT_FUZZ_CACHE"
VERSION = "v2"  # bump when what build() makes changes
MiB = 1 << 20

GRUB_CFG = """\
set default=0
set timeout=5
insmod part_gpt
insmod ext2
search --no-floppy --fs-uuid --set=root 0123-4567
menuentry 'Debian GNU/Linux' --class debian --id gnulinux-simple {
    load_video
    set gfxpayload=keep
    linux /boot/vmlinuz-6.1.0-13-amd64 root=/dev/vda1 ro quiet
    initrd /boot/initrd.img-6.1.0-13-amd64
}
submenu 'Advanced options' {
    menuentry 'Debian, recovery' { linux /boot/vmlinuz-6.1.0-13-amd64 root=/dev/vda1 single }
}
"""
MENU_LST = "default 0\ntimeout 3\ntitle Debian\n\troot (hd0,0)\n\tkernel /boot/vmlinuz-6.1.0-13-amd64 ro\n" \
           "\tinitrd /boot/initrd.img-6.1.0-13-amd64\n"
MENU_LST_MORE = """\
default saved
fallback 1 2
timeout 10
hiddenmenu
color cyan/blue white/blue
password --md5 $1$abc$xyz
splashimage=(hd0,0)/boot/grub/splash.xpm.gz
title Xen 4.17 / Debian
\troot (hd0,0)
\tkernel /boot/xen-4.17-amd64.gz dom0_mem=1024M
\tmodule /boot/vmlinuz-6.1.0-13-amd64 root=/dev/sda1 ro console=hvc0
\tmodule /boot/initrd.img-6.1.0-13-amd64
\tsavedefault
title Debian (recovery)
\troot (hd0,0)
\tkernel /boot/vmlinuz-6.1.0-13-amd64 root=/dev/sda1 ro single
\tinitrd /boot/initrd.img-6.1.0-13-amd64
title Windows
\trootnoverify (hd0,1)
\tchainloader +1
title configfile
\tconfigfile /boot/grub/menu.lst
"""
EXTLINUX = "DEFAULT linux\nTIMEOUT 30\nLABEL linux\n  KERNEL /boot/vmlinuz-6.1.0-13-amd64\n" \
           "  APPEND root=/dev/vda1 ro\n  INITRD /boot/initrd.img-6.1.0-13-amd64\n"
BLS = "title Fedora\nversion 6.1.0\nlinux /boot/vmlinuz-6.1.0-13-amd64\ninitrd /boot/initrd.img-6.1.0-13-amd64\n" \
      "options root=/dev/vda1 ro\n"


class Seed(NamedTuple):
    name: str
    path: Path
    tags: frozenset[str]  # which targets start from it: "fs", "table", "image", "lvm", "kernel", "initrd", "env"


def cache_dir() -> Path:
    path = Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "guestboot-fuzz") / VERSION
    path.mkdir(parents=True, exist_ok=True)
    return path


EPOCH = 1764806400  # 2025-12-04: the time every seed's timestamps say, where the tool lets us choose
UUID = "6c1e5f2a-0b7d-4e3c-9a18-2f4d6b8c0e1a"
# fixed times make the seeds the same from build to build (reproducers patch offsets in them)
TOOL_ENV = {**os.environ, "SOURCE_DATE_EPOCH": str(EPOCH), "E2FSPROGS_FAKE_TIME": str(EPOCH)}


def _run(argv: list[str], **kwargs) -> None:
    done = subprocess.run(argv, capture_output=True, timeout=300, env=TOOL_ENV, **kwargs)
    if done.returncode != 0:
        raise RuntimeError(f"{argv[0]}: {done.stderr.decode(errors='replace').strip()[:300]}")


def write_tree(top: Path) -> Path:
    """The small guest tree every file-system seed holds."""
    (top / "boot/grub").mkdir(parents=True, exist_ok=True)
    (top / "boot/extlinux").mkdir(parents=True, exist_ok=True)
    (top / "loader/entries").mkdir(parents=True, exist_ok=True)
    (top / "deep/a/b/c").mkdir(parents=True, exist_ok=True)
    (top / "boot/grub/grub.cfg").write_text(GRUB_CFG)
    (top / "boot/grub/menu.lst").write_text(MENU_LST)
    (top / "boot/extlinux/extlinux.conf").write_text(EXTLINUX)
    (top / "loader/entries/fedora.conf").write_text(BLS)
    (top / "boot/vmlinuz-6.1.0-13-amd64").write_bytes(bytes(range(256)) * 300)  # 75 KiB, several blocks
    (top / "boot/initrd.img-6.1.0-13-amd64").write_bytes(b"initrd" * 5000)
    (top / "deep/a/b/c/file.txt").write_text("deep\n")
    for i in range(40):  # a directory of more than one block
        (top / "deep" / f"entry-with-a-longish-name-{i:03d}").write_text(str(i))
    with contextlib.suppress(FileExistsError):
        os.symlink("vmlinuz-6.1.0-13-amd64", top / "boot/vmlinuz")
    with contextlib.suppress(FileExistsError):
        os.symlink("../../boot", top / "deep/a/up")
    for path in [*top.rglob("*"), top]:
        os.utime(path, (EPOCH, EPOCH), follow_symlinks=False)
    return top


def _blank(path: Path, size: int) -> Path:
    with open(path, "wb") as f:
        f.truncate(size)
    return path


def _mounted_copy(image: Path, tree: Path, mount: list[str]) -> None:
    """Copy ``tree`` into ``image`` through the kernel's (or FUSE's) driver on a loop device."""
    point = Path(tempfile.mkdtemp(prefix="fuzz-mnt-"))
    try:
        _run([*mount, str(image), str(point)])
        try:
            for child in tree.iterdir():
                if child.is_symlink() or child.is_file():
                    shutil.copy2(child, point / child.name, follow_symlinks=False)
                else:
                    shutil.copytree(child, point / child.name, symlinks=True)
        finally:
            _run(["umount", str(point)])
    finally:
        point.rmdir()


def _fs_seeds(work: Path, tree: Path) -> dict[str, "callable"]:
    def ext4(out: Path) -> None:
        _run(["mke2fs", "-q", "-F", "-t", "ext4", "-d", str(tree), "-L", "gb-ext4", "-U", UUID, "-E", f"hash_seed={UUID}", str(_blank(out, 4 * MiB))])

    def ext2(out: Path) -> None:
        _run(["mke2fs", "-q", "-F", "-t", "ext2", "-b", "1024", "-d", str(tree), "-U", UUID, str(_blank(out, 2 * MiB))])

    def xfs(out: Path) -> None:  # mkfs.xfs refuses less than 300 MB: a sparse file
        _run(["mkfs.xfs", "-q", "-f", "-L", "gb-xfs", "-m", f"uuid={UUID}", str(_blank(out, 300 * MiB))])
        _mounted_copy(out, tree, ["mount", "-o", "loop"])

    def btrfs(out: Path) -> None:
        _run(["mkfs.btrfs", "-q", "-f", "-L", "gb-btrfs", "-U", UUID, "--rootdir", str(tree), str(_blank(out, 120 * MiB))])

    def fat16(out: Path) -> None:
        _run(["mkfs.vfat", "-F", "16", "-n", "GBFAT", "-i", "0badcafe", str(_blank(out, 20 * MiB))])
        _run(["mcopy", "-s", "-m", "-i", str(out), *[str(p) for p in tree.iterdir() if not p.is_symlink()], "::/"])

    def fat12(out: Path) -> None:
        _run(["mkfs.vfat", "-F", "12", "-i", "0badcafe", str(_blank(out, 2 * MiB))])
        _run(["mcopy", "-s", "-m", "-i", str(out), str(tree / "boot"), "::/"])

    def exfat(out: Path) -> None:
        _run(["mkfs.exfat", "-L", "GBEXFAT", str(_blank(out, 4 * MiB))])
        flat = work / "exfat-tree"  # no symlinks on exFAT
        shutil.rmtree(flat, ignore_errors=True)
        shutil.copytree(tree, flat, symlinks=False, ignore_dangling_symlinks=True,
                        ignore=lambda d, names: [n for n in names if (Path(d) / n).is_symlink()])
        loop = subprocess.run(["losetup", "--find", "--show", str(out)], capture_output=True, text=True,
                              check=True).stdout.strip()
        try:  # exfat-fuse wants a block device
            _mounted_copy(Path(loop), flat, ["mount.exfat-fuse"])
        finally:
            subprocess.run(["losetup", "-d", loop], capture_output=True, check=False)

    def iso(out: Path) -> None:
        _run(["xorriso", "-as", "mkisofs", "-quiet", "-R", "-J", "-V", "GBISO", "-o", str(out), str(tree)])

    def squashfs_gzip(out: Path) -> None:
        _run(["mksquashfs", str(tree), str(out), "-noappend", "-quiet", "-no-progress", "-comp", "gzip"])

    def squashfs_xz(out: Path) -> None:
        _run(["mksquashfs", str(tree), str(out), "-noappend", "-quiet", "-no-progress", "-comp", "xz",
              "-b", "16384"])

    return {"ext4.img": ext4, "ext2-1k.img": ext2, "xfs.img": xfs, "btrfs.img": btrfs, "fat16.img": fat16,
            "fat12.img": fat12, "exfat.img": exfat, "iso9660.iso": iso, "squashfs-gzip.img": squashfs_gzip,
            "squashfs-xz.img": squashfs_xz}


def _table_seeds(cache: Path) -> dict[str, "callable"]:
    ext4 = cache / "ext4.img"

    def place(disk: Path, start_sector: int) -> None:
        _run(["dd", f"if={ext4}", f"of={disk}", "bs=512", f"seek={start_sector}", "conv=notrunc,sparse",
              "status=none"])

    def mbr(out: Path) -> None:
        _blank(out, 24 * MiB)
        script = ("label: dos\nstart=2048, size=10240, type=83, bootable\nstart=12288, type=5\n"
                  "start=14336, size=8192, type=83\nstart=24576, size=8192, type=82\n")
        _run(["sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", str(out)], input=script.encode())
        place(out, 2048)

    def gpt(out: Path) -> None:
        _blank(out, 16 * MiB)
        _run(["sgdisk", "-o", "-n", "1:2048:+1M", "-t", "1:ef02", "-n", "2:0:+9M", "-t", "2:8300",
              "-c", "2:root", "-n", "3:0:0", "-t", "3:ef00", str(out)])
        place(out, 4096)

    def sun(out: Path) -> None:
        _blank(out, 16 * MiB)
        _run(["fdisk", str(out)], input=b"s\nw\n")

    def bsd(out: Path) -> None:
        _blank(out, 16 * MiB)
        _run(["sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", str(out)],
             input=b"label: dos\nstart=2048, size=20000, type=a5\n")
        _run(["fdisk", str(out)], input=b"b\ny\nn\na\n2064\n+8191\nw\nq\n")
        place(out, 2064)

    return {"mbr-logical.img": mbr, "gpt.img": gpt, "sun.img": sun, "bsd-nested.img": bsd}


def _lvm_seed(out: Path) -> None:
    sys.path.insert(0, str(REPO / "tests"))
    from builders.lvm import Lvm, loop_devices

    _blank(out, 16 * MiB)
    with loop_devices([out]) as (device,):
        tool = Lvm([device])
        tool("pvcreate", "-y", device)
        tool("vgcreate", "-s", "1m", "gbfuzz", device)
        tool("lvcreate", "-an", "-Zn", "-n", "boot", "-L", "4m", "gbfuzz")
        tool("lvcreate", "-an", "-Zn", "-n", "root", "-L", "6m", "gbfuzz")
        segments = tool.report("lvs", "lv_name,seg_pe_ranges", "gbfuzz")
    for row in segments:
        if row["lv_name"] == "boot":
            first = int(row["seg_pe_ranges"].split(":")[1].split("-")[0])
            _run(["dd", f"if={out.parent / 'ext4.img'}", f"of={out}", "bs=1M", f"seek={1 + first}",
                  "conv=notrunc,sparse", "status=none"])


def _md_seeds(cache: Path) -> dict[str, "callable"]:
    """Member 0 of a RAID1 of two 8 MiB disks per superblock version, holding the ext4
    seed; one guest boot makes both (the first seed asked for makes the other too)."""

    def make(out: Path) -> None:
        sys.path.insert(0, str(REPO / "tests"))
        from builders.md_guest import run_guest

        work = Path(tempfile.mkdtemp(prefix="md-", dir=cache / "work"))
        try:
            members = [_blank(work / f"m{i}.img", 8 * MiB) for i in range(4)]
            payload = work / "payload.img"
            shutil.copyfile(cache / "ext4.img", payload)
            create = "mdadm --create --run --assume-clean --homehost=guestboot"
            job = (f"{create} /dev/md0 --metadata=1.2 --level=1 --raid-devices=2 --name=fuzz /dev/vda /dev/vdb\n"
                   f"{create} /dev/md1 --metadata=0.90 --level=1 --raid-devices=2 /dev/vdc /dev/vdd\n"
                   "dd if=/dev/vde of=/dev/md0 bs=1M conv=fsync\n"
                   "dd if=/dev/vde of=/dev/md1 bs=1M conv=fsync\n"
                   "mdadm --stop /dev/md0 && mdadm --stop /dev/md1\n")
            try:
                run_guest([*members, payload], job, work, timeout=240)
            except AssertionError as err:  # the guest's console, for the missing list
                raise RuntimeError(str(err)[-2000:]) from None
            for name, member in (("md-raid1-1.2.img", members[0]), ("md-raid1-0.90.img", members[2])):
                os.replace(member, out if out.name == name + ".part" else cache / name)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    return {"md-raid1-1.2.img": make, "md-raid1-0.90.img": make}


def _format_seeds(cache: Path) -> dict[str, "callable"]:
    raw = cache / "gpt.img"

    def convert(fmt: str, *options: str):
        def make(out: Path) -> None:
            _run(["qemu-img", "convert", "-q", "-f", "raw", "-O", fmt, *options, str(raw), str(out)])
        return make

    return {"disk.qcow2": convert("qcow2"), "disk-compressed.qcow2": convert("qcow2", "-c"),
            "disk.vhd": convert("vpc"), "disk-fixed.vhd": convert("vpc", "-o", "subformat=fixed"),
            "disk.vhdx": convert("vhdx"), "disk.vmdk": convert("vmdk"),
            "disk-stream.vmdk": convert("vmdk", "-o", "subformat=streamOptimized")}


def _small_seeds(work: Path, tree: Path) -> dict[str, "callable"]:
    def grubenv(out: Path) -> None:
        out.unlink(missing_ok=True)
        _run(["grub-editenv", str(out), "create"])
        _run(["grub-editenv", str(out), "set", "saved_entry=gnulinux-simple", "next_entry=", "kernelopts=ro"])

    def initrd(out: Path) -> None:
        listing = "\n".join(str(p.relative_to(tree)) for p in sorted(tree.rglob("*"))) + "\n"
        cpio = subprocess.run(["cpio", "-o", "-H", "newc", "--quiet"], input=listing.encode(), cwd=tree,
                              capture_output=True, check=True).stdout
        out.write_bytes(cpio + subprocess.run(["gzip", "-9n"], input=cpio, capture_output=True, check=True).stdout)

    return {"grubenv": grubenv, "initrd-cpio-gzip.img": initrd}


def _kernel_paths() -> dict[str, Path]:
    """Kernels the test suite downloads into its cache (tests/builders), and systemd's stubs."""
    found: dict[str, Path] = {}
    sys.path.insert(0, str(REPO / "tests"))
    try:
        from builders.boot import cache_dir as test_cache

        tests = test_cache()
    except Exception:  # the test builders are not importable: only the host's files
        tests = None
    if tests is not None:
        for pattern, name in (("linux-image-*.vmlinuz", "vmlinuz"), ("*grub-x86_64-xen.bin", "grub-xen-pv.elf"),
                              ("*grub-i386-xen_pvh.bin", "grub-xen-pvh.elf"), ("*xen-*-amd64.gz", "xen.gz"),
                              ("*xen-*-amd64.efi", "xen.efi"), ("memtest86+*x64.bin", "memtest.bin")):
            hits = sorted(tests.glob(pattern))
            if hits:
                found[name] = hits[-1]
    for stub in ("linuxx64.efi.stub", "systemd-bootx64.efi"):
        path = Path("/usr/lib/systemd/boot/efi") / stub
        if path.is_file():
            found[stub] = path
    return found


TAGS = {
    "ext4.img": "fs", "ext2-1k.img": "fs", "xfs.img": "fs", "btrfs.img": "fs", "fat16.img": "fs",
    "fat12.img": "fs", "exfat.img": "fs", "iso9660.iso": "fs", "squashfs-gzip.img": "fs", "squashfs-xz.img": "fs",
    "mbr-logical.img": "table", "gpt.img": "table", "sun.img": "table", "bsd-nested.img": "table",
    "lvm-pv.img": "lvm", "md-raid1-1.2.img": "md", "md-raid1-0.90.img": "md", "disk.qcow2": "image", "disk-compressed.qcow2": "image", "disk.vhd": "image",
    "disk-fixed.vhd": "image", "disk.vhdx": "image", "disk.vmdk": "image", "disk-stream.vmdk": "image",
    "grubenv": "env", "initrd-cpio-gzip.img": "initrd",
}

# the driver module each file-system seed is for (targets "fs.<module>")
FS_TAGS = {"ext4.img": ("fs.ext",), "ext2-1k.img": ("fs.ext",), "xfs.img": ("fs.xfs",), "btrfs.img": ("fs.btrfs",),
           "fat16.img": ("fs.fat",), "fat12.img": ("fs.fat",), "exfat.img": ("fs.exfat",),
           "iso9660.iso": ("fs.iso9660",), "squashfs-gzip.img": ("fs.squashfs",), "squashfs-xz.img": ("fs.squashfs",)}


def build(cache: Path | None = None) -> tuple[list[Seed], dict[str, str]]:
    """Every seed (built once into ``cache``) and, by name, why a seed could not be made."""
    cache = cache or cache_dir()
    missing: dict[str, str] = {}
    work = cache / "work"
    work.mkdir(exist_ok=True)
    tree = write_tree(work / "tree")
    stages = (lambda: {**_fs_seeds(work, tree), **_small_seeds(work, tree)},
              lambda: {**_table_seeds(cache), "lvm-pv.img": _lvm_seed, **_md_seeds(cache)},  # hold the ext4 seed
              lambda: _format_seeds(cache))  # convert the GPT seed
    for stage in stages:
        for name, make in stage().items():
            _make(cache, name, make, missing)
    seeds = [Seed(name, cache / name, frozenset({tag, *FS_TAGS.get(name, ())})) for name, tag in TAGS.items()
             if (cache / name).is_file()]
    seeds += [Seed(name, path, frozenset({"kernel"})) for name, path in _kernel_paths().items()]
    return seeds, missing


def _make(cache: Path, name: str, make, missing: dict[str, str]) -> None:
    target = cache / name
    if target.is_file():
        return
    part = cache / (name + ".part")
    try:
        make(part)
        part.rename(target)
    except (RuntimeError, OSError, subprocess.SubprocessError, ImportError) as err:
        missing[name] = str(err)
        part.unlink(missing_ok=True)


def config_seeds() -> dict[str, list[bytes]]:
    """Real configs by format, from the conformance corpus (tests/data)."""
    corpus = CORPUS / "corpus"
    by_format: dict[str, list[Path]] = {
        "grub2": [*sorted(corpus.glob("pygrub/*.grub2")), *sorted(corpus.glob("petitboot/*/__test0/**/grub.cfg")),
                  *sorted(corpus.glob("uroot/**/grub.cfg"))[:20], *sorted(corpus.glob("petitboot/*/__test0/grub/*.cfg"))],
        "grub-legacy": [*sorted(corpus.glob("pygrub/*.grub")), *sorted(CORPUS.glob("**/menu.lst")),
                        *sorted(corpus.glob("**/grub.conf"))],
        "syslinux": [*sorted(corpus.glob("pygrub/*.extlinux")), *sorted(corpus.glob("**/syslinux*.cfg")),
                     *sorted(corpus.glob("**/isolinux.cfg")), *sorted(corpus.glob("**/extlinux.conf"))],
        "systemd-boot": sorted(corpus.glob("**/loader/entries/*.conf")),
        "grubenv": sorted(corpus.glob("**/grubenv")),
    }
    seeds = {fmt: [p.read_bytes() for p in paths if p.is_file() and p.stat().st_size <= 256 * 1024][:60]
             for fmt, paths in by_format.items()}
    seeds["grub2"].append(GRUB_CFG.encode())
    seeds["grub-legacy"] += [MENU_LST.encode(), MENU_LST_MORE.encode()]
    seeds["syslinux"].append(EXTLINUX.encode())
    seeds["systemd-boot"].append(BLS.encode())
    return seeds


if __name__ == "__main__":
    made, why = build()
    for seed in made:
        print(f"{seed.name:24} {sorted(seed.tags)[0]:7} {seed.path.stat().st_size:>10}  {seed.path}")
    for name, reason in why.items():
        print(f"missing {name}: {reason}")
