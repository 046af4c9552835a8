"""Standard streams the caller closed or that went away: the result and the exit status
stand, and no file the run opens can take the place of a closed one.

- standard error closed (``2>&-``) or on a terminal that hung up: messages are lost, the
  boot is not (pygrub's output written, exit 0);
- standard output closed (``>&-``): what should go there cannot, exit 8 (output error),
  with one line on standard error and no output file left behind;
- with 0, 1 and 2 all closed, the kernel written by ``extract`` holds the kernel's bytes
  only (the image or an output file opened as descriptor 2 would receive messages).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

CONFIG = """\
set default=0
menuentry 'One' {
    linux /boot/vmlinuz root=/dev/sda1 one
    initrd /boot/initrd
}
"""
KERNEL = bytes(range(256)) * 300
INITRD = b"initrd" * 1000


@pytest.fixture(scope="module")
def disk(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("streams")
    tree = work / "tree"
    (tree / "boot" / "grub").mkdir(parents=True)
    (tree / "boot" / "grub" / "grub.cfg").write_text(CONFIG)
    (tree / "boot" / "vmlinuz").write_bytes(KERNEL)
    (tree / "boot" / "initrd").write_bytes(INITRD)
    image = work / "disk.img"
    subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", "-d", str(tree), str(image), "8M"], check=True,
                   capture_output=True)
    return image


def closing(*fds: int, module: str = "guestboot"):
    """argv that runs ``python -m module`` with ``fds`` closed (a shell's ``N>&-``)."""
    redirects = " ".join(f"{fd}>&-" if fd else "<&-" for fd in fds)
    return ["sh", "-c", f'exec "$@" {redirects}', "sh", sys.executable, "-m", module]


def test_pygrub_with_standard_error_closed_still_boots(disk, tmp_path):
    out = tmp_path / "out"
    out.touch()
    done = subprocess.run([*closing(2, module="guestboot.cli.pygrub"), "-q", "-n", "--output-format=simple",
                           f"--output={out}", str(disk)], capture_output=True, timeout=60)
    assert done.returncode == 0
    assert out.read_bytes() == b"kernel <kernel:/boot/vmlinuz>\nramdisk <ramdisk:/boot/initrd>\nargs root=/dev/sda1 one\n\n"


def test_pygrub_with_standard_error_on_a_hung_up_terminal_still_boots(disk, tmp_path):
    out = tmp_path / "out"
    out.touch()
    master, slave = os.openpty()
    os.close(master)  # the console's other side is gone: every write to it fails (EIO)
    try:
        done = subprocess.run([sys.executable, "-m", "guestboot.cli.pygrub", "-q", "-n", "--output-format=simple",
                               f"--output={out}", str(disk)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=slave, timeout=60)
    finally:
        os.close(slave)
    assert done.returncode == 0
    assert out.read_bytes().startswith(b"kernel <kernel:/boot/vmlinuz>\n")


@pytest.mark.parametrize("module, args", [("guestboot", ["list"]), ("guestboot", ["cat", "/boot/grub/grub.cfg"]),
                                          ("guestboot.cli.pygrub", ["-q"])])
def test_closed_standard_output_is_an_output_error(disk, tmp_path, module, args):
    outdir = tmp_path / "d"
    outdir.mkdir()
    extra = [f"--output-directory={outdir}"] if module.endswith("pygrub") else []
    done = subprocess.run([*closing(1, module=module), *args, *extra, str(disk)] if args[0] != "cat"
                          else [*closing(1, module=module), "cat", str(disk), "/boot/grub/grub.cfg"],
                          capture_output=True, timeout=60)
    assert done.returncode == 8, done.stderr
    lines = [line for line in done.stderr.decode().splitlines() if ": entry " not in line]
    assert len(lines) == 1 and "standard output is closed" in lines[0], done.stderr
    assert list(outdir.iterdir()) == []  # pygrub's kernel and ramdisk files were taken back


def test_no_file_takes_a_closed_standard_descriptor(disk, tmp_path):
    """Standard input and error closed: /dev/null takes 0 and 2, the image and the outputs
    are opened as 3 and up, so what is said on standard error (the entry's name) cannot
    land in the kernel file, and the run succeeds (before: exit 1, Python's sys.stderr was
    None)."""
    out = tmp_path / "out"
    done = subprocess.run([*closing(0, 2), "extract", str(disk), "-o", str(out)], stdout=subprocess.PIPE,
                          timeout=60)
    assert done.returncode == 0 and done.stdout == b"BOOT_IMAGE=/boot/vmlinuz root=/dev/sda1 one\n"
    assert (out / "kernel").read_bytes() == KERNEL and (out / "initrd").read_bytes() == INITRD
