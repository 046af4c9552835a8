"""Linux md RAID arrays (and lvm2 volumes that need device-mapper) made by the real tools
and the real kernel drivers, in a QEMU guest.

This machine's kernel has no md driver (TOOL-NOTES), so arrays are made where one exists:
a QEMU guest (TCG) running the Debian kernel of tests/builders/boot.py with an initramfs
that holds a static busybox, Debian's mdadm (with the shared libraries ldd names) and the
kernel's own modules (virtio block, md-mod, raid0/1/10, taken from the same linux-image
package with their modules.dep dependencies). The disk images here are the guest's
virtio disks /dev/vda, /dev/vdb, … in order; a shell script given by the caller runs in
the guest (mdadm --create, dd of a payload disk onto /dev/mdN, mdadm --stop), then the
guest powers off. The script's success is printed on the serial console and checked.

With ``tools=("lvm",)`` the same guest runs lvm2 against device-mapper
(mirror, raid1 and thin LVs, which lvm2 refuses to create with activation off); udev is
not there, so LVM_CONFIG turns its use off.

Debian packages: qemu-system-x86, mdadm, lvm2, busybox-static, cpio, apt (apt-get
download, dpkg-deb).
"""

from __future__ import annotations

import gzip
import lzma
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Sequence

from .boot import QEMU, _run, cache_dir, debian_kernel, kernel_package, qemu_available
from .initramfs import ToolMissing, _pack_tree, static_busybox

# virtio disks, md RAID levels, and the device-mapper targets lvm2 needs for mirror, raid1
# and thin LVs: one set, extracted once (one download of the kernel package)
MODULES = ("virtio_pci", "virtio_blk", "md-mod", "raid0", "raid1", "raid10", "crc32c_generic", "dm-mod", "dm-mirror", "dm-raid",
           "dm-thin-pool", "dm-cache", "dm-cache-smq")
OPTIONAL_MODULES = ("crc32c_generic",)  # libcrc32c's crypto backend (a module in Debian 12's 6.1)
LVM_CONFIG = ("activation{udev_sync=0 udev_rules=0} devices{obtain_device_list_from_udev=0}"
              " global{thin_check_executable=\"\"}")
OK_MARKER = "MD-GUEST-OK"
FAIL_MARKER = "MD-GUEST-FAILED"
GUEST_TIMEOUT = 300.0

INIT = f"""#!/bin/sh
/bin/busybox mount -t devtmpfs devtmpfs /dev
exec </dev/null >/dev/ttyS0 2>&1
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mkdir -p /run/mdadm /tmp
for m in $(cat /modules/order); do insmod /modules/$m.ko || echo "insmod $m failed"; done
i=0
while [ ! -b /dev/vda ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
echo
if sh -e /job.sh; then echo "{OK_MARKER}"; else echo "{FAIL_MARKER} $?"; fi
sync
poweroff -f
"""


def _stem(path: str) -> str:
    return re.sub(r"\.ko(\.xz|\.gz)?$", "", os.path.basename(path))


def kernel_modules(names: Sequence[str] = MODULES) -> tuple[Path, list[str]]:
    """A directory of the modules ``names`` and everything they depend on (uncompressed
    .ko files), and their load order; cached next to the kernel."""
    package = kernel_package()
    target = cache_dir() / f"{package}.modules-{len(names)}"
    order_file = target / "order"
    if order_file.is_file():
        return target, order_file.read_text().split()
    with tempfile.TemporaryDirectory(prefix="modules-", dir=cache_dir()) as tmp:
        done = _run(["apt-get", "download", package], cwd=tmp)
        debs = sorted(Path(tmp).glob(f"{package}_*.deb"))
        if done.returncode != 0 or not debs:
            raise ToolMissing(f"apt-get download {package} failed: {done.stderr.decode(errors='replace').strip()}")
        payload = Path(tmp) / "data.tar"
        with open(payload, "wb") as out:
            subprocess.run(["dpkg-deb", "--fsys-tarfile", str(debs[0])], stdout=out, check=True)
        staged = Path(tmp) / "staged"
        staged.mkdir()
        with tarfile.open(payload) as tar:
            every = tar.getmembers()
            members = {_stem(m.name).replace("-", "_"): m for m in every
                       if m.isfile() and re.search(r"/kernel/.*\.ko(\.xz|\.gz)?$", m.name)}
            # modules.builtin names what this kernel has built in (Debian 13's 6.12 builds
            # virtio_pci in; Debian 12's 6.1 ships it as a module)
            listing = next((m for m in every if m.isfile() and m.name.endswith("/modules.builtin")), None)
            builtin = {_stem(line).replace("-", "_") for line in
                       (tar.extractfile(listing).read().decode().split() if listing is not None else [])}
            loaded: list[str] = []

            def add(name: str) -> None:
                key = name.replace("-", "_")
                if key in loaded or (key in builtin and key not in members):
                    return
                if key not in members:
                    raise ToolMissing(f"{package} has no module {name}")
                data = tar.extractfile(members[key]).read()
                if members[key].name.endswith(".xz"):
                    data = lzma.decompress(data)
                elif members[key].name.endswith(".gz"):
                    data = gzip.decompress(data)
                # .modinfo holds NUL-separated key=value strings; "depends=" names the
                # modules this one needs (what depmod turns into modules.dep)
                found = re.search(rb"\0depends=([^\0]*)\0", data)
                for need in (found.group(1).decode().split(",") if found else []):
                    if need:
                        add(need)
                (staged / f"{key}.ko").write_bytes(data)
                loaded.append(key)

            for name in names:
                if name in OPTIONAL_MODULES and name.replace("-", "_") not in members:
                    continue  # built in, or folded into another module, in this kernel
                add(name)
        (staged / "order").write_text("\n".join(loaded) + "\n")
        try:
            os.replace(staged, target)
        except OSError:  # a concurrent run made it first
            pass
    return target, (target / "order").read_text().split()


def _libraries(binary: str) -> list[str]:
    done = subprocess.run(["ldd", binary], capture_output=True, text=True, check=False)
    found = re.findall(r"(/\S+\.so[^\s]*)", done.stdout)
    return sorted(set(found))


def build_initramfs(out: Path, job: str, tools: Sequence[str] = ("mdadm",)) -> Path:
    """An initramfs that loads MODULES and runs ``job`` (a shell script) under sh -e,
    with the host's ``tools`` (and the libraries they need) in /sbin."""
    binaries = []
    for tool in tools:
        found = shutil.which(tool)
        if found is None:
            raise ToolMissing(f"{tool} not found (see tests/builders/md_guest.py for packages)")
        binaries.append((tool, found))
    modules, order = kernel_modules()
    with tempfile.TemporaryDirectory(prefix="md-initramfs-") as tmp:
        tree = Path(tmp)
        for sub in ("bin", "sbin", "dev", "proc", "sys", "modules", "etc", "run/lock/lvm", "etc/lvm"):
            (tree / sub).mkdir(parents=True)
        shutil.copyfile(static_busybox(), tree / "bin" / "busybox")
        (tree / "bin" / "busybox").chmod(0o755)
        (tree / "bin" / "sh").symlink_to("busybox")
        for tool, found in binaries:
            shutil.copyfile(found, tree / "sbin" / tool)
            (tree / "sbin" / tool).chmod(0o755)
            for library in _libraries(found):
                dest = tree / library.lstrip("/")
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(library, dest)
                dest.chmod(0o755)
        for stem in order:
            shutil.copyfile(modules / f"{stem}.ko", tree / "modules" / f"{stem}.ko")
        (tree / "modules" / "order").write_text(" ".join(order) + "\n")
        (tree / "etc" / "mdadm.conf").write_text("HOMEHOST guestboot\n")
        (tree / "init").write_text(INIT)
        (tree / "init").chmod(0o755)
        (tree / "job.sh").write_text(job)
        archive = _pack_tree(tree)
    out.write_bytes(gzip.compress(archive, compresslevel=1, mtime=0))
    return out


def run_guest(disks: Sequence[Path], job: str, work: Path, timeout: float = GUEST_TIMEOUT,
              tools: Sequence[str] = ("mdadm",)) -> str:
    """Boot the guest with ``disks`` as /dev/vda, /dev/vdb, … and run ``job``; the console
    text is returned. AssertionError with the console when the job fails."""
    missing = qemu_available()
    if missing:
        raise ToolMissing(missing)
    initrd = build_initramfs(work / "md-initramfs.gz", job, tools)
    argv = [QEMU, "-machine", "pc", "-accel", "tcg", "-m", "512", "-smp", "1", "-nographic", "-no-reboot",
            "-kernel", str(debian_kernel()), "-initrd", str(initrd), "-append", "console=ttyS0 quiet panic=-1"]
    for disk in disks:
        argv += ["-drive", f"file={disk},format=raw,if=virtio,cache=unsafe"]
    try:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired as err:
        text = (err.stdout or b"").decode("utf-8", "replace")
        raise AssertionError(f"the md guest did not finish in {timeout:.0f} s; console:\n{text[-4000:]}") from None
    console = done.stdout.decode("utf-8", "replace").replace("\r", "")
    if OK_MARKER not in console:
        raise AssertionError(f"the md guest's job failed; console:\n{console[-6000:]}")
    return console
