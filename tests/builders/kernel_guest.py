"""A Debian-like guest whose /boot holds real kernels of every kind inspection tells apart.

GPT (sgdisk) with one ext4 partition (mke2fs -d) holding / with /boot:

- ``vmlinuz-REL`` and ``initrd.img-REL``: Debian's amd64 kernel (bzImage, xz payload, PV +
  PVH + HVM) and an initrd laid out as initramfs-tools does with early microcode: an
  uncompressed cpio of kernel/x86/microcode/GenuineIntel.bin, then the main archive
  (tests/builders/initramfs.py's busybox archive, which prints its name and powers off);
- ``memtest86+x64.bin``: Debian's memtest86+ (a bzImage with no payload, HVM only);
- ``xen-VER-amd64.gz``: Xen from xen-hypervisor-VER-amd64 (gzip, multiboot v1 + v2);
- ``xen/pvboot-x86_64.elf``: GRUB's x86_64-xen image from grub-xen-host, where Debian's
  grub-xen puts the PV bootloader (the Xen PV bootloader protocol's path).

``/boot/grub/grub.cfg`` boots them: 0 Debian (linux/initrd), 1 memtest86+ (linux16),
2 Xen with the Debian kernel and initrd as multiboot2 modules (as 20_linux_xen writes it).
The expected facts are the packages' own (names, readelf, grub-file): see the tests.

Debian packages: gdisk, e2fsprogs, cpio, busybox-static, apt (apt-get download).
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .boot import debian_kernel, kernel_release
from .debian_files import depends_on, package_file
from .initramfs import build_initramfs

ROOT_UUID = "6c3d1f0e-2a4b-4c5d-8e9f-0a1b2c3d4e5f"
PART_START = 2048  # sectors
DISK_MIB = 192
MICROCODE = b"not a microcode update: the kernel's early loader looks for a valid header and finds none\n"


@dataclass
class KernelGuest:
    image: Path
    release: str  # "6.1.0-57-amd64"
    xen: str  # "xen-4.17-amd64.gz"
    tree: Path  # the tree / was made from


def _early_cpio(tmp: Path) -> bytes:
    tree = tmp / "early"
    (tree / "kernel/x86/microcode").mkdir(parents=True)
    (tree / "kernel/x86/microcode/GenuineIntel.bin").write_bytes(MICROCODE)
    names = "\n".join(["kernel", "kernel/x86", "kernel/x86/microcode", "kernel/x86/microcode/GenuineIntel.bin"])
    return subprocess.run(["cpio", "-o", "-H", "newc", "-R", "0:0", "--quiet"], cwd=tree, input=names.encode(),
                          capture_output=True, check=True).stdout


def grub_cfg(release: str, xen: str) -> str:
    return f"""set default=0
set timeout=5
menuentry 'Debian GNU/Linux' --id debian {{
	search --no-floppy --fs-uuid --set=root {ROOT_UUID}
	linux /boot/vmlinuz-{release} root=UUID={ROOT_UUID} ro quiet guestboot.entry=debian
	initrd /boot/initrd.img-{release}
}}
menuentry 'Memory test (memtest86+x64.bin)' --id memtest {{
	linux16 /boot/memtest86+x64.bin
}}
menuentry 'Debian GNU/Linux, with Xen hypervisor' --id xen {{
	multiboot2 /boot/{xen} placeholder dom0_mem=512M console=com1
	module2 /boot/vmlinuz-{release} placeholder root=UUID={ROOT_UUID} ro console=hvc0 guestboot.entry=xen-dom0
	module2 --nounzip /boot/initrd.img-{release}
}}
"""


def build_kernel_guest(workdir: Path, *, with_config: bool = True) -> KernelGuest:
    """The guest; ``with_config=False`` leaves /boot/grub out (no boot configuration)."""
    kernel = debian_kernel()
    release = kernel_release(kernel)
    xen_package = depends_on("xen-system-amd64", r"xen-hypervisor-\S+-amd64")
    xen_gz = package_file(xen_package, r"\./boot/xen-[0-9.]+-amd64\.gz")
    memtest = package_file("memtest86+", r"\./boot/memtest86\+x64\.bin")
    pvboot = package_file("grub-xen-host", r"\./usr/lib/grub-xen/grub-x86_64-xen\.bin")
    xen_name = xen_gz.name.split("__", 1)[1].rsplit("%", 1)[-1]

    tree = workdir / "root"
    boot = tree / "boot"
    (boot / "grub").mkdir(parents=True)
    (boot / "xen").mkdir()
    shutil.copyfile(kernel, boot / f"vmlinuz-{release}")
    main = build_initramfs(workdir / "main.cpio.gz", f"initrd.img-{release}").read_bytes()
    (boot / f"initrd.img-{release}").write_bytes(_early_cpio(workdir) + main)
    shutil.copyfile(memtest, boot / "memtest86+x64.bin")
    shutil.copyfile(xen_gz, boot / xen_name)
    shutil.copyfile(pvboot, boot / "xen" / "pvboot-x86_64.elf")
    (boot / f"config-{release}").write_text("CONFIG_XEN=y\n")  # a text file: neither kernel nor initrd
    if with_config:
        (boot / "grub" / "grub.cfg").write_text(grub_cfg(release, xen_name))
    else:
        (boot / "grub").rmdir()
    (tree / "etc").mkdir()
    (tree / "etc" / "os-release").write_text('ID=debian\nVERSION_ID="12"\n')

    image = workdir / "kernels.img"
    with open(image, "wb") as f:
        f.truncate(DISK_MIB << 20)
    sectors = (DISK_MIB << 20) // 512 - PART_START - 2048
    subprocess.run(["sgdisk", "-o", "-n", f"1:{PART_START}:+{sectors}", "-t", "1:8300", str(image)],
                   capture_output=True, check=True)
    subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", "-U", ROOT_UUID, "-E", f"offset={PART_START * 512}",
                    "-d", str(tree), str(image), f"{sectors // 2}k"], capture_output=True, check=True)
    return KernelGuest(image, release, xen_name, tree)


@functools.cache
def shared_guest() -> KernelGuest:
    """One guest for every test module of a run, in a directory libvirt's QEMU user can
    reach (0711; pytest's own temporary directories are 0700); removed at exit."""
    import atexit
    import tempfile

    top = Path(tempfile.mkdtemp(prefix="guestboot-kernel-guest-"))
    atexit.register(shutil.rmtree, top, True)
    top.chmod(0o711)
    return build_kernel_guest(top)
