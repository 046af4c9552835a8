"""``guestboot-pygrub``: a drop-in for Xen's pygrub, as libxl's ``bootloader=`` runs it.

Same argv (GNU getopt, options and the image interleaved), same output bytes:
  sxp      linux (kernel 'K')(ramdisk 'R')(args 'A')          (Python repr quoting)
  simple   kernel K\\nramdisk R\\nargs A\\n\\n
  simple0  kernel K\\0ramdisk R\\0args A\\0\\0
ramdisk and args are left out when empty. A value that contains the format's delimiter is
refused (XSA-198). Kernel and ramdisk are written to new files boot_kernel.XXXXXXXX and
boot_ramdisk.XXXXXXXX in the output directory. Unlike pygrub, every failure exits non-zero
(``--runas`` included) and removes what it wrote.

The args are what GRUB's ``linux`` line gives the kernel, without GRUB's BOOT_IMAGE= (a PV
guest booted by pygrub never sees one), followed by ``--args`` when given.
"""

from __future__ import annotations

import getopt
import os
import sys

from .common import EXIT_USAGE, fail, guarded, open_image_fd

PROG = "guestboot-pygrub"
DEFAULT_OUTPUT_DIR = "/var/run/xen/pygrub/"
USAGE = (
    "Usage: %s [-q|--quiet] [-i|--interactive] [-l|--list-entries] [-n|--not-really] "
    "[--output=] [--kernel=] [--ramdisk=] [--args=] [--entry=] [--output-directory=] "
    "[--output-format=sxp|simple|simple0] [--runas=] [--offset=] [--isconfig] [--debug] <image>"
)
LONG_OPTIONS = [
    "quiet", "interactive", "list-entries", "not-really", "help", "output=", "output-format=",
    "output-directory=", "offset=", "runas=", "entry=", "kernel=", "ramdisk=", "args=",
    "isconfig", "debug",
]


class Options:
    def __init__(self) -> None:
        self.interactive = True
        self.list_entries = False
        self.not_really = False
        self.output: str | None = None
        self.output_format = "sxp"
        self.output_directory = DEFAULT_OUTPUT_DIR
        self.offset: int | None = None
        self.uid: int | None = None
        self.entry: str | None = None
        self.kernel: str | None = None
        self.ramdisk: str | None = None
        self.args = ""
        self.isconfig = False
        self.debug = False
        self.image = ""


def _usage() -> None:
    sys.stderr.write(USAGE % PROG + "\n")


def parse(argv: list[str]) -> Options | int:
    """Options, or an exit code when parsing ends the run (usage, --help)."""
    try:
        opts, rest = getopt.gnu_getopt(argv, "qilnh::", LONG_OPTIONS)
    except getopt.GetoptError as err:
        _usage()
        return fail(PROG, str(err), EXIT_USAGE)
    o = Options()
    for name, value in opts:
        if name in ("-q", "--quiet"):
            o.interactive = False
        elif name in ("-i", "--interactive"):
            o.interactive = True
        elif name in ("-l", "--list-entries"):
            o.list_entries = True
        elif name in ("-n", "--not-really"):
            o.not_really = True
        elif name in ("-h", "--help"):
            _usage()
            return 0
        elif name == "--output":
            o.output = None if value == "-" else value
        elif name == "--runas":
            try:
                o.uid = int(value)
            except ValueError:
                _usage()
                return fail(PROG, "runas value must be an integer user id", EXIT_USAGE)
        elif name == "--kernel":
            o.kernel = value
        elif name == "--ramdisk":
            o.ramdisk = value
        elif name == "--args":
            o.args = value
        elif name == "--offset":
            try:
                o.offset = int(value)
            except ValueError:
                _usage()
                return fail(PROG, "offset value must be an integer", EXIT_USAGE)
            if o.offset < 0:
                return fail(PROG, "offset value must not be negative", EXIT_USAGE)
        elif name == "--entry":
            o.entry = value
            o.interactive = False  # as pygrub: naming the entry implies non-interactive
        elif name == "--isconfig":
            o.isconfig = True
        elif name == "--debug":
            o.debug = True
        elif name == "--output-format":
            if value not in ("sxp", "simple", "simple0"):
                _usage()
                return fail(PROG, f"unknown output format {value}", EXIT_USAGE)
            o.output_format = value
        elif name == "--output-directory":
            if not os.path.isdir(value):
                return fail(PROG, f"{value} is not an existing directory", EXIT_USAGE)
            o.output_directory = value + "/"
    if not rest:
        _usage()
        return fail(PROG, "no image given", EXIT_USAGE)
    o.image = rest[0]
    if o.interactive and o.uid:
        return fail(PROG, "In order to use --runas, you must also set --entry or -q", EXIT_USAGE)
    return o


def main(argv: list[str] | None = None) -> int:
    parsed = parse(sys.argv[1:] if argv is None else argv)
    if isinstance(parsed, int):
        return parsed
    return guarded(PROG, lambda: run(parsed), debug=parsed.debug)


# --- formats (pygrub's format_sxp / format_simple, byte for byte) ----------------------


def format_output(fmt: str, kernel: str, ramdisk: str | None, args: str | None) -> bytes:
    from ..errors import ConfigError

    if fmt == "sxp":
        text = "linux (kernel %r)" % kernel
        if ramdisk:
            text += "(ramdisk %r)" % ramdisk
        if args:
            text += "(args %r)" % args
        return text.encode("utf-8", "surrogateescape")
    sep = "\n" if fmt == "simple" else "\0"
    for name, value in (("kernel", kernel), ("ramdisk", ramdisk), ("args", args)):
        if value is not None and sep in value:
            shown = "newline" if sep == "\n" else "NUL"
            raise ConfigError(f"the {name} value contains a {shown}, which the {fmt} format cannot carry (XSA-198)")
    text = f"kernel {kernel}{sep}"
    if ramdisk:
        text += f"ramdisk {ramdisk}{sep}"
    if args:
        text += f"args {args}{sep}"
    text += sep
    return text.encode("utf-8", "surrogateescape")


# --- the run ----------------------------------------------------------------------------


def run(o: Options) -> int:
    from ..extract import create_unique_file, open_output_dir

    if o.output_directory == DEFAULT_OUTPUT_DIR:
        try:
            os.makedirs(o.output_directory, 0o700, exist_ok=True)
        except OSError as err:
            from ..errors import OutputError

            raise OutputError(f"cannot create {o.output_directory}: {err.strerror}") from None

    image_fd = open_image_fd(o.image)
    writes = not (o.not_really or o.list_entries or o.isconfig)
    dir_fd = open_output_dir(o.output_directory) if writes else None
    made: list[str] = []
    kernel_fd = ramdisk_fd = None
    try:
        if writes:
            kernel_fd, kernel_name = create_unique_file(dir_fd, "boot_kernel.")
            made.append(kernel_name)
            ramdisk_fd, ramdisk_name = create_unique_file(dir_fd, "boot_ramdisk.")
            made.append(ramdisk_name)
        out_fd = _open_output(o.output)

        def work() -> dict:
            return choose_and_copy(o, image_fd, kernel_fd, ramdisk_fd)

        if o.uid:
            from ..sandbox import run_as

            result = run_as(o.uid, o.uid, work)
        else:
            result = work()
        if result.get("listing") is not None or result.get("isconfig") is not None:
            sys.stdout.write(result.get("listing") or result.get("isconfig"))
            sys.stdout.flush()
            return 0
        if writes:
            kernel_path = o.output_directory + made[0]
            ramdisk_path = o.output_directory + made[1] if result["ramdisk"] else None
            if not result["ramdisk"]:
                os.unlink(made.pop(), dir_fd=dir_fd)
        else:
            kernel_path = f"<kernel:{result['kernel']}>"
            ramdisk_path = f"<ramdisk:{result['ramdisk']}>" if result["ramdisk"] else None
        data = format_output(o.output_format, kernel_path, ramdisk_path, result["args"] or None)
        sys.stdout.flush()
        _write_all(out_fd, data)
        made.clear()  # success: the files are the caller's now
        return 0
    finally:
        for fd in (kernel_fd, ramdisk_fd):
            if fd is not None:
                os.close(fd)
        for name in made:
            try:
                os.unlink(name, dir_fd=dir_fd)
            except OSError:
                pass
        if dir_fd is not None:
            os.close(dir_fd)
        os.close(image_fd)


def _open_output(path: str | None) -> int:
    """libxl pre-creates --output: open it write-only, never create or truncate."""
    if path is None:
        return sys.stdout.fileno()
    from ..errors import OutputError

    try:
        return os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    except OSError as err:
        raise OutputError(f"cannot open --output {path}: {err.strerror}") from None


def _write_all(fd: int, data: bytes) -> None:
    from ..errors import OutputError

    view = memoryview(data)
    try:
        while view:
            view = view[os.write(fd, view) :]
    except OSError as err:
        raise OutputError(f"cannot write the result: {err.strerror}") from None


def choose_and_copy(o: Options, image_fd: int, kernel_fd: int | None, ramdisk_fd: int | None) -> dict:
    """Everything that reads guest bytes. Returns {"kernel", "ramdisk", "args"} (guest
    paths) or {"listing"} / {"isconfig"} text. Runs deprivileged with --runas."""
    from ..image import open_image
    from ..pipeline import load_menu, open_refs, plan_boot

    if o.isconfig:
        return {"isconfig": _isconfig_text(o, image_fd)}
    image = open_image(image_fd, name=os.path.basename(o.image), offset=o.offset)
    devices = image.devices
    if o.kernel:  # the host names the kernel: no config is read (pygrub's --kernel)
        device = _first_with(devices, o.kernel)
        kernel_refs = [(device, o.kernel)]
        ramdisk_refs = [(device, o.ramdisk)] if o.ramdisk else []
        args = o.args
        shown_kernel, shown_ramdisk = o.kernel, o.ramdisk
    else:
        menu = load_menu(devices)
        if o.list_entries:
            return {"listing": _listing(menu)}
        if o.interactive:
            _print_plain_menu(menu)
        plan = plan_boot(devices, o.entry, menu=menu)
        spec = plan.spec
        kernel_refs = [(spec.kernel.device, spec.kernel.path)]
        ramdisk_refs = [(r.device, r.path) for r in spec.initrds]
        args = spec.args
        if o.args:
            args += " " + o.args  # pygrub appends --args after one space
        shown_kernel = spec.kernel.path
        shown_ramdisk = " ".join(r.path for r in spec.initrds) or None
    from ..boot.model import FileRef

    kernel_sources = open_refs(devices, [FileRef(d, p) for d, p in kernel_refs])
    ramdisk_sources = open_refs(devices, [FileRef(d, p) for d, p in ramdisk_refs])
    if kernel_fd is not None:
        from ..extract import copy_sources

        copy_sources(kernel_sources, kernel_fd)
        if ramdisk_sources:
            copy_sources(ramdisk_sources, ramdisk_fd)
    return {"kernel": shown_kernel, "ramdisk": shown_ramdisk, "args": args}


def _first_with(devices, path: str) -> str:
    from ..errors import NotFound
    from ..fs.path import exists

    for name, fs in devices.filesystems():
        if exists(fs, path) is not None:
            return name
    raise NotFound(f"--kernel {path}: not on any file system of the image")


def _listing(menu) -> str:
    """pygrub -l's shape: one block per bootable entry (submenu entries as 'a>b' titles)."""
    from ..errors import GuestbootError

    lines = []
    for titles, entry in _bootable(menu.entries, ()):
        lines.append(f"title: {'>'.join(titles)}")
        try:
            spec = entry.run()
        except GuestbootError as err:
            lines.append(f"  error: {err}")
            continue
        lines.append(f"  root: ({spec.kernel.device})")
        lines.append(f"  kernel: {spec.kernel.path}")
        lines.append(f"  args: {spec.args}")
        lines.append(f"  initrd: {' '.join(r.path for r in spec.initrds) or None}")
    return "\n".join(lines) + "\n"


def _bootable(entries, titles):
    for entry in entries:
        if entry.is_submenu:
            yield from _bootable(entry.submenu.entries, titles + (entry.title,))
        else:
            yield titles + (entry.title,), entry


def _print_plain_menu(menu) -> None:
    """Until the interactive menu lands: show the menu as text on stderr, boot the default."""
    from .render import menu_lines

    for line in menu_lines(menu):
        sys.stderr.write(line + "\n")
    sys.stderr.write(f"{PROG}: no interactive menu yet; booting the default entry (*)\n")
    sys.stderr.flush()


def _isconfig_text(o: Options, image_fd: int) -> str:
    """pygrub --isconfig: the "image" is a config file; print what it would boot."""
    from ..boot.discover import find_menu
    from ..devices import DeviceMap
    from ..fs.onefile import OneFileSystem
    from ..select import boot
    from ..source import FileSource

    name = os.path.basename(o.image)
    config = OneFileSystem(os.fsencode(name), FileSource(image_fd, name=name))
    menu = find_menu(DeviceMap.of({"hd0": config}), isconfig=True)
    _, spec = boot(menu, o.entry)
    args = spec.args + (" " + o.args if o.args else "")
    text = f"  kernel: {spec.kernel.path}\n"
    if spec.initrds:
        text += f"  initrd: {' '.join(r.path for r in spec.initrds)}\n"
    return text + f"  args: {args}\n"


if __name__ == "__main__":
    sys.exit(main())
