"""A seccomp filter of our own: the system calls reading and writing the descriptors the
child was given needs, and nothing else.

Written as classic BPF and installed with prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER)
through ctypes (Linux's Documentation/userspace-api/seccomp_filter.rst). libseccomp's
Python binding is not on PyPI and not in every distribution's Python, and the filter is
twenty lines of data: one architecture check, then one comparison per allowed call.

What the filter does, per call (``struct seccomp_data``: nr at offset 0, arch at 4):
- another architecture's calling convention (a 32-bit int 0x80 call on x86_64, or the
  x32 ABI's numbers >= 0x40000000): the process is killed;
- a call on the list: allowed;
- anything else (open, socket, fork/clone, execve, kill, mount, ptrace, …): fails
  with EPERM, so Python raises PermissionError and the child reports a typed error.

The list: what ``strace -f`` showed the confined child doing after the filter went in,
for ``guestboot extract`` of a Debian GPT/ext4 guest, a zstd-compressed qcow2, an ISO and
a multi-kernel image (pread64, pwrite64, lseek, copy_file_range, write, newfstatat,
brk/mmap/munmap, exit_group), plus what the same work may take on other paths: the
copy fallbacks (sendfile, splice, read, writev), holes in outputs (ftruncate,
fallocate), memory (mremap, mprotect, madvise), and what the interpreter does on its own
(futex, signals, clocks, getrandom). Every front-end test runs under it.

newfstatat is there because glibc's fstat() is newfstatat(fd, "", AT_EMPTY_PATH); with a
path it only reaches the empty chroot (or, where no chroot could be made, it can tell
whether a host path exists, never read it).
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct

# Documentation/userspace-api/seccomp_filter.rst and include/uapi/linux/seccomp.h
PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
SECCOMP_RET_KILL_PROCESS = 0x80000000
SECCOMP_RET_ERRNO = 0x00050000
SECCOMP_RET_ALLOW = 0x7FFF0000

# include/uapi/linux/bpf_common.h: struct sock_filter {u16 code; u8 jt; u8 jf; u32 k}
SOCK_FILTER = struct.Struct("=HBBI")
BPF_LD_W_ABS = 0x20  # BPF_LD | BPF_W | BPF_ABS
BPF_JEQ_K = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
BPF_JGE_K = 0x35  # BPF_JMP | BPF_JGE | BPF_K
BPF_RET_K = 0x06  # BPF_RET | BPF_K
OFFSET_NR = 0
OFFSET_ARCH = 4

X32_SYSCALL_BIT = 0x40000000

# include/uapi/linux/audit.h: AUDIT_ARCH_*; numbers from asm/unistd_64.h (x86_64) and
# asm-generic/unistd.h (aarch64, 64-bit names: __NR3264_*).
ARCHES = {
    "x86_64": 0xC000003E,
    "aarch64": 0xC00000B7,
}
ALLOWED: dict[str, tuple[int, int]] = {  # name: (x86_64, aarch64)
    "read": (0, 63),
    "write": (1, 64),
    "pread64": (17, 67),
    "pwrite64": (18, 68),
    "readv": (19, 65),
    "writev": (20, 66),
    "preadv": (295, 69),
    "pwritev": (296, 70),
    "lseek": (8, 62),
    "fstat": (5, 80),
    "newfstatat": (262, 79),
    "close": (3, 57),
    "fcntl": (72, 25),
    "copy_file_range": (326, 285),
    "sendfile": (40, 71),
    "splice": (275, 76),
    "ftruncate": (77, 46),
    "fallocate": (285, 47),
    "fsync": (74, 82),
    "fdatasync": (75, 83),
    "mmap": (9, 222),
    "munmap": (11, 215),
    "mremap": (25, 216),
    "mprotect": (10, 226),
    "brk": (12, 214),
    "madvise": (28, 233),
    "futex": (202, 98),
    "sched_yield": (24, 124),
    "rt_sigreturn": (15, 139),
    "rt_sigaction": (13, 134),
    "rt_sigprocmask": (14, 135),
    "sigaltstack": (131, 132),
    "restart_syscall": (219, 128),
    "getpid": (39, 172),
    "gettid": (186, 178),
    "getuid": (102, 174),
    "geteuid": (107, 175),
    "getgid": (104, 176),
    "getegid": (108, 177),
    "getgroups": (115, 158),
    "getppid": (110, 173),
    "clock_gettime": (228, 113),
    "clock_getres": (229, 114),
    "gettimeofday": (96, 169),
    "clock_nanosleep": (230, 115),
    "nanosleep": (35, 101),
    "getrandom": (318, 278),
    "exit": (60, 93),
    "exit_group": (231, 94),
}


def machine() -> str:
    return os.uname().machine.lower()


def supported() -> bool:
    return machine() in ARCHES


# openat(2) for reading only, when the child's root holds nothing but Python's code
# (coderoot.py): a lazy import opens a module file. Its flags (args[2]) may hold none of
# O_WRONLY, O_RDWR, O_CREAT, O_TRUNC, O_APPEND, __O_TMPFILE (the same bits on x86_64
# and in asm-generic/fcntl.h, which aarch64 uses).
READ_OPEN_CALLS: dict[str, tuple[int, int]] = {"openat": (257, 56)}
READ_ONLY_CALLS: dict[str, tuple[int, int]] = {"getdents64": (217, 61), "getcwd": (79, 17)}
OPEN_WRITE_BITS = 0x1 | 0x2 | 0x40 | 0x200 | 0x400 | 0x400000
OFFSET_ARG2 = 16 + 2 * 8  # seccomp_data.args[2], its low 32 bits (little-endian)
BPF_JSET_K = 0x45  # BPF_JMP | BPF_JSET | BPF_K


def program(arch: str, *, read_opens: bool = False) -> bytes:
    """The filter for ``arch`` as the bytes of a ``struct sock_filter`` array.
    ``read_opens``: also allow openat for reading, getdents64 and getcwd (lazy imports
    from a root that holds only Python's code)."""
    column = tuple(ARCHES).index(arch)
    table = dict(ALLOWED, **READ_ONLY_CALLS) if read_opens else ALLOWED
    numbers = sorted({entry[column] for entry in table.values()})
    # (op, jump-if-true label, jump-if-false label, k); labels resolve to offsets below
    code: list[tuple[int, str | None, str | None, int]] = [
        (BPF_LD_W_ABS, None, None, OFFSET_ARCH),
        (BPF_JEQ_K, None, "kill", ARCHES[arch]),  # another arch's calling convention
        (BPF_LD_W_ABS, None, None, OFFSET_NR),
    ]
    if arch == "x86_64":
        code.append((BPF_JGE_K, "kill", None, X32_SYSCALL_BIT))  # the x32 ABI
    code += [(BPF_JEQ_K, "allow", None, number) for number in numbers]
    if read_opens:
        code += [(BPF_JEQ_K, "open", None, entry[column]) for entry in READ_OPEN_CALLS.values()]
    labels: dict[str, int] = {}

    def ret(label: str, action: int) -> None:
        labels[label] = len(code)
        code.append((BPF_RET_K, None, None, action))

    ret("deny", SECCOMP_RET_ERRNO | errno.EPERM)
    ret("allow", SECCOMP_RET_ALLOW)
    ret("kill", SECCOMP_RET_KILL_PROCESS)
    if read_opens:  # classic BPF jumps forward only: this check has returns of its own
        labels["open"] = len(code)
        code.append((BPF_LD_W_ABS, None, None, OFFSET_ARG2))
        code.append((BPF_JSET_K, "open-deny", "open-allow", OPEN_WRITE_BITS))
        ret("open-deny", SECCOMP_RET_ERRNO | errno.EPERM)
        ret("open-allow", SECCOMP_RET_ALLOW)
    resolved = []
    for index, (op, true, false, k) in enumerate(code):
        jt = labels[true] - index - 1 if true else 0
        jf = labels[false] - index - 1 if false else 0
        if not (0 <= jt <= 255 and 0 <= jf <= 255):  # forward only, and within reach
            raise AssertionError(f"seccomp filter: jump from {index} out of reach")
        resolved.append(SOCK_FILTER.pack(op, jt, jf, k))
    return b"".join(resolved)


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def install(libc: ctypes.CDLL, *, read_opens: bool = False) -> str:
    """no_new_privs (required for an unprivileged filter, and wanted anyway), then the
    filter. Returns what was done, for --debug. A kernel without seccomp filters (or a
    container that forbids them) leaves the other layers in place and is said here."""
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        return f"no no_new_privs and no seccomp filter (prctl refused: {errno.errorcode.get(ctypes.get_errno(), '?')})"
    arch = machine()
    if arch not in ARCHES:
        return f"no_new_privs set; no seccomp filter (no system call table for {arch})"
    data = program(arch, read_opens=read_opens)
    buffer = ctypes.create_string_buffer(data, len(data))
    prog = _SockFprog(len(data) // SOCK_FILTER.size, ctypes.cast(buffer, ctypes.c_void_p))
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) != 0:
        return f"no_new_privs set; no seccomp filter (the kernel refused: {errno.errorcode.get(ctypes.get_errno(), '?')})"
    opens = "; openat for reading only, getdents64, getcwd (lazy imports)" if read_opens else ""
    return f"no_new_privs set; seccomp filter: {len(ALLOWED)} system calls allowed ({arch}){opens}, others EPERM"
