"""Kernel inspection speed: how long guestboot takes to say what a kernel boots as.

    python3 bench/kernel_inspect_bench.py [--reps N]

Uses the Debian kernel tests/builders/boot.py caches (apt-get download on first use) and
the vmlinux the real xz gets out of it. Rows:

- ``inspect bzImage``: kernel.inspect.inspect on the bzImage (setup header, then the xz
  payload decoded as a stream up to the ELF note segment);
- ``xz -dc payload``: the real xz decompressing the whole payload (the floor for a tool
  that decompresses first, as Linux's extract-vmlinux and Xen's loader do);
- ``inspect vmlinux.CODEC``: the vmlinux compressed by each codec's tool, inspected (ELF
  header, notes, and the "Linux version" banner scan);
- ``decode vmlinux.CODEC``: the whole stream decoded (what the Firecracker door writes).

Median and best of ``--reps`` runs, in-process (the imports are not timed).
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

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE.parent / "src"))

from builders.boot import debian_kernel  # noqa: E402
from builders.debian_files import vmlinux_of  # noqa: E402
from guestboot.kernel import stream  # noqa: E402
from guestboot.kernel.inspect import inspect  # noqa: E402
from guestboot.source import FileSource  # noqa: E402

COMPRESSORS = {
    "gzip": ["gzip", "-n", "-9", "-c"],
    "bzip2": ["bzip2", "-9", "-c"],
    "lzma": ["lzma", "-9", "-c"],
    "xz": ["xz", "--check=crc32", "--x86", "--lzma2=dict=32MiB", "-c"],
    "lzo": ["lzop", "-9", "-c"],
    "lz4": ["lz4", "-l", "-9", "-c"],
    "zstd": ["zstd", "-19", "-q", "-c"],
}  # the levels Linux's scripts/Makefile.lib uses (zstd: -19 for a vmlinux, -22 --ultra for modules)


def timed(work, reps: int) -> tuple[float, float]:
    runs = []
    for _ in range(reps):
        start = time.perf_counter()
        work()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs), min(runs)


def source(path: Path) -> FileSource:
    return FileSource(os.open(path, os.O_RDONLY), name=path.name)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    kernel = debian_kernel()
    vmlinux, codec = vmlinux_of(kernel)
    rows = [("inspect bzImage", timed(lambda: inspect(source(kernel)), args.reps))]
    facts = inspect(source(kernel))
    payload = facts.details["payload"]
    data = kernel.read_bytes()[payload["offset"] : payload["offset"] + payload["length"]]
    rows.append((f"{codec} -dc payload (the tool)", timed(
        lambda: subprocess.run([COMPRESSORS[codec][0], "-dc"], input=data, capture_output=True), args.reps)))
    with tempfile.TemporaryDirectory() as tmp:
        for name, argv in COMPRESSORS.items():
            packed = Path(tmp) / f"vmlinux.{name}"
            with open(vmlinux, "rb") as src, open(packed, "wb") as dst:
                if subprocess.run(argv, stdin=src, stdout=dst).returncode != 0:
                    continue
            rows.append((f"inspect vmlinux.{name}", timed(lambda: inspect(source(packed)), args.reps)))
            rows.append((f"decode vmlinux.{name}", timed(
                lambda: stream.Reader(source(packed), codec=name).stream_to(lambda piece: None), args.reps)))
    size = vmlinux.stat().st_size
    print(f"kernel {kernel.name}: payload {codec}, {payload['length']} bytes; vmlinux {size} bytes;"
          f" {facts.summary()}")
    print(f"{'row':<32} {'median s':>9} {'best s':>9}")
    for name, (median, best) in rows:
        print(f"{name:<32} {median:>9.3f} {best:>9.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
