"""qcow2 images, versions 2 and 3 (QEMU's docs/interop/qcow2.txt).

Read: the two-level cluster map (L1 and L2 tables), zero clusters, compressed clusters
(zlib's raw deflate, or zstd with compression_type 1), extended L2 entries (32
subclusters per cluster), a backing file and an external data file (both through the
opener and its policy). Refcounts, snapshots and bitmaps play no part in reading the
active disk and are ignored. Encrypted images are Unsupported. Plain clusters stay runs
of the image's descriptor (zero-copy); compressed clusters are decoded, bounded by the
cluster size, and cached.
"""

from __future__ import annotations

import struct
import sys
from array import array
from typing import Iterator, NamedTuple

from ..errors import CorruptImage, LimitExceeded, Unsupported
from ..limits import LIMITS
from .base import ByteSource
from .mapped import ImageCache, MappedSource, Piece, Table, below, check_inside, words_of
from .opener import Opener

MAGIC = b"QFI\xfb"
# qcow2.txt "Header": magic, version, backing_file_offset, backing_file_size, cluster_bits,
# size, crypt_method, l1_size, l1_table_offset, refcount_table_offset,
# refcount_table_clusters, nb_snapshots, snapshots_offset (version 2: 72 bytes)
HEADER = struct.Struct(">4sIQIIQIIQQIIQ")
# version 3 and later, from byte 72: incompatible_features, compatible_features,
# autoclear_features, refcount_order, header_length
HEADER_V3 = struct.Struct(">QQQII")
V3_LENGTH = HEADER.size + HEADER_V3.size  # 104; compression_type is byte 104 when present
EXTENSION = struct.Struct(">II")  # "Header extensions": type, length; data padded to 8

EXT_END = 0x00000000
EXT_BACKING_FORMAT = 0xE2792ACA
EXT_DATA_FILE = 0x44415441

INCOMPAT_DIRTY = 1 << 0
INCOMPAT_CORRUPT = 1 << 1
INCOMPAT_DATA_FILE = 1 << 2
INCOMPAT_COMPRESSION = 1 << 3
INCOMPAT_EXTENDED_L2 = 1 << 4
INCOMPAT_KNOWN = (1 << 5) - 1
AUTOCLEAR_RAW_DATA = 1 << 1

COMPRESSION_TYPES = {0: "zlib", 1: "zstd"}
CRYPT_METHODS = {1: "AES", 2: "LUKS"}
MIN_CLUSTER_BITS, MAX_CLUSTER_BITS = 9, 21  # qcow2.txt: at least 9; QEMU opens at most 2 MiB
MAX_BACKING_NAME = 1023

# "Cluster mapping": L1 and L2 entries
OFFSET_MASK = 0x00FFFFFFFFFFFE00  # bits 9-55: a host offset, cluster-aligned
L2_COMPRESSED = 1 << 62
L2_COPIED = 1 << 63
L2_ZERO = 1 << 0  # standard clusters, version 3 without extended L2 entries
SUBCLUSTERS = 32
SECTOR = 512

_SWAP = sys.byteorder == "little"  # the tables are big-endian


class Header(NamedTuple):
    version: int
    backing_file_offset: int
    backing_file_size: int
    cluster_bits: int
    size: int
    crypt_method: int
    l1_size: int
    l1_table_offset: int
    incompatible: int
    autoclear: int
    header_length: int
    compression_type: int

    @classmethod
    def read(cls, image: ByteSource) -> "Header":
        if image.size < HEADER.size:
            raise CorruptImage("qcow2 header: the file is shorter than a header", where=image.name, offset=0)
        (magic, version, backing_offset, backing_size, cluster_bits, size, crypt, l1_size, l1_offset,
         _refcount_offset, _refcount_clusters, _snapshots, _snapshots_offset) = HEADER.unpack(image.pread(0, HEADER.size))
        if magic != MAGIC:
            raise CorruptImage("qcow2 header: no QFI\\xfb magic", where=image.name, offset=0)
        if version not in (2, 3):
            raise Unsupported(f"qcow2 image: version {version} (2 and 3 are read)", where=image.name)
        if not MIN_CLUSTER_BITS <= cluster_bits <= MAX_CLUSTER_BITS:  # before 1 << cluster_bits below
            raise CorruptImage(f"qcow2 header: cluster_bits {cluster_bits} (9 to 21)", where=image.name, offset=20)
        incompatible = autoclear = 0
        header_length = HEADER.size
        compression = 0
        if version >= 3:
            if image.size < V3_LENGTH:
                raise CorruptImage("qcow2 v3 header: the file ends inside it", where=image.name, offset=HEADER.size)
            incompatible, _compatible, autoclear, _refcount_order, header_length = HEADER_V3.unpack(
                image.pread(HEADER.size, HEADER_V3.size))
            if header_length < V3_LENGTH or header_length % 8 or header_length > (1 << cluster_bits):
                raise CorruptImage(f"qcow2 v3 header: header_length {header_length} (at least 104, a multiple"
                                   " of 8, inside the first cluster)", where=image.name, offset=100)
            if header_length > V3_LENGTH:
                compression = image.pread(V3_LENGTH, 1)[0]
        return cls(version, backing_offset, backing_size, cluster_bits, size, crypt, l1_size, l1_offset,
                   incompatible, autoclear, header_length, compression)


def detect(image: ByteSource) -> bool:
    return image.size >= 4 and image.pread(0, 4) == MAGIC


def _extensions(image: ByteSource, header: Header, cluster_size: int) -> dict[int, bytes]:
    """The header extensions after the header, up to the end of the first cluster."""
    found: dict[int, bytes] = {}
    at = header.header_length
    end = min(cluster_size, image.size)
    while at + EXTENSION.size <= end:  # each step moves on by 8 bytes at least
        kind, length = EXTENSION.unpack(image.pread(at, EXTENSION.size))
        if kind == EXT_END:
            break
        if at + EXTENSION.size + length > end:
            raise CorruptImage(f"qcow2 header extension {kind:#010x}: {length} bytes run past the first cluster",
                               where=image.name, offset=at)
        found.setdefault(kind, image.pread(at + EXTENSION.size, length))
        at += EXTENSION.size + (length + 7) // 8 * 8
    return found


def _text(raw: bytes, what: str, image: ByteSource, at: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise CorruptImage(f"qcow2 {what} is not UTF-8 text", where=image.name, offset=at) from None


def open(image: ByteSource, opener: Opener) -> ByteSource:
    from .formats import open_related_image

    header = Header.read(image)
    where = image.name
    if header.crypt_method:
        method = CRYPT_METHODS.get(header.crypt_method, f"method {header.crypt_method}")
        raise Unsupported(f"qcow2 image: encrypted ({method}); encrypted images are not read", where=where)
    if not MIN_CLUSTER_BITS <= header.cluster_bits <= MAX_CLUSTER_BITS:
        raise CorruptImage(f"qcow2 header: cluster_bits {header.cluster_bits} (9 to 21)", where=where, offset=20)
    unknown = header.incompatible & ~INCOMPAT_KNOWN
    if unknown:
        raise Unsupported(f"qcow2 image: incompatible features {unknown:#x} we do not know", where=where)
    cluster_size = 1 << header.cluster_bits
    extended = bool(header.incompatible & INCOMPAT_EXTENDED_L2)
    if extended and header.cluster_bits < 14:
        raise CorruptImage("qcow2 header: extended L2 entries need clusters of 16 KiB or more", where=where, offset=20)
    if header.incompatible & INCOMPAT_COMPRESSION:
        if header.header_length <= V3_LENGTH or header.compression_type == 0:
            raise CorruptImage("qcow2 header: compression type bit set without a compression type", where=where,
                               offset=V3_LENGTH)
    elif header.compression_type != 0:
        raise CorruptImage("qcow2 header: a compression type without its incompatible bit", where=where,
                           offset=V3_LENGTH)
    if header.compression_type not in COMPRESSION_TYPES:
        raise Unsupported(f"qcow2 image: compression type {header.compression_type} (zlib and zstd are read)",
                          where=where)
    extensions = _extensions(image, header, cluster_size)

    data_file: ByteSource = image
    external = bool(header.incompatible & INCOMPAT_DATA_FILE)
    if external:
        if EXT_DATA_FILE not in extensions:
            raise Unsupported("qcow2 image: an external data file without its name in the image", where=where)
        name = _text(extensions[EXT_DATA_FILE], "external data file name", image, header.header_length)
        data_file = opener.open_related(name, where, image)

    backing: ByteSource | None = None
    if header.backing_file_offset:
        if header.backing_file_size > MAX_BACKING_NAME or header.backing_file_size == 0:
            raise CorruptImage(f"qcow2 header: backing file name of {header.backing_file_size} bytes (1 to 1023)",
                               where=where, offset=16)
        if header.backing_file_offset + header.backing_file_size > min(cluster_size, image.size):
            raise CorruptImage("qcow2 header: backing file name past the first cluster", where=where,
                               offset=header.backing_file_offset)
        name = _text(image.pread(header.backing_file_offset, header.backing_file_size), "backing file name", image,
                     header.backing_file_offset)
        declared = extensions.get(EXT_BACKING_FORMAT)
        fmt = _text(declared, "backing file format", image, header.header_length) if declared else None
        backing = open_related_image(image, name, opener, declared_format=fmt, what="qcow2 backing file")
    return Qcow2Disk(image, header, data_file, backing, external)


class Qcow2Disk(MappedSource):
    """The disk a qcow2 image holds."""

    def __init__(self, image: ByteSource, header: Header, data_file: ByteSource, backing: ByteSource | None,
                 external: bool):
        self.image = image
        self.name = image.name
        self.size = header.size
        self.data_file = data_file
        self.backing = backing
        self.external = external
        self.cluster_bits = header.cluster_bits
        self.cluster_size = 1 << header.cluster_bits
        self.extended = bool(header.incompatible & INCOMPAT_EXTENDED_L2)
        self.entry_words = 2 if self.extended else 1  # 64-bit words per L2 entry
        self.l2_entries = self.cluster_size // (8 * self.entry_words)
        self.zero_flag = header.version >= 3 and not self.extended
        self.compression = COMPRESSION_TYPES[header.compression_type]
        self.compressed_bits = 62 - (header.cluster_bits - 8)  # qcow2.txt: x, where the sector count starts
        self.cache = ImageCache()
        self.l1 = self._l1(header)

    def __repr__(self) -> str:
        return f"Qcow2Disk(name={self.name!r}, size={self.size}, cluster_size={self.cluster_size})"

    def _l1(self, header: Header) -> Table:
        span = self.cluster_size * self.l2_entries  # guest bytes one L2 table maps
        needed = -(-self.size // span)
        if header.size > (1 << 62):
            raise CorruptImage(f"qcow2 header: a disk of {header.size} bytes", where=self.name, offset=24)
        if needed * 8 > LIMITS.max_image_table:
            raise LimitExceeded(f"qcow2 L1 table of {needed * 8} bytes (max_image_table)", where=self.name)
        if header.l1_size * 8 > LIMITS.max_image_table:  # QEMU refuses these too ("Active L1 table too large")
            raise LimitExceeded(f"qcow2 header: L1 table of {header.l1_size} entries declared, more than"
                                f" {LIMITS.max_image_table} bytes (max_image_table)", where=self.name, offset=36)
        if header.l1_size < needed:
            raise CorruptImage(f"qcow2 header: L1 table of {header.l1_size} entries for a disk that needs {needed}",
                               where=self.name, offset=36)
        at = header.l1_table_offset
        if at % self.cluster_size or at + needed * 8 > self.image.size:
            raise CorruptImage(f"qcow2 L1 table at {at} ({needed} entries): unaligned or past the end of the file"
                               f" ({self.image.size} bytes)", where=self.name, offset=40)
        return Table(self.image, at, needed, 8, True, self.cache)

    def _l2(self, index: int) -> array | None:
        entry = self.l1[index]
        at = entry & OFFSET_MASK
        if not at:
            return None
        if at % self.cluster_size or at + self.cluster_size > self.image.size:
            raise CorruptImage(f"qcow2 L1 entry {index}: L2 table at {at}, unaligned or past the end of the file"
                               f" ({self.image.size} bytes)", where=self.name, offset=at)
        return self.cache.get(("l2", at), lambda: (words_of(self.image.pread(at, self.cluster_size), 8, _SWAP),
                                                   self.cluster_size))

    def _pieces(self, offset: int, length: int) -> Iterator[Piece]:
        end = offset + length
        cluster_size = self.cluster_size
        while offset < end:
            cluster, within = divmod(offset, cluster_size)
            take = min(end - offset, cluster_size - within)
            l1_index, l2_index = divmod(cluster, self.l2_entries)
            table = self._l2(l1_index)
            if table is None:
                # a missing L2 table: every cluster it would map is unallocated
                span_end = min(end, (l1_index + 1) * self.l2_entries * cluster_size)
                yield from below(self.backing, offset, span_end - offset)
                offset = span_end
                continue
            entry = table[l2_index * self.entry_words]
            if entry & L2_COMPRESSED:
                yield Piece(None, offset, take, self._compressed(entry, cluster)[within : within + take])
            elif self.extended:
                yield from self._subclusters(entry, table[l2_index * self.entry_words + 1], cluster, offset, within,
                                             take)
            else:
                yield from self._standard(entry, cluster, offset, within, take)
            offset += take

    def _host(self, entry: int, cluster: int) -> int | None:
        """Where a standard cluster's data is in the data file; None when unallocated."""
        host = entry & OFFSET_MASK
        if not host and not (self.external and entry & L2_COPIED):
            return None
        return host

    def _plain(self, at: int, length: int, cluster: int) -> Piece:
        check_inside(self.data_file, at, length, f"qcow2 cluster {cluster}", where=self.name, at=at)
        return Piece(self.data_file, at, length)

    def _standard(self, entry: int, cluster: int, offset: int, within: int, take: int) -> Iterator[Piece]:
        if self.zero_flag and entry & L2_ZERO:
            yield Piece(None, offset, take)
            return
        host = self._host(entry, cluster)
        if host is None:
            yield from below(self.backing, offset, take)
        else:
            yield self._plain(host + within, take, cluster)

    def _subclusters(self, entry: int, bitmap: int, cluster: int, offset: int, within: int,
                     take: int) -> Iterator[Piece]:
        """qcow2.txt "Extended L2 Entries": bit i allocated, bit 32 + i reads as zeros."""
        sub_size = self.cluster_size // SUBCLUSTERS
        host = None
        if bitmap & 0xFFFFFFFF:
            host = self._host(entry, cluster)
            if host is None:
                raise CorruptImage(f"qcow2 cluster {cluster}: subclusters allocated in an unallocated cluster",
                                   where=self.name)
        end = within + take
        while within < end:
            sub = within // sub_size
            piece = min(end, (sub + 1) * sub_size) - within
            if bitmap >> sub & 1:
                yield self._plain(host + within, piece, cluster)
            elif bitmap >> (32 + sub) & 1:
                yield Piece(None, offset, piece)
            else:
                yield from below(self.backing, offset, piece)
            within += piece
            offset += piece

    def _compressed(self, entry: int, cluster: int) -> bytes:
        if self.external:
            raise CorruptImage(f"qcow2 cluster {cluster}: compressed, in an image with an external data file",
                               where=self.name)
        x = self.compressed_bits
        host = entry & ((1 << x) - 1)
        sectors = ((entry >> x) & ((1 << (self.cluster_bits - 8)) - 1)) + 1
        size = sectors * SECTOR - (host & (SECTOR - 1))
        if host >= self.image.size:
            raise CorruptImage(f"qcow2 compressed cluster {cluster} at {host}, past the end of the file"
                               f" ({self.image.size} bytes)", where=self.name, offset=host)
        size = min(size, self.image.size - host)  # the last sector of the file may be short

        def load() -> tuple[bytes, int]:
            from .. import codec

            packed = self.image.pread(host, size)
            what = f"{self.name}: qcow2 compressed cluster {cluster}"
            if self.compression == "zstd":
                data = codec.zstd_exact(packed, self.cluster_size, what=what, offset=host)
            else:
                data = codec.deflate_exact(packed, self.cluster_size, what=what, offset=host)
            return data, self.cluster_size

        return self.cache.get(("z", host), load)

