"""The real pygrub and guestboot-pygrub on the same XFS images (a whole-disk file system,
as a PV guest's xvda, with /boot/grub/grub.cfg): where pygrub's XFS reader
(libxenfsimage, GRUB legacy's) can read the image the two agree byte for byte; where it
cannot (v4 with ftype, v5), it fails and guestboot reads the image.
"""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest
from prereq import need_real_pygrub, unavailable

from builders import xfs as builder

pytestmark = pytest.mark.slow

TIMEOUT = 120
GRUB_CFG = """\
set default=0
set timeout=5
menuentry 'xfs guest' --id xfs {
	linux /boot/vmlinuz-xfs root=/dev/xvda ro console=hvc0
	initrd /boot/initrd.img-xfs
}
"""
ARGS = "root=/dev/xvda ro console=hvc0"
# mkfs.xfs arguments -> whether the real pygrub (Xen 4.17's libxenfsimage) reads the image
IMAGES = {
    "v4-noftype": (("-m", "crc=0", "-n", "ftype=0"), True),
    "v4-ftype": (("-m", "crc=0", "-n", "ftype=1"), False),  # it does not know the ftype byte
    "v5": ((), False),  # nor version 5 (CRC) file systems
}


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    top = tmp_path_factory.mktemp("xfs-pygrub") / "tree"
    (top / "boot" / "grub").mkdir(parents=True)
    rng = random.Random(4)
    (top / "boot" / "vmlinuz-xfs").write_bytes(rng.randbytes(700_000))
    (top / "boot" / "initrd.img-xfs").write_bytes(rng.randbytes(1_300_000))
    (top / "boot" / "grub" / "grub.cfg").write_text(GRUB_CFG)
    return top


def _image(tree: Path, name: str) -> Path:
    if subprocess.run(["which", "mkfs.xfs"], capture_output=True).returncode:
        unavailable("mkfs.xfs (xfsprogs)")
    image = tree.parent / f"{name}.img"
    if not image.exists():
        proto = tree.parent / f"{name}.proto"
        builder.write_protofile(tree, proto)
        with open(image, "wb") as f:
            f.truncate(builder.IMAGE_SIZE)
        subprocess.run(["mkfs.xfs", "-q", "-f", *IMAGES[name][0], "-p", str(proto), str(image)], check=True,
                       capture_output=True)
    return image


def _run(command: list[str], image: Path, out_dir: Path) -> tuple[subprocess.CompletedProcess, bytes]:
    out_dir.mkdir()
    output = out_dir.parent / f"{out_dir.name}.out"
    output.write_bytes(b"")  # as libxl: --output exists before the boot loader runs
    done = subprocess.run([*command, "-q", "--output-format=simple0", f"--output-directory={out_dir}",
                           f"--output={output}", str(image)], stdin=subprocess.DEVNULL, capture_output=True,
                          timeout=TIMEOUT)
    return done, output.read_bytes()


def _files(output: bytes) -> dict[str, bytes]:
    fields = dict(f.split(" ", 1) for f in output.decode().split("\0") if f)
    return {"kernel": Path(fields["kernel"]).read_bytes(), "ramdisk": Path(fields["ramdisk"]).read_bytes(),
            "args": fields["args"].encode()}


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_real_pygrub_on_xfs(tree, tmp_path, name):
    pygrub = need_real_pygrub()
    image = _image(tree, name)
    theirs, their_output = _run([str(pygrub)], image, tmp_path / "pygrub")
    ours, our_output = _run([sys.executable, "-m", "guestboot.cli.pygrub"], image, tmp_path / "ours")
    assert ours.returncode == 0, ours.stderr.decode(errors="replace")
    files = _files(our_output)
    assert files == {"kernel": (tree / "boot" / "vmlinuz-xfs").read_bytes(),
                     "ramdisk": (tree / "boot" / "initrd.img-xfs").read_bytes(), "args": ARGS.encode()}
    if IMAGES[name][1]:
        assert theirs.returncode == 0, theirs.stderr.decode(errors="replace")
        assert _files(their_output) == files
        masked = [o.replace(str(tmp_path / who).encode(), b"DIR") for o, who in
                  ((their_output, "pygrub"), (our_output, "ours"))]
        assert [len(m) for m in masked] == [len(masked[0])] * 2  # same shape; names are random
    else:
        assert theirs.returncode != 0 and their_output == b""
        assert b"Unable to find partition containing kernel" in theirs.stderr
