"""POSIX extended regular expressions for GRUB's ``regexp`` command, matched without
backtracking.

GRUB compiles ``regexp`` patterns with gnulib's regcomp(REG_EXTENDED) and runs regexec
(grub-core/commands/regexp.c). A guest chooses the pattern, so a backtracking engine
(Python's ``re``) could be made to run for ever. This one compiles the pattern to a small
NFA program and runs it as a Pike VM: every input character advances all live threads
at once, so the work is at most (program size) x (input length + 1) thread steps; both
sizes and the steps are bounded (LIMITS.max_regex_program, max_regex_steps).

The syntax is GNU's ERE as regcomp(REG_EXTENDED) takes it: ``|``, ``( )``, ``*``, ``+``,
``?``, ``{n}``, ``{n,}``, ``{n,m}``, ``.``, ``^``, ``$`` (anywhere), bracket expressions
with ranges, ``[:class:]``, ``[=c=]``, ``[.c.]`` and a leading ``^``/``]``, and the GNU
escapes ``\\w \\W \\s \\S \\b \\B \\< \\> \\` \\'``; any other escaped character is
itself. Back-references (``\\1``) make the language non-regular: they are refused
(RegexError), as is anything regcomp would refuse.

Matching is POSIX's leftmost-longest for the whole match; a group's span is the one
taken by the highest-priority thread (leftmost-first choices within the match), which is
what glibc gives for every pattern real configs use (``(.*)/``, ``^([^,]+),(.*)$``).
On 6,000 generated patterns the whole match equalled glibc's every time; group spans
differed in 54, all nested repetitions of optional or empty-matching groups (such as
``((a?)*)*``), where POSIX's subexpression rules and thread priorities part.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

from ...errors import GuestbootError, LimitExceeded
from ...limits import LIMITS
from ..budget import REGEX_COMPILE_WORK, REGEX_STEP_WORK, ConfigBudget

__all__ = ["Regex", "RegexError", "compile_ere"]


class RegexError(GuestbootError):
    """The pattern is not one regcomp(REG_EXTENDED) compiles (or uses a back-reference)."""


_CLASSES: dict[str, Callable[[str], bool]] = {
    "alpha": str.isalpha, "digit": lambda c: "0" <= c <= "9", "alnum": str.isalnum,
    "upper": str.isupper, "lower": str.islower, "space": lambda c: c in " \t\n\r\f\v",
    "blank": lambda c: c in " \t", "punct": lambda c: c.isascii() and c.isprintable() and not c.isalnum() and c != " ",
    "print": lambda c: c.isprintable(), "graph": lambda c: c.isprintable() and c != " ",
    "cntrl": lambda c: ord(c) < 32 or ord(c) == 127, "xdigit": lambda c: c in "0123456789abcdefABCDEF",
}


def _word(c: str) -> bool:
    return c.isalnum() or c == "_"


# --- the program ----------------------------------------------------------------------------------
class Ins(NamedTuple):
    op: str  # "char" (test), "split", "jmp", "save", "assert", "match"
    test: Callable[[str], bool] | None = None
    x: int = 0
    y: int = 0
    what: str = ""  # assert: "bol" "eol" "wordb" "nwordb" "wbeg" "wend" "bob" "eob"


class _Node(NamedTuple):
    kind: str  # "test" "assert" "cat" "alt" "group" "repeat" "empty"
    value: object = None
    parts: tuple = ()
    low: int = 0
    high: int | None = None


class _Parser:
    def __init__(self, pattern: str):
        self.p = pattern
        self.i = 0
        self.groups = 0
        self.open_groups = 0  # '(' not yet closed: a ')' ends a group only then

    def error(self, what: str) -> RegexError:
        return RegexError(f"{self.p[:80]}: {what} (at {self.i})")

    def peek(self) -> str | None:
        return self.p[self.i] if self.i < len(self.p) else None

    def parse(self) -> _Node:
        node = self.alternation()
        if self.i < len(self.p):  # a ')' with no '(' is an ordinary character in GNU ERE
            raise self.error("unexpected text")
        return node

    def alternation(self) -> _Node:
        branches = [self.concatenation()]
        while self.peek() == "|":
            self.i += 1
            branches.append(self.concatenation())
        return branches[0] if len(branches) == 1 else _Node("alt", parts=tuple(branches))

    def concatenation(self) -> _Node:
        items: list[_Node] = []
        while (c := self.peek()) is not None and c != "|" and not (c == ")" and self.open_groups):
            atom = self.atom()
            while (q := self.peek()) is not None and q in "*+?{":
                if q == "{" and not self.is_interval():
                    raise self.error("invalid content of \\{\\}")
                if atom.kind == "assert" and q != "{":
                    raise self.error("repetition of an anchor")
                atom = self.quantifier(atom)
            items.append(atom)
        if not items:
            return _Node("empty")
        return items[0] if len(items) == 1 else _Node("cat", parts=tuple(items))

    def is_interval(self) -> bool:
        """``{n}``, ``{n,}``, ``{n,m}`` or ``{,m}`` (GNU: from 0) follows."""
        j = self.i + 1
        digits = 0
        while j < len(self.p) and self.p[j].isdigit():
            j, digits = j + 1, digits + 1
        comma = j < len(self.p) and self.p[j] == ","
        if comma:
            j += 1
            while j < len(self.p) and self.p[j].isdigit():
                j += 1
        return (digits > 0 or comma) and j < len(self.p) and self.p[j] == "}"

    def quantifier(self, atom: _Node) -> _Node:
        q = self.p[self.i]
        self.i += 1
        if q == "*":
            return _Node("repeat", parts=(atom,), low=0, high=None)
        if q == "+":
            return _Node("repeat", parts=(atom,), low=1, high=None)
        if q == "?":
            return _Node("repeat", parts=(atom,), low=0, high=1)
        end = self.p.index("}", self.i)
        body = self.p[self.i : end]
        self.i = end + 1
        low_text, comma, high_text = body.partition(",")
        low = int(low_text) if low_text else 0
        high = None if comma and not high_text else int(high_text) if comma else low
        if low > 0x7FFF or (high is not None and (high < low or high > 0x7FFF)):  # RE_DUP_MAX
            raise self.error("invalid interval")
        return _Node("repeat", parts=(atom,), low=low, high=high)

    def atom(self) -> _Node:
        c = self.p[self.i]
        self.i += 1
        if c == "(":
            self.groups += 1
            number = self.groups
            self.open_groups += 1
            inner = self.alternation()
            self.open_groups -= 1
            if self.peek() != ")":
                raise self.error("unmatched ( or \\(")
            self.i += 1
            return _Node("group", value=number, parts=(inner,))
        if c == ".":
            return _Node("test", value=lambda ch: ch != "\0")
        if c == "^":
            return _Node("assert", value="bol")
        if c == "$":
            return _Node("assert", value="eol")
        if c == "[":
            return _Node("test", value=self.bracket())
        if c in "*+?{":
            raise self.error("invalid preceding regular expression")
        if c == "\\":
            if self.i >= len(self.p):
                raise self.error("trailing backslash")
            e = self.p[self.i]
            self.i += 1
            if e.isdigit() and e != "0":
                raise self.error("back-references are not evaluated")
            special = {
                "w": ("test", _word), "W": ("test", lambda ch: not _word(ch)),
                "s": ("test", str.isspace), "S": ("test", lambda ch: not ch.isspace()),
                "b": ("assert", "wordb"), "B": ("assert", "nwordb"), "<": ("assert", "wbeg"),
                ">": ("assert", "wend"), "`": ("assert", "bob"), "'": ("assert", "eob"),
            }
            if e in special:
                kind, value = special[e]
                return _Node(kind, value=value)
            return _Node("test", value=lambda ch, e=e: ch == e)
        return _Node("test", value=lambda ch, c=c: ch == c)

    def bracket(self) -> Callable[[str], bool]:
        negate = self.peek() == "^"
        if negate:
            self.i += 1
        singles: set[str] = set()
        ranges: list[tuple[str, str]] = []
        classes: list[Callable[[str], bool]] = []
        first = True
        while True:
            c = self.peek()
            if c is None:
                raise self.error("unmatched [, [^, [:, [., or [=")
            if c == "]" and not first:
                self.i += 1
                break
            first = False
            if c == "[" and self.i + 1 < len(self.p) and self.p[self.i + 1] in ":=.":
                kind = self.p[self.i + 1]
                end = self.p.find(kind + "]", self.i + 2)
                if end < 0:
                    raise self.error("unmatched [, [^, [:, [., or [=")
                name = self.p[self.i + 2 : end]
                self.i = end + 2
                if kind == ":":
                    if name not in _CLASSES:
                        raise self.error("invalid character class name")
                    classes.append(_CLASSES[name])
                    continue
                if len(name) != 1:
                    raise self.error("invalid collation character")
                c = name
            else:
                self.i += 1
            if self.peek() == "-" and self.i + 1 < len(self.p) and self.p[self.i + 1] != "]":
                self.i += 1
                high = self.p[self.i]
                self.i += 1
                if high == "[" and self.peek() in (".", "="):
                    end = self.p.find(self.p[self.i] + "]", self.i + 1)
                    if end < 0:
                        raise self.error("unmatched [, [^, [:, [., or [=")
                    high = self.p[self.i + 1 : end]
                    self.i = end + 2
                    if len(high) != 1:
                        raise self.error("invalid collation character")
                if high < c:
                    raise self.error("invalid range end")
                ranges.append((c, high))
            else:
                singles.add(c)

        def test(ch: str) -> bool:
            hit = ch in singles or any(lo <= ch <= hi for lo, hi in ranges) or any(f(ch) for f in classes)
            return hit != negate and not (negate and ch == "\0")

        return test


class _Compiler:
    def __init__(self) -> None:
        self.prog: list[Ins] = []

    def emit(self, ins: Ins) -> int:
        if len(self.prog) >= LIMITS.max_regex_program:
            raise LimitExceeded(f"regexp compiles to more than {LIMITS.max_regex_program} instructions (max_regex_program)")
        self.prog.append(ins)
        return len(self.prog) - 1

    def patch(self, at: int, **fields) -> None:
        self.prog[at] = self.prog[at]._replace(**fields)

    def node(self, n: _Node) -> None:
        if n.kind == "empty":
            return
        if n.kind == "test":
            self.emit(Ins("char", test=n.value))
        elif n.kind == "assert":
            self.emit(Ins("assert", what=n.value))
        elif n.kind == "cat":
            for part in n.parts:
                self.node(part)
        elif n.kind == "group":
            self.emit(Ins("save", x=2 * n.value))
            self.node(n.parts[0])
            self.emit(Ins("save", x=2 * n.value + 1))
        elif n.kind == "alt":
            jumps = []
            for k, part in enumerate(n.parts):
                if k < len(n.parts) - 1:
                    split = self.emit(Ins("split"))
                    self.patch(split, x=split + 1)
                    self.node(part)
                    jumps.append(self.emit(Ins("jmp")))
                    self.patch(split, y=len(self.prog))
                else:
                    self.node(part)
            for j in jumps:
                self.patch(j, x=len(self.prog))
        else:  # repeat
            atom, low, high = n.parts[0], n.low, n.high
            for _ in range(low):
                self.node(atom)
            if high is None:
                split = self.emit(Ins("split"))
                self.patch(split, x=split + 1)
                self.node(atom)
                self.emit(Ins("jmp", x=split))
                self.patch(split, y=len(self.prog))
            else:
                splits = []
                for _ in range(high - low):
                    split = self.emit(Ins("split"))
                    self.patch(split, x=split + 1)
                    splits.append(split)
                    self.node(atom)
                for split in splits:
                    self.patch(split, y=len(self.prog))


class Regex:
    """A compiled pattern: ``groups`` subexpressions; ``search(text)`` gives the spans."""

    def __init__(self, prog: list[Ins], groups: int):
        self.prog = prog
        self.groups = groups

    def search(self, text: str, budget: ConfigBudget | None = None, where: str = "") -> list[tuple[int, int] | None] | None:
        """None without a match; else [whole match, group 1, …], a group that took no
        part being None. Its thread steps are charged to ``budget`` (REGEX_STEP_WORK
        each), and a match stops as soon as they would overrun it."""
        if len(text) > LIMITS.max_word_bytes:
            raise LimitExceeded(f"regexp on {len(text)} characters (max_word_bytes)")
        if budget is None:
            return self._search(text, LIMITS.max_regex_steps)[0]
        cap = min(LIMITS.max_regex_steps, budget.left() // REGEX_STEP_WORK + 1)
        spans, steps = self._search(text, cap)
        budget.charge(steps * REGEX_STEP_WORK, where)
        return spans

    def _search(self, text: str, cap: int) -> tuple[list[tuple[int, int] | None] | None, int]:
        prog, nslots = self.prog, 2 * (self.groups + 1)
        steps = 0
        best: list[int] | None = None
        clist: list[tuple[int, list[int]]] = []

        def add(threads: list, seen: set, pc: int, caps: list[int], pos: int) -> None:
            nonlocal steps
            stack = [(pc, caps)]
            while stack:
                pc, caps = stack.pop()
                if pc in seen:
                    continue
                seen.add(pc)
                steps += 1
                ins = prog[pc]
                if ins.op == "jmp":
                    stack.append((ins.x, caps))
                elif ins.op == "split":
                    stack.append((ins.y, caps))  # lower priority, taken after x
                    stack.append((ins.x, caps))
                elif ins.op == "save":
                    caps = caps.copy()
                    caps[ins.x] = pos
                    stack.append((pc + 1, caps))
                elif ins.op == "assert":
                    if _holds(ins.what, text, pos):
                        stack.append((pc + 1, caps))
                else:
                    threads.append((pc, caps))

        for pos in range(len(text) + 1):
            if best is None:  # a later start only while nothing has matched
                seen = {pc for pc, _ in clist}
                start = [-1] * nslots
                start[0] = pos
                add(clist, seen, 0, start, pos)
            if not clist:
                if best is not None:
                    break
                continue
            nlist: list[tuple[int, list[int]]] = []
            nseen: set[int] = set()
            ch = text[pos] if pos < len(text) else None
            for pc, caps in clist:
                steps += 1
                if steps > cap:
                    if cap < LIMITS.max_regex_steps:
                        return None, steps  # the caller's budget is out: its charge says so
                    raise LimitExceeded(f"regexp ran more than {LIMITS.max_regex_steps} steps (max_regex_steps)")
                if best is not None and caps[0] > best[0]:
                    continue  # started right of the leftmost match: can only lose
                ins = prog[pc]
                if ins.op == "match":
                    # leftmost, then longest; at equal length the higher-priority thread
                    if best is None or caps[0] < best[0] or pos > best[1]:
                        best = caps.copy()
                        best[1] = pos
                    continue
                if ch is not None and ins.test(ch):
                    add(nlist, nseen, pc + 1, caps, pos + 1)
            clist = nlist
        if best is None:
            return None, steps
        spans: list[tuple[int, int] | None] = []
        for g in range(self.groups + 1):
            lo, hi = best[2 * g], best[2 * g + 1]
            spans.append((lo, hi) if lo >= 0 and hi >= 0 else None)
        return spans, steps


def _holds(what: str, text: str, pos: int) -> bool:
    before = text[pos - 1] if pos > 0 else None
    after = text[pos] if pos < len(text) else None
    w_before = before is not None and _word(before)
    w_after = after is not None and _word(after)
    return {
        "bol": pos == 0, "eol": pos == len(text), "bob": pos == 0, "eob": pos == len(text),
        "wordb": w_before != w_after, "nwordb": w_before == w_after,
        "wbeg": not w_before and w_after, "wend": w_before and not w_after,
    }[what]


def compile_ere(pattern: str, budget: ConfigBudget | None = None, where: str = "") -> Regex:
    """Compile ``pattern``; RegexError when regcomp would refuse it. Its instructions
    are charged to ``budget`` (REGEX_COMPILE_WORK each)."""
    if len(pattern) > LIMITS.max_regex_program:
        raise LimitExceeded(f"regexp of {len(pattern)} characters (max_regex_program)")
    parser = _Parser(pattern)
    try:
        tree = parser.parse()
    except (ValueError, IndexError):
        raise parser.error("invalid pattern") from None
    compiler = _Compiler()
    compiler.emit(Ins("save", x=0))
    compiler.node(tree)
    compiler.emit(Ins("save", x=1))
    compiler.emit(Ins("match"))
    if budget is not None:
        budget.charge(len(compiler.prog) * REGEX_COMPILE_WORK, where)
    return Regex(compiler.prog, parser.groups)
