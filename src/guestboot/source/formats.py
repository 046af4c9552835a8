"""Image formats: how a disk's bytes are stored in the image file.

READERS lists the formats we read, as (name, module) in detection order; a module exposes
``detect(image) -> bool`` (by content: magic numbers) and ``open(image, opener) ->
ByteSource`` (the disk the image holds). A format is one module and one line here. A file
no reader claims is raw; before that, source.signatures names formats we recognise but do
not read yet (Unsupported). ``image_format`` forces one (``--format``).
"""

from __future__ import annotations

import importlib

from ..errors import Unsupported
from .base import ByteSource
from .opener import REFUSE, Opener, chained
from . import signatures

READERS: tuple[tuple[str, str], ...] = (
    ("qcow2", "guestboot.source.qcow2"),
    ("vmdk", "guestboot.source.vmdk"),
    ("vhdx", "guestboot.source.vhdx"),
    ("vhd", "guestboot.source.vhd"),
)

RAW = "raw"
ALIASES = {"vpc": "vhd"}  # QEMU's names (qemu-img -f, a qcow2 backing file format) for ours


def open_format(image: ByteSource, *, image_format: str | None = None, opener: Opener | None = None) -> ByteSource:
    """The disk that ``image`` holds: detected by content (raw when nothing else matches),
    or the format ``image_format`` names."""
    opener = REFUSE if opener is None else opener
    if image_format is not None:
        wanted = image_format.lower()
        wanted = ALIASES.get(wanted, wanted)
        if wanted == RAW:
            return image
        for name, module in READERS:
            if name == wanted:
                return importlib.import_module(module).open(image, opener)
        for signature in signatures.SIGNATURES:
            if signature.name == wanted:
                raise Unsupported(f"{signature.what}: not supported yet", where=image.name)
        known = ", ".join([RAW, *(name for name, _ in READERS), *(s.name for s in signatures.SIGNATURES)])
        raise Unsupported(f"image format {image_format!r} is not one we know ({known})", where=image.name)
    for _name, module in READERS:
        reader = importlib.import_module(module)
        if reader.detect(image):
            return reader.open(image, opener)
    found = signatures.identify(image)
    if found is not None:
        raise Unsupported(f"{found.what}: not supported yet", where=image.name)
    return image


def open_related_image(image: ByteSource, requested_name: str, opener: Opener, *, declared_format: str | None,
                       what: str) -> ByteSource:
    """The disk held by another image file that ``image`` names (a backing file, a
    parent): opened through ``opener``'s policy, its chain's depth bounded and loops
    refused; its format is the one ``image`` declares when we know that name (so that a
    raw backing file is never probed as something else), else detected by content."""
    chain = chained(opener, image)
    related, inner = chain.descend(image, requested_name, what)
    names = {RAW, *ALIASES, *(name for name, _ in READERS)}
    forced = declared_format.lower() if declared_format and declared_format.lower() in names else None
    return open_format(related, image_format=forced, opener=inner)
