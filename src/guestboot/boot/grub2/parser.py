"""GRUB 2 script grammar (grub-core/script/parser.y) as a recursive-descent parser.

One call parses one *unit*: what GRUB's grub_script_parse reads from one first line plus
the further lines the lexer pulls while a construct is open. The tree mirrors GRUB's
command kinds: command lines (with an optional ``{ block }`` argument), if, for,
while/until. ``function`` definitions take effect while parsing, as in GRUB.

A unit's tree is charged to the evaluation's budget (boot/budget.py) token by token while
it is built: its work (TOKEN_WORK a token) and what it holds (the token's text and
TOKEN_HELD), so one line of a million ``;`` or words fails before it is a tree of hundreds
of MiB. The caller releases ``Unit.held`` when it is done with the unit; a function keeps
its body, and the bytes of its tokens are handed to ``on_function`` to stay held.
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Union

from ...errors import LimitExceeded
from ...limits import LIMITS
from ..budget import TOKEN_HELD, TOKEN_WORK, ConfigBudget
from .lexer import Lexer, LexError, Part, Source, Token


class ParseError(Exception):
    """A syntax error; ``last`` is the index of the last line the unit had read."""

    def __init__(self, message: str, last: int):
        super().__init__(message)
        self.last = last


# The tree's nodes are mutable and compare by identity, as GRUB's command structures do.


class Block:
    __slots__ = ("source", "body")

    def __init__(self, source: str, body: list["Node"]) -> None:
        self.source = source  # the text between the braces, as GRUB records it
        self.body = body

    def __repr__(self) -> str:
        return f"Block(source={self.source!r}, body={self.body!r})"


class Command:
    __slots__ = ("words", "block")

    def __init__(self, words: list[tuple[Part, ...]], block: Block | None = None) -> None:
        self.words = words
        self.block = block

    def __repr__(self) -> str:
        return f"Command(words={self.words!r}, block={self.block!r})"


class If:
    __slots__ = ("cond", "then", "orelse")

    def __init__(self, cond: list["Node"], then: list["Node"], orelse: "list[Node] | If | None" = None) -> None:
        self.cond = cond
        self.then = then
        self.orelse = orelse

    def __repr__(self) -> str:
        return f"If(cond={self.cond!r}, then={self.then!r}, orelse={self.orelse!r})"


class For:
    __slots__ = ("var", "words", "body")

    def __init__(self, var: str, words: list[tuple[Part, ...]], body: list["Node"]) -> None:
        self.var = var
        self.words = words
        self.body = body

    def __repr__(self) -> str:
        return f"For(var={self.var!r}, words={self.words!r}, body={self.body!r})"


class While:
    __slots__ = ("cond", "body", "until")

    def __init__(self, cond: list["Node"], body: list["Node"], until: bool = False) -> None:
        self.cond = cond
        self.body = body
        self.until = until

    def __repr__(self) -> str:
        return f"While(cond={self.cond!r}, body={self.body!r}, until={self.until!r})"


Node = Union[Command, If, For, While]


class Unit:
    __slots__ = ("commands", "last", "held")

    def __init__(self, commands: list[Node] | None = None, last: int = 0) -> None:
        self.commands: list[Node] = [] if commands is None else commands
        self.last = last  # index of the last line the unit read
        self.held = 0  # bytes its tree holds in the budget (released by the caller)

    def __repr__(self) -> str:
        return f"Unit(commands={self.commands!r}, last={self.last!r})"


_COMMAND_START_KW = ("if", "for", "while", "until")


OnFunction = Callable[[str, "list[Node]", int], None]  # (name, body, bytes its tree holds)


class Parser:
    def __init__(self, lexer: Lexer, on_function: OnFunction, budget: ConfigBudget, where: str = ""):
        self.lx = lexer
        self.on_function = on_function
        self._tok: Token | None = None
        self.depth = 0
        self.budget = budget
        self.where = where
        self.held = 0  # bytes held for the tokens read so far

    # --- token helpers ---------------------------------------------------------------
    def peek(self) -> Token:
        if self._tok is None:
            tok = self._tok = self.lx.next()
            size = len(tok.text) + TOKEN_HELD
            self.budget.charge(TOKEN_WORK, self.where)
            self.budget.hold(size, self.where)
            self.held += size
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
        start = self.held
        self.newlines0()
        if self.take().kind != "{":
            raise self.error("expected '{' after the function name")
        body = self.commands_delim()
        if self.take().kind != "}":
            raise self.error("expected '}' to end the function")
        self.lx.refs -= 1
        self.on_function(name.text, body, self.held - start)

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


def parse_unit(source: Source, first: int, on_function: OnFunction, budget: ConfigBudget, where: str = "") -> Unit:
    """Parse what GRUB parses starting at line ``first`` of ``source`` (reading further
    lines as GRUB's lexer would), charged to ``budget``; the caller releases the unit's
    ``held`` bytes when done with it. Raises ParseError for a syntax error (nothing left
    held)."""
    lexer = Lexer(source, first)
    parser = Parser(lexer, on_function, budget, f"{where}:{source.numbers[first]}" if where else "")
    try:
        unit = parser.unit()
    except LexError as exc:
        budget.release(parser.held)
        raise ParseError(str(exc), lexer.line) from None
    except RecursionError:
        budget.release(parser.held)
        raise LimitExceeded("GRUB script nested too deeply") from None
    except BaseException:
        budget.release(parser.held)
        raise
    unit.held = parser.held
    return unit


class CheckResult(NamedTuple):
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
    budget = ConfigBudget()
    while index < len(source):
        try:
            unit = parse_unit(source, index, lambda name, body, held: None, budget)
        except ParseError as exc:
            return CheckResult(False, source.numbers[exc.last], found_cmd)
        budget.release(unit.held)
        found_cmd = found_cmd or bool(unit.commands)
        index = unit.last + 1
    return CheckResult(found_cmd, None, found_cmd)
