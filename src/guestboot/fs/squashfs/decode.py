"""One squashfs block decoded with the volume's compressor (squashfs.rst, "Compression").

The codecs are the shared ones (guestboot.codec, guestboot.lzo). Every block declares how
much it may hold: 8 KiB for a metadata block, the block size for a data or fragment
block. The codec is asked for one byte more, so a stream that inflates past the declared
size (a decompression bomb) is told apart from one that fills it, and is CorruptImage.
"""

from __future__ import annotations

from ... import codec, lzo
from ...errors import CorruptImage, GuestbootError, LimitExceeded
from ...limits import LIMITS

# the superblock's compression id -> (name mksquashfs gives it, decoder)
CODECS = {
    1: ("gzip", codec.zlib),
    2: ("lzma", codec.lzma_alone),  # the legacy .lzma format, not xz
    3: ("lzo", lzo.decompress),
    4: ("xz", codec.xz),
    5: ("lz4", codec.lz4_block),
    6: ("zstd", codec.zstd),
}


def decompress(compression: int, data: bytes, limit: int, *, what: str, where: str, offset: int) -> bytes:
    """``data`` decoded: at most ``limit`` bytes (and at most LIMITS.max_decompressed_block)."""
    if limit > LIMITS.max_decompressed_block:
        raise LimitExceeded(f"{what}: {limit} bytes declared, more than {LIMITS.max_decompressed_block}"
                            " (max_decompressed_block)", where=where, offset=offset)
    name, decoder = CODECS[compression]
    try:
        out = decoder(data, limit + 1, what=what, offset=offset)
    except GuestbootError as exc:
        raise exc.located(where) from None
    if len(out) > limit:
        raise CorruptImage(f"{what}: {name} stream inflates past the {limit} bytes declared", where=where,
                           offset=offset)
    return out
