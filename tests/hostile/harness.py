"""Run guestboot's real command line on a hostile image, the way an administrator would,
and check what every hostile case must show, whatever else it asserts:

- the exit code is one of README's table (never 1, never 70: no untyped error, no crash);
- no traceback; every line on stderr is one line of printable text starting "guestboot";
- a failed run prints exactly one error line (warnings aside) and leaves the output
  directory empty (no partial file);
- nothing changed in the "arena" (a private directory tree around the run that holds the
  image, host decoy files and the output directory) outside the output directory, and the
  run's TMPDIR is empty afterwards;
- wall-clock time under ``TIMEOUT`` seconds (the process group is killed after it) and peak
  memory of the whole process tree under ``MEMORY`` (RLIMIT_AS set on the front end, so
  the sandboxed child inherits it or less).
"""

from __future__ import annotations

import os
import re
import resource
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

DOCUMENTED_CODES = frozenset({0, 2, 3, 4, 5, 6, 7, 8, 9})  # README's "Exit codes" table (130 is ^C)
TIMEOUT = float(os.environ.get("GUESTBOOT_HOSTILE_TIMEOUT", "10"))  # seconds per case
MEMORY = 512 * 1024 * 1024  # RLIMIT_AS of the front end; the peak RSS must stay below it too

# What the host has and the guest must never give us: decoys in the arena, and the host's
# own files (their first bytes are compared with what comes out).
HOST_DECOYS = {"host/etc/passwd": b"HOST-DECOY-PASSWD root:x:0:0\n", "host/etc/shadow": b"HOST-DECOY-SHADOW\n"}
HOST_FILES = ("/etc/passwd", "/etc/shadow", "/etc/hostname")
# lines that are not errors: which entry boots, pygrub -i's menu (entry lines) and note
NOTE = re.compile(r"guestboot(-pygrub)?: (entry |no interactive menu)|[* ] [0-9>]+ ")


@dataclass
class Run:
    argv: list[str]
    rc: int
    stdout: bytes
    stderr: bytes
    seconds: float
    maxrss: int  # bytes, largest process of the run's tree
    out: Path
    notes: list[str] = field(default_factory=list)

    @property
    def lines(self) -> list[str]:
        return self.stderr.decode("utf-8", "replace").splitlines()

    @property
    def errors(self) -> list[str]:
        """stderr lines that are not warnings or the "entry …" note."""
        return [line for line in self.lines if ": warning: " not in line and not NOTE.match(line)]

    def __repr__(self) -> str:
        return (f"argv={self.argv[2:]} rc={self.rc} {self.seconds:.2f}s rss={self.maxrss >> 20}MiB\n"
                f"stderr={self.stderr[-2000:]!r}\nstdout={self.stdout[:2000]!r}")


class Arena:
    """A directory tree for one case: ``image`` files, host decoys, ``out`` (the output
    directory), ``tmp`` (TMPDIR of the run). ``snapshot()`` records everything but ``out``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.out = root / "out"
        self.tmp = root / "tmp"
        self.tmp.mkdir(parents=True)
        self.watched: set[str] = set()
        for name, data in HOST_DECOYS.items():
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)

    def watch(self, *paths: str) -> None:
        """Files outside the arena the run must not change (the image it reads)."""
        self.watched.update(path for path in paths if os.path.lexists(path))

    def snapshot(self) -> dict[str, tuple]:
        seen: dict[str, tuple] = {}
        for top, dirs, files in os.walk(self.root):
            for name in dirs + files:
                path = os.path.join(top, name)
                rel = os.path.relpath(path, self.root)
                if rel == "out" or rel.startswith("out" + os.sep):
                    continue
                seen[rel] = _stat(path, rel != "tmp")  # TMPDIR may be used; it must end empty
        for path in self.watched:
            seen[path] = _stat(path, True)
        return seen


def _stat(path: str, with_time: bool) -> tuple:
    st = os.lstat(path)
    link = os.readlink(path) if os.path.islink(path) else None
    return (st.st_mode, st.st_size, st.st_mtime_ns if with_time else 0, st.st_ino, link)


def _limits() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def run(arena: Arena, module: str, *argv: str, sandbox: bool = True, env: dict[str, str] | None = None,
        timeout: float = TIMEOUT, cwd: Path | None = None) -> Run:
    """``python -m module argv…`` in its own process group, with RLIMIT_AS and a wall clock."""
    command = [sys.executable, "-m", module, *argv]
    if not sandbox:
        command.append("--no-sandbox")
    environment = {**os.environ, "TMPDIR": str(arena.tmp), "HOME": str(arena.root), **(env or {})}
    environment.pop("PYTHONDEVMODE", None)
    arena.watch(*(arg for arg in argv if arg.startswith("/") and not arg.startswith(str(arena.out))))
    before, before_out = arena.snapshot(), _out_state(arena.out)
    start = time.monotonic()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                            cwd=cwd or arena.root, env=environment, preexec_fn=_limits, start_new_session=True)
    chunks: dict[int, list[bytes]] = {1: [], 2: []}
    readers = [threading.Thread(target=_drain, args=(pipe, chunks[n]), daemon=True)
               for n, pipe in ((1, proc.stdout), (2, proc.stderr))]
    for reader in readers:
        reader.start()
    status, usage = _wait(proc.pid, start + timeout)
    if status is None:
        os.killpg(proc.pid, signal.SIGKILL)
        os.wait4(proc.pid, 0)
        proc.returncode = -9
        raise AssertionError(f"{command[2:]}: still running after {timeout} s (killed)")
    seconds = time.monotonic() - start
    for reader in readers:
        reader.join(timeout)
    proc.returncode = os.waitstatus_to_exitcode(status)
    # wait4's figure for the front end includes its reaped children (the sandboxed one)
    result = Run(command, proc.returncode, b"".join(chunks[1]), b"".join(chunks[2]), seconds,
                 usage.ru_maxrss * 1024, arena.out)
    _log(result)
    check_common(result, arena, before, before_out)
    return result


def _log(result: Run) -> None:
    """GUESTBOOT_HOSTILE_LOG=FILE: one line per run (case, exit code, seconds, peak RSS,
    first error line), for the suite's report."""
    path = os.environ.get("GUESTBOOT_HOSTILE_LOG")
    if path:
        case = os.environ.get("PYTEST_CURRENT_TEST", "?").split(" ")[0]
        first = (result.errors or [""])[0][:160]
        with open(path, "a", encoding="utf-8") as f:
            f.write(f"{case}\t{result.rc}\t{result.seconds:.2f}\t{result.maxrss >> 20}\t{first}\n")


def _drain(pipe, into: list[bytes]) -> None:
    with pipe:
        while chunk := pipe.read(65536):
            into.append(chunk)


def _wait(pid: int, deadline: float):
    """(status, rusage) of ``pid`` once it exits, or (None, None) at ``deadline``."""
    while True:
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done:
            return status, usage
        if time.monotonic() > deadline:
            return None, None
        time.sleep(0.01)


def _out_state(out: Path) -> dict[str, tuple]:
    """What the output directory holds (pre-seeded names and their state)."""
    if not out.is_dir():
        return {}
    return {name: _stat(str(out / name), True) for name in os.listdir(out)}


def check_common(result: Run, arena: Arena, before: dict[str, tuple], before_out: dict[str, tuple]) -> None:
    assert result.rc in DOCUMENTED_CODES, f"undocumented exit code\n{result}"
    assert b"Traceback" not in result.stderr, f"traceback\n{result}"
    for line in result.lines:
        assert line.startswith("guestboot") or NOTE.match(line), f"stray stderr line {line!r}\n{result}"
        assert line.isprintable(), f"control character on stderr {line!r}\n{result}"
    if result.rc != 0:
        assert len(result.errors) == 1, f"a failure must be one error line\n{result}"
        left = _out_state(arena.out)
        assert left == before_out, f"a failure changed the output directory: {left} (was {before_out})\n{result}"
    after = arena.snapshot()
    assert after == before, f"the run changed files outside its output directory: " \
        f"{sorted(set(after.items()) ^ set(before.items()))}\n{result}"
    assert os.listdir(arena.tmp) == [], f"left in TMPDIR: {os.listdir(arena.tmp)}"
    assert result.maxrss < MEMORY, f"peak RSS {result.maxrss >> 20} MiB\n{result}"
    for path in HOST_FILES:
        try:
            with open(path, "rb") as f:
                secret = f.read(4096)
        except OSError:
            continue
        if len(secret) >= 16 and secret.strip():
            assert secret not in result.stdout and secret not in result.stderr, f"host file {path} leaked\n{result}"


def guestboot(arena: Arena, *argv: str, **kwargs) -> Run:
    return run(arena, "guestboot", *argv, **kwargs)


def pygrub(arena: Arena, *argv: str, **kwargs) -> Run:
    arena.out.mkdir(exist_ok=True)  # libxl makes pygrub's output directory beforehand
    return run(arena, "guestboot.cli.pygrub", *argv, **kwargs)


def extract(arena: Arena, image: Path, *argv: str, **kwargs) -> Run:
    return guestboot(arena, "extract", str(image), "-o", str(arena.out), *argv, **kwargs)


def expect_error(result: Run, codes: set[int] | frozenset[int], *, contains: str | None = None) -> str:
    """A typed failure with one of ``codes``; returns its line."""
    assert result.rc in codes and result.rc != 0, f"expected exit {sorted(codes)}\n{result}"
    line = result.errors[0]
    if contains is not None:
        assert contains in line, f"expected {contains!r} in the error\n{result}"
    return line


def expect_kernel(result: Run, kernel: bytes, initrd: bytes | None = None) -> None:
    """A correct, safe result: exactly the guest's bytes, nothing else written."""
    assert result.rc == 0, f"expected success\n{result}"
    names = sorted(os.listdir(result.out))
    assert names == (["initrd", "kernel"] if initrd is not None else ["kernel"]), f"{names}\n{result}"
    assert (result.out / "kernel").read_bytes() == kernel, f"kernel is not the guest's file\n{result}"
    if initrd is not None:
        assert (result.out / "initrd").read_bytes() == initrd


def expect_safe(result: Run, kernel: bytes | None = None) -> None:
    """Either a typed error (checked by check_common) or, on success, only the guest's bytes."""
    if result.rc == 0 and kernel is not None:
        assert (result.out / "kernel").read_bytes() == kernel, f"kernel is not the guest's file\n{result}"
        for path in HOST_FILES:
            try:
                host = Path(path).read_bytes()
            except OSError:
                continue
            for name in os.listdir(result.out):
                assert (result.out / name).read_bytes() != host, f"{name} is the host's {path}\n{result}"
