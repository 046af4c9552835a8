"""Decompressors shared by the drivers, each bounded by the size the format declares.

zlib and lzma come from the standard library; zstd from the standard library's
compression.zstd on Python >= 3.14 and from the backports.zstd package before (the same
module, backported). Imports are lazy: a run that meets no compressed data loads none of
them. A stream that ends short of the declared size, or is not a valid stream, is
CorruptImage; a missing codec module is Unsupported naming it.
"""

from __future__ import annotations

import sys

from .errors import CorruptImage, Unsupported


def _zstd_module():
    try:
        if sys.version_info >= (3, 14):
            from compression import zstd
        else:
            from backports import zstd
    except ImportError as exc:  # installed without its dependency
        raise Unsupported("zstd decompression needs the backports.zstd package (Python < 3.14)") from exc
    return zstd


def zstd(data: bytes, size: int, *, what: str, offset: int | None = None) -> bytes:
    """Exactly ``size`` bytes decompressed from the zstd frame(s) in ``data``."""
    module = _zstd_module()
    decompressor = module.ZstdDecompressor()
    try:
        out = decompressor.decompress(data, max_length=size)
    except module.ZstdError as exc:
        raise CorruptImage(f"{what}: bad zstd data ({exc})", offset=offset) from None
    if len(out) < size:
        raise CorruptImage(f"{what}: zstd data ends after {len(out)} of {size} bytes", offset=offset)
    return out


def zlib(data: bytes, size: int, *, what: str, offset: int | None = None) -> bytes:
    """Exactly ``size`` bytes decompressed from the zlib stream in ``data``."""
    import zlib as _zlib

    decompressor = _zlib.decompressobj()
    try:
        out = decompressor.decompress(data, size)
    except _zlib.error as exc:
        raise CorruptImage(f"{what}: bad zlib data ({exc})", offset=offset) from None
    if len(out) < size:
        raise CorruptImage(f"{what}: zlib data ends after {len(out)} of {size} bytes", offset=offset)
    return out
