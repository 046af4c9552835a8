"""``guestboot``: list, extract, ls and cat on a guest disk image.

Argument parsing and presentation only; the work is done by the library.
"""

from __future__ import annotations

import argparse
import os
import sys

from .common import EXIT_USAGE, guarded, open_image_fd

PROG = "guestboot"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Read a guest disk image without trusting it: show its boot menu as "
        "GRUB would, and extract the kernel and initrd GRUB would boot.",
        epilog="Exit codes: 0 ok, 2 usage, 3 corrupt image, 4 unsupported, 5 limit reached, "
        "6 not found, 7 config error, 8 output error, 70 internal error.",
    )
    p.add_argument("--debug", action="store_true", help="show a traceback on errors")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("image", help="guest disk image (raw file or block device)")
        sp.add_argument("--offset", type=int, metavar="BYTES",
                        help="a file system starts at this byte; no partition table is read")
        sp.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show a traceback on errors")

    sp = sub.add_parser("list", help="show the boot menu, default marked with *")
    common(sp)
    sp.add_argument("--json", action="store_true", help="machine-readable, with each entry's kernel, initrds and args")

    sp = sub.add_parser("extract", help="write the chosen kernel and initrd, print the command line")
    common(sp)
    sp.add_argument("-o", "--output-dir", required=True, metavar="DIR",
                    help="directory for 'kernel' and 'initrd' (created if missing; existing files are never overwritten)")
    sp.add_argument("-e", "--entry", metavar="SPEC",
                    help="entry to boot, as GRUB's 'default' takes it: index, id, title, or a>b submenu path")
    sp.add_argument("--json", action="store_true", help="print everything as JSON")

    sp = sub.add_parser("ls", help="list a directory of the guest, or the image's devices")
    common(sp)
    sp.add_argument("path", nargs="?", metavar="[PART:]PATH",
                    help="e.g. gpt2:/grub or /boot; without it, the devices are listed")

    sp = sub.add_parser("cat", help="copy a guest file to standard output")
    common(sp)
    sp.add_argument("path", metavar="[PART:]PATH")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not args.command:
        _parser().print_usage(sys.stderr)
        sys.stderr.write(f"{PROG}: error: a COMMAND is required (list, extract, ls, cat)\n")
        return EXIT_USAGE
    handler = {"list": cmd_list, "extract": cmd_extract, "ls": cmd_ls, "cat": cmd_cat}[args.command]
    return guarded(PROG, lambda: handler(args), debug=args.debug)


def _open(args):
    from ..image import open_image

    fd = open_image_fd(args.image)
    image = open_image(fd, name=os.path.basename(args.image), offset=args.offset)
    _warn(image.warnings)  # now, so they are seen even when a later step fails
    return image


def _dump_json(data) -> None:
    import json  # only for --json: start-up time matters

    json.dump(data, sys.stdout, indent=2)


WARNINGS_SHOWN = 20  # a hostile config can cause thousands; the rest is counted


def _warn(lines) -> None:
    lines = list(lines)
    for line in lines[:WARNINGS_SHOWN]:
        sys.stderr.write(f"{PROG}: warning: {line}\n")
    if len(lines) > WARNINGS_SHOWN:
        sys.stderr.write(f"{PROG}: warning: … and {len(lines) - WARNINGS_SHOWN} more warnings (guestboot list --json lists them all)\n")


# --- list ----------------------------------------------------------------------------


def cmd_list(args) -> int:
    from ..pipeline import load_menu
    from ..select import choose

    image = _open(args)
    menu = load_menu(image.devices)
    try:
        default_path = tuple(choose(menu).path)
    except Exception as err:  # a menu with no bootable entry still lists
        from ..errors import GuestbootError

        if not isinstance(err, GuestbootError):
            raise
        default_path = None
    if args.json:
        out = {
            "config": _grub_path(menu.origin),
            "format": menu.format,
            "default": list(default_path) if default_path is not None else None,
            "entries": [_entry_json(e, (i,), default_path) for i, e in enumerate(menu.entries)],
            "warnings": image.warnings + menu.warnings,
        }
        _dump_json(out)
        sys.stdout.write("\n")
        return 0
    _warn(menu.warnings)
    sys.stdout.write(f"{_grub_path(menu.origin)} ({menu.format})\n")
    from .render import menu_lines

    for line in menu_lines(menu):
        sys.stdout.write(line + "\n")
    return 0


def _grub_path(origin: str) -> str:
    """"hd0,gpt2:/grub/grub.cfg" as GRUB writes it: "(hd0,gpt2)/grub/grub.cfg"."""
    device, sep, path = origin.partition(":")
    return f"({device}){path}" if sep else origin


def _entry_json(entry, path, default_path) -> dict:
    from ..errors import GuestbootError

    out = {
        "path": ">".join(str(n) for n in path),
        "title": entry.title,
        "id": entry.id,
        "default": default_path is not None and tuple(default_path) == tuple(path),
    }
    if entry.classes:
        out["classes"] = list(entry.classes)
    if entry.is_submenu:
        out["entries"] = [_entry_json(e, path + (i,), default_path) for i, e in enumerate(entry.submenu.entries)]
        return out
    try:
        spec = entry.run()
    except GuestbootError as err:
        out["error"] = str(err)
        return out
    out.update(_spec_json(spec))
    return out


def _spec_json(spec) -> dict:
    return {
        "kernel": str(spec.kernel),
        "initrds": [str(r) for r in spec.initrds],
        "args": spec.args,
        "cmdline": spec.cmdline,
        "loader": spec.loader,
    }


# --- extract -------------------------------------------------------------------------


def cmd_extract(args) -> int:
    from ..errors import OutputError
    from ..extract import OutputBudget, extract_to_dir, open_output_dir
    from ..kernel import describe
    from ..pipeline import open_refs, plan_boot

    try:
        os.makedirs(args.output_dir, 0o700, exist_ok=True)
    except OSError as err:
        raise OutputError(f"cannot create {args.output_dir}: {err.strerror}") from None
    dir_fd = open_output_dir(args.output_dir)
    try:
        image = _open(args)
        plan = plan_boot(image.devices, args.entry)
        _warn(plan.menu.warnings)
        kernel_sources = open_refs(image.devices, [plan.spec.kernel])
        initrd_sources = open_refs(image.devices, plan.spec.initrds)
        info = describe(kernel_sources[0])
        if info.kind == "unknown":
            _warn([f"{plan.spec.kernel} is neither a bzImage nor an ELF kernel"])
        budget = OutputBudget()
        extract_to_dir(dir_fd, "kernel", kernel_sources, budget=budget)
        if initrd_sources:
            try:
                extract_to_dir(dir_fd, "initrd", initrd_sources, budget=budget)
            except BaseException:
                os.unlink("kernel", dir_fd=dir_fd)
                raise
    finally:
        os.close(dir_fd)
    kernel_path = os.path.join(args.output_dir, "kernel")
    initrd_path = os.path.join(args.output_dir, "initrd") if initrd_sources else None
    if args.json:
        out = {
            "entry": {
                "title": plan.titles[-1] if plan.titles else "",
                "id": plan.entry_id,
                "path": ">".join(str(n) for n in plan.path),
                "titles": list(plan.titles),
            },
            "kernel": kernel_path,
            "initrd": initrd_path,
            "config": _grub_path(plan.menu.origin),
            "kernel_format": info.kind,
            "kernel_version": info.version,
            **{k: v for k, v in _spec_json(plan.spec).items() if k in ("cmdline", "args", "loader")},
            "source": {"kernel": str(plan.spec.kernel), "initrds": [str(r) for r in plan.spec.initrds]},
        }
        _dump_json(out)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(plan.spec.cmdline + "\n")
    return 0


# --- ls / cat ------------------------------------------------------------------------


def _split_target(image, target: str):
    """'gpt2:/grub' → (device name, '/grub'); '/boot' → (None, '/boot')."""
    if ":" in target and not target.startswith("/"):
        part, _, path = target.partition(":")
        name = part if part.startswith("hd") or part.startswith("(") else f"hd0,{part}"
        if part in ("", "hd0", "(hd0)"):
            name = "hd0"
        return name, path or "/"
    return None, target


def _locate(image, target: str):
    """The (device, fs, path) a target names; without a partition, the first file system
    in GRUB's device order that has the path."""
    from ..errors import NotFound
    from ..fs.path import exists

    device, path = _split_target(image, target)
    if device is not None:
        fs = image.devices.filesystem(device)
        return image.devices.canonical(device), fs, path
    found = image.devices.filesystems()
    if not found:
        raise NotFound("no readable file system in the image")
    for name, fs in found:
        if exists(fs, path) is not None:
            return name, fs, path
    raise NotFound(f"{path}: not on any file system of the image ({', '.join(n for n, _ in found)})")


def cmd_ls(args) -> int:
    from ..fs.base import FileType
    from ..fs.path import listdir, resolve

    image = _open(args)
    if not args.path:
        for device in image.devices:
            name, fs = device.name, device.fs
            if fs is None:
                sys.stdout.write(f"({name})  -  {device.problem}\n")
                continue
            label = f" label={fs.label!r}" if fs.label else ""
            sys.stdout.write(f"({name})  {fs.kind}  uuid={fs.uuid}{label}\n")
        return 0
    device, fs, path = _locate(image, args.path)
    node = resolve(fs, path, follow=True)
    if node.type is not FileType.DIR:
        sys.stdout.write(f"{_row(path.rstrip('/').rsplit('/', 1)[-1].encode(), node, fs)}\n")
        return 0
    for name, child in sorted(listdir(fs, path), key=lambda item: item[0]):
        sys.stdout.write(_row(name, child, fs) + "\n")
    return 0


def _row(name: bytes, node, fs) -> str:
    from ..fs.base import FileType

    shown = name.decode("utf-8", "backslashreplace")
    kind = {FileType.DIR: "d", FileType.REG: "-", FileType.LNK: "l"}.get(node.type, "?")
    if node.type is FileType.DIR:
        shown += "/"
    if node.type is FileType.LNK:
        shown += " -> " + fs.readlink(node).decode("utf-8", "backslashreplace")
    return f"{kind} {node.size:>12} {shown}"


def cmd_cat(args) -> int:
    from ..extract import copy_sources
    from ..fs.path import open_file

    image = _open(args)
    device, fs, path = _locate(image, args.path)
    source = open_file(fs, path)
    sys.stdout.flush()
    copy_sources([source], sys.stdout.fileno())
    return 0


if __name__ == "__main__":
    sys.exit(main())
