"""CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), table driven, pure Python.

The standard library has only the IEEE CRC-32 (zlib.crc32); ext4's metadata_csum and
other on-disk formats use CRC-32C. ``update`` is the raw register step the way ext4 uses
it (no final inversion; the caller chooses the seed); ``crc32c`` is the usual checksum
(seed ~0, final inversion). Meant for small structures: it costs a Python step per byte.
"""

from __future__ import annotations

_POLY = 0x82F63B78


def _make_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _bit in range(8):
            crc = (crc >> 1) ^ _POLY if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_TABLE = _make_table()


def update(crc: int, data: bytes | bytearray | memoryview) -> int:
    """The CRC register after feeding ``data`` to a register holding ``crc``."""
    table = _TABLE
    for byte in bytes(data):
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc


def crc32c(data: bytes | bytearray | memoryview) -> int:
    """The standard CRC-32C of ``data`` (check value of b"123456789" is 0xE3069283)."""
    return update(0xFFFFFFFF, data) ^ 0xFFFFFFFF
