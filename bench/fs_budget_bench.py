#!/usr/bin/env python3
"""Time and peak memory of the file-system budget attacks, for one or more guestboot trees.

Builds the attacks of tests/builders/budget_attacks.py once (as root: a loop mount) in a
temporary directory, then runs each through the guestboot of every tree given with
--src (a directory holding the ``guestboot`` package: the src/ of a checkout; default:
this checkout's), sandboxed and with --no-sandbox, and prints one row per run:

  deleted-slots-x4  `guestboot list` of a GPT disk whose four partitions alias one ext4 file
                    system; its grub.cfg searches every device 400 times for a name missing
                    from a 1.5 MB directory of live and deleted slots
  alias-ext2        `guestboot cat` of a file whose block map aliases one block ~50 MiB
                    worth on an 8 MiB volume
  sparse-100M       `guestboot cat` of a 100 MiB `truncate -s` file of ext4 (and the space
                    the output takes: du)
  holey-100M        the same for a file with 4 KiB of data on each side of a 100 MiB hole
  sparse-1T         `guestboot cat` of a 1 TiB `truncate -s` file of ext4

Columns: wall seconds, peak RSS of the run (wait4's ru_maxrss: the largest of the
guestboot process and, sandboxed, its confined child), exit status, the output's size and the space it takes.
A run is killed after --timeout seconds (shown as TIMEOUT).

    sudo python3 bench/fs_budget_bench.py --src /path/to/old/src --src src
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from builders import budget_attacks as attacks  # noqa: E402


def build(work: Path) -> dict[str, tuple[Path, str]]:
    """name -> (image, cat path or None for list)."""
    slots = work / "slots"
    slots.mkdir()
    disk = attacks.aliased_gpt(attacks.deleted_slots_fs(slots), slots / "disk.img", copies=4)
    alias = work / "alias"
    alias.mkdir()
    alias_image = attacks.aliasing_ext2(alias)
    sparse = work / "sparse"
    tree = attacks.sparse_tree(sparse / "tree", 100)
    sparse_image = attacks.sparse_fs("ext4", tree, sparse / "fs.img")
    return {
        "deleted-slots-x4": (disk, ""),
        "alias-ext2": (alias_image, "/boot/alias"),
        "sparse-100M": (sparse_image, "/boot/sparse-initrd"),
        "holey-100M": (sparse_image, "/boot/holey"),
        "sparse-1T": (sparse_image, "/boot/huge"),
    }


def run(src: str, image: Path, path: str, sandbox: bool, out: Path, timeout: float) -> tuple[str, float, int, int]:
    """(status, seconds, peak RSS KiB, exit code) of one guestboot run."""
    argv = [sys.executable, "-m", "guestboot"]
    argv += ["cat", str(image), path] if path else ["list", str(image)]
    if not sandbox:
        argv.insert(4, "--no-sandbox")
    env = dict(os.environ, PYTHONPATH=src)
    with open(out, "wb") as stdout:
        started = time.monotonic()
        child = subprocess.Popen(argv, stdout=stdout, stderr=subprocess.DEVNULL, env=env)
        status = "ok"
        while True:
            pid, code, usage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() - started > timeout:
                child.kill()
                pid, code, usage = os.wait4(child.pid, 0)
                status = "TIMEOUT"
                break
            time.sleep(0.01)
        elapsed = time.monotonic() - started
    child.returncode = os.waitstatus_to_exitcode(code)
    # wait4 reports the child's usage together with its reaped descendants' (Linux: RUSAGE_BOTH),
    # so a sandboxed run's ru_maxrss covers the confined child too
    return status, elapsed, usage.ru_maxrss, child.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--src", action="append", help="a guestboot source tree (repeat to compare)")
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("-k", dest="only", action="append", help="run only this attack (repeatable)")
    args = parser.parse_args()
    sources = args.src or [str(HERE.parent / "src")]
    if attacks.can_build() is not None:
        print(attacks.can_build(), file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="gb-fs-budget-bench-"))
    try:
        cases = build(work)
        print(f"{'attack':18} {'mode':11} {'src':28} {'seconds':>8} {'peak KiB':>9} {'exit':>4}"
              f" {'out bytes':>13} {'out du':>10}")
        for name, (image, path) in cases.items():
            if args.only and name not in args.only:
                continue
            for src in sources:
                for sandbox in (True, False):
                    out = work / "out"
                    status, elapsed, rss, code = run(src, image, path, sandbox, out, args.timeout)
                    size, used = out.stat().st_size, out.stat().st_blocks * 512
                    out.unlink()
                    shown = src if len(src) <= 28 else "…" + src[-27:]
                    print(f"{name:18} {'sandbox' if sandbox else 'no-sandbox':11} {shown:28}"
                          f" {elapsed:8.2f} {rss:9d} {code if status == 'ok' else status:>4} {size:13d} {used:10d}",
                          flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
