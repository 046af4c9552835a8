"""Byte sources: where the image's bytes come from (raw file or block device for now)."""

from .base import ByteSource, BytesSource, FileSource, Run, SliceSource, ZeroSource

__all__ = ["ByteSource", "BytesSource", "FileSource", "Run", "SliceSource", "ZeroSource"]
