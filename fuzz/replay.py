"""Run a reproducer a campaign saved (fuzz/campaign.py) again and say what happens.

    python -m fuzz.replay FINDING.json [...]

Prints, per file: the target, how long it took, and the outcome (ok, a typed error's class
and message, or the untyped exception with its traceback). Exit status 1 when any file
still breaks the contract (untyped, or longer than the hang limit).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fuzz.campaign import HANG_SECONDS, Executor, Seeds  # noqa: E402


def replay(case: dict, executor: Executor) -> tuple[str, float, bool]:
    """(outcome, seconds, kept its contract) of one reproducer."""
    from guestboot.errors import GuestbootError

    start = time.monotonic()
    try:
        typed = executor.run(case)
        outcome, good = f"ok ({typed})" if typed else "ok", True
    except GuestbootError as err:  # a target that lets it through (none should)
        outcome, good = f"{type(err).__name__}: {err}", True
    except Exception as err:
        outcome, good = "".join(traceback.format_exception(err)).rstrip(), False
    elapsed = time.monotonic() - start
    return outcome, elapsed, good and elapsed <= HANG_SECONDS


def main(argv: list[str] | None = None) -> int:
    from fuzz import seeds

    files = (argv if argv is not None else sys.argv[1:])
    image_seeds, _missing = seeds.build()
    scratch = tempfile.mkdtemp(prefix="fuzz-replay-")
    executor = Executor(Seeds(image_seeds, seeds.config_seeds()), scratch)
    bad = 0
    try:
        for name in files:
            case = json.loads(Path(name).read_text())
            outcome, elapsed, good = replay(case, executor)
            bad += not good
            print(f"{name}: {case['target']} {elapsed:.2f} s {'' if good else 'FINDING '}{outcome}")
    finally:
        executor.close()
        os.rmdir(scratch)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
