"""The --runas child: drops uid/gid before doing the work, and errors come back typed."""

from __future__ import annotations

import os

import pytest

from guestboot import errors
from guestboot.sandbox import run_as

NOBODY = 65534

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="dropping to another uid needs root")


@needs_root
def test_child_runs_as_the_given_uid_and_gid():
    result = run_as(NOBODY, NOBODY, lambda: {"uid": os.getuid(), "euid": os.geteuid(),
                                             "gid": os.getgid(), "groups": os.getgroups()})
    assert result == {"uid": NOBODY, "euid": NOBODY, "gid": NOBODY, "groups": []}
    assert os.geteuid() == 0  # the parent keeps its identity


@needs_root
def test_child_cannot_open_what_only_root_can_but_uses_inherited_fds(tmp_path):
    secret = tmp_path / "secret"
    secret.write_bytes(b"guest bytes")
    secret.chmod(0o600)
    fd = os.open(secret, os.O_RDONLY)

    def work():
        try:
            open(secret, "rb")
            opened = True
        except PermissionError:
            opened = False
        return {"opened_by_name": opened, "via_fd": os.pread(fd, 5, 0).decode()}

    try:
        assert run_as(NOBODY, NOBODY, work) == {"opened_by_name": False, "via_fd": "guest"}
    finally:
        os.close(fd)


@pytest.mark.parametrize("cls", [errors.CorruptImage, errors.NotFound, errors.LimitExceeded])
def test_typed_errors_cross_the_pipe(cls):
    def work():
        raise cls("bad thing", where="(hd0,gpt2)", offset=0x400)

    with pytest.raises(cls) as info:
        run_as(os.getuid(), os.getgid(), work)
    assert str(info.value) == "(hd0,gpt2): bad thing (at byte offset 0x400)"


def test_a_crash_in_the_child_is_an_error_not_a_hang():
    def work():
        return {"x": 1 // 0}

    with pytest.raises(errors.InternalError, match="ZeroDivisionError") as info:
        run_as(os.getuid(), os.getgid(), work)
    assert info.value.exit_code == 70  # a documented code, not the 1 no table lists


def test_a_child_killed_by_a_signal_is_an_internal_error():
    import signal

    def work():
        os.kill(os.getpid(), signal.SIGKILL)
        return {}

    with pytest.raises(errors.InternalError, match="killed by SIGKILL"):
        run_as(os.getuid(), os.getgid(), work)


def test_a_result_over_the_cap_is_a_limit():
    from guestboot.limits import LIMITS

    with pytest.raises(errors.LimitExceeded, match="max_child_result"):
        run_as(os.getuid(), os.getgid(), lambda: {"x": "y" * LIMITS.max_child_result})


def test_warnings_cross_the_pipe_with_the_error():
    def work():
        err = errors.NotFound("no config")
        err.warnings = ["gpt2: clipped"]
        raise err

    with pytest.raises(errors.NotFound) as info:
        run_as(os.getuid(), os.getgid(), work)
    assert info.value.warnings == ["gpt2: clipped"]


@pytest.mark.parametrize("uid,cls", [(0, errors.UsageError), (-1, errors.UsageError), (1 << 40, errors.UsageError)])
def test_check_target_refuses_root_and_absurd_ids(uid, cls):
    from guestboot.sandbox import check_target

    with pytest.raises(cls):
        check_target(uid, 1000)
