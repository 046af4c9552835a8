"""Version comparisons that boot loaders sort their entries by.

* :func:`rpm_vercmp` and :func:`nvr_cmp` -- Fedora's GRUB ``blscfg`` (rhboot/grub2,
  grub-core/commands/blscfg.c: ``vercmp``, ``split_package_string``, ``split_cmp``): RPM's
  rpmvercmp with ``~`` (sorts before everything) and ``+`` (sorts after the end), and a
  file name taken as name-version-release split at its last two ``-``.
* :func:`strverscmp_improved` -- systemd's (src/fundamental/string-util-fundamental.c),
  used by systemd-boot to order Boot Loader Specification entries: segments separated by
  ``~`` (older than everything), ``-``, ``^``, ``.``; digits compare as numbers.

Each returns -1, 0 or 1 (a older, equal, newer). All of them walk their inputs once, so
their cost is linear in the length of the strings (which are bounded by the config's
size, LIMITS.max_config_bytes).
"""

from __future__ import annotations


def _sign(value: int) -> int:
    return (value > 0) - (value < 0)


def _cmp(a, b) -> int:
    return (a > b) - (a < b)


def _isdigit(c: str) -> bool:
    return "0" <= c <= "9"


def _isalpha(c: str) -> bool:
    return "a" <= c <= "z" or "A" <= c <= "Z"


def _isalnum(c: str) -> bool:
    return _isdigit(c) or _isalpha(c)


def rpm_vercmp(a: str, b: str) -> int:
    """blscfg.c ``vercmp``: 1 when ``a`` is newer, -1 when ``b`` is, 0 when equal."""
    if a == b:
        return 0
    i = j = 0
    n, m = len(a), len(b)
    while i < n or j < m:
        while i < n and not _isalnum(a[i]) and a[i] not in "~+":
            i += 1
        while j < m and not _isalnum(b[j]) and b[j] not in "~+":
            j += 1
        ca = a[i] if i < n else ""
        cb = b[j] if j < m else ""
        if ca == "~" or cb == "~":  # "~" sorts before everything, even the end
            if ca != "~":
                return 1
            if cb != "~":
                return -1
            i += 1
            j += 1
            continue
        if ca == "+" or cb == "+":  # "+" like "~", but a string that ended is older
            if not ca:
                return -1
            if not cb:
                return 1
            if ca != "+":
                return 1
            if cb != "+":
                return -1
            i += 1
            j += 1
            continue
        if not (ca and cb):
            break
        # one segment of digits, or of letters, from each (the type is a's)
        kind = _isdigit if _isdigit(ca) else _isalpha
        ei, ej = i, j
        while ei < n and kind(a[ei]):
            ei += 1
        while ej < m and kind(b[ej]):
            ej += 1
        if ei == i:  # a's segment is empty: blscfg.c says "arbitrary"
            return -1
        if ej == j:  # different types: numeric is newer than alpha
            return 1 if kind is _isdigit else -1
        sa, sb = a[i:ei], b[j:ej]
        if kind is _isdigit:
            sa, sb = sa.lstrip("0"), sb.lstrip("0")
            if len(sa) != len(sb):
                return 1 if len(sa) > len(sb) else -1
        if sa != sb:
            return 1 if sa > sb else -1
        i, j = ei, ej
    ra, rb = a[i:], b[j:]
    if not ra and not rb:
        return 0
    return -1 if not ra else 1


def split_nvr(text: str, has_name: bool) -> tuple[str | None, str | None, str | None]:
    """blscfg.c ``split_package_string``: (name, version, release) at the last two
    ``-``, values bubbled up towards the name when there are fewer parts."""
    head, dash, release = text.rpartition("-")
    rel: str | None
    if dash:
        rest, rel = head, release
    else:
        rest, rel = text, None
    name: str | None = None
    if not has_name:
        version: str | None = rest
    else:
        head, dash, tail = rest.rpartition("-")
        if dash:
            name, version = head, tail
        else:
            name, version = rest, None
    if has_name and name is None:
        name = version if version is not None else rel
        version, rel = rel, None
    if version is None:
        version, rel = rel, None
    return name, version, rel


def nvr_cmp(a: str, b: str, has_name: bool = True) -> int:
    """blscfg.c ``split_cmp``: name, then version, then release, each by rpm_vercmp."""
    na, va, ra = split_nvr(a, has_name)
    nb, vb, rb = split_nvr(b, has_name)
    if has_name:
        r = rpm_vercmp(na or "", nb or "")
        if r:
            return r
    r = rpm_vercmp(va or "", vb or "")
    if r:
        return r
    return rpm_vercmp(ra or "", rb or "")


def _valid_version_char(c: str) -> bool:
    return _isalnum(c) or c in "~-^."


def strverscmp_improved(a: str | None, b: str | None) -> int:
    """systemd's strverscmp_improved (None is C's NULL: older than any string)."""
    if not a or not b:
        if a == b:
            return 0
        if a is None or b is None:
            return -1 if a is None else 1
        return _cmp(a, b)
    i = j = 0
    n, m = len(a), len(b)
    while True:
        while i < n and not _valid_version_char(a[i]):
            i += 1
        while j < m and not _valid_version_char(b[j]):
            j += 1
        ca = a[i] if i < n else ""
        cb = b[j] if j < m else ""
        if ca == "~" or cb == "~":
            r = _cmp(ca != "~", cb != "~")
            if r:
                return r
            i += 1
            j += 1
            ca = a[i] if i < n else ""
            cb = b[j] if j < m else ""
        if not ca or not cb:
            return _cmp(a[i:].encode("utf-8", "surrogateescape"), b[j:].encode("utf-8", "surrogateescape"))
        for sep in "-^.":
            if ca == sep or cb == sep:
                r = _cmp(ca != sep, cb != sep)
                if r:
                    return r
                i += 1
                j += 1
                ca = a[i] if i < n else ""
                cb = b[j] if j < m else ""
        if _isdigit(ca) or _isdigit(cb):
            while i < n and a[i] == "0":
                i += 1
            while j < m and b[j] == "0":
                j += 1
            ei, ej = i, j
            while ei < n and _isdigit(a[ei]):
                ei += 1
            while ej < m and _isdigit(b[ej]):
                ej += 1
            r = _cmp(ei - i, ej - j)
            if r:
                return r
            r = _cmp(a[i:ei], b[j:ej])
            if r:
                return r
        else:
            ei, ej = i, j
            while ei < n and _isalpha(a[ei]):
                ei += 1
            while ej < m and _isalpha(b[ej]):
                ej += 1
            k = min(ei - i, ej - j)
            r = _cmp(a[i : i + k], b[j : j + k])
            if r:
                return r
            r = _cmp(ei - i, ej - j)
            if r:
                return r
        i, j = ei, ej  # both empty: the next round consumes a separator or ends
