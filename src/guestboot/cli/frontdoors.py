"""The hypervisor front doors: extract the entry the guest's boot loader would boot into a
FRESH directory, then say (or run) how each hypervisor boots it directly.

- ``guestboot qemu IMAGE [-- EXTRA]``: the qemu-system command line (kernel, initrd,
  append, the disk itself as a drive); ``--exec`` runs it instead, from a private
  directory removed when QEMU exits.
- ``guestboot libvirt IMAGE``: the ``<os>`` element (``--domain NAME``: a whole domain).
- ``guestboot firecracker IMAGE``: the boot-source body of Firecracker's API (PUT
  /boot-source; firecracker.yaml's BootSource). On x86_64 Firecracker wants an
  uncompressed ELF vmlinux: the bzImage's payload is decompressed to the ELF it holds
  (kernel/stream.py, bounded by LIMITS.max_kernel_decompressed) and that is handed over.
- ``guestboot cloud-hypervisor IMAGE``: its arguments; it boots an ELF with a PVH entry
  (checked with kernel inspection; the ELF is taken out of a bzImage as for Firecracker).
- ``guestboot boot IMAGE``: extract into a private directory and run QEMU with the
  serial console on this terminal (``console=ttyS0`` added unless the command line names a
  console).

Every run extracts into a new directory (``-o BASE``: a new ``guestboot-*`` directory is
made in BASE, default the current directory), so a second run never reuses the outputs of
a first; the paths printed are absolute. Presentation and process handling only; the work
is pipeline.run ("extract") and kernel/.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from .common import flush_stdout, say

DOORS = ("qemu", "libvirt", "firecracker", "cloud-hypervisor", "boot")
QEMU = "qemu-system-x86_64"
# format names QEMU's -drive takes, by the magic at the start of the image (the formats'
# own headers: qcow2 "QFI\xfb", VHDX "vhdxfile", VMDK "KDMV", QED "QED\0"); a VDI has its
# signature at 0x40; anything else is handed over as raw (never left to QEMU's probing)
_DRIVE_FORMATS = ((0, b"QFI\xfb", "qcow2"), (0, b"vhdxfile", "vhdx"), (0, b"KDMV", "vmdk"),
                  (0, b"QED\0", "qed"), (0x40, b"\x7f\x10\xda\xbe", "vdi"))
_FORMAT_NAMES = {"vhd": "vpc"}  # guestboot's --format names QEMU spells otherwise


def split_extra(argv: list[str]) -> tuple[list[str], list[str]]:
    """``guestboot qemu|boot IMAGE [options] -- EXTRA…``: the arguments after the first
    "--" go to QEMU untouched (argparse would read them as its own)."""
    if argv and argv[0] in ("qemu", "boot") and "--" in argv:
        at = argv.index("--")
        return argv[:at], argv[at + 1 :]
    return argv, []


def add_parsers(sub, common, dialect, guest_type_options, epilog: str, interactive) -> None:
    helps = {
        "qemu": "print (or --exec run) the QEMU command that boots the guest's kernel directly",
        "libvirt": "print the <os> element (or --domain NAME: a domain) that boots the guest's kernel",
        "firecracker": "print Firecracker's boot-source JSON (the ELF vmlinux taken out of a bzImage)",
        "cloud-hypervisor": "print Cloud Hypervisor's arguments (needs a kernel with a PVH entry)",
        "boot": "extract into a private directory and start the guest in QEMU, console on this terminal",
    }
    for door in DOORS:
        sp = sub.add_parser(door, help=helps[door], epilog=epilog + (
            " Arguments after -- are passed to QEMU as they are." if door in ("qemu", "boot") else ""))
        common(sp)
        sp.add_argument("-e", "--entry", metavar="SPEC", help="entry to boot (as extract's --entry)")
        interactive(sp)
        if door != "boot":
            sp.add_argument("-o", "--output-base", default=".", metavar="BASE",
                            help="a new directory guestboot-* is made in BASE for the files (default: .)")
        sp.add_argument("--memory", default="1024", metavar="MIB", help="guest memory in MiB (default 1024)")
        sp.add_argument("--no-drive", action="store_true", help="do not attach the image as a disk")
        if door in ("qemu", "boot"):
            sp.add_argument("--accel", default="kvm:tcg", help="QEMU accelerators to try (default kvm:tcg)")
        if door in ("qemu", "libvirt"):
            sp.add_argument("--console", action="store_true",
                            help="add console=ttyS0 to the command line (unless it names a console already)")
        if door == "qemu":
            sp.add_argument("--exec", action="store_true",
                            help="run QEMU now, from a private directory removed when it exits")
        if door == "libvirt":
            sp.add_argument("--domain", metavar="NAME", help="print a whole <domain> (type qemu) with this name")
            sp.add_argument("--serial-log", metavar="FILE",
                            help="with --domain: the serial port writes to FILE (default: a pty for virsh console)")
        dialect(sp)
        guest_type_options(sp)
        sp.add_argument("--chainload", action="store_true", help="boot the guest's own Xen boot loader")


def run_door(args, run, dump_json) -> int:
    import shlex  # the front doors' own needs: not loaded by list/extract (start-up time)
    import shutil
    import subprocess
    import tempfile

    from ..errors import NotFound, OutputError, Unsupported

    private = args.command == "boot" or getattr(args, "exec", False)
    base = tempfile.gettempdir() if private else args.output_base
    try:
        os.makedirs(base, exist_ok=True)
        out_dir = tempfile.mkdtemp(prefix="guestboot-", dir=base)
        if args.command == "libvirt":  # libvirt's QEMU runs as its own user: it must reach the
            os.chmod(out_dir, 0o711)  # files (libvirt chowns them); the directory stays unlistable
    except OSError as err:
        raise OutputError(f"cannot make a new directory in {base}: {err.strerror}") from None
    try:
        files = _extract(args, run, out_dir)
        if args.command in ("firecracker", "cloud-hypervisor"):
            files["vmlinux"] = _elf_kernel(out_dir, files)
            if args.command == "cloud-hypervisor" and files["elf_info"].pvh is None:
                raise Unsupported(f"{files['source']}: the ELF kernel has no PVH entry (Xen ELF note 18,"
                                  " PHYS32_ENTRY); Cloud Hypervisor boots only such kernels directly")
        if args.command == "libvirt":
            say(_libvirt(args, files))
        elif args.command == "firecracker":
            body = {"kernel_image_path": files["vmlinux"], "boot_args": files["cmdline"]}
            if files["initrd"]:
                body["initrd_path"] = files["initrd"]
            dump_json(body)
        elif args.command == "cloud-hypervisor":
            say(shlex.join(_cloud_hypervisor(args, files)) + "\n")
        else:
            argv = _qemu(args, files)
            if not private:
                say(shlex.join(argv) + "\n")
                return 0
            flush_stdout()
            try:
                return subprocess.run(argv, check=False).returncode
            except FileNotFoundError:
                raise NotFound(f"{argv[0]} not found (Debian: apt-get install qemu-system-x86)") from None
        return 0
    except BaseException:
        shutil.rmtree(out_dir, ignore_errors=True)
        raise
    finally:
        if private:
            shutil.rmtree(out_dir, ignore_errors=True)


def _extract(args, run, out_dir: str) -> dict[str, Any]:
    """The chosen entry's files in ``out_dir`` (new, empty, made by this run)."""
    from ..extract import OutputDir
    from ..pipeline import modules_refused

    modules: list[str] = []
    with OutputDir(out_dir) as out:
        temps = {name: out.temporary(name) for name in ("kernel", "initrd")}
        fields = dict(entry=args.entry, kernel_fd=temps["kernel"], initrd_fd=temps["initrd"],
                      guest_type=args.guest_type, prefer_capable=args.prefer_capable, chainload=args.chainload)
        result = run(args, "extract", **fields)
        if result.get("modules_needed"):
            if args.command not in ("qemu", "boot"):
                raise modules_refused(result)
            modules = [f"module-{index + 1}" for index in range(result["modules_needed"])]
            result = run(args, "extract", module_fds=tuple(out.temporary(name) for name in modules), **fields)
        out.commit((["kernel", "initrd"] if result["initrd"] else ["kernel"]) + modules,
                   drop=[] if result["initrd"] else ["initrd"])
    cmdline = result["cmdline"]
    named = any(word.startswith("console=") for word in cmdline.split())
    linux = not modules and result["loader"] not in ("multiboot", "multiboot2")
    if (args.command == "boot" or getattr(args, "console", False)) and not named and linux:
        cmdline = (cmdline + " console=ttyS0").strip()
    where = os.path.abspath(out_dir)
    sys.stderr.write(f"guestboot: entry {result['entry']['path'] if result['entry'] else '-'}: "
                     f"{result['kernel']['grub']} extracted into {where}\n")
    return {
        "dir": where,
        "kernel": os.path.join(where, "kernel"),
        "initrd": os.path.join(where, "initrd") if result["initrd"] else None,
        "cmdline": cmdline,
        "source": result["kernel"]["grub"],
        "image": os.path.abspath(args.image),
        "modules": [(os.path.join(where, name), m["args"]) for name, m in zip(modules, result["modules"])],
        "loader": result["loader"],
    }


def _elf_kernel(out_dir: str, files: dict[str, Any]) -> str:
    """The ELF vmlinux: the kernel itself when it is one, else the ELF a bzImage's payload
    (or a compressed file) holds, written beside it as "vmlinux"."""
    from ..errors import Unsupported
    from ..extract import create_file, open_output_dir
    from ..kernel import elf, stream
    from ..kernel.inspect import inspect
    from ..source import FileSource

    fd = os.open(files["kernel"], os.O_RDONLY | os.O_CLOEXEC)
    try:
        source = FileSource(fd, name=files["source"])
        facts = inspect(source)
        files["elf_info"] = facts
        if elf.is_elf(source.pread(0, min(source.size, 4))):
            return files["kernel"]
        payload = facts.details.get("payload") or {}
        if facts.format == "bzImage" and payload.get("codec"):
            codec = None if payload["codec"] == "none" else payload["codec"]
            reader = stream.Reader(source, codec=codec, offset=payload["offset"], length=payload["length"],
                                   what=f"{files['source']} payload")
        elif facts.compressed and facts.format == "elf":
            reader = stream.Reader(source, codec=facts.compressed, what=files["source"])
        else:
            raise Unsupported(f"{files['source']}: {facts.summary()}; no ELF kernel inside to hand over")
        if not elf.is_elf(reader.pread(0, 4)):
            raise Unsupported(f"{files['source']}: the bzImage's payload is not an ELF file")
        dir_fd = open_output_dir(out_dir)
        try:
            out_fd = create_file(dir_fd, "vmlinux")
            with os.fdopen(out_fd, "wb") as out:
                reader.stream_to(out.write)
        finally:
            os.close(dir_fd)
        return os.path.join(files["dir"], "vmlinux")
    finally:
        os.close(fd)


def drive_format(args) -> str:
    if args.image_format:
        return _FORMAT_NAMES.get(args.image_format, args.image_format)
    with open(args.image, "rb") as f:
        head = f.read(0x44)
    for at, magic, name in _DRIVE_FORMATS:
        if head[at : at + len(magic)] == magic:
            return name
    return "raw"


def _qemu(args, files: dict[str, Any]) -> list[str]:
    argv = [QEMU, "-machine", f"q35,accel={args.accel}", "-m", str(args.memory), "-nographic",
            "-kernel", files["kernel"], "-append", files["cmdline"]]
    if files["loader"] in ("multiboot", "multiboot2"):
        _check_multiboot_v1(files)
        # QEMU's multiboot loader (hw/i386/multiboot.c): -initrd "FILE ARGS,FILE ARGS", each
        # module's command line is the whole "FILE ARGS"; a comma in it is written ",,"
        if files["modules"]:
            argv += ["-initrd", ",".join(f"{path} {margs}".strip().replace(",", ",,")
                                         for path, margs in files["modules"])]
    elif files["initrd"]:
        argv += ["-initrd", files["initrd"]]
    if not args.no_drive:
        path = files["image"].replace(",", ",,")  # QEMU's option syntax doubles commas
        argv += ["-drive", f"file={path},format={drive_format(args)},if=virtio"]
    return argv + list(args.extra)


def _check_multiboot_v1(files: dict[str, Any]) -> None:
    """QEMU's -kernel loads multiboot v1 kernels only (hw/i386/multiboot.c looks for the
    v1 magic): a v2-only kernel is refused here rather than by QEMU."""
    from ..errors import Unsupported
    from ..kernel import multiboot

    with open(files["kernel"], "rb") as f:
        head = f.read(multiboot.V2_SEARCH)
    if not any(found.version == 1 for found in multiboot.find(head)):
        raise Unsupported(f"{files['source']}: no multiboot v1 header; QEMU's -kernel loads only multiboot v1 kernels")


def _libvirt(args, files: dict[str, Any]) -> str:
    import xml.etree.ElementTree as ET

    os_type = {"pv": "xen", "pvh": "xenpvh"}.get(args.guest_type, "hvm")
    os_el = ET.Element("os")
    type_el = ET.SubElement(os_el, "type", arch="x86_64")
    type_el.text = os_type
    if os_type == "hvm":
        type_el.set("machine", "q35")
    ET.SubElement(os_el, "kernel").text = files["kernel"]
    if files["initrd"]:
        ET.SubElement(os_el, "initrd").text = files["initrd"]
    ET.SubElement(os_el, "cmdline").text = files["cmdline"]
    if not args.domain:
        ET.indent(os_el)
        return ET.tostring(os_el, encoding="unicode") + "\n"
    domain = ET.Element("domain", type="qemu")
    ET.SubElement(domain, "name").text = args.domain
    ET.SubElement(domain, "memory", unit="MiB").text = str(args.memory)
    ET.SubElement(domain, "vcpu").text = "1"
    domain.append(os_el)
    devices = ET.SubElement(domain, "devices")
    disk = ET.SubElement(devices, "disk", type="file", device="disk")
    ET.SubElement(disk, "driver", name="qemu", type=drive_format(args))
    ET.SubElement(disk, "source", file=files["image"])
    ET.SubElement(disk, "target", dev="vda", bus="virtio")
    if args.serial_log:
        serial = ET.SubElement(devices, "serial", type="file")
        ET.SubElement(serial, "source", path=os.path.abspath(args.serial_log))
    else:
        serial = ET.SubElement(devices, "serial", type="pty")
    ET.SubElement(serial, "target", port="0")
    console = ET.SubElement(devices, "console", type=serial.get("type"))
    if args.serial_log:
        ET.SubElement(console, "source", path=os.path.abspath(args.serial_log))
    ET.SubElement(console, "target", type="serial", port="0")
    ET.indent(domain)
    return ET.tostring(domain, encoding="unicode") + "\n"


def _cloud_hypervisor(args, files: dict[str, Any]) -> list[str]:
    argv = ["cloud-hypervisor", "--kernel", files["vmlinux"], "--cmdline", files["cmdline"],
            "--memory", f"size={args.memory}M", "--cpus", "boot=1", "--serial", "tty", "--console", "off"]
    if files["initrd"]:
        argv += ["--initramfs", files["initrd"]]
    if not args.no_drive:
        argv += ["--disk", f"path={files['image']}"]  # it tells raw, qcow2, VHD(X) apart itself
    return argv
