"""What every guestboot front end shares: exit codes, one-line errors, warnings, opening
the image, writing to standard output.

Exit codes (documented in README, "Exit codes"):
  0 success · 2 usage error · 3 corrupt image · 4 unsupported format or feature ·
  5 a safety limit was reached · 6 not found (image, config, entry, file, partition) ·
  7 boot-config error · 8 output error on the host (standard output included) ·
  9 permission denied · 70 internal error (a bug: please report it with --debug output) ·
  130 interrupted
"""

from __future__ import annotations

import os
import stat
import sys
from typing import Callable, Iterable

from ..errors import GuestbootError, NotFound, OutputError, PermissionDenied, UsageError
from .render import shown

EXIT_USAGE = 2
EXIT_OUTPUT = 8
EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130

WARNINGS_SHOWN = 20  # a hostile config can cause thousands; the rest is counted


class _LossyStream:
    """Standard error that a closed or hung-up reader cannot turn into a failure: what is
    written there is lost (fd 2 is pointed at /dev/null), the run's result and exit status
    stand. A console that hangs up, or ``2>&-``, must not cost the guest its boot."""

    def __init__(self, stream) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except (OSError, ValueError):
            self._lose()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except (OSError, ValueError):
            self._lose()

    def _lose(self) -> None:
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            os.close(devnull)
            self._stream = open(2, "w", encoding="utf-8", errors="backslashreplace", closefd=False)
        except OSError:
            pass

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


class _ClosedStdout:
    """Standard output that was closed when we started (``>&-``): writing to it is an
    OutputError (exit 8) like any output that cannot be written; fd 1 itself holds
    /dev/null so that no file we open becomes it."""

    closed_at_start = True

    def write(self, text: str) -> int:
        import errno

        raise OSError(errno.EBADF, "standard output is closed")

    def flush(self) -> None:  # nothing was written, so nothing is lost
        pass

    def fileno(self) -> int:
        return 1


def stdout_fd() -> int:
    """The descriptor of standard output, to write to directly (cat, pygrub's result);
    OutputError when it was closed when we started."""
    if getattr(sys.stdout, "closed_at_start", False):
        raise OutputError("cannot write standard output: standard output is closed")
    return sys.stdout.fileno()


def steady_std_streams() -> None:
    """Before anything is opened: descriptors 0, 1 and 2 exist (a closed one is given
    /dev/null, so that an image or an output file can never become "standard error" and
    receive messages), and standard error is lossy rather than fatal (_LossyStream)."""
    import fcntl

    closed = []
    for fd in (0, 1, 2):
        try:
            fcntl.fcntl(fd, fcntl.F_GETFD)
        except OSError:
            closed.append(fd)
            opened = os.open(os.devnull, os.O_RDWR)
            if opened != fd:
                os.dup2(opened, fd)
                os.close(opened)
    if sys.stderr is None:
        sys.stderr = open(2, "w", encoding="utf-8", errors="backslashreplace", closefd=False)
    if 1 in closed:
        sys.stdout = _ClosedStdout()
    if not isinstance(sys.stderr, _LossyStream):
        sys.stderr = _LossyStream(sys.stderr)


def fail(prog: str, message: str, code: int) -> int:
    """One line on stderr: ``message`` may carry guest text (a path, a title), so it is
    passed through ``shown`` like every human-readable output."""
    sys.stderr.write(f"{prog}: {shown(message)}\n")
    sys.stderr.flush()
    return code


def warn(prog: str, lines: Iterable[str], more: str = "") -> None:
    """One line per warning, at most WARNINGS_SHOWN; ``more`` says where the rest is."""
    lines = list(lines)
    for line in lines[:WARNINGS_SHOWN]:
        sys.stderr.write(f"{prog}: warning: {shown(line)}\n")
    if len(lines) > WARNINGS_SHOWN:
        sys.stderr.write(f"{prog}: warning: … and {len(lines) - WARNINGS_SHOWN} more warnings{more}\n")
    sys.stderr.flush()


def _silence_stdout() -> None:
    """Standard output failed: never try it again (not even at interpreter exit, which
    would print "Exception ignored" and change the exit status)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def say(text: str) -> None:
    """Write to standard output; a failure is OutputError (exit 8), never a traceback."""
    try:
        sys.stdout.write(text)
    except OSError as err:
        _silence_stdout()
        raise stdout_error(err) from None


def flush_stdout() -> None:
    """Push what was printed out now, so that a full disk (``> /dev/full``) or a reader
    that went away (``| head -c 10``) is an OutputError while the run can still undo what
    it wrote, not a message from the interpreter at exit."""
    try:
        sys.stdout.flush()
    except OSError as err:
        _silence_stdout()
        raise stdout_error(err) from None


def stdout_error(err: OSError) -> OutputError:
    import errno

    if err.errno == errno.EPIPE:
        return OutputError("standard output was closed before everything was written")
    return OutputError(f"cannot write standard output: {err.strerror or err}")


def guarded(prog: str, body: Callable[[], int], *, debug: bool) -> int:
    """Run ``body`` and flush standard output; turn every failure into one line on stderr
    (after the warnings gathered before it) and a documented code."""
    try:
        code = body()
        flush_stdout()
        return code
    except GuestbootError as err:
        if debug:
            _print_traceback()
        warn(prog, err.warnings)
        return fail(prog, f"{err.kind}: {err}", err.exit_code)
    except KeyboardInterrupt:
        return fail(prog, "interrupted", EXIT_INTERRUPTED)
    except BrokenPipeError as err:
        _silence_stdout()
        return fail(prog, f"{OutputError.kind}: {stdout_error(err)}", EXIT_OUTPUT)
    except Exception as err:  # the last line of defence: a bug must still be one line
        import traceback

        if debug:
            _print_traceback()
        where = ""
        tb = traceback.extract_tb(err.__traceback__)
        if tb:
            where = f" at {os.path.basename(tb[-1].filename)}:{tb[-1].lineno}"
        return fail(
            prog,
            f"internal error: {type(err).__name__}: {err}{where} (a bug; rerun with --debug and report it)",
            EXIT_INTERNAL,
        )


def _print_traceback() -> None:
    """--debug: the traceback of the error being handled, each line through ``shown``,
    and the error itself as one line (its message may carry guest text, newlines too)."""
    import traceback  # only on failure: it costs start-up time

    err = sys.exc_info()[1]
    if err is None:
        return
    sys.stderr.write("Traceback (most recent call last):\n")
    for chunk in traceback.extract_tb(err.__traceback__).format():
        for line in chunk.rstrip("\n").split("\n"):
            sys.stderr.write(shown(line) + "\n")
    sys.stderr.write(shown(f"{type(err).__module__}.{type(err).__qualname__}: {err}") + "\n")


def parse_offset(text: str) -> int:
    """--offset: bytes, decimal or hex ("0x200000"); never negative. ValueError says why."""
    value = text.strip()
    try:
        number = int(value, 16) if value[:2].lower() == "0x" else int(value, 10)
    except ValueError:
        raise ValueError(f"--offset {text!r} is not a number of bytes (decimal, or hex with 0x)") from None
    if number < 0:
        raise ValueError(f"--offset {text!r} is negative")
    return number


def open_image_fd(path: str) -> int:
    """Open the guest image read-only: a regular file or a block device, nothing else.

    O_NONBLOCK, so that a FIFO given by mistake never blocks the open (it is refused after
    fstat, as are directories, sockets and character devices such as /dev/stdin on a
    terminal). A pipe is refused rather than copied to a temporary file: the image is read
    at random offsets, a hypervisor always has a file or a device to give, and a copy
    would need a size cap and host disk space that the caller did not offer."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except FileNotFoundError:
        raise NotFound(f"no such image: {path}") from None
    except PermissionError:
        raise PermissionDenied(f"cannot read image {path}: permission denied") from None
    except OSError as err:
        raise NotFound(f"cannot open image {path}: {err.strerror}") from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISREG(mode) or stat.S_ISBLK(mode):
            os.set_blocking(fd, True)
            return fd
    except OSError:
        os.close(fd)
        raise
    os.close(fd)
    if stat.S_ISDIR(mode):
        kind = "a directory"
    elif stat.S_ISFIFO(mode):
        kind = "a pipe"
    elif stat.S_ISSOCK(mode):
        kind = "a socket"
    elif stat.S_ISCHR(mode):
        kind = "a character device"
    else:
        kind = "not a regular file"
    raise UsageError(f"{path} is {kind}, not a disk image (give an image file or a block device)")


NO_SANDBOX_HELP = (
    "debugging only: read the guest in this process, with all its privileges: no child process,"
    " namespaces, chroot, uid drop, seccomp filter, rlimits or wall-clock limit"
)


def run_request(prog: str, request, *, sandbox: bool = True, uid: int | None = None, gid: int | None = None,
                debug: bool = False) -> dict:
    """pipeline.run on ``request``: in a confined child (sandbox/) unless ``sandbox`` is
    False (--no-sandbox). ``uid``/``gid``: --runas (root only; else the documented
    default). --debug shows what each layer of the sandbox did."""
    from ..pipeline import run

    if not sandbox:
        if debug:
            sys.stderr.write(f"{prog}: sandbox: off (--no-sandbox)\n")
        return run(request)
    from .. import sandbox as confined
    from ..pipeline import preopen

    settings = confined.settings_for(uid, gid)
    preopen(request)  # the files the images name, opened before the child starts
    report: list[str] = []
    try:
        return confined.run(lambda: run(request), request.descriptors(), settings, report)
    finally:
        if debug:
            for line in report:
                sys.stderr.write(f"{prog}: sandbox: {line}\n")
            sys.stderr.flush()


def version_text(prog: str) -> str:
    from .. import __version__

    return f"{prog} {__version__}\n"
