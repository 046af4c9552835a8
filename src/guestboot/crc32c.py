"""CRC-32C (Castagnoli, reflected polynomial 0x82F63B78).

The standard library has only the IEEE CRC-32 (zlib.crc32); ext4's metadata_csum, XFS v5,
Btrfs and other on-disk formats use CRC-32C. ``update`` is the raw register step the way
ext4 uses it (no final inversion; the caller chooses the seed); ``crc32c`` is the usual
checksum (seed ~0, final inversion).

Two implementations behind one interface, chosen once at import:

- the ``crc32c`` package (PyPI "crc32c", ICRAR, LGPL-2.1-or-later like guestboot, wheels
  for the common platforms, SSE4.2/ARMv8 instructions with a C fallback) when it is
  installed: about 1 GB/s, so verifying every XFS or Btrfs metadata block costs nothing;
- otherwise a pure-Python slicing-by-8 loop (eight tables, one step per eight bytes), so
  guestboot still installs and runs with no compiler: about 5x the old byte-at-a-time loop.

``IMPLEMENTATION`` names the one in use ("crc32c package" or "pure python").
"""

from __future__ import annotations

import os
import struct

_POLY = 0x82F63B78
_MASK = 0xFFFFFFFF


def _make_tables() -> tuple[tuple[int, ...], ...]:
    first = []
    for byte in range(256):
        crc = byte
        for _bit in range(8):
            crc = (crc >> 1) ^ _POLY if crc & 1 else crc >> 1
        first.append(crc)
    tables = [first]
    for _k in range(7):  # table k: the register after byte b and k zero bytes
        prev = tables[-1]
        tables.append([(prev[b] >> 8) ^ first[prev[b] & 0xFF] for b in range(256)])
    return tuple(tuple(t) for t in tables)


_TABLES: tuple[tuple[int, ...], ...] = ()  # made on first use (start-up stays cheap)


def update_python(crc: int, data: bytes | bytearray | memoryview) -> int:
    """``update`` in pure Python (slicing-by-8); always available, used by the tests as the
    reference for the accelerated path."""
    global _TABLES
    if not _TABLES:
        _TABLES = _make_tables()
    data = bytes(data)
    t0, t1, t2, t3, t4, t5, t6, t7 = _TABLES
    n = len(data)
    whole = n - n % 8
    if whole:
        # one 64-bit little-endian word per step: the low four bytes meet the register
        for w in struct.unpack_from(f"<{whole // 8}Q", data):
            lo = (w ^ crc) & _MASK
            hi = w >> 32
            crc = (
                t7[lo & 0xFF] ^ t6[(lo >> 8) & 0xFF] ^ t5[(lo >> 16) & 0xFF] ^ t4[lo >> 24]
                ^ t3[hi & 0xFF] ^ t2[(hi >> 8) & 0xFF] ^ t1[(hi >> 16) & 0xFF] ^ t0[hi >> 24]
            )
    for byte in data[whole:]:
        crc = t0[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc


def _load_accelerator():
    """The crc32c package's C function, or None when the package is not installed.

    The package's ``__init__`` imports importlib.metadata for its version string, which
    costs ~25 ms of start-up on every run; its extension module alone costs nothing. So
    the package is found without running it, and only the extension is loaded."""
    import importlib.machinery
    import importlib.util

    try:
        spec = importlib.util.find_spec("crc32c")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for directory in spec.submodule_search_locations:
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            path = os.path.join(directory, "_crc32c" + suffix)
            if os.path.isfile(path):
                loader = importlib.machinery.ExtensionFileLoader("crc32c._crc32c", path)
                module_spec = importlib.util.spec_from_file_location("crc32c._crc32c", path, loader=loader)
                module = importlib.util.module_from_spec(module_spec)
                loader.exec_module(module)
                return module.crc32c
    return None


try:  # optional accelerator (see the docstring); absent means the pure-Python path
    _accelerated = _load_accelerator()
except (ImportError, OSError):  # pragma: no cover - a broken installation reads as absent
    _accelerated = None


if _accelerated is not None:
    IMPLEMENTATION = "crc32c package"

    def update(crc: int, data: bytes | bytearray | memoryview) -> int:
        """The CRC register after feeding ``data`` to a register holding ``crc``."""
        # the package takes and returns the finalised (inverted) value
        return _accelerated(data, value=crc ^ _MASK) ^ _MASK

else:  # pragma: no cover - depends on the installation
    IMPLEMENTATION = "pure python"
    update = update_python


def crc32c(data: bytes | bytearray | memoryview) -> int:
    """The standard CRC-32C of ``data`` (check value of b"123456789" is 0xE3069283)."""
    return update(_MASK, data) ^ _MASK
