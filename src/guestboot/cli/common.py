"""What every guestboot front end shares: exit codes, one-line errors, opening the image.

Exit codes (documented in README, "Exit codes"):
  0 success · 2 usage error · 3 corrupt image · 4 unsupported format or feature ·
  5 a safety limit was reached · 6 not found (config, entry, file, partition) ·
  7 boot-config error · 8 output error on the host · 70 internal error (a bug: please
  report it with --debug output) · 130 interrupted
"""

from __future__ import annotations

import os
import sys
from typing import Callable

from ..errors import GuestbootError

EXIT_USAGE = 2
EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130


def fail(prog: str, message: str, code: int) -> int:
    sys.stderr.write(f"{prog}: {message}\n")
    sys.stderr.flush()
    return code


def guarded(prog: str, body: Callable[[], int], *, debug: bool) -> int:
    """Run ``body``; turn every failure into one line on stderr and a documented code."""
    try:
        return body()
    except GuestbootError as err:
        if debug:
            import traceback  # only on failure: it costs start-up time

            traceback.print_exc()
        return fail(prog, f"{err.kind}: {err}", err.exit_code)
    except KeyboardInterrupt:
        return fail(prog, "interrupted", EXIT_INTERRUPTED)
    except BrokenPipeError:
        # the reader went away (guestboot cat … | head): not our failure to report
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 0
    except Exception as err:  # the last line of defence: a bug must still be one line
        import traceback

        if debug:
            traceback.print_exc()
        where = ""
        tb = traceback.extract_tb(err.__traceback__)
        if tb:
            where = f" at {os.path.basename(tb[-1].filename)}:{tb[-1].lineno}"
        return fail(
            prog,
            f"internal error: {type(err).__name__}: {err}{where} (a bug; rerun with --debug and report it)",
            EXIT_INTERNAL,
        )


def open_image_fd(path: str) -> int:
    """Open the guest image read-only (a file or a block device); never follows into a
    directory; OutputError-free: a missing image is NotFound."""
    from ..errors import NotFound

    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | getattr(os, "O_NOCTTY", 0))
    except FileNotFoundError:
        raise NotFound(f"no such image: {path}") from None
    except IsADirectoryError:
        raise NotFound(f"{path} is a directory, not a disk image") from None
    except OSError as err:
        raise NotFound(f"cannot open image {path}: {err.strerror}") from None
    return fd
