"""``search`` (commands/search.c, search_wrap.c), its search.* aliases, and ``probe``."""

from __future__ import annotations

from ...errors import GuestbootError
from ..budget import WORK_ITEM
from . import errors as E
from . import files
from .errors import GrubError
from .interp import Interp
from .parser import Block
from .options import OPTIONAL, VALUE, Opt, parse
from .registry import COMMANDS, Command, command


# --- search (commands/search.c, search_wrap.c) ---------------------------------------
_SEARCH_OPTS = [
    Opt("file", long="file", short="f"),
    Opt("label", long="label", short="l"),
    Opt("fs-uuid", long="fs-uuid", short="u"),
    Opt("set", long="set", short="s", takes=OPTIONAL),
    Opt("no-floppy", long="no-floppy", short="n"),
    Opt("hint", long="hint", short="h", takes=VALUE, repeatable=True),
    Opt("hint-ieee1275", long="hint-ieee1275", takes=VALUE, repeatable=True),
    Opt("hint-bios", long="hint-bios", takes=VALUE, repeatable=True),
    Opt("hint-baremetal", long="hint-baremetal", takes=VALUE, repeatable=True),
    Opt("hint-efi", long="hint-efi", takes=VALUE, repeatable=True),
    Opt("hint-arc", long="hint-arc", takes=VALUE, repeatable=True),
]


def search(it: Interp, kind: str, key: str, var: str | None, hints: list[str], no_floppy: bool) -> int:
    # hinted devices first, then every device, each tried once (trying a device again
    # gives the same answer: 90,000 copies of one hint probe one device)
    it.sh.budget.charge(WORK_ITEM * len(hints), it.at)  # each hint is looked up
    candidates: dict[str, None] = {}
    for hint in hints:
        name = it.sh.devices.canonical(hint.rstrip(","))
        if name is not None:
            candidates[name] = None
    candidates.update(dict.fromkeys(it.sh.devices.names()))
    found: list[str] = []
    for name in candidates:
        if no_floppy and name.startswith("fd"):
            continue
        device = it.sh.devices.get(name)
        fs = device.fs if device is not None else None
        if fs is None or name in found:
            continue
        if kind == "fs-uuid":
            hit = fs.uuid is not None and fs.uuid.lower() == key.lower()
        elif kind == "label":
            hit = fs.label is not None and fs.label == key
        else:
            try:
                files.open_ref(it, f"({name}){key}")
                hit = True
            except (GrubError, GuestbootError):
                hit = False
        if hit:
            found.append(name)
            if var is not None:
                it.set(var, name)
                return 0
    if not found:
        raise GrubError(E.FILE_NOT_FOUND, f"no such device: {key}")
    it.echo(" ".join(found) + "\n")
    return 0


@command("search")
def cmd_search(it: Interp, args: list[str], block: Block | None) -> int:
    state, rest = parse(args, _SEARCH_OPTS)
    if not rest:
        raise GrubError(E.BAD_ARGUMENT, "one argument expected")
    var: str | None = None
    if "set" in state:
        var = state["set"] if isinstance(state["set"], str) else "root"
    hints = [h for key in ("hint", "hint-bios", "hint-baremetal") for h in state.get(key, [])]  # type: ignore[union-attr]
    for kind in ("label", "fs-uuid", "file"):
        if kind in state:
            return search(it, kind, rest[0], var, hints, "no-floppy" in state)
    raise GrubError(E.INVALID_COMMAND, "unspecified search type")


def _search_alias(kind: str) -> Command:
    def run(it: Interp, args: list[str], block: Block | None) -> int:
        if not args:
            raise GrubError(E.BAD_ARGUMENT, "one argument expected")
        return search(it, kind, args[0], args[1] if len(args) > 1 else None, args[2:], False)

    return run


COMMANDS["search.fs_uuid"] = _search_alias("fs-uuid")
COMMANDS["search.fs_label"] = _search_alias("label")
COMMANDS["search.file"] = _search_alias("file")


# --- loopback (disk/loopback.c) ---------------------------------------------------------
_LOOPBACK_OPTS = [Opt("delete", long="delete", short="d")]


@command("loopback")
def cmd_loopback(it: Interp, args: list[str], block: Block | None) -> int:
    """``loopback NAME FILE``: a disk NAME that reads FILE, with a file system of its own
    (an ISO or disk image on the guest's disk). The device stays for the whole evaluation,
    as GRUB's stay for the boot; ``-d`` is accepted and keeps it (an entry run later may
    still read it). A file no driver recognises gives a device without a file system."""
    state, rest = parse(args, _LOOPBACK_OPTS)
    if "delete" in state:
        if not rest:
            raise GrubError(E.BAD_ARGUMENT, "device name required")
        return 0
    if len(rest) != 2:
        raise GrubError(E.BAD_ARGUMENT, "two arguments expected")
    name, text = rest
    ref, _node, _fs = files.open_ref(it, text)
    backing = str(ref)

    def make():
        from ...fs import probe

        try:
            source = it.sh.devices.open(ref.device, ref.path)
            return probe(source), None
        except GuestbootError as exc:
            return None, exc

    try:
        it.sh.devices.add_file_disk(name, backing, make)
    except ValueError:
        raise GrubError(E.BAD_ARGUMENT, "device name already exists") from None
    return 0


_PROBE_OPTS = [
    Opt("set", long="set", short="s", takes=VALUE),
    Opt("driver", long="driver", short="d"),
    Opt("partmap", long="partmap", short="p"),
    Opt("fs", long="fs", short="f"),
    Opt("fs-uuid", long="fs-uuid", short="u"),
    Opt("label", long="label", short="l"),
    Opt("part-uuid", long="part-uuid"),
]


# The names GRUB's file-system drivers give themselves (grub-core/fs/*.c, ``.name``):
# what ``probe --fs`` prints. One ext2 driver reads ext2/3/4; squashfs 4 is "squash4".
GRUB_FS_NAMES = {"ext2": "ext2", "ext3": "ext2", "ext4": "ext2", "vfat": "fat", "exfat": "exfat",
                 "iso9660": "iso9660", "xfs": "xfs", "btrfs": "btrfs", "squashfs": "squash4"}
# The disk driver of every device on the platform we evaluate as (i386-pc, dialect.py):
# what ``probe --driver`` prints there (real GRUB 2.06 on SeaBIOS: "biosdisk").
DISK_DRIVER = "biosdisk"


@command("probe")
def cmd_probe(it: Interp, args: list[str], block: Block | None) -> int:
    """commands/probe.c: one property of a device. --part-uuid is the GPT partition GUID
    in lower case, or for an MBR partition "<disk signature>-<number>" as "%08x-%02x"
    (real GRUB 2.06: "5eedb007-02"), "none" for a device that is no partition."""
    state, rest = parse(args, _PROBE_OPTS)
    if not rest:
        raise GrubError(E.BAD_ARGUMENT, "device name required")
    name = rest[0][1:-1] if rest[0].startswith("(") and rest[0].endswith(")") else rest[0]
    if "driver" in state or "part-uuid" in state or "partmap" in state:
        canonical = it.sh.devices.canonical(name)
        if canonical is None:
            raise GrubError(E.UNKNOWN_DEVICE, f"disk `{name}' not found")
        volume = it.sh.devices.get(canonical).volume
        partition = volume.grub_name if volume is not None and volume.disk else ""
        if "driver" in state:
            value: str | None = DISK_DRIVER
        elif "part-uuid" in state:
            value = volume.uuid.lower() if partition and volume is not None and volume.uuid else "none"
        else:
            value = partition.rstrip("0123456789") if partition else None
    else:
        _, fs = files.device(it, name)
        if "fs-uuid" in state:
            value = fs.uuid
        elif "label" in state:
            value = fs.label
        elif "fs" in state:
            value = GRUB_FS_NAMES.get(fs.kind, fs.kind)
        else:
            raise GrubError(E.BAD_ARGUMENT, "unrecognised target")
    if value is None:
        raise GrubError(E.BAD_FS, f"({name}) has no such property")
    if isinstance(state.get("set"), str):
        it.set(str(state["set"]), value)
    else:
        it.echo(value)
    return 0
