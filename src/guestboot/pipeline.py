"""The pipeline end to end: image → devices → menu → choice → files, as one call.

``run(request) -> result`` is what both front ends (cli/main.py, cli/pygrub.py) and the
deprivileged child (sandbox.py) call. The request names descriptors the caller opened
(the disks, and for "extract"/"cat" the outputs); the result is plain data (str, int,
bool, None, lists and dicts of them) so that the child can send it back over a pipe as
JSON. Nothing here prints; the front ends present the result.

Actions (``Request.action``):

- ``"menu"``: the menu (``rows`` for display, ``entries`` as a tree with what each entry
  boots, ``default`` path, ``config``, ``format``, ``dialect``: the boot loader's variant
  as ``{"name", "reason"}``, or None for a format that has none).
- ``"plan"``: which entry boots and what it loads (``entry``, ``kernel``, ``initrds``,
  ``args``, ``cmdline``, ``loader``, ``notes``), plus the menu ``rows``. With
  ``Request.kernel`` set (pygrub's --kernel) no config is read: the host names the files.
  With ``Request.guest_type`` other than "any", a kernel that cannot boot as that type
  is refused (guesttype.py) before anything is copied; ``kernel_info`` then holds the
  chosen kernel's facts (None otherwise).
- ``"extract"``: "plan", then the kernel is copied into ``kernel_fd`` and the initrds, in
  order, into ``initrd_fd`` (``initrd`` in the result says whether there were any);
  ``kernel_format``/``kernel_version`` describe the kernel. A multiboot entry's kernel and
  modules (``Request.module_fds``, one per module; ``modules_needed`` when too few) are written
  as GRUB loads them (multiboot_out.py); ``modules_written`` is their count. With fewer
  module outputs than modules nothing is written and ``modules_needed`` says how many.
- ``"inspect"``: the menu as for "menu", each entry's kernel and initrds inspected
  (``kernel_info``, ``initrd_info``; kernels.py), and every kernel and initrd in the
  guest's boot directories (``boot_files``). A guest without a usable config still has
  its boot directories surveyed (``config_error`` says why there is no menu).
  ``Request.inspect`` adds the same ``kernel_info`` to the entries of "menu".
- ``"isconfig"``: the one disk is a config file; "plan" on it, paths as written.
- ``"devices"``: GRUB's devices with their partition start and size and file system.
- ``"ls"``: a directory (or one file) at ``Request.path``; ``"cat"``: that file copied
  into ``out_fd``.

Every result carries ``warnings`` (damaged tables, skipped config commands). A failure
raises the GuestbootError, with the warnings gathered so far in its ``warnings``.
"""

from __future__ import annotations

import os
from typing import Any, NamedTuple

from .boot.model import BootSpec, FileRef, Menu, MenuEntry
from .devices import DeviceMap
from .errors import GuestbootError, NotFound, Unsupported, UsageError
from .source import ByteSource

MULTIBOOT = ("multiboot", "multiboot2")  # loaders whose kernel and modules are written as GRUB loads them
ACTIONS = ("menu", "plan", "extract", "isconfig", "devices", "ls", "cat", "inspect")


class Request(NamedTuple):
    """What to do, on which descriptors. ``disks`` are (fd, display name) in GRUB's order
    (hd0, hd1, …). ``entry`` uses GRUB's ``default`` syntax (None: the config's own
    default). ``kernel``/``ramdisk`` are paths the host names instead of reading a config
    (pygrub's --kernel/--ramdisk); ``extra_args`` are appended after one space (--args).
    ``path`` is what "ls"/"cat" read: "[PART:]/path" or GRUB's "(hd0,gpt2)/path".
    ``opener`` opens the files an image names (backing files, parents, extents; see
    source.opener): None refuses them all. ``grub_dialect`` names the GRUB build to
    emulate (boot/grub2/dialect.py; None: the one the image shows)."""

    action: str
    disks: tuple[tuple[int, str], ...]
    offset: int | None = None
    image_format: str | None = None
    entry: str | None = None
    kernel: str | None = None
    ramdisk: str | None = None
    extra_args: str = ""
    more_ramdisks: tuple[str, ...] = ()  # loaded after ``ramdisk``, in order (an entry edited at the console)
    path: str | None = None
    kernel_fd: int | None = None
    initrd_fd: int | None = None
    out_fd: int | None = None
    opener: Any = None
    grub_dialect: str | None = None
    inspect: bool = False  # "menu": add each entry's kernel_info/initrd_info (kernels.py)
    guest_type: str = "any"  # "plan"/"extract": refuse a kernel that cannot boot as pv/pvh/hvm (guesttype.py)
    prefer_capable: bool = False  # … or boot the newest entry whose kernel can
    module_fds: tuple[int, ...] = ()  # "extract" of a multiboot entry: one output per module, in order
    chainload: bool = False  # boot the guest's own Xen PV/PVH boot loader (boot/pvboot.py) by default
    config: str | None = None  # the config to read instead of the first found: "(hd0,gpt1)/EFI/fedora/grub.cfg"

    def descriptors(self) -> tuple[int, ...]:
        """Every descriptor the request names: what a sandboxed child keeps."""
        fds = [fd for fd, _name in self.disks] + [self.kernel_fd, self.initrd_fd, self.out_fd, *self.module_fds]
        if self.opener is not None:  # the files the images name, opened by preopen()
            fds.extend(self.opener.descriptors())
        return tuple(fd for fd in fds if fd is not None)


Result = dict[str, Any]


def run(request: Request) -> Result:
    if request.action not in ACTIONS:
        raise ValueError(f"unknown pipeline action {request.action!r}")
    if not request.disks:
        raise NotFound("no image given")
    from .fs.budget import image_scope

    with image_scope() as scanned:  # one scan budget for every file system the run reads
        result = _run(request)
    if scanned.exhausted() and isinstance(result.get("warnings"), list):
        # a GRUB search or a probe that met the limit goes on as GRUB would after a read error
        result["warnings"].insert(0, f"file-system scan budget of this image used up ({scanned.exhausted()}):"
                                  " lookups after that failed, so the menu may lack what they would have found")
    return result


def _run(request: Request) -> Result:
    warnings: list[str] = []
    try:
        if request.action == "isconfig":
            return _isconfig(request, warnings)
        devices = _open(request, warnings)
        if request.action == "devices":
            return {"warnings": warnings, "devices": devices}
        if request.action in ("ls", "cat"):
            return _ls_or_cat(request, devices, warnings)
        if request.kernel:
            return _host_given(request, devices, warnings)
        if request.action == "inspect":
            return _inspect(request, devices, warnings)
        menu, chainload_entry = _guest_menu(request, devices, warnings)
        if request.entry is None and chainload_entry is not None:
            request = request._replace(entry=chainload_entry)
        if request.action == "menu":
            data = menu_data(menu)
            if request.inspect:
                from .kernels import Inspector

                _add_kernel_info(data["entries"], Inspector(devices))
            return {"warnings": warnings, **data, "configs": configs_data(devices)}
        return _plan(request, devices, menu, warnings)
    except GuestbootError as err:
        err.warnings = warnings + [w for w in err.warnings if w not in warnings]
        raise


# --- stages ----------------------------------------------------------------------------


def _guest_menu(request: Request, devices: DeviceMap, warnings: list[str]) -> tuple[Menu, str | None]:
    """The guest's menu with its Xen PV/PVH boot loaders (boot/pvboot.py) as extra entries,
    and the entry to boot instead of the config's default: a boot loader of the guest when
    --chainload asks for one, or when there is no usable config (none, or only the
    kernels themselves: noconfig)."""
    from .boot import pvboot

    found = pvboot.find(devices) if request.config is None else []
    try:
        menu = load_menu(devices, settings={"grub_dialect": request.grub_dialect}, config=request.config)
    except GuestbootError as err:
        if not found:
            raise
        warnings.append(f"no usable boot configuration ({err})")
        menu, usable = Menu(format=pvboot.LOADER), False
    else:
        usable = menu.format != "noconfig"
    warnings.extend(menu.warnings)
    if not found:
        if request.chainload:
            warnings.append("--chainload: the guest has no Xen boot loader (/boot/xen/pvboot-ARCH.elf,"
                            " /xen/pvboot-ARCH.elf, /boot/xen/pvhboot-ARCH.elf); booting its config's default")
        return menu, None
    first = len(menu.entries)
    menu.entries.extend(pvboot.entries(found))
    if not (request.chainload or not usable):
        return menu, None
    index = pvboot.preferred(found, request.guest_type)
    if index is None:
        warnings.append(f"the guest has no Xen boot loader for --guest-type {request.guest_type}"
                        f" (it has: {', '.join(str(item.file) for item in found)})")
        return menu, None
    warnings.append(f"booting the guest's own Xen {found[index].kind.upper()} boot loader {found[index].file}"
                    + (" (--chainload)" if request.chainload else " (no usable boot configuration)"))
    return menu, str(first + index)


def _open(request: Request, warnings: list[str]) -> Any:
    """The devices of the request's image (a GuestImage's DeviceMap, kept with the image
    so ``devices`` can report partition starts and sizes)."""
    from .image import open_disks

    image = open_disks(request.disks, offset=request.offset, image_format=request.image_format,
                       opener=request.opener)
    warnings.extend(image.warnings)
    if request.action == "devices":
        return device_rows(image)
    return image.devices


def preopen(request: Request) -> None:
    """Open now the files the request's images name (backing files, parents, extents),
    through its opener, which keeps them open: a parent calls this before the sandbox
    drops privileges, so the child reads only descriptors it inherits."""
    if request.opener is None or request.action == "isconfig":
        return
    from .source import FileSource
    from .source.formats import open_format

    for fd, name in request.disks:
        open_format(FileSource(fd, name=name), image_format=request.image_format, opener=request.opener)
    request.opener.seal()  # the child asks only what was asked here


def load_menu(devices: DeviceMap, *, isconfig: bool = False, settings: dict[str, object] | None = None,
              config: str | None = None) -> Menu:
    from .boot.discover import find_menu

    chosen = None
    if config is not None:
        device, path = split_target(config)
        if device is None or not path.startswith("/"):
            raise UsageError(f"--config {config}: name the device and the path, as (hd0,gpt1)/EFI/fedora/grub.cfg")
        chosen = (device, path)
    return find_menu(devices, isconfig=isconfig, settings=settings, config=chosen)


def configs_data(devices: DeviceMap) -> list[Result]:
    """Every boot configuration on the guest, in the order they are searched (the first
    is the one read unless --config names another)."""
    from .boot.discover import find_configs

    found, _warnings = find_configs(devices)
    return [{"config": f"({device}){path}", "format": fmt} for device, path, fmt in found]


def open_refs(devices: DeviceMap, refs: tuple[FileRef, ...] | list[FileRef]) -> list[ByteSource]:
    """The byte sources of ``refs`` (kernels.open_ref: a UKI section is its window)."""
    from .kernels import open_ref

    return [open_ref(devices, ref) for ref in refs]


def _plan(request: Request, devices: DeviceMap, menu: Menu, warnings: list[str]) -> Result:
    from .select import boot

    choice, spec = boot(menu, request.entry)
    warnings.extend(choice.notes)
    kernel_info = None
    if request.guest_type != "any":
        from .guesttype import check
        from .kernels import Inspector

        inspector = Inspector(devices)
        choice, spec, notes = check(menu, choice, spec, inspector, request.guest_type,
                                    prefer_capable=request.prefer_capable)
        warnings.extend(notes)
        kernel_info = inspector.kernel(spec.kernel)
    result: Result = {
        "warnings": warnings,
        "kernel_info": kernel_info,
        "config": grub_path(menu.origin),
        "format": menu.format,
        "dialect": dialect_data(menu),
        "rows": [_row_data(row) for row in _rows(menu)],
        "menu_wait": _menu_wait(menu),
        "entry": {
            "title": choice.names[-1] if choice.names else "",
            "id": choice.entry.id,
            "path": ">".join(str(n) for n in choice.path),
            "titles": list(choice.names),
        },
        **spec_data(spec, request.extra_args),
    }
    if request.action == "extract":
        if spec.modules and len(request.module_fds) < len(spec.modules):
            result["modules_needed"] = len(spec.modules)  # nothing written: ask again with outputs
            return result
        result.update(_copy(request, devices, spec.kernel, spec.initrds, spec))
    return result


def modules_refused(result: Result) -> Unsupported:
    """What a front end that cannot express modules (pygrub's formats) says for an
    "extract" result with ``modules_needed``."""
    return Unsupported(f"the entry boots a {result['loader']} kernel with {result['modules_needed']} module(s),"
                       " which this output cannot express (guestboot extract, list --json and guestboot qemu can)")


def _host_given(request: Request, devices: DeviceMap, warnings: list[str]) -> Result:
    """pygrub's --kernel/--ramdisk (and an entry edited at the console): the host names
    the files; the first device that has the kernel holds it, and every ramdisk not named
    with a device ("(hd0,gpt2)/initrd"); no config is read."""
    assert request.kernel is not None
    device, _fs, path = locate(devices, request.kernel)
    kernel = FileRef(device, path, request.kernel)
    initrds = []
    for given in ((request.ramdisk,) if request.ramdisk else ()) + request.more_ramdisks:
        named, where = split_target(given)
        if not where.startswith("/"):
            raise UsageError(f"{given}: a path in the guest starts with '/'")
        initrds.append(FileRef(devices.canonical(named) or named if named else device, where, given))
    spec = BootSpec(kernel, tuple(initrds), request.extra_args, request.extra_args, "host")
    kernel_info = None
    if request.guest_type != "any":
        from .guesttype import IncapableKernel, NAMES, capable, describe
        from .kernels import Inspector

        kernel_info = Inspector(devices).kernel(kernel)
        if not capable(kernel_info, request.guest_type):
            raise IncapableKernel(f"kernel {kernel} is {describe(kernel_info)}, not {NAMES[request.guest_type]}")
    result: Result = {"warnings": warnings, "config": None, "format": None, "rows": [], "entry": None,
                      "kernel_info": kernel_info, **spec_data(spec)}
    if request.action == "extract":
        result.update(_copy(request, devices, kernel, tuple(initrds)))
    return result


def _copy(request: Request, devices: DeviceMap, kernel: FileRef, initrds: tuple[FileRef, ...],
          spec: BootSpec | None = None) -> Result:
    from .extract import OutputBudget, copy_sources
    from .kernel import describe

    kernel_sources = open_refs(devices, [kernel])
    initrd_sources = open_refs(devices, initrds)
    info = describe(kernel_sources[0])
    budget = OutputBudget()
    if request.kernel_fd is None:
        raise ValueError("extract needs kernel_fd")
    if spec is not None and spec.loader in MULTIBOOT:
        from .multiboot_out import write_as_loaded

        module_sources = open_refs(devices, [m.file for m in spec.modules])
        write_as_loaded(kernel_sources[0], request.kernel_fd, name="kernel", budget=budget)
        for index, (module, source) in enumerate(zip(spec.modules, module_sources)):
            write_as_loaded(source, request.module_fds[index], name=f"module {index + 1}", budget=budget,
                            unzip=module.unzip)
        return {"initrd": False, "modules_written": len(spec.modules), "kernel_format": info.kind,
                "kernel_version": info.version}
    copy_sources(kernel_sources, request.kernel_fd, name="kernel", budget=budget)
    if initrd_sources:
        if request.initrd_fd is None:
            raise ValueError("extract of an entry with an initrd needs initrd_fd")
        copy_sources(initrd_sources, request.initrd_fd, name="initrd", budget=budget)
    return {"initrd": bool(initrd_sources), "kernel_format": info.kind, "kernel_version": info.version}


def _isconfig(request: Request, warnings: list[str]) -> Result:
    """pygrub --isconfig: the "image" is a config file; what it boots, paths as written."""
    from .fs.onefile import OneFileSystem
    from .select import boot
    from .source import FileSource

    fd, name = request.disks[0]
    config = OneFileSystem(os.fsencode(name), FileSource(fd, name=name))
    menu = load_menu(DeviceMap.of({"hd0": config}), isconfig=True,
                     settings={"grub_dialect": request.grub_dialect})
    warnings.extend(menu.warnings)
    choice, spec = boot(menu, request.entry)
    warnings.extend(choice.notes)
    return {"warnings": warnings, "config": None, "format": menu.format, "rows": [], "entry": None,
            **spec_data(spec, request.extra_args)}


# --- inspect ---------------------------------------------------------------------------


def _inspect(request: Request, devices: DeviceMap, warnings: list[str]) -> Result:
    from .kernels import Inspector, survey

    inspector = Inspector(devices)
    result: Result = {"warnings": warnings, "config": None, "format": None, "entries": [], "config_error": None}
    try:
        menu, _chainload = _guest_menu(request, devices, warnings)
    except GuestbootError as err:
        result["config_error"] = str(err)
    else:
        result.update(menu_data(menu))
        _add_kernel_info(result["entries"], inspector)
    result["boot_files"] = survey(devices, inspector)
    return result


def _add_kernel_info(entries: list[Result], inspector: Any) -> None:
    """``kernel_info``/``initrd_info`` on every entry of a menu_data tree that boots a kernel."""
    for entry in entries:
        if "entries" in entry:
            _add_kernel_info(entry["entries"], inspector)
        if isinstance(entry.get("kernel"), dict):
            entry["kernel_info"] = inspector.kernel(_ref(entry["kernel"]))
            entry["initrd_info"] = [inspector.initrd(_ref(ref)) for ref in entry["initrds"]]
            if entry.get("modules"):  # each module as what it is: a kernel or an initrd
                entry["module_info"] = [inspector.module(_ref(ref)) for ref in entry["modules"]]


def _ref(data: Result) -> FileRef:
    section = data.get("section")
    return FileRef(data["device"], data["path"], data["written"],
                   (section["offset"], section["size"]) if section else None)


# --- ls / cat --------------------------------------------------------------------------


def split_target(target: str) -> tuple[str | None, str]:
    """Where a user's path points: "(hd0,gpt2)/grub" (GRUB's form, what ``list`` prints),
    "gpt2:/grub", "hd0,gpt2:/grub", "(hd0,gpt2):/grub" → (device, "/grub"); "/boot" →
    (None, "/boot"): the first file system that has it."""
    if target.startswith("("):
        close = target.find(")")
        if close < 0:
            raise UsageError(f"{target}: no closing ')' after the device name")
        device, path = target[1:close], target[close + 1 :]
        path = path[1:] if path.startswith(":") else path
        return device, path or "/"
    if ":" in target and not target.startswith("/"):
        part, _, path = target.partition(":")
        device = part if part.startswith("hd") else f"hd0,{part}"
        return device, path or "/"
    return None, target


def locate(devices: DeviceMap, target: str) -> tuple[str, Any, str]:
    """The (device, file system, path) a target names; without a device, the first file
    system in GRUB's device order that has the path."""
    from .fs.path import exists

    device, path = split_target(target)
    if not path.startswith("/"):
        raise UsageError(f"{target}: a path in the guest starts with '/'")
    if device is not None:
        fs = devices.filesystem(device)
        return devices.canonical(device) or device, fs, path
    found = devices.filesystems()
    if not found:
        broken = [d.problem for d in devices if isinstance(d.problem, GuestbootError)]
        if broken:  # a file system we could not read: its error, not "nothing there"
            raise type(broken[0])(f"no readable file system in the image; {broken[0]}")
        raise NotFound("no readable file system in the image")
    for name, fs in found:
        if exists(fs, path) is not None:
            return name, fs, path
    raise NotFound(f"{path}: not on any file system of the image ({', '.join(n for n, _ in found)})")


def _ls_or_cat(request: Request, devices: DeviceMap, warnings: list[str]) -> Result:
    from .fs.base import FileType
    from .fs.path import listdir, open_file, resolve

    if request.path is None:
        raise ValueError(f"{request.action} needs a path")
    device, fs, path = locate(devices, request.path)
    where = f"({device}){path}"
    if request.action == "cat":
        from .extract import copy_sources

        if request.out_fd is None:
            raise ValueError("cat needs out_fd")
        try:
            source = open_file(fs, path)
        except GuestbootError as err:
            raise err.located(f"({device})")
        size = copy_sources([source], request.out_fd, name="standard output")
        return {"warnings": warnings, "device": device, "path": path, "size": size}
    try:
        node = resolve(fs, path, follow=True)
        if node.type is not FileType.DIR:
            listing = [_file_row(path.rstrip("/").rsplit("/", 1)[-1].encode(), node, fs)]
        else:
            listing = [_file_row(name, child, fs) for name, child in sorted(listdir(fs, path), key=lambda i: i[0])]
    except GuestbootError as err:
        raise err.located(f"({device})")
    return {"warnings": warnings, "device": device, "path": path, "listed": where, "files": listing}


def _file_row(name: bytes, node: Any, fs: Any) -> Result:
    from .fs.base import FileType

    kind = {FileType.DIR: "dir", FileType.REG: "file", FileType.LNK: "link"}.get(node.type, "other")
    row: Result = {"name": name.decode("utf-8", "backslashreplace"), "type": kind, "size": node.size}
    if node.type is FileType.LNK:
        row["target"] = fs.readlink(node).decode("utf-8", "backslashreplace")
    return row


def device_rows(image: Any) -> list[Result]:
    """GRUB's devices in probe order, with where each one lies on its disk."""
    rows = []
    for device in image.devices:
        volume = device.volume
        row: Result = {
            "name": device.name,
            "start": volume.start if volume is not None else None,
            "size": volume.source.size if volume is not None else None,
            "type": (volume.type_id or None) if volume is not None else None,
            "fs": None, "uuid": None, "label": None, "problem": None,
        }
        if device.fs is None:
            row["problem"] = str(device.problem)
        else:
            row.update(fs=device.fs.kind, uuid=device.fs.uuid, label=device.fs.label or None)
        rows.append(row)
    return rows


# --- plain data --------------------------------------------------------------------------


def grub_path(origin: str) -> str:
    """"hd0,gpt2:/grub/grub.cfg" as GRUB writes it: "(hd0,gpt2)/grub/grub.cfg"."""
    device, sep, path = origin.partition(":")
    return f"({device}){path}" if sep else origin


def spec_data(spec: BootSpec, extra_args: str = "") -> Result:
    """What an entry loads. ``kernel``/``initrds`` carry the device, the path on it and the
    path as the config wrote it; ``args`` has ``extra_args`` appended after one space."""
    args = spec.args + (" " + extra_args if extra_args else "")  # as pygrub: one space, always
    return {
        "kernel": _ref_data(spec.kernel),
        "initrds": [_ref_data(ref) for ref in spec.initrds],
        "args": args,
        "cmdline": spec.cmdline,
        "loader": spec.loader,
        "modules": [{**_ref_data(m.file), "args": m.args, "unzip": m.unzip} for m in spec.modules],
    }


def _ref_data(ref: FileRef) -> Result:
    data = {"device": ref.device, "path": ref.path, "written": ref.written or ref.path, "grub": str(ref)}
    if ref.section is not None:
        data["section"] = {"offset": ref.section[0], "size": ref.section[1]}
    return data


def _menu_wait(menu: Menu) -> int | None:
    from .boot.timeout import menu_wait

    return menu_wait(menu)


def _rows(menu: Menu) -> list[Any]:
    from .select import rows

    return rows(menu)


def _row_data(row: Any) -> Result:
    return {"depth": row.depth, "path": ">".join(str(n) for n in row.path), "title": row.title, "id": row.id,
            "submenu": row.is_submenu, "default": row.is_default}


def menu_data(menu: Menu) -> Result:
    """The menu as data: display rows, and the entry tree with what each entry boots (or
    why it cannot; each entry is evaluated, within the config's step budget)."""
    from .select import choose

    try:
        default_path: tuple[int, ...] | None = tuple(choose(menu).path)
    except GuestbootError:  # a menu with no bootable entry still lists
        default_path = None
    return {
        "config": grub_path(menu.origin),
        "format": menu.format,
        "dialect": dialect_data(menu),
        "default": list(default_path) if default_path is not None else None,
        "rows": [_row_data(row) for row in _rows(menu)],
        "entries": [_entry_data(e, (i,), default_path) for i, e in enumerate(menu.entries)],
    }


def dialect_data(menu: Menu) -> Result | None:
    """The boot loader's variant the config was evaluated as, and why; None when its
    format has none."""
    return {"name": menu.dialect, "reason": menu.dialect_reason} if menu.dialect else None


def _entry_data(entry: MenuEntry, path: tuple[int, ...], default_path: tuple[int, ...] | None) -> Result:
    out: Result = {
        "path": ">".join(str(n) for n in path),
        "title": entry.title,
        "id": entry.id,
        "default": default_path is not None and default_path == path,
    }
    if entry.classes:
        out["classes"] = list(entry.classes)
    if entry.submenu is not None:
        out["entries"] = [_entry_data(e, path + (i,), default_path) for i, e in enumerate(entry.submenu.entries)]
        return out
    if entry.run is None:
        out["error"] = "nothing to boot"
        return out
    try:
        spec = entry.run()
    except GuestbootError as err:
        out["error"] = str(err)
        return out
    out.update(spec_data(spec))
    return out
