"""IsoFileSystem: one ISO 9660 volume (read-only) behind the FileSystem interface.

Directories (ECMA-119 6.8, 9.1) are read sector by sector: a record never spans a logical
sector, a zero length byte ends the records of a sector, "." and ".." records are skipped.
A file larger than one extent is several consecutive records with the multi-extent flag
(9.1.6 bit 7), read as one file in record order (as GRUB and Linux do).

Names follow GRUB: Rock Ridge NM names when the volume has Rock Ridge; else Joliet's UCS-2
names (UTF-8 here) when a Joliet descriptor exists; else plain names, which GRUB shows in
lower case without the ";1" version and without a trailing "." and matches without regard
to case. Joliet and Rock Ridge names keep their case and match exactly; a ";version" is
cut from Joliet names too.

Guest data decides nothing unbounded: directory bytes and entries count against the
directory-scan budgets (max_dir_bytes, max_dir_entries, max_dir_bytes_total, and the
records parsed in all against max_dir_entries_total: a listing is parsed once and kept
while small, so only hostile directories are read again and again), a
multi-extent chain against max_file_runs, continuation areas against
max_susp_continuations, directory depth against max_path_components; a directory record
that points at the extent of an enclosing directory (a cycle) is CorruptImage.
"""

from __future__ import annotations

from typing import Iterator, NamedTuple

from ...errors import CorruptImage, LimitExceeded, NotFound, Unsupported
from ...limits import LIMITS
from ...source import ByteSource, SliceSource, ZeroSource
from ..base import FileSystem, FileType, Node
from ..budget import EntryBudget, shared_total
from ..cache import LRU
from ..mapped import MappedFile
from . import descriptors, susp
from .eltorito import BootImage, read_catalog
from ..dates import days_from_civil
from .layout import (
    BLOCK_SIZE,
    DIR_RECORD,
    DIR_RECORD_MIN,
    FLAG_MULTI_EXTENT,
    ID_PARENT,
    ID_SELF,
    RECORD_DATE,
    ROOT_RECORD_OFFSET,
    DirRecord,
    VolumeDescriptor,
)

S_IFMT = 0o170000
S_IFDIR = 0o040000
S_IFREG = 0o100000
S_IFLNK = 0o120000
_DEFAULT_MODE = {FileType.DIR: S_IFDIR | 0o555, FileType.REG: S_IFREG | 0o444}
LISTING_CACHE = 64  # directories whose parsed listing is kept …
LISTING_CACHE_ENTRIES = 256  # … when they have at most this many entries (at most ~16k nodes held);
# a larger listing is kept alone, until the next large one is parsed

NAMES_ROCK_RIDGE = "rock ridge"
NAMES_JOLIET = "joliet"
NAMES_PLAIN = "iso9660"


class IsoEntry(NamedTuple):
    """The driver's private state of a node."""

    extents: tuple[tuple[int, int], ...]  # (byte offset in the volume, length), in file order
    ancestors: tuple[int, ...]  # extents (byte offsets) of the enclosing directories, root first
    record: int  # byte offset of the (first) directory record
    symlink: bytes | None
    symlink_long: bool
    interleaved: bool


class Listed(NamedTuple):
    name: bytes
    folded: bool  # a plain ISO 9660 name: shown in lower case, matched without regard to case
    node: Node


class Listing:
    """A directory parsed once: entries in order, and the first entry of each name."""

    __slots__ = ("entries", "exact", "folded")

    def __init__(self, entries: list[Listed]):
        self.entries = entries
        self.exact: dict[bytes, int] = {}
        self.folded: dict[bytes, int] = {}
        for index, entry in enumerate(entries):
            self.exact.setdefault(entry.name, index)
            if entry.folded:
                self.folded.setdefault(entry.name, index)

    def find(self, name: bytes) -> Node | None:
        hits = [i for i in (self.exact.get(name), self.folded.get(name.lower()) if self.folded else None)
                if i is not None]
        return self.entries[min(hits)].node if hits else None


def record_time(raw: bytes) -> int:
    """9.1.5 recording date as Unix time; 0 when the fields are out of range."""
    years, month, day, hour, minute, second, offset = RECORD_DATE.unpack(raw)
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60 and second < 61):
        return 0
    days = days_from_civil(1900 + years, month, day)
    return days * 86400 + hour * 3600 + minute * 60 + second - offset * 15 * 60


class IsoFileSystem(FileSystem):
    kind = "iso9660"

    def __init__(self, source: ByteSource, found: descriptors.DescriptorSet):
        self.source = source
        self.descriptors = found
        self.warnings = []
        self._scanned = shared_total()  # the image's: partitions may alias
        self._listings: LRU[int, Listing] = LRU(LISTING_CACHE)
        self._big: tuple[int, Listing] | None = None  # the last listing too large for the cache
        self._parsed = 0  # entries parsed in all directories (max_dir_entries_total)
        self.rock_ridge = False
        self.susp_skip = 0
        vd = found.primary
        self._detect_rock_ridge(vd)
        if not self.rock_ridge and found.joliet is not None:
            vd = found.joliet
            self._detect_rock_ridge(vd)  # GRUB looks again in the Joliet tree
        self.vd: VolumeDescriptor = vd
        self.joliet = vd is found.joliet
        self.names = NAMES_ROCK_RIDGE if self.rock_ridge else NAMES_JOLIET if self.joliet else NAMES_PLAIN
        self.label = descriptors.label(vd, self.joliet)
        self.uuid = descriptors.uuid(vd)
        if found.primary.space_size * BLOCK_SIZE > source.size:
            self.warnings.append(
                f"{source.name}: the volume has {found.primary.space_size} blocks of {BLOCK_SIZE} bytes but the"
                f" image holds {source.size} bytes; files past the end cannot be read")

    # --- the root and Rock Ridge detection ------------------------------------------------------

    def _root_record(self, vd: VolumeDescriptor) -> DirRecord:
        offset = vd.offset + ROOT_RECORD_OFFSET
        raw = vd.root_record
        if raw[0] < DIR_RECORD_MIN or raw[32] != 1:
            raise CorruptImage(f"root directory record: length {raw[0]}, identifier length {raw[32]}",
                               where=self.source.name, offset=offset)
        record = DirRecord.from_bytes(raw, 0, offset)
        if not record.is_dir:
            raise CorruptImage("root directory record is not a directory", where=self.source.name, offset=offset)
        return record

    def _detect_rock_ridge(self, vd: VolumeDescriptor) -> None:
        """GRUB's rule: the "." record of the root starts its System Use area with SP, and
        an ER entry follows (in that area or its continuations)."""
        root = self._root_record(vd)
        start, size = self._extent(root, "root directory")
        if size < DIR_RECORD_MIN:
            raise CorruptImage(f"root directory of {size} bytes", where=self.source.name, offset=root.offset)
        head = self.source.pread(start, min(size, BLOCK_SIZE))
        dot = self._record_at(head, 0, start, "root directory")
        if dot is None:
            raise CorruptImage("root directory has no '.' record", where=self.source.name, offset=start)
        skip = susp.sp_skip(dot.system_use)
        if skip is None:
            return
        su_offset = dot.offset + dot.length - len(dot.system_use)
        where = f"{self.source.name}: root directory"
        for entry in susp.entries(self.source, dot.system_use, su_offset, None, where):
            if entry.signature == b"ER":
                self.rock_ridge = True
                self.susp_skip = skip
                return

    def root(self) -> Node:
        record = self._root_record(self.vd)
        start, size = self._extent(record, "root directory")
        entry = IsoEntry(((start, size),), (), record.offset, None, False, False)
        return Node(start, FileType.DIR, size, _DEFAULT_MODE[FileType.DIR], record_time(record.date), entry)

    def boot_catalog(self) -> tuple[BootImage, ...]:
        """The El Torito boot images (empty without a boot record); CorruptImage when the
        catalog is damaged."""
        if self.descriptors.boot_catalog is None:
            return ()
        return read_catalog(self.source, self.descriptors.boot_catalog, self.source.name)

    # --- records -----------------------------------------------------------------------------

    def _extent(self, record: DirRecord, what: str) -> tuple[int, int]:
        """(byte offset, length) of a record's data, checked against the volume."""
        start = (record.extent + record.xattr_blocks) * BLOCK_SIZE  # 9.5: data after the attribute record
        if record.size and start + record.size > self.source.size:
            raise CorruptImage(
                f"{what}: extent of {record.size} bytes at block {record.extent} lies past the end"
                f" ({self.source.size} bytes)", where=self.source.name, offset=record.offset)
        return start, record.size

    def _record_at(self, sector: bytes, pos: int, base: int, where: str) -> DirRecord | None:
        """The record at ``sector[pos:]``, or None at the zero padding that ends a sector."""
        length = sector[pos]
        if length == 0:
            return None
        if length < DIR_RECORD_MIN or pos + length > len(sector):
            raise CorruptImage(f"{where}: directory record of {length} bytes (at least {DIR_RECORD_MIN}, within its"
                               f" sector)", where=self.source.name, offset=base + pos)
        id_len = sector[pos + DIR_RECORD.size - 1]
        if id_len == 0 or DIR_RECORD.size + id_len > length:
            raise CorruptImage(f"{where}: identifier of {id_len} bytes in a record of {length}",
                               where=self.source.name, offset=base + pos)
        return DirRecord.from_bytes(sector, pos, base + pos)

    def _records(self, directory: IsoEntry, budget: EntryBudget, where: str) -> Iterator[DirRecord]:
        start, size = directory.extents[0]
        for sector_start in range(start, start + size, BLOCK_SIZE):
            length = min(BLOCK_SIZE, start + size - sector_start)
            budget.scan(length)
            sector = self.source.pread(sector_start, length)
            pos = 0
            while pos < length:
                record = self._record_at(sector, pos, sector_start, where)
                if record is None:
                    break
                budget.entry()
                self._parsed += 1
                if self._parsed > LIMITS.max_dir_entries_total:
                    raise LimitExceeded(f"{where}: more than {LIMITS.max_dir_entries_total} directory records read in"
                                        " all (max_dir_entries_total)", where=self.source.name)
                yield record
                pos += record.length

    # --- directories --------------------------------------------------------------------------

    def _listing(self, directory: Node) -> Listing:
        if directory.type is not FileType.DIR:
            raise NotFound(f"node {directory.ino} is not a directory", where=self.source.name)
        entry: IsoEntry = directory.private
        key = entry.extents[0][0]
        cached = self._listings.get(key)
        if cached is not None:
            return cached
        if self._big is not None and self._big[0] == key:
            return self._big[1]
        listing = Listing(list(self._parse(directory)))
        if len(listing.entries) <= LISTING_CACHE_ENTRIES:
            self._listings.put(key, listing)
        else:
            self._big = (key, listing)
        return listing

    def _parse(self, directory: Node) -> Iterator[Listed]:
        parent: IsoEntry = directory.private
        where = f"directory at block {parent.extents[0][0] // BLOCK_SIZE}"
        budget = EntryBudget(f"{self.source.name}: {where}", self._scanned)
        group: list[DirRecord] = []
        for record in self._records(parent, budget, where):
            if group:
                group.append(record)
                if len(group) > LIMITS.max_file_runs:
                    raise LimitExceeded(f"{where}: a multi-extent file of more than {LIMITS.max_file_runs} records"
                                        " (max_file_runs)", where=self.source.name, offset=group[0].offset)
            elif record.ident in (ID_SELF, ID_PARENT):
                continue
            else:
                group = [record]
            if record.flags & FLAG_MULTI_EXTENT:
                continue
            listed = self._entry(group, parent, budget, where)
            group = []
            if listed is not None:
                yield listed
        if group:
            raise CorruptImage(f"{where}: multi-extent file whose last record says more extents follow",
                               where=self.source.name, offset=group[-1].offset)

    def _name(self, record: DirRecord, rr: susp.RockRidge | None) -> tuple[bytes, bool]:
        if rr is not None and rr.name is not None:
            return rr.name, False
        ident = record.ident
        if self.joliet:
            text = ident[: len(ident) & ~1].decode("utf-16-be", "replace")
            if ";" in text:
                text = text.rpartition(";")[0]
            return text.encode("utf-8"), False
        ident = ident.split(b"\0", 1)[0]
        if b";" in ident:
            ident = ident.rpartition(b";")[0]
        ident = ident.lower()
        if ident.endswith(b"."):
            ident = ident[:-1]
        return ident, True

    def _entry(self, group: list[DirRecord], parent: IsoEntry, budget: EntryBudget, where: str) -> Listed | None:
        first = group[0]
        rr = None
        if self.rock_ridge:
            area = first.system_use[self.susp_skip :]
            su_offset = first.offset + first.length - len(area)
            rr = susp.rock_ridge(susp.entries(self.source, area, su_offset, budget, where), where)
        name, folded = self._name(first, rr)
        if not name or name in (b".", b".."):
            return None
        if rr is not None and rr.mode is not None:
            kind = rr.mode & S_IFMT
            ftype = {S_IFDIR: FileType.DIR, S_IFREG: FileType.REG, S_IFLNK: FileType.LNK}.get(kind, FileType.OTHER)
            mode = rr.mode
        else:
            ftype = FileType.DIR if first.is_dir else FileType.REG
            mode = _DEFAULT_MODE[ftype]
        what = f"{where}: {name.decode('utf-8', 'backslashreplace')!r}"
        extents = tuple(self._extent(record, what) for record in group)
        ancestors: tuple[int, ...] = ()
        if ftype is FileType.DIR:
            if len(group) > 1:
                raise CorruptImage(f"{what}: a directory spread over {len(group)} multi-extent records",
                                   where=self.source.name, offset=first.offset)
            ancestors = parent.ancestors + (parent.extents[0][0],)
            if extents[0][0] in ancestors:
                raise CorruptImage(f"{what}: directory cycle (points at the extent of an enclosing directory)",
                                   where=self.source.name, offset=first.offset)
            if len(ancestors) > LIMITS.max_path_components:
                raise LimitExceeded(f"{what}: directories nested more than {LIMITS.max_path_components} deep"
                                    " (max_path_components)", where=self.source.name, offset=first.offset)
        symlink = rr.symlink if rr is not None else None
        entry = IsoEntry(extents, ancestors, first.offset, symlink, rr is not None and rr.symlink_long,
                         any(r.unit_size or r.gap_size for r in group))
        if ftype is FileType.LNK:
            size = len(symlink) if symlink is not None else 0
        else:
            size = sum(length for _start, length in extents)
        ino = extents[0][0] if ftype is FileType.DIR else first.offset
        return Listed(name, folded, Node(ino, ftype, size, mode, record_time(first.date), entry))

    def readdir(self, directory: Node) -> Iterator[tuple[bytes, Node]]:
        for listed in self._listing(directory).entries:
            yield listed.name, listed.node

    def lookup(self, directory: Node, name: bytes) -> Node | None:
        if not name or b"/" in name:
            return None
        return self._listing(directory).find(name)

    # --- files and symlinks -------------------------------------------------------------------

    def open(self, node: Node) -> ByteSource:
        if node.type is not FileType.REG:
            raise NotFound(f"node {node.ino} is not a regular file", where=self.source.name)
        entry: IsoEntry = node.private
        name = f"{self.source.name}:file at {entry.record:#x}"
        if entry.interleaved:
            raise Unsupported("interleaved file (file unit size / interleave gap, ECMA-119 6.4.3)",
                              where=self.source.name, offset=entry.record)
        if len(entry.extents) == 1:
            start, size = entry.extents[0]
            if size == 0:  # an empty file's extent may be anywhere, even past the end
                return ZeroSource(0, name=name)
            return SliceSource(self.source, start, size, name=name)
        return MappedFile(self.source, sum(size for _start, size in entry.extents), 1, _byte_runs(entry.extents),
                          name)

    def readlink(self, node: Node) -> bytes:
        entry: IsoEntry = node.private
        if node.type is not FileType.LNK:
            raise NotFound(f"node {node.ino} is not a symlink", where=self.source.name)
        if entry.symlink_long:
            raise LimitExceeded(f"symlink target longer than {LIMITS.max_symlink_size} bytes (max_symlink_size)",
                                where=self.source.name, offset=entry.record)
        if entry.symlink is None:
            raise CorruptImage("Rock Ridge symlink without an SL entry", where=self.source.name,
                               offset=entry.record)
        return entry.symlink


def _byte_runs(extents: tuple[tuple[int, int], ...]) -> Iterator[tuple[int, int, int]]:
    """A multi-extent file's extents as MappedFile runs of bytes, one after the other."""
    logical = 0
    for start, size in extents:
        if size:
            yield logical, size, start
            logical += size
