"""Run the part that reads guest bytes in a child process with fewer privileges.

This is the first step of the sandbox: the parent has already opened the image and the
output files; the child drops to the given uid/gid (and caps its resources) before it reads
a single guest byte, does the work on the descriptors it inherited (``pipeline.run``), and
sends a JSON result back over a pipe. Every way the child can end maps to a documented
exit code: a guestboot error comes back as the same error class (with its warnings); a
crash, a kill by a signal or a garbled result is InternalError (70); a result larger than
LIMITS.max_child_result is LimitExceeded (5); a parent that is not root, or a drop that
does not take, is PermissionDenied (9). Namespaces, seccomp and closing every other
descriptor are a later issue's job.
"""

from __future__ import annotations

import json
import os
import resource
from typing import Any, Callable

from . import errors
from .limits import LIMITS

MAX_ID = (1 << 32) - 2  # uid_t is 32 bits; (uid_t)-1 means "unchanged" to setresuid


def check_target(uid: int, gid: int) -> None:
    """Refuse, before anything is opened, what cannot work: not root, or "drop" to root."""
    for what, value in (("uid", uid), ("gid", gid)):
        if not 0 <= value <= MAX_ID:
            raise errors.UsageError(f"--runas: {what} {value} is out of range (0 to {MAX_ID})")
    if uid == 0:
        raise errors.UsageError("--runas=0 would read guest bytes as root; give an unprivileged user")
    if os.geteuid() != 0:
        raise errors.PermissionDenied(
            f"--runas needs root to change to uid {uid} (guestboot-pygrub runs as uid {os.geteuid()})"
        )


def _drop_privileges(uid: int, gid: int) -> None:
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
    if os.getuid() != uid or os.geteuid() != uid or os.getgid() != gid:
        raise errors.PermissionDenied(f"could not drop to uid {uid}, gid {gid}")
    for limit, value in (
        (resource.RLIMIT_CORE, 0),
        (resource.RLIMIT_NPROC, 0),
        (resource.RLIMIT_FSIZE, LIMITS.max_output_total),
    ):
        try:
            resource.setrlimit(limit, (value, value))
        except (ValueError, OSError):
            pass  # a limit the platform lacks; the uid drop above is what matters


def preload() -> None:
    """Import every guestboot module (and so every standard module they use) now: after
    the privilege drop the child may not be able to read the interpreter's files, and it
    should not need to open anything by name at all."""
    import importlib
    import pkgutil

    import guestboot

    for module in pkgutil.walk_packages(guestboot.__path__, "guestboot."):
        if not module.name.endswith("__main__"):  # that one runs the CLI
            importlib.import_module(module.name)


def _child(write_end: int, uid: int, gid: int, work: Callable[[], dict[str, Any]]) -> int:
    try:
        _drop_privileges(uid, gid)
        payload: dict[str, Any] = {"ok": work()}
        code = 0
    except errors.GuestbootError as err:
        payload = {"error": {"class": type(err).__name__, "text": str(err), "warnings": list(err.warnings)}}
        code = 1
    except OSError as err:  # e.g. setuid refused
        if isinstance(err, PermissionError):
            payload = {"error": {"class": "PermissionDenied", "text": f"in the deprivileged child: {err}"}}
        else:
            payload = {"error": {"class": "internal", "text": f"{type(err).__name__}: {err}"}}
        code = 1
    except BaseException as err:  # a bug in the child; reported to the parent as one
        payload = {"error": {"class": "internal", "text": f"{type(err).__name__}: {err}"}}
        code = 1
    data = json.dumps(payload).encode()
    if len(data) > LIMITS.max_child_result:
        data = json.dumps({"error": {"class": "LimitExceeded", "text": (
            f"the deprivileged child's result is {len(data)} bytes, more than"
            f" {LIMITS.max_child_result} (limit max_child_result)")}}).encode()
        code = 1
    view = memoryview(data)
    while view:
        view = view[os.write(write_end, view) :]
    return code


def run_as(uid: int, gid: int, work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run ``work`` in a child as ``uid``/``gid``; return its JSON-able result."""
    preload()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never returns into the caller's code
        code = 70
        try:
            os.close(read_end)
            code = _child(write_end, uid, gid, work)
        finally:
            os._exit(code)
    os.close(write_end)
    chunks = []
    size = 0
    too_much = False
    try:
        while True:
            chunk = os.read(read_end, 65536)
            if not chunk:
                break
            size += len(chunk)
            if size > LIMITS.max_child_result:
                too_much = True
                break
            chunks.append(chunk)
    finally:
        os.close(read_end)  # a child still writing gets EPIPE and ends
        _, status = os.waitpid(pid, 0)
    if too_much:
        raise errors.LimitExceeded(
            f"the deprivileged child sent more than {LIMITS.max_child_result} bytes (limit max_child_result)"
        )
    exit_code = os.waitstatus_to_exitcode(status)
    try:
        payload = json.loads(b"".join(chunks) or b"{}")
    except ValueError:
        payload = {}
    if not isinstance(payload, dict):
        payload = {}
    if "ok" in payload and exit_code == 0:
        return payload["ok"]
    failure = payload.get("error")
    if not isinstance(failure, dict):
        if exit_code < 0:
            import signal

            name = signal.Signals(-exit_code).name if -exit_code in signal.valid_signals() else str(-exit_code)
            raise errors.InternalError(f"the deprivileged child was killed by {name}")
        raise errors.InternalError(f"the deprivileged child ended with status {exit_code} and no result")
    cls = getattr(errors, str(failure.get("class", "")), None)
    if isinstance(cls, type) and issubclass(cls, errors.GuestbootError) and cls is not errors.GuestbootError:
        err = cls(str(failure.get("text", "")))
    else:
        err = errors.InternalError(f"in the deprivileged child: {failure.get('text', '')}")
    warnings = failure.get("warnings")
    if isinstance(warnings, list):
        err.warnings = [str(w) for w in warnings]
    raise err
