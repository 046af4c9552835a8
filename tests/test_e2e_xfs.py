"""End to end on XFS: a RHEL 9 style GPT disk (tests/builders/xfs_guest.py: /boot and the
root each on their own XFS v5, grub-mkconfig's grub.cfg in /boot/grub2, saved_entry in
grubenv) through the whole pipeline, one QEMU boot of what ``guestboot extract`` wrote,
and the real pygrub on the same disk (its XFS reader refuses v5; guestboot reads it).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from prereq import need_real_pygrub, unavailable

from builders import xfs_guest
from builders.boot import boot, qemu_available
from builders.guest_images import GuestImage
from builders.initramfs import ToolMissing

pytestmark = pytest.mark.slow

TIMEOUT = 120


@pytest.fixture(scope="session")
def rhel9(tmp_path_factory) -> GuestImage:
    try:
        return xfs_guest.session_image(tmp_path_factory)
    except ToolMissing as err:
        unavailable(str(err))


def run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), stdin=subprocess.DEVNULL, capture_output=True, timeout=TIMEOUT, check=False)


def guestboot(*argv: str) -> subprocess.CompletedProcess:
    done = run(sys.executable, "-m", "guestboot", *argv)
    assert done.returncode == 0, f"exit {done.returncode}: {done.stderr.decode(errors='replace')}"
    return done


def test_extract_boots_the_saved_entry(rhel9, tmp_path):
    missing = qemu_available()
    if missing:
        unavailable(missing)
    entry = rhel9.default
    assert entry.path == "1"  # grubenv's saved_entry names the second entry
    out = tmp_path / "out"

    cmdline = guestboot("extract", str(rhel9.path), "-o", str(out)).stdout.decode()

    assert cmdline == entry.cmdline + "\n"
    assert (out / "kernel").read_bytes() == rhel9.kernel_bytes(entry)
    assert (out / "initrd").read_bytes() == rhel9.initrd_bytes(entry)
    report = boot(out / "kernel", out / "initrd", cmdline.rstrip("\n"))
    print(f"QEMU/TCG boot took {report.seconds:.1f} s")
    assert report.cmdline == entry.cmdline
    assert report.initrds == [Path(entry.initrds[0]).name]


def test_list_json_and_devices(rhel9, tmp_path):
    data = json.loads(guestboot("extract", str(rhel9.path), "-o", str(tmp_path / "o"), "--json",
                                "--entry", rhel9.entries[0].id).stdout)
    assert (data["entry"]["path"], data["cmdline"]) == ("0", rhel9.entries[0].cmdline)
    assert data["config"] == "(hd0,gpt2)/grub2/grub.cfg"
    lines = guestboot("ls", str(rhel9.path)).stdout.decode().splitlines()
    devices = {line.split()[0]: line.split() for line in lines}
    assert devices["(hd0,gpt2)"][1] == devices["(hd0,gpt3)"][1] == "xfs"
    assert f"uuid={xfs_guest.RHEL9_BOOT_UUID}" in devices["(hd0,gpt2)"]
    assert f"uuid={xfs_guest.RHEL9_ROOT_UUID}" in devices["(hd0,gpt3)"]
    listing = guestboot("ls", str(rhel9.path), "gpt2:/").stdout.decode()
    for name in ("grub2/", "loader/", f"vmlinuz-{xfs_guest.RHEL9_RELEASES[0]}"):
        assert name in listing
    etc = guestboot("cat", str(rhel9.path), "gpt3:/etc/redhat-release").stdout
    assert etc == (rhel9.trees["gpt3"] / "etc" / "redhat-release").read_bytes()


def test_real_pygrub_cannot_read_xfs_v5(rhel9, tmp_path):
    """The real pygrub (libxenfsimage's XFS reader, GRUB legacy's) does not read XFS v5:
    it finds no file system and fails; guestboot-pygrub boots the entry GRUB boots."""
    pygrub = need_real_pygrub()
    results = {}
    for who, command in (("pygrub", [str(pygrub)]), ("ours", [sys.executable, "-m", "guestboot.cli.pygrub"])):
        out_dir = tmp_path / who
        out_dir.mkdir()
        output = tmp_path / f"{who}.out"
        output.write_bytes(b"")
        done = run(*command, "-q", "--output-format=simple0", f"--output-directory={out_dir}", f"--output={output}",
                   str(rhel9.path))
        results[who] = (done, output.read_bytes(), out_dir)
    theirs, ours = results["pygrub"], results["ours"]
    assert theirs[0].returncode != 0 and theirs[1] == b"", theirs[0].stderr
    assert ours[0].returncode == 0, ours[0].stderr
    fields = ours[1].split(b"\0")
    kernel = Path(fields[0].split(b" ", 1)[1].decode())
    assert kernel.read_bytes() == rhel9.kernel_bytes(rhel9.default)
    assert fields[2] == f"args {rhel9.default.args}".encode()
