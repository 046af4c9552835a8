"""Writing extracted files on the host: the only code in guestboot that writes.

Everything here works relative to a directory descriptor, so a path in the guest can
never steer a write elsewhere:

- ``open_output_dir(path)`` opens the output directory once.
- ``create_file(dir_fd, name)`` makes a new file: O_EXCL and O_NOFOLLOW, mode 0600, a
  plain name (no "/", not "." or ".."). An existing file or symlink is OutputError and is
  left untouched.
- ``create_unique_file(dir_fd, prefix)`` makes a new file named like pygrub's
  ``tempfile.mkstemp(prefix=..., dir=...)``: prefix + 8 random characters of [a-z0-9_].
- ``copy_sources(sources, out_fd)`` streams byte sources (several initrds, in order) into
  an open descriptor, which may have been opened by someone else (pygrub's --output is
  created by libxl and opened O_WRONLY without O_CREAT/O_TRUNC) or be a pipe. File runs go
  through copy_file_range, then os.sendfile, then pread/write when the kernel refuses the
  faster way (another file system, a pipe); in-memory runs are written. Holes (sparse
  files, unwritten extents, qcow2 zero clusters) are left as holes: skipped with the
  write position and made by ftruncate at the end, when the output is a regular file
  with nothing at or after its position; zeros are written only into a pipe or over
  bytes a given file holds already. The size caps of
  LIMITS are checked on the sum of the sizes before the first byte is written.
- ``extract_to_dir`` / ``extract_unique`` do both and remove the partial file on any
  failure, including KeyboardInterrupt.
- ``OutputDir`` is ``guestboot extract``'s whole output: the directory (created when
  missing, removed again when the run fails), new files written under temporary names
  and given their real names only when everything worked — by a hard link that refuses
  an existing name, or, when replacing is asked for, by a rename over it (atomic: a
  reader sees the old file or the new one, never a partial one).

Host failures become OutputError with one line naming the file and the reason.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from typing import Iterator, Sequence

from .errors import CorruptImage, LimitExceeded, OutputError
from .limits import LIMITS
from .source import ByteSource, Run

FILE_MODE = 0o600
CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC

UNIQUE_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_"  # what tempfile.mkstemp draws from
UNIQUE_LENGTH = 8
UNIQUE_ATTEMPTS = 100  # names tried before giving up (tempfile tries up to TMP_MAX)

KERNEL_COPY_CHUNK = 1 << 30  # bytes asked of one copy_file_range/sendfile call
USER_COPY_CHUNK = 1 << 20  # bytes moved through Python at a time (pread/write, zeros)

# The kernel refuses the in-kernel copy for these reasons; the next method is tried.
# EXDEV: other file system (older kernels); EINVAL: pipe, overlapping or unsupported
# file; ENOSYS/EOPNOTSUPP: not implemented; EBADF: output opened with O_APPEND.
FALLBACK_ERRNOS = frozenset(
    {errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EBADF}
)

METHODS = ("copy_file_range", "sendfile", "readwrite")  # fastest first


def _output_error(action: str, name: str, err: OSError) -> OutputError | LimitExceeded:
    if err.errno == errno.EFBIG:  # RLIMIT_FSIZE: the sandbox's file-size limit (PYGRUB_MAX_FILE_SIZE_MB)
        return LimitExceeded(f"cannot {action} {name}: larger than the file-size limit of this run"
                             " (max_output_file; PYGRUB_MAX_FILE_SIZE_MB)")
    return OutputError(f"cannot {action} {name}: {os.strerror(err.errno) if err.errno else err}")


class OutputBudget:
    """What one run may write in all (LIMITS.max_output_total), shared by its extractions."""

    def __init__(self, limit: int | None = None):
        self.limit = LIMITS.max_output_total if limit is None else limit
        self.used = 0

    def reserve(self, size: int, what: str) -> None:
        if self.used + size > self.limit:
            raise LimitExceeded(
                f"{what}: writing {size} more bytes would exceed {self.limit} bytes in all"
                f" ({self.used} already written; limit max_output_total)"
            )
        self.used += size


def open_output_dir(path: str) -> int:
    """A descriptor for the output directory (close it when done)."""
    try:
        return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as err:
        raise _output_error("open output directory", path, err) from None


def _check_name(name: str) -> None:
    if not name or "/" in name or "\0" in name or name in (".", ".."):
        raise OutputError(f"refusing output name {name!r}: it must be a plain file name")


def create_file(dir_fd: int, name: str) -> int:
    """Create ``name`` in the directory ``dir_fd`` for writing, mode 0600; never opens an
    existing file or follows a symlink (both are OutputError, and are left untouched)."""
    _check_name(name)
    try:
        fd = os.open(name, CREATE_FLAGS, FILE_MODE, dir_fd=dir_fd)
    except FileExistsError:
        raise OutputError(f"output {name} already exists; not overwriting it") from None
    except OSError as err:
        raise _output_error("create", name, err) from None
    try:
        os.fchmod(fd, FILE_MODE)  # a umask can only remove bits; make it exactly 0600
    except OSError as err:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(name, dir_fd=dir_fd)
        raise _output_error("set the mode of", name, err) from None
    return fd


def create_unique_file(dir_fd: int, prefix: str) -> tuple[int, str]:
    """Create a new file named ``prefix`` + 8 random characters of [a-z0-9_] in ``dir_fd``
    (pygrub's mkstemp names, e.g. "boot_kernel.x1_9abcd"); returns (fd, name)."""
    _check_name(prefix + "x")
    for _ in range(UNIQUE_ATTEMPTS):
        name = prefix + _random_suffix()
        try:
            return create_file(dir_fd, name), name
        except OutputError:
            if not _exists(dir_fd, name):
                raise
    raise OutputError(f"no free name {prefix}XXXXXXXX after {UNIQUE_ATTEMPTS} attempts")


def _random_suffix() -> str:
    """UNIQUE_LENGTH characters drawn uniformly from UNIQUE_CHARS with os.urandom (the
    secrets module would cost start-up time for the same thing)."""
    span = len(UNIQUE_CHARS)
    cutoff = 256 - 256 % span  # reject bytes past the last whole multiple: no bias
    chars: list[str] = []
    while len(chars) < UNIQUE_LENGTH:
        chars.extend(UNIQUE_CHARS[b % span] for b in os.urandom(UNIQUE_LENGTH * 2) if b < cutoff)
    return "".join(chars[:UNIQUE_LENGTH])


def _exists(dir_fd: int, name: str) -> bool:
    try:
        os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except OSError:
        return False
    return True


class _Output:
    """An open output descriptor and where the next byte goes (None: a pipe or socket)."""

    def __init__(self, fd: int, name: str, method: str):
        self.fd = fd
        self.name = name
        self.method = method
        info = os.fstat(fd)
        self.regular = stat.S_ISREG(info.st_mode)
        try:
            self.pos: int | None = os.lseek(fd, 0, os.SEEK_CUR)
        except OSError as err:
            if err.errno != errno.ESPIPE:
                raise
            self.pos = None
        # a hole may be left unwritten only where the file holds nothing yet (a new file,
        # or a given one at its end): skipped bytes then read as zeros
        self.sparse = self.regular and self.pos is not None and info.st_size <= self.pos

    def _advance(self, count: int) -> None:
        if self.pos is not None:
            self.pos += count

    def write(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        while view:
            if self.pos is not None:
                count = os.pwrite(self.fd, view, self.pos)
            else:
                count = os.write(self.fd, view)
            if count <= 0:
                raise OSError(errno.EIO, "write made no progress")
            view = view[count:]
            self._advance(count)

    def zeros(self, length: int) -> None:
        """``length`` zero bytes: a hole (the position moves on; finish() sets the size)
        where the output allows one, else zeros written."""
        if self.sparse:
            assert self.pos is not None
            self.pos += length
            return
        chunk = bytes(min(length, USER_COPY_CHUNK))
        while length:
            count = min(length, len(chunk))
            self.write(memoryview(chunk)[:count])
            length -= count

    def copy(self, src_fd: int, offset: int, length: int) -> None:
        """``length`` bytes at ``offset`` of ``src_fd``, the fastest way the kernel allows."""
        while length:
            count = self._copy_some(src_fd, offset, length)
            if count == 0:
                raise CorruptImage(f"source ended early while writing {self.name}", offset=offset)
            offset += count
            length -= count

    def _copy_some(self, src_fd: int, offset: int, length: int) -> int:
        if self.method == "copy_file_range":
            try:
                count = os.copy_file_range(src_fd, self.fd, min(length, KERNEL_COPY_CHUNK), offset, self.pos)
            except OSError as err:
                if err.errno not in FALLBACK_ERRNOS:
                    raise
                self.method = "sendfile"
                return self._copy_some(src_fd, offset, length)
            self._advance(count)
            return count
        if self.method == "sendfile":
            try:
                if self.pos is not None:
                    os.lseek(self.fd, self.pos, os.SEEK_SET)
                count = os.sendfile(self.fd, src_fd, offset, min(length, KERNEL_COPY_CHUNK))
            except OSError as err:
                if err.errno not in FALLBACK_ERRNOS:
                    raise
                self.method = "readwrite"
                return self._copy_some(src_fd, offset, length)
            self._advance(count)
            return count
        data = os.pread(src_fd, min(length, USER_COPY_CHUNK), offset)
        self.write(data)
        return len(data)

    def finish(self) -> None:
        if self.pos is not None:
            if self.sparse and os.fstat(self.fd).st_size < self.pos:
                os.ftruncate(self.fd, self.pos)  # the holes at the end
            os.lseek(self.fd, self.pos, os.SEEK_SET)


def _runs(sources: Sequence[ByteSource]) -> Iterator[Run]:
    """The runs of all sources in order, checking each source's runs cover exactly its
    size (so no more is written than was reserved)."""
    for source in sources:
        covered = 0
        for run in source.runs(0, source.size):
            covered += run.length
            wrong_data = run.data is not None and len(run.data) != run.length
            if run.length < 0 or covered > source.size or wrong_data:
                raise CorruptImage(f"{source.name}: runs do not match its size ({source.size} bytes)")
            yield run
        if covered != source.size:
            raise CorruptImage(f"{source.name}: runs cover {covered} of its {source.size} bytes")


def copy_sources(
    sources: Sequence[ByteSource],
    out_fd: int,
    *,
    name: str = "output",
    budget: OutputBudget | None = None,
    method: str = "copy_file_range",
) -> int:
    """Write the sources one after the other to ``out_fd`` at its current position and
    leave the position after the last byte; returns the number of bytes written.

    The sum of the sizes is checked against LIMITS.max_output_file and the budget
    (LIMITS.max_output_total) before anything is written: LimitExceeded. ``method`` picks
    the first copying method to try ("copy_file_range", "sendfile" or "readwrite"); each
    falls back to the next when the kernel refuses it. ``name`` is used in messages.
    """
    if method not in METHODS:
        raise ValueError(f"unknown copy method {method!r}; one of {', '.join(METHODS)}")
    total = sum(source.size for source in sources)
    if total > LIMITS.max_output_file:
        raise LimitExceeded(
            f"{name}: {total} bytes to write, more than {LIMITS.max_output_file} (limit max_output_file)"
        )
    (budget or OutputBudget()).reserve(total, name)
    try:
        out = _Output(out_fd, name, method)
        for run in _runs(sources):
            if run.data is not None:
                out.write(run.data)
            elif run.fd is None:
                out.zeros(run.length)
            else:
                out.copy(run.fd, run.offset, run.length)
        out.finish()
    except OSError as err:
        raise _output_error("write", name, err) from None
    return total


def extract_to_dir(
    dir_fd: int,
    name: str,
    sources: Sequence[ByteSource],
    *,
    budget: OutputBudget | None = None,
    method: str = "copy_file_range",
) -> str:
    """Create ``name`` in ``dir_fd`` (see create_file) holding the sources concatenated;
    returns ``name``. On any failure the partial file is removed and the error re-raised."""
    fd = create_file(dir_fd, name)
    _fill(dir_fd, name, fd, sources, budget, method)
    return name


def extract_unique(
    dir_fd: int,
    prefix: str,
    sources: Sequence[ByteSource],
    *,
    budget: OutputBudget | None = None,
    method: str = "copy_file_range",
) -> str:
    """Like extract_to_dir with a pygrub-style unique name (see create_unique_file);
    returns the name chosen."""
    fd, name = create_unique_file(dir_fd, prefix)
    _fill(dir_fd, name, fd, sources, budget, method)
    return name


def _fill(
    dir_fd: int, name: str, fd: int, sources: Sequence[ByteSource], budget: OutputBudget | None, method: str
) -> None:
    try:
        copy_sources(sources, fd, name=name, budget=budget, method=method)
    except BaseException:
        with contextlib.suppress(OSError):
            os.close(fd)
        _remove(dir_fd, name)
        raise
    try:
        os.close(fd)
    except OSError as err:
        _remove(dir_fd, name)
        raise _output_error("close", name, err) from None


def _remove(dir_fd: int, name: str) -> None:
    """Remove a partial output; the error that caused it is what gets reported."""
    with contextlib.suppress(OSError):
        os.unlink(name, dir_fd=dir_fd)


class OutputDir:
    """A context manager for one run's outputs in the directory ``path``.

    ``temporary(name)`` creates a new hidden file ".NAME.XXXXXXXX" and returns its
    descriptor; ``commit(names)`` gives those files their names. Leaving the ``with``
    block by an exception (before or after commit) removes every file this run made and
    the directories it created, so a failed run leaves nothing behind."""

    def __init__(self, path: str):
        self.path = path
        self.created: list[str] = []
        self.dir_fd: int | None = None
        self.temps: dict[str, tuple[int | None, str]] = {}
        self.committed: list[str] = []

    def __enter__(self) -> "OutputDir":
        self._make_dirs()
        try:
            self.dir_fd = open_output_dir(self.path)
        except BaseException:
            self._remove_dirs()
            raise
        return self

    def _make_dirs(self) -> None:
        missing = []
        path = os.path.normpath(self.path)
        while path and not os.path.lexists(path):
            missing.append(path)
            parent = os.path.dirname(path)
            if parent == path:
                break
            path = parent
        for path in reversed(missing):
            try:
                os.mkdir(path, 0o700)
            except FileExistsError:
                continue  # made by someone else meanwhile: not ours to remove
            except OSError as err:
                self._remove_dirs()
                raise _output_error("create directory", path, err) from None
            self.created.append(path)

    def _remove_dirs(self) -> None:
        for path in reversed(self.created):
            with contextlib.suppress(OSError):
                os.rmdir(path)  # only when empty: never removes what someone else put there
        self.created.clear()

    def _where(self, name: str) -> str:
        return os.path.join(self.path, name)

    def refuse_existing(self, names: Sequence[str]) -> None:
        """OutputError when one of ``names`` exists already (checked again at commit)."""
        assert self.dir_fd is not None
        for name in names:
            if _exists(self.dir_fd, name):
                raise OutputError(f"output {self._where(name)} already exists; not overwriting it")

    def temporary(self, name: str) -> int:
        assert self.dir_fd is not None
        _check_name(name)
        fd, temp = create_unique_file(self.dir_fd, f".{name}.")
        self.temps[name] = (fd, temp)
        return fd

    def _close(self, name: str) -> str:
        fd, temp = self.temps[name]
        if fd is not None:
            self.temps[name] = (None, temp)
            try:
                os.close(fd)
            except OSError as err:
                raise _output_error("close", self._where(name), err) from None
        return temp

    def commit(self, names: Sequence[str], *, replace: bool = False, drop: Sequence[str] = ()) -> None:
        """Give the temporary files of ``names`` their names. ``replace``: rename over an
        existing file (never over a directory); otherwise an existing name is OutputError.
        ``drop``: temporaries not needed after all; with ``replace`` an existing file of
        that name is removed too (it belongs to what was replaced)."""
        assert self.dir_fd is not None
        for name in names:
            temp = self._close(name)
            if replace:
                if os.path.isdir(self._where(name)) and not os.path.islink(self._where(name)):
                    raise OutputError(f"output {self._where(name)} is a directory; not replacing it")
                try:
                    os.rename(temp, name, src_dir_fd=self.dir_fd, dst_dir_fd=self.dir_fd)
                except OSError as err:
                    raise _output_error("rename a new file to", self._where(name), err) from None
            else:
                self._link(temp, name)
            self.committed.append(name)
            del self.temps[name]
        for name in drop:
            temp = self._close(name)
            _remove(self.dir_fd, temp)
            del self.temps[name]
            if replace and _exists(self.dir_fd, name) and not os.path.isdir(self._where(name)):
                try:
                    os.unlink(name, dir_fd=self.dir_fd)
                except OSError as err:
                    raise _output_error("remove the old", self._where(name), err) from None

    def _link(self, temp: str, name: str) -> None:
        """``temp`` becomes ``name`` unless ``name`` exists: link(2) refuses an existing
        name atomically; where the file system has no hard links, check, then rename."""
        assert self.dir_fd is not None
        try:
            os.link(temp, name, src_dir_fd=self.dir_fd, dst_dir_fd=self.dir_fd, follow_symlinks=False)
        except FileExistsError:
            raise OutputError(f"output {self._where(name)} already exists; not overwriting it") from None
        except OSError as err:
            if err.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK):
                raise _output_error("create", self._where(name), err) from None
            if _exists(self.dir_fd, name):
                raise OutputError(f"output {self._where(name)} already exists; not overwriting it") from None
            try:
                os.rename(temp, name, src_dir_fd=self.dir_fd, dst_dir_fd=self.dir_fd)
            except OSError as err2:
                raise _output_error("create", self._where(name), err2) from None
            return
        _remove(self.dir_fd, temp)

    def __exit__(self, kind, value, traceback) -> None:
        assert self.dir_fd is not None
        for name in list(self.temps):
            temp = self.temps[name][1]
            with contextlib.suppress(OutputError):
                self._close(name)
            _remove(self.dir_fd, temp)
        self.temps.clear()
        if kind is not None:
            for name in self.committed:
                _remove(self.dir_fd, name)
        with contextlib.suppress(OSError):
            os.close(self.dir_fd)
        self.dir_fd = None
        if kind is not None:
            self._remove_dirs()
