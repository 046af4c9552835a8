"""``guestboot inspect`` and ``list --json`` on a guest whose /boot holds real kernels
(tests/builders/kernel_guest.py): Debian's amd64 kernel and initrd with early microcode,
memtest86+, Xen's hypervisor, GRUB's PV bootloader in /boot/xen. Each fact is checked
against a peer that reads the same file from the builder's tree: grub-file (GRUB's own
loaders: Xen PV, Linux boot protocol, multiboot), readelf -n on the vmlinux the real
decompressor gets out of the bzImage, and the files the builder put in."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from builders.debian_files import vmlinux_of, xen_pv_by_peer
from builders.initramfs import ToolMissing
from prereq import unavailable


@pytest.fixture(scope="session")
def guest():
    from builders.kernel_guest import shared_guest

    try:
        return shared_guest()
    except ToolMissing as err:
        unavailable(str(err))


def guestboot(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "guestboot", *argv], capture_output=True, text=True, timeout=300)
    if check and done.returncode != 0:
        raise AssertionError(f"guestboot {' '.join(argv)}: exit {done.returncode}: {done.stderr}")
    return done


def grub_file(option: str, path) -> bool:
    return subprocess.run(["grub-file", option, str(path)], check=False).returncode == 0


def test_inspect_json_names_every_kernel_in_boot(guest):
    data = json.loads(guestboot("inspect", "--json", str(guest.image)).stdout)
    kernels = {k["file"]: k for k in data["boot_files"]["kernels"]}
    boot = guest.tree / "boot"
    want = {f"(hd0,gpt1)/boot/{p.relative_to(boot)}" for p in boot.rglob("*")
            if p.is_file() and not p.name.startswith(("initrd", "config")) and p.parent.name != "grub"}
    assert set(kernels) == want
    debian = kernels[f"(hd0,gpt1)/boot/vmlinuz-{guest.release}"]
    vmlinux, codec = vmlinux_of(boot / f"vmlinuz-{guest.release}")
    notes = subprocess.run(["readelf", "-nW", str(vmlinux)], capture_output=True, text=True, check=True).stdout
    assert debian["release"] == guest.release and debian["payload"]["codec"] == codec
    assert (debian["pvh_entry"] is not None) == ("Unknown note type: (0x00000012)" in notes)
    assert (debian["pv"] == "xen-3.0-x86_64") == xen_pv_by_peer(boot / f"vmlinuz-{guest.release}", vmlinux, codec)
    memtest = kernels["(hd0,gpt1)/boot/memtest86+x64.bin"]
    assert memtest["supports"] == ["hvm"] and grub_file("--is-x86-linux", boot / "memtest86+x64.bin")
    assert not grub_file("--is-x86_64-xen-domu", boot / "memtest86+x64.bin")
    xen = kernels[f"(hd0,gpt1)/boot/{guest.xen}"]
    assert xen["compressed"] == "gzip"
    assert sorted(m["version"] for m in xen["multiboot"]) == [
        v for v, opt in ((1, "--is-x86-multiboot"), (2, "--is-x86-multiboot2")) if grub_file(opt, boot / guest.xen)]
    pvboot = kernels["(hd0,gpt1)/boot/xen/pvboot-x86_64.elf"]
    assert pvboot["supports"] == ["pv"] and grub_file("--is-x86_64-xen-domu", boot / "xen" / "pvboot-x86_64.elf")
    (initrd,) = data["boot_files"]["initrds"]
    assert initrd["file"] == f"(hd0,gpt1)/boot/initrd.img-{guest.release}"
    assert [p["format"] for p in initrd["parts"]] == ["cpio", "gzip"]
    assert initrd["microcode"] == ["kernel/x86/microcode/GenuineIntel.bin"]


def test_inspect_text_one_line_per_kernel(guest):
    out = guestboot("inspect", str(guest.image)).stdout
    line = next(l for l in out.splitlines() if l.startswith(f"  kernel (hd0,gpt1)/boot/vmlinuz-{guest.release}:"))
    _, codec = vmlinux_of(guest.tree / "boot" / f"vmlinuz-{guest.release}")
    assert re.search(rf"bzImage \({codec} payload\) {re.escape(guest.release)}: PV, PVH, HVM", line)
    assert "kernel (hd0,gpt1)/boot/memtest86+x64.bin: bzImage Memtest86+: HVM;" in out
    assert "initrd (hd0,gpt1)/boot/initrd.img" in out and "microcode GenuineIntel.bin" in out
    # the Xen entry: the hypervisor, then each module as what it is
    module = next(l for l in out.splitlines() if l.strip().startswith(f"module (hd0,gpt1)/boot/vmlinuz-{guest.release} ["))
    assert f"guestboot.entry=xen-dom0]: bzImage ({codec} payload)" in module and "PV as xen-3.0-x86_64" in module
    assert re.search(r"module \(hd0,gpt1\)/boot/initrd\.img-\S+: cpio \(4 members\) \+ gzip-compressed cpio", out)


def test_list_json_carries_kernel_facts(guest):
    data = json.loads(guestboot("list", "--json", str(guest.image)).stdout)
    debian, memtest = data["entries"][0], data["entries"][1]
    assert debian["kernel_info"]["supports"] == ["pv", "pvh", "hvm"]
    assert debian["kernel_info"]["release"] == guest.release
    assert debian["initrd_info"][0]["microcode"] == ["kernel/x86/microcode/GenuineIntel.bin"]
    assert memtest["kernel_info"]["supports"] == ["hvm"]
    plain = guestboot("list", str(guest.image)).stdout  # the text menu inspects nothing
    assert "PVH" not in plain


# --- --guest-type ----------------------------------------------------------------------------


def test_guest_type_pvh_refuses_a_kernel_without_note_18_before_writing(guest, tmp_path):
    out = tmp_path / "out"
    done = guestboot("extract", str(guest.image), "-o", str(out), "--entry", "1", "--guest-type", "pvh", check=False)
    assert done.returncode == 4 and not out.exists() and done.stdout == ""
    message = done.stderr.strip().splitlines()[-1]
    assert "(hd0,gpt1)/boot/memtest86+x64.bin" in message  # names the kernel,
    assert "HVM only" in message and "not Xen PVH" in message  # what it supports,
    assert "--guest-type hvm" in message and "--prefer-capable" in message  # and what to change
    # the PV bootloader ELF has Xen notes but no PHYS32_ENTRY: pygrub's front end refuses it too
    pygrub_dir = tmp_path / "pygrub"
    pygrub_dir.mkdir()
    done = subprocess.run([sys.executable, "-c", "from guestboot.cli.pygrub import main; raise SystemExit(main())",
                           "-q", "--guest-type=pvh", "--kernel=/boot/xen/pvboot-x86_64.elf",
                           f"--output-directory={pygrub_dir}", str(guest.image)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 4 and list(pygrub_dir.iterdir()) == [] and done.stdout == ""
    assert "Xen PV only" in done.stderr and "not Xen PVH" in done.stderr


def test_guest_type_accepts_a_capable_kernel_and_prefer_capable_picks_one(guest, tmp_path):
    for kind in ("pv", "pvh", "hvm"):
        guestboot("extract", str(guest.image), "-o", str(tmp_path / kind), "--guest-type", kind)
        assert (tmp_path / kind / "kernel").read_bytes() == (guest.tree / "boot" / f"vmlinuz-{guest.release}").read_bytes()
    done = guestboot("extract", str(guest.image), "-o", str(tmp_path / "pref"), "--entry", "1", "--guest-type", "pv",
                     "--prefer-capable", "--json")
    data = json.loads(done.stdout)
    assert data["entry"]["path"] == "0" and "booting entry 0 'Debian GNU/Linux' instead" in done.stderr
    memtest_hvm = guestboot("extract", str(guest.image), "-o", str(tmp_path / "mt"), "--entry", "1",
                            "--guest-type", "hvm")
    assert (tmp_path / "mt" / "kernel").read_bytes() == (guest.tree / "boot" / "memtest86+x64.bin").read_bytes()
    assert memtest_hvm.stdout.strip() == "BOOT_IMAGE=/boot/memtest86+x64.bin"


def test_release_order_is_numeric():
    from guestboot.guesttype import release_key

    ordered = ["5.10.0-9-amd64", "5.10.0-28-amd64", "6.1.0-13-amd64", "6.1.0-57-amd64", "6.12.9-amd64"]
    assert sorted(reversed(ordered), key=release_key) == ordered


# --- chainloading the guest's own Xen boot loader ---------------------------------------------


def _pygrub(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from guestboot.cli.pygrub import main; raise SystemExit(main())",
                           *argv], capture_output=True, text=True, timeout=300)


def test_pvboot_is_offered_and_chainloaded(guest, tmp_path):
    listing = guestboot("list", str(guest.image)).stdout
    assert "(hd0,gpt1)/boot/xen/pvboot-x86_64.elf (chainload)  [xen-pvboot-x86_64]" in listing
    assert listing.splitlines()[1].startswith("* 0")  # the config's default stays the default
    done = guestboot("extract", str(guest.image), "-o", str(tmp_path / "out"), "--chainload")
    pvboot = guest.tree / "boot" / "xen" / "pvboot-x86_64.elf"
    assert (tmp_path / "out" / "kernel").read_bytes() == pvboot.read_bytes()
    assert done.stdout == "\n" and "booting the guest's own Xen PV boot loader" in done.stderr
    assert not (tmp_path / "out" / "initrd").exists()
    pg = tmp_path / "pg"
    pg.mkdir()
    done = _pygrub("-q", "--chainload", "--guest-type=pv", f"--output-directory={pg}", "--output-format=simple",
                   str(guest.image))
    (kernel,) = list(pg.iterdir())
    assert done.returncode == 0 and done.stdout == f"kernel {pg}/{kernel.name}\n\n"
    assert kernel.read_bytes() == pvboot.read_bytes()


def test_without_a_config_the_guest_boots_its_own_loader(tmp_path_factory):
    from builders.kernel_guest import build_kernel_guest

    try:
        bare = build_kernel_guest(tmp_path_factory.mktemp("kernel-guest-bare"), with_config=False)
    except ToolMissing as err:
        unavailable(str(err))
    out = tmp_path_factory.mktemp("bare-out") / "out"
    done = guestboot("extract", str(bare.image), "-o", str(out), "--json")
    assert json.loads(done.stdout)["source"]["kernel"] == "(hd0,gpt1)/boot/xen/pvboot-x86_64.elf"
    assert "(no usable boot configuration)" in done.stderr


# --- multiboot entries ------------------------------------------------------------------------


def test_multiboot_entry_writes_the_kernel_and_every_module(guest, tmp_path):
    import gzip

    done = guestboot("extract", str(guest.image), "-o", str(tmp_path / "out"), "--entry", "2", "--json")
    data = json.loads(done.stdout)
    boot = guest.tree / "boot"
    assert data["loader"] == "multiboot2" and data["initrd"] is None
    assert data["cmdline"] == "placeholder dom0_mem=512M console=com1"  # GRUB: the words after the file
    # GRUB loads a multiboot kernel through its decompressors: the hypervisor gets the ELF
    assert (tmp_path / "out" / "kernel").read_bytes() == gzip.decompress((boot / guest.xen).read_bytes())
    mods = data["modules"]
    assert [m["source"] for m in mods] == [f"(hd0,gpt1)/boot/vmlinuz-{guest.release}",
                                           f"(hd0,gpt1)/boot/initrd.img-{guest.release}"]
    assert mods[0]["args"].startswith("placeholder root=UUID=") and mods[1]["args"] == ""
    assert [m["unzip"] for m in mods] == [True, False]  # module2 --nounzip
    assert open(mods[0]["path"], "rb").read() == (boot / f"vmlinuz-{guest.release}").read_bytes()
    assert open(mods[1]["path"], "rb").read() == (boot / f"initrd.img-{guest.release}").read_bytes()
    listed = json.loads(guestboot("list", "--json", str(guest.image)).stdout)["entries"][2]
    assert [m["file"] for m in listed["modules"]] == [m["source"] for m in mods]
    pg = tmp_path / "pg"
    pg.mkdir()
    refused = _pygrub("-q", "--entry=2", f"--output-directory={pg}", str(guest.image))
    assert refused.returncode == 4 and list(pg.iterdir()) == [] and refused.stdout == ""
    assert "multiboot2 kernel with 2 module(s)" in refused.stderr and "cannot express" in refused.stderr
