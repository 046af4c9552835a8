"""guestboot.extract: exact bytes from every kind of source, every copying method, and the
safety rules (no overwrite, no symlink following, caps before writing, no partial files)."""

from __future__ import annotations

import errno
import os
import re
import stat
import threading
from pathlib import Path

import pytest

from guestboot import extract
from guestboot.errors import CorruptImage, LimitExceeded, OutputError
from guestboot.extract import (
    METHODS,
    OutputBudget,
    copy_sources,
    create_file,
    create_unique_file,
    extract_to_dir,
    extract_unique,
    open_output_dir,
)
from guestboot.limits import LIMITS
from guestboot.source import ByteSource, BytesSource, FileSource, Run, SliceSource, ZeroSource

MiB = 1 << 20


@pytest.fixture(scope="session")
def image(tmp_path_factory) -> tuple[Path, bytes]:
    """A 3 MiB file of pseudo-random bytes standing in for a disk image."""
    data = os.urandom(3 * MiB)
    path = tmp_path_factory.mktemp("src") / "image.bin"
    path.write_bytes(data)
    return path, data


@pytest.fixture
def image_source(image):
    path, data = image
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    yield FileSource(fd, name="image"), data
    os.close(fd)


@pytest.fixture
def out_dir(tmp_path):
    path = tmp_path / "out"
    path.mkdir()
    fd = open_output_dir(str(path))
    yield path, fd
    os.close(fd)


def mixed_sources(source: FileSource, data: bytes):
    """Slice + memory + zeros + whole file, and the bytes they must produce."""
    sources = [
        SliceSource(source, 1000, 500_000, name="slice"),
        BytesSource(b"hello, initrd"),
        ZeroSource(70_000),
        source,
    ]
    expected = data[1000:501_000] + b"hello, initrd" + bytes(70_000) + data
    return sources, expected


@pytest.mark.parametrize("method", METHODS)
def test_mixed_sources_give_exact_bytes(image_source, out_dir, method):
    source, data = image_source
    path, dir_fd = out_dir
    sources, expected = mixed_sources(source, data)
    assert extract_to_dir(dir_fd, "initrd", sources, method=method) == "initrd"
    assert (path / "initrd").read_bytes() == expected
    assert stat.S_IMODE((path / "initrd").stat().st_mode) == 0o600


@pytest.mark.parametrize(
    "failing, errno_value",
    [("copy_file_range", errno.EXDEV), ("copy_file_range", errno.EOPNOTSUPP), ("sendfile", errno.EINVAL)],
)
def test_kernel_refusal_falls_back_with_same_bytes(image_source, out_dir, monkeypatch, failing, errno_value):
    source, data = image_source
    path, dir_fd = out_dir
    calls = []

    def refuse(*args, **kwargs):
        calls.append(args)
        raise OSError(errno_value, os.strerror(errno_value))

    monkeypatch.setattr(extract.os, failing, refuse)
    start = "copy_file_range" if failing == "copy_file_range" else "sendfile"
    extract_to_dir(dir_fd, "kernel", [source], method=start)
    assert (path / "kernel").read_bytes() == data
    assert len(calls) == 1  # refused once, then the next method for the rest


def test_other_errors_do_not_fall_back(image_source, out_dir, monkeypatch):
    source, _ = image_source
    path, dir_fd = out_dir

    def broken(*args, **kwargs):
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(extract.os, "copy_file_range", broken)
    with pytest.raises(OutputError, match="Input/output error"):
        extract_to_dir(dir_fd, "kernel", [source])
    assert os.listdir(path) == []


def test_output_to_a_pipe(image_source, monkeypatch):
    """A pipe refuses copy_file_range and positions: sendfile and plain writes are used."""
    source, data = image_source
    sent = []
    real_sendfile = os.sendfile

    def spy(*args):
        sent.append(args[3])
        return real_sendfile(*args)

    monkeypatch.setattr(extract.os, "sendfile", spy)
    sources, expected = mixed_sources(source, data)
    read_fd, write_fd = os.pipe()
    received = bytearray()

    def drain():
        while chunk := os.read(read_fd, 1 << 16):
            received.extend(chunk)

    reader = threading.Thread(target=drain)
    reader.start()
    try:
        assert copy_sources(sources, write_fd) == len(expected)
    finally:
        os.close(write_fd)
        reader.join(timeout=30)
        os.close(read_fd)
    assert bytes(received) == expected
    assert sum(sent) >= len(data)  # the file runs went through sendfile


def test_output_opened_by_someone_else(image_source, tmp_path):
    """pygrub's --output: libxl created the file, pygrub opens it O_WRONLY (no O_TRUNC).
    Bytes go at the current position, and the position ends after them."""
    source, data = image_source
    target = tmp_path / "precreated"
    target.write_bytes(b"")
    fd = os.open(target, os.O_WRONLY)
    try:
        os.write(fd, b"AB")
        copy_sources([SliceSource(source, 0, 100_000, name="s"), ZeroSource(5000)], fd)
        assert os.lseek(fd, 0, os.SEEK_CUR) == 2 + 105_000
        os.write(fd, b"Z")
    finally:
        os.close(fd)
    assert target.read_bytes() == b"AB" + data[:100_000] + bytes(5000) + b"Z"


def test_tail_hole_leaves_a_sparse_file(out_dir):
    path, dir_fd = out_dir
    extract_to_dir(dir_fd, "sparse", [BytesSource(b"x"), ZeroSource(64 * MiB)])
    st = (path / "sparse").stat()
    assert st.st_size == 64 * MiB + 1
    assert st.st_blocks * 512 < 8 * MiB
    with open(path / "sparse", "rb") as f:
        assert f.read(1) == b"x"
        f.seek(32 * MiB)
        assert f.read(4096) == bytes(4096)


def test_existing_output_is_refused_and_untouched(image_source, out_dir):
    source, _ = image_source
    path, dir_fd = out_dir
    (path / "kernel").write_bytes(b"old kernel")
    with pytest.raises(OutputError, match="already exists"):
        extract_to_dir(dir_fd, "kernel", [source])
    assert (path / "kernel").read_bytes() == b"old kernel"


@pytest.mark.parametrize("dangling", [False, True])
def test_symlink_at_output_name_is_refused(image_source, out_dir, tmp_path, dangling):
    source, _ = image_source
    path, dir_fd = out_dir
    target = tmp_path / "precious"
    if not dangling:
        target.write_bytes(b"do not touch")
    (path / "kernel").symlink_to(target)
    with pytest.raises(OutputError):
        extract_to_dir(dir_fd, "kernel", [source])
    assert (path / "kernel").is_symlink()
    if dangling:
        assert not target.exists()
    else:
        assert target.read_bytes() == b"do not touch"


@pytest.mark.parametrize("name", ["", ".", "..", "../kernel", "a/b", "/etc/passwd", "nul\0byte"])
def test_names_that_are_not_plain_are_refused(out_dir, name):
    path, dir_fd = out_dir
    with pytest.raises(OutputError, match="plain file name"):
        create_file(dir_fd, name)
    assert os.listdir(path) == []


def test_cap_is_checked_before_writing(out_dir):
    path, dir_fd = out_dir
    with pytest.raises(LimitExceeded, match="max_output_file"):
        extract_to_dir(dir_fd, "huge", [ZeroSource(LIMITS.max_output_file), BytesSource(b"x")])
    assert os.listdir(path) == []


def test_budget_is_shared_across_files(out_dir):
    path, dir_fd = out_dir
    budget = OutputBudget(limit=1000)
    extract_to_dir(dir_fd, "kernel", [ZeroSource(600)], budget=budget)
    with pytest.raises(LimitExceeded, match="max_output_total"):
        extract_to_dir(dir_fd, "initrd", [ZeroSource(401)], budget=budget)
    assert os.listdir(path) == ["kernel"]


def test_files_are_mode_0600_whatever_the_umask(out_dir):
    path, dir_fd = out_dir
    old = os.umask(0)
    try:
        extract_to_dir(dir_fd, "a", [BytesSource(b"a")])
        fd, name = create_unique_file(dir_fd, "boot_ramdisk.")
        os.close(fd)
    finally:
        os.umask(old)
    assert stat.S_IMODE((path / "a").stat().st_mode) == 0o600
    assert stat.S_IMODE((path / name).stat().st_mode) == 0o600


def test_unique_names_look_like_pygrubs(image_source, out_dir):
    source, data = image_source
    path, dir_fd = out_dir
    names = {extract_unique(dir_fd, "boot_kernel.", [source]) for _ in range(5)}
    assert len(names) == 5
    for name in names:
        assert re.fullmatch(r"boot_kernel\.[a-z0-9_]{8}", name)
        assert (path / name).read_bytes() == data


class InterruptedSource(ByteSource):
    """Yields one run of data, then the user presses Ctrl-C."""

    name = "interrupted"
    size = 2 * MiB

    def _pread(self, offset, length):
        return bytes(length)

    def runs(self, offset=0, length=None):
        yield Run(None, 0, MiB, b"\1" * MiB)
        raise KeyboardInterrupt


def test_keyboard_interrupt_removes_the_partial_file(out_dir):
    path, dir_fd = out_dir
    with pytest.raises(KeyboardInterrupt):
        extract_to_dir(dir_fd, "kernel", [InterruptedSource()])
    assert os.listdir(path) == []


@pytest.mark.parametrize("method", METHODS)
def test_source_ending_early_is_corrupt_and_leaves_nothing(image, out_dir, method):
    image_path, data = image
    path, dir_fd = out_dir
    fd = os.open(image_path, os.O_RDONLY)
    try:
        lying = FileSource(fd, name="image", size=len(data) + 4096)  # the file is shorter
        with pytest.raises(CorruptImage, match="ended early"):
            extract_to_dir(dir_fd, "kernel", [lying], method=method)
    finally:
        os.close(fd)
    assert os.listdir(path) == []


class OverlongSource(ByteSource):
    """Claims 10 bytes, maps 20: never more than the checked size may be written."""

    name = "overlong"
    size = 10

    def _pread(self, offset, length):
        return bytes(length)

    def runs(self, offset=0, length=None):
        yield Run(None, 0, 20, b"x" * 20)


def test_runs_larger_than_the_source_are_refused(out_dir):
    path, dir_fd = out_dir
    with pytest.raises(CorruptImage, match="overlong"):
        extract_to_dir(dir_fd, "kernel", [OverlongSource()])
    assert os.listdir(path) == []


def test_disk_full_is_one_line_output_error():
    fd = os.open("/dev/full", os.O_WRONLY)
    try:
        with pytest.raises(OutputError) as caught:
            copy_sources([BytesSource(b"x" * 10_000)], fd, name="kernel")
    finally:
        os.close(fd)
    assert str(caught.value) == "cannot write kernel: No space left on device"


def test_missing_output_directory_is_output_error(tmp_path):
    with pytest.raises(OutputError, match="No such file or directory"):
        open_output_dir(str(tmp_path / "missing"))
