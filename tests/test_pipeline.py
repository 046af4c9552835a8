"""pipeline.run: one call for every front end; its result is plain data (JSON round-trips
unchanged, as it must to cross the --runas child's pipe), and failures carry the warnings
gathered before them.

The image is made by mke2fs -d from the tree that holds the expected answer.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from guestboot.errors import NotFound
from guestboot.pipeline import Request, run

GRUB_CFG = """\
set default=1
menuentry 'One' --id one {
    linux /vmlinuz-1 ro
}
menuentry 'Two' --id two {
    linux /vmlinuz-2 root=/dev/xvda1
    initrd /initrd-2
}
"""


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    top = tmp_path_factory.mktemp("pipeline-tree")
    (top / "grub").mkdir()
    (top / "grub" / "grub.cfg").write_text(GRUB_CFG)
    (top / "vmlinuz-1").write_bytes(b"one" * 1000)
    (top / "vmlinuz-2").write_bytes(b"two" * 3000)
    (top / "initrd-2").write_bytes(b"rd" * 500)
    return top


@pytest.fixture(scope="module")
def image_fd(tree, tmp_path_factory):
    image = tmp_path_factory.mktemp("pipeline-img") / "boot.img"
    subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", "-T", "default", "-d", str(tree), str(image), "8M"],
                   check=True, capture_output=True)
    fd = os.open(image, os.O_RDONLY)
    yield fd
    os.close(fd)


def _request(fd: int, action: str, **fields) -> Request:
    return Request(action, ((fd, "boot.img"),), **fields)


@pytest.mark.parametrize("action,fields", [
    ("menu", {}), ("plan", {}), ("plan", {"entry": "one", "extra_args": "console=hvc0"}),
    ("devices", {}), ("ls", {"path": "(hd0)/grub"}), ("plan", {"kernel": "/vmlinuz-1", "extra_args": "x"}),
])
def test_results_are_plain_data(image_fd, action, fields):
    result = run(_request(image_fd, action, **fields))
    assert json.loads(json.dumps(result)) == result
    assert result["warnings"] == []


def test_plan_names_the_entry_and_its_files(image_fd):
    result = run(_request(image_fd, "plan"))
    assert result["entry"] == {"title": "Two", "id": "two", "path": "1", "titles": ["Two"]}
    assert result["kernel"] == {"device": "hd0", "path": "/vmlinuz-2", "written": "/vmlinuz-2",
                                "grub": "(hd0)/vmlinuz-2"}
    assert [r["path"] for r in result["initrds"]] == ["/initrd-2"]
    assert result["cmdline"] == "BOOT_IMAGE=/vmlinuz-2 root=/dev/xvda1"
    assert [row["default"] for row in result["rows"]] == [False, True]


def test_extract_fills_the_given_descriptors(image_fd, tree, tmp_path):
    kernel, initrd = tmp_path / "k", tmp_path / "i"
    with open(kernel, "wb") as k, open(initrd, "wb") as i:
        result = run(_request(image_fd, "extract", kernel_fd=k.fileno(), initrd_fd=i.fileno()))
    assert result["initrd"] is True
    assert kernel.read_bytes() == (tree / "vmlinuz-2").read_bytes()
    assert initrd.read_bytes() == (tree / "initrd-2").read_bytes()


def test_host_given_kernel_reads_no_config(image_fd):
    result = run(_request(image_fd, "plan", kernel="/vmlinuz-1", extra_args="console=hvc0"))
    assert result["entry"] is None and result["config"] is None
    assert result["kernel"]["path"] == "/vmlinuz-1" and result["args"] == "console=hvc0"


def test_cat_copies_into_out_fd(image_fd, tree, tmp_path):
    out = tmp_path / "cfg"
    with open(out, "wb") as f:
        run(_request(image_fd, "cat", path="/grub/grub.cfg", out_fd=f.fileno()))
    assert out.read_bytes() == (tree / "grub" / "grub.cfg").read_bytes()


def test_a_failure_carries_the_warnings_before_it(tree, tmp_path):
    """A GPT whose one partition runs past the end: the clipping warning travels with the
    NotFound that follows (no config on the clipped partition)."""
    image = tmp_path / "gpt.img"
    with open(image, "wb") as f:
        f.truncate(4 * 1024 * 1024)
    subprocess.run(["sgdisk", "-n", "1:2048:0", str(image)], check=True, capture_output=True)
    with open(image, "r+b") as f:
        f.truncate(3 * 1024 * 1024)  # the partition (and the backup GPT) now run past the end
    fd = os.open(image, os.O_RDONLY)
    try:
        with pytest.raises(NotFound) as info:
            run(_request(fd, "menu"))
    finally:
        os.close(fd)
    assert any("runs past the end of the disk" in w for w in info.value.warnings), info.value.warnings
