"""What the sandbox leaves in $TMPDIR (issue 9): nothing. The child chroots into an empty
directory the run makes and removes; a run killed with SIGKILL (libxl's timeout, a closed
console) cannot remove its own, so its name carries the run's pid and a later run
removes it, only if it is ours, empty, its process is gone and it is older than a run
can live.
"""

from __future__ import annotations

import os
import signal
import time

from guestboot.limits import LIMITS
from guestboot.sandbox import EMPTY_PREFIX, Settings, run


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


def _finish(starter):
    _pid, status = os.waitpid(starter, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def _entries(tmpdir):
    return sorted(p.name for p in tmpdir.iterdir())


def _killed_run(tmpdir):
    """A run killed with SIGKILL while its child works: what it left in ``tmpdir``."""
    read_end, write_end = os.pipe()

    def work():
        os.write(write_end, b"working")
        while True:
            os.sched_yield()

    starter = _in_starter(tmpdir, work, (write_end,))
    os.close(write_end)
    try:
        assert os.read(read_end, 16) == b"working"
        os.kill(starter, signal.SIGKILL)
        os.waitpid(starter, 0)
    finally:
        os.close(read_end)
    return starter


def test_a_run_leaves_nothing_in_tmpdir(tmp_path):
    _finish(_in_starter(tmp_path, lambda: {"ok": True}))
    assert _entries(tmp_path) == []


def _age(path, seconds):
    past = time.time() - seconds
    os.utime(path, (past, past))


def test_what_a_killed_run_left_is_removed_by_a_run_after_its_time_is_up(tmp_path):
    """Not before the wall-clock limit of a run has passed since it was made: a live run
    in another PID namespace may have a pid this process cannot see."""
    starter = _killed_run(tmp_path)
    left = _entries(tmp_path)
    assert len(left) == 1 and left[0].startswith(f"{EMPTY_PREFIX}{starter}-")
    _finish(_in_starter(tmp_path, lambda: {"ok": True}))
    assert _entries(tmp_path) == left  # too young: it stays
    _age(tmp_path / left[0], LIMITS.sandbox_wall_seconds + 5)
    _finish(_in_starter(tmp_path, lambda: {"ok": True}))
    assert _entries(tmp_path) == []


def test_a_live_runs_directory_and_what_is_not_ours_stay(tmp_path):
    live = tmp_path / f"{EMPTY_PREFIX}{os.getpid()}-feedface"  # this test's process is alive
    live.mkdir(mode=0o555)
    not_empty = tmp_path / f"{EMPTY_PREFIX}999999999-0000"  # no such process, but not empty
    not_empty.mkdir()
    (not_empty / "something").write_bytes(b"x")
    other_name = tmp_path / "guestboot-emptyish-1"
    other_name.mkdir()
    for path in (live, not_empty, other_name):
        _age(path, LIMITS.sandbox_wall_seconds + 5)
    kept = [live.name, not_empty.name, other_name.name]
    if os.geteuid() == 0:  # another user's leftover is not ours to remove
        foreign = tmp_path / f"{EMPTY_PREFIX}999999998-0000"
        foreign.mkdir()
        os.chown(foreign, 65534, 65534)
        _age(foreign, LIMITS.sandbox_wall_seconds + 5)
        kept.append(foreign.name)
    _finish(_in_starter(tmp_path, lambda: {"ok": True}))
    assert _entries(tmp_path) == sorted(kept)
    live.chmod(0o755)
