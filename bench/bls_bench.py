#!/usr/bin/env python3
"""How long do Boot Loader Specification menus take to evaluate? In-process timings (no
interpreter start-up) of:

  blscfg N     - Fedora's grub.cfg line `blscfg` over N entry files in /loader/entries
                 (grubby's form: options $kernelopts, grub_users, grub_arg, grub_class),
                 read, sorted newest first by RPM version order, menu built
  sd-boot N    - systemd-boot's menu over N kernel-install style Type #1 entries
                 (sort-key, machine-id, version) plus loader.conf's default glob
  sd-boot worst - 1024 entries whose versions are max_sort_field_bytes long and differ
                 only at the end: the most work the bounded sort can be made to do

The entry files live in a host directory read through tests/dirfs.py (the file-system
drivers are timed by extract_bench.py; this measures the parsing and sorting). Each
row: the median and best of --reps runs after one untimed run.

    python3 bench/bls_bench.py [--reps N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from dirfs import DirFileSystem, device_map  # noqa: E402

from guestboot.boot import sdboot  # noqa: E402
from guestboot.boot.grub2 import evaluate  # noqa: E402
from guestboot.limits import LIMITS  # noqa: E402

MID = "2a6f3c1e8d9b4f7a9c0e1d2b3a4f5e6d"


def fedora_tree(top: Path, count: int) -> Path:
    entries = top / "loader" / "entries"
    entries.mkdir(parents=True)
    (top / "grub2").mkdir()
    (top / "grub2" / "grub.cfg").write_text("set kernelopts='root=/dev/vda2 ro quiet'\ninsmod blscfg\nblscfg\n")
    for i in range(count):
        release = f"6.{i // 20}.{i % 20}-{100 + i}.fc39.x86_64"
        (entries / f"{MID}-{release}.conf").write_text(
            f"title Fedora Linux ({release}) 39\nversion {release}\nlinux /vmlinuz-{release}\n"
            f"initrd /initramfs-{release}.img\noptions $kernelopts\ngrub_users $grub_users\n"
            "grub_arg --unrestricted\ngrub_class fedora\n")
    return top


def sdboot_tree(top: Path, count: int, version_bytes: int = 0) -> Path:
    entries = top / "loader" / "entries"
    entries.mkdir(parents=True)
    (top / "k").write_bytes(b"")
    (top / "loader" / "loader.conf").write_text(f"default {MID}-6.1*\n")
    for i in range(count):
        version = f"6.1.0-{i}-amd64" if not version_bytes else "1." * ((version_bytes - 8) // 2) + f"{i:08d}"
        (entries / f"{MID}-{i}.conf").write_text(
            f"title Debian\nversion {version}\nmachine-id {MID}\nsort-key debian\noptions root=/dev/vda1\nlinux /k\n")
    return top


def timed(fn, reps: int) -> tuple[float, float]:
    fn()
    runs = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs), min(runs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bls-bench-") as tmp:
        base = Path(tmp)
        for count in (50, 1024):
            tree = fedora_tree(base / f"fedora-{count}", count)
            dm = device_map(hd0=DirFileSystem(tree))
            rows.append((f"blscfg {count}", *timed(lambda: evaluate(dm, "hd0", "/grub2/grub.cfg",
                                                                    grub_dialect="fedora"), args.reps), count))
        for count in (50, 1024):
            tree = sdboot_tree(base / f"sd-{count}", count)
            dm = device_map(esp=DirFileSystem(tree))
            rows.append((f"sd-boot {count}", *timed(lambda: sdboot.evaluate(dm, "esp", "/loader/entries"),
                                                    args.reps), count))
        tree = sdboot_tree(base / "sd-worst", 1024, LIMITS.max_sort_field_bytes)
        dm = device_map(esp=DirFileSystem(tree))
        rows.append(("sd-boot worst", *timed(lambda: sdboot.evaluate(dm, "esp", "/loader/entries"), args.reps), 1024))
    print(f"{'case':<16} {'median':>9} {'best':>9} {'per entry':>10}")
    for name, median, best, count in rows:
        print(f"{name:<16} {median * 1000:>7.1f}ms {best * 1000:>7.1f}ms {median / count * 1e6:>8.0f}us")
    return 0


if __name__ == "__main__":
    sys.exit(main())
