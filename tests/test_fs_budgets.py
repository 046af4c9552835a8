"""File-system scan budgets count work per IMAGE, and holes are written as holes.

Classes of attack, each shown on images made by the real tools and then altered
(tests/builders/budget_attacks.py):

- one budget per image: partitions that alias one file system share one ScanTotal, for
  every driver (the budget does not restart per partition, nor for a GRUB ``search`` over
  all devices);
- the real attack end to end: a directory of live and deleted slots searched again and
  again over four aliasing partitions finishes or fails in bounded time and memory;
- holes: sparse files of ext4, xfs and btrfs come out sparse (no data blocks for the holes),
  sandboxed or not, and a 1 TiB sparse file is refused before anything is written;
- aliasing block maps: a file whose map points at the same blocks again and again cannot
  make more data than its volume holds.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

from builders import budget_attacks as attacks
from guestboot.errors import CorruptImage, LimitExceeded

pytestmark = pytest.mark.skipif(attacks.can_build() is not None, reason=str(attacks.can_build()))

GUESTBOOT = [sys.executable, "-m", "guestboot"]
ATTACK_SECONDS = 20  # the run bound asserted; before per-image budgets the attack took ~43 s here, now ~2-3 s
ATTACK_MEMORY = 512 << 20  # RLIMIT_AS of the attacked run


def _limited() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ATTACK_MEMORY, ATTACK_MEMORY))


def guestboot(*args: str, stdout=subprocess.PIPE, timeout: float = ATTACK_SECONDS) -> subprocess.CompletedProcess:
    """The CLI in a child capped in address space and time (a hang fails the test)."""
    return subprocess.run([*GUESTBOOT, *args], stdout=stdout, stderr=subprocess.PIPE, timeout=timeout,
                          preexec_fn=_limited)


# --- one budget per image, every driver ------------------------------------------------------

_ALIASED: dict[str, Path] = {}


@pytest.fixture(scope="session")
def many_tree(tmp_path_factory) -> Path:
    return attacks.many_tree(tmp_path_factory.mktemp("budget-many") / "tree")


def aliased(driver: str, many_tree: Path, factory) -> Path:
    if driver not in _ALIASED:
        work = factory.mktemp(f"budget-{driver}")
        try:
            fs_image = attacks.many_fs(driver, many_tree, work / "fs.img")
        except (FileNotFoundError, RuntimeError) as err:  # a tool missing here (exfat-fuse needs /dev/fuse)
            pytest.skip(f"cannot build {driver}: {err}")
        except Exception as err:  # builders' ToolMissing
            if type(err).__name__ != "ToolMissing":
                raise
            pytest.skip(str(err))
        _ALIASED[driver] = attacks.aliased_gpt(fs_image, work / "disk.img", copies=4)
    return _ALIASED[driver]


def _look_up(image, device: str) -> None:
    from guestboot.fs.path import resolve

    fs = image.devices.filesystem(device)
    many = resolve(fs, "/many")
    assert fs.lookup(many, b"a name that is not there") is None


@pytest.mark.parametrize("driver", attacks.DRIVERS)
def test_aliased_partitions_share_one_scan_budget(driver, many_tree, tmp_path_factory, monkeypatch):
    """The first lookup of a missing name in /many costs C of scanning on a fresh file
    system. With the image's totals set to 3.5 C, a lookup on each of four partitions that
    alias one file system (fresh caches each) succeeds three times and fails the fourth:
    the budget is the image's, not the partition's."""
    from guestboot.fs import budget
    from guestboot.image import open_disks
    from guestboot.limits import LIMITS

    disk = aliased(driver, many_tree, tmp_path_factory)
    with open(disk, "rb") as f:
        with budget.image_scope() as total:
            image = open_disks([(f.fileno(), "disk.img")])
            assert [d for d, fs in image.devices.filesystems()] == ["hd0,gpt1", "hd0,gpt2", "hd0,gpt3", "hd0,gpt4"]
            before = (total.bytes, total.meta)
            _look_up(image, "hd0,gpt1")
            cost = (total.bytes - before[0], total.meta - before[1])
        assert cost != (0, 0), f"{driver}: a directory lookup is charged nothing"
        limits = LIMITS._replace(
            max_dir_bytes_total=int(3.5 * cost[0]) if cost[0] else LIMITS.max_dir_bytes_total,
            max_meta_bytes_total=int(3.5 * cost[1]) if cost[1] else LIMITS.max_meta_bytes_total)
        monkeypatch.setattr(budget, "LIMITS", limits)
        with budget.image_scope() as total:
            image = open_disks([(f.fileno(), "disk.img")])
            base = (total.bytes, total.meta)  # what probing read (charged before the lookups)
            monkeypatch.setattr(budget, "LIMITS", limits._replace(
                max_dir_bytes_total=limits.max_dir_bytes_total + base[0],
                max_meta_bytes_total=limits.max_meta_bytes_total + base[1]))
            for device in ("hd0,gpt1", "hd0,gpt2", "hd0,gpt3"):
                _look_up(image, device)
            with pytest.raises(LimitExceeded, match=r"max_(dir|meta)_bytes_total") as caught:
                _look_up(image, "hd0,gpt4")
    message = str(caught.value)
    assert "\n" not in message and "disk.img" in message  # one line naming the device


# drivers whose lookup in /many reads metadata besides the directory's own bytes: btrfs tree
# blocks, the FAT's cluster chain, squashfs's decoded inode/directory metadata blocks (the
# others keep this directory's map in its inode: xfs extents, an exFAT NoFatChain run, ext4
# extents in i_block, ISO 9660 extents in the record)
READS_METADATA = ("btrfs", "fat", "squashfs")


@pytest.mark.parametrize("driver", READS_METADATA)
def test_metadata_total_alone_bounds_lookups_over_aliased_partitions(driver, many_tree, tmp_path_factory,
                                                                     monkeypatch):
    """As above with the directory total out of the way: the metadata a lookup reads (C on a
    fresh file system) is charged to the image, so with max_meta_bytes_total at 3.5 C the
    fourth aliasing partition's lookup fails on it."""
    from guestboot.fs import budget
    from guestboot.image import open_disks
    from guestboot.limits import LIMITS

    disk = aliased(driver, many_tree, tmp_path_factory)
    with open(disk, "rb") as f:
        with budget.image_scope() as total:
            image = open_disks([(f.fileno(), "disk.img")])
            before = total.meta
            _look_up(image, "hd0,gpt1")
            cost = total.meta - before
        assert cost > 0, f"{driver}: a lookup in a {attacks.MANY}-entry directory charges no metadata"
        with budget.image_scope() as total:
            image = open_disks([(f.fileno(), "disk.img")])
            monkeypatch.setattr(budget, "LIMITS", LIMITS._replace(max_dir_bytes_total=1 << 62,
                                                                  max_meta_bytes_total=total.meta + int(3.5 * cost)))
            for device in ("hd0,gpt1", "hd0,gpt2", "hd0,gpt3"):
                _look_up(image, device)
            with pytest.raises(LimitExceeded, match="max_meta_bytes_total"):
                _look_up(image, "hd0,gpt4")


def test_outside_a_run_each_image_has_its_own_budget(many_tree, tmp_path_factory):
    """Two images opened one after the other (no run around them) do not share a total,
    and the file systems of one image do."""
    from guestboot.image import open_disks

    disk = aliased("ext4", many_tree, tmp_path_factory)
    with open(disk, "rb") as f:
        first = open_disks([(f.fileno(), "disk.img")])
        second = open_disks([(f.fileno(), "disk.img")])
    totals_first = {id(fs._scanned) for _name, fs in first.devices.filesystems()}
    totals_second = {id(fs._scanned) for _name, fs in second.devices.filesystems()}
    assert len(totals_first) == 1 and len(totals_second) == 1 and totals_first != totals_second


# --- the real attack, end to end ---------------------------------------------------------------


@pytest.fixture(scope="session")
def deleted_slots_disk(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("budget-deleted-slots")
    fs_image = attacks.deleted_slots_fs(work)
    return attacks.aliased_gpt(fs_image, work / "disk.img", copies=4)


@pytest.mark.parametrize("sandbox", [True, False], ids=["sandbox", "no-sandbox"])
def test_search_over_aliased_partitions_with_deleted_slots_is_bounded(deleted_slots_disk, sandbox):
    """grub.cfg searches four aliasing partitions 400 times for a name missing from a
    1.5 MB directory of live and deleted slots (~2.4 GB of scanning with a budget per
    partition: ~43 s). With one budget per image the run finishes or fails with a typed
    one-line error, well inside the bound, in 512 MiB of address space."""
    started = time.monotonic()
    done = guestboot("list", *(() if sandbox else ("--no-sandbox",)), str(deleted_slots_disk))
    elapsed = time.monotonic() - started
    assert elapsed < ATTACK_SECONDS
    err = done.stderr.decode()
    assert done.returncode in (0, LimitExceeded.exit_code), err
    if done.returncode == 0:  # search failed on the budget, as GRUB's after a read error; the user is told
        assert b"attacked" in done.stdout
        assert "scan budget of this image used up (max_dir_bytes_total)" in err.splitlines()[0]
    else:
        assert "max_dir_bytes_total" in err and err.count("\n") == 1


# --- holes written as holes ---------------------------------------------------------------------

HOLE_MIB = 100
SPARSE_DRIVERS = ("ext4", "xfs", "btrfs")


@pytest.fixture(scope="session")
def sparse_tree(tmp_path_factory) -> Path:
    return attacks.sparse_tree(tmp_path_factory.mktemp("budget-sparse") / "tree", HOLE_MIB)


_SPARSE: dict[str, Path] = {}


def sparse_fs(driver: str, tree: Path, factory) -> Path:
    if driver not in _SPARSE:
        work = factory.mktemp(f"budget-sparse-{driver}")
        _SPARSE[driver] = attacks.sparse_fs(driver, tree, work / "fs.img")
    return _SPARSE[driver]


def _allocated(path: Path) -> int:
    return os.stat(path).st_blocks * 512


@pytest.mark.parametrize("sandbox", [True, False], ids=["sandbox", "no-sandbox"])
@pytest.mark.parametrize("driver", SPARSE_DRIVERS)
def test_sparse_files_are_written_as_holes(driver, sandbox, sparse_tree, tmp_path_factory, tmp_path):
    """A file made by ``truncate -s`` and one with data around a 100 MiB hole come out
    byte-identical to the tree's, and the hole takes no space in the output (``du``)."""
    image = sparse_fs(driver, sparse_tree, tmp_path_factory)
    for name in ("sparse-initrd", "holey"):
        expected = sparse_tree / "boot" / name
        out = tmp_path / f"{name}-{sandbox}"
        with open(out, "wb") as f:
            done = guestboot("cat", *(() if sandbox else ("--no-sandbox",)), str(image), f"/boot/{name}", stdout=f)
        assert done.returncode == 0, done.stderr.decode()
        assert out.stat().st_size == expected.stat().st_size
        assert _allocated(out) < 1 << 20, f"{name}: {_allocated(out)} bytes allocated for a sparse file"
        with open(out, "rb") as got, open(expected, "rb") as want:
            for offset in (0, (HOLE_MIB << 20) - 4096, HOLE_MIB << 20, expected.stat().st_size - 4096):
                got.seek(offset)
                want.seek(offset)
                assert got.read(8192) == want.read(8192), (name, offset)


@pytest.mark.parametrize("driver", SPARSE_DRIVERS)
def test_a_terabyte_sparse_file_is_refused_before_any_work(driver, sparse_tree, tmp_path_factory, tmp_path):
    image = sparse_fs(driver, sparse_tree, tmp_path_factory)
    out = tmp_path / "huge"
    with open(out, "wb") as f:
        done = guestboot("cat", str(image), "/boot/huge", stdout=f, timeout=30)
    err = done.stderr.decode()
    assert done.returncode == LimitExceeded.exit_code, err
    assert "max_output_file" in err and err.count("\n") == 1
    assert out.stat().st_size == 0


def test_holes_over_bytes_a_given_output_holds_are_written_as_zeros(tmp_path):
    """An output given with data after the write position (not ours to leave as it was)
    gets real zeros over the hole; a new one gets a hole."""
    from guestboot.extract import copy_sources
    from guestboot.source import BytesSource, ZeroSource

    given = tmp_path / "given"
    given.write_bytes(b"\xff" * (1 << 20))
    with open(given, "r+b") as f:
        copy_sources([ZeroSource(1 << 20)], f.fileno())
    assert given.read_bytes() == bytes(1 << 20)
    fresh = tmp_path / "fresh"
    with open(fresh, "wb") as f:  # a hole in the middle: data after it
        copy_sources([BytesSource(b"head"), ZeroSource(64 << 20), BytesSource(b"tail")], f.fileno())
    assert fresh.stat().st_size == (64 << 20) + 8 and _allocated(fresh) < 1 << 20
    with open(fresh, "rb") as f:
        assert f.read(4) == b"head" and os.pread(f.fileno(), 8, 64 << 20) == b"\0\0\0\0tail"


# --- block maps that alias ---------------------------------------------------------------------


def test_a_block_map_that_aliases_one_block_cannot_outgrow_its_volume(tmp_path):
    """ext2 (indirect block maps, 1 KiB blocks) with a 200 KiB file, then altered: the
    file's size set to 64 MiB and its double-indirect block pointed at its (single)
    indirect block again and again, so 64 MiB of data would come from a few blocks of an
    8 MiB volume. Reading it stops with CorruptImage once the data mapped passes the
    volume's size; the work done is bounded by the volume, not by the claim."""
    from guestboot.fs.ext import probe
    from guestboot.fs.path import resolve
    from guestboot.source import FileSource

    image = attacks.aliasing_ext2(tmp_path)
    with open(image, "rb") as f:
        fs = probe(FileSource(f.fileno(), "fs.img"))
        node = resolve(fs, "/boot/alias")
        assert node.size == 64 << 20
        source = fs.open(node)
        started = time.monotonic()
        with pytest.raises(CorruptImage, match="more data than the volume holds"):
            for _run in source.runs(0, source.size):
                pass
        assert time.monotonic() - started < 10


def test_holes_through_a_qcow2_image_stay_holes(sparse_tree, tmp_path_factory, tmp_path):
    """The ext4 image of the sparse tree converted by qemu-img to qcow2 (its empty
    clusters unallocated): the file with data around a 100 MiB hole comes out the same
    and sparse through the qcow2 reader too."""
    import shutil

    if shutil.which("qemu-img") is None:
        pytest.skip("qemu-img (qemu-utils) is not installed")
    image = sparse_fs("ext4", sparse_tree, tmp_path_factory)
    qcow2 = tmp_path / "fs.qcow2"
    subprocess.run(["qemu-img", "convert", "-O", "qcow2", str(image), str(qcow2)], check=True, capture_output=True)
    out = tmp_path / "holey"
    with open(out, "wb") as f:
        done = guestboot("cat", str(qcow2), "/boot/holey", stdout=f)
    assert done.returncode == 0, done.stderr.decode()
    expected = sparse_tree / "boot" / "holey"
    assert out.stat().st_size == expected.stat().st_size and _allocated(out) < 1 << 20
    with open(out, "rb") as got, open(expected, "rb") as want:
        for offset in (0, HOLE_MIB << 20):
            assert os.pread(got.fileno(), 8192, offset) == os.pread(want.fileno(), 8192, offset)
