#!/usr/bin/env python3
"""What do the SYSLINUX reader and GRUB's regexp matcher cost? Not a test.

* syslinux: parse Debian 10's install ISO config (isolinux.cfg and the 20 files it
  INCLUDEs, from tests/data/corpus) and choose its default, through a directory-backed
  file system (tests/dirfs.py), best and median of --reps runs.
* regexp, typical: ``^vmlinuz-([0-9.]+)-(.*)$`` on a kernel file name, per match.
* regexp, hostile: ``(a*)*b`` on N times "a" (no match), guestboot's matcher (work grows
  with N) against Python's backtracking ``re`` (work doubles with each "a"; run only up to
  --re-max characters).
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]

from dirfs import DirFileSystem, device_map  # noqa: E402
from guestboot.boot.grub2.regex import compile_ere  # noqa: E402
from guestboot.boot.syslinux import parse_config  # noqa: E402
from guestboot.errors import LimitExceeded  # noqa: E402
from guestboot.select import choose  # noqa: E402

DEBIAN_10 = ROOT / "tests" / "data" / "corpus" / "uroot" / "syslinux" / "testdata" / "debian_10_install"


def timed(fn, reps: int) -> tuple[float, float]:
    runs = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return min(runs), statistics.median(runs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--re-max", type=int, default=24, help="longest input for Python's re (exponential)")
    args = ap.parse_args()

    devices = device_map(hd0=DirFileSystem(DEBIAN_10))

    def syslinux() -> None:
        menu = parse_config(devices, "hd0", "/isolinux/isolinux.cfg", check_files=False)
        choose(menu).entry.run()

    best, median = timed(syslinux, args.reps)
    print(f"syslinux  Debian 10 isolinux.cfg + includes: best {best * 1e3:.1f} ms, median {median * 1e3:.1f} ms")

    pattern = compile_ere("^vmlinuz-([0-9.]+)-(.*)$")
    best, median = timed(lambda: pattern.search("vmlinuz-6.1.0-18-amd64"), args.reps * 50)
    print(f"regexp    typical kernel-name match: best {best * 1e6:.0f} us, median {median * 1e6:.0f} us")

    hostile = compile_ere("(a*)*b")
    python_re = re.compile("(a*)*b")
    for n in (16, 20, args.re_max, 1000, 3000):
        text = "a" * n

        def ours() -> None:
            try:
                hostile.search(text)
            except LimitExceeded:
                pass

        best, _ = timed(ours, 3)
        line = f"regexp    (a*)*b on {n:5d} chars: guestboot {best * 1e3:8.1f} ms"
        if n <= args.re_max:
            best_re, _ = timed(lambda: python_re.search(text), 1)
            line += f", Python re {best_re * 1e3:8.1f} ms"
        print(line)


if __name__ == "__main__":
    main()
