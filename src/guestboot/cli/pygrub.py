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

from .common import (EXIT_USAGE, fail, flush_stdout, guarded, open_image_fd, parse_offset, run_request, say,
                     steady_std_streams, stdout_fd, version_text, warn)

PROG = "guestboot-pygrub"
DEFAULT_OUTPUT_DIR = "/var/run/xen/pygrub/"
USAGE = (
    "Usage: %s [-q|--quiet] [-i|--interactive] [-l|--list-entries] [-n|--not-really] "
    "[--output=] [--kernel=] [--ramdisk=] [--args=] [--entry=] [--output-directory=] "
    "[--output-format=sxp|simple|simple0] [--runas=] [--offset=] [--isconfig] [--debug] [--no-sandbox] <image>"
)
LONG_OPTIONS = [
    "quiet", "interactive", "list-entries", "not-really", "help", "output=", "output-format=",
    "output-directory=", "offset=", "runas=", "entry=", "kernel=", "ramdisk=", "args=",
    "isconfig", "debug", "version", "allow-backing-dir=", "grub-dialect=", "guest-type=", "prefer-capable",
    "no-sandbox", "chainload",
]
HELP = """
Read a guest disk image without trusting it, choose the entry its boot loader would boot,
copy that kernel and ramdisk out and print where they are (a drop-in for Xen's pygrub).

  -q, --quiet              boot the default entry (no interactive menu)
  -i, --interactive        show the menu on the terminal and let a person choose (the default;
                           without a terminal on stdin: the menu as text on stderr)
  -l, --list-entries       list the entries and what each boots; write nothing
  -n, --not-really         print what would boot; write nothing
      --entry=SPEC         boot this entry: index, title, id, or a>b submenu path
      --kernel=PATH        boot this kernel (no config is read); --ramdisk=PATH with it
      --args=ARGS          append to the kernel arguments (after one space)
      --output=FILE        write the result here (libxl creates it); "-" is stdout
      --output-format=F    sxp (default), simple or simple0
      --output-directory=D where boot_kernel.* and boot_ramdisk.* are created
                           (default /var/run/xen/pygrub/)
      --offset=BYTES       a file system starts here (decimal, or hex with 0x)
      --runas=USER         read the image as this user (a name, or a uid that is also
                           the gid, as libxl passes it); needs root; not with -i.
                           Without it, root reads guest bytes as uid/gid 65534
      --no-sandbox         debugging only: read the guest in this process with all its
                           privileges (no child, namespaces, chroot, uid drop, seccomp,
                           rlimits or wall-clock limit)
      --isconfig           the image is a config file: print what it would boot
      --allow-backing-dir=DIR  files the image names (qcow2 backing files, VHD parents,
                           VMDK extents) may come from DIR only (default: refused)
      --debug              a traceback with errors, and what each sandbox layer did
      --grub-dialect=D     evaluate a grub.cfg as this GRUB does: auto (default: from
                           the image), debian, fedora or suse (not in Xen's pygrub)
      --guest-type=T       refuse a kernel that cannot boot as T: pv, pvh, hvm or any
                           (default; libxl passes none) (not in Xen's pygrub)
      --prefer-capable     with --guest-type: boot the newest entry whose kernel can
      --chainload          boot the guest's own Xen boot loader (/boot/xen/pvboot-ARCH.elf …)
      --version            print the version
  -h, --help               this help

More than one image: the guest's disks, GRUB's hd0, hd1, … in the order given (a /boot
on the second disk, a volume group or RAID array spanning disks).

Exit codes: 0 ok, 2 usage, 3 corrupt image, 4 unsupported, 5 limit reached, 6 not found,
7 config error, 8 output error, 9 permission denied, 70 internal error, 130 interrupted.
"""


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
        self.gid: int | None = None
        self.entry: str | None = None
        self.kernel: str | None = None
        self.ramdisk: str | None = None
        self.args = ""
        self.isconfig = False
        self.debug = False
        self.grub_dialect: str | None = None  # None: detected from the image
        self.sandbox = True
        self.image = ""
        self.backing_dir: str | None = None
        self.disks: list[str] = []
        self.guest_type = "any"
        self.prefer_capable = False
        self.chainload = False


def _usage() -> None:
    sys.stderr.write(USAGE % PROG + "\n")


def parse(argv: list[str]) -> Options | int:
    """Options, or an exit code when parsing ends the run (usage, --help)."""
    try:
        opts, rest = getopt.gnu_getopt(argv, "qilnh", LONG_OPTIONS)
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
            sys.stdout.write(USAGE % PROG + "\n" + HELP)
            return 0
        elif name == "--version":
            sys.stdout.write(version_text(PROG))
            return 0
        elif name == "--output":
            o.output = None if value == "-" else value
        elif name == "--runas":
            try:
                from ..sandbox import runas_ids

                o.uid, o.gid = runas_ids(value)
            except ValueError as err:
                _usage()
                return fail(PROG, str(err), EXIT_USAGE)
        elif name == "--kernel":
            o.kernel = value
        elif name == "--ramdisk":
            o.ramdisk = value
        elif name == "--args":
            o.args = value
        elif name == "--offset":
            try:
                o.offset = parse_offset(value)
            except ValueError as err:
                _usage()
                return fail(PROG, str(err), EXIT_USAGE)
        elif name == "--entry":
            o.entry = value
            o.interactive = False  # as pygrub: naming the entry implies non-interactive
        elif name == "--isconfig":
            o.isconfig = True
        elif name == "--allow-backing-dir":
            o.backing_dir = value
        elif name == "--debug":
            o.debug = True
        elif name == "--no-sandbox":
            o.sandbox = False
        elif name == "--output-format":
            if value not in ("sxp", "simple", "simple0"):
                _usage()
                return fail(PROG, f"unknown output format {value}", EXIT_USAGE)
            o.output_format = value
        elif name == "--grub-dialect":
            from ..boot.grub2.dialect import DIALECTS

            if value not in ("auto", *DIALECTS):
                _usage()
                return fail(PROG, f"--grub-dialect={value}: choose from auto, {', '.join(DIALECTS)}", EXIT_USAGE)
            o.grub_dialect = None if value == "auto" else value
        elif name == "--guest-type":
            if value not in ("any", "pv", "pvh", "hvm"):
                _usage()
                return fail(PROG, f"--guest-type={value}: choose from any, pv, pvh, hvm", EXIT_USAGE)
            o.guest_type = value
        elif name == "--prefer-capable":
            o.prefer_capable = True
        elif name == "--chainload":
            o.chainload = True
        elif name == "--output-directory":
            if not os.path.isdir(value):
                return fail(PROG, f"{value} is not an existing directory", EXIT_USAGE)
            o.output_directory = value + "/"
    if not rest:
        _usage()
        return fail(PROG, "no image given", EXIT_USAGE)
    o.image = rest[0]
    o.disks = rest[1:]  # more disks of the guest (hd1, hd2, …); pygrub reads only the first
    if o.interactive and o.uid is not None:
        return fail(PROG, "In order to use --runas, you must also set --entry or -q", EXIT_USAGE)
    return o


def main(argv: list[str] | None = None) -> int:
    steady_std_streams()
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


def _action(o: Options) -> str:
    if o.isconfig:
        return "isconfig"
    if o.list_entries and not o.kernel:
        return "menu"
    return "plan" if o.not_really else "extract"


def run(o: Options) -> int:
    from ..extract import create_unique_file, open_output_dir
    from ..pipeline import Request

    if o.uid is not None:
        from ..sandbox import check_target

        check_target(o.uid, o.gid)  # before anything is opened or created
    action = _action(o)
    writes = action == "extract"
    if writes and o.output_directory == DEFAULT_OUTPUT_DIR:
        try:
            os.makedirs(o.output_directory, 0o700, exist_ok=True)
        except OSError as err:
            from ..errors import OutputError

            raise OutputError(f"cannot create {o.output_directory}: {err.strerror}") from None

    disks: list[tuple[int, str]] = []
    try:
        for path in [o.image, *o.disks]:
            disks.append((open_image_fd(path), os.path.basename(path)))
    except BaseException:
        for fd, _name in disks:
            os.close(fd)
        raise
    dir_fd = open_output_dir(o.output_directory) if writes else None
    made: list[str] = []
    kernel_fd = ramdisk_fd = None
    opener = None
    try:
        if o.backing_dir is not None:
            from ..source.opener import DirectoryOpener

            opener = DirectoryOpener(o.backing_dir)
        if writes:
            kernel_fd, kernel_name = create_unique_file(dir_fd, "boot_kernel.")
            made.append(kernel_name)
            ramdisk_fd, ramdisk_name = create_unique_file(dir_fd, "boot_ramdisk.")
            made.append(ramdisk_name)
        out_fd = _open_output(o.output)
        entry, edited, commands = o.entry, None, None
        console = _console(o, action)
        if console is not None:
            entry, edited, commands = _menu_choice(o, tuple(disks), opener, console)
        request = Request(
            action, tuple(disks), offset=o.offset, entry=entry,
            kernel=o.kernel, ramdisk=o.ramdisk, extra_args=o.args, kernel_fd=kernel_fd, initrd_fd=ramdisk_fd,
            opener=opener,
            grub_dialect=o.grub_dialect, guest_type=o.guest_type, prefer_capable=o.prefer_capable,
            chainload=o.chainload,
        )
        if commands is not None:  # edited ('e') or typed ('c') at the console; --args still follows, as in pygrub
            request = request._replace(
                kernel=commands.kernel, ramdisk=commands.initrds[0] if commands.initrds else None,
                more_ramdisks=commands.initrds[1:],
                extra_args=" ".join(part for part in (commands.args, o.args) if part))
        result = run_request(PROG, request, sandbox=o.sandbox, uid=o.uid, gid=o.gid, debug=o.debug)
        if result.get("modules_needed"):  # a multiboot entry: sxp/simple cannot name modules
            from ..pipeline import modules_refused

            raise modules_refused(result)
        warn(PROG, result["warnings"])
        if action == "isconfig":
            say(_isconfig_text(result))
            return 0
        if action == "menu":
            say(_listing(result["entries"]))
            return 0
        if o.interactive and console is None and result["rows"]:
            _print_plain_menu(result["rows"])
        _name_entry(result)
        if commands is not None:
            _say_commands(commands)
        kernel = result["kernel"]["path"]
        ramdisk = " ".join(r["path"] for r in result["initrds"]) or None
        if writes:
            kernel_path = o.output_directory + made[0]
            ramdisk_path = o.output_directory + made[1] if result["initrd"] else None
            if not result["initrd"]:
                os.unlink(made.pop(), dir_fd=dir_fd)
        else:
            kernel_path = f"<kernel:{kernel}>"
            ramdisk_path = f"<ramdisk:{ramdisk}>" if ramdisk else None
        args = result["args"]
        if edited is not None:  # typed at the console ('a'); --args still follows, as in pygrub
            args = edited + (" " + o.args if o.args else "")
            from .render import shown

            sys.stderr.write(f"{PROG}: kernel arguments typed at the console: {shown(args)}\n")
            sys.stderr.flush()
        data = format_output(o.output_format, kernel_path, ramdisk_path, args or None)
        flush_stdout()
        _write_all(out_fd, data)
        made.clear()  # success: the files are the caller's now
        return 0
    finally:
        if opener is not None:
            opener.close()
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
        for fd, _name in disks:
            os.close(fd)


def _open_output(path: str | None) -> int:
    """libxl pre-creates --output: open it write-only, never create or truncate."""
    from ..errors import OutputError

    if path is None:
        return stdout_fd()

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
        if fd == sys.stdout.fileno():
            from .common import stdout_error

            raise stdout_error(err) from None
        raise OutputError(f"cannot write the result: {err.strerror}") from None


def _name_entry(result: dict) -> None:
    """Which entry boots, on stderr (libxl logs it): the index path, the titles, the id."""
    entry = result.get("entry")
    if not entry:
        return
    from .render import shown

    ident = f" [{entry['id']}]" if entry["id"] and entry["id"] != entry["title"] else ""
    titles = " > ".join(entry["titles"]) or entry["title"]
    sys.stderr.write(shown(f"{PROG}: entry {entry['path']}: {titles}{ident} from {result['config']}") + "\n")
    sys.stderr.flush()


def _listing(entries: list[dict]) -> str:
    """pygrub -l's shape: one block per bootable entry (submenu entries as 'a>b' titles)."""
    from .render import shown

    lines = []
    for titles, entry in _bootable(entries, ()):
        lines.append(f"title: {'>'.join(titles)}")
        if "error" in entry:
            lines.append(f"  error: {entry['error']}")
            continue
        lines.append(f"  root: ({entry['kernel']['device']})")
        lines.append(f"  kernel: {entry['kernel']['path']}")
        lines.append(f"  args: {entry['args']}")
        lines.append(f"  initrd: {' '.join(r['path'] for r in entry['initrds']) or None}")
    return "".join(shown(line) + "\n" for line in lines)


def _bootable(entries: list[dict], titles: tuple[str, ...]):
    for entry in entries:
        if "entries" in entry:
            yield from _bootable(entry["entries"], titles + (entry["title"],))
        else:
            yield titles + (entry["title"],), entry


def _console(o: Options, action: str) -> int | None:
    """The terminal for the interactive menu: pygrub's default mode (not -q, no --entry),
    choosing a config entry (not --kernel), with a terminal on standard input."""
    if not o.interactive or o.kernel is not None or action not in ("extract", "plan"):
        return None
    from .console_menu import terminal

    return terminal()


def _say_commands(commands) -> None:
    """On stderr (libxl logs it), what the person at the console asked to boot instead of
    an entry of the config."""
    from .render import shown

    initrds = f" initrd {' '.join(commands.initrds)}" if commands.initrds else ""
    sys.stderr.write(shown(f"{PROG}: booting commands edited at the console: linux {commands.kernel}"
                           f" {commands.args}".rstrip() + initrds) + "\n")
    sys.stderr.flush()


def _menu_choice(o: Options, disks: tuple, opener, console: int):
    """The entry chosen at the console, the arguments typed for it, or the commands edited
    or typed to boot instead (console_menu.ask); the menu read by "plan" runs sandboxed
    like the real one."""
    from ..pipeline import Request
    from .console_menu import ask

    def plan(entry: str | None) -> dict:
        return run_request(PROG, Request(
            "plan", disks, offset=o.offset, entry=entry, opener=opener, grub_dialect=o.grub_dialect,
            guest_type=o.guest_type, prefer_capable=o.prefer_capable, chainload=o.chainload,
        ), sandbox=o.sandbox, uid=o.uid, gid=o.gid, debug=o.debug)

    return ask(console, plan, editable=True)


def _print_plain_menu(rows: list[dict]) -> None:
    """pygrub's interactive mode with no terminal on standard input (nobody to ask): the
    menu as text on stderr, then the default boots."""
    from .render import menu_lines

    for line in menu_lines(rows):
        sys.stderr.write(line + "\n")
    sys.stderr.write(f"{PROG}: no terminal for the interactive menu; booting the default entry (*)\n")
    sys.stderr.flush()


def _isconfig_text(result: dict) -> str:
    """pygrub --isconfig's three lines: kernel, initrd (when there is one), args."""
    from .render import shown

    text = f"  kernel: {shown(result['kernel']['path'])}\n"
    if result["initrds"]:
        text += f"  initrd: {shown(' '.join(r['path'] for r in result['initrds']))}\n"
    return text + f"  args: {shown(result['args'])}\n"


if __name__ == "__main__":
    sys.exit(main())
