#!/usr/bin/env python3
"""How fast is extraction? guestboot against cp and against the real pygrub.

Builds once (and caches) images holding an 8 MiB "kernel" and a 100 MiB "initrd"
(random bytes from a fixed seed) plus a one-entry /boot/grub/grub.cfg:
  raw  - an ext4 file system filling the image (no partition table, as a PV guest's xvda)
  gpt  - the same file system in partition 2 of a GPT disk (partition 1 is BIOS boot)
  btrfs - the same tree in a btrfs file system (mkfs.btrfs --rootdir: plain extents)
  xfs  - the same tree in an XFS v5 file system (mkfs.xfs defaults, protofile: plain extents)
  fat32 / fat32-512 - the same tree on FAT32 (mkfs.fat + mcopy) with 4 KiB clusters (an
         ESP as installers make it) and with 512-byte clusters (the longest cluster chains)
  btrfs-zstd - a compressible tree of the same sizes (text-like words, fixed seed) written
         through a loop mount with compress-force=zstd (as root; left out otherwise)
  iso-rr, iso - the same tree as an ISO 9660 image by xorriso, with Rock Ridge, and with
         Joliet names only (the real pygrub cannot read that one: FAILED)
then, in one run, times each way of getting those two files into a fresh directory:
  cp                - `cp` of host copies of the same bytes (page cache warm, same fs)
  guestboot         - `guestboot extract IMAGE -o DIR` (in its sandbox: a confined child)
  guestboot --no-sandbox - the same in one process (what the sandbox costs)
  guestboot-pygrub  - `guestboot-pygrub -q --output-directory=DIR IMAGE`
  pygrub            - the real /usr/lib/xen-4.17/bin/pygrub with the same options
  zstd-codec        - (btrfs-zstd only) the codec alone: a Python process that
                      decompresses the image's zstd extents, copied out beforehand into
                      one file, with the same zstd module guestboot uses and writes the
                      two files (the floor for any reader of those extents)
Every tool runs once untimed (to warm the page cache), then --reps times; the table shows
the median and the fastest run, and the median as a multiple of cp's and of pygrub's.
Each timed run's output is checked (sizes every time, bytes once) so only correct work
is timed. Then guestboot (pipeline.run, what `guestboot extract` does) and the zstd
codec again, each timed inside one Python process after an untimed run: the work
without interpreter start-up. Last, interpreter start-up: `python3 -c pass` against
`guestboot --help`.

Not a test: run it by hand (see bench/README.md). Needs e2fsprogs, gdisk, xfsprogs (for
the xfs row), and for the pygrub column xen-utils-4.17.
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
SEED = 20240601
RECIPE = "v2"  # bump when the images below change, so stale caches are rebuilt
FS_SIZE = 160 * MiB
XFS_SIZE = 320 * MiB  # mkfs.xfs refuses less than 300 MB
GPT_FIRST = 4096  # sector of the file system partition in the GPT image
SECTOR = 512
PYGRUB = Path("/usr/lib/xen-4.17/bin/pygrub")
GRUB_CFG = """\
set default=0
set timeout=5
menuentry 'bench' --id bench {
	linux /boot/vmlinuz-bench root=/dev/xvda ro quiet
	initrd /boot/initrd.img-bench
}
"""


def cache_dir(arg: str | None) -> Path:
    base = Path(arg or os.environ.get("GUESTBOOT_TEST_CACHE") or Path.home() / ".cache" / "guestboot-tests")
    path = base / f"bench-{RECIPE}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def run(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          check=False, **kwargs)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, argv))} failed ({done.returncode}):\n"
                         f"{done.stderr.decode(errors='replace')[-2000:]}")
    return done


def tool(name: str, package: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if not found:
        raise SystemExit(f"{name} not found (apt-get install {package})")
    return found


def build(cache: Path) -> tuple[Path, dict[str, Path]]:
    """The host copies of the two files, and the two images (built on first use)."""
    tree = cache / "tree"
    host = {"kernel": tree / "boot" / "vmlinuz-bench", "initrd": tree / "boot" / "initrd.img-bench"}
    images = {"raw": cache / "raw-ext4.img", "gpt": cache / "gpt-ext4.img"}
    if all(p.exists() for p in [*host.values(), *images.values()]):
        return tree, images
    print(f"building the bench images in {cache} (once) …", file=sys.stderr)
    shutil.rmtree(tree, ignore_errors=True)
    (tree / "boot" / "grub").mkdir(parents=True)
    rng = random.Random(SEED)
    host["kernel"].write_bytes(rng.randbytes(KERNEL_SIZE))
    with open(host["initrd"], "wb") as f:
        for _ in range(INITRD_SIZE // MiB):
            f.write(rng.randbytes(MiB))
    (tree / "boot" / "grub" / "grub.cfg").write_text(GRUB_CFG)
    mke2fs = tool("mke2fs", "e2fsprogs")
    for name, path in images.items():
        partial = path.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        with open(partial, "wb") as f:
            f.truncate(FS_SIZE + (GPT_FIRST * SECTOR + MiB if name == "gpt" else 0))
        offset = 0
        if name == "gpt":
            last = GPT_FIRST + FS_SIZE // SECTOR - 1
            run([tool("sgdisk", "gdisk"), "-o", "-n", "1:2048:4095", "-t", "1:ef02",
                 "-n", f"2:{GPT_FIRST}:{last}", "-t", "2:8300", str(partial)])
            offset = GPT_FIRST * SECTOR
        run([mke2fs, "-q", "-F", "-t", "ext4", "-T", "default", "-E", f"offset={offset}", "-d", str(tree),
             str(partial), f"{FS_SIZE // 1024}k"])
        partial.rename(path)
    return tree, images


def build_xfs(cache: Path, tree: Path) -> dict[str, Path]:
    """{"xfs": image} made by mkfs.xfs with a protofile (mkfs.xfs(8), "-p") describing
    ``tree`` (built on first use); empty without xfsprogs."""
    mkfs = shutil.which("mkfs.xfs") or shutil.which("mkfs.xfs", path="/usr/sbin:/sbin")
    if not mkfs:
        print("note: mkfs.xfs not found (xfsprogs): no xfs image", file=sys.stderr)
        return {}
    image = cache / "xfs.img"
    if image.exists():
        return {"xfs": image}
    lines = ["bench", "0 0", "d--755 0 0"]

    def walk(directory: Path, depth: int) -> None:
        for entry in sorted(directory.iterdir()):
            if entry.is_dir():
                lines.append(f"{' ' * depth}{entry.name} d--755 0 0")
                walk(entry, depth + 1)
                lines.append(f"{' ' * depth}$")
            else:
                lines.append(f"{' ' * depth}{entry.name} ---644 0 0 {entry}")

    walk(tree, 1)
    lines.append("$")
    proto = cache / "xfs.proto"
    proto.write_text("\n".join(lines) + "\n")
    partial = image.with_suffix(".partial")
    with open(partial, "wb") as f:
        f.truncate(XFS_SIZE)
    # two allocation groups of 160 MiB: mkfs.xfs 6.1's protofile writes a file only as far
    # as the free space of one AG reaches and leaves the rest a hole (GRUB and xfs_db agree)
    run([mkfs, "-q", "-f", "-d", "agcount=2", "-p", str(proto), str(partial)])
    proto.unlink()
    partial.rename(image)
    return {"xfs": image}


def text_bytes(rng: random.Random, size: int) -> bytes:
    """Compressible bytes: words from a fixed vocabulary (zstd makes about a third)."""
    vocab = [rng.randbytes(rng.randrange(2, 9)).hex().encode() + b" " for _ in range(4096)]
    out = bytearray()
    while len(out) < size:
        out += b"".join(rng.choices(vocab, k=20000))
    return bytes(out[:size])


def build_btrfs(cache: Path, tree: Path) -> dict[str, tuple[Path, Path]]:
    """name -> (image, host tree) of the btrfs images (built on first use): "btrfs" from
    ``tree`` by mkfs.btrfs --rootdir, "btrfs-zstd" from a compressible tree through a
    compress-force=zstd loop mount (needs root; left out otherwise)."""
    mkfs = shutil.which("mkfs.btrfs") or shutil.which("mkfs.btrfs", path="/usr/sbin:/sbin")
    if not mkfs:
        print("note: mkfs.btrfs not found (btrfs-progs): no btrfs images", file=sys.stderr)
        return {}
    found = {}
    plain = cache / "btrfs.img"
    if not plain.exists():
        partial = plain.with_suffix(".partial")
        with open(partial, "wb") as f:
            f.truncate(FS_SIZE + 64 * MiB)
        run([mkfs, "-q", "-f", "--rootdir", str(tree), str(partial)])
        partial.rename(plain)
    found["btrfs"] = (plain, tree)
    text_tree = cache / "tree-text"
    zstd = cache / "btrfs-zstd.img"
    if os.geteuid() != 0:
        print("note: not root: no btrfs-zstd image (it needs a loop mount)", file=sys.stderr)
        return found
    if not zstd.exists():
        shutil.rmtree(text_tree, ignore_errors=True)
        (text_tree / "boot" / "grub").mkdir(parents=True)
        rng = random.Random(SEED + 1)
        (text_tree / "boot" / "vmlinuz-bench").write_bytes(text_bytes(rng, KERNEL_SIZE))
        with open(text_tree / "boot" / "initrd.img-bench", "wb") as f:
            for _ in range(INITRD_SIZE // (4 * MiB)):
                f.write(text_bytes(rng, 4 * MiB))
        (text_tree / "boot" / "grub" / "grub.cfg").write_text(GRUB_CFG)
        partial = zstd.with_suffix(".partial")
        with open(partial, "wb") as f:
            f.truncate(FS_SIZE + 64 * MiB)
        run([mkfs, "-q", "-f", str(partial)])
        mnt = Path(tempfile.mkdtemp(prefix="mnt-", dir=cache))
        run(["mount", "-o", "loop,compress-force=zstd", str(partial), str(mnt)])
        try:
            run(["cp", "-a", f"{text_tree}/.", str(mnt)])
        finally:
            run(["umount", str(mnt)])
            mnt.rmdir()
        partial.rename(zstd)
    found["btrfs-zstd"] = (zstd, text_tree)
    return found


def build_fat(cache: Path, tree: Path) -> dict[str, tuple[Path, Path]]:
    """name -> (image, host tree) of the FAT32 images (built on first use with mkfs.fat
    and mtools' mcopy)."""
    mkfs = shutil.which("mkfs.fat") or shutil.which("mkfs.fat", path="/usr/sbin:/sbin")
    if not mkfs or not shutil.which("mcopy"):
        print("note: mkfs.fat or mcopy not found (dosfstools, mtools): no FAT images", file=sys.stderr)
        return {}
    found = {}
    # mtools refuses FAT32 below 65525 clusters: 4 KiB clusters need a larger volume
    for name, per_cluster, size in (("fat32", "8", 320 * MiB), ("fat32-512", "1", FS_SIZE + 64 * MiB)):
        path = cache / f"{name}.img"
        if not path.exists():
            partial = path.with_suffix(".partial")
            partial.unlink(missing_ok=True)
            run([mkfs, "-C", "-F", "32", "-s", per_cluster, str(partial), str(size // 1024)])
            run(["mcopy", "-s", "-i", str(partial), str(tree / "boot"), "::/"],
                env=dict(os.environ, MTOOLS_SKIP_CHECK="1"))
            partial.rename(path)
        found[name] = (path, tree)
    return found


def build_iso(cache: Path, tree: Path) -> dict[str, Path]:
    """name -> image of the ISO 9660 images (built on first use) by xorriso."""
    xorriso = shutil.which("xorriso")
    if not xorriso:
        print("note: xorriso not found: no ISO images", file=sys.stderr)
        return {}
    found = {}
    for name, options in (("iso-rr", ["-R"]), ("iso", ["--norock", "-J"])):  # Joliet keeps the names
        path = cache / f"{name}.iso"
        if not path.exists():
            partial = path.with_suffix(".partial")
            run([xorriso, "-as", "mkisofs", "-quiet", *options, "-o", str(partial), str(tree)])
            partial.rename(path)
        found[name] = path
    return found


def zstd_frames(image: Path, cache: Path) -> Path:
    """The image's file contents as the zstd-codec row reads them: for each of the two
    files, its extents in order as (kind, file offset, length, bytes) records (kind z: a
    zstd frame whose bytes from ``skip`` on are the ``length`` bytes; p: plain bytes; h:
    zeros; gaps are holes), copied out once
    with guestboot's own driver."""
    import struct

    from guestboot.fs import btrfs, path as fspath
    from guestboot.source import FileSource

    out = cache / "btrfs-zstd.frames"
    if out.exists():
        return out
    fd = os.open(image, os.O_RDONLY)
    try:
        fs = btrfs.probe(FileSource(fd, name=image.name))
        with open(out.with_suffix(".partial"), "wb") as f:
            for name in ("vmlinuz-bench", "initrd.img-bench"):
                source = fspath.open_file(fs, f"/boot/{name}")
                pieces = getattr(source, "extents", ())  # a file with compressed extents
                f.write(struct.pack("<B", len(name)) + name.encode() + struct.pack("<QI", source.size, len(pieces)))
                for piece in pieces:
                    if piece.kind == "compressed":
                        raw = fs.read_logical(piece.logical, piece.disk_size)
                        f.write(b"z" + struct.pack("<QQQQ", piece.start, piece.length, piece.skip, len(raw)) + raw)
                    elif piece.kind == "plain":
                        raw = fs.read_logical(piece.logical, piece.length)
                        f.write(b"p" + struct.pack("<QQQQ", piece.start, piece.length, 0, len(raw)) + raw)
                    else:
                        f.write(b"h" + struct.pack("<QQQQ", piece.start, piece.length, 0, 0))
    finally:
        os.close(fd)
    out.with_suffix(".partial").rename(out)
    return out


CODEC_SCRIPT = """
import struct, sys
try:
    from compression import zstd
except ImportError:
    from backports import zstd
frames, out = sys.argv[1], sys.argv[2]
with open(frames, "rb") as f:
    for _ in range(2):
        name = f.read(f.read(1)[0]).decode()
        size, count = struct.unpack("<QI", f.read(12))
        with open(out + "/" + name, "wb") as dst:
            for _ in range(count):
                kind = f.read(1)
                start, length, skip, stored = struct.unpack("<QQQQ", f.read(32))
                raw = f.read(stored)
                dst.seek(start)
                if kind == b"z":
                    data = zstd.ZstdDecompressor().decompress(raw, max_length=skip + length)[skip:]
                    dst.write(data + bytes(length - len(data)))
                elif kind == b"p":
                    dst.write(raw)
                else:
                    dst.write(bytes(length))
            dst.truncate(size)
"""


# Without interpreter start-up: one Python process imports guestboot, extracts once
# untimed, then times pipeline.run (the work behind `guestboot extract`) --reps times.
IN_PROCESS_SCRIPT = """
import json, os, shutil, sys, time
from guestboot.pipeline import Request, run
image, out, reps = sys.argv[1], sys.argv[2], int(sys.argv[3])
times = []
for rep in range(reps + 1):
    here = f"{out}/run{rep}"  # a fresh directory each run, as the other rows get
    os.mkdir(here)
    start = time.perf_counter()
    fd = os.open(image, os.O_RDONLY)
    k = os.open(here + "/kernel", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    i = os.open(here + "/initrd", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    run(Request("extract", ((fd, os.path.basename(image)),), kernel_fd=k, initrd_fd=i))
    for d in (fd, k, i):
        os.close(d)
    if rep:
        times.append(time.perf_counter() - start)
    if rep < reps:
        shutil.rmtree(here)
for name in ("kernel", "initrd"):  # the last run's files are checked
    os.rename(f"{here}/{name}", f"{out}/{name}")
os.rmdir(here)
print(json.dumps(times))
"""
# The zstd-codec row's script, timed the same way inside one process.
CODEC_IN_PROCESS_SCRIPT = """
import json, os, shutil, sys, time
try:
    from compression import zstd
except ImportError:
    from backports import zstd
code = compile(sys.argv[1], "codec", "exec")
reps = int(sys.argv.pop())
out = sys.argv.pop()
del sys.argv[1]
times = []
for rep in range(reps + 1):
    here = f"{out}/run{rep}"
    os.mkdir(here)
    sys.argv[2:] = [here]
    start = time.perf_counter()
    exec(code, {"__name__": "codec"})
    if rep:
        times.append(time.perf_counter() - start)
    if rep < reps:
        shutil.rmtree(here)
for name in os.listdir(here):
    os.rename(f"{here}/{name}", f"{out}/{name}")
os.rmdir(here)
print(json.dumps(times))
"""


def interpreter_script(name: str) -> list[str]:
    """The console script next to this interpreter (no shell shims), else `python -m`."""
    beside = Path(sys.executable).parent / name
    if beside.is_file():
        return [str(beside)]
    module = {"guestboot": "guestboot", "guestboot-pygrub": "guestboot.cli.pygrub"}[name]
    return [sys.executable, "-m", module]


def commands(host: dict[str, Path], frames: Path | None = None) -> dict[str, callable]:
    """name -> function(image, out_dir) returning the argv to time."""
    found = {
        "cp": lambda image, out: ["cp", str(host["kernel"]), str(host["initrd"]), str(out)],
        "guestboot": lambda image, out: [*interpreter_script("guestboot"), "extract", str(image), "-o", str(out)],
        "guestboot --no-sandbox": lambda image, out: [*interpreter_script("guestboot"), "extract", "--no-sandbox",
                                                      str(image), "-o", str(out)],
        "guestboot-pygrub": lambda image, out: [*interpreter_script("guestboot-pygrub"), "-q",
                                                f"--output-directory={out}", str(image)],
    }
    if frames is not None:
        found["zstd-codec"] = lambda image, out: [sys.executable, "-c", CODEC_SCRIPT, str(frames), str(out)]
    if PYGRUB.is_file():
        found["pygrub"] = lambda image, out: [str(PYGRUB), "-q", f"--output-directory={out}", str(image)]
    else:
        print(f"note: {PYGRUB} not found (xen-utils-4.17): no pygrub column", file=sys.stderr)
    return found


def outputs(out: Path) -> list[Path]:
    return sorted(p for p in out.iterdir() if p.is_file())


def check(out: Path, expected: dict[int, str], full: bool, what: str) -> None:
    """Two files of the expected sizes (and, when ``full``, the expected bytes)."""
    files = outputs(out)
    sizes = sorted(p.stat().st_size for p in files)
    if sizes != sorted(expected):
        raise Failed(f"{what}: wrote {[(p.name, p.stat().st_size) for p in files]}, "
                         f"expected sizes {sorted(expected)}")
    if full:
        for p in files:
            digest = hashlib.sha256(p.read_bytes()).hexdigest()
            if digest != expected[p.stat().st_size]:
                raise Failed(f"{what}: {p.name} has the right size but the wrong bytes")


class Failed(Exception):
    """One tool failed or wrote the wrong thing: its row says so, the others still run."""


def time_once(argv: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        last = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
        raise Failed(f"exit {done.returncode}: {last[0]}")
    return elapsed


def bench_extract(images: dict[str, tuple[Path, dict[str, Path], Path | None]], reps: int, work: Path) -> dict:
    """``images``: name -> (image, host copies of its two files, zstd frames or None)."""
    results: dict[tuple[str, str], list[float] | str] = {}
    for image_name, (image, host, frames) in images.items():
        expected = {p.stat().st_size: hashlib.sha256(p.read_bytes()).hexdigest() for p in host.values()}
        for name, make in commands(host, frames).items():
            times = []
            try:
                for rep in range(reps + 1):
                    out = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=work))
                    try:
                        elapsed = time_once(make(image, out))
                        check(out, expected, full=rep == 0, what=f"{name} on {image_name}")
                    finally:
                        shutil.rmtree(out)
                    if rep:  # the first run only warms the caches
                        times.append(elapsed)
            except Failed as err:
                results[(image_name, name)] = f"FAILED {err}"
                continue
            results[(image_name, name)] = times
    return results


def bench_in_process(images: dict[str, tuple[Path, dict[str, Path], Path | None]], reps: int,
                     work: Path) -> dict:
    """The guestboot (and zstd-codec) rows again, each timed inside one process: what the
    work costs without interpreter start-up and imports."""
    import json

    results: dict[tuple[str, str], list[float] | str] = {}
    for image_name, (image, host, frames) in images.items():
        expected = {p.stat().st_size: hashlib.sha256(p.read_bytes()).hexdigest() for p in host.values()}
        argvs = {"guestboot": [sys.executable, "-c", IN_PROCESS_SCRIPT, str(image)]}
        if frames is not None:
            argvs["zstd-codec"] = [sys.executable, "-c", CODEC_IN_PROCESS_SCRIPT, CODEC_SCRIPT, str(frames)]
        for name, argv in argvs.items():
            out = Path(tempfile.mkdtemp(prefix=f"{name}-in-process-", dir=work))
            try:
                done = subprocess.run([*argv, str(out), str(reps)], capture_output=True, check=False)
                if done.returncode != 0:
                    last = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
                    raise Failed(f"exit {done.returncode}: {last[0]}")
                check(out, expected, full=True, what=f"{name} in one process on {image_name}")
                results[(image_name, name)] = json.loads(done.stdout)
            except Failed as err:
                results[(image_name, name)] = f"FAILED {err}"
            finally:
                shutil.rmtree(out)
    return results


def in_process_table(results: dict, in_process: dict) -> str:
    """Each in-process row: median and best, throughput, and its median over cp's (a
    process: cp starts in about a millisecond) and over the codec's in-process median."""
    rows = [("image", "tool", "median s", "best s", "MB/s", "x cp", "x codec")]
    total_mb = (KERNEL_SIZE + INITRD_SIZE) / 1e6
    for (image_name, name), times in in_process.items():
        if isinstance(times, str):
            rows.append((image_name, name, "-", "-", "-", "-", times))
            continue
        cp = statistics.median(results[(image_name, "cp")])
        codec = in_process.get((image_name, "zstd-codec"))
        codec_median = statistics.median(codec) if isinstance(codec, list) else None
        median = statistics.median(times)
        rows.append((image_name, name, f"{median:.3f}", f"{min(times):.3f}", f"{total_mb / median:.0f}",
                     f"{median / cp:.2f}", f"{median / codec_median:.2f}" if codec_median else "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
                     for r in rows)


def bench_startup(reps: int) -> dict[str, list[float]]:
    argvs = {"python3 -c pass": [sys.executable, "-c", "pass"],
             "guestboot --help": [*interpreter_script("guestboot"), "--help"]}
    out = {}
    for label, argv in argvs.items():
        time_once(argv)
        out[label] = [time_once(argv) for _ in range(reps)]
    return out


def table(results: dict, images: dict) -> str:
    rows = [("image", "tool", "median s", "best s", "MB/s", "x cp", "x pygrub", "x codec")]
    total_mb = (KERNEL_SIZE + INITRD_SIZE) / 1e6
    failures = []
    for image_name in images:
        cp = results[(image_name, "cp")]
        if isinstance(cp, str):
            raise SystemExit(f"cp on {image_name}: {cp}")
        cp = statistics.median(cp)
        pygrub = results.get((image_name, "pygrub"))
        pygrub_median = statistics.median(pygrub) if isinstance(pygrub, list) else None
        codec = results.get((image_name, "zstd-codec"))
        codec_median = statistics.median(codec) if isinstance(codec, list) else None
        for (img, name), times in results.items():
            if img != image_name:
                continue
            if isinstance(times, str):
                rows.append((image_name, name, "-", "-", "-", "-", "-", "-"))
                failures.append(f"{name} on {image_name}: {times}")
                continue
            median = statistics.median(times)
            rows.append((image_name, name, f"{median:.3f}", f"{min(times):.3f}", f"{total_mb / median:.0f}",
                         f"{median / cp:.2f}", f"{median / pygrub_median:.2f}" if pygrub_median else "-",
                         f"{median / codec_median:.2f}" if codec_median else "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(failures + [""] * bool(failures) + [
        "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
        for r in rows])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=5, help="timed runs per tool and image (default 5)")
    parser.add_argument("--cache", help="where the images are kept (default $GUESTBOOT_TEST_CACHE or "
                                        "~/.cache/guestboot-tests, subfolder bench-" + RECIPE + ")")
    parser.add_argument("--images", nargs="+", metavar="NAME", help="time only these images (default: all)")
    args = parser.parse_args(argv)
    if args.reps < 1:
        parser.error("--reps must be at least 1")
    # Installed packages run from byte-compiled modules (pip and Debian both compile them at
    # install time); a machine that sets PYTHONDONTWRITEBYTECODE would time the compiler
    # instead. Compile guestboot once and let every child use the cached .pyc files.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    import compileall

    import guestboot

    compileall.compile_dir(Path(guestboot.__file__).parent, quiet=1)
    cache = cache_dir(args.cache)
    tree, ext_images = build(cache)

    def host_of(top: Path) -> dict[str, Path]:
        return {"kernel": top / "boot" / "vmlinuz-bench", "initrd": top / "boot" / "initrd.img-bench"}

    images = {name: (path, host_of(tree), None) for name, path in ext_images.items()}
    for name, path in build_xfs(cache, tree).items():
        images[name] = (path, host_of(tree), None)
    for name, (path, top) in build_fat(cache, tree).items():
        images[name] = (path, host_of(top), None)
    for name, path in build_iso(cache, tree).items():
        images[name] = (path, host_of(tree), None)
    for name, (path, top) in build_btrfs(cache, tree).items():
        images[name] = (path, host_of(top), zstd_frames(path, cache) if name == "btrfs-zstd" else None)
    if args.images:
        unknown = set(args.images) - set(images)
        if unknown:
            parser.error(f"no such image: {', '.join(sorted(unknown))} (have: {', '.join(images)})")
        images = {name: value for name, value in images.items() if name in args.images}
    work = Path(tempfile.mkdtemp(prefix="runs-", dir=cache))  # same fs as the host copies
    try:
        results = bench_extract(images, args.reps, work)
        in_process = bench_in_process(images, args.reps, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"extracting an {KERNEL_SIZE // MiB} MiB kernel + {INITRD_SIZE // MiB} MiB initrd, "
          f"{args.reps} timed runs each (median), page cache warm")
    print(table(results, images))
    print()
    print("the same work inside one process (no interpreter start-up, imports done)")
    print(in_process_table(results, in_process))
    startup = bench_startup(max(args.reps, 5))
    print()
    print("interpreter start-up (median of", max(args.reps, 5), "runs)")
    base = statistics.median(startup["python3 -c pass"])
    for label, times in startup.items():
        median = statistics.median(times)
        print(f"  {label:<18} {median * 1000:7.1f} ms  (x{median / base:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
