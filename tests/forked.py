"""Run a function as another user, in a forked child of the test process (root only):
how the tests see what an unprivileged caller sees, with this interpreter's modules
already loaded (the other user may not be able to read them)."""

from __future__ import annotations

import os
from typing import Callable


def as_user(uid: int, gid: int, call: Callable[[], str], *, dumpable: bool = False) -> str:
    """``call()`` in a forked child that became ``uid``/``gid`` (no supplementary groups):
    the text it returns, or "Class: message" for what it raised. ``dumpable``: set
    PR_SET_DUMPABLE again, as in a process the user started (a uid change clears it,
    which makes /proc/self root's)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.setgroups([])
            os.setresgid(gid, gid, gid)
            os.setresuid(uid, uid, uid)
            if dumpable:
                import ctypes

                ctypes.CDLL(None).prctl(4, 1, 0, 0, 0)  # PR_SET_DUMPABLE
            try:
                text = call()
            except Exception as err:
                text = f"{type(err).__name__}: {err}"
            os.write(write_end, text.encode())
        finally:
            os._exit(0)
    os.close(write_end)
    try:
        chunks = []
        while chunk := os.read(read_end, 65536):
            chunks.append(chunk)
        return b"".join(chunks).decode()
    finally:
        os.close(read_end)
        os.waitpid(pid, 0)
