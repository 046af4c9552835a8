"""Path walking over any FileSystem: ".", "..", symlinks, bounds. Written once, here.

Paths are absolute within one file system (a partition): an absolute symlink target
restarts at that file system's root, which is what GRUB does; ".." at the root stays at
the root. Names are bytes on disk; str paths are encoded as UTF-8 with surrogateescape.
"""

from __future__ import annotations

from ..errors import LimitExceeded, NotFound, SymlinkLoop
from ..limits import LIMITS
from ..source import ByteSource
from .base import FileSystem, FileType, Node


def _as_bytes(path: str | bytes) -> bytes:
    return path if isinstance(path, bytes) else path.encode("utf-8", "surrogateescape")


def _show(path: bytes) -> str:
    return path.decode("utf-8", "backslashreplace")


def resolve(fs: FileSystem, path: str | bytes, *, follow: bool = True) -> Node:
    """The node at ``path``; ``follow=False`` returns a final symlink itself.

    Raises NotFound (naming the missing component) or LimitExceeded (symlink hops, path
    length)."""
    raw = _as_bytes(path)
    pending = [c for c in raw.split(b"/") if c and c != b"."]
    pending.reverse()  # a stack: next component last
    if len(pending) > LIMITS.max_path_components:
        raise LimitExceeded(f"path has more than {LIMITS.max_path_components} components: {_show(raw)}")
    root = fs.root()
    stack: list[Node] = [root]
    hops = 0
    while pending:
        name = pending.pop()
        if name == b"..":
            if len(stack) > 1:
                stack.pop()
            continue
        current = stack[-1]
        if current.type is not FileType.DIR:
            raise NotFound(f"{_show(raw)}: a component before '{_show(name)}' is not a directory")
        node = fs.lookup(current, name)
        if node is None:
            raise NotFound(f"{_show(raw)}: no '{_show(name)}'")
        if node.type is FileType.LNK and (pending or follow):
            hops += 1
            if hops > LIMITS.max_symlink_hops:
                raise SymlinkLoop(f"{_show(raw)}: more than {LIMITS.max_symlink_hops} symlinks")
            target = fs.readlink(node)
            if target.startswith(b"/"):
                stack = [root]
            parts = [c for c in target.split(b"/") if c and c != b"."]
            if len(pending) + len(parts) > LIMITS.max_path_components:
                raise SymlinkLoop(f"{_show(raw)}: symlinks expand past {LIMITS.max_path_components} components")
            pending.extend(reversed(parts))
            continue
        stack.append(node)
    return stack[-1]


def open_file(fs: FileSystem, path: str | bytes) -> ByteSource:
    """A regular file's contents as a byte source (symlinks followed)."""
    node = resolve(fs, path)
    if node.type is not FileType.REG:
        raise NotFound(f"{_show(_as_bytes(path))}: not a regular file ({node.type.value})")
    return fs.open(node)


def read_bytes(fs: FileSystem, path: str | bytes, limit: int) -> bytes:
    """A whole small file (a config, grubenv); LimitExceeded when larger than ``limit``."""
    source = open_file(fs, path)
    if source.size > limit:
        raise LimitExceeded(f"{_show(_as_bytes(path))}: {source.size} bytes, more than the {limit} allowed")
    return source.pread(0, source.size)


def exists(fs: FileSystem, path: str | bytes) -> Node | None:
    """The node (symlinks followed) or None when any component is missing."""
    try:
        return resolve(fs, path)
    except NotFound:
        return None


def listdir(fs: FileSystem, path: str | bytes) -> list[tuple[bytes, Node]]:
    node = resolve(fs, path)
    if node.type is not FileType.DIR:
        raise NotFound(f"{_show(_as_bytes(path))}: not a directory")
    return list(fs.readdir(node))
