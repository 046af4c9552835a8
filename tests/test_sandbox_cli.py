"""The sandbox as the front ends use it: on by default, its limits reaching the user as
one line and a documented code, --runas checked, --no-sandbox and --debug saying what
they do. The image is made by mke2fs -d from the tree it must give back."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

GRUB_CFG = "set default=0\nmenuentry 'Big' {\n  linux /boot/vmlinuz root=/dev/vda1\n  initrd /boot/initrd\n}\n"
KERNEL = os.urandom(3 << 20)  # larger than a 1 MiB file-size limit


@pytest.fixture(scope="module")
def disk(tmp_path_factory) -> Path:
    top = tmp_path_factory.mktemp("sandbox-tree")
    (top / "boot" / "grub").mkdir(parents=True)
    (top / "boot" / "grub" / "grub.cfg").write_text(GRUB_CFG)
    (top / "boot" / "vmlinuz").write_bytes(KERNEL)
    (top / "boot" / "initrd").write_bytes(b"i" * 4096)
    image = tmp_path_factory.mktemp("sandbox-img") / "disk.img"
    subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", "-d", str(top), str(image), "16M"],
                   check=True, capture_output=True)
    return image


def run(module: str, *argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *argv], capture_output=True, timeout=120,
                          env={**os.environ, **(env or {})})


def only_line(proc: subprocess.CompletedProcess) -> str:
    lines = [line for line in proc.stderr.decode().splitlines() if ": entry " not in line]
    assert len(lines) == 1 and "Traceback" not in proc.stderr.decode(), proc.stderr.decode()
    return lines[0]


def test_extract_over_the_file_size_limit_is_one_line_and_leaves_nothing(disk, tmp_path):
    out = tmp_path / "out"
    proc = run("guestboot", "extract", "-o", str(out), str(disk), env={"PYGRUB_MAX_FILE_SIZE_MB": "1"})
    assert proc.returncode == 5
    assert "limit exceeded: cannot write kernel: larger than the file-size limit" in only_line(proc)
    assert not out.exists() or not any(out.iterdir())
    done = run("guestboot", "extract", "-o", str(out), str(disk), env={"PYGRUB_MAX_FILE_SIZE_MB": "4"})
    assert done.returncode == 0 and (out / "kernel").read_bytes() == KERNEL


def test_pygrub_over_the_file_size_limit_exits_non_zero_and_leaves_nothing(disk, tmp_path):
    outdir = tmp_path / "d"
    outdir.mkdir()
    proc = run("guestboot.cli.pygrub", "-q", "--output-format=simple0", f"--output-directory={outdir}", str(disk),
               env={"PYGRUB_MAX_FILE_SIZE_MB": "1"})
    assert proc.returncode == 5 and proc.stdout == b""
    assert "file-size limit" in only_line(proc)
    assert list(outdir.iterdir()) == []


@pytest.mark.parametrize("value", ["0", "-5", "many"])
def test_a_bad_limit_in_the_environment_is_a_usage_error(disk, value):
    proc = run("guestboot", "list", str(disk), env={"PYGRUB_MAX_RAM_USAGE_MB": value})
    assert proc.returncode == 2 and "PYGRUB_MAX_RAM_USAGE_MB" in only_line(proc)


def test_debug_says_what_each_layer_did(disk):
    proc = run("guestboot", "list", "--debug", str(disk))
    assert proc.returncode == 0
    layers = [line for line in proc.stderr.decode().splitlines() if line.startswith("guestboot: sandbox: ")]
    text = "\n".join(layers)
    assert "every other one closed" in text and "rlimits AS=" in text
    if os.geteuid() == 0:
        assert "uid 65534, gid 65534" in text and "chroot into" in text


def test_no_sandbox_reads_in_process_and_says_so(disk):
    proc = run("guestboot", "list", "--no-sandbox", "--debug", str(disk))
    assert proc.returncode == 0 and "Big" in proc.stdout.decode()
    assert "guestboot: sandbox: off (--no-sandbox)" in proc.stderr.decode()
    assert "seccomp" not in proc.stderr.decode()
    shown_help = " ".join(run("guestboot", "list", "--help").stdout.decode().split()).replace("- ", "-")
    assert "uid drop, seccomp filter, rlimits or wall-clock limit" in shown_help  # argparse may wrap at the hyphen


@pytest.mark.parametrize("value", ["0", "-1", str(1 << 40), "no-such-user-here", "root"])
def test_guestboot_runas_mistakes_are_usage_errors(disk, value):
    proc = run("guestboot", "list", f"--runas={value}", str(disk))
    assert proc.returncode == 2 and "--runas" in proc.stderr.decode() and "Traceback" not in proc.stderr.decode()


@pytest.mark.skipif(os.geteuid() != 0, reason="--runas needs root")
def test_guestboot_runas_is_the_uid_the_child_runs_as(disk):
    proc = run("guestboot", "list", "--runas=4242", "--debug", str(disk))
    assert proc.returncode == 0 and "guestboot: sandbox: uid 4242, gid 4242" in proc.stderr.decode()
