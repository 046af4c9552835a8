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

Lines are pulled from a reader only when GRUB would pull them: at the end of the buffer,
when the parser is inside a construct (``refs`` > 0) or a word is unterminated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

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


@dataclass(frozen=True, slots=True)
class Part:
    kind: str
    text: str


@dataclass(slots=True)
class Token:
    kind: str  # "word", "name", "kw", "nl", ";", "{", "}", "bad", "eof"
    text: str = ""  # the raw source text of the token
    parts: tuple[Part, ...] = ()
    start: int = 0
    end: int = 0


class LexError(Exception):
    """A lexical error (GRUB's GRUB_PARSER_TOKEN_BAD): the statement is dropped."""


class Lexer:
    """Tokens of one parse unit. ``reader()`` returns the next line (without its newline)
    or None at the end of the input; ``refs`` is raised by the parser inside constructs."""

    def __init__(self, first_line: str, reader: Callable[[], str | None]):
        self.reader = reader
        self.buf = ""
        self.pos = 0
        self.refs = 0
        self.lines = 0
        self.eof = False
        self._append(first_line)

    def _append(self, line: str) -> None:
        line = line.split("\0", 1)[0]
        if not line.endswith("\n"):
            line += "\n"
        if len(self.buf) + len(line) > LIMITS.max_config_bytes:
            raise LimitExceeded(f"one GRUB statement is longer than {LIMITS.max_config_bytes} bytes")
        self.buf += line
        self.lines += 1

    def _more(self) -> bool:
        line = self.reader()
        if line is None:
            return False
        self._append(line)
        return True

    # --- word scanning -------------------------------------------------------------
    def _scan_word(self, i: int) -> tuple[int, bool]:
        """End of the WORD starting at ``i`` and whether it needs more input (an
        unterminated quote, or backslash-newline at the very end of the buffer)."""
        buf, n = self.buf, len(self.buf)
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
                    return n, True
                i = j + 1
                continue
            if c == "'":
                j = buf.find("'", i + 1)
                if j < 0:
                    return n, True
                i = j + 1
                continue
            if c == "$":
                m = _VARIABLE.match(buf, i)
                if not m:
                    break
                i = m.end()
                continue
            if c in _NOT_CHAR:
                break
            i += 1
        i = min(i, n)
        continuation = i == n and last_escape == n - 2 and buf.endswith("\\\n")
        return i, continuation

    def next(self) -> Token:
        while True:
            if self.pos >= len(self.buf):
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
                while self.pos < len(buf) and buf[self.pos] in " \t":
                    self.pos += 1
                continue
            word_end, need_more = self._scan_word(pos)
            if need_more:
                if not self._more():
                    raise LexError("unexpected end of file in a quoted string")
                continue
            word_len = word_end - pos
            if c == "#":
                nl = buf.find("\n", pos)
                comment_len = (nl if nl >= 0 else len(buf)) - pos
                if comment_len >= word_len:
                    self.pos += comment_len
                    continue
            if word_len == 0:
                for op in ("\n", ";;", "||", "&&", "|", "&", ";", "<", ">", "{", "}"):
                    if buf.startswith(op, pos):
                        self.pos += len(op)
                        kind = {"\n": "nl", ";": ";", "{": "{", "}": "}"}.get(op, "bad")
                        if kind == "bad":
                            raise LexError(f"unexpected '{op}'")
                        return Token(kind, op, start=pos, end=self.pos)
                raise LexError(f"unexpected '{c}'")
            text = buf[pos:word_end]
            if len(text) > LIMITS.max_word_bytes:
                raise LimitExceeded(f"a GRUB word is longer than {LIMITS.max_word_bytes} bytes")
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
