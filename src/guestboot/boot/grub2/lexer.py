"""GRUB 2 script tokens, following the rules of grub-core/script/yylex.l.

GRUB's lexer is a flex scanner: at each position the longest match wins, ties go to the
rule written first. The rules that matter are reproduced here by hand:

* blanks are only space and tab; ``#`` starts a comment only where a token starts and the
  comment is the longest match;
* a word is a run of plain characters (anything but ``{ } | & $ ; < >``, blanks, quotes,
  backslash, newline), backslash escapes, single- and double-quoted strings, ``$"..."``
  gettext strings and variable references ``$name ${name} $1 ${1} $? $# $* $@``; a ``$``
  that starts none of these is a lexical error;
* a word that is exactly a keyword is the keyword; a word that is a plain name is a NAME;
* a word with an unterminated quote, or one ending in backslash-newline at the end of the
  input read so far, makes the lexer read the next line and try again.

Lines become visible only when GRUB would read them: at the end of what was read, when
the parser is inside a construct (``refs`` > 0) or a word is unterminated.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from ...errors import LimitExceeded
from ...limits import LIMITS

# The characters flex's CHAR class excludes: [^{}|&$;<> \t\n'"\\]
_NOT_CHAR = frozenset("{}|&$;<> \t\n'\"\\")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_VARIABLE = re.compile(
    r"\$(?:[A-Za-z_][A-Za-z0-9_]*|\{[A-Za-z_][A-Za-z0-9_]*\}|[0-9]+|\{[0-9]+\}|[?#*@]|\{[?#*@]\})"
)
KEYWORDS = frozenset(
    "case do done elif else esac fi for if in select then until while function".split()
)

# Part kinds of a word, as GRUB's grub_script_arg types.
TEXT, DQSTR, SQSTR, VAR, DQVAR, GETTEXT = "text", "dq", "sq", "var", "dqvar", "gettext"


class Part(NamedTuple):
    """One piece of a word: its kind (TEXT, DQSTR …) and its text."""

    kind: str
    text: str


class Token:
    """One token; two tokens are equal when all their fields are."""

    __slots__ = ("kind", "text", "parts", "start", "end")

    def __init__(
        self,
        kind: str,  # "word", "name", "kw", "nl", ";", "{", "}", "bad", "eof"
        text: str = "",  # the raw source text of the token
        parts: tuple[Part, ...] = (),
        start: int = 0,
        end: int = 0,
    ) -> None:
        self.kind = kind
        self.text = text
        self.parts = parts
        self.start = start
        self.end = end

    def __repr__(self) -> str:
        return (
            f"Token(kind={self.kind!r}, text={self.text!r}, parts={self.parts!r},"
            f" start={self.start!r}, end={self.end!r})"
        )

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, Token)
        return (self.kind, self.text, self.parts, self.start, self.end) == (
            other.kind, other.text, other.parts, other.start, other.end
        )

    __hash__ = None  # type: ignore[assignment]  # mutable: equal tokens may change


class LexError(Exception):
    """A lexical error (GRUB's GRUB_PARSER_TOKEN_BAD): the statement is dropped."""


class Source:
    """The lines GRUB's reader hands the parser, joined once (each ends with a newline):
    ``line_ends[i]`` is the offset just after line ``i``, ``numbers[i]`` its line number
    in the file. Lines are cut at a NUL byte, as GRUB's C strings are."""

    def __init__(self, lines: list[str], numbers: list[int]):
        parts = [line.split("\0", 1)[0] + "\n" for line in lines]
        self.text = "".join(parts)
        self.line_ends: list[int] = []
        offset = 0
        for part in parts:
            offset += len(part)
            self.line_ends.append(offset)
        self.numbers = numbers

    def __len__(self) -> int:
        return len(self.line_ends)

    def line_start(self, index: int) -> int:
        return self.line_ends[index - 1] if index > 0 else 0


class Lexer:
    """Tokens of one parse unit, starting at line ``first`` of ``source``. Only the lines
    GRUB would have read so far are visible (``end``); ``refs`` is raised by the parser
    inside constructs so that the end of a line does not end the unit."""

    def __init__(self, source: Source, first: int):
        self.src = source
        self.buf = source.text
        self.line = first
        self.pos = source.line_start(first)
        self.end = source.line_ends[first]
        self.refs = 0
        self.lines = 1
        self.eof = False
        self._resume: tuple[int, int] | None = None  # (word start, where to rescan)

    def _more(self) -> bool:
        if self.line + 1 >= len(self.src):
            return False
        self.line += 1
        self.end = self.src.line_ends[self.line]
        self.lines += 1
        return True

    def _more_until(self, offset: int) -> None:
        """Read lines until ``offset`` is visible (GRUB reads one line at a time and
        re-lexes; nothing else happens in between, so reading them at once is the same)."""
        while self.end <= offset:
            if not self._more():
                raise LexError("unexpected end of file in a quoted string")

    # --- word scanning -------------------------------------------------------------
    def _scan_word(self, start: int, i: int) -> tuple[int, str | None, int]:
        """Scan the WORD starting at ``start`` from ``i``: (end, need, resume) where
        ``need`` is None, "sq"/"dq" for a quote still open at the end of the visible
        input (``resume`` = where that quote began) or "cont" for a backslash-newline
        at the very end."""
        buf, n = self.buf, self.end
        last_escape = -1
        while i < n:
            c = buf[i]
            if c == "\\":
                last_escape = i
                i += 2
                continue
            if c == '"' or (c == "$" and i + 1 < n and buf[i + 1] == '"'):
                j = i + (1 if c == '"' else 2)
                while j < n and buf[j] != '"':
                    j += 2 if buf[j] == "\\" else 1
                if j >= n:
                    return n, "dq", i
                i = j + 1
                continue
            if c == "'":
                j = buf.find("'", i + 1, n)
                if j < 0:
                    return n, "sq", i
                i = j + 1
                continue
            if c == "$":
                m = _VARIABLE.match(buf, i, n)
                if not m:
                    break
                i = m.end()
                continue
            if c in _NOT_CHAR:
                break
            i += 1
        i = min(i, n)
        if i == n and last_escape == n - 2 and buf.startswith("\\\n", n - 2):
            return n, "cont", last_escape
        return i, None, start

    def _find_close(self, need: str, quote_at: int) -> int:
        """Offset of the character that closes the quote opened at ``quote_at``, looking
        past the visible input; LexError when the file ends first."""
        buf = self.buf
        if need == "sq":
            j = buf.find("'", quote_at + 1)
        else:
            j = quote_at + (2 if buf[quote_at] == "$" else 1)
            while j < len(buf) and buf[j] != '"':
                j += 2 if buf[j] == "\\" else 1
            if j >= len(buf):
                j = -1
        if j < 0:
            while self._more():  # GRUB reads every remaining line looking for it
                pass
            raise LexError("unexpected end of file in a quoted string")
        return j

    def next(self) -> Token:
        while True:
            if self.pos >= self.end:
                if self.eof:
                    return Token("eof", start=self.pos, end=self.pos)
                if self.refs > 0:
                    if not self._more():
                        raise LexError("unexpected end of file")
                    continue
                self.eof = True
                return Token("eof", start=self.pos, end=self.pos)
            buf, pos = self.buf, self.pos
            c = buf[pos]
            if c in " \t":
                while self.pos < self.end and buf[self.pos] in " \t":
                    self.pos += 1
                continue
            resume = pos
            if self._resume is not None and self._resume[0] == pos:
                resume = self._resume[1]
            word_end, need, at = self._scan_word(pos, resume)
            if need == "cont":
                if not self._more():
                    raise LexError("unexpected end of file after a backslash")
                self._resume = (pos, at)
                continue
            if need is not None:
                self._more_until(self._find_close(need, at))
                self._resume = (pos, at)
                continue
            self._resume = None
            word_len = word_end - pos
            if c == "#":
                nl = buf.find("\n", pos, self.end)
                comment_len = (nl if nl >= 0 else self.end) - pos
                if comment_len >= word_len:
                    self.pos += comment_len
                    continue
            if word_len == 0:
                for op in ("\n", ";;", "||", "&&", "|", "&", ";", "<", ">", "{", "}"):
                    if buf.startswith(op, pos, self.end):
                        self.pos += len(op)
                        kind = {"\n": "nl", ";": ";", "{": "{", "}": "}"}.get(op, "bad")
                        if kind == "bad":
                            raise LexError(f"unexpected '{op}'")
                        return Token(kind, op, start=pos, end=self.pos)
                raise LexError(f"unexpected '{c}'")
            if word_len > LIMITS.max_word_bytes:
                raise LimitExceeded(f"a GRUB word is longer than {LIMITS.max_word_bytes} bytes")
            text = buf[pos:word_end]
            self.pos = word_end
            if text in ("[[", "]]"):
                raise LexError(f"unexpected '{text}'")
            if text in KEYWORDS:
                return Token("kw", text, (Part(TEXT, text),), pos, word_end)
            kind = "name" if _NAME.fullmatch(text) else "word"
            return Token(kind, text, split_word(text), pos, word_end)


def split_word(text: str) -> tuple[Part, ...]:
    """The parts of one word, as GRUB's SPLIT state makes them. TEXT parts keep their
    backslashes (GRUB removes them after expansion); quoted parts are decoded."""
    parts: list[Part] = []
    cur: list[str] = []
    i, n = 0, len(text)

    def flush(kind: str = TEXT) -> None:
        parts.append(Part(kind, "".join(cur)))
        cur.clear()

    while i < n:
        c = text[i]
        if c == "\\":
            if text.startswith("\\\n", i):
                i += 2
                continue
            cur.append(text[i : i + 2])
            i += 2
        elif c == "'":
            flush()
            j = text.index("'", i + 1)
            parts.append(Part(SQSTR, text[i + 1 : j]))
            i = j + 1
        elif c == '"':
            flush()
            i = _split_dq(text, i + 1, parts)
        elif c == "$" and text.startswith('$"', i):
            flush()
            i = _split_gettext(text, i + 2, parts)
        elif c == "$":
            flush()
            m = _VARIABLE.match(text, i)
            assert m is not None  # the scanner accepted only valid references
            name = m.group(0)[1:]
            if name.startswith("{"):
                name = name[1:-1]
            parts.append(Part(VAR, name))
            i = m.end()
        else:
            j = i
            while j < n and text[j] not in "\\'\"$":
                j += 1
            cur.append(text[i:j])
            i = j
    flush()
    return tuple(p for p in parts if p.kind != TEXT or p.text)


def _split_dq(text: str, i: int, parts: list[Part]) -> int:
    """DQUOTE state: \\$ \\\\ \\" are escapes, backslash-newline vanishes, any other
    backslash stays; $references become DQVAR parts."""
    cur: list[str] = []
    while True:
        c = text[i]
        if c == '"':
            parts.append(Part(DQSTR, "".join(cur)))
            return i + 1
        if c == "\\" and i + 1 < len(text) and text[i + 1] in '$\\"':
            cur.append(text[i + 1])
            i += 2
        elif c == "\\" and text.startswith("\\\n", i):
            i += 2
        elif c == "$":
            parts.append(Part(DQSTR, "".join(cur)))
            cur.clear()
            m = _VARIABLE.match(text, i)
            if m is None:
                raise LexError("'$' without a variable name in a double-quoted string")
            name = m.group(0)[1:]
            if name.startswith("{"):
                name = name[1:-1]
            parts.append(Part(DQVAR, name))
            i = m.end()
        else:
            cur.append(c)
            i += 1


def _split_gettext(text: str, i: int, parts: list[Part]) -> int:
    """I18NQUOTE state: \\\\ stays two backslashes, \\" is a quote, backslash-newline
    vanishes, everything else is copied."""
    cur: list[str] = []
    while True:
        c = text[i]
        if c == '"':
            parts.append(Part(GETTEXT, "".join(cur)))
            return i + 1
        if text.startswith("\\\\", i):
            cur.append("\\\\")
            i += 2
        elif text.startswith('\\"', i):
            cur.append('"')
            i += 2
        elif text.startswith("\\\n", i):
            i += 2
        else:
            cur.append(c)
            i += 1
