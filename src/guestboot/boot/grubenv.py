"""GRUB's environment block (grubenv), read-only, as grub-core/lib/envblk.c reads it.

Layout (envblk.c, GRUB_ENVBLK_SIGNATURE): the file starts with the line
``# GRUB Environment Block`` and a newline; then ``name=value`` lines; a line starting
with ``#`` is skipped (the block is padded to its size with ``#``). In a value a
backslash takes the next byte literally (so ``\\\\`` is a backslash and backslash-newline
a newline). GRUB's own quirks are kept: a name runs to the next ``=`` even across a
newline, and a malformed tail (no ``=``, no final newline) ends the iteration silently.
"""

from __future__ import annotations

from ..errors import ConfigError, LimitExceeded
from ..limits import LIMITS

SIGNATURE = b"# GRUB Environment Block\n"


def parse(data: bytes, *, where: str = "grubenv") -> list[tuple[str, str]]:
    """The (name, value) pairs in block order. ConfigError when the signature is missing
    (GRUB: "invalid environment block"), LimitExceeded when the block is too large."""
    if len(data) > LIMITS.max_env_block_bytes:
        raise LimitExceeded(f"{where}: {len(data)} bytes, more than {LIMITS.max_env_block_bytes} allowed")
    if not data.startswith(SIGNATURE):
        raise ConfigError(f"{where}: invalid environment block (no '# GRUB Environment Block' signature)", offset=0)
    out: list[tuple[str, str]] = []
    p, end = len(SIGNATURE), len(data)
    while p < end:
        if data[p] != 0x23:  # '#'
            eq = data.find(b"=", p)
            if eq < 0:
                break
            q = eq + 1
            while q < end and data[q] != 0x0A:
                q += 2 if data[q] == 0x5C else 1
            if q >= end:
                break
            value = bytearray()
            i = eq + 1
            while i < q:
                if data[i] == 0x5C:
                    i += 1
                value.append(data[i])
                i += 1
            name = data[p:eq].split(b"\0", 1)[0]
            out.append((_text(name), _text(bytes(value).split(b"\0", 1)[0])))
            p = q
        nl = data.find(b"\n", p)
        if nl < 0:
            break
        p = nl + 1
    return out


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")
