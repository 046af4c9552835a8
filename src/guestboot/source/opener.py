"""How an image format asks for another file (a qcow2 backing file or external data file,
a VMDK extent, a VHD/VHDX parent): through one narrow interface, so that the caller decides.

The library never opens a host path by name on its own. A format that needs another file
calls ``opener.open_related(requested_name, by)``:

- ``REFUSE`` (the default) refuses every request, naming the file the image asked for;
- ``DirectoryOpener(DIR)`` (the CLI's ``--allow-backing-dir DIR``) opens files from DIR and
  only from it: a relative name is taken from the directory of the file that names it, as
  QEMU does, when that file lies in DIR (else from DIR itself), an absolute name must lie
  inside DIR; ``..`` may not climb out of DIR; a symlink is followed only to a place
  inside DIR: we read it and resolve it ourselves, component by component (at most
  LIMITS.max_symlink_hops), and the kernel never follows one (every open is O_NOFOLLOW
  beneath the directory's descriptor, so a symlink swapped in meanwhile is refused, not
  followed); ``..`` is applied to the resolved path, by name; names with
  a protocol prefix (``json:``, ``nbd://``, ``file:``) are refused, as are anything but
  regular files and block devices. Files it opened are kept open and reused, so a parent
  process can open them all before it drops privileges (see ``preopen``) and the
  deprivileged child only uses the descriptors it inherited.

Images whose related files are images again (backing chains, differencing parents) open
them through ``open_related_image`` in source.formats, which bounds the chain's depth
(LIMITS.max_backing_depth) and refuses a file that is already in it (a loop).
"""

from __future__ import annotations

import os
import re
import stat

from ..errors import CorruptImage, LimitExceeded, NotFound, PermissionDenied, Unsupported, UsageError
from ..limits import LIMITS
from .base import ByteSource, FileSource

# "json:{...}", "nbd://host", "file:/etc/shadow", "http://…": QEMU treats a name with a
# protocol prefix as a protocol, not a file name (block.c, path_has_protocol)
_PROTOCOL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")


class Opener:
    """The default: no image may make us open another file."""

    __slots__ = ()

    def open_related(self, requested_name: str, by: str, referrer: ByteSource | None = None) -> ByteSource:
        """A source for the file ``requested_name`` that the image ``by`` (the file
        ``referrer``, when known) refers to."""
        raise Unsupported(
            f"the image asks for another file, {requested_name!r}; opening files an image names is not"
            " allowed here",
            where=by,
        )

    def close(self) -> None:
        """Close what this opener opened (nothing, here)."""

    def seal(self) -> None:
        """From now on, answer only what was asked before (nothing new is opened): called
        once the files are opened and a sandboxed child is about to read the guest."""

    def descriptors(self) -> tuple[int, ...]:
        """The descriptors of the files opened so far (a sandboxed child keeps them)."""
        return ()


REFUSE = Opener()


class DirectoryOpener(Opener):
    """Files an image names, opened from one directory the host names and from nowhere else."""

    __slots__ = ("directory", "_dir_fd", "_opened", "_places", "_scratch", "_asked", "_sealed")

    def __init__(self, directory: str):
        try:
            self._dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise NotFound(f"no such directory: {directory}") from None
        except NotADirectoryError:
            raise UsageError(f"{directory} is not a directory") from None
        except PermissionError:
            raise PermissionDenied(f"cannot open directory {directory}: permission denied") from None
        self.directory = directory
        self._opened: dict[str, FileSource] = {}
        self._places: dict[tuple, tuple[str, ...]] = {}  # file identity -> its directory inside DIR
        self._scratch: int | None = None  # a directory descriptor held while resolving symlinks
        self._asked: dict[tuple, str] = {}  # (where the name starts, name asked for) -> its key in _opened
        self._sealed = False

    def __enter__(self) -> "DirectoryOpener":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def descriptors(self) -> tuple[int, ...]:
        return tuple(source.fd for source in self._opened.values())

    def close(self) -> None:
        for source in self._opened.values():
            os.close(source.fd)
        self._opened.clear()
        if self._dir_fd >= 0:
            os.close(self._dir_fd)
            self._dir_fd = -1

    def _place(self, referrer: ByteSource | None) -> tuple[str, ...]:
        """The directory, as components inside DIR, of the file that names another: where
        a relative name starts. DIR itself for a file outside DIR or of unknown place.
        Kept by identity, so a sandboxed child (no /proc) finds what the parent learnt."""
        if referrer is None:
            return ()
        key = identity(referrer)
        if key not in self._places:
            place: tuple[str, ...] = ()
            try:  # the kernel's name for the descriptor the host opened: the file's real path
                path = os.readlink(f"/proc/self/fd/{referrer.fd}") if isinstance(getattr(referrer, "fd", None),
                                                                                  int) else ""
            except OSError:
                path = ""
            root = os.path.realpath(self.directory).rstrip("/")
            parent = os.path.dirname(path)
            if path.startswith("/") and (parent == root or parent.startswith(root + "/")):
                place = tuple(part for part in parent[len(root):].split("/") if part)
            self._places[key] = place
        return self._places[key]

    def _inside(self, path: str) -> list[str] | None:
        """An absolute path as components inside the directory, or None when it is outside."""
        for base in {os.path.abspath(self.directory), os.path.realpath(self.directory)}:
            base = base.rstrip("/")
            if path == base or path.startswith(base + "/"):
                return [part for part in path[len(base) :].split("/") if part]
        return None

    def _refuse(self, shown: str, by: str, how: str) -> PermissionDenied:
        return PermissionDenied(f"the image asks for {shown}, {how} the directory allowed for related files"
                                f" ({self.directory}); refused", where=by)

    def _components(self, requested_name: str, by: str, start: tuple[str, ...]) -> list[str]:
        """The path of the file inside the directory, one component at a time, symlinks
        resolved (each inside the directory) and ``..`` applied by name."""
        shown = repr(requested_name)
        if not requested_name or "\0" in requested_name:
            raise CorruptImage(f"the image names another file by an empty or NUL-holding name {shown}", where=by)
        if _PROTOCOL.match(requested_name):
            raise Unsupported(f"the image asks for {shown}, a protocol or URL, not a file; refused", where=by)
        pending = requested_name.split("/")
        resolved = list(start)
        if os.path.isabs(requested_name):
            inside = self._inside(requested_name)
            if inside is None:
                raise self._refuse(shown, by, "outside")
            pending, resolved = inside, []
        hops = 0
        while pending:  # each step takes one component or replaces one symlink by its target
            part = pending.pop(0)
            if part in ("", "."):
                continue
            if part == "..":
                if not resolved:
                    raise self._refuse(shown, by, "through '..', out of")
                resolved.pop()
                continue
            try:  # the text of a symlink, never what it points to
                target = os.readlink(part, dir_fd=self._walk(resolved)) if self._dir_fd >= 0 else None
            except OSError:  # not a symlink (EINVAL), or missing: opening it says so
                target = None
            if target is None:
                resolved.append(part)
                continue
            hops += 1
            if hops > LIMITS.max_symlink_hops:
                raise LimitExceeded(f"{shown}: more than {LIMITS.max_symlink_hops} symlinks (max_symlink_hops)",
                                    where=by)
            if os.path.isabs(target):
                inside = self._inside(target)
                if inside is None:
                    raise self._refuse(shown, by, "through a symlink to a place outside")
                pending, resolved = inside + pending, []
            else:
                pending = target.split("/") + pending
        if not resolved:
            raise self._refuse(shown, by, "not a file inside")
        return resolved

    def _walk(self, parts: list[str]) -> int:
        """A descriptor of the directory ``parts`` inside DIR, walked with O_NOFOLLOW, to
        read a symlink in; held in ``_scratch`` until the next call or the end of the
        resolution. DIR's own descriptor for no parts."""
        if not parts:
            return self._dir_fd
        if self._scratch is not None:
            os.close(self._scratch)
            self._scratch = None
        current = self._dir_fd
        opened: list[int] = []
        try:
            for part in parts:
                current = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=current)
                opened.append(current)
        except OSError:
            for fd in opened:
                os.close(fd)
            raise
        for fd in opened[:-1]:
            os.close(fd)
        self._scratch = opened[-1]
        return self._scratch

    def seal(self) -> None:
        self._sealed = True

    def open_related(self, requested_name: str, by: str, referrer: ByteSource | None = None) -> ByteSource:
        place = self._place(referrer)
        asked = self._asked.get((place, requested_name))
        if asked is not None:
            return self._opened[asked]
        if self._sealed:
            raise Unsupported(f"the image asks for {requested_name!r}, which was not opened before the sandbox"
                              " started", where=by)
        try:
            parts = self._components(requested_name, by, place)
        finally:
            if self._scratch is not None:
                os.close(self._scratch)
                self._scratch = None
        key = "/".join(parts)
        if key in self._opened:
            self._asked[(place, requested_name)] = key
            return self._opened[key]
        if self._dir_fd < 0:
            raise Unsupported(f"the image asks for {requested_name!r} after the opener was closed", where=by)
        fd = self._open_beneath(parts, requested_name, by)
        source = FileSource(fd, name=requested_name if requested_name.isprintable() else repr(requested_name))
        self._opened[key] = source
        self._asked[(place, requested_name)] = key
        self._places[identity(source)] = tuple(parts[:-1])
        return source

    def _open_beneath(self, parts: list[str], requested_name: str, by: str) -> int:
        """Walk ``parts`` from the directory, one openat(O_NOFOLLOW) per component."""
        shown = repr(requested_name)
        current = self._dir_fd
        opened: list[int] = []
        flags = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0)
        try:
            for index, part in enumerate(parts):
                last = index == len(parts) - 1
                try:
                    fd = os.open(part, flags | (0 if last else os.O_DIRECTORY), dir_fd=current)
                except FileNotFoundError:
                    raise NotFound(f"the file the image asks for, {shown}, is not in {self.directory}",
                                   where=by) from None
                except PermissionError:
                    raise PermissionDenied(f"cannot read {shown} (named by the image): permission denied",
                                           where=by) from None
                except OSError as err:  # ELOOP: a symlink; ENOTDIR: a symlink or file mid-path
                    import errno

                    if err.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):  # changed since it was resolved
                        raise PermissionDenied(
                            f"the image asks for {shown}, reached through a symlink or a non-directory that"
                            " appeared while it was opened; refused",
                            where=by,
                        ) from None
                    raise NotFound(f"cannot open {shown} (named by the image): {err.strerror}", where=by) from None
                opened.append(fd)
                current = fd
            mode = os.fstat(current).st_mode
            if not (stat.S_ISREG(mode) or stat.S_ISBLK(mode)):
                raise PermissionDenied(f"the image asks for {shown}, which is not a regular file", where=by)
            os.set_blocking(current, True)
            result = opened.pop()
            return result
        finally:
            for fd in opened:
                os.close(fd)


def identity(source: ByteSource) -> tuple:
    """What makes two sources the same file: device and inode for a file descriptor."""
    fd = getattr(source, "fd", None)
    if isinstance(fd, int) and fd >= 0:
        info = os.fstat(fd)
        return ("file", info.st_dev, info.st_ino)
    return ("object", id(source))


class ChainOpener(Opener):
    """The opener handed to a related image (a backing file, a parent): the same policy,
    plus the files already in the chain above it, to bound its depth and refuse loops."""

    __slots__ = ("base", "chain")

    def __init__(self, base: Opener, chain: tuple):
        self.base = base
        self.chain = chain

    def open_related(self, requested_name: str, by: str, referrer: ByteSource | None = None) -> ByteSource:
        return self.base.open_related(requested_name, by, referrer)

    def close(self) -> None:
        self.base.close()

    def descend(self, image: ByteSource, requested_name: str, what: str) -> tuple[ByteSource, "ChainOpener"]:
        """Open the related image ``requested_name`` of ``image`` and the opener for it."""
        if len(self.chain) > LIMITS.max_backing_depth:
            raise LimitExceeded(
                f"{what} chain deeper than {LIMITS.max_backing_depth} images (max_backing_depth)", where=image.name
            )
        related = self.base.open_related(requested_name, image.name, image)
        found = identity(related)
        if found in self.chain:
            raise CorruptImage(f"{what} chain loop: {requested_name!r} is already in the chain", where=image.name)
        return related, ChainOpener(self.base, self.chain + (found,))


def chained(opener: Opener, image: ByteSource) -> ChainOpener:
    """``opener`` as a ChainOpener whose chain starts with ``image`` (unless it already is one)."""
    if isinstance(opener, ChainOpener):
        return opener
    return ChainOpener(opener, (identity(image),))
