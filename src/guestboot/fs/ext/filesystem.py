"""ExtFileSystem: one mounted (read-only) ext2/ext3/ext4 volume behind the FileSystem interface.

Geometry comes from the superblock checked once in probe (see __init__.py); group
descriptors, inodes and metadata blocks are read on demand and kept in small bounded
caches. Sections of the kernel's ext4 document: "Block Groups", "Block Group Descriptors",
"Index Nodes", "Directory Entries", "Inline Data", "Extended Attributes".
"""

from __future__ import annotations

import struct
from typing import Iterator

from ... import crc32c
from ...errors import CorruptImage, LimitExceeded, NotFound, Unsupported
from ...limits import LIMITS
from ...source import ByteSource, BytesSource
from ..base import FileSystem, FileType, Node
from ..budget import EntryBudget, shared_total
from ..cache import LRU
from ..mapped import MappedFile
from . import dirent
from .blockmap import map_inode
from .superblock import Geometry
from .layout import (
    DIRENT_TAIL_CHECKSUM,
    DIRENT_TAIL_FILE_TYPE,
    DIRENT_TAIL_SIZE,
    DIRENT,
    EXTENT_ENTRY_SIZE,
    EXTENT_HEADER,
    GOOD_OLD_INODE_SIZE,
    GROUP_DESC_32,
    GROUP_DESC_64_HI,
    GROUP_DESC_CHECKSUM_OFFSET,
    I_BLOCK_SIZE,
    INCOMPAT_64BIT,
    INCOMPAT_FILETYPE,
    INCOMPAT_META_BG,
    INLINE_DIR_PARENT,
    INODE_CASEFOLD_FL,
    INODE_CHECKSUM_HI_OFFSET,
    INODE_CHECKSUM_LO_OFFSET,
    INODE_ENCRYPT_FL,
    INODE_EXTENTS_FL,
    INODE_EXTRA,
    INODE_INDEX_FL,
    INODE_INLINE_DATA_FL,
    S_IFDIR,
    S_IFLNK,
    S_IFMT,
    S_IFREG,
    XATTR_ENTRY,
    XATTR_IBODY_HEADER,
    XATTR_INDEX_SYSTEM,
    XATTR_MAGIC,
    Inode,
)

ROOT_INO = 2
_U32 = struct.Struct("<I")
_INODE_CACHE = 2048
_GROUP_CACHE = 4096
_BLOCK_CACHE = 64
_DIR_CACHE = 32
CACHED_BLOCK_COST = 512  # bytes charged for visiting a directory block whose names are cached (a dict lookup
# and the walk around it cost about what parsing 512 bytes does)


class ExtFileSystem(FileSystem):
    def __init__(self, source: ByteSource, geometry: Geometry, kind: str, uuid: str, label: str | None,
                 warnings: list[str]):
        self.source = source
        self.g = geometry
        self.kind = kind
        self.uuid = uuid
        self.label = label
        self.warnings = warnings
        self.block_size = geometry.block_size
        self._inodes: LRU[int, Inode] = LRU(_INODE_CACHE)
        self._tables: LRU[int, int] = LRU(_GROUP_CACHE)
        self._blocks: LRU[int, bytes] = LRU(_BLOCK_CACHE)
        self._dirs: LRU[int, MappedFile] = LRU(_DIR_CACHE)
        self._scanned = shared_total()  # the image's: partitions may alias
        self._dir_blocks: LRU[int, bytes] = LRU(_BLOCK_CACHE)  # by byte offset in the volume
        self._dir_names: LRU[int, dict[bytes, int]] = LRU(_BLOCK_CACHE)

    # --- blocks -----------------------------------------------------------------------------

    def check_blocks(self, start: int, count: int, what: str, offset: int) -> None:
        if start < 1 or start + count > self.g.blocks_count:
            raise CorruptImage(
                f"{what}: blocks {start}..{start + count - 1} outside the volume ({self.g.blocks_count} blocks)",
                where=self.source.name,
                offset=offset,
            )

    def read_block(self, block: int) -> bytes:
        data = self._blocks.get(block)
        if data is None:
            data = self.source.pread(block * self.block_size, self.block_size)
            self._blocks.put(block, data)
        return data

    # --- checksums (metadata_csum) -----------------------------------------------------------

    def _inode_seed(self, inode: Inode) -> int:
        seed = crc32c.update(self.g.csum_seed, _U32.pack(inode.ino))
        return crc32c.update(seed, _U32.pack(inode.generation))

    def verify_extent_block(self, inode: Inode, raw: bytes, offset: int, where: str) -> None:
        if not self.g.metadata_csum:
            return
        _magic, _entries, maximum, _depth, _gen = EXTENT_HEADER.unpack_from(raw)
        tail = 12 + maximum * EXTENT_ENTRY_SIZE
        if tail + 4 > len(raw):
            raise CorruptImage(f"{where}: no room for the extent block checksum", offset=offset)
        expected = crc32c.update(self._inode_seed(inode), raw[:tail])
        if _U32.unpack_from(raw, tail)[0] != expected:
            raise CorruptImage(f"{where}: extent block checksum mismatch", where=self.source.name, offset=offset + tail)

    def _verify_dir_block(self, inode: Inode, raw: bytes, offset: int, index_node: bool) -> None:
        if not self.g.metadata_csum:
            return
        bs = len(raw)
        tail = bs - DIRENT_TAIL_SIZE
        ino, length, name_len, file_type = DIRENT.unpack_from(raw, tail)
        if ino == 0 and length == DIRENT_TAIL_SIZE and name_len == 0 and file_type == DIRENT_TAIL_FILE_TYPE:
            expected = crc32c.update(self._inode_seed(inode), raw[:tail])
            if DIRENT_TAIL_CHECKSUM.unpack_from(raw, tail + 8)[0] != expected:
                raise CorruptImage(
                    f"directory {inode.ino}: block checksum mismatch", where=self.source.name, offset=offset + tail
                )
        elif not index_node:
            raise CorruptImage(
                f"directory {inode.ino}: block has no checksum tail", where=self.source.name, offset=offset + tail
            )

    # --- group descriptors and inodes --------------------------------------------------------

    def inode_table(self, group: int) -> int:
        """The first block of a group's inode table (its descriptor read and checked once)."""
        table = self._tables.get(group)
        if table is not None:
            return table
        g = self.g
        per_block = self.block_size // g.desc_size
        if g.incompat & INCOMPAT_META_BG and group >= g.first_meta_bg * per_block:
            first = group - group % per_block
            block = g.group_first_block(first) + (1 if g.has_super(first) else 0)
        else:
            block = g.superblock_block + 1 + group // per_block
        offset = block * self.block_size + (group % per_block) * g.desc_size
        self.check_blocks(block, 1, f"group {group} descriptor", offset)
        raw = self.source.pread(offset, g.desc_size)
        table, checksum = GROUP_DESC_32.unpack_from(raw)
        if g.incompat & INCOMPAT_64BIT:
            table |= GROUP_DESC_64_HI.unpack_from(raw, 32)[0] << 32
        if g.metadata_csum:
            crc = crc32c.update(g.csum_seed, _U32.pack(group))
            crc = crc32c.update(crc, raw[:GROUP_DESC_CHECKSUM_OFFSET] + b"\0\0" + raw[GROUP_DESC_CHECKSUM_OFFSET + 2 :])
            if crc & 0xFFFF != checksum:
                raise CorruptImage(f"group {group} descriptor checksum mismatch", where=self.source.name, offset=offset)
        self.check_blocks(table, g.inode_table_blocks, f"group {group} inode table", offset)
        self._tables.put(group, table)
        return table

    def inode(self, ino: int) -> Inode:
        cached = self._inodes.get(ino)
        if cached is not None:
            return cached
        g = self.g
        if not 1 <= ino <= g.inodes_count:
            raise CorruptImage(f"inode number {ino} out of range (1..{g.inodes_count})", where=self.source.name)
        group, index = divmod(ino - 1, g.inodes_per_group)
        offset = self.inode_table(group) * self.block_size + index * g.inode_size
        raw = self.source.pread(offset, g.inode_size)
        if g.inode_size > GOOD_OLD_INODE_SIZE:
            extra, _hi = INODE_EXTRA.unpack_from(raw, GOOD_OLD_INODE_SIZE)
            if extra % 4 or GOOD_OLD_INODE_SIZE + extra > g.inode_size:
                raise CorruptImage(f"inode {ino}: bad extra size {extra}", where=self.source.name, offset=offset)
        inode = Inode.from_bytes(ino, offset, raw)
        if g.metadata_csum:
            self._verify_inode(inode)
        self._inodes.put(ino, inode)
        return inode

    def _verify_inode(self, inode: Inode) -> None:
        raw = bytearray(inode.raw)
        lo = INODE_CHECKSUM_LO_OFFSET
        stored = raw[lo] | (raw[lo + 1] << 8)
        raw[lo : lo + 2] = b"\0\0"
        has_hi = len(raw) > GOOD_OLD_INODE_SIZE and INODE_EXTRA.unpack_from(raw, GOOD_OLD_INODE_SIZE)[0] >= 4
        if has_hi:
            hi = INODE_CHECKSUM_HI_OFFSET
            stored |= (raw[hi] | (raw[hi + 1] << 8)) << 16
            raw[hi : hi + 2] = b"\0\0"
        crc = crc32c.update(self._inode_seed(inode), raw)
        if not has_hi:
            crc &= 0xFFFF
        if crc != stored:
            raise CorruptImage(f"inode {inode.ino}: checksum mismatch", where=self.source.name, offset=inode.offset)

    def node(self, ino: int) -> Node:
        inode = self.inode(ino)
        kind = inode.mode & S_IFMT
        if kind == 0 or inode.links_count == 0:
            raise CorruptImage(f"inode {ino} is in use by a directory but free", where=self.source.name,
                               offset=inode.offset)
        ftype = {S_IFREG: FileType.REG, S_IFDIR: FileType.DIR, S_IFLNK: FileType.LNK}.get(kind, FileType.OTHER)
        return Node(ino, ftype, inode.size, inode.mode, inode.mtime, private=inode)

    # --- file contents ------------------------------------------------------------------------

    def _inline_data(self, inode: Inode) -> tuple[bytes, int]:
        """The "system.data" extended attribute value of an inline-data inode and its offset."""
        g = self.g
        if g.inode_size <= GOOD_OLD_INODE_SIZE:
            return b"", 0
        raw = inode.raw
        start = GOOD_OLD_INODE_SIZE + INODE_EXTRA.unpack_from(raw, GOOD_OLD_INODE_SIZE)[0]
        if start + 4 > len(raw) or XATTR_IBODY_HEADER.unpack_from(raw, start)[0] != XATTR_MAGIC:
            return b"", 0
        first = start + 4
        pos = first
        while pos + XATTR_ENTRY.size <= len(raw):  # each step advances >= 16 bytes
            if _U32.unpack_from(raw, pos)[0] == 0:
                break
            name_len, index, value_offs, value_inum, value_size, _hash = XATTR_ENTRY.unpack_from(raw, pos)
            name_end = pos + XATTR_ENTRY.size + name_len
            if name_end > len(raw):
                raise CorruptImage(f"inode {inode.ino}: extended attribute runs past the inode",
                                   where=self.source.name, offset=inode.offset + pos)
            if index == XATTR_INDEX_SYSTEM and raw[pos + XATTR_ENTRY.size : name_end] == b"data":
                if value_inum:
                    raise Unsupported(f"inode {inode.ino}: inline data kept in an attribute inode (ea_inode)",
                                      where=self.source.name, offset=inode.offset + pos)
                if first + value_offs + value_size > len(raw):
                    raise CorruptImage(f"inode {inode.ino}: inline data attribute out of the inode",
                                       where=self.source.name, offset=inode.offset + pos)
                return raw[first + value_offs : first + value_offs + value_size], inode.offset + first + value_offs
            pos = (name_end + 3) & ~3
        return b"", 0

    def _inline_bytes(self, inode: Inode) -> bytes:
        extra, _offset = self._inline_data(inode)
        data = inode.i_block + extra
        if inode.size > len(data):
            raise CorruptImage(f"inode {inode.ino}: inline size {inode.size} is more than the {len(data)} stored",
                               where=self.source.name, offset=inode.offset)
        return data[: inode.size]

    def _contents(self, inode: Inode) -> ByteSource:
        name = f"{self.source.name}:inode {inode.ino}"
        if inode.flags & INODE_ENCRYPT_FL:
            raise Unsupported(f"inode {inode.ino} is encrypted (encrypt feature)", where=self.source.name)
        if inode.flags & INODE_INLINE_DATA_FL:
            return BytesSource(self._inline_bytes(inode), name=name)
        return self._mapped(inode, name)

    def _mapped(self, inode: Inode, name: str) -> MappedFile:
        mapper = map_inode(self, inode, bool(inode.flags & INODE_EXTENTS_FL))
        return MappedFile(self.source, inode.size, self.block_size, mapper, name)

    def open(self, node: Node) -> ByteSource:
        if node.type is not FileType.REG:
            raise NotFound(f"inode {node.ino} is not a regular file", where=self.source.name)
        return self._contents(node.private)

    def readlink(self, node: Node) -> bytes:
        inode: Inode = node.private
        if node.type is not FileType.LNK:
            raise NotFound(f"inode {node.ino} is not a symlink", where=self.source.name)
        if inode.size > LIMITS.max_symlink_size:
            raise LimitExceeded(f"symlink inode {inode.ino}: target of {inode.size} bytes (max_symlink_size)",
                                where=self.source.name)
        if inode.flags & INODE_ENCRYPT_FL:
            raise Unsupported(f"inode {inode.ino} is encrypted (encrypt feature)", where=self.source.name)
        if inode.flags & INODE_INLINE_DATA_FL:
            return self._inline_bytes(inode)
        if inode.size < I_BLOCK_SIZE:  # fast symlink: the target is stored in i_block
            return inode.i_block[: inode.size]
        return self._contents(inode).pread(0, inode.size)

    # --- directories --------------------------------------------------------------------------

    def root(self) -> Node:
        node = self.node(ROOT_INO)
        if node.type is not FileType.DIR:
            raise CorruptImage("root inode is not a directory", where=self.source.name, offset=node.private.offset)
        return node

    def directory_source(self, inode: Inode) -> MappedFile:
        """A directory's blocks as a byte source (kept in a small cache)."""
        source = self._dirs.get(inode.ino)
        if source is None or source.size != inode.size:
            if inode.flags & INODE_ENCRYPT_FL:
                raise Unsupported(f"directory {inode.ino} is encrypted (encrypt feature)", where=self.source.name)
            if inode.size % self.block_size:
                raise CorruptImage(f"directory {inode.ino}: size {inode.size} is not whole blocks",
                                   where=self.source.name, offset=inode.offset)
            source = self._mapped(inode, f"{self.source.name}:directory {inode.ino}")
            self._dirs.put(inode.ino, source)
        return source

    def _dir_block(self, inode: Inode, source: MappedFile, index: int) -> tuple[bytes, int]:
        bs = self.block_size
        where = source.volume_offset(index * bs)
        if where is None:
            raise CorruptImage(f"directory {inode.ino}: block {index} is a hole", where=self.source.name,
                               offset=inode.offset)
        cached = self._dir_blocks.get(where)
        if cached is not None:
            return cached, where
        data = source.pread(index * bs, bs)
        hashed = bool(inode.flags & INODE_INDEX_FL)
        # hash-tree nodes carry no entry tail: the root (block 0) and interior nodes, which
        # are one empty entry spanning the whole block
        index_node = hashed and (index == 0 or (data[:4] == b"\0\0\0\0" and data[4:6] in _rec_bytes(bs)))
        self._verify_dir_block(inode, data, where, index_node)
        self._dir_blocks.put(where, data)  # verified: a cached block is checked once
        return data, where

    def _entries(self, directory: Node) -> Iterator[dirent.Entry]:
        inode: Inode = directory.private
        if directory.type is not FileType.DIR:
            raise NotFound(f"inode {directory.ino} is not a directory", where=self.source.name)
        where = f"{self.source.name}:directory {inode.ino}"
        budget = EntryBudget(where, self._scanned)
        filetype = bool(self.g.incompat & INCOMPAT_FILETYPE)
        if inode.flags & INODE_INLINE_DATA_FL:
            extra, extra_offset = self._inline_data(inode)
            budget.scan(I_BLOCK_SIZE + len(extra))
            parent = INLINE_DIR_PARENT.unpack_from(inode.i_block)[0]
            yield dirent.Entry(parent, b"..", 2)
            yield from dirent.entries(inode.i_block[4:], inode.offset + 0x28 + 4, self.block_size, filetype, where)
            if extra:
                yield from dirent.entries(extra, extra_offset, self.block_size, filetype, where)
            return
        source = self.directory_source(inode)
        for index in range(inode.size // self.block_size):
            budget.scan(self.block_size)
            data, offset = self._dir_block(inode, source, index)
            yield from dirent.entries(data, offset, self.block_size, filetype, where)

    def readdir(self, directory: Node) -> Iterator[tuple[bytes, Node]]:
        budget = EntryBudget(f"{self.source.name}:directory {directory.ino}", self._scanned)
        for entry in self._entries(directory):
            if entry.name in (b".", b".."):
                continue
            budget.entry()
            yield entry.name, self.node(entry.ino)

    def lookup(self, directory: Node, name: bytes) -> Node | None:
        inode: Inode = directory.private
        if directory.type is not FileType.DIR:
            raise NotFound(f"inode {directory.ino} is not a directory", where=self.source.name)
        if not name or b"/" in name or len(name) > 255:
            return None
        if (
            inode.flags & INODE_INDEX_FL
            and not inode.flags & (INODE_INLINE_DATA_FL | INODE_CASEFOLD_FL)
            and self.g.dir_index
        ):
            found = self._htree_lookup(inode, name)
            if found is not False:
                return None if found is None else self.node(found)
        budget = EntryBudget(f"{self.source.name}:directory {directory.ino}", self._scanned)
        if inode.flags & INODE_INLINE_DATA_FL:
            for entry in self._entries(directory):
                budget.entry()
                if entry.name == name:
                    return self.node(entry.ino)
            return None
        source = self.directory_source(inode)
        for index in range(inode.size // self.block_size):
            names = self._block_names(inode, source, index, budget)
            budget.entry(len(names))
            if name in names:
                return self.node(names[name])
        return None

    def _block_names(self, inode: Inode, source: MappedFile, index: int, budget: EntryBudget) -> dict[bytes, int]:
        """name -> inode of one directory block, parsed once and kept (bounded cache). The
        scan is charged to ``budget``: the whole block (live and deleted slots) when it is
        parsed, CACHED_BLOCK_COST when its names are already known."""
        data, offset = self._dir_block(inode, source, index)
        names = self._dir_names.get(offset)
        budget.scan(self.block_size if names is None else CACHED_BLOCK_COST, offset)
        if names is None:
            names = {}
            filetype = bool(self.g.incompat & INCOMPAT_FILETYPE)
            where = f"{self.source.name}:directory {inode.ino}"
            for entry in dirent.entries(data, offset, self.block_size, filetype, where):
                names.setdefault(entry.name, entry.ino)
            self._dir_names.put(offset, names)
        return names

    def _htree_lookup(self, inode: Inode, name: bytes) -> int | None | bool:
        """The inode number of ``name`` found through the hash index, None when absent, or
        False when the index uses a hash this driver does not compute (scan linearly)."""
        bs = self.block_size
        source = self.directory_source(inode)
        nblocks = inode.size // bs
        where = f"{self.source.name}:directory {inode.ino}"
        block0, offset0 = self._dir_block(inode, source, 0)
        root = dirent.dx_root(block0, offset0, self.g.large_dir, where)
        version = root.hash_version
        if version <= 2 and self.g.unsigned_hash:
            version += 3
        target = dirent.name_hash(name, version, self.g.hash_seed)
        if target is None:
            return False
        path: list[list] = [[dirent.dx_entries(block0, dirent.dx_root_start(), offset0, where), 0, offset0]]

        def child_block(level: int) -> int:
            pairs, idx, node_offset = path[level]
            child = pairs[idx][1] & 0x0FFFFFFF
            if child == 0 or child >= nblocks:
                raise CorruptImage(f"{where}: hash-tree points at block {child} of {nblocks}", offset=node_offset)
            return child

        def descend(level: int, leftmost: bool) -> None:
            del path[level + 1 :]
            for depth in range(level, root.levels):
                data, offset = self._dir_block(inode, source, child_block(depth))
                pairs = dirent.dx_entries(data, dirent.dx_node_start(), offset, where)
                path.append([pairs, 0 if leftmost else dirent.pick(pairs, target), offset])

        path[0][1] = dirent.pick(path[0][0], target)
        descend(0, False)
        budget = EntryBudget(where, self._scanned)  # equal hashes can repeat one leaf; bound the walk
        for _step in range(nblocks):
            names = self._block_names(inode, source, child_block(root.levels), budget)
            if name in names:
                return names[name]
            # a run of equal hashes may continue in the next leaf (its hash has the low bit set)
            level = len(path) - 1
            while level >= 0 and path[level][1] + 1 >= len(path[level][0]):
                level -= 1
            if level < 0:
                return None
            next_hash = path[level][0][path[level][1] + 1][0]
            if not next_hash & 1 or next_hash & ~1 != target:
                return None
            path[level][1] += 1
            descend(level, True)
        raise CorruptImage(f"{where}: hash-tree walk visits more leaves than the directory has", offset=offset0)


def _rec_bytes(block_size: int) -> tuple[bytes, ...]:
    """The on-disk rec_len values that mean "the whole block"."""
    if block_size < 65536:
        return (struct.pack("<H", block_size),)
    return (b"\0\0", b"\xff\xff")
