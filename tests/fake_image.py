"""An image format that lives outside the package, to prove the image-format registry:
registered by a test (one line in guestboot.source.formats.READERS), touching no module
of ours.

Its format (ours, for tests only): a 512-byte header, ``HEADER`` below, then the disk's
bytes, each XORed with 0x5A. Detected by its magic; the data is transformed, so reads
come back as bytes in memory (``Run.data``), never as a run of the image file.
"""

from __future__ import annotations

import struct
from typing import Iterator

from guestboot.errors import CorruptImage
from guestboot.source.base import ByteSource, Run

NAME = "xor5a"
MAGIC = b"GBXOR5A\0"
HEADER = struct.Struct("<8sQ")  # magic, disk size in bytes
HEADER_SIZE = 512
KEY = 0x5A
_FLIP = bytes(b ^ KEY for b in range(256))
CHUNK = 1 << 20  # bytes per data run: what is held in memory at once


def wrap(disk: bytes) -> bytes:
    """The image of ``disk`` in this format."""
    return HEADER.pack(MAGIC, len(disk)).ljust(HEADER_SIZE, b"\0") + disk.translate(_FLIP)


def detect(image: ByteSource) -> bool:
    return image.size >= HEADER_SIZE and image.pread(0, len(MAGIC)) == MAGIC


def open(image: ByteSource, opener) -> ByteSource:  # noqa: A001 - the registry's name
    _magic, size = HEADER.unpack(image.pread(0, HEADER.size))
    if size > image.size - HEADER_SIZE:
        raise CorruptImage(f"xor5a: a disk of {size} bytes does not fit in the image", where=image.name, offset=8)
    return XorSource(image, size)


class XorSource(ByteSource):
    def __init__(self, image: ByteSource, size: int) -> None:
        self.image = image
        self.size = size
        self.name = f"{image.name}[xor5a]"

    def _pread(self, offset: int, length: int) -> bytes:
        return self.image.pread(HEADER_SIZE + offset, length).translate(_FLIP)

    def runs(self, offset: int = 0, length: int | None = None) -> Iterator[Run]:
        length = self._check_range(offset, length)
        end = offset + length
        while offset < end:
            step = min(CHUNK, end - offset)
            yield Run(None, offset, step, self._pread(offset, step))
            offset += step
