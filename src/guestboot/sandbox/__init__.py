"""Run the part that reads guest bytes in a confined child process (on by default).

The parent opens everything the run needs (the images read-only, the output files) and
then calls ``run(work, keep, settings)``: it forks; the child keeps only the descriptors
in ``keep`` (and the result pipe), confines itself layer by layer (confine.py: namespaces,
an empty chroot, an unprivileged uid, rlimits, no_new_privs, a seccomp filter) before it
reads a single guest byte, does ``work`` (``pipeline.run`` on those descriptors) and sends a
JSON result back. The parent enforces a size cap on that result and a wall-clock limit on
the whole child, and writes what the front end prints.

Every way the child can end maps to a documented exit code: a guestboot error comes back
as the same class (with its warnings); running out of its memory, CPU time, file size or
wall-clock time is LimitExceeded (5); a result larger than LIMITS.max_child_result is
LimitExceeded; a uid drop that does not take is PermissionDenied (9); a crash, a kill by
a signal or a garbled result is InternalError (70).

Once confined, the child can open nothing but guestboot's own code, for reading (its root
is a read-only tmpfs with a read-only bind mount of the package: coderoot.py), so a run
still imports a driver or config format only when it meets one; the standard and codec
modules are loaded before (``preload_native``). Where no mount namespace can be made, it
imports every module first (``preload``) and then can open no file at all.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Iterable, Mapping, NamedTuple

from .. import errors
from ..limits import LIMITS, MiB

MAX_ID = (1 << 32) - 2  # uid_t is 32 bits; (uid_t)-1 means "unchanged" to setresuid
DEFAULT_ID = 65534  # "nobody"/"nogroup": the uid and gid a root run reads guest bytes as
ENV_FILE_SIZE = "PYGRUB_MAX_FILE_SIZE_MB"  # pygrub's names (XSA-443), honoured as pygrub does
ENV_MEMORY = "PYGRUB_MAX_RAM_USAGE_MB"


class Settings(NamedTuple):
    """How the child is confined. ``uid``/``gid``: what a root parent drops to (ignored
    when not root: no other user can be become). ``memory``: address space the child may
    add to what it holds when it starts; ``file_size``: the largest file it may write."""

    uid: int | None = DEFAULT_ID
    gid: int | None = DEFAULT_ID
    wall_seconds: float = LIMITS.sandbox_wall_seconds
    cpu_seconds: int = LIMITS.sandbox_cpu_seconds
    memory: int = LIMITS.sandbox_memory
    file_size: int = LIMITS.max_output_file
    namespaces: bool = True
    seccomp: bool = True


def settings_for(uid: int | None = None, gid: int | None = None,
                 environ: Mapping[str, str] = os.environ) -> Settings:
    """The settings of a run: --runas's ids (else DEFAULT_ID), the memory and file-size
    limits from pygrub's environment variables (in MiB) when set. A value that is not a
    positive whole number is a UsageError."""
    values: dict[str, Any] = {}
    if uid is not None:
        values["uid"], values["gid"] = uid, uid if gid is None else gid
    for name, field in ((ENV_FILE_SIZE, "file_size"), (ENV_MEMORY, "memory")):
        text = environ.get(name)
        if text is None or text == "":
            continue
        if not text.strip().isdigit() or int(text) <= 0 or int(text) > 1 << 40:
            raise errors.UsageError(f"{name}={text!r}: give a number of MiB, 1 or more")
        values[field] = int(text) * MiB
    return Settings(**values)


def runas_ids(value: str) -> tuple[int, int]:
    """--runas: a user name (its uid and primary gid) or a number, which is both the uid
    and the gid as in pygrub (libxl passes a uid from its bootloader_restrict range, with
    a group of the same number). ValueError says what is wrong: an unknown name, a number
    out of uid_t's range, 0 (root: no privileges would be dropped)."""
    text = value.strip()
    if text.lstrip("-").isdigit():
        number = int(text)
        if number == 0:
            raise ValueError("--runas=0 would read guest bytes as root; give an unprivileged user")
        if not 0 < number <= MAX_ID:
            raise ValueError(f"--runas={value}: a user id is a number from 1 to {MAX_ID}")
        return number, number
    import pwd

    try:
        entry = pwd.getpwnam(text)
    except (KeyError, ValueError):
        raise ValueError(f"--runas={value}: no such user (give a user name or a numeric user id)") from None
    if entry.pw_uid == 0:
        raise ValueError(f"--runas={value} is root; give an unprivileged user")
    return entry.pw_uid, entry.pw_gid


def check_target(uid: int, gid: int) -> None:
    """Refuse, before anything is opened, what cannot work: an explicit --runas when not
    root, or a "drop" to root."""
    for what, value in (("uid", uid), ("gid", gid)):
        if not 0 <= value <= MAX_ID:
            raise errors.UsageError(f"--runas: {what} {value} is out of range (0 to {MAX_ID})")
    if uid == 0:
        raise errors.UsageError("--runas=0 would read guest bytes as root; give an unprivileged user")
    if os.geteuid() != 0:
        raise errors.PermissionDenied(
            f"--runas needs root to change to uid {uid} (this runs as uid {os.geteuid()})"
        )


# The standard and codec modules the library imports (at the top of a module or inside a
# function), and the encodings it decodes names with: loaded before the child confines
# itself, since some need shared libraries (zlib, liblzma, OpenSSL, libffi) that the
# confined child cannot open. tests/test_sandbox_preload.py checks that this covers every
# such import in the library.
PRELOAD_MODULES = ("json", "signal", "errno", "fnmatch", "zlib", "lzma", "bz2", "hashlib", "lz4.block",
                   "backports.zstd", "compression.zstd", "ctypes", "select", "array", "bisect",
                   "struct", "resource", "importlib.util", "importlib.machinery",
                   "contextlib")  # Python 3.13 no longer imports contextlib at start-up
ENCODINGS = ("ascii", "latin-1", "cp437", "utf-16-le", "utf-16-be", "utf-8")


def preload_native() -> None:
    """Load what PRELOAD_MODULES and ENCODINGS name, and the modules of formats
    registered from outside the package."""
    import codecs
    import importlib

    for name in PRELOAD_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:  # optional codecs (lz4, zstd): the library says Unsupported
            pass
    for encoding in ENCODINGS:
        codecs.lookup(encoding)
    import hashlib

    hashlib.blake2b(b"")  # OpenSSL-backed constructors load their provider on first use
    hashlib.sha256(b"")
    for name in _registered_modules():
        if not name.startswith("guestboot."):
            importlib.import_module(name)
    importlib.import_module("guestboot.crc32c")  # picks its C implementation from site-packages at import


def preload() -> None:
    """Import every guestboot module (and so every standard module they use) now: what
    a child without a code root does before it chroots into an empty directory."""
    import importlib

    for name in _package_modules():
        importlib.import_module(name)
    for name in _registered_modules():  # a format registered from outside the package too
        importlib.import_module(name)
    preload_native()


def _package_modules() -> list[str]:
    """Every module of the package but the front ends (cli/, __main__), found by listing
    its directories (pkgutil's walk would import inspect, ast and tokenize: ~15 ms)."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    found = []
    pending = [(package, "guestboot")]
    while pending:
        directory, prefix = pending.pop()
        for entry in sorted(os.scandir(directory), key=lambda e: e.name):
            if entry.is_dir() and entry.name != "cli" and os.path.exists(os.path.join(entry.path, "__init__.py")):
                found.append(f"{prefix}.{entry.name}")
                pending.append((entry.path, f"{prefix}.{entry.name}"))
            elif entry.name.endswith(".py") and entry.name not in ("__init__.py", "__main__.py") and entry.is_file():
                found.append(f"{prefix}.{entry.name[:-3]}")
    return found


def _registered_modules() -> list[str]:
    """The modules the registries name (formats, file systems, stacked volumes, config
    formats), which the pipeline imports by name when it meets one."""
    from ..boot.discover import FORMATS
    from ..fs import PROBES
    from ..source.formats import READERS
    from ..volume import STACKS

    return [module for _name, module in (*READERS, *PROBES, *STACKS)] + [fmt.module for fmt in FORMATS]


EMPTY_PREFIX = "guestboot-empty-"
MAX_STALE_SCAN = 4096  # entries of $TMPDIR looked at for leftovers, per run


def _remove_stale(base: str, older_than: float) -> None:
    """Remove the empty directories that runs killed with SIGKILL left behind: ours (this
    euid), made more than ``older_than`` seconds ago (a run's wall-clock limit: no live run
    is older, even one whose pid this process cannot see, in another PID namespace), named
    after a process that no longer exists, and empty (rmdir refuses anything else). At
    most MAX_STALE_SCAN entries of ``base`` are looked at."""
    import time

    before = time.time() - older_than
    try:
        with os.scandir(base) as entries:
            for count, entry in enumerate(entries):
                if count >= MAX_STALE_SCAN:
                    break
                if not entry.name.startswith(EMPTY_PREFIX):
                    continue
                owner = entry.name[len(EMPTY_PREFIX):].split("-", 1)[0]
                if not owner.isdigit() or int(owner) == os.getpid():
                    continue
                try:
                    info = entry.stat(follow_symlinks=False)
                    if info.st_uid != os.geteuid() or info.st_mtime > before:
                        continue
                    os.kill(int(owner), 0)
                except ProcessLookupError:  # its run is over: the directory is a leftover
                    try:
                        os.rmdir(entry.path)
                    except OSError:
                        pass
                except (OSError, OverflowError):
                    continue
    except OSError:
        pass


def _empty_dir(wall_seconds: float) -> str | None:
    """A new empty directory, read-only even to its owner, for the child's chroot (the
    parent removes it when the child has ended). Its name carries this process's pid, so
    that a later run removes it if this one is killed before it can (SIGKILL)."""
    base = os.environ.get("TMPDIR") or "/tmp"
    _remove_stale(base, wall_seconds)
    for _ in range(16):
        path = os.path.join(base, f"{EMPTY_PREFIX}{os.getpid()}-{os.urandom(6).hex()}")
        try:
            os.mkdir(path, 0o555)
            return path
        except FileExistsError:
            continue
        except OSError:
            return None
    return None


def run(work: Callable[[], dict[str, Any]], keep: Iterable[int], settings: Settings,
        report: list[str] | None = None) -> dict[str, Any]:
    """Run ``work`` in a confined child that holds only ``keep``; return its JSON-able
    result or raise the typed error it ended with. ``report`` receives what each layer
    did (for --debug)."""
    import select
    import time

    from .child import decode_end, run_child

    keep = tuple(sorted(set(keep)))
    empty = _empty_dir(settings.wall_seconds)
    read_end, write_end = os.pipe()
    deadline = time.monotonic() + settings.wall_seconds
    parent = os.getpid()
    try:
        pid = os.fork()
    except OSError:
        os.close(read_end)
        os.close(write_end)
        raise
    if pid == 0:  # the child: never returns into the caller's code
        code = 70
        try:
            code = run_child(write_end, keep, settings, empty, work, parent)
        finally:
            os._exit(code)
    os.close(write_end)
    chunks: list[bytes] = []
    size = 0
    ended = None  # why the parent stopped reading: None (end of data), "time", "size"
    status = rusage = None
    try:
        poller = select.poll()
        poller.register(read_end, select.POLLIN | select.POLLHUP)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                ended = "time"
                break
            if not poller.poll(min(left, 1.0) * 1000):
                continue
            chunk = os.read(read_end, 65536)
            if not chunk:
                break
            size += len(chunk)
            if size > LIMITS.max_child_result:
                ended = "size"
                break
            chunks.append(chunk)
        while ended is None:  # the child closed the pipe; wait for its end, within the deadline
            _pid, status, rusage = os.wait4(pid, os.WNOHANG)
            if _pid:
                break
            if time.monotonic() >= deadline:
                ended = "time"
            else:
                time.sleep(0.002)
    finally:
        os.close(read_end)
        if status is None:
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
            _pid, status, rusage = os.wait4(pid, 0)
        if empty is not None:
            try:
                os.rmdir(empty)
            except OSError:
                pass
    return decode_end(b"".join(chunks), status, rusage, ended, settings, report)
