"""The squashfs driver and the codecs on damaged input: only GuestbootError, never a hang.

The pristine images come from mksquashfs (tests/builders/squashfs.py, the small tree):
the "uncompressed" variant keeps its metadata as it is, so a patch can hit one field of
one structure; the "gzip" variant is used for decompression bombs. Structures are located
with the driver itself on the pristine image. Bombs and hand-made streams for each codec
are tested on guestboot.codec directly.
"""

from __future__ import annotations

import lzma
import os
import random
import resource
import struct
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import pytest

from builders import squashfs as builder
from guestboot.errors import CorruptImage, GuestbootError, LimitExceeded, Unsupported
from guestboot.fs import path as fspath
from guestboot.fs import squashfs
from guestboot.fs.base import FileType
from guestboot.fs.squashfs import decode, layout
from guestboot.source import ByteSource, BytesSource, Run
from prereq import unavailable

TESTS = Path(__file__).parent
MEMORY_CAP = 768 * 1024 * 1024  # RLIMIT_AS of the child that reads damaged images


class Patched(ByteSource):
    """A copy of ``base`` with some bytes replaced (and the size possibly cut)."""

    def __init__(self, base: BytesSource, patches: dict[int, bytes], size: int | None = None):
        self.base = base
        self.patches = patches
        self.size = base.size if size is None else size
        self.name = "patched"

    def _pread(self, offset: int, length: int) -> bytes:
        data = bytearray(self.base.pread(offset, length))
        for where, new in self.patches.items():
            for i, byte in enumerate(new):
                if offset <= where + i < offset + length:
                    data[where + i - offset] = byte
        return bytes(data)

    def runs(self, offset: int = 0, length: int | None = None):
        length = self._check_range(offset, length)
        if length:
            yield Run(None, offset, length, self.pread(offset, length))


class Pristine:
    """One real image in memory plus the locations of its structures."""

    def __init__(self, path: Path):
        self.path = path
        self.source = BytesSource(path.read_bytes(), name=path.name)
        self.fs = squashfs.probe(self.source)
        self.sb = self.fs.sb

    def node(self, path: str, follow: bool = True):
        return fspath.resolve(self.fs, path, follow=follow)

    def meta_offset(self, table: int, block: int, offset: int) -> int:
        """Byte position in the image of decoded ``offset`` of an uncompressed metadata block."""
        pos = table + block
        (header,) = layout.METADATA_HEADER.unpack(self.source.pread(pos, 2))
        assert header & layout.METADATA_UNCOMPRESSED, "only uncompressed metadata can be patched in place"
        assert offset < header & layout.METADATA_LENGTH_MASK
        return pos + 2 + offset

    def inode_offset(self, path: str) -> int:
        block, offset = layout.inode_ref(self.node(path, follow=False).private.ref)
        return self.meta_offset(self.sb.inode_table, block, offset)

    def listing_offset(self, path: str) -> int:
        inode = self.node(path).private
        return self.meta_offset(self.sb.directory_table, inode.start, inode.offset)

    def patched(self, patches: dict[int, bytes], size: int | None = None) -> Patched:
        return Patched(self.source, patches, size)


@pytest.fixture(scope="module")
def small_tree(tmp_path_factory) -> Path:
    if builder.mksquashfs() is None:
        unavailable("mksquashfs (package squashfs-tools) is not installed")
    return builder.tree(tmp_path_factory, "small")


@pytest.fixture(scope="module")
def plain(tmp_path_factory, small_tree) -> Pristine:
    return Pristine(builder.image(tmp_path_factory, "uncompressed", "small"))


@pytest.fixture(scope="module")
def gzip(tmp_path_factory, small_tree) -> Pristine:
    return Pristine(builder.image(tmp_path_factory, "gzip", "small"))


@pytest.fixture(scope="module")
def xz_options(tmp_path_factory, small_tree) -> Pristine:
    return Pristine(builder.image(tmp_path_factory, "xz-bcj-1m", "small"))


def exercise(source: ByteSource, lookups: bool = True) -> None:
    """Probe and read everything (listings, lookups, links, every byte); compare nothing.
    Without ``lookups`` only a few names are looked up (the random campaign: faster)."""
    fs = squashfs.probe(source)
    if fs is None:
        return
    pending = [fs.root()]
    seen = 0
    while pending:
        directory = pending.pop()
        for name, node in fs.readdir(directory):
            seen += 1
            assert seen < 10_000
            if lookups or seen % 50 == 0:
                fs.lookup(directory, name)
            if node.type is FileType.DIR:
                pending.append(node)
            elif node.type is FileType.LNK:
                fs.readlink(node)
            elif node.type is FileType.REG:
                data = fs.open(node)
                for pos in range(0, min(data.size, 1 << 24), 1 << 20):
                    data.pread(pos, min(1 << 20, data.size - pos))
                for _run in data.runs(0, min(data.size, 1 << 24)):
                    pass


def damaged(source: ByteSource, error: type[GuestbootError] = GuestbootError, match: str | None = None) -> None:
    with pytest.raises(error, match=match):
        exercise(source)


def test_pristine_images_read_back(plain, gzip, xz_options, small_tree):
    for image in (plain, gzip, xz_options):
        exercise(image.source)
        for path in ("/small.txt", "/mixed.bin", "/sparse.bin", "/many/with-data"):
            assert fspath.read_bytes(image.fs, path, 1 << 24) == (small_tree / path[1:]).read_bytes()


# --- the superblock and truncation ---------------------------------------------------------------


@pytest.mark.timeout(5)
@pytest.mark.parametrize("cut", [4, 95, 96, 4096, "tables", "half", "last-byte"])
def test_truncated_images(plain, gzip, cut):
    for image in (plain, gzip):
        size = {"tables": image.sb.inode_table + 10, "half": image.source.size // 2,
                "last-byte": image.sb.bytes_used - 1}.get(cut, cut)
        source = image.patched({}, size=size)
        if size < layout.SUPERBLOCK_SIZE:
            assert squashfs.probe(source) is None  # too small to be one
        else:
            damaged(source, CorruptImage, "truncated")


@pytest.mark.timeout(5)
@pytest.mark.parametrize("field, value, error, match", [
    (0x1C, struct.pack("<H", 3), Unsupported, "version 3.0"),  # s_major
    (0x14, struct.pack("<H", 9), Unsupported, "compressor id 9"),
    (0x16, struct.pack("<H", 30), CorruptImage, "block size"),  # block_log
    (0x0C, struct.pack("<I", 12345), CorruptImage, "block size"),
    (0x28, struct.pack("<Q", 1 << 40), CorruptImage, "truncated"),  # bytes_used
    (0x40, struct.pack("<Q", 1 << 40), CorruptImage, "tables"),  # inode table start
    (0x48, struct.pack("<Q", 50), CorruptImage, "tables"),  # directory table before the inodes
    (0x20, struct.pack("<Q", 0xFFFFFFFF << 16), CorruptImage, "root inode"),
])
def test_superblock_damage(plain, field, value, error, match):
    with pytest.raises(error, match=match):
        squashfs.probe(plain.patched({field: value}))


@pytest.mark.timeout(5)
def test_compressor_options_block_that_does_not_fit(xz_options):
    image = xz_options
    assert image.sb.flags & layout.FLAG_COMPRESSOR_OPTIONS  # -Xbcj writes an options block
    exercise(image.source)
    with pytest.raises(CorruptImage, match="compressor options"):
        squashfs.probe(image.patched({layout.SUPERBLOCK_SIZE: struct.pack("<H", 0x8000 | 0x7FFF)}))


# --- metadata blocks -----------------------------------------------------------------------------


@pytest.mark.timeout(5)
@pytest.mark.parametrize("header", [0x8000, 0x0000, 0x8000 | 0x7FFF, 0x2001])
def test_metadata_block_headers(plain, gzip, header):
    """Zero length (a reader that trusts it never moves on), longer than 8 KiB, or running
    past the table: CorruptImage naming the block."""
    for image in (plain, gzip):
        damaged(image.patched({image.sb.inode_table: struct.pack("<H", header)}), CorruptImage, "metadata block")
        damaged(image.patched({image.sb.directory_table: struct.pack("<H", header)}), CorruptImage,
                "metadata block")


@pytest.mark.timeout(5)
def test_metadata_bomb(gzip):
    """A compressed metadata block that inflates past 8 KiB."""
    pos = gzip.sb.inode_table
    (header,) = layout.METADATA_HEADER.unpack(gzip.source.pread(pos, 2))
    assert not header & layout.METADATA_UNCOMPRESSED
    bomb = zlib.compress(bytes(1 << 16), 9)
    assert len(bomb) <= header & layout.METADATA_LENGTH_MASK
    damaged(gzip.patched({pos + 2: bomb}), CorruptImage, "inflates past the 8192 bytes")


@pytest.mark.timeout(5)
def test_data_block_bomb(gzip):
    """A compressed data block whose stream inflates past the block size."""
    node = gzip.node("/mixed.bin")
    pos, word = gzip.fs.open(node).blocks[0]
    assert not word & layout.BLOCK_UNCOMPRESSED
    bomb = zlib.compress(bytes(builder.BLOCK + (1 << 16)), 9)
    assert len(bomb) <= word & layout.BLOCK_SIZE_MASK
    with pytest.raises(CorruptImage, match="inflates past"):
        fspath.read_bytes(squashfs.probe(gzip.patched({pos: bomb})), "/mixed.bin", 1 << 24)


# --- inodes, directories, fragments ---------------------------------------------------------------


@pytest.mark.timeout(5)
def test_directory_header_with_an_absurd_count(plain):
    at = plain.listing_offset("/")
    damaged(plain.patched({at: struct.pack("<I", 0xFFFF)}), CorruptImage, "header of 65536 entries")


@pytest.mark.timeout(5)
def test_directory_entries_point_past_the_inode_table(plain):
    at = plain.listing_offset("/")
    damaged(plain.patched({at + 4: struct.pack("<I", 0x7FFFFFFF)}), CorruptImage, "outside the inode table")
    # an entry offset past its inode block
    damaged(plain.patched({at + 12: struct.pack("<H", 0xFFFF)}), CorruptImage)


@pytest.mark.timeout(5)
def test_directory_entry_names(plain):
    at = plain.listing_offset("/")
    first_name = at + 12 + 8
    for bad in (b"/", b"\0"):
        damaged(plain.patched({first_name: bad}), CorruptImage, "bad entry name")
    # a name size running past the listing
    damaged(plain.patched({at + 12 + 6: struct.pack("<H", 255)}), CorruptImage)


@pytest.mark.timeout(5)
def test_directory_listing_larger_than_its_table(plain):
    at = plain.inode_offset("/many")
    inode = plain.node("/many").private
    assert inode.index_count  # an extended directory: file size at +16+4
    damaged(plain.patched({at + 16 + 4: struct.pack("<I", 0xFFFFFFF0)}), GuestbootError)
    # the index: an entry beyond the listing, and names out of order
    block, offset = inode.tail
    index_at = plain.meta_offset(plain.sb.inode_table, block - plain.sb.inode_table, offset)
    damaged(plain.patched({index_at: struct.pack("<I", 0xFFFFFFF)}), CorruptImage, "index entry")


@pytest.mark.timeout(5)
@pytest.mark.parametrize("value", [0, 15, 0xFFFF])
def test_inode_types(plain, value):
    at = plain.inode_offset("/small.txt")
    damaged(plain.patched({at: struct.pack("<H", value)}), CorruptImage)


@pytest.mark.timeout(5)
def test_fragment_index_out_of_range(plain):
    name = "/files/text-100"
    node = plain.node(name)
    assert node.private.fragment != 0xFFFFFFFF and node.private.header.type == layout.BASIC_FILE
    at = plain.inode_offset(name)  # a basic file: start, fragment, offset, size
    with pytest.raises(CorruptImage, match="fragment 123456 out of range"):
        fspath.read_bytes(squashfs.probe(plain.patched({at + 16 + 4: struct.pack("<I", 123456)})), name, 1 << 20)
    with pytest.raises(CorruptImage, match="runs past its fragment block"):
        fspath.read_bytes(squashfs.probe(plain.patched({at + 16 + 8: struct.pack("<I", 1 << 30)})), name, 1 << 20)


@pytest.mark.timeout(5)
def test_huge_file_sizes_are_refused_before_allocating(plain):
    at = plain.inode_offset("/sparse.bin")
    node = plain.node("/sparse.bin")
    fs = squashfs.probe(plain.patched({at + 16 + 12: struct.pack("<I", 0xFFFFFFFF)}))
    kind = node.private.header.type
    if kind == layout.EXT_FILE:  # the 64-bit size at +16+8
        fs = squashfs.probe(plain.patched({at + 16 + 8: struct.pack("<Q", 1 << 60)}))
        with pytest.raises(LimitExceeded, match="max_file_runs"):
            fs.open(fspath.resolve(fs, "/sparse.bin"))
    else:
        with pytest.raises(GuestbootError):
            fspath.read_bytes(fs, "/sparse.bin", 1 << 30)


@pytest.mark.timeout(5)
def test_data_block_sizes(plain):
    name = "/files/random-" + str(3 * builder.BLOCK + 12_345)
    node = plain.node(name)
    block, offset = node.private.tail
    list_at = plain.meta_offset(plain.sb.inode_table, block - plain.sb.inode_table, offset)
    for word, match in ((layout.BLOCK_UNCOMPRESSED | (1 << 23), "larger than a block"),
                        (layout.BLOCK_UNCOMPRESSED | 5, "holds 5 bytes")):
        fs = squashfs.probe(plain.patched({list_at: struct.pack("<I", word)}))
        with pytest.raises(CorruptImage, match=match):
            data = fs.open(fspath.resolve(fs, name))
            data.pread(0, 10)
            list(data.runs())


# --- seeded random damage, in a child under an address-space cap ----------------------------------


@pytest.mark.timeout(120)
def test_random_damage_stays_in_the_error_tree_with_bounded_memory(plain, gzip, tmp_path):
    """200 seeded single- and multi-byte flips over the metadata of both images, read in a
    child capped at 768 MiB of address space: every outcome is the right bytes or a
    GuestbootError, each within 5 s."""
    code = f"""
        import random, sys, time
        sys.path.insert(0, {str(TESTS)!r})
        from test_fs_squashfs_corrupt import Pristine, exercise
        from guestboot.errors import GuestbootError
        from pathlib import Path
        errors = worst = 0
        for path, seed in (({str(plain.path)!r}, 1), ({str(gzip.path)!r}, 2)):
            image = Pristine(Path(path))
            rng = random.Random(seed)
            start = image.sb.inode_table
            for _ in range(100):
                at = start + rng.randrange(image.sb.bytes_used - start)
                patch = bytes(rng.randrange(256) for _ in range(rng.choice((1, 1, 2, 4))))
                began = time.monotonic()
                try:
                    exercise(image.patched({{at: patch}}), lookups=False)
                except GuestbootError:
                    errors += 1
                worst = max(worst, time.monotonic() - began)
        print(errors, worst)
    """

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))

    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=tmp_path, preexec_fn=cap,
                          capture_output=True, text=True, timeout=110)
    assert done.returncode == 0, done.stderr[-3000:]
    errors, worst = done.stdout.split()
    assert int(errors) > 25  # much damage to live metadata is noticed
    assert float(worst) < 5


# --- the decoders on their own ----------------------------------------------------------------------

GZIP, LZMA, LZO, XZ, LZ4, ZSTD = 1, 2, 3, 4, 5, 6  # squashfs compression ids


def _lzo_bomb(zeros: int) -> bytes:
    """One literal, then an M3 match of distance 1 whose length is 31 + 255 * zeros + 255 + 2,
    then the end marker."""
    return bytes([18]) + b"a" + bytes([32]) + bytes(zeros) + bytes([255]) + b"\0\0" + b"\x11\0\0"


def _bombs():
    big = bytes(4 << 20)
    yield GZIP, zlib.compress(big)
    yield XZ, lzma.compress(big)
    yield LZMA, lzma.compress(big, format=lzma.FORMAT_ALONE)
    yield LZO, _lzo_bomb(100)
    import lz4.block
    yield LZ4, lz4.block.compress(big, store_size=False)
    try:
        from compression import zstd
    except ImportError:
        from backports import zstd
    yield ZSTD, zstd.compress(big)


# the shared LZO decoder and LZ4_decompress_safe stop at the buffer's end and say so themselves
BOMB_MESSAGE = {LZO: "output beyond 8193 bytes", LZ4: "more than 8193 bytes"}


@pytest.mark.timeout(5)
@pytest.mark.parametrize("compression, stream", list(_bombs()), ids=lambda v: str(v) if isinstance(v, int) else "")
def test_decoder_bombs_stop_at_the_declared_size(compression, stream):
    with pytest.raises(CorruptImage, match=BOMB_MESSAGE.get(compression, "inflates past the 8192 bytes declared")):
        decode.decompress(compression, stream, 8192, what="test block", where="test", offset=0)


@pytest.mark.timeout(5)
@pytest.mark.parametrize("compression", sorted(decode.CODECS))
def test_decoder_garbage(compression):
    for junk in (b"", b"\0", b"\x11", os.urandom(64), b"\xff" * 300):
        try:
            out = decode.decompress(compression, junk, 8192, what="test block", where="test", offset=0)
        except CorruptImage:
            continue
        assert len(out) <= 8192


def test_decoder_exact_output_and_limits():
    assert decode.decompress(GZIP, zlib.compress(b"x" * 8192), 8192, what="t", where="w", offset=0) == b"x" * 8192
    assert decode.decompress(LZO, _lzo_bomb(0), 8192, what="t", where="w", offset=0) == b"a" * (1 + 31 + 255 + 2)
    with pytest.raises(CorruptImage, match="before the start"):
        decode.decompress(LZO, bytes([18]) + b"a" + bytes([32 + 3]) + b"\x10\0" + b"\x11\0\0", 100, what="t",
                          where="w", offset=0)
    with pytest.raises(LimitExceeded, match="max_decompressed_block"):
        decode.decompress(GZIP, b"", 1 << 30, what="t", where="w", offset=0)
