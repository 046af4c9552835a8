"""Image formats recognised by their magic before they can be read, so that a qcow2 image
says "qcow2 image: not supported yet" (Unsupported) instead of "no recognised file system".

One line per format in SIGNATURES; when a reader for a format lands, its line here goes
and its module joins source.formats.READERS.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

from .base import ByteSource


def _at(source: ByteSource, offset: int, magic: bytes) -> bool:
    return 0 <= offset and offset + len(magic) <= source.size and source.pread(offset, len(magic)) == magic


class ImageSignature(NamedTuple):
    name: str  # the --format name
    what: str  # for messages: "qcow2 image"
    matches: Callable[[ByteSource], bool]


SIGNATURES: tuple[ImageSignature, ...] = (
    ImageSignature("qed", "QED image", lambda s: _at(s, 0, b"QED\0")),  # QEMU qed_spec: magic
    ImageSignature("vdi", "VDI image", lambda s: _at(s, 0x40, b"\x7f\x10\xda\xbe")),  # VirtualBox VDI header signature
    # VMware "Virtual Disk Format 1.1", "ESX Server Sparse Extents": COWD (source.vmdk reads
    # hosted "KDMV" sparse extents and descriptors)
    ImageSignature("vmdk-cowd", "VMDK ESX sparse (COWD) extent", lambda s: _at(s, 0, b"COWD")),
)


def identify(source: ByteSource) -> ImageSignature | None:
    for signature in SIGNATURES:
        if signature.matches(source):
            return signature
    return None
