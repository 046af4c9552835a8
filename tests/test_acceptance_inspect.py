"""Issue 10's acceptance: ``guestboot inspect`` on a Debian guest shows, for every kernel
in /boot, its version, its payload's codec and what it can boot as (Xen PV, PVH, HVM),
each fact checked against a peer that reads the same file from the tree the image was
made of; ``--guest-type pvh`` refuses a kernel without Xen's PHYS32_ENTRY note (18)
before it writes anything.

Guests: the README's sample (builders/guest_images.py "debian12-gpt": the real Debian
kernel under two version names, so the version shown must be the kernel's own, not its
file name's) and the kernel guest (builders/kernel_guest.py: Debian's kernel,
memtest86+, Xen's hypervisor, GRUB's PV loader in /boot/xen); tests/test_kernel_cli.py
checks the kernel guest's other facts.

Peers: ``file`` (libmagic reads the Linux boot protocol header: the version string);
the codec whose real decompressor, run from its magic on as Linux's
scripts/extract-vmlinux does, gives the ELF vmlinux (builders/debian_files.vmlinux_of);
``readelf -n`` on that vmlinux (the Xen notes: XEN_VERSION, 5, for PV; PHYS32_ENTRY, 18,
for PVH, its value the entry point); ``grub-file`` (GRUB's own x86 Linux loader for HVM
direct boot).

Debian packages: file, binutils (readelf), grub-common (grub-file), xz-utils.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from builders import guest_images
from builders.debian_files import vmlinux_of
from builders.initramfs import ToolMissing
from prereq import unavailable

XEN_VERSION, PHYS32_ENTRY = 5, 18  # Xen's public/elfnote.h
READELF_NAMES = {"NT_VERSION": 1, "NT_ARCH": 2, "GO BUILDID": 4}  # note types readelf prints by a name


def _need(*tools: str) -> None:
    for tool in tools:
        if shutil.which(tool) is None:
            unavailable(f"{tool} not found (scripts/debian-packages.txt lists its package)")


@pytest.fixture(scope="session")
def sample(tmp_path_factory) -> guest_images.GuestImage:
    try:
        return guest_images.session_image(tmp_path_factory, "debian12-gpt")
    except ToolMissing as err:
        unavailable(str(err))


@pytest.fixture(scope="session")
def kernel_guest():
    from builders.kernel_guest import shared_guest

    try:
        return shared_guest()
    except ToolMissing as err:
        unavailable(str(err))


def guestboot(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "guestboot", *argv], stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=300, check=False)


def file_version(path: Path) -> str:
    """The version string ``file`` reads from a bzImage's header."""
    said = subprocess.run(["file", "-b", str(path)], capture_output=True, text=True, check=True).stdout
    found = re.search(r"bzImage, version (.*?), R[OW]-rootFS", said)
    assert found, f"file does not see a bzImage with a version: {said}"
    return found.group(1)


def xen_notes(vmlinux: Path) -> dict[int, bytes]:
    """Xen's ELF notes as readelf -n prints them: type -> descriptor."""
    out = subprocess.run(["readelf", "-nW", str(vmlinux)], capture_output=True, text=True, check=True).stdout
    notes = {}
    for line in out.splitlines():
        fields = line.split()
        if fields[:1] == ["Xen"] and "description data:" in line:
            unknown = re.search(r"\(0x([0-9a-f]+)\)", line)  # readelf names a few numbers after other owners' notes
            named = next((n for name, n in READELF_NAMES.items() if name in line), None)
            number = int(unknown.group(1), 16) if unknown else named
            if number is not None:
                notes[number] = bytes.fromhex(line.split("description data:")[1].replace(" ", ""))
    return notes


def test_inspect_every_kernel_of_the_sample_guest(sample):
    _need("file", "readelf", "grub-file", "xz")
    done = guestboot("inspect", "--json", str(sample.path))
    assert done.returncode == 0, done.stderr
    kernels = {k["file"]: k for k in json.loads(done.stdout)["boot_files"]["kernels"]}
    on_disk = sorted(p for p in sample.boot_tree.iterdir() if p.name.startswith("vmlinuz-"))
    assert sorted(kernels) == [f"(hd0,{sample.partition})/{p.name}" for p in on_disk]
    assert len(on_disk) == 2
    for path in on_disk:
        facts = kernels[f"(hd0,{sample.partition})/{path.name}"]
        version = file_version(path)
        assert (facts["format"], facts["version"], facts["release"]) == ("bzImage", version, version.split()[0])
        vmlinux, codec = vmlinux_of(path)
        assert facts["payload"]["codec"] == codec
        notes = xen_notes(vmlinux)
        assert facts["pv"] == notes[XEN_VERSION].rstrip(b"\0").decode() + "-x86_64"
        pvh = notes.get(PHYS32_ENTRY)
        assert facts["pvh_entry"] == (int.from_bytes(pvh, "little") if pvh else None)
        hvm = subprocess.run(["grub-file", "--is-x86-linux", str(path)], check=False).returncode == 0
        assert facts["hvm"] is hvm
        assert facts["supports"] == [kind for kind, can in (("pv", True), ("pvh", pvh is not None), ("hvm", hvm)) if can]
    # the file named for 6.1.0-13 holds another version: inspect says what the kernel is
    assert kernels[f"(hd0,{sample.partition})/vmlinuz-{guest_images.DEBIAN_OLD_RELEASE}"]["release"] != \
        guest_images.DEBIAN_OLD_RELEASE


@pytest.mark.parametrize("entry, kernel", [("1", "memtest86+x64.bin"), ("2", "xen")])
def test_guest_type_pvh_refuses_before_writing(kernel_guest, tmp_path, entry, kernel):
    """memtest86+ (a bzImage with no ELF inside) and Xen's hypervisor (an ELF whose only
    note is GNU's, as readelf says) have no note 18: refused, the empty output directory
    stays empty, nothing on stdout."""
    boot = kernel_guest.tree / "boot"
    name = kernel_guest.xen if kernel == "xen" else kernel
    if kernel == "xen":
        _need("readelf", "gzip")
        elf = tmp_path / "xen.elf"
        with open(elf, "wb") as out:
            subprocess.run(["gzip", "-dc", str(boot / name)], stdout=out, check=True)
        assert PHYS32_ENTRY not in xen_notes(elf)
    out = tmp_path / "out"
    out.mkdir()
    done = guestboot("extract", str(kernel_guest.image), "-o", str(out), "--entry", entry, "--guest-type", "pvh")
    assert done.returncode == 4, done.stderr
    assert list(out.iterdir()) == [] and done.stdout == ""
    message = done.stderr.strip().splitlines()[-1]
    assert f"/boot/{name}" in message and "not Xen PVH" in message, message
