"""Decompressors shared by the drivers, each bounded by the size the format declares.

zlib and lzma (xz and the legacy lzma-alone format) come from the standard library; lz4
blocks from the lz4 package; LZO from our own lzo.py; zstd from the standard library's
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


def zstd_exact(data: bytes, size: int, *, what: str, offset: int | None = None) -> bytes:
    """Exactly ``size`` bytes from the zstd frame in ``data`` (a qcow2 compressed
    cluster): fewer, or a frame that would give more, is CorruptImage."""
    module = _zstd_module()
    decompressor = module.ZstdDecompressor()
    try:
        out = decompressor.decompress(data, max_length=size)
        more = b"" if decompressor.eof or len(out) < size else decompressor.decompress(b"", max_length=1)
    except module.ZstdError as exc:
        raise CorruptImage(f"{what}: bad zstd data ({exc})", offset=offset) from None
    return _exactly(out, more, size, what, offset)


def deflate_exact(data: bytes, size: int, *, what: str, offset: int | None = None) -> bytes:
    """Exactly ``size`` bytes from the raw deflate stream (RFC 1951, no zlib header) in
    ``data`` (a qcow2 cluster of compression type zlib): fewer,
    or a stream that would give more, is CorruptImage. Bytes after the stream's end are
    allowed (the format stores whole sectors)."""
    return _inflate_exact(data, size, -15, what, offset)


def zlib_exact(data: bytes, size: int, *, what: str, offset: int | None = None) -> bytes:
    """As deflate_exact, for a zlib stream (RFC 1950 header and checksum: a VMDK grain)."""
    return _inflate_exact(data, size, 15, what, offset)


def _inflate_exact(data: bytes, size: int, wbits: int, what: str, offset: int | None) -> bytes:
    import zlib as _zlib

    decompressor = _zlib.decompressobj(wbits)
    try:
        out = decompressor.decompress(data, size)
        more = b""
        if len(out) == size and not decompressor.eof:
            more = decompressor.decompress(decompressor.unconsumed_tail, 1)
    except _zlib.error as exc:
        raise CorruptImage(f"{what}: bad deflate data ({exc})", offset=offset) from None
    return _exactly(out, more, size, what, offset)


def _exactly(out: bytes, more: bytes, size: int, what: str, offset: int | None) -> bytes:
    if more:
        raise CorruptImage(f"{what}: compressed data inflates past its {size} bytes", offset=offset)
    if len(out) != size:
        raise CorruptImage(f"{what}: compressed data gives {len(out)} bytes, not {size}", offset=offset)
    return out


def zlib(data: bytes, limit: int, *, what: str, offset: int | None = None) -> bytes:
    """At most ``limit`` bytes decompressed from the zlib stream in ``data``."""
    import zlib as _zlib

    decompressor = _zlib.decompressobj()
    try:
        return decompressor.decompress(data, limit)
    except _zlib.error as exc:
        raise CorruptImage(f"{what}: bad zlib data ({exc})", offset=offset) from None


def _lzma(data: bytes, limit: int, fmt: str, what: str, offset: int | None) -> bytes:
    import lzma as _lzma_module

    decompressor = _lzma_module.LZMADecompressor(getattr(_lzma_module, fmt))
    try:
        return decompressor.decompress(data, limit)
    except _lzma_module.LZMAError as exc:
        raise CorruptImage(f"{what}: bad {fmt[7:].lower()} data ({exc})", offset=offset) from None


def xz(data: bytes, limit: int, *, what: str, offset: int | None = None) -> bytes:
    """At most ``limit`` bytes decompressed from the xz stream in ``data``."""
    return _lzma(data, limit, "FORMAT_XZ", what, offset)


def lzma_alone(data: bytes, limit: int, *, what: str, offset: int | None = None) -> bytes:
    """At most ``limit`` bytes from a legacy .lzma ("lzma-alone") stream: what squashfs's
    "lzma" compressor writes."""
    return _lzma(data, limit, "FORMAT_ALONE", what, offset)


def lz4_block(data: bytes, limit: int, *, what: str, offset: int | None = None) -> bytes:
    """The raw LZ4 block in ``data`` (no frame, no size prefix), decoded by the lz4
    package's LZ4_decompress_safe into a buffer of ``limit`` bytes. A block that needs
    more room is CorruptImage, like any bad block: LZ4 reports both alike."""
    try:
        import lz4.block as _lz4
    except ImportError as exc:
        raise Unsupported("lz4 decompression needs the lz4 package") from exc
    if limit <= 0:
        raise CorruptImage(f"{what}: bad lz4 data (no room)", offset=offset)
    try:
        return _lz4.decompress(data, uncompressed_size=limit)
    except _lz4.LZ4BlockError as exc:
        raise CorruptImage(f"{what}: bad lz4 data or more than {limit} bytes ({exc})", offset=offset) from None
