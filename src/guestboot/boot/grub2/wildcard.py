"""GRUB's wildcard expansion of command words (grub-core/commands/wildcard.c), active
once the ``regexp`` module is loaded (``insmod regexp``, or a ``regexp`` command, which
autoloads it: the module installs the translator that script/execute.c calls).

A word is expanded when it starts with ``/``, ``(`` or ``*`` and holds an unescaped
``*`` or ``?`` (quoted text is escaped, so ``"/boot/*"`` stays as written):

* the word is cut into runs: a run without wildcards up to the last ``/`` before a
  component that has one, then that component;
* a component with wildcards becomes a regular expression (``*`` -> ``.*``, ``?`` ->
  ``.``, the other regex characters escaped, anchored at both ends) matched against the
  names in the directory so far, in the file system's own listing order (``.`` and ``..``
  skipped); a device part such as ``(*)`` or ``(hd*)`` is matched against the device
  names as ``(name)``: each disk, then its partitions in reverse order (device.c lists
  them so), partitions left out for a word that starts with ``*``;
* the text after the last wildcard component is appended to each result, which is kept
  only when its last component exists in its directory (check_file);
* nothing matching leaves the word as it was.

Matching uses regex.py (bounded); directory listings are bounded by the file system's
own budgets, and the words made by LIMITS.max_word_bytes (interp.expand).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...errors import GuestbootError, LimitExceeded
from ...fs import path as fspath
from ...fs.base import FileType
from ...limits import LIMITS
from . import files
from .errors import GrubError
from ..budget import WORK_ITEM
from .regex import RegexError, compile_ere

if TYPE_CHECKING:
    from .interp import Interp

_REGEX_SPECIALS = ".()@+|{}[]"


def has_wildcard(raw: str) -> bool:
    """An unescaped ``*`` or ``?`` in a raw (still escaped) word."""
    i = 0
    while i < len(raw):
        c = raw[i]
        if c == "\\":
            i += 2
            continue
        if c in "*?":
            return True
        i += 1
    return False


def _unescape(text: str) -> str:
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
            continue
        if text[i] == "\\":
            break
        out.append(text[i])
        i += 1
    return "".join(out)


def _to_regex(glob: str) -> str:
    out = ["^"]
    i = 0
    while i < len(glob):
        c = glob[i]
        i += 1
        if c == "\\":
            out.append("\\" + glob[i] if i < len(glob) else "\\")
            i += 1
        elif c in _REGEX_SPECIALS:
            out.append("\\" + c)
        elif c == "*":
            out.append(".*")
        elif c == "?":
            out.append(".")
        else:
            out.append(c)
    out.append("$")
    return "".join(out)


def _split(raw: str, start: int) -> tuple[int, int, bool]:
    """split_path: (end of the wildcard-free directory part, end of the run, whether
    the run holds a wildcard)."""
    split = end = start
    wild = False
    while end < len(raw):
        c = raw[end]
        if c == "\\" and end + 1 < len(raw):
            end += 2
            continue
        if c in "*?":
            wild = True
        elif c == "/":
            if wild:
                break
            split = end + 1
        end += 1
    return (split if wild else end), end, wild


def _device_names(it: Interp, noparts: bool) -> list[str]:
    names = list(it.sh.devices.names())
    disks = [n for n in names if "," not in n]
    ordered: list[str] = []
    for disk in disks:
        ordered.append(disk)
        if not noparts:
            ordered.extend(reversed([n for n in names if n.startswith(disk + ",")]))
    return ordered


def _listing(it: Interp, directory: str) -> list[str]:
    """Names in the directory ``directory`` (a GRUB name ending in '/'), or []."""
    try:
        dev, path = files.split_path(it, directory)
        _canonical, fs = files.device(it, dev)
        node = fspath.resolve(fs, files.relative_root(it, fs) + (path or "/"))
        if node.type is not FileType.DIR:
            return []
        names = []
        budget = it.sh.budget
        for raw, _child in fs.readdir(node):
            budget.charge(len(raw) + WORK_ITEM, it.at)  # every listing, every expansion
            name = raw.decode("utf-8", "surrogateescape")
            if name not in (".", ".."):
                names.append(name)
        return names
    except (GrubError, GuestbootError):
        return []


class _Lister:
    """Directory listings for one expansion, each read once; the paths made are bounded
    by LIMITS.max_word_bytes (they all become words of one command line)."""

    def __init__(self, it: Interp):
        self.it = it
        self.seen: dict[str, list[str]] = {}
        self.made = 0

    def names(self, directory: str) -> list[str]:
        if directory not in self.seen:
            self.seen[directory] = _listing(self.it, directory)
        return self.seen[directory]

    def exists(self, directory: str, name: str) -> bool:
        return not name or name in self.names(directory or "/")

    def made_path(self, path: str) -> str:
        self.made += len(path) + 1
        if self.made > LIMITS.max_word_bytes:
            raise LimitExceeded(f"wildcard expansion makes more than {LIMITS.max_word_bytes} bytes of words")
        return path


def expand(it: Interp, raw: str) -> list[str] | None:
    """The words ``raw`` expands to, or None to keep it (then unescaped as usual)."""
    if not raw or raw[0] not in "/(*" or not has_wildcard(raw):
        return None
    paths: list[str] | None = None
    had_regex = False
    start = 0
    lister = _Lister(it)
    while start < len(raw):
        plain_end, run_end, wild = _split(raw, start)
        if not wild:
            tail = _unescape(raw[start:run_end])
            kept = []
            for path in paths if paths is not None else [""]:
                joined = path + tail
                slash = joined.rfind("/") if had_regex else -1
                if slash < 0 or lister.exists(joined[:slash] or "/", joined[slash + 1 :]):
                    kept.append(joined)
            if not kept:
                return None
            paths = kept
            start = run_end
            continue
        try:
            regex = compile_ere(_to_regex(raw[plain_end:run_end]), it.sh.budget, it.at)
        except RegexError:
            return None
        had_regex = True
        if paths is None and plain_end == start:  # the device part has the wildcard
            budget = it.sh.budget
            found = [lister.made_path(f"({n})") for n in _device_names(it, raw[start] != "(")
                     if regex.search(f"({n})", budget, it.at)]
        else:
            found = []
            prefix = _unescape(raw[start:plain_end])
            for base in paths if paths is not None else [""]:
                directory = base + prefix
                for name in lister.names(directory):
                    if regex.search(name, it.sh.budget, it.at) is not None:
                        found.append(lister.made_path(directory + name))
        if not found:
            return None
        paths = found
        start = run_end
    return paths
