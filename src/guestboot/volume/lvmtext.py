"""LVM2's text metadata ("Text Format Volume Group"): a bounded parser of its config syntax.

The syntax is the one of lvm.conf (lvm2's lib/config and lvm.conf(5) "SYNTAX"): a file is
a list of assignments ``key = value`` and sections ``name { ... }``; a value is an integer,
a float, a double-quoted string (backslash escapes the next character) or an array
``[v, v, ...]`` of those; ``#`` starts a comment that runs to the end of the line.

The text is guest data: it is parsed in one pass over at most LIMITS.max_lvm_metadata_bytes
bytes (each token consumes at least one byte, so the work is bounded by the size), sections
nest at most LIMITS.max_lvm_config_depth deep, and anything malformed is CorruptImage naming
the line. Sections are dicts (in text order); a key given twice is CorruptImage.
"""

from __future__ import annotations

import re
from typing import Union

from ..errors import CorruptImage, LimitExceeded
from ..limits import LIMITS

Value = Union[int, float, str, list, "Section"]
Section = dict  # str -> Value, in text order

# One match per token, with the spaces and comments before it: a string, a number, a name,
# punctuation, the end of the text, or one character that is none of these (an error).
_TOKEN = re.compile(
    r"""
    (?:[ \t\r\n]+|\#[^\n]*)*
    (?:
      (?P<string>"(?:[^"\\]|\\.)*")
    | (?P<number>-?[0-9]+(?:\.[0-9]+)?(?![A-Za-z0-9_.+-]))
    | (?P<name>[A-Za-z0-9_.+\-/]+)
    | (?P<punct>[{}\[\]=,])
    | (?P<end>\Z)
    | (?P<bad>.)
    )
    """,
    re.VERBOSE | re.DOTALL,
)
_ESCAPE = re.compile(r"\\(.)", re.DOTALL)


def parse(data: bytes, where: str) -> Section:
    """The top-level section of LVM text metadata ``data``; CorruptImage / LimitExceeded
    name ``where`` and the line."""
    if len(data) > LIMITS.max_lvm_metadata_bytes:
        raise LimitExceeded(
            f"LVM metadata of {len(data)} bytes (max_lvm_metadata_bytes = {LIMITS.max_lvm_metadata_bytes})",
            where=where,
        )
    text = data.decode("utf-8", "surrogateescape")
    return _Parser(text, where).document()


class _Parser:
    """Recursive descent over a lazily scanned token stream (one token of look-ahead)."""

    def __init__(self, text: str, where: str):
        self.text = text
        self.where = where
        self.matches = _TOKEN.finditer(text)
        self.token = self._scan()

    def _line(self, pos: int) -> int:
        return self.text.count("\n", 0, pos) + 1

    def _scan(self) -> tuple[str, str, int]:
        """The next token as (kind, text, offset in the text); ("end", "", …) at the end."""
        m = next(self.matches, None)
        if m is None:  # finditer ends after the empty match at the end
            return "end", "", len(self.text)
        kind = m.lastgroup or "end"
        if kind == "bad":
            pos = m.start(kind)
            raise CorruptImage(f"LVM metadata line {self._line(pos)}: unexpected {self.text[pos]!r}", where=self.where)
        return kind, m.group(kind), m.start(kind)

    def _fail(self, what: str) -> CorruptImage:
        kind, value, pos = self.token
        seen = "the end" if kind == "end" else repr(value[:40])
        return CorruptImage(f"LVM metadata line {self._line(pos)}: expected {what}, found {seen}", where=self.where)

    def _next(self) -> tuple[str, str, int]:
        token = self.token
        if token[0] != "end":
            self.token = self._scan()
        return token

    def _peek(self) -> tuple[str, str]:
        return self.token[0], self.token[1]

    def document(self) -> Section:
        return self._items(depth=0, closing="end")

    def _items(self, depth: int, closing: str) -> Section:
        if depth > LIMITS.max_lvm_config_depth:
            raise LimitExceeded(
                f"LVM metadata line {self._line(self.token[2])}: sections nest deeper than"
                f" {LIMITS.max_lvm_config_depth} (max_lvm_config_depth)",
                where=self.where,
            )
        section: Section = {}
        while True:
            kind, value = self._peek()
            if (kind == "end" and closing == "end") or (kind == "punct" and value == "}" and closing == "}"):
                self._next()
                return section
            if kind not in ("name", "number"):
                raise self._fail("a name" if closing == "end" else "a name or '}'")
            _kind, key, pos = self._next()
            if key in section:
                raise CorruptImage(f"LVM metadata line {self._line(pos)}: {key[:40]!r} given twice", where=self.where)
            kind, value = self._peek()
            if kind == "punct" and value == "{":
                self._next()
                section[key] = self._items(depth + 1, "}")
            elif kind == "punct" and value == "=":
                self._next()
                section[key] = self._value()
            else:
                raise self._fail(f"'=' or '{{' after {key[:40]!r}")

    def _value(self) -> Value:
        if self.token[0] not in ("string", "number") and self.token[1] != "[":
            raise self._fail("a value")
        kind, value, _line = self._next()
        if kind == "string":
            return _ESCAPE.sub(r"\1", value[1:-1])
        if kind == "number":
            return float(value) if "." in value else int(value)
        if kind == "punct" and value == "[":
            items: list = []
            while True:
                kind, value = self._peek()
                if kind == "punct" and value == "]":
                    self._next()
                    return items
                if items:
                    if not (kind == "punct" and value == ","):
                        raise self._fail("',' or ']'")
                    self._next()
                kind, value = self._peek()
                if kind not in ("string", "number"):
                    raise self._fail("a string or a number in an array")
                items.append(self._value())
        raise AssertionError("unreachable: _value checked the token kind")
