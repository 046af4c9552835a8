"""The child's root directory: empty but for guestboot's own code, read-only.

A run imports what the image needs (a file-system driver, a config format) when it meets
it, and importing every module up front costs more than a whole ``guestboot list``. So
where the child has its own mount namespace, its root is a new read-only tmpfs holding,
at its own path, a read-only bind mount of guestboot's package directory, and nothing
else of the host; the seccomp filter lets the child open files there for reading only.
The standard and codec modules the package uses (some need shared libraries the root
does not hold) are loaded before (``sandbox.preload_native``). Where no mount namespace
can be made, the child imports every module first and chroots into an empty directory
(``sandbox.preload``).

mount(2) flags from include/uapi/linux/mount.h; a bind mount is made read-only by a
second, remounting call (MS_REMOUNT|MS_BIND|MS_RDONLY), which in a user namespace must
keep the flags the kernel locked on the source (nosuid, nodev, noexec, atime), so those
are read from statvfs and kept.
"""

from __future__ import annotations

import ctypes
import os

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MS_RELATIME = 1 << 21
# os.statvfs's f_flag bits (ST_*) that a remount has to keep, and their MS_* flags
_KEPT = ((os.ST_NOSUID, MS_NOSUID), (getattr(os, "ST_NODEV", 4), MS_NODEV), (getattr(os, "ST_NOEXEC", 8), MS_NOEXEC),
         (getattr(os, "ST_NOATIME", 1024), MS_NOATIME), (getattr(os, "ST_NODIRATIME", 2048), MS_NODIRATIME),
         (getattr(os, "ST_RELATIME", 4096), MS_RELATIME))


def code_dirs() -> list[str]:
    """The directories the child may still import from: guestboot's own package (its
    modules import only standard or codec modules, which the child loads before it
    confines itself: sandbox.preload_native). Empty when the package is not a directory
    (a zip) or, as root, not readable by everyone (a umask 077 install; the child reads
    as another user): then everything is imported up front."""
    import guestboot

    package = os.path.realpath(os.path.dirname(os.path.abspath(guestboot.__file__)))
    if not os.path.isdir(package):
        return []
    if os.geteuid() == 0:  # the child reads it as another user: everyone must be able to
        for path in (package, guestboot.__file__):
            if os.stat(path).st_mode & 0o005 != (0o005 if path == package else 0o004):
                return []
    return [package]


def _mount(libc: ctypes.CDLL, source: str | None, target: str, fstype: str | None, flags: int,
           data: str | None = None) -> None:
    def c(text: str | None):
        return None if text is None else os.fsencode(text)

    if libc.mount(c(source), c(target), c(fstype), ctypes.c_ulong(flags), c(data)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {target}: {os.strerror(err)}")


def build(libc: ctypes.CDLL, root: str, dirs: list[str]) -> str:
    """Make ``root`` (an empty directory) the read-only code root, in this process's own
    mount namespace. Returns a line for --debug; OSError if a step fails."""
    if not dirs:
        raise OSError(0, "guestboot's package is not a directory everyone can read")
    # our mounts must not propagate back to the host's namespace
    _mount(libc, None, "/", None, MS_REC | MS_PRIVATE)
    _mount(libc, "tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=64k,mode=0755")
    for directory in dirs:
        target = root + directory
        os.makedirs(target, 0o755, exist_ok=True)
        _mount(libc, directory, target, None, MS_BIND)
        kept = 0
        flags = os.statvfs(directory).f_flag
        for st_flag, ms_flag in _KEPT:
            if flags & st_flag:
                kept |= ms_flag
        _mount(libc, None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | kept)
    _mount(libc, None, root, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)
    return f"root: a read-only tmpfs holding only guestboot's code, read-only ({', '.join(dirs)})"
