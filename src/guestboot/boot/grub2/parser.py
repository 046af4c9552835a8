"""GRUB 2 script grammar (grub-core/script/parser.y) as a recursive-descent parser.

One call parses one *unit*: what GRUB's grub_script_parse reads from one first line plus
the further lines the lexer pulls while a construct is open. The tree mirrors GRUB's
command kinds: command lines (with an optional ``{ block }`` argument), if, for,
while/until. ``function`` definitions take effect while parsing, as in GRUB.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Union

from ...errors import LimitExceeded
from ...limits import LIMITS
from .lexer import Lexer, LexError, Part, Source, Token


class ParseError(Exception):
    """A syntax error; ``last`` is the index of the last line the unit had read."""

    def __init__(self, message: str, last: int):
        super().__init__(message)
        self.last = last


@dataclass(eq=False)
class Block:
    source: str  # the text between the braces, as GRUB records it
    body: list["Node"]


@dataclass(eq=False)
class Command:
    words: list[tuple[Part, ...]]
    block: Block | None = None


@dataclass(eq=False)
class If:
    cond: list["Node"]
    then: list["Node"]
    orelse: "list[Node] | If | None" = None


@dataclass(eq=False)
class For:
    var: str
    words: list[tuple[Part, ...]]
    body: list["Node"]


@dataclass(eq=False)
class While:
    cond: list["Node"]
    body: list["Node"]
    until: bool = False


Node = Union[Command, If, For, While]


@dataclass(eq=False)
class Unit:
    commands: list[Node] = field(default_factory=list)
    last: int = 0  # index of the last line the unit read


_COMMAND_START_KW = ("if", "for", "while", "until")


class Parser:
    def __init__(self, lexer: Lexer, on_function: Callable[[str, list[Node]], None]):
        self.lx = lexer
        self.on_function = on_function
        self._tok: Token | None = None
        self.depth = 0

    # --- token helpers ---------------------------------------------------------------
    def peek(self) -> Token:
        if self._tok is None:
            self._tok = self.lx.next()
        return self._tok

    def take(self) -> Token:
        tok = self.peek()
        self._tok = None
        return tok

    def error(self, what: str) -> ParseError:
        return ParseError(what, self.lx.line)

    def expect_kw(self, word: str) -> None:
        tok = self.take()
        if not (tok.kind == "kw" and tok.text == word):
            raise self.error(f"expected '{word}', found {_show(tok)}")

    def is_kw(self, tok: Token, *words: str) -> bool:
        return tok.kind == "kw" and tok.text in words

    def newlines0(self) -> None:
        while self.peek().kind == "nl":
            self.take()

    def delimiters1(self) -> None:
        tok = self.take()
        if tok.kind not in ("nl", ";"):
            raise self.error(f"expected ';' or a newline, found {_show(tok)}")
        self.newlines0()

    def starts_command(self, tok: Token) -> bool:
        return tok.kind in ("word", "name") or self.is_kw(tok, *_COMMAND_START_KW)

    # --- grammar ---------------------------------------------------------------------
    def unit(self) -> Unit:
        out = Unit()
        self.newlines0()
        while self.peek().kind != "eof":
            tok = self.peek()
            if self.is_kw(tok, "function"):
                self.function()
            else:
                out.commands.append(self.command())
            delim = self.take()
            if delim.kind not in ("nl", ";"):
                raise self.error(f"unexpected {_show(delim)}")
            self.newlines0()
        out.last = self.lx.line
        return out

    def commands1(self) -> list[Node]:
        """newlines0 command (delimiters1 command)*, consuming the trailing delimiters;
        returns the commands and leaves ``self.trailing`` saying whether delimiters
        followed the last command."""
        self.newlines0()
        cmds = [self.command()]
        while True:
            if self.peek().kind not in ("nl", ";"):
                self.trailing = False
                return cmds
            self.delimiters1()
            if not self.starts_command(self.peek()):
                self.trailing = True
                return cmds
            cmds.append(self.command())

    def commands_delim(self) -> list[Node]:
        cmds = self.commands1()
        if not self.trailing:
            raise self.error(f"expected ';' or a newline, found {_show(self.peek())}")
        return cmds

    def command(self) -> Node:
        self.depth += 1
        if self.depth > LIMITS.max_call_depth:
            raise LimitExceeded("GRUB script nested too deeply")
        try:
            tok = self.peek()
            if self.is_kw(tok, "if"):
                return self.ifcmd()
            if self.is_kw(tok, "for"):
                return self.forcmd()
            if self.is_kw(tok, "while", "until"):
                return self.whilecmd()
            if tok.kind not in ("word", "name"):
                raise self.error(f"unexpected {_show(tok)}")
            return self.grubcmd()
        finally:
            self.depth -= 1

    def grubcmd(self) -> Command:
        words = [self.take().parts]
        while self.peek().kind in ("word", "name", "kw"):
            words.append(self.take().parts)
        block = None
        if self.peek().kind == "{":
            block = self.block()
        return Command(words, block)

    def block(self) -> Block:
        self.take()  # "{"
        self.lx.refs += 1
        start = self.lx.pos
        body = self.commands1()
        tok = self.take()
        if tok.kind != "}":
            raise self.error(f"expected '}}', found {_show(tok)}")
        self.lx.refs -= 1
        return Block(self.lx.buf[start : tok.start], body)

    def function(self) -> None:
        self.take()  # "function"
        name = self.take()
        if name.kind != "name":
            raise self.error(f"a function name is needed after 'function', found {_show(name)}")
        self.lx.refs += 1
        self.newlines0()
        if self.take().kind != "{":
            raise self.error("expected '{' after the function name")
        body = self.commands_delim()
        if self.take().kind != "}":
            raise self.error("expected '}' to end the function")
        self.lx.refs -= 1
        self.on_function(name.text, body)

    def ifcmd(self) -> If:
        self.take()
        self.lx.refs += 1
        node = self.ifclause()
        self.expect_kw("fi")
        self.lx.refs -= 1
        return node

    def ifclause(self) -> If:
        cond = self.commands_delim()
        self.expect_kw("then")
        then = self.commands_delim()
        tok = self.peek()
        if self.is_kw(tok, "else"):
            self.take()
            return If(cond, then, self.commands_delim())
        if self.is_kw(tok, "elif"):
            self.take()
            return If(cond, then, self.ifclause())
        return If(cond, then, None)

    def forcmd(self) -> For:
        self.take()
        name = self.take()
        if name.kind != "name":
            raise self.error(f"a variable name is needed after 'for', found {_show(name)}")
        self.lx.refs += 1
        self.expect_kw("in")
        words = []
        while self.peek().kind in ("word", "name", "kw"):
            words.append(self.take().parts)
        self.delimiters1()
        self.expect_kw("do")
        body = self.commands_delim()
        self.expect_kw("done")
        self.lx.refs -= 1
        return For(name.text, words, body)

    def whilecmd(self) -> While:
        until = self.take().text == "until"
        self.lx.refs += 1
        cond = self.commands_delim()
        self.expect_kw("do")
        body = self.commands_delim()
        self.expect_kw("done")
        self.lx.refs -= 1
        return While(cond, body, until)


def _show(tok: Token) -> str:
    if tok.kind == "eof":
        return "end of input"
    if tok.kind == "nl":
        return "newline"
    return repr(tok.text)


def parse_unit(source: Source, first: int, on_function: Callable[[str, list[Node]], None]) -> Unit:
    """Parse what GRUB parses starting at line ``first`` of ``source`` (reading further
    lines as GRUB's lexer would). Raises ParseError for a syntax error."""
    lexer = Lexer(source, first)
    parser = Parser(lexer, on_function)
    try:
        return parser.unit()
    except LexError as exc:
        raise ParseError(str(exc), lexer.line) from None
    except RecursionError:
        raise LimitExceeded("GRUB script nested too deeply") from None


@dataclass(frozen=True, slots=True)
class CheckResult:
    """What grub-script-check reports: ``ok`` (exit status 0), the line of the first
    syntax error, and whether any command was found (no command is also a failure)."""

    ok: bool
    error_line: int | None
    has_commands: bool


def check(text: str) -> CheckResult:
    """Syntax-check a script the way util/grub-script-check.c does: lines are read one
    by one (tabs and carriage returns become spaces), units parsed until the first error."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    lines = [line.replace("\t", " ").replace("\r", " ") for line in lines]
    source = Source(lines, list(range(1, len(lines) + 1)))
    found_cmd = False
    index = 0
    while index < len(source):
        try:
            unit = parse_unit(source, index, lambda name, body: None)
        except ParseError as exc:
            return CheckResult(False, source.numbers[exc.last], found_cmd)
        found_cmd = found_cmd or bool(unit.commands)
        index = unit.last + 1
    return CheckResult(found_cmd, None, found_cmd)
