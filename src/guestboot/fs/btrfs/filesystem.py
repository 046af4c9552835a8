"""BtrfsFileSystem: one btrfs volume behind the FileSystem interface ("Subvolumes",
"Inode items", "Directory items" in the btrfs on-disk format page).

The root is the top-level subvolume (tree 5), as upstream GRUB resolves paths ("/" is
the real root, not the default subvolume: GRUB commit "Make / in btrfs refer to real
root"); a directory entry that names a subvolume (a ROOT_ITEM location) crosses into that
subvolume's tree, so "/@/boot/..." and "/.snapshots/1/snapshot/boot/..." resolve the way
GRUB resolves them. ``default_subvolume`` and ``subvolume_root`` serve configurations
that follow the default subvolume (SUSE's GRUB). Inode numbers are made unique across
subvolumes: (subvolume id << 64) | objectid.
"""

from __future__ import annotations

from typing import Iterator, NamedTuple

from ... import crc32c
from ...errors import CorruptImage, LimitExceeded, NotFound
from ...limits import LIMITS
from ...source import ByteSource
from ..base import FileSystem, FileType, Node
from ..budget import EntryBudget, shared_total
from ..cache import LRU
from ..mapped import MappedFile
from .chunks import ChunkMap
from .file import ExtentFile, extent_pieces, plain_runs
from .layout import (
    DIR_ITEM,
    DIR_ITEM_KEY,
    EXTENT_DATA_KEY,
    FS_TREE_OBJECTID,
    INODE_ITEM_KEY,
    INODE_ITEM_SIZE,
    INODE_REF,
    INODE_REF_KEY,
    MAX_KEY_OFFSET,
    MAX_LEVEL,
    ROOT_BACKREF_KEY,
    ROOT_ITEM_KEY,
    ROOT_ITEM_LEVEL_OFFSET,
    ROOT_ITEM_MIN_SIZE,
    ROOT_ITEM_TREE,
    ROOT_ITEM_TREE_OFFSET,
    ROOT_REF,
    ROOT_TREE_DIR_OBJECTID,
    S_IFDIR,
    S_IFLNK,
    S_IFMT,
    S_IFREG,
    InodeItem,
)
from .tree import Budget, Trees

_INODE_CACHE = 2048
_ROOT_CACHE = 256
_NAME_HASH_SEED = 0xFFFFFFFE  # btrfs_name_hash: crc32c register seeded with ~1, no final inversion
_LOCATION_INODE = INODE_ITEM_KEY
_LOCATION_SUBVOL = ROOT_ITEM_KEY


class SubvolRoot(NamedTuple):
    tree: int  # subvolume id
    bytenr: int
    level: int
    dirid: int  # objectid of its top directory (256)


class Inode(NamedTuple):
    """What a Node's ``private`` holds: where the inode lives and its item."""

    root: SubvolRoot
    objectid: int
    item: InodeItem
    offset: int  # byte offset of the inode item (for error messages)


def name_hash(name: bytes) -> int:
    """The key offset of a DIR_ITEM: crc32c of the name seeded with ~1."""
    return crc32c.update(_NAME_HASH_SEED, name)


class BtrfsFileSystem(FileSystem):
    kind = "btrfs"

    def __init__(self, source: ByteSource, trees: Trees, chunks: ChunkMap, root_tree: tuple[int, int], uuid: str,
                 label: str | None, sectorsize: int, warnings: list[str]):
        self.source = source
        self.trees = trees
        self.chunks = chunks
        self.uuid = uuid
        self.label = label
        self.sectorsize = sectorsize
        self.warnings = warnings
        self._root_tree = root_tree
        self._roots: LRU[int, SubvolRoot] = LRU(_ROOT_CACHE)
        self._inodes: LRU[tuple[int, int], Inode] = LRU(_INODE_CACHE)
        self._scanned = shared_total()  # the image's: partitions may alias
        self._default_root: tuple[str | None] | None = None  # default_root_path(), once found

    # --- logical reads --------------------------------------------------------------------------

    def read_logical(self, logical: int, length: int) -> bytes:
        """``length`` bytes at a logical address (first good copy; data is not checksummed)."""
        parts = []
        while length:  # each step maps at least one byte
            avail, copies = self.chunks.copies(logical, length)
            parts.append(self.source.pread(copies[0], avail))
            logical += avail
            length -= avail
        return b"".join(parts)

    # --- subvolumes -----------------------------------------------------------------------------

    def subvolume(self, tree: int) -> SubvolRoot:
        """The root of subvolume ``tree`` from its newest ROOT_ITEM in the root tree."""
        cached = self._roots.get(tree)
        if cached is not None:
            return cached
        bytenr, level = self._root_tree
        found = self.trees.last(bytenr, level, (tree, ROOT_ITEM_KEY, 0), (tree, ROOT_ITEM_KEY, MAX_KEY_OFFSET),
                                f"{self.source.name}: root tree")
        if found is None:
            raise CorruptImage(f"btrfs: subvolume {tree} has no root item", where=self.source.name)
        _key, raw, offset = found
        if len(raw) < ROOT_ITEM_MIN_SIZE:
            raise CorruptImage(f"btrfs: root item of subvolume {tree} is {len(raw)} bytes", where=self.source.name,
                               offset=offset)
        _generation, dirid, root_bytenr = ROOT_ITEM_TREE.unpack_from(raw, ROOT_ITEM_TREE_OFFSET)
        root_level = raw[ROOT_ITEM_LEVEL_OFFSET]
        if root_level >= MAX_LEVEL:
            raise CorruptImage(f"btrfs: subvolume {tree} tree of level {root_level}", where=self.source.name,
                               offset=offset + ROOT_ITEM_LEVEL_OFFSET)
        root = SubvolRoot(tree, root_bytenr, root_level, dirid)
        self._roots.put(tree, root)
        return root

    def default_subvolume(self) -> int:
        """The id of the default subvolume ("default" in the root tree directory; 5 when
        there is none), the one a plain ``mount`` and SUSE's GRUB use."""
        bytenr, level = self._root_tree
        for location, _kind in self._dir_items(SubvolRoot(1, bytenr, level, ROOT_TREE_DIR_OBJECTID),
                                               ROOT_TREE_DIR_OBJECTID, b"default"):
            return location[0]
        return FS_TREE_OBJECTID

    def default_root_path(self) -> str | None:
        """The default subvolume's path from the top-level subvolume, None when it is the
        top-level one. A default subvolume linked in no directory has no path: NotFound."""
        if self._default_root is None:
            tree = self.default_subvolume()
            path = None if tree == FS_TREE_OBJECTID else self.subvolume_path(tree).decode("utf-8", "surrogateescape")
            self._default_root = (path,)
        return self._default_root[0]

    def subvolume_path(self, tree: int) -> bytes:
        """Where subvolume ``tree`` is linked, as a path from the top-level subvolume
        (b"/" for 5, b"/@/.snapshots/1/snapshot" …): its ROOT_BACKREF (parent subvolume,
        directory, name) and the INODE_REFs of that directory up to the parent's top,
        repeated up to subvolume 5; bounded by LIMITS.max_path_components. NotFound for
        a subvolume that is linked nowhere (deleted, or never given a name)."""
        bytenr, level = self._root_tree
        parts: list[bytes] = []
        seen: set[int] = set()
        while tree != FS_TREE_OBJECTID:
            if tree in seen or len(parts) > LIMITS.max_path_components:
                raise LimitExceeded(f"btrfs: the path of subvolume {tree} is longer than"
                                    f" {LIMITS.max_path_components} components (max_path_components)",
                                    where=self.source.name)
            seen.add(tree)
            found = self.trees.first(bytenr, level, (tree, ROOT_BACKREF_KEY, 0), (tree, ROOT_BACKREF_KEY, MAX_KEY_OFFSET),
                                     f"{self.source.name}: root tree")
            if found is None:
                raise NotFound(f"btrfs: subvolume {tree} is linked in no directory", where=self.source.name)
            (_tree, _type, parent), raw, offset = found
            dirid, _sequence, name_len = ROOT_REF.unpack_from(raw) if len(raw) >= ROOT_REF.size else (0, 0, 1 << 16)
            if ROOT_REF.size + name_len > len(raw) or name_len == 0:
                raise CorruptImage(f"btrfs: root back reference of subvolume {tree} does not fit",
                                   where=self.source.name, offset=offset)
            parts.append(raw[ROOT_REF.size : ROOT_REF.size + name_len])
            parent_root = self.subvolume(parent)
            while dirid != parent_root.dirid:  # up the parent's directories to its top
                if len(parts) > LIMITS.max_path_components:
                    raise LimitExceeded(f"btrfs: the path of subvolume {tree} is longer than"
                                        f" {LIMITS.max_path_components} components (max_path_components)",
                                        where=self.source.name)
                ref = self.trees.first(parent_root.bytenr, parent_root.level, (dirid, INODE_REF_KEY, 0),
                                       (dirid, INODE_REF_KEY, MAX_KEY_OFFSET),
                                       f"{self.source.name}: subvolume {parent}")
                if ref is None:
                    raise CorruptImage(f"btrfs: directory {dirid} of subvolume {parent} has no name",
                                       where=self.source.name)
                (_dir, _type, up), raw, offset = ref
                _index, name_len = INODE_REF.unpack_from(raw) if len(raw) >= INODE_REF.size else (0, 1 << 16)
                if INODE_REF.size + name_len > len(raw) or name_len == 0 or up == dirid:
                    raise CorruptImage(f"btrfs: name of directory {dirid} of subvolume {parent} does not fit",
                                       where=self.source.name, offset=offset)
                parts.append(raw[INODE_REF.size : INODE_REF.size + name_len])
                dirid = up
            tree = parent
        return b"/" + b"/".join(reversed(parts))

    def view(self, tree: int) -> "SubvolumeView":
        """This file system seen from subvolume ``tree``: its root() is that subvolume's top
        (what SUSE's GRUB does with the default subvolume when btrfs_relative_path is set)."""
        self.subvolume_root(tree)  # exists, and is a directory
        return SubvolumeView(self, tree)

    def subvolume_root(self, tree: int) -> Node:
        """The top directory of subvolume ``tree``."""
        root = self.subvolume(tree)
        node = self._node(root, root.dirid)
        if node.type is not FileType.DIR:
            raise CorruptImage(f"btrfs: top of subvolume {tree} is not a directory", where=self.source.name,
                               offset=node.private.offset)
        return node

    # --- inodes ---------------------------------------------------------------------------------

    def inode(self, root: SubvolRoot, objectid: int) -> Inode:
        key = (root.tree, objectid)
        cached = self._inodes.get(key)
        if cached is not None:
            return cached
        found = self.trees.first(root.bytenr, root.level, (objectid, INODE_ITEM_KEY, 0),
                                 (objectid, INODE_ITEM_KEY, 0), f"{self.source.name}: subvolume {root.tree}")
        if found is None:
            raise CorruptImage(f"btrfs: subvolume {root.tree} has no inode {objectid}", where=self.source.name)
        _key, raw, offset = found
        if len(raw) < INODE_ITEM_SIZE:
            raise CorruptImage(f"btrfs: inode {objectid} item of {len(raw)} bytes", where=self.source.name,
                               offset=offset)
        inode = Inode(root, objectid, InodeItem.from_bytes(raw), offset)
        self._inodes.put(key, inode)
        return inode

    def _node(self, root: SubvolRoot, objectid: int) -> Node:
        inode = self.inode(root, objectid)
        kind = inode.item.mode & S_IFMT
        ftype = {S_IFREG: FileType.REG, S_IFDIR: FileType.DIR, S_IFLNK: FileType.LNK}.get(kind, FileType.OTHER)
        return Node((root.tree << 64) | objectid, ftype, inode.item.size, inode.item.mode, inode.item.mtime,
                    private=inode)

    def root(self) -> Node:
        return self.subvolume_root(FS_TREE_OBJECTID)

    # --- directories ----------------------------------------------------------------------------

    def _location(self, root: SubvolRoot, raw: bytes, pos: int, offset: int, what: str) -> tuple[Node, bytes, int]:
        """The node a dir item at ``pos`` points to, its name and the item's size."""
        objectid, kind, _key_offset, _transid, data_len, name_len, _type = DIR_ITEM.unpack_from(raw, pos)
        end = pos + DIR_ITEM.size + name_len + data_len
        if end > len(raw) or name_len == 0:
            raise CorruptImage(f"{what}: directory item with a {name_len}-byte name does not fit", offset=offset + pos)
        name = raw[pos + DIR_ITEM.size : pos + DIR_ITEM.size + name_len]
        if kind == _LOCATION_SUBVOL:
            return self.subvolume_root(objectid), name, end - pos
        if kind != _LOCATION_INODE:
            raise CorruptImage(f"{what}: directory entry {name!r} points at key type {kind}", offset=offset + pos)
        return self._node(root, objectid), name, end - pos

    def _dir_items(self, root: SubvolRoot, dirid: int, name: bytes) -> Iterator[tuple[tuple[int, int], int]]:
        """((objectid, location type), offset) of entries called ``name`` in a directory's
        DIR_ITEMs (several names may share a hash)."""
        key = (dirid, DIR_ITEM_KEY, name_hash(name))
        what = f"{self.source.name}: directory {dirid} of subvolume {root.tree}"
        for _key, raw, offset in self.trees.items(root.bytenr, root.level, key, key, Budget(what)):
            pos = 0
            while pos < len(raw):  # each step advances by at least the item header
                if pos + DIR_ITEM.size > len(raw):
                    raise CorruptImage(f"{what}: directory item cut short", offset=offset + pos)
                objectid, kind, _o, _t, data_len, name_len, _type = DIR_ITEM.unpack_from(raw, pos)
                start = pos + DIR_ITEM.size
                if start + name_len + data_len > len(raw):
                    raise CorruptImage(f"{what}: directory item does not fit", offset=offset + pos)
                if raw[start : start + name_len] == name:
                    yield (objectid, kind), offset + pos
                pos = start + name_len + data_len

    def _directory(self, directory: Node) -> Inode:
        if directory.type is not FileType.DIR:
            raise NotFound(f"inode {directory.ino & ((1 << 64) - 1)} is not a directory", where=self.source.name)
        return directory.private

    def readdir(self, directory: Node) -> Iterator[tuple[bytes, Node]]:
        """Entries in GRUB's order: by name hash (the DIR_ITEM keys), not by creation (the
        DIR_INDEX keys a kernel readdir uses), so that anything order-dependent in a boot
        configuration sees what GRUB sees."""
        inode = self._directory(directory)
        root = inode.root
        what = f"{self.source.name}: directory {inode.objectid} of subvolume {root.tree}"
        entries = EntryBudget(what, self._scanned)
        walk = Budget(what)
        lo = (inode.objectid, DIR_ITEM_KEY, 0)
        hi = (inode.objectid, DIR_ITEM_KEY, MAX_KEY_OFFSET)
        for _key, raw, offset in self.trees.items(root.bytenr, root.level, lo, hi, walk):
            entries.scan(len(raw))
            pos = 0
            while pos < len(raw):  # several names may share a hash; each step eats a header
                if pos + DIR_ITEM.size > len(raw):
                    raise CorruptImage(f"{what}: directory item cut short", offset=offset + pos)
                entries.entry()
                node, name, size = self._location(root, raw, pos, offset, what)
                yield name, node
                pos += size

    def lookup(self, directory: Node, name: bytes) -> Node | None:
        inode = self._directory(directory)
        if not name or b"/" in name or len(name) > 255:
            return None
        root = inode.root
        what = f"{self.source.name}: directory {inode.objectid} of subvolume {root.tree}"
        for (objectid, kind), offset in self._dir_items(root, inode.objectid, name):
            if kind == _LOCATION_SUBVOL:
                return self.subvolume_root(objectid)
            if kind != _LOCATION_INODE:
                raise CorruptImage(f"{what}: directory entry {name!r} points at key type {kind}", offset=offset)
            return self._node(root, objectid)
        return None

    # --- contents -------------------------------------------------------------------------------

    def _contents(self, inode: Inode) -> ByteSource:
        root = inode.root
        size = inode.item.size
        name = f"{self.source.name}:subvolume {root.tree} inode {inode.objectid}"
        lo = (inode.objectid, EXTENT_DATA_KEY, 0)
        hi = (inode.objectid, EXTENT_DATA_KEY, MAX_KEY_OFFSET)
        items = ((key[2], raw, offset)
                 for key, raw, offset in self.trees.items(root.bytenr, root.level, lo, hi, Budget(name)))
        pieces = extent_pieces(self, items, size, name)
        if all(p.kind in ("plain", "zero") for p in pieces):
            return MappedFile(self.source, size, 1, plain_runs(self, pieces, name), name)
        return ExtentFile(self, size, pieces, name)

    def open(self, node: Node) -> ByteSource:
        if node.type is not FileType.REG:
            raise NotFound(f"inode {node.ino & ((1 << 64) - 1)} is not a regular file", where=self.source.name)
        return self._contents(node.private)

    def readlink(self, node: Node) -> bytes:
        inode: Inode = node.private
        if node.type is not FileType.LNK:
            raise NotFound(f"inode {inode.objectid} is not a symlink", where=self.source.name)
        if inode.item.size > LIMITS.max_symlink_size:
            raise LimitExceeded(f"symlink inode {inode.objectid}: target of {inode.item.size} bytes (max_symlink_size)",
                                where=self.source.name)
        return self._contents(inode).pread(0, inode.item.size)


class SubvolumeView(FileSystem):
    """A BtrfsFileSystem whose root is one subvolume's top directory; everything else is
    the file system's own (paths may still cross into other subvolumes below it)."""

    kind = "btrfs"

    def __init__(self, fs: BtrfsFileSystem, tree: int):
        self.fs = fs
        self.tree = tree
        self.source = fs.source
        self.uuid = fs.uuid
        self.label = fs.label
        self.warnings = fs.warnings

    def root(self) -> Node:
        return self.fs.subvolume_root(self.tree)

    def lookup(self, directory: Node, name: bytes) -> Node | None:
        return self.fs.lookup(directory, name)

    def readdir(self, directory: Node) -> Iterator[tuple[bytes, Node]]:
        return self.fs.readdir(directory)

    def readlink(self, node: Node) -> bytes:
        return self.fs.readlink(node)

    def open(self, node: Node) -> ByteSource:
        return self.fs.open(node)
