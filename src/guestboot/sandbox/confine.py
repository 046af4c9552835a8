"""The child's side of the sandbox: each layer it puts between guest bytes and the host,
in order, before the first guest byte is read. Each step returns a line saying what it did
(or why it could not), which ``--debug`` shows.

1. Close every descriptor but the ones given (the images, the outputs, the result pipe).
2. New namespaces (unshare(2)): mount, IPC, network, PID, and as root also UTS; not root,
   a user namespace first (where the kernel allows unprivileged ones) that maps only our
   own uid and gid, so that the others can be made. A step the kernel refuses is skipped
   and said. A new PID namespace takes effect for children only, so the child forks once
   more: the grandchild is PID 1 of the namespace and does the work; the child waits for
   it and passes its end on (a signal as 128 + its number).
3. With a mount namespace, make the empty directory a read-only tmpfs holding only a
   read-only bind mount of guestboot's package (coderoot.py), so that its modules still
   import when a run needs them, and load the standard and codec modules now; without
   one, import every module now. Then chroot into it and chdir("/").
4. Root: drop to the unprivileged uid/gid (setgroups([]), setresgid, setresuid; the
   kernel clears every capability). Not root: clear the capabilities the user namespace
   gave (capset).
5. rlimits: address space (what the child holds plus the memory budget), file size, CPU
   time, descriptors (none new; with the code root, a few for module files), no
   processes, no core files, no locked memory, no POSIX message queues.
6. no_new_privs and the seccomp filter (seccomp.py); with the code root it also lets
   openat open files for reading (all it can reach is guestboot's code).
"""

from __future__ import annotations

import ctypes
import os
import resource
import signal
from typing import Iterable, NamedTuple

# include/uapi/linux/sched.h
CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
NAMESPACES = (("mount", CLONE_NEWNS), ("ipc", CLONE_NEWIPC), ("net", CLONE_NEWNET), ("uts", CLONE_NEWUTS),
              ("pid", CLONE_NEWPID))
PR_SET_PDEATHSIG = 1
RLIMIT_MSGQUEUE = getattr(resource, "RLIMIT_MSGQUEUE", 12)
# include/uapi/linux/capability.h: _LINUX_CAPABILITY_VERSION_3, two 32-bit data words
CAPABILITY_VERSION_3 = 0x20080522


class Plan(NamedTuple):
    """What the child does. ``uid``/``gid``: drop to these (root only); ``empty``: the
    directory to chroot into; limits in bytes and seconds."""

    uid: int | None
    gid: int | None
    empty: str | None
    memory: int
    file_size: int
    cpu_seconds: int
    namespaces: bool = True
    seccomp: bool = True
    parent: int | None = None  # the pid of the process that forked this one


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def close_other_fds(keep: Iterable[int]) -> str:
    kept = sorted(set(keep))
    low = 0
    for fd in kept:
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, 1 << 20)
    return f"descriptors kept: {', '.join(map(str, kept))}; every other one closed"


def _unshare(libc: ctypes.CDLL, flags: int) -> int:
    """0, or the errno the kernel answered."""
    return 0 if libc.unshare(flags) == 0 else ctypes.get_errno()


def _write(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def enter_namespaces(libc: ctypes.CDLL, as_root: bool) -> tuple[list[str], set[str]]:
    """Lines for --debug, and the namespaces made (with "pid", the caller must fork)."""
    lines = []
    user_ns = False
    if not as_root:
        uid, gid = os.getuid(), os.getgid()
        err = _unshare(libc, CLONE_NEWUSER)
        if err:
            lines.append(f"no user namespace ({os.strerror(err)}): no other namespace and no chroot without root")
            return lines, set()
        try:
            _write("/proc/self/setgroups", "deny")
            _write("/proc/self/uid_map", f"{uid} {uid} 1")
            _write("/proc/self/gid_map", f"{gid} {gid} 1")
        except OSError as err2:
            lines.append(f"user namespace made, but its id maps could not be written ({err2.strerror})")
        user_ns = True
    made, refused = [], []
    for name, flag in NAMESPACES:
        if name == "uts" and not as_root and not user_ns:
            continue
        err = _unshare(libc, flag)
        (refused if err else made).append(name if not err else f"{name} ({os.strerror(err)})")
    prefix = "user namespace (our uid only); " if user_ns else ""
    lines.append(prefix + "new namespaces: " + (", ".join(made) or "none")
                 + (f"; refused: {', '.join(refused)}" if refused else ""))
    return lines, set(made)


def become_pid_one() -> None:
    """Fork into the new PID namespace. The parent (this process) waits and ends as its
    child ended; only the child returns. If the waiting process is killed (the wall-clock
    limit), the kernel kills the child too (PR_SET_PDEATHSIG)."""
    pid = os.fork()
    if pid:
        os.closerange(0, 1 << 20)
        _, status = os.waitpid(pid, 0)
        if os.WIFSIGNALED(status):
            os._exit(128 + os.WTERMSIG(status))
        os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 70)
    # getppid() is 0 inside the new namespace, so a waiter killed before this line goes
    # unnoticed: the child then finds the result pipe closed, and its CPU limit still holds
    _libc().prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def chroot_empty(path: str | None, what: str) -> str:
    if path is None:
        return "no chroot"
    try:
        os.chroot(path)
        os.chdir("/")
    except OSError as err:
        return f"no chroot ({err.strerror})"
    return f"chroot into {what}"


def drop_ids(libc: ctypes.CDLL, uid: int | None, gid: int | None) -> str:
    """Root: to uid/gid, no supplementary groups. PermissionError when the drop does not
    take. Not root: clear the capabilities a user namespace gave (nothing to change)."""
    if uid is None or gid is None:
        header = (ctypes.c_uint32 * 2)(CAPABILITY_VERSION_3, 0)
        data = (ctypes.c_uint32 * 6)()
        libc.capset(header, data)  # harmless without a user namespace: no capabilities to clear
        return f"uid {os.getuid()}, gid {os.getgid()} (not root: no other user to become); capabilities cleared"
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    if os.getresuid() != (uid, uid, uid) or os.getresgid() != (gid, gid, gid) or os.getgroups():
        raise PermissionError(f"could not drop to uid {uid}, gid {gid}")
    return f"uid {uid}, gid {gid}, no supplementary groups"


def _address_space() -> int:
    """Bytes of address space this process holds now (/proc/self/statm, in pages)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[0]) * resource.getpagesize()
    except (OSError, ValueError, IndexError):
        return 0


def set_rlimits(plan: Plan, held: int, files: int) -> str:
    """``held``: address space measured before the chroot (the budget is on top);
    ``files``: RLIMIT_NOFILE (0: no new descriptor at all; with a code root, room for
    the module files a lazy import opens)."""
    wanted = [
        ("AS", resource.RLIMIT_AS, held + plan.memory if held else plan.memory),
        ("FSIZE", resource.RLIMIT_FSIZE, plan.file_size),
        ("CPU", resource.RLIMIT_CPU, plan.cpu_seconds),
        ("NOFILE", resource.RLIMIT_NOFILE, files),
        ("NPROC", resource.RLIMIT_NPROC, 0),
        ("CORE", resource.RLIMIT_CORE, 0),
        ("MEMLOCK", resource.RLIMIT_MEMLOCK, 0),
        ("MSGQUEUE", RLIMIT_MSGQUEUE, 0),
    ]
    done, missing = [], []
    for name, limit, value in wanted:
        # CPU: SIGXCPU at the soft limit (a Python handler makes it a typed error), SIGKILL
        # one second later if the interpreter is stuck in C code
        hard = value + 1 if limit == resource.RLIMIT_CPU else value
        try:
            resource.setrlimit(limit, (value, hard))
            done.append(f"{name}={value}")
        except (ValueError, OSError):
            missing.append(name)
    return "rlimits " + " ".join(done) + (f"; not set: {' '.join(missing)}" if missing else "")


def enter(plan: Plan, keep: Iterable[int]) -> list[str]:
    """Every layer, in order; returns what was done (a layer the kernel refuses is
    skipped and said). Raises PermissionError if the uid drop does not take: reading
    guest bytes as root is never a fallback."""
    libc = _libc()
    # killed with the process that started it (libxl may SIGTERM it after 120 s; the
    # wall-clock limit lives in that process), and if that one is already gone, end now
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if plan.parent is not None and os.getppid() != plan.parent:
        os._exit(70)
    keep = tuple(keep)
    lines = [close_other_fds(keep)]
    as_root = os.geteuid() == 0
    held = _address_space()
    made: set[str] = set()
    if plan.namespaces:
        more, made = enter_namespaces(libc, as_root)
        lines += more
        if "pid" in made:
            become_pid_one()
            lines.append(f"PID 1 of a new PID namespace (pid {os.getpid()})")
    code_root = False
    if "mount" in made and plan.empty is not None:
        from . import coderoot

        try:
            lines.append(coderoot.build(libc, plan.empty, coderoot.code_dirs()))
            code_root = True
        except OSError as err:
            lines.append(f"no code root ({err.strerror}): every module imported now")
    from . import preload, preload_native

    preload_native() if code_root else preload()  # what cannot be imported once confined
    chrooted = chroot_empty(plan.empty, "that root" if code_root else "an empty directory it cannot write")
    lines.append(chrooted)
    code_root = code_root and chrooted.startswith("chroot")
    lines.append(drop_ids(libc, plan.uid if as_root else None, plan.gid if as_root else None))
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # a change of uid/gid cleared it
    lines.append(set_rlimits(plan, held, max(keep, default=2) + 64 if code_root else 0))
    if plan.seccomp:
        from .seccomp import install

        lines.append(install(libc, read_opens=code_root))
    return lines
