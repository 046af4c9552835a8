"""What the sandbox leaves in $TMPDIR (issue 9): the child chroots into one shared empty,
read-only directory per user, so even a run killed with SIGKILL (libxl's timeout, a
closed console) leaves nothing behind; a directory someone else planted under that name,
or one that is not empty or not read-only, is never used.
"""

from __future__ import annotations

import os
import signal
import stat

import pytest

from guestboot.sandbox import Settings, run

SHARED = f"guestboot-empty-{os.geteuid()}"


def _in_starter(tmpdir, work, keep=()):
    """Fork a process that stands for guestboot: it sets TMPDIR and runs ``work`` in the
    confined child. Returns its pid."""
    starter = os.fork()
    if starter == 0:
        code = 1
        try:
            os.environ["TMPDIR"] = str(tmpdir)
            run(work, keep, Settings())
            code = 0
        finally:
            os._exit(code)
    return starter


def _entries(tmpdir):
    return sorted(p.name for p in tmpdir.iterdir())


def test_a_run_leaves_only_the_shared_empty_directory(tmp_path):
    starter = _in_starter(tmp_path, lambda: {"ok": True})
    _pid, status = os.waitpid(starter, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert _entries(tmp_path) == [SHARED]
    shared = tmp_path / SHARED
    info = shared.lstat()
    assert stat.S_ISDIR(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o555
    assert list(shared.iterdir()) == []


def test_a_run_killed_with_sigkill_leaves_nothing_new(tmp_path):
    read_end, write_end = os.pipe()

    def work():
        os.write(write_end, b"working")
        while True:
            os.sched_yield()

    starter = _in_starter(tmp_path, work, (write_end,))
    os.close(write_end)
    try:
        assert os.read(read_end, 16) == b"working"
        os.kill(starter, signal.SIGKILL)
        os.waitpid(starter, 0)
    finally:
        os.close(read_end)
    assert _entries(tmp_path) == [SHARED]


def _writable(path):
    path.mkdir()
    path.chmod(0o755)


def _not_empty(path):
    path.mkdir()
    (path / "planted").write_bytes(b"x")
    path.chmod(0o555)


def _symlink(path):
    target = path.parent / "elsewhere"
    target.mkdir(mode=0o555)
    path.symlink_to(target)


def _a_file(path):
    path.write_bytes(b"")


@pytest.mark.parametrize("plant", [_writable, _not_empty, _symlink, _a_file], ids=lambda f: f.__name__[1:])
def test_an_unsound_shared_directory_is_not_used(tmp_path, plant, monkeypatch):
    """The run falls back to a directory of its own, removed when the child has ended;
    the planted one is left as it was."""
    from guestboot import sandbox

    plant(tmp_path / SHARED)
    before = _entries(tmp_path)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    chosen, remove = sandbox._empty_dir()
    assert chosen is not None and os.path.basename(chosen) != SHARED and remove
    os.rmdir(chosen)
    seen_root = []

    def work():
        return {"root": sorted(os.listdir("/")) if os.access("/", os.R_OK) else None}

    read_end, write_end = os.pipe()
    starter = os.fork()
    if starter == 0:
        code = 1
        try:
            os.close(read_end)
            os.environ["TMPDIR"] = str(tmp_path)
            result = run(work, (), Settings())
            os.write(write_end, repr(result).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    try:
        seen_root.append(os.read(read_end, 65536))
    finally:
        os.close(read_end)
    _pid, status = os.waitpid(starter, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert b"planted" not in seen_root[0]  # the child's root was not the planted directory
    assert _entries(tmp_path) == before
    if plant is _not_empty:
        assert (tmp_path / SHARED / "planted").read_bytes() == b"x"
    for path in tmp_path.iterdir():  # let tmp_path be removed
        if path.is_dir() and not path.is_symlink():
            path.chmod(0o755)
