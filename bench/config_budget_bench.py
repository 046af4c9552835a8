#!/usr/bin/env python3
"""What hostile boot configs cost: time, peak memory and outcome of each attack class.

The attacks are tests/config_attacks.py's (GRUB 2, GRUB legacy, SYSLINUX, systemd-boot): each config
and the files it reads are written into a temporary directory that stands for the guest's
partition (tests/dirfs.py) and evaluated by guestboot's own evaluator in a fresh
interpreter with an address-space limit (--as-mib, default 1024) and a wall-clock limit
(--timeout, default 60 s). Printed per attack: the evaluation's seconds (interpreter
start-up left out), the child's peak RSS (start-up included: about 25 MiB of it is Python
and guestboot's modules), and the outcome (the typed error, or the number of menu
entries; every entry is also run, as listing a menu does). The issue's target: any config
of a few MiB finishes or fails within 2 s and 64 MiB.

Not a test: run it by hand (bench/README.md):  python3 bench/config_budget_bench.py [-k NAME]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "src"), str(HERE.parent / "tests")]


def main() -> int:
    from config_attacks import all_attacks, run_in_child, write_tree

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-k", default="", help="only attacks whose name contains this")
    ap.add_argument("--as-mib", type=int, default=1024)
    ap.add_argument("--timeout", type=float, default=60.0)
    args = ap.parse_args()
    print(f"{'attack':28} {'seconds':>8} {'peak MiB':>9}  outcome")
    worst_t = worst_m = 0.0
    for kind, name, files in all_attacks():
        if args.k not in name:
            continue
        with tempfile.TemporaryDirectory() as top:
            write_tree(Path(top), files)
            r = run_in_child(kind, Path(top), as_mib=args.as_mib, timeout=args.timeout)
        if r.get("hang"):
            outcome = f"HANG (killed after {args.timeout:.0f} s)"
        elif "error" in r:
            outcome = f"{r['error']}: {r['message']}" + ("" if r.get("typed") else "  [UNTYPED]")
        else:
            outcome = f"menu of {r['entries']} entries"
        worst_t, worst_m = max(worst_t, r["seconds"]), max(worst_m, r.get("peak_mib", 0.0))
        print(f"{name:28} {r['seconds']:8.2f} {r.get('peak_mib', 0.0):9.1f}  {outcome}", flush=True)
    print(f"worst: {worst_t:.2f} s, {worst_m:.1f} MiB peak RSS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
