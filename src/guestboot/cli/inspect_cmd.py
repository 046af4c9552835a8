"""``guestboot inspect IMAGE``: every kernel the guest's menu boots and every kernel and
initrd in its boot directories — format, version, codec, and whether it boots as Xen PV,
PVH or HVM (pipeline action "inspect"; kernels.py, kernel/). Presentation only."""

from __future__ import annotations

from typing import Any

from .common import say
from .render import shown


def add_parser(sub, common, dialect, epilog: str) -> None:
    sp = sub.add_parser("inspect", epilog=epilog,
                        help="what each kernel and initrd of the guest is: version, codec, PV/PVH/HVM")
    common(sp, several=True)
    sp.add_argument("--json", action="store_true", help="every fact as JSON")
    dialect(sp)


def guest_type_options(sp) -> None:
    """--guest-type and --prefer-capable, for every command that extracts."""
    sp.add_argument("--guest-type", choices=("any", "pv", "pvh", "hvm"), default="any",
                    help="refuse (before writing anything) a kernel that cannot boot as this guest type:"
                    " Xen PV, Xen PVH, or HVM/direct kernel boot (default: any)")
    sp.add_argument("--prefer-capable", action="store_true",
                    help="with --guest-type: when the chosen entry's kernel cannot boot as that type,"
                    " boot the newest entry whose kernel can")


def kernel_line(info: dict[str, Any]) -> str:
    """One line about a kernel: "bzImage (xz payload) 6.1.0-18-amd64: PV, PVH, HVM" and
    the details that say why (protocol, PV guest type, PVH entry, multiboot)."""
    if "error" in info:
        return f"cannot inspect: {shown(info['error'])}"
    parts = [shown(info["summary"])]
    if info.get("protocol"):
        parts.append(f"boot protocol {info['protocol']}")
    if info.get("pv"):
        parts.append(f"PV as {info['pv']}")
    if info.get("pvh_entry") is not None:
        parts.append(f"PVH entry {info['pvh_entry']:#x}")
    boots = info.get("multiboot") or []
    if boots:
        parts.append("multiboot " + "+".join(f"v{m['version']}" for m in boots))
    if info.get("arch"):
        parts.append(f"arch {info['arch']}")
    return shown("; ".join(parts))  # the PV guest type and arch come from the kernel's notes


def initrd_line(info: dict[str, Any]) -> str:
    if "error" in info:
        return f"cannot inspect: {shown(info['error'])}"
    parts = []
    for part in info["parts"]:
        if part["format"] == "cpio":
            parts.append(f"cpio ({part['members']} members)")
        elif part["format"] == "unknown":
            parts.append("unknown data")
        else:
            parts.append(f"{part['format']}-compressed " + ("cpio" if part.get("cpio") else "data (no cpio inside)"))
    text = " + ".join(parts) or "empty"
    if info["microcode"]:
        text += "; microcode " + ", ".join(shown(name.rsplit("/", 1)[-1]) for name in info["microcode"])
    return text


def cmd_inspect(args, run, dump_json) -> int:
    result = run(args, "inspect")
    if args.json:
        dump_json({key: result[key] for key in ("config", "format", "config_error", "entries", "boot_files", "warnings")})
        return 0
    if result["config"]:
        say(f"{shown(result['config'])} ({result['format']})\n")
        _entries(result["entries"])
    else:
        say(f"no usable boot configuration: {shown(result['config_error'])}\n")
    files = result["boot_files"]
    say("boot directories:\n" if files["kernels"] or files["initrds"] else "boot directories: no kernel or initrd\n")
    for item in files["kernels"]:
        say(f"  kernel {shown(item['file'])}: {kernel_line(item)}\n")
    for item in files["initrds"]:
        say(f"  initrd {shown(item['file'])}: {initrd_line(item)}\n")
    return 0


def _entries(entries: list[dict[str, Any]]) -> None:
    for entry in entries:
        mark = "*" if entry.get("default") else " "
        say(f"{mark} {entry['path']:<6} {shown(entry['title'])}{'  >' if 'entries' in entry else ''}\n")
        if "entries" in entry:
            _entries(entry["entries"])
        elif "kernel_info" in entry:
            say(f"           kernel {shown(entry['kernel']['grub'])}: {kernel_line(entry['kernel_info'])}\n")
            for ref, info in zip(entry["initrds"], entry["initrd_info"]):
                say(f"           initrd {shown(ref['grub'])}: {initrd_line(info)}\n")
            for ref, info in zip(entry.get("modules", []), entry.get("module_info", [])):
                what = kernel_line(info) if info.get("kind") == "kernel" else (
                    initrd_line(info) if info.get("kind") == "initrd" else shown(info.get("error", "not a kernel or initrd")))
                args = f" [{shown(ref['args'])}]" if ref["args"] else ""
                say(f"           module {shown(ref['grub'])}{args}: {what}\n")
        elif "error" in entry:
            say(f"           cannot boot: {shown(entry['error'])}\n")
