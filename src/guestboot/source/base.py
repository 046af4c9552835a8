"""The byte-source protocol every later stage reads through.

A byte source has a ``size``, answers ``pread(offset, length)`` with exactly ``length``
bytes (or raises CorruptImage naming the offset), and maps a byte range to ``Run``s:
pieces that live at an offset of an open file descriptor, holes that read as zeros, or
bytes already in memory. ``runs`` is what lets extraction copy with copy_file_range
instead of moving the data through Python.

Sources never open host paths by name: the CLI opens the image and hands over the fd, so a
later sandbox can run all of this in a child that holds only descriptors.
"""

from __future__ import annotations

import os
from typing import Iterator, NamedTuple

from ..errors import CorruptImage


class Run(NamedTuple):
    """``length`` bytes that are at ``offset`` of ``fd``; or zeros when fd is None and data
    is None; or exactly ``data`` when data is given."""

    fd: int | None
    offset: int
    length: int
    data: bytes | None = None


class ByteSource:
    """Base class: subclasses set ``size`` and ``name`` and implement ``_pread``/``runs``."""

    size: int
    name: str

    def pread(self, offset: int, length: int) -> bytes:
        """Exactly ``length`` bytes at ``offset``; a range past the end is CorruptImage."""
        if offset < 0 or length < 0 or offset + length > self.size:
            raise CorruptImage(
                f"read of {length} bytes past the end ({self.size} bytes)",
                where=self.name,
                offset=offset,
            )
        if length == 0:
            return b""
        return self._pread(offset, length)

    def _pread(self, offset: int, length: int) -> bytes:
        raise NotImplementedError  # abstract: each subclass reads its own way

    def runs(self, offset: int = 0, length: int | None = None) -> Iterator[Run]:
        """The byte range as runs, in order, covering it exactly."""
        raise NotImplementedError  # abstract: each subclass maps its own way

    def _check_range(self, offset: int, length: int | None) -> int:
        if length is None:
            length = self.size - offset
        if offset < 0 or length < 0 or offset + length > self.size:
            raise CorruptImage(
                f"range of {length} bytes past the end ({self.size} bytes)",
                where=self.name,
                offset=offset,
            )
        return length


class FileSource(ByteSource):
    """A raw image file or block device, read with os.pread on a descriptor we were given."""

    def __init__(self, fd: int, name: str = "image", size: int | None = None):
        self.fd = fd
        self.name = name
        if size is None:
            size = os.lseek(fd, 0, os.SEEK_END)  # works for block devices too
        self.size = size

    def _pread(self, offset: int, length: int) -> bytes:
        data = os.pread(self.fd, length, offset)
        while len(data) < length:  # short reads are legal; a zero read means truncation
            more = os.pread(self.fd, length - len(data), offset + len(data))
            if not more:
                raise CorruptImage("image ends early", where=self.name, offset=offset + len(data))
            data += more
        return data

    def runs(self, offset: int = 0, length: int | None = None) -> Iterator[Run]:
        length = self._check_range(offset, length)
        if length:
            yield Run(self.fd, offset, length)


class SliceSource(ByteSource):
    """A window ``[start, start + size)`` of another source: a partition, a logical volume."""

    def __init__(self, parent: ByteSource, start: int, size: int, name: str):
        if start < 0 or size < 0 or start + size > parent.size:
            raise CorruptImage(
                f"{name} spans {size} bytes from {start}, past the end of {parent.name}"
                f" ({parent.size} bytes)",
                where=parent.name,
                offset=start,
            )
        self.parent = parent
        self.start = start
        self.size = size
        self.name = name

    def _pread(self, offset: int, length: int) -> bytes:
        return self.parent.pread(self.start + offset, length)

    def runs(self, offset: int = 0, length: int | None = None) -> Iterator[Run]:
        length = self._check_range(offset, length)
        return self.parent.runs(self.start + offset, length)


class BytesSource(ByteSource):
    """Bytes already in memory: inline file data, a small decompressed file, a test input."""

    def __init__(self, data: bytes, name: str = "memory"):
        self.data = bytes(data)
        self.size = len(self.data)
        self.name = name

    def _pread(self, offset: int, length: int) -> bytes:
        return self.data[offset : offset + length]

    def runs(self, offset: int = 0, length: int | None = None) -> Iterator[Run]:
        length = self._check_range(offset, length)
        if length:
            yield Run(None, offset, length, self.data[offset : offset + length])


class ZeroSource(ByteSource):
    """``size`` bytes of zeros (a sparse file with no data)."""

    def __init__(self, size: int, name: str = "zeros"):
        self.size = size
        self.name = name

    def _pread(self, offset: int, length: int) -> bytes:
        return bytes(length)

    def runs(self, offset: int = 0, length: int | None = None) -> Iterator[Run]:
        length = self._check_range(offset, length)
        if length:
            yield Run(None, offset, length)
