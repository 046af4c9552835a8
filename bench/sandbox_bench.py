#!/usr/bin/env python3
"""What the sandbox costs at start-up.

Builds (once, in a temporary directory) a small ext4 image by mke2fs -d with a
one-entry grub.cfg and a 1 MiB kernel, then times, each --reps times after one untimed
run, whole processes of:
  list             - `guestboot list IMAGE` (the sandbox on, the default)
  list-no-sandbox  - `guestboot list --no-sandbox IMAGE`
and, inside one process, the parts: preload_native() (the standard and codec modules a
child loads before it confines itself), preload() (every module: what a child without a
mount namespace loads first), and sandbox.run() of a function that does nothing, with
every layer and with none.
Prints medians and minima in milliseconds, wall time and CPU time (user + system of the
process and its children: steadier than wall time on a busy machine). Not a test: run it by hand (bench/README.md).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def build(top: Path) -> Path:
    tree = top / "tree"
    (tree / "boot" / "grub").mkdir(parents=True)
    (tree / "boot" / "grub" / "grub.cfg").write_text("menuentry 'One' {\n  linux /boot/vmlinuz root=/dev/vda1\n}\n")
    (tree / "boot" / "vmlinuz").write_bytes(os.urandom(1 << 20))
    image = top / "disk.img"
    subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", "-d", str(tree), str(image), "16M"], check=True)
    return image


def timed(argv: list[str], reps: int) -> tuple[list[float], list[float]]:
    """Wall time and CPU time (user + system, the process and its children) per run, ms."""
    import resource

    subprocess.run(argv, check=True, capture_output=True)
    wall, cpu = [], []
    for _ in range(reps):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True)
        wall.append((time.perf_counter() - start) * 1000)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append((after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) * 1000)
    return wall, cpu


def in_process(reps: int) -> dict[str, list[float]]:
    code = f"""
import json, time
t = time.perf_counter()
import guestboot.cli.main, guestboot.pipeline
base = time.perf_counter()
from guestboot.sandbox import Settings, preload, preload_native, run
preload_native()
native = time.perf_counter()
preload()
pre = time.perf_counter()
out = {{"preload_native": [(native - base) * 1000], "preload (fallback)": [(pre - native) * 1000],
        "run-all-layers": [], "run-no-layers": []}}
for _ in range({reps}):
    a = time.perf_counter(); run(lambda: {{}}, (), Settings()); b = time.perf_counter()
    run(lambda: {{}}, (), Settings(namespaces=False, seccomp=False)); c = time.perf_counter()
    out["run-all-layers"].append((b - a) * 1000); out["run-no-layers"].append((c - b) * 1000)
print(json.dumps(out))
"""
    import json

    done = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return json.loads(done.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=11)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        image = build(Path(tmp))
        on = timed([sys.executable, "-m", "guestboot", "list", str(image)], args.reps)
        off = timed([sys.executable, "-m", "guestboot", "list", "--no-sandbox", str(image)], args.reps)
    rows = {"list": on[0], "list-no-sandbox": off[0], "list (cpu)": on[1], "list-no-sandbox (cpu)": off[1]}
    rows.update(in_process(args.reps))
    print(f"{'what':<22} {'median ms':>10} {'min ms':>8}")
    for name, times in rows.items():
        print(f"{name:<22} {statistics.median(times):>10.1f} {min(times):>8.1f}")
    for what, a, b in (("wall", on[0], off[0]), ("cpu", on[1], off[1])):
        print(f"sandbox cost on a whole run ({what}): {statistics.median(a) - statistics.median(b):.1f} ms median,"
              f" {min(a) - min(b):.1f} ms between the fastest runs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
