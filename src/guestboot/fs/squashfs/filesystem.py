"""SquashFileSystem: one squashfs 4.0 volume behind the FileSystem interface.

Sections of the kernel's Documentation/filesystems/squashfs.rst: "Inodes", "Directories"
(listings of headers and entries; the index of an extended directory), "File data",
"Fragment lookup table". The superblock is checked once in probe (see __init__.py).
"""

from __future__ import annotations

import stat
from typing import Iterator, NamedTuple

from ...errors import CorruptImage, LimitExceeded, NotFound
from ...limits import LIMITS
from ...source import ByteSource, ZeroSource
from ..base import FileSystem, FileType, Node
from ..budget import EntryBudget, shared_total
from ..cache import LRU
from .decode import decompress
from .file import SquashFile, decode_block
from .layout import (
    BASIC_BLKDEV,
    BASIC_CHRDEV,
    BASIC_DIR,
    BASIC_DIR_BODY,
    BASIC_FIFO,
    BASIC_FILE,
    BASIC_FILE_BODY,
    BASIC_SOCKET,
    BLOCK_SIZE_MASK,
    BLOCK_UNCOMPRESSED,
    BLOCK_SIZE_WORD,
    DIR_ENTRY,
    DIR_HEADER,
    DIR_HEADER_MAX_COUNT,
    DIR_INDEX,
    DIR_SIZE_BIAS,
    DIR_TYPES,
    EXT_DIR,
    EXT_DIR_BODY,
    EXT_FILE,
    EXT_FILE_BODY,
    FILE_TYPES,
    FRAGMENT_ENTRY,
    INODE_HEADER,
    MAX_NAME,
    METADATA_SIZE,
    NO_FRAGMENT,
    OTHER_BODY_SIZE,
    SYMLINK_BODY,
    SYMLINK_TYPES,
    TABLE_POINTER,
    InodeHeader,
    Superblock,
    inode_ref,
)
from .metadata import Cursor, MetadataReader

_INODE_CACHE = 2048
_FRAGMENT_CACHE = 4  # decoded fragment blocks (a block size each: 4 MiB at most)
_TYPE_BITS = {BASIC_DIR: stat.S_IFDIR, BASIC_FILE: stat.S_IFREG, 3: stat.S_IFLNK, BASIC_BLKDEV: stat.S_IFBLK,
              BASIC_CHRDEV: stat.S_IFCHR, BASIC_FIFO: stat.S_IFIFO, BASIC_SOCKET: stat.S_IFSOCK}
_FILE_TYPES = {BASIC_DIR: FileType.DIR, BASIC_FILE: FileType.REG, 3: FileType.LNK}


class Inode(NamedTuple):
    """One parsed inode. ``start``/``offset``: where a directory's listing begins (block
    relative to the directory table, offset in it) or where a file's data blocks begin
    (absolute); ``tail``: the cursor place just after the fixed part (block list, symlink
    target or directory index)."""

    ref: int
    basic_type: int  # 1-7: the extended types folded onto the basic ones
    header: InodeHeader
    size: int  # file bytes; a directory's listing bytes; a symlink's target bytes
    start: int
    offset: int
    fragment: int
    index_count: int
    tail: tuple[int, int]


class DirEntry(NamedTuple):
    name: bytes
    ref: int
    basic_type: int
    offset: int  # where its header lies in the volume, for messages


class SquashFileSystem(FileSystem):
    kind = "squashfs"
    uuid = None  # squashfs has no UUID (GRUB's squash4 driver reports none either)
    label = None

    def __init__(self, source: ByteSource, sb: Superblock, compressor: str, warnings: list[str]):
        self.source = source
        self.sb = sb
        self.compressor = compressor
        self.warnings = warnings
        self.block_size = sb.block_size
        self.meta = MetadataReader(source, sb.compression)
        self._inodes: LRU[int, Inode] = LRU(_INODE_CACHE)
        self._fragments: LRU[int, bytes] = LRU(_FRAGMENT_CACHE)
        self._scanned = shared_total()  # the image's: partitions may alias

    # --- inodes ---------------------------------------------------------------------------------

    def inode(self, ref: int) -> Inode:
        cached = self._inodes.get(ref)
        if cached is not None:
            return cached
        sb = self.sb
        block, offset = inode_ref(ref)
        what = f"inode {block}:{offset}"
        if offset >= METADATA_SIZE or sb.inode_table + block >= sb.directory_table:
            raise CorruptImage(f"{what}: reference outside the inode table", where=self.source.name,
                               offset=sb.inode_table + min(block, sb.bytes_used))
        cur = Cursor(self.meta, sb.directory_table, sb.inode_table + block, offset, what)
        header = InodeHeader._make(INODE_HEADER.unpack(cur.read(INODE_HEADER.size)))
        kind = header.type
        basic = kind - 7 if kind > 7 else kind
        start = off = index_count = 0
        fragment = NO_FRAGMENT
        if kind == BASIC_DIR:
            start, _nlink, size, off, _parent = BASIC_DIR_BODY.unpack(cur.read(BASIC_DIR_BODY.size))
        elif kind == EXT_DIR:
            _nlink, size, start, _parent, index_count, off, _xattr = EXT_DIR_BODY.unpack(cur.read(EXT_DIR_BODY.size))
        elif kind == BASIC_FILE:
            start, fragment, off, size = BASIC_FILE_BODY.unpack(cur.read(BASIC_FILE_BODY.size))
        elif kind == EXT_FILE:
            start, size, _sparse, _nlink, fragment, off, _xattr = EXT_FILE_BODY.unpack(cur.read(EXT_FILE_BODY.size))
        elif kind in SYMLINK_TYPES:
            _nlink, size = SYMLINK_BODY.unpack(cur.read(SYMLINK_BODY.size))
        elif kind in OTHER_BODY_SIZE:
            cur.read(OTHER_BODY_SIZE[kind])
            size = 0
        else:
            raise CorruptImage(f"{what}: unknown inode type {kind}", where=self.source.name, offset=cur.pos)
        if kind in DIR_TYPES:
            if size < DIR_SIZE_BIAS or off >= METADATA_SIZE:
                raise CorruptImage(f"{what}: directory of size {size} at offset {off}", where=self.source.name,
                                   offset=cur.pos)
            size -= DIR_SIZE_BIAS
        inode = Inode(ref, basic, header, size, start, off, fragment, index_count, cur.place())
        self._inodes.put(ref, inode)
        return inode

    def node(self, ref: int) -> Node:
        inode = self.inode(ref)
        mode = _TYPE_BITS[inode.basic_type] | (inode.header.mode & 0o7777)
        ftype = _FILE_TYPES.get(inode.basic_type, FileType.OTHER)
        return Node(inode.header.number, ftype, inode.size, mode, inode.header.mtime, private=inode)

    def root(self) -> Node:
        node = self.node(self.sb.root_inode)
        if node.type is not FileType.DIR:
            raise CorruptImage("the root inode is not a directory", where=self.source.name, offset=0)
        return node

    def _cursor(self, inode: Inode, what: str) -> Cursor:
        block, offset = inode.tail
        return Cursor(self.meta, self.sb.directory_table, block, offset, what)

    # --- directories ------------------------------------------------------------------------------

    def _listing(self, inode: Inode, start: int, offset: int, length: int, budget: EntryBudget
                 ) -> Iterator[DirEntry]:
        """The entries of ``length`` listing bytes from (block ``start`` of the directory
        table, ``offset``)."""
        sb = self.sb
        what = f"directory inode {inode.header.number}"
        if sb.directory_table + start >= sb.bytes_used:
            raise CorruptImage(f"{what}: listing starts outside the directory table", where=self.source.name,
                               offset=sb.directory_table)
        cur = Cursor(self.meta, sb.bytes_used, sb.directory_table + start, offset, what)
        left = length
        while left > 0:
            at = cur.pos
            if left < DIR_HEADER.size:
                raise CorruptImage(f"{what}: {left} bytes left, too few for a header", where=self.source.name,
                                   offset=at)
            budget.scan(DIR_HEADER.size)
            count, inode_block, base = DIR_HEADER.unpack(cur.read(DIR_HEADER.size))
            left -= DIR_HEADER.size
            count += 1
            if count > DIR_HEADER_MAX_COUNT:
                raise CorruptImage(f"{what}: header of {count} entries (at most {DIR_HEADER_MAX_COUNT})",
                                   where=self.source.name, offset=at)
            if sb.inode_table + inode_block >= sb.directory_table:
                raise CorruptImage(f"{what}: entries point at inode block {inode_block}, outside the inode table",
                                   where=self.source.name, offset=at)
            for _ in range(count):
                if left < DIR_ENTRY.size:
                    raise CorruptImage(f"{what}: entry runs past the listing", where=self.source.name, offset=cur.pos)
                entry_offset, _delta, etype, name_size = DIR_ENTRY.unpack(cur.read(DIR_ENTRY.size))
                name_size += 1
                left -= DIR_ENTRY.size + name_size
                budget.scan(DIR_ENTRY.size + name_size)
                if left < 0 or name_size > MAX_NAME or not 1 <= etype <= 7:
                    raise CorruptImage(f"{what}: entry of type {etype} with a {name_size}-byte name does not fit",
                                       where=self.source.name, offset=cur.pos)
                name = cur.read(name_size)
                if b"/" in name or b"\0" in name or name in (b".", b".."):
                    raise CorruptImage(f"{what}: bad entry name {name!r}", where=self.source.name, offset=cur.pos)
                budget.entry()
                yield DirEntry(name, (inode_block << 16) | entry_offset, etype, at)

    def _node_of(self, directory: Inode, entry: DirEntry) -> Node:
        node = self.node(entry.ref)
        if node.private.basic_type != entry.basic_type:
            raise CorruptImage(
                f"directory inode {directory.header.number}: entry {entry.name!r} says type {entry.basic_type},"
                f" its inode is of type {node.private.basic_type}", where=self.source.name, offset=entry.offset)
        return node

    def _dir(self, directory: Node) -> Inode:
        if directory.type is not FileType.DIR:
            raise NotFound(f"inode {directory.ino} is not a directory", where=self.source.name)
        return directory.private

    def readdir(self, directory: Node) -> Iterator[tuple[bytes, Node]]:
        inode = self._dir(directory)
        budget = EntryBudget(f"{self.source.name}:directory {directory.ino}", self._scanned)
        for entry in self._listing(inode, inode.start, inode.offset, inode.size, budget):
            yield entry.name, self._node_of(inode, entry)

    def lookup(self, directory: Node, name: bytes) -> Node | None:
        inode = self._dir(directory)
        if not name or b"/" in name or len(name) > MAX_NAME:
            return None
        budget = EntryBudget(f"{self.source.name}:directory {directory.ino}", self._scanned)
        start, offset, skip = inode.start, inode.offset, 0
        if inode.index_count:
            start, offset, skip = self._index_place(inode, name, budget)
        for entry in self._listing(inode, start, offset, inode.size - skip, budget):
            if entry.name == name:
                return self._node_of(inode, entry)
            if inode.index_count and entry.name > name:  # listings are sorted (mksquashfs, strcmp)
                return None
        return None

    def _index_place(self, inode: Inode, name: bytes, budget: EntryBudget) -> tuple[int, int, int]:
        """Where to start looking for ``name`` in an extended directory: the last index
        entry whose first name is not after it (squashfs.rst, "Directory index"). Returns
        (listing block, offset in it, listing bytes skipped)."""
        what = f"directory inode {inode.header.number}: index"
        cur = Cursor(self.meta, self.sb.directory_table, *inode.tail, what)
        place = (inode.start, inode.offset, 0)
        last_index = 0
        for _ in range(inode.index_count):
            at = cur.pos
            budget.scan(DIR_INDEX.size)
            index, block, name_size = DIR_INDEX.unpack(cur.read(DIR_INDEX.size))
            name_size += 1
            if name_size > MAX_NAME or index < last_index or index > inode.size:
                raise CorruptImage(f"{what} entry at listing byte {index} with a {name_size}-byte name",
                                   where=self.source.name, offset=at)
            last_index = index
            budget.scan(name_size)
            first = cur.read(name_size)
            if first > name:
                break
            place = (block, (inode.offset + index) % METADATA_SIZE, index)
        return place

    # --- symlinks and files ------------------------------------------------------------------------

    def readlink(self, node: Node) -> bytes:
        if node.type is not FileType.LNK:
            raise NotFound(f"inode {node.ino} is not a symlink", where=self.source.name)
        inode: Inode = node.private
        if inode.size > LIMITS.max_symlink_size:
            raise LimitExceeded(f"symlink inode {node.ino}: target of {inode.size} bytes (max_symlink_size)",
                                where=self.source.name)
        block, offset = inode.tail
        return Cursor(self.meta, self.sb.directory_table, block, offset, f"symlink inode {node.ino}").read(inode.size)

    def open(self, node: Node) -> ByteSource:
        if node.type is not FileType.REG:
            raise NotFound(f"inode {node.ino} is not a regular file", where=self.source.name)
        inode: Inode = node.private
        name = f"{self.source.name}:inode {node.ino}"
        bs = self.block_size
        has_fragment = inode.fragment != NO_FRAGMENT
        count = inode.size // bs if has_fragment else -(-inode.size // bs)
        if count > LIMITS.max_file_runs:
            raise LimitExceeded(f"inode {node.ino}: {count} data blocks (max_file_runs)", where=self.source.name)
        if inode.size == 0:
            return ZeroSource(0, name=name)
        raw = Cursor(self.meta, self.sb.directory_table, *inode.tail, f"inode {node.ino}: block list").read(
            count * BLOCK_SIZE_WORD.size)
        blocks = []
        pos = inode.start
        for (word,) in BLOCK_SIZE_WORD.iter_unpack(raw):
            size = word & BLOCK_SIZE_MASK
            if size > bs or pos + size > self.sb.bytes_used:
                raise CorruptImage(f"inode {node.ino}: data block {len(blocks)} of {size} bytes at {pos} outside"
                                   f" the volume or larger than a block", where=self.source.name, offset=pos)
            blocks.append((pos, word))
            pos += size
        fragment = None
        if has_fragment and inode.size % bs:
            fragment = (*self._fragment_entry(inode.fragment), inode.offset)
        return SquashFile(self, inode.size, blocks, fragment, name)

    def data_block(self, pos: int, word: int, length: int, what: str) -> bytes:
        return decode_block(self, pos, word, length, what)

    # --- fragments -----------------------------------------------------------------------------------

    def _fragment_entry(self, index: int) -> tuple[int, int]:
        """(position, size word) of fragment block ``index`` (squashfs.rst, "Fragment lookup table")."""
        sb = self.sb
        if index >= sb.fragment_count:
            raise CorruptImage(f"fragment {index} out of range ({sb.fragment_count} fragments)",
                               where=self.source.name, offset=sb.fragment_table)
        per_block = METADATA_SIZE // FRAGMENT_ENTRY.size
        slot = sb.fragment_table + (index // per_block) * TABLE_POINTER.size
        if slot + TABLE_POINTER.size > sb.bytes_used:
            raise CorruptImage(f"fragment {index}: index slot outside the volume", where=self.source.name,
                               offset=slot)
        (block,) = TABLE_POINTER.unpack(self.source.pread(slot, TABLE_POINTER.size))
        if not sb.directory_table <= block < sb.fragment_table:
            raise CorruptImage(f"fragment {index}: table block at {block}, outside the fragment table",
                               where=self.source.name, offset=slot)
        cur = Cursor(self.meta, sb.fragment_table, block, (index % per_block) * FRAGMENT_ENTRY.size,
                     f"fragment {index}")
        start, word, _unused = FRAGMENT_ENTRY.unpack(cur.read(FRAGMENT_ENTRY.size))
        size = word & BLOCK_SIZE_MASK
        if size == 0 or size > self.block_size or start + size > sb.bytes_used:
            raise CorruptImage(f"fragment {index}: block of {size} bytes at {start} outside the volume",
                               where=self.source.name, offset=cur.pos)
        return start, word

    def fragment_block(self, pos: int, word: int) -> bytes:
        data = self._fragments.get(pos)
        if data is None:
            size = word & BLOCK_SIZE_MASK
            raw = self.source.pread(pos, size)
            if word & BLOCK_UNCOMPRESSED:
                data = raw
            else:
                data = decompress(self.sb.compression, raw, self.block_size, what="fragment block",
                                  where=self.source.name, offset=pos)
            self._fragments.put(pos, data)
        return data
