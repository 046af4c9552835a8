"""LZO1X decompression, bounded and pure Python.

Btrfs compresses with the kernel's LZO1X-1; no LZO module ships with Python, and the
PyPI bindings are thin wrappers of the C library (the code this project exists to keep
away from hostile bytes). The decoder is small: it follows the instruction set of the
LZO1X stream format (literal runs; M1-M4 back-references with 2-, 3- and 4-byte codes;
the M4 code with distance 0x4000 as end of stream) and checks every read against the
input and every copy against the output bound, so a hostile stream yields CorruptImage,
never more than ``limit`` bytes.
"""

from __future__ import annotations

from .errors import CorruptImage

_M2_MAX_OFFSET = 0x0800
_MAX_ZERO_RUN = 1 << 16  # zero bytes in one length extension (far beyond any real stream)


class _Bad(Exception):
    pass


def decompress(src: bytes, limit: int, *, what: str = "lzo data", offset: int | None = None) -> bytes:
    """The data of one LZO1X stream, at most ``limit`` bytes."""
    try:
        return _decode(src, limit)
    except _Bad as exc:
        raise CorruptImage(f"{what}: bad LZO stream ({exc})", offset=offset) from None
    except IndexError:
        raise CorruptImage(f"{what}: LZO stream ends early", offset=offset) from None


def _extend(src: bytes, ip: int, base: int) -> tuple[int, int]:
    """A run length coded as zero bytes (255 each) and a final byte, plus ``base``."""
    start = ip
    while src[ip] == 0:
        ip += 1
        if ip - start > _MAX_ZERO_RUN:
            raise _Bad("length run too long")
    return base + (ip - start) * 255 + src[ip], ip + 1


def _decode(src: bytes, limit: int) -> bytes:
    out = bytearray()
    n = len(src)
    ip = 0

    def literals(ip: int, count: int) -> int:
        if ip + count > n:
            raise _Bad("literal run past the end of the input")
        if len(out) + count > limit:
            raise _Bad(f"output beyond {limit} bytes")
        out.extend(src[ip : ip + count])
        return ip + count

    def copy(distance: int, count: int) -> None:
        size = len(out)
        if distance <= 0 or distance > size:
            raise _Bad(f"back-reference {distance} before the start of the output")
        if size + count > limit:
            raise _Bad(f"output beyond {limit} bytes")
        start = size - distance
        if distance >= count:
            out.extend(out[start : start + count])
        else:  # overlapping: the last ``distance`` bytes repeat
            pattern = bytes(out[start:])
            out.extend((pattern * (count // distance + 1))[:count])

    state = 0
    t = src[0]
    if t > 17:
        ip = literals(1, t - 17)
        state = 4 if t - 17 >= 4 else t - 17
    while True:
        if ip >= n:
            raise _Bad("no end marker")
        t = src[ip]
        ip += 1
        if t < 16:
            if state == 0:
                if t == 0:
                    t, ip = _extend(src, ip, 15)
                ip = literals(ip, t + 3)
                state = 4
                continue
            if state != 4:
                copy(1 + (t >> 2) + (src[ip] << 2), 2)
            else:
                copy(1 + _M2_MAX_OFFSET + (t >> 2) + (src[ip] << 2), 3)
            ip += 1
            state = t & 3
        elif t >= 64:
            copy(1 + ((t >> 2) & 7) + (src[ip] << 3), (t >> 5) + 1)
            ip += 1
            state = t & 3
        elif t >= 32:
            count = t & 31
            if count == 0:
                count, ip = _extend(src, ip, 31)
            word = src[ip] | (src[ip + 1] << 8)
            ip += 2
            copy(1 + (word >> 2), count + 2)
            state = word & 3
        else:
            count = t & 7
            if count == 0:
                count, ip = _extend(src, ip, 7)
            word = src[ip] | (src[ip + 1] << 8)
            ip += 2
            distance = ((t & 8) << 11) + (word >> 2)
            if distance == 0:  # end of stream
                if count + 2 != 3:
                    raise _Bad("malformed end marker")
                if ip != n:
                    raise _Bad(f"{n - ip} bytes after the end marker")
                return bytes(out)
            copy(distance + 0x4000, count + 2)
            state = word & 3
        if state:
            ip = literals(ip, state)
