"""``guestboot``: list, extract, ls and cat on a guest disk image.

Argument parsing and presentation only; the work is ``pipeline.run``.
"""

from __future__ import annotations

import argparse
import os
import sys

from .common import (EXIT_USAGE, NO_SANDBOX_HELP, flush_stdout, guarded, open_image_fd, parse_offset, run_request,
                     say, steady_std_streams, stdout_fd, version_text, warn)
from .render import shown

PROG = "guestboot"
EPILOG = (
    "Exit codes: 0 ok, 2 usage, 3 corrupt image, 4 unsupported, 5 limit reached, 6 not found, "
    "7 config error, 8 output error, 9 permission denied, 70 internal error, 130 interrupted."
)


def _offset(text: str) -> int:
    try:
        return parse_offset(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _runas(text: str) -> tuple[int, int]:
    from ..sandbox import runas_ids

    try:
        return runas_ids(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def interactive(sp) -> None:
    sp.add_argument("-i", "--interactive", action="store_true",
                    help="choose the entry in a menu on this terminal (the config's countdown; Enter boots)")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Read a guest disk image without trusting it: show its boot menu as "
        "GRUB would, and extract the kernel and initrd GRUB would boot.",
        epilog=EPILOG,
    )
    p.add_argument("--version", action="version", version=version_text(PROG).strip())
    p.add_argument("--debug", action="store_true", help="show a traceback on errors")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    from .inspect_cmd import add_parser as add_inspect, guest_type_options

    def dialect(sp: argparse.ArgumentParser) -> None:  # checked in _dialect: the evaluator loads only then
        sp.add_argument("--grub-dialect", default="auto", metavar="NAME",
                        help="evaluate a grub.cfg as this distribution's GRUB 2.06 does: auto (default: from "
                        "the image's os-release, else from what the config shows), debian, fedora or suse")

    def config(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--config", metavar="(DEVICE)PATH",
                        help="read this boot configuration instead of the first one found (list shows them all),"
                        " e.g. (hd0,gpt1)/EFI/fedora/grub.cfg")

    def common(sp: argparse.ArgumentParser, several: bool = False) -> None:
        if several:  # list/extract take no other positional argument: every image is a disk
            sp.add_argument("image", nargs="+", metavar="IMAGE",
                            help="the guest's disk images (image files or block devices): GRUB's hd0, hd1, …"
                            " in the order given")
        else:
            sp.add_argument("image", help="guest disk image (an image file or a block device): GRUB's hd0")
        sp.add_argument("--disk", action="append", default=[], metavar="IMAGE",
                        help="another disk of the same guest: hd1, hd2, … in the order given")
        sp.add_argument("--format", dest="image_format", metavar="FORMAT",
                        help="the images' format (default: detected by content, raw when nothing else matches)")
        sp.add_argument("--allow-backing-dir", metavar="DIR",
                        help="files an image names (qcow2 backing and data files, VHD/VHDX parents, VMDK"
                        " extents) may be opened from DIR, and only from it: never outside it, never through"
                        " a symlink that leads out of it (default: refused)")
        sp.add_argument("--offset", type=_offset, metavar="BYTES",
                        help="a file system starts at this byte (decimal, or hex with 0x); no partition table is read")
        sp.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show a traceback on errors, and what each sandbox layer did")
        sp.add_argument("--runas", type=_runas, metavar="USER",
                        help="as root, read guest bytes as this user (a name, or a number used as uid and gid);"
                        " default 65534 (nobody)")
        sp.add_argument("--no-sandbox", dest="sandbox", action="store_false", help=NO_SANDBOX_HELP)

    sp = sub.add_parser("list", help="show the boot menu, default marked with *", epilog=EPILOG)
    common(sp, several=True)
    sp.add_argument("--json", action="store_true", help="machine-readable, with each entry's kernel, initrds and args")
    dialect(sp)
    config(sp)

    sp = sub.add_parser("extract", help="write the chosen kernel and initrd, print the command line", epilog=EPILOG)
    common(sp, several=True)
    sp.add_argument("-o", "--output-dir", required=True, metavar="DIR",
                    help="directory for 'kernel' and 'initrd' (created if missing, removed again if the run fails)")
    sp.add_argument("-e", "--entry", metavar="SPEC",
                    help="entry to boot, as GRUB's 'default' takes it: index, id, title, or a>b submenu path")
    interactive(sp)
    sp.add_argument("-f", "--force", action="store_true",
                    help="replace existing DIR/kernel and DIR/initrd (atomically: each new file is renamed over the old)")
    sp.add_argument("--json", action="store_true", help="print everything as JSON")
    dialect(sp)
    guest_type_options(sp)
    sp.add_argument("--chainload", action="store_true",
                    help="boot the guest's own Xen boot loader (/boot/xen/pvboot-ARCH.elf, /xen/pvboot-ARCH.elf,"
                    " /boot/xen/pvhboot-ARCH.elf) instead of the config's default")
    config(sp)

    add_inspect(sub, common, dialect, EPILOG)
    from .frontdoors import add_parsers as add_front_doors

    add_front_doors(sub, common, dialect, guest_type_options, EPILOG, interactive)

    sp = sub.add_parser("ls", help="list a directory of the guest, or the image's devices", epilog=EPILOG)
    common(sp)
    sp.add_argument("path", nargs="?", metavar="[DEVICE]PATH",
                    help="(hd0,gpt2)/grub, gpt2:/grub or /boot; without it, the devices are listed")

    sp = sub.add_parser("cat", help="copy a guest file to standard output", epilog=EPILOG)
    common(sp)
    sp.add_argument("path", metavar="[DEVICE]PATH", help="(hd0,gpt2)/grub/grub.cfg, gpt2:/grub/grub.cfg or /boot/…")
    return p


def main(argv: list[str] | None = None) -> int:
    from .frontdoors import split_extra

    steady_std_streams()

    argv, extra = split_extra(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    args.extra = extra
    if not args.command:
        _parser().print_usage(sys.stderr)
        sys.stderr.write(f"{PROG}: error: a COMMAND is required (list, extract, ls, cat)\n")
        return EXIT_USAGE
    handler = {"list": cmd_list, "extract": cmd_extract, "ls": cmd_ls, "cat": cmd_cat, "inspect": cmd_inspect,
               **dict.fromkeys(("qemu", "libvirt", "firecracker", "cloud-hypervisor", "boot"), cmd_front_door),
               }[args.command]

    def body() -> int:
        if getattr(args, "runas", None):  # before anything is opened or created
            from ..sandbox import check_target

            check_target(*args.runas)
        return handler(args)

    return guarded(PROG, body, debug=args.debug)


def _open_disks(args) -> list[tuple[int, str]]:
    """The guest's disks, opened in order (hd0 = the first IMAGE, then the others, then
    each --disk)."""
    disks: list[tuple[int, str]] = []
    try:
        images = args.image if isinstance(args.image, list) else [args.image]
        for path in [*images, *args.disk]:
            disks.append((open_image_fd(path), os.path.basename(path)))
    except BaseException:
        _close(disks)
        raise
    return disks


def _close(disks: list[tuple[int, str]]) -> None:
    for fd, _name in disks:
        os.close(fd)


def _run(args, action: str, disks: list[tuple[int, str]] | None = None, *, say_warnings: bool = True, **fields):
    """pipeline.run on the disks named in ``args``; warnings are shown before anything else
    (unless ``say_warnings`` is False: a run whose twin says them)."""
    from ..pipeline import Request

    opened = _open_disks(args) if disks is None else disks
    opener = None
    try:
        if args.allow_backing_dir is not None:
            from ..source.opener import DirectoryOpener

            opener = DirectoryOpener(args.allow_backing_dir)
        request = Request(action, tuple(opened), offset=args.offset, image_format=args.image_format, opener=opener,
                          **fields)
        uid, gid = args.runas if args.runas else (None, None)
        result = run_request(PROG, request, sandbox=args.sandbox, uid=uid, gid=gid, debug=args.debug)
    finally:
        if opener is not None:
            opener.close()
        if disks is None:
            _close(opened)
    if say_warnings:
        warn(PROG, result["warnings"], " (guestboot list --json lists them all)")
    return result


def _dump_json(data) -> None:
    import json  # only for --json: start-up time matters

    say(json.dumps(data, indent=2) + "\n")


def _refs_json(data: dict) -> dict:
    """An entry's files in GRUB's notation, "(hd0,gpt2)/vmlinuz", as --json shows them."""
    out = dict(data)
    if isinstance(out.get("kernel"), dict):
        out["kernel"] = out["kernel"]["grub"]
        out["initrds"] = [ref["grub"] for ref in out["initrds"]]
        out["modules"] = [{"file": m["grub"], "args": m["args"], "unzip": m["unzip"]} for m in out.get("modules", [])]
    if "entries" in out:
        out["entries"] = [_refs_json(e) for e in out["entries"]]
    return out


def _dialect(args) -> str | None:
    """--grub-dialect: None for auto, else a name dialect.py knows (UsageError if not)."""
    if args.grub_dialect == "auto":
        return None
    from ..boot.grub2.dialect import DIALECTS
    from ..errors import UsageError

    if args.grub_dialect not in DIALECTS:
        raise UsageError(f"--grub-dialect {args.grub_dialect}: choose from auto, {', '.join(DIALECTS)}")
    return args.grub_dialect


# --- list ----------------------------------------------------------------------------


def cmd_front_door(args) -> int:
    from .frontdoors import run_door

    def run(a, action, **fields):
        return _run(a, action, grub_dialect=_dialect(a), **fields)

    _ask_entry(args, lambda: run(args, "plan", say_warnings=False, guest_type=args.guest_type,
                                 prefer_capable=args.prefer_capable, chainload=args.chainload))
    return run_door(args, run, _dump_json)


def _ask_entry(args, plan) -> None:
    """--interactive: the menu on this terminal (console_menu.ask, read by ``plan``, a
    sandboxed "plan" run); ``args.entry`` becomes the entry chosen (None: the default)."""
    if not args.interactive:
        return
    from ..errors import UsageError
    from .console_menu import ask, terminal

    if args.entry is not None:
        raise UsageError("--interactive and --entry both choose the entry: give one")
    console = terminal()
    if console is None:
        raise UsageError("--interactive needs a terminal on standard input")
    args.entry = ask(console, lambda entry: plan(), editable=False).entry


def cmd_inspect(args) -> int:
    from .inspect_cmd import cmd_inspect as inspect

    return inspect(args, lambda a, action: _run(a, action, grub_dialect=_dialect(a)), _dump_json)


def cmd_list(args) -> int:
    from .render import menu_lines

    result = _run(args, "menu", grub_dialect=_dialect(args), inspect=args.json, config=args.config)
    if args.json:
        _dump_json({
            "config": result["config"],
            "format": result["format"],
            "dialect": result["dialect"],
            "default": result["default"],
            "entries": [_refs_json(e) for e in result["entries"]],
            "configs": result["configs"],
            "warnings": result["warnings"],
        })
        return 0
    dialect = result["dialect"]
    used = f", {dialect['name']} dialect: {shown(dialect['reason'])}" if dialect else ""
    say(f"{shown(result['config'])} ({result['format']}{used})\n")
    for line in menu_lines(result["rows"]):
        say(line + "\n")
    others = [c for c in result["configs"] if c["config"] != result["config"]]
    if others:
        say("other configs (--config): " + ", ".join(f"{shown(c['config'])} ({c['format']})" for c in others) + "\n")
    return 0


# --- extract -------------------------------------------------------------------------

OUTPUTS = ("kernel", "initrd")


def cmd_extract(args) -> int:
    from ..errors import OutputError
    from ..extract import OutputDir

    disks = _open_disks(args)  # before the directory: a wrong image creates nothing
    try:
        _ask_entry(args, lambda: _run(args, "plan", disks, say_warnings=False, grub_dialect=_dialect(args),
                                      config=args.config, guest_type=args.guest_type,
                                      prefer_capable=args.prefer_capable, chainload=args.chainload))
        with OutputDir(args.output_dir) as out:
            if not args.force:
                try:
                    out.refuse_existing(OUTPUTS)
                except OutputError as err:
                    err.message += " (--force replaces it)"
                    raise
            temps = {name: out.temporary(name) for name in OUTPUTS}
            fields = dict(entry=args.entry, grub_dialect=_dialect(args), config=args.config,
                          kernel_fd=temps["kernel"], initrd_fd=temps["initrd"],
                          guest_type=args.guest_type, prefer_capable=args.prefer_capable, chainload=args.chainload)
            modules: list[str] = []
            result = _run(args, "extract", disks, **fields)
            if result.get("modules_needed"):  # a multiboot entry: one more output per module
                modules = [f"module-{index + 1}" for index in range(result["modules_needed"])]
                if not args.force:
                    out.refuse_existing(modules)
                fds = tuple(out.temporary(name) for name in modules)
                result = _run(args, "extract", disks, module_fds=fds, **fields)
            _name_entry(result)
            if result["kernel_format"] == "unknown":
                warn(PROG, [f"{result['kernel']['grub']} is neither a bzImage nor an ELF kernel"])
            kernel_path = os.path.join(args.output_dir, "kernel")
            initrd_path = os.path.join(args.output_dir, "initrd") if result["initrd"] else None
            if args.json:
                _dump_json({
                    "entry": result["entry"],
                    "kernel": kernel_path,
                    "initrd": initrd_path,
                    "config": result["config"],
                    "dialect": result["dialect"],
                    "kernel_format": result["kernel_format"],
                    "kernel_version": result["kernel_version"],
                    "args": result["args"],
                    "cmdline": result["cmdline"],
                    "loader": result["loader"],
                    "source": {"kernel": result["kernel"]["grub"],
                               "initrds": [r["grub"] for r in result["initrds"]]},
                    "modules": [{"path": os.path.join(args.output_dir, name), "args": m["args"], "source": m["grub"],
                                 "unzip": m["unzip"]} for name, m in zip(modules, result["modules"])],
                })
            else:
                say(shown(result["cmdline"]) + "\n")  # exact bytes: --json
            flush_stdout()  # a full or closed stdout fails the run before the files appear
            out.commit((["kernel", "initrd"] if result["initrd"] else ["kernel"]) + modules, replace=args.force,
                       drop=[] if result["initrd"] else ["initrd"])
    finally:
        _close(disks)
    return 0


def _name_entry(result: dict) -> None:
    """Which entry was extracted, on stderr: the index path --entry takes, title, id."""
    entry = result.get("entry")
    if not entry:
        return
    ident = f" [{entry['id']}]" if entry["id"] and entry["id"] != entry["title"] else ""
    titles = " > ".join(entry["titles"]) or entry["title"]
    sys.stderr.write(shown(f"{PROG}: entry {entry['path']}: {titles}{ident} from {result['config']}") + "\n")
    sys.stderr.flush()


# --- ls / cat ------------------------------------------------------------------------


def cmd_ls(args) -> int:
    if not args.path:
        for row in _run(args, "devices")["devices"]:
            place = f"start={row['start']} size={row['size']}"
            if row["fs"] is None:
                say(shown(f"({row['name']})  -  {place}  {row['problem']}") + "\n")
                continue
            label = f" label={row['label']!r}" if row["label"] else ""
            say(shown(f"({row['name']})  {row['fs']}  {place}  uuid={row['uuid']}{label}") + "\n")
        return 0
    result = _run(args, "ls", path=args.path)
    say(f"{shown(result['listed'])}:\n")
    for row in result["files"]:
        kind = {"dir": "d", "file": "-", "link": "l"}.get(row["type"], "?")
        name = row["name"] + ("/" if row["type"] == "dir" else "")
        if "target" in row:
            name += " -> " + row["target"]
        say(f"{kind} {row['size']:>12} {shown(name)}\n")
    return 0


def cmd_cat(args) -> int:
    flush_stdout()
    _run(args, "cat", path=args.path, out_fd=stdout_fd())
    return 0


if __name__ == "__main__":
    sys.exit(main())
