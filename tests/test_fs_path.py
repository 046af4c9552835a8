"""Path walking (fs/path.py) over real ext images: ".", "..", symlinks, bounds, errors."""

from __future__ import annotations

import os

import pytest

from builders import ext as builder
from guestboot.errors import LimitExceeded, NotFound
from guestboot.fs import ext
from guestboot.fs import path as fspath
from guestboot.fs.base import FileType
from guestboot.source import FileSource


@pytest.fixture(scope="module", params=["ext2-1k", "ext4-4k", "ext4-inline"])
def fs(request, tmp_path_factory):
    path = builder.image(tmp_path_factory, request.param)
    fd = os.open(path, os.O_RDONLY)
    request.addfinalizer(lambda: os.close(fd))
    return ext.probe(FileSource(fd, name=path.name))


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return builder.tree(tmp_path_factory)


@pytest.mark.parametrize(
    "path, expected",
    [
        ("/small.txt", "small.txt"),
        ("small.txt", "small.txt"),
        ("//nested///a/./b/c/deep.txt", "nested/a/b/c/deep.txt"),
        ("/nested/a/b/../../a/b/c/deep.txt", "nested/a/b/c/deep.txt"),
        ("/../../small.txt", "small.txt"),  # ".." at the root stays at the root
        ("/link-fast", "small.txt"),
        ("/link-slow", builder.SLOW_TARGET),
        ("/nested/a/link-rel", "small.txt"),  # relative to the link's directory
        ("/link-abs", "nested/a/b/c/deep.txt"),  # absolute: restarts at the fs root
        ("/nested/a/b/link-up-abs", "small.txt"),
        ("/link-dir/b/c/deep.txt", "nested/a/b/c/deep.txt"),  # a symlink in the middle
        ("/link-dir/link-rel", "small.txt"),
        ("/link-dir/b/link-up-abs", "small.txt"),
    ],
)
def test_paths_resolve_to_the_tree(fs, tree, path, expected):
    assert fspath.read_bytes(fs, path, 1 << 20) == (tree / expected).read_bytes()


def test_dotdot_after_a_symlink_is_lexical_on_the_resolved_directory(fs, tree):
    # link-dir -> nested/a; ".." from there is "nested" (the walk keeps the resolved stack)
    names = sorted(name for name, _ in fspath.listdir(fs, "/link-dir/.."))
    assert names == sorted(os.fsencode(n) for n in os.listdir(tree / "nested"))


def test_no_follow_returns_the_symlink(fs):
    node = fspath.resolve(fs, "/link-abs", follow=False)
    assert node.type is FileType.LNK
    assert fs.readlink(node) == b"/nested/a/b/c/deep.txt"
    assert fspath.resolve(fs, "/link-dir").type is FileType.DIR


def test_symlink_loop_is_a_limit(fs):
    with pytest.raises(LimitExceeded, match="symlinks"):
        fspath.resolve(fs, "/loop-a")
    with pytest.raises(LimitExceeded):
        fspath.open_file(fs, "/nested/../loop-b/x")


@pytest.mark.parametrize(
    "path", ["/missing", "/nested/missing/deep.txt", "/dangling", "/small.txt/x", "/many/entry-9999"]
)
def test_missing_paths_are_not_found(fs, path):
    with pytest.raises(NotFound):
        fspath.resolve(fs, path)
    assert fspath.exists(fs, path) is None


def test_open_and_list_check_types(fs, tree):
    with pytest.raises(NotFound, match="not a regular file"):
        fspath.open_file(fs, "/nested")
    with pytest.raises(NotFound, match="not a directory"):
        fspath.listdir(fs, "/small.txt")
    with pytest.raises(LimitExceeded):
        fspath.read_bytes(fs, "/big.bin", 1000)
    assert fspath.exists(fs, "/link-dir/b").type is FileType.DIR
    listed = sorted(name for name, _ in fspath.listdir(fs, "/nested/a/b"))
    assert listed == sorted(os.fsencode(n) for n in os.listdir(tree / "nested/a/b"))
