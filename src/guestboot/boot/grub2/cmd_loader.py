"""Loaders: linux/linux16/linuxefi and their initrd commands (loader/i386/linux.c,
loader/i386/pc/linux.c), multiboot/multiboot2 kernels with their modules (loader/multiboot.c),
other kernels (chainloader, BSDs …) recorded as not booted by guestboot,
and ``boot``."""

from __future__ import annotations

from ...errors import LimitExceeded
from ...limits import LIMITS
from ..model import FileRef
from . import errors as E
from . import files
from .errors import GrubError
from .interp import BootNow, Interp, Loaded
from .parser import Block
from .registry import COMMANDS, Command, command


# --- loaders (loader/i386/linux.c, loader/i386/pc/linux.c) ---------------------------
def _linux(name: str) -> Command:
    def run(it: Interp, args: list[str], block: Block | None) -> int:
        it.loaded = None
        if not args:
            raise GrubError(E.BAD_ARGUMENT, "filename expected")
        it.loaded = Loaded(name, files.loader_ref(it, args[0]), list(args[1:]))
        return 0

    return run


def _initrd(kernels: tuple[str, ...]) -> Command:
    def run(it: Interp, args: list[str], block: Block | None) -> int:
        if not args:
            raise GrubError(E.BAD_ARGUMENT, "filename expected")
        if it.loaded is None or it.loaded.loader not in kernels:
            raise GrubError(E.BAD_ARGUMENT, "you need to load the kernel first")
        if len(args) > LIMITS.max_initrds:
            raise LimitExceeded(f"more than {LIMITS.max_initrds} initrd files on one line")
        refs: list[FileRef] = [files.loader_ref(it, a) for a in args]
        it.loaded.initrds = refs
        return 0

    return run


for _name in ("linux", "linuxefi"):
    COMMANDS[_name] = _linux(_name)
COMMANDS["linux16"] = _linux("linux16")
COMMANDS["initrd"] = _initrd(("linux", "linuxefi"))
COMMANDS["initrdefi"] = _initrd(("linux", "linuxefi"))
COMMANDS["initrd16"] = _initrd(("linux16",))


def _other_loader(name: str, needs_file: bool) -> Command:
    def run(it: Interp, args: list[str], block: Block | None) -> int:
        it.loaded = None
        if not args:
            raise GrubError(E.BAD_ARGUMENT, "filename expected")
        target = args[0].partition(")")[2] if args[0].startswith("(") else args[0]
        if needs_file and not target.startswith("+"):  # "+1" is a block list, not a file
            files.open_ref(it, args[0])
        it.loaded = Loaded(name, None, list(args[1:]), unsupported=name)
        return 0

    return run


# multiboot/multiboot2 and module/module2 (loader/multiboot.c): the kernel's file, then its
# arguments (multiboot v1 first takes --quirk-bad-kludge / --quirk-modules-after-kernel);
# a module: [--nounzip] FILE ARGS…; each module command belongs to its own loader
# (multiboot.c is built twice, once per protocol, with its own state).
_QUIRKS = ("--quirk-bad-kludge", "--quirk-modules-after-kernel")
MULTIBOOT_LOADERS = {"multiboot": "module", "multiboot2": "module2"}


def _multiboot(name: str) -> Command:
    def run(it: Interp, args: list[str], block: Block | None) -> int:
        it.loaded = None
        if name == "multiboot":
            while args and args[0] in _QUIRKS:
                args = args[1:]
        if not args:
            raise GrubError(E.BAD_ARGUMENT, "filename expected")
        it.loaded = Loaded(name, files.loader_ref(it, args[0]), list(args[1:]))
        return 0

    return run


def _multiboot_module(loader: str) -> Command:
    def run(it: Interp, args: list[str], block: Block | None) -> int:
        if it.loaded is None or it.loaded.loader != loader:
            raise GrubError(E.BAD_ARGUMENT, "you need to load the kernel first")
        unzip = True
        if args and args[0] == "--nounzip":
            unzip, args = False, args[1:]
        if not args:
            raise GrubError(E.BAD_ARGUMENT, "filename expected")
        if len(it.loaded.modules) >= LIMITS.max_multiboot_modules:
            raise LimitExceeded(f"more than {LIMITS.max_multiboot_modules} modules (limit max_multiboot_modules)")
        it.loaded.modules.append((files.loader_ref(it, args[0]), list(args[1:]), unzip))
        return 0

    return run


for _name, _module_name in MULTIBOOT_LOADERS.items():
    COMMANDS[_name] = _multiboot(_name)
    COMMANDS[_module_name] = _multiboot_module(_name)

for _name in ("kfreebsd", "knetbsd", "kopenbsd", "xnu_kernel", "xnu_kernel64",
              "plan9", "legacy_kernel", "truecrypt", "freedos", "ntldr", "pxechainloader"):
    COMMANDS[_name] = _other_loader(_name, True)
COMMANDS["chainloader"] = _other_loader("chainloader", True)


def _module(it: Interp, args: list[str], block: Block | None) -> int:
    if it.loaded is None or it.loaded.unsupported is None:
        raise GrubError(E.BAD_ARGUMENT, "you need to load the kernel first")
    return 0


for _name in ("kfreebsd_module", "kfreebsd_module_elf", "knetbsd_module",
              "knetbsd_module_elf", "kopenbsd_ramdisk", "xnu_kext", "xnu_mkext", "xnu_ramdisk"):
    COMMANDS[_name] = _module


@command("boot")
def cmd_boot(it: Interp, args: list[str], block: Block | None) -> int:
    if it.loaded is None:
        raise GrubError(E.NO_KERNEL, "you need to load the kernel first")
    raise BootNow()


