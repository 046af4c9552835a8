"""The output directory pre-seeded by someone else: a symlink named like our output
(pointing at a host file), a FIFO (opening it for writing would block), a directory, a
hard link to a host file. Without --force nothing there is touched (exit 8, one line);
with --force the name is replaced by a new file (rename), never followed or written
through, and the host file behind it keeps its bytes. The arena snapshot checks the
decoys; the pre-seeded names are checked here."""

from __future__ import annotations

import os
import stat
import subprocess

import pytest

from hostile import configs
from hostile.configs import GUEST_INITRD, GUEST_KERNEL
from hostile.harness import HOST_DECOYS, expect_error, expect_kernel, extract, pygrub

VICTIM = "host/etc/passwd"  # a decoy in the arena: its bytes must never change


def _seed(arena, name: str, kind: str) -> None:
    arena.out.mkdir(exist_ok=True)
    path = arena.out / name
    victim = arena.root / VICTIM
    if kind == "symlink":
        os.symlink(victim, path)
    elif kind == "dangling-symlink":
        os.symlink(arena.root / "host" / "created-by-guestboot", path)
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "directory":
        path.mkdir()
        (path / "inside").write_bytes(b"keep")
    elif kind == "hardlink":
        os.link(victim, path)
    else:
        raise ValueError(kind)


KINDS = ("symlink", "dangling-symlink", "fifo", "directory", "hardlink")


@pytest.fixture(scope="module")
def image(images):
    return images.fs("outdir", "ext4", configs.guest("grub2"))


@pytest.mark.parametrize("name", ["kernel", "initrd"])
@pytest.mark.parametrize("kind", KINDS)
def test_preseeded_name_is_not_touched(arena, image, kind, name):
    _seed(arena, name, kind)
    expect_error(extract(arena, image), {8})
    assert (arena.root / VICTIM).read_bytes() == HOST_DECOYS[VICTIM]
    assert not (arena.root / "host" / "created-by-guestboot").exists()


@pytest.mark.parametrize("kind", [k for k in KINDS if k != "directory"])
def test_force_replaces_the_name_not_what_it_points_at(arena, image, kind):
    _seed(arena, "kernel", kind)
    result = extract(arena, image, "--force")
    expect_kernel(result, GUEST_KERNEL, GUEST_INITRD)
    assert stat.S_ISREG(os.lstat(arena.out / "kernel").st_mode)
    assert (arena.root / VICTIM).read_bytes() == HOST_DECOYS[VICTIM]
    assert not (arena.root / "host" / "created-by-guestboot").exists()


def test_force_does_not_replace_a_directory(arena, image):
    _seed(arena, "kernel", "directory")
    expect_error(extract(arena, image, "--force"), {8})
    assert (arena.out / "kernel" / "inside").read_bytes() == b"keep"


@pytest.mark.parametrize("kind", ["symlink", "fifo"])
def test_pygrub_output_directory_with_decoys(arena, image, kind):
    """pygrub makes new files (boot_kernel.XXXXXX); names already there stay as they are."""
    for name in ("boot_kernel", "boot_ramdisk", "boot_kernel.XXXXXX"):
        _seed(arena, name, kind)
    before = {name: os.lstat(arena.out / name) for name in os.listdir(arena.out)}
    result = pygrub(arena, "-q", "--output-format=simple0", f"--output-directory={arena.out}", str(image))
    assert result.rc == 0, result
    for name, st in before.items():
        now = os.lstat(arena.out / name)
        assert (now.st_ino, now.st_mode, now.st_mtime_ns) == (st.st_ino, st.st_mode, st.st_mtime_ns), name
    new = sorted(set(os.listdir(arena.out)) - set(before))
    assert len(new) == 2 and {(arena.out / n).read_bytes() for n in new} == {GUEST_KERNEL, GUEST_INITRD}


def test_output_directory_is_a_file(arena, image):
    arena.out.write_bytes(b"not a directory")
    expect_error(extract(arena, image), {2, 8})
    assert arena.out.read_bytes() == b"not a directory"


@pytest.fixture
def small_mount(arena):
    """The output directory on a tmpfs of its own (root: a mount), unmounted afterwards."""
    mounted = []

    def mount(options: str):
        arena.out.mkdir(exist_ok=True)
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "hostile-out", str(arena.out)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
        mounted.append(arena.out)

    yield mount
    for path in mounted:
        subprocess.run(["umount", str(path)], capture_output=True, check=False)


@pytest.mark.parametrize("front", ["extract", "pygrub"])
@pytest.mark.parametrize("options", ["size=8k", "ro"], ids=["full", "read-only"])
def test_output_directory_full_or_read_only(arena, image, small_mount, front, options):
    """Writing fails part-way (an 8 KiB file system: the 16 KiB kernel does not fit) or at once
    (read-only): an output error, one line, nothing left there."""
    small_mount(options)
    if front == "extract":
        result = extract(arena, image)
    else:
        result = pygrub(arena, "-q", "--output-format=simple0", f"--output-directory={arena.out}", str(image))
    expect_error(result, {5, 8, 9})
    assert os.listdir(arena.out) == []
