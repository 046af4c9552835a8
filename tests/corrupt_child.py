"""Running a reader over a damaged image in a forked child capped in address space
(RLIMIT_AS) and time: a memory blow-up or a hang fails the test, not the machine. Used by
the FAT and exFAT corruption tests; ``exercise`` is the reader, given by the test."""

from __future__ import annotations

import os
import resource
import signal
import time
from typing import Callable

from guestboot.errors import GuestbootError
from guestboot.source import ByteSource, BytesSource, Run

HEADROOM = 512 * 1024 * 1024  # address space the child may add to what it inherited
CHILD_SECONDS = 5


class Patched(ByteSource):
    """A copy of ``base`` with some bytes replaced (and the size possibly cut)."""

    def __init__(self, base: BytesSource, patches: dict[int, bytes], size: int | None = None):
        self.base = base
        self.patches = patches
        self.size = base.size if size is None else size
        self.name = "patched"

    def _pread(self, offset: int, length: int) -> bytes:
        data = bytearray(self.base.pread(offset, length))
        for where, new in self.patches.items():
            for i, byte in enumerate(new):
                if offset <= where + i < offset + length:
                    data[where + i - offset] = byte
        return bytes(data)

    def runs(self, offset: int = 0, length: int | None = None):
        length = self._check_range(offset, length)
        if length:
            yield Run(None, offset, length, self.pread(offset, length))


def in_child(exercise: Callable[[ByteSource], None], source: ByteSource) -> str:
    """Run exercise(source) in a forked child capped in address space and time: the name
    of the GuestbootError class it raised, "ok", or what went wrong otherwise."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        os.close(read)
        outcome = "ok"
        try:
            with open("/proc/self/status") as status:
                vm = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))
            resource.setrlimit(resource.RLIMIT_AS, (vm + HEADROOM, vm + HEADROOM))
            exercise(source)
        except GuestbootError as err:
            outcome = f"{type(err).__name__}: {err}"
        except MemoryError:
            outcome = "MemoryError"
        except BaseException as err:  # noqa: BLE001 - reported to the parent as a failure
            outcome = f"FOREIGN {type(err).__name__}: {err}"
        os.write(write, outcome.encode()[:4000])
        os._exit(0)
    os.close(write)
    deadline = time.monotonic() + CHILD_SECONDS
    while time.monotonic() < deadline:
        done, _status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.02)
    else:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(read)
        return f"TIMEOUT after {CHILD_SECONDS} s"
    with os.fdopen(read, "rb") as pipe:
        return pipe.read().decode() or "child died"


def damaged(exercise: Callable[[ByteSource], None], source: ByteSource,
            kind: type[GuestbootError] = GuestbootError) -> str:
    outcome = in_child(exercise, source)
    assert outcome.split(":")[0] in {c.__name__ for c in (kind, *_subclasses(kind))}, outcome
    return outcome


def survives(exercise: Callable[[ByteSource], None], source: ByteSource) -> str:
    outcome = in_child(exercise, source)
    assert outcome == "ok" or outcome.split(":")[0] in {c.__name__ for c in _subclasses(GuestbootError)}, outcome
    return outcome


def _subclasses(kind: type) -> set[type]:
    found = set()
    for sub in kind.__subclasses__():
        found |= {sub, *_subclasses(sub)}
    return found
