"""A squashfs regular file as a ByteSource (squashfs.rst, "Regular files" and "Fragments").

A file is a run of data blocks stored one after another from ``start``, each as the size
word of its block list says (bit 24: stored uncompressed; 0: a sparse block of zeros),
then, unless the file has none, a tail end shorter than one block inside a fragment block.
Stored blocks map straight into the volume through ``runs`` (copy_file_range); compressed
ones are decoded one block at a time, each bounded by the block size, and the last two
kept (reading front to back decodes each block once).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

from ...errors import CorruptImage
from ...source import ByteSource, Run
from ..cache import LRU
from .decode import decompress
from .layout import BLOCK_SIZE_MASK, BLOCK_UNCOMPRESSED

if TYPE_CHECKING:
    from .filesystem import SquashFileSystem

_DECODED_KEPT = 2


class SquashFile(ByteSource):
    """``size`` bytes: ``blocks`` are (position in the volume, size word) of the full
    blocks (the last one may be short when there is no fragment); ``fragment`` is
    (fragment block position, size word, offset of the tail in it) or None."""

    __slots__ = ("fs", "size", "name", "block_size", "blocks", "fragment", "_decoded")

    def __init__(self, fs: SquashFileSystem, size: int, blocks: list[tuple[int, int]],
                 fragment: tuple[int, int, int] | None, name: str):
        self.fs = fs
        self.size = size
        self.name = name
        self.block_size = fs.block_size
        self.blocks = blocks
        self.fragment = fragment
        self._decoded: LRU[int, bytes] = LRU(_DECODED_KEPT)

    def __repr__(self) -> str:
        return f"SquashFile(name={self.name!r}, size={self.size}, blocks={len(self.blocks)})"

    def _piece_length(self, index: int) -> int:
        return min(self.block_size, self.size - index * self.block_size)

    def _block(self, index: int) -> bytes:
        """Block ``index`` of the file decoded (a data block or the fragment tail)."""
        data = self._decoded.get(index)
        if data is not None:
            return data
        length = self._piece_length(index)
        if index < len(self.blocks):
            pos, word = self.blocks[index]
            data = self.fs.data_block(pos, word, length, f"{self.name}: data block {index}")
        else:
            if self.fragment is None:
                raise CorruptImage(f"{self.name}: block {index} is neither in the block list nor a fragment",
                                   where=self.fs.source.name)
            pos, word, offset = self.fragment
            block = self.fs.fragment_block(pos, word)
            if offset + length > len(block):
                raise CorruptImage(f"{self.name}: tail of {length} bytes at {offset} runs past its fragment block"
                                   f" ({len(block)} bytes)", where=self.fs.source.name, offset=pos)
            data = block[offset : offset + length]
        self._decoded.put(index, data)
        return data

    def _pread(self, offset: int, length: int) -> bytes:
        bs = self.block_size
        parts = []
        pos = offset
        end = offset + length
        while pos < end:
            index, within = divmod(pos, bs)
            take = min(end - pos, bs - within)
            parts.append(self._block(index)[within : within + take])
            pos += take
        return b"".join(parts)

    def runs(self, offset: int = 0, length: int | None = None) -> Iterator[Run]:
        length = self._check_range(offset, length)
        bs = self.block_size
        pos = offset
        end = offset + length
        while pos < end:
            index, within = divmod(pos, bs)
            take = min(end - pos, bs - within)
            if index < len(self.blocks):
                where, word = self.blocks[index]
                if word == 0:  # sparse
                    yield Run(None, pos, take)
                    pos += take
                    continue
                if word & BLOCK_UNCOMPRESSED:  # stored: the bytes are in the volume as they are
                    if word & BLOCK_SIZE_MASK != self._piece_length(index):
                        raise CorruptImage(f"{self.name}: stored block {index} holds {word & BLOCK_SIZE_MASK}"
                                           f" bytes, not {self._piece_length(index)}",
                                           where=self.fs.source.name, offset=where)
                    yield from self.fs.source.runs(where + within, take)
                    pos += take
                    continue
            yield Run(None, pos, take, self._block(index)[within : within + take])
            pos += take


def decode_block(fs: SquashFileSystem, pos: int, word: int, length: int, what: str) -> bytes:
    """One data or fragment block: ``length`` bytes exactly (a stored block must hold them,
    a compressed one must decode to them)."""
    size = word & BLOCK_SIZE_MASK
    if word == 0:
        return bytes(length)
    raw = fs.source.pread(pos, size)
    if word & BLOCK_UNCOMPRESSED:
        data = raw
    else:
        data = decompress(fs.sb.compression, raw, length, what=what, where=fs.source.name, offset=pos)
    if len(data) != length:
        raise CorruptImage(f"{what}: holds {len(data)} bytes, not {length}", where=fs.source.name, offset=pos)
    return data
