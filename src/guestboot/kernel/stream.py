"""Compressed kernels as streams: which codec by magic, and bounded streaming decoders.

Linux compresses a bzImage's payload (and Debian an arm64 Image, Xen its xen.gz) with one
of the codecs of the kernel's scripts/Makefile.lib: gzip, bzip2, lzma (the legacy
"lzma-alone" format), xz, lzo (the lzop file format), lz4 (the legacy frame format, ``lz4
-l``) and zstd. Each is recognised by its magic (the same bytes Linux's
lib/decompress.c matches) and decoded as a stream: input is read in pieces, output comes
out in pieces of at most ``CHUNK`` bytes, and the whole output is bounded by ``limit``
(LIMITS.max_kernel_decompressed, Xen's XC_DOM_DECOMPRESS_MAX) — LimitExceeded beyond it,
CorruptImage for a stream that is not valid or ends early. The size Linux appends after
the compressed data (size_append) is trailing input, ignored.

``Reader`` gives the parsers one way to read either plain bytes (a ByteSource) or such a
stream: ``pread`` forward, restarting the decoder (at most LIMITS.max_kernel_passes
times) when asked for bytes it has passed; only the chunk in hand is kept.
"""

from __future__ import annotations

import contextlib
import struct
from typing import Callable, Iterator

from ..errors import CorruptImage, LimitExceeded, Unsupported
from ..limits import LIMITS
from ..source import ByteSource

CHUNK = 1 << 20  # bytes of output produced (and input read) at a time

# name -> magic at the start of the compressed data (Linux's lib/decompress.c table;
# lz4's legacy frame magic 0x184C2102 little-endian; zstd's frame magic 0xFD2FB528).
MAGICS: tuple[tuple[str, bytes], ...] = (
    ("gzip", b"\x1f\x8b"),
    ("bzip2", b"BZh"),
    ("lzma", b"\x5d\x00\x00"),
    ("xz", b"\xfd7zXZ\x00"),
    ("lzo", b"\x89LZO\x00\r\n\x1a\n"),
    ("lz4", b"\x02\x21\x4c\x18"),
    ("zstd", b"\x28\xb5\x2f\xfd"),
)
CODECS = tuple(name for name, _ in MAGICS)


def codec_of(head: bytes) -> str | None:
    """The codec whose magic ``head`` starts with, or None."""
    for name, magic in MAGICS:
        if head.startswith(magic):
            return name
    return None


class Budget:
    """Bytes decompressed by several streams together (one run's kernel inspection):
    every stream's output is charged while a budget is ``active``."""

    def __init__(self, limit: int, name: str):
        self.limit, self.name, self.used = limit, name, 0

    def charge(self, count: int, what: str) -> None:
        self.used += count
        if self.used > self.limit:
            raise LimitExceeded(f"{what}: more than {self.limit} bytes decompressed in all by this run"
                                f" (limit {self.name})")


_ACTIVE: list[Budget] = []  # the budgets of the enclosing ``active`` blocks, innermost last


@contextlib.contextmanager
def active(budget: Budget) -> Iterator[Budget]:
    """Charge every stream decoded inside the ``with`` block to ``budget``."""
    _ACTIVE.append(budget)
    try:
        yield budget
    finally:
        _ACTIVE.remove(budget)


def _pieces(source: ByteSource, offset: int, length: int) -> Iterator[bytes]:
    end = offset + length
    while offset < end:
        count = min(CHUNK, end - offset)
        yield source.pread(offset, count)
        offset += count


def decode(source: ByteSource, offset: int, length: int, codec: str, *, what: str,
           limit: int | None = None) -> Iterator[bytes]:
    """The decompressed bytes of ``source[offset:offset+length]`` in ``codec``, in pieces;
    at most ``limit`` bytes in all (LimitExceeded names max_kernel_decompressed)."""
    limit = LIMITS.max_kernel_decompressed if limit is None else limit
    decoders: dict[str, Callable[..., Iterator[bytes]]] = {
        "gzip": _zlib_like, "bzip2": _lzma_like, "lzma": _lzma_like, "xz": _lzma_like,
        "zstd": _lzma_like, "lzo": _lzop, "lz4": _lz4_legacy,
    }
    if codec not in decoders:
        raise Unsupported(f"{what}: no decoder for {codec!r}")
    total = 0
    shared = _ACTIVE[-1] if _ACTIVE else None
    for piece in decoders[codec](_pieces(source, offset, length), codec, what, offset):
        total += len(piece)
        if shared is not None:
            shared.charge(len(piece), what)
        if total > limit:
            raise LimitExceeded(f"{what}: {codec} data decompresses to more than {limit} bytes"
                                " (limit max_kernel_decompressed)", offset=offset)
        if piece:
            yield piece


def _ends_early(what: str, codec: str, offset: int) -> CorruptImage:
    return CorruptImage(f"{what}: {codec} data ends early", offset=offset)


def _zlib_like(pieces: Iterator[bytes], codec: str, what: str, offset: int) -> Iterator[bytes]:
    import zlib

    decoder = zlib.decompressobj(31)  # wbits 16 + 15: a gzip member (RFC 1952)
    pending = b""
    while not decoder.eof:
        if not pending:
            pending = next(pieces, b"")
            if not pending:
                raise _ends_early(what, codec, offset)
        try:
            out = decoder.decompress(pending, CHUNK)
        except zlib.error as exc:
            raise CorruptImage(f"{what}: bad gzip data ({exc})", offset=offset) from None
        pending = decoder.unconsumed_tail
        yield out


def _decoder(codec: str, what: str) -> tuple[object, type]:
    if codec == "zstd":
        from ..codec import _zstd_module

        module = _zstd_module()
        return module.ZstdDecompressor(), module.ZstdError
    if codec == "bzip2":
        import bz2

        return bz2.BZ2Decompressor(), OSError
    import lzma

    fmt = lzma.FORMAT_XZ if codec == "xz" else lzma.FORMAT_ALONE
    return lzma.LZMADecompressor(fmt), lzma.LZMAError


def _lzma_like(pieces: Iterator[bytes], codec: str, what: str, offset: int) -> Iterator[bytes]:
    """bzip2, lzma, xz and zstd: decoders with ``decompress(data, max_length)``,
    ``needs_input`` and ``eof`` (bz2, lzma, compression.zstd)."""
    decoder, error = _decoder(codec, what)
    while not decoder.eof:  # type: ignore[attr-defined]
        data = b""
        if decoder.needs_input:  # type: ignore[attr-defined]
            data = next(pieces, b"")
            if not data:
                raise _ends_early(what, codec, offset)
        try:
            yield decoder.decompress(data, CHUNK)  # type: ignore[attr-defined]
        except (error, EOFError, ValueError) as exc:
            raise CorruptImage(f"{what}: bad {codec} data ({exc})", offset=offset) from None


class _Input:
    """Exact reads from a sequence of pieces (the block formats below need them). The
    pieces are kept in a buffer read from ``at``; consumed bytes are dropped only when
    more is appended, so a small read never copies the rest of the buffer."""

    def __init__(self, pieces: Iterator[bytes], what: str, codec: str, offset: int):
        self.pieces, self.what, self.codec, self.offset = pieces, what, codec, offset
        self.buf = b""
        self.at = 0  # read position in buf
        self.pos = 0  # bytes consumed so far

    def available(self, count: int) -> bool:
        while len(self.buf) - self.at < count:
            more = next(self.pieces, b"")
            if not more:
                return False
            self.buf = self.buf[self.at :] + more
            self.at = 0
        return True

    def take(self, count: int) -> bytes:
        if not self.available(count):
            raise _ends_early(self.what, self.codec, self.offset + self.pos)
        out = self.buf[self.at : self.at + count]
        self.at += count
        self.pos += count
        return out


# lzop file format as Linux's lib/decompress_unlzo.c reads it: magic, a header whose
# fields depend on its version and flags, then blocks of (uncompressed size, compressed
# size, checksums the flags ask for, data); an uncompressed size of 0 ends the stream.
_LZOP_BLOCK_MAX = 256 * 1024  # Linux's LZO_BLOCK_SIZE: larger blocks are refused
_LZOP_F_ADLER32_D, _LZOP_F_ADLER32_C = 0x1, 0x2
_LZOP_F_H_FILTER = 0x800
_LZOP_F_CRC32_D, _LZOP_F_CRC32_C = 0x100, 0x200
_U16BE, _U32BE = struct.Struct(">H"), struct.Struct(">I")


def _lzop(pieces: Iterator[bytes], codec: str, what: str, offset: int) -> Iterator[bytes]:
    from .. import lzo

    src = _Input(pieces, what, codec, offset)
    src.take(9)  # magic (checked by codec_of)
    version = _U16BE.unpack(src.take(2))[0]
    src.take(2)  # library version
    if version >= 0x0940:
        src.take(2)  # version needed to extract
    src.take(1)  # method
    if version >= 0x0940:
        src.take(1)  # level
    flags = _U32BE.unpack(src.take(4))[0]
    if flags & _LZOP_F_H_FILTER:
        raise CorruptImage(f"{what}: lzop header with a filter (Linux refuses it)", offset=offset)
    src.take(4 + 4 + (4 if version >= 0x0940 else 0))  # mode, mtime (low, high)
    src.take(src.take(1)[0])  # file name
    src.take(4)  # header checksum
    while True:
        at = offset + src.pos
        dst_len = _U32BE.unpack(src.take(4))[0]
        if dst_len == 0:
            return
        if dst_len > _LZOP_BLOCK_MAX:
            raise CorruptImage(f"{what}: lzop block of {dst_len} bytes (more than {_LZOP_BLOCK_MAX})", offset=at)
        src_len = _U32BE.unpack(src.take(4))[0]
        if src_len == 0 or src_len > dst_len:
            raise CorruptImage(f"{what}: lzop block of {src_len} compressed bytes for {dst_len}", offset=at)
        src.take(4 * bool(flags & _LZOP_F_ADLER32_D) + 4 * bool(flags & _LZOP_F_CRC32_D))
        if src_len < dst_len:
            src.take(4 * bool(flags & _LZOP_F_ADLER32_C) + 4 * bool(flags & _LZOP_F_CRC32_C))
        data = src.take(src_len)
        if src_len == dst_len:
            yield data
            continue
        out = lzo.decompress(data, dst_len, what=what, offset=at)
        if len(out) != dst_len:
            raise CorruptImage(f"{what}: lzop block gave {len(out)} bytes, not {dst_len}", offset=at)
        yield out


# lz4 legacy frames (lz4's doc/lz4_Frame_format.md, "Legacy frame"): the magic, then
# blocks of a 32-bit little-endian compressed size and the data, each decoding to at most
# 8 MiB; another magic may start a new frame (Linux's lib/decompress_unlz4.c skips it).
# What is left after the last block is Linux's appended size: fewer than 5 bytes.
_LZ4_MAGIC = 0x184C2102
_LZ4_BLOCK_MAX = 8 << 20
_U32LE = struct.Struct("<I")


def _lz4_legacy(pieces: Iterator[bytes], codec: str, what: str, offset: int) -> Iterator[bytes]:
    from ..codec import lz4_block

    src = _Input(pieces, what, codec, offset)
    src.take(4)
    while src.available(5):
        at = offset + src.pos
        size = _U32LE.unpack(src.take(4))[0]
        if size == _LZ4_MAGIC:
            continue
        if size == 0 or size > _LZ4_BLOCK_MAX + _LZ4_BLOCK_MAX // 255 + 16:  # LZ4_compressBound
            raise CorruptImage(f"{what}: lz4 block of {size} compressed bytes", offset=at)
        if not src.available(size):
            raise _ends_early(what, codec, at)
        yield lz4_block(src.take(size), _LZ4_BLOCK_MAX, what=what, offset=at)


class Reader:
    """Random reads over a kernel's bytes: plain (a ByteSource) or decompressed on the fly.

    ``pread(offset, length)`` returns at most ``length`` bytes (fewer at the end of the
    data). A decompressed stream is read forward; a read before the chunk in hand starts
    the decoder again, at most LIMITS.max_kernel_passes times in all (LimitExceeded).
    ``size`` is known for plain bytes, and for a stream once its end was reached."""

    def __init__(self, source: ByteSource, *, codec: str | None = None, offset: int = 0,
                 length: int | None = None, what: str = "kernel"):
        self.source, self.codec, self.what = source, codec, what
        self.offset = offset
        self.length = source.size - offset if length is None else length
        self.size: int | None = self.length if codec is None else None
        self.passes = 0
        self._stream: Iterator[bytes] | None = None
        self._chunk = b""
        self._chunk_at = 0  # stream offset of self._chunk

    def _restart(self) -> None:
        if self.passes >= LIMITS.max_kernel_passes:
            raise LimitExceeded(f"{self.what}: decompressed {self.passes} times already"
                                " (limit max_kernel_passes)")
        self.passes += 1
        assert self.codec is not None
        self._stream = decode(self.source, self.offset, self.length, self.codec, what=self.what)
        self._chunk, self._chunk_at = b"", 0

    def _next_chunk(self) -> bool:
        assert self._stream is not None
        piece = next(self._stream, None)
        if piece is None:
            self.size = self._chunk_at + len(self._chunk)
            return False
        self._chunk_at += len(self._chunk)
        self._chunk = piece
        return True

    def pread(self, offset: int, length: int) -> bytes:
        if self.codec is None:
            length = max(0, min(length, self.length - offset))
            return self.source.pread(self.offset + offset, length) if length else b""
        if self._stream is None or offset < self._chunk_at:
            self._restart()
        parts: list[bytes] = []
        want = length
        while want > 0:
            end = self._chunk_at + len(self._chunk)
            if offset < end:
                start = max(0, offset - self._chunk_at)
                part = self._chunk[start : start + want]
                parts.append(part)
                want -= len(part)
                offset += len(part)
                continue
            if not self._next_chunk():
                break
        return b"".join(parts)

    def position(self) -> int:
        """The first offset a read can start at without starting the decoder again."""
        return self._chunk_at if self.codec is not None else 0

    def find(self, needle: bytes, start: int = 0, end: int | None = None) -> int:
        """The first offset >= ``start`` (and before ``end``) where ``needle`` begins, or -1."""
        stop = self.size if end is None else end
        at = start
        carry = b""
        while stop is None or at < stop:
            count = CHUNK if stop is None else min(CHUNK, stop - at)
            data = self.pread(at, count)
            if not data:
                return -1
            window = carry + data
            found = window.find(needle)
            if found >= 0 and (end is None or at - len(carry) + found + len(needle) <= end):
                return at - len(carry) + found
            carry = window[-(len(needle) - 1):] if len(needle) > 1 else b""
            at += len(data)
        return -1

    def stream_to(self, write: Callable[[bytes], object]) -> int:
        """Every byte, in order, to ``write`` (one more pass for a stream); returns the size."""
        if self.codec is None:
            total = 0
            for piece in _pieces(self.source, self.offset, self.length):
                write(piece)
                total += len(piece)
            return total
        self._restart()
        assert self._stream is not None
        total = 0
        for piece in self._stream:
            write(piece)
            total += len(piece)
        self._stream = None
        return total
