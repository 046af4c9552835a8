"""Decompressors shared by the drivers, each bounded by the size the format declares.

zlib and lzma come from the standard library; zstd from the standard library's
compression.zstd on Python >= 3.14 and from the backports.zstd package before (the same
module, backported). Imports are lazy: a run that meets no compressed data loads none of
them. Each returns at most ``limit`` bytes (what the format declares); a stream that is
not valid is CorruptImage; a missing codec module is Unsupported naming it. A stream that
ends early returns what it holds: formats differ on what that means (btrfs fills the rest
of an extent with zeros; others call it corrupt), so the caller decides.
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


def zstd(data: bytes, limit: int, *, what: str, offset: int | None = None) -> bytes:
    """At most ``limit`` bytes decompressed from the zstd frame in ``data``."""
    module = _zstd_module()
    decompressor = module.ZstdDecompressor()
    try:
        return decompressor.decompress(data, max_length=limit)
    except module.ZstdError as exc:
        raise CorruptImage(f"{what}: bad zstd data ({exc})", offset=offset) from None


def zlib(data: bytes, limit: int, *, what: str, offset: int | None = None) -> bytes:
    """At most ``limit`` bytes decompressed from the zlib stream in ``data``."""
    import zlib as _zlib

    decompressor = _zlib.decompressobj()
    try:
        return decompressor.decompress(data, limit)
    except _zlib.error as exc:
        raise CorruptImage(f"{what}: bad zlib data ({exc})", offset=offset) from None
