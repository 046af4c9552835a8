"""A FileSystem over a host directory, for tests of the boot-config stages.

It lets config parsers be tested on the corpus trees (which are directories) through the
same interface the real drivers implement. Never used by the product: a guest image is
never a host directory.
"""

from __future__ import annotations

import os
from pathlib import Path

from guestboot.devices import DeviceMap
from guestboot.fs.base import FileSystem, FileType, Node
from guestboot.source import BytesSource


def _type(st_mode: int) -> FileType:
    import stat

    if stat.S_ISDIR(st_mode):
        return FileType.DIR
    if stat.S_ISREG(st_mode):
        return FileType.REG
    if stat.S_ISLNK(st_mode):
        return FileType.LNK
    return FileType.OTHER


class DirFileSystem(FileSystem):
    kind = "dir"

    def __init__(self, top: str | os.PathLike, uuid: str | None = None, label: str | None = None):
        self.top = Path(top)
        self.uuid = uuid
        self.label = label
        self.warnings = []

    def _node(self, path: Path) -> Node:
        st = path.lstat()
        return Node(st.st_ino, _type(st.st_mode), st.st_size, st.st_mode, int(st.st_mtime), private=path)

    def root(self) -> Node:
        return self._node(self.top)

    def lookup(self, directory: Node, name: bytes) -> Node | None:
        path = directory.private / os.fsdecode(name)
        try:
            return self._node(path)
        except FileNotFoundError:
            return None

    def readdir(self, directory: Node):
        for name in sorted(os.listdir(directory.private)):
            yield os.fsencode(name), self._node(directory.private / name)

    def readlink(self, node: Node) -> bytes:
        return os.fsencode(os.readlink(node.private))

    def open(self, node: Node):
        return BytesSource(Path(node.private).read_bytes(), name=str(node.private.name))


def device_map(problems: dict | None = None, **devices: DirFileSystem | None) -> DeviceMap:
    """``device_map(**{"hd0,msdos1": DirFileSystem(...)})`` in the order given; a device
    given None has ``problems[name]`` or "no recognised file system"."""
    return DeviceMap.of(dict(devices), problems)
