"""Run the part that reads guest bytes in a child process with fewer privileges.

This is the first step of the sandbox: the parent has already opened the image and the
output files; the child drops to the given uid/gid (and caps its resources) before it reads
a single guest byte, does the work on the descriptors it inherited, and sends a JSON result
back over a pipe. A guestboot error in the child comes back as the same error class in the
parent. Namespaces, seccomp and closing every other descriptor are a later issue's job.
"""

from __future__ import annotations

import json
import os
import resource
from typing import Any, Callable

from . import errors
from .limits import LIMITS

_RESULT_LIMIT = 1 << 20  # bytes of JSON the child may send back


def _drop_privileges(uid: int, gid: int) -> None:
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
    if os.getuid() != uid or os.geteuid() != uid:
        raise errors.GuestbootError(f"could not drop to uid {uid}")
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


def run_as(uid: int, gid: int, work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run ``work`` in a child as ``uid``/``gid``; return its JSON-able result."""
    preload()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        code = 0
        try:
            os.close(read_end)
            _drop_privileges(uid, gid)
            payload = {"ok": work()}
        except errors.GuestbootError as err:
            payload = {"error": {"class": type(err).__name__, "text": str(err)}}
            code = 1
        except BaseException as err:  # reported to the parent as an internal error
            payload = {"error": {"class": "internal", "text": f"{type(err).__name__}: {err}"}}
            code = 1
        try:
            data = json.dumps(payload).encode()
            view = memoryview(data)
            while view:
                view = view[os.write(write_end, view) :]
        finally:
            os._exit(code)
    os.close(write_end)
    chunks = []
    size = 0
    try:
        while True:
            chunk = os.read(read_end, 65536)
            if not chunk:
                break
            size += len(chunk)
            if size > _RESULT_LIMIT:
                raise errors.LimitExceeded("the deprivileged child sent more than 1 MiB of result")
            chunks.append(chunk)
    finally:
        os.close(read_end)
        _, status = os.waitpid(pid, 0)
    try:
        payload = json.loads(b"".join(chunks) or b"{}")
    except ValueError:
        payload = {}
    if "ok" in payload and os.waitstatus_to_exitcode(status) == 0:
        return payload["ok"]
    failure = payload.get("error") or {
        "class": "internal",
        "text": f"the deprivileged child ended with status {os.waitstatus_to_exitcode(status)}",
    }
    cls = getattr(errors, failure.get("class", ""), None)
    if isinstance(cls, type) and issubclass(cls, errors.GuestbootError):
        raise cls(failure.get("text", ""))
    raise errors.GuestbootError(f"internal error in the deprivileged child: {failure.get('text', '')}")
