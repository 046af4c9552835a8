"""Both ends of the result pipe: what the child sends (``run_child``) and how the parent
turns what came back, and how the child ended, into a result or one typed error
(``decode_end``).

The child sends one JSON object: ``{"ok": result, "layers": [...]}`` or
``{"error": {"class", "text", "warnings"}, "layers": [...]}``. Its exit status is 0 or 1
with a result; 70 if it died before sending one; 128 + N when the PID-namespace waiter
passes on a kill by signal N.
"""

from __future__ import annotations

import errno
import json
import os
import signal
from typing import Any, Callable

from .. import errors
from ..limits import LIMITS


def _xcpu(_signum: int, _frame: object) -> None:
    raise errors.LimitExceeded("the run used more CPU time than it may (limit sandbox_cpu_seconds)")


def _failure(err: BaseException, settings: Any) -> dict[str, Any]:
    if isinstance(err, errors.GuestbootError):
        # a subclass defined elsewhere (guesttype.IncapableKernel) travels as the class of
        # errors.py it derives from: the parent knows those, and they carry the exit code
        known = next(c for c in type(err).__mro__ if getattr(errors, c.__name__, None) is c)
        return {"class": known.__name__, "text": str(err), "warnings": list(err.warnings)}
    if isinstance(err, MemoryError):
        return {"class": "LimitExceeded", "text": (
            f"the run needed more memory than the {settings.memory >> 20} MiB it may use"
            " (limit sandbox_memory; PYGRUB_MAX_RAM_USAGE_MB)")}
    if isinstance(err, RecursionError):
        return {"class": "LimitExceeded", "text": "the run nested deeper than the interpreter's recursion limit"}
    if isinstance(err, OSError) and err.errno == errno.EFBIG:
        return {"class": "LimitExceeded", "text": (
            f"an output would be larger than {settings.file_size >> 20} MiB"
            " (limit max_output_file; PYGRUB_MAX_FILE_SIZE_MB)")}
    if isinstance(err, ImportError):  # a bug: a module the confined child cannot load
        return {"class": "internal", "text": (
            f"{type(err).__name__}: {err} (the confined child can import only guestboot's own modules;"
            " list a standard or codec module the library uses in sandbox.PRELOAD_MODULES)")}
    if isinstance(err, PermissionError):
        return {"class": "PermissionDenied", "text": f"in the sandboxed child: {err}"}
    return {"class": "internal", "text": f"{type(err).__name__}: {err}"}


def run_child(write_end: int, keep: tuple[int, ...], settings: Any, empty: str | None,
              work: Callable[[], dict[str, Any]], parent: int | None = None) -> int:
    """In the forked child: confine, work, send the result. Returns the exit status."""
    from .confine import Plan, enter

    layers: list[str] = []
    try:
        signal.signal(signal.SIGXCPU, _xcpu)
        plan = Plan(settings.uid, settings.gid, empty, settings.memory, settings.file_size,
                    settings.cpu_seconds, settings.namespaces, settings.seccomp, parent)
        layers = enter(plan, keep + (write_end,))
        payload: dict[str, Any] = {"ok": work()}
        code = 0
    except BaseException as err:  # every end is reported; the parent maps it to a code
        payload = {"error": _failure(err, settings)}
        code = 1
    payload["layers"] = layers
    try:
        data = json.dumps(payload).encode()
    except (TypeError, ValueError) as err:
        data = json.dumps({"error": {"class": "internal", "text": f"result not JSON: {err}"}}).encode()
        code = 1
    if len(data) > LIMITS.max_child_result:
        data = json.dumps({"error": {"class": "LimitExceeded", "text": (
            f"the sandboxed child's result is {len(data)} bytes, more than"
            f" {LIMITS.max_child_result} (limit max_child_result)")}, "layers": layers}).encode()
        code = 1
    view = memoryview(data)
    while view:
        view = view[os.write(write_end, view):]
    return code


def _killed_by(exit_code: int) -> int | None:
    if exit_code < 0:
        return -exit_code
    if exit_code > 128:  # passed on by the PID-namespace waiter
        return exit_code - 128
    return None


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def decode_end(data: bytes, status: int, rusage: Any, ended: str | None, settings: Any,
               report: list[str] | None) -> dict[str, Any]:
    if ended == "time":
        raise errors.LimitExceeded(
            f"the run took longer than {settings.wall_seconds:g} s and was stopped (limit sandbox_wall_seconds)")
    if ended == "size":
        raise errors.LimitExceeded(
            f"the sandboxed child sent more than {LIMITS.max_child_result} bytes (limit max_child_result)")
    exit_code = os.waitstatus_to_exitcode(status)
    try:
        payload = json.loads(data or b"{}")
    except ValueError:
        payload = {}
    if not isinstance(payload, dict):
        payload = {}
    layers = payload.get("layers")
    if report is not None and isinstance(layers, list):
        report.extend(str(line) for line in layers)
    if "ok" in payload and exit_code == 0 and isinstance(payload["ok"], dict):
        return payload["ok"]
    failure = payload.get("error")
    if not isinstance(failure, dict):
        killed = _killed_by(exit_code)
        cpu = (rusage.ru_utime + rusage.ru_stime) if rusage is not None else 0.0
        if killed == signal.SIGXCPU or (killed == signal.SIGKILL and cpu >= settings.cpu_seconds):
            raise errors.LimitExceeded(
                f"the run used more than {settings.cpu_seconds} s of CPU time and was stopped"
                " (limit sandbox_cpu_seconds)")
        if killed == signal.SIGSYS:
            raise errors.InternalError("the sandboxed child made a system call of another architecture and was killed")
        if killed is not None:
            raise errors.InternalError(f"the sandboxed child was killed by {_signal_name(killed)}")
        raise errors.InternalError(f"the sandboxed child ended with status {exit_code} and no result")
    cls = getattr(errors, str(failure.get("class", "")), None)
    if isinstance(cls, type) and issubclass(cls, errors.GuestbootError) and cls is not errors.GuestbootError:
        err = cls(str(failure.get("text", "")))
    else:
        err = errors.InternalError(f"in the sandboxed child: {failure.get('text', '')}")
    warnings = failure.get("warnings")
    if isinstance(warnings, list):
        err.warnings = [str(w) for w in warnings]
    raise err
