#!/usr/bin/env python3
"""How fast is extraction through an image format? qcow2 against raw, compressed qcow2
against the codec alone.

Builds once (and caches) an ext4 file system image (mke2fs -d) holding an 8 MiB "kernel"
and a 100 MiB "initrd" of text-like words (fixed seed: compressible, as real kernels and
initrds are to some degree) and a one-entry grub.cfg, then converts it with qemu-img:
  raw        - the file system image itself
  qcow2      - qemu-img convert -O qcow2 (plain clusters: extraction stays copy_file_range)
  qcow2-zlib - qemu-img convert -O qcow2 -c (deflate clusters)
  qcow2-zstd - qemu-img convert -O qcow2 -c -o compression_type=zstd
and times, as whole processes (interpreter start-up included):
  guestboot  - `guestboot extract IMAGE -o DIR` on each image
  codec      - for each compressed image: a Python process that only decompresses every
               compressed cluster of the image (copied out beforehand into one file, each
               with its length) with the same codec guestboot uses, and writes the result
               to one file: the floor for any reader of those clusters (it does more work
               than extraction needs: the clusters of every file, not just the two)
Each command runs once untimed (page cache), then --reps times; the table shows the
median and the best, and the ratio the targets are about: qcow2 / raw (target <= 1.3),
qcow2-zlib / codec-zlib and qcow2-zstd / codec-zstd (target <= 1.5). Outputs are checked.

Not a test: run it by hand (see bench/README.md). Needs e2fsprogs and qemu-utils.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MiB = 1024 * 1024
KERNEL_SIZE = 8 * MiB
INITRD_SIZE = 100 * MiB
FS_SIZE = 160 * MiB
SEED = 20261204
RECIPE = "formats-v1"
GRUB_CFG = "set default=0\nmenuentry 'bench' {\n\tlinux /boot/vmlinuz-bench ro\n\tinitrd /boot/initrd.img-bench\n}\n"
WORDS = [b"the", b"kernel", b"module", b"driver", b"init", b"boot", b"qcow2", b"cluster", b"0x1f", b"\n", b"{", b"}"]
CONVERSIONS = {
    "qcow2": [],
    "qcow2-zlib": ["-c"],
    "qcow2-zstd": ["-c", "-o", "compression_type=zstd"],
}

CODEC_PROGRAM = r"""
import sys
kind, packed, out, cluster = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
if kind == "zstd":
    try:
        from compression import zstd
    except ImportError:
        from backports import zstd
    def unpack(data):
        return zstd.ZstdDecompressor().decompress(data, max_length=cluster)
else:
    import zlib
    def unpack(data):
        return zlib.decompressobj(-15).decompress(data, cluster)
with open(packed, "rb") as src, open(out, "wb") as dst:
    while True:
        head = src.read(4)
        if not head:
            break
        dst.write(unpack(src.read(int.from_bytes(head, "little"))))
"""


def cache_dir(arg: str | None) -> Path:
    base = Path(arg or os.environ.get("GUESTBOOT_TEST_CACHE") or Path.home() / ".cache" / "guestboot-tests")
    path = base / f"bench-{RECIPE}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def run(argv: list[str]) -> None:
    done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, argv))} failed: {done.stderr.decode(errors='replace')[-2000:]}")


def words(rng: random.Random, size: int) -> bytes:
    out = bytearray()
    while len(out) < size:
        out += b" ".join(rng.choice(WORDS) for _ in range(4096))
    return bytes(out[:size])


def build(cache: Path) -> tuple[dict[str, Path], dict[str, Path]]:
    tree = cache / "tree"
    host = {"kernel": tree / "boot" / "vmlinuz-bench", "initrd": tree / "boot" / "initrd.img-bench"}
    images = {"raw": cache / "raw.img", **{name: cache / f"{name}.img" for name in CONVERSIONS}}
    if all(p.exists() for p in [*host.values(), *images.values()]):
        return host, images
    print(f"building the images in {cache} (once) …", file=sys.stderr)
    shutil.rmtree(tree, ignore_errors=True)
    (tree / "boot" / "grub").mkdir(parents=True)
    rng = random.Random(SEED)
    host["kernel"].write_bytes(words(rng, KERNEL_SIZE))
    with open(host["initrd"], "wb") as f:
        for _ in range(INITRD_SIZE // (4 * MiB)):
            f.write(words(rng, 4 * MiB))
    (tree / "boot" / "grub" / "grub.cfg").write_text(GRUB_CFG)
    partial = images["raw"].with_suffix(".partial")
    partial.unlink(missing_ok=True)
    run(["mke2fs", "-q", "-F", "-t", "ext4", "-d", str(tree), str(partial), f"{FS_SIZE // 1024}k"])
    partial.rename(images["raw"])
    for name, options in CONVERSIONS.items():
        run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", *options, str(images["raw"]), str(images[name])])
    return host, images


def packed_clusters(image: Path, out: Path) -> tuple[int, int]:
    """Every compressed cluster's bytes, each after its 4-byte length, into ``out``;
    (clusters, cluster size). Read with guestboot's own qcow2 tables."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
    from guestboot.source import FileSource
    from guestboot.source.qcow2 import L2_COMPRESSED, SECTOR, open as open_qcow2

    fd = os.open(image, os.O_RDONLY)
    count = 0
    try:
        disk = open_qcow2(FileSource(fd, image.name), None)
        with open(out, "wb") as dst:
            for index in range(len(disk.l1)):
                table = disk._l2(index)
                for entry in table if table is not None else ():
                    if not entry & L2_COMPRESSED:
                        continue
                    x = disk.compressed_bits
                    host = entry & ((1 << x) - 1)
                    sectors = ((entry >> x) & ((1 << (disk.cluster_bits - 8)) - 1)) + 1
                    size = min(sectors * SECTOR - (host & (SECTOR - 1)), os.fstat(fd).st_size - host)
                    dst.write(size.to_bytes(4, "little") + os.pread(fd, size, host))
                    count += 1
        return count, disk.cluster_size
    finally:
        os.close(fd)


def time_once(argv: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds: user + system of the child) of one run. CPU time is
    what the ratios use: on a shared machine, wall time mostly measures the neighbours."""
    start = time.perf_counter()
    child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    stderr = child.stderr.read()
    _pid, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    child.stderr.close()
    elapsed = time.perf_counter() - start
    if child.returncode != 0:
        raise SystemExit(f"{argv[:4]} failed: {stderr.decode(errors='replace')[-500:]}")
    return elapsed, usage.ru_utime + usage.ru_stime


def timed(rows: dict, reps: int, work: Path) -> dict[str, list[tuple[float, float]]]:
    """``rows``: name -> (argv maker, output check); (wall, CPU) seconds per run. The rows take turns in every round,
    so a machine whose load drifts slows them all alike; round 0 is not counted."""
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in rows}
    for rep in range(reps + 1):
        for name, (make, check) in rows.items():
            out = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=work))
            elapsed = time_once(make(out))
            check(out, rep == 0)
            shutil.rmtree(out)
            if rep:
                times[name].append(elapsed)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--cache", help="where the images are kept (default: $GUESTBOOT_TEST_CACHE or ~/.cache/…)")
    parser.add_argument("--no-sandbox", action="store_true",
                        help="run guestboot extract --no-sandbox (its fixed cost of namespaces, chroot and seccomp out)")
    args = parser.parse_args()
    for name, package in (("mke2fs", "e2fsprogs"), ("qemu-img", "qemu-utils")):
        if not shutil.which(name) and not shutil.which(name, path="/usr/sbin:/sbin"):
            raise SystemExit(f"{name} not found (apt-get install {package})")
    cache = cache_dir(args.cache)
    host, images = build(cache)
    digests = {name: hashlib.sha256(path.read_bytes()).hexdigest() for name, path in host.items()}
    work = Path(tempfile.mkdtemp(prefix="format-bench-", dir=cache))
    try:
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(Path(__file__).resolve().parent.parent / "src")],
                       check=False, capture_output=True)

        def check_extract(out: Path, full: bool) -> None:
            for name, target in (("kernel", "kernel"), ("initrd", "initrd")):
                data = (out / target).read_bytes()
                if len(data) != host[name].stat().st_size or (full and hashlib.sha256(data).hexdigest() != digests[name]):
                    raise SystemExit(f"{out / target}: wrong bytes")

        rows = {}
        for name, image in images.items():
            rows[name] = (lambda out, image=image: [sys.executable, "-m", "guestboot", "extract", str(image), "-o",
                                                    str(out / "o"), *(["--no-sandbox"] if args.no_sandbox else [])],
                          lambda out, full: check_extract(out / "o", full))
        for kind in ("zlib", "zstd"):
            packed = cache / f"clusters-{kind}.bin"
            count, cluster = packed_clusters(images[f"qcow2-{kind}"], packed)

            def check_codec(out: Path, full: bool, expected=count * cluster) -> None:
                if (out / "unpacked").stat().st_size != expected:
                    raise SystemExit("codec: wrong size")

            rows[f"codec-{kind}"] = (lambda out, kind=kind, packed=packed, cluster=cluster: [
                sys.executable, "-c", CODEC_PROGRAM, kind, str(packed), str(out / "unpacked"), str(cluster)],
                check_codec)
            print(f"codec-{kind}: {count} compressed clusters of {cluster} bytes "
                  f"({count * cluster / MiB:.0f} MiB unpacked)", file=sys.stderr)
        results = timed(rows, args.reps, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    wall = {name: statistics.median(t[0] for t in times) for name, times in results.items()}
    cpu = {name: statistics.median(t[1] for t in times) for name, times in results.items()}
    print(f"{'row':<12} {'wall s':>7} {'CPU s':>7} {'best CPU':>8}  CPU ratio (wall ratio)")
    ratios = {"qcow2": "raw", "qcow2-zlib": "codec-zlib", "qcow2-zstd": "codec-zstd"}
    for name, times in results.items():
        ratio = ""
        if name in ratios:
            base = ratios[name]
            ratio = f"{cpu[name] / cpu[base]:.2f}x {base} ({wall[name] / wall[base]:.2f}x)"
        print(f"{name:<12} {wall[name]:>7.3f} {cpu[name]:>7.3f} {min(t[1] for t in times):>8.3f}  {ratio}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
