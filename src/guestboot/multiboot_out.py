"""Writing a multiboot entry's files as GRUB loads them into memory.

GRUB opens a multiboot kernel and its modules through its transparent decompressors
(gzio, xzio, lzopio: gzip, xz and lzop files; loader/multiboot.c opens modules without
them only for ``--nounzip``), so the kernel the hypervisor boots and the modules it is
given are the decompressed bytes. A hypervisor's direct boot (QEMU's multiboot loader)
does not decompress: guestboot writes what GRUB would have put in memory. Decoding is
kernel/stream.py's, bounded by LIMITS.max_kernel_decompressed and the output caps.
"""

from __future__ import annotations

import os

from .errors import LimitExceeded, OutputError
from .extract import OutputBudget, copy_sources
from .limits import LIMITS
from .source import ByteSource

GRUB_DECOMPRESSES = ("gzip", "xz", "lzo")  # gzio, xzio, lzopio


def codec_grub_opens(source: ByteSource) -> str | None:
    from .kernel.stream import codec_of

    codec = codec_of(source.pread(0, min(16, source.size)))
    return codec if codec in GRUB_DECOMPRESSES else None


def write_as_loaded(source: ByteSource, fd: int, *, name: str, budget: OutputBudget, unzip: bool = True) -> int:
    """``source`` into ``fd`` as GRUB loads it: decompressed when GRUB would; returns bytes written."""
    codec = codec_grub_opens(source) if unzip else None
    if codec is None:
        return copy_sources([source], fd, name=name, budget=budget)
    from .kernel.stream import Reader

    written = 0

    def write(piece: bytes) -> None:
        nonlocal written
        if written + len(piece) > LIMITS.max_output_file:
            raise LimitExceeded(f"{name}: more than {LIMITS.max_output_file} bytes to write (limit max_output_file)")
        budget.reserve(len(piece), name)
        view = memoryview(piece)
        try:
            while view:
                view = view[os.write(fd, view):]
        except OSError as err:
            raise OutputError(f"cannot write {name}: {err.strerror}") from None
        written += len(piece)

    Reader(source, codec=codec, what=source.name).stream_to(write)
    return written
