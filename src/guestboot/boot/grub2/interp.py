"""The GRUB 2 script executor: grub-core/script/execute.c's rules over our parse tree.
(What it holds is in state.py; how commands reach guest files, in files.py.)

What it keeps from GRUB, on purpose:

* a config file is read line by line and parsed one unit at a time; a unit with a syntax
  error is dropped (GRUB prints the error) and reading goes on after the lines it used;
  lines whose first character is ``#`` are skipped before parsing (normal/main.c);
* every command sets ``$?``; a command that is neither a GRUB command nor a function is
  an assignment when it holds ``=``, otherwise "can't find command" is printed and, as in
  execute.c, ``$?`` still ends up 0;
* expansion builds each argument from its parts, splits unquoted variables on blanks, drops
  words that expand to nothing, then removes the backslashes of unquoted text;
* ``break``/``continue``/``return`` use GRUB's counters, functions are global and are
  defined while parsing, positional parameters belong to the innermost function or entry;
* variables live in contexts: a submenu and ``configfile`` start a new context holding
  only the exported variables and drop it afterwards (grub_env_context_open; checked
  against Debian's GRUB 2.06 in grub-emu).
"""

from __future__ import annotations

import re

from ...errors import LimitExceeded
from ...limits import LIMITS
from ..budget import CHAR_LOOP_WORK, HELD_ITEM, WORK_ITEM, check_lines
from ..grubnum import BLANKS
from . import errors as E
from .errors import GrubError
from .lexer import DQSTR, DQVAR, GETTEXT, SQSTR, TEXT, VAR, Part, Source
from .parser import Block, Command, For, If, Node as AstNode, ParseError, While, parse_unit
from .dialect import DIALECT_COMMANDS
from .state import BootNow, Context, Loaded, MenuReplaced, RawEntry, Shared

__all__ = ["BootNow", "Context", "Interp", "Loaded", "MenuReplaced", "RawEntry", "Shared"]

_SPACE = BLANKS  # grub_isspace: a variable's value is split into words on these


class Interp:
    def __init__(self, shared: Shared, ctx: Context, *, where: str = ""):
        self.sh = shared
        self.ctx = ctx
        self.where = where
        self.line = 0  # the line of ``where`` whose unit runs now (0: none)
        self.scope: list[str] | None = None
        self.active_loops = 0
        self.active_breaks = 0
        self.is_continue = False
        self.function_return = False
        self.depth = 0
        self.call_depth = 0
        self.source_depth = 0
        self.loaded: Loaded | None = None

    @property
    def at(self) -> str:
        """Where the work happens, for budget errors: the file (or entry) and its line."""
        return f"{self.where}:{self.line}" if self.where and self.line else self.where

    # --- variables -------------------------------------------------------------------
    def get(self, name: str) -> str | None:
        return self.ctx.vars.get(name)

    def set(self, name: str, value: str) -> None:
        if name == "root" and len(value) >= 2 and value[0] == "(" and value[-1] == ")":
            value = value[1:-1]  # kern/main.c grub_env_write_root
        if len(value) > LIMITS.max_word_bytes:
            raise LimitExceeded(f"variable {name} would hold more than {LIMITS.max_word_bytes} bytes")
        if name not in self.ctx.vars and len(self.ctx.vars) >= LIMITS.max_variables:
            raise LimitExceeded(f"more than {LIMITS.max_variables} GRUB variables")
        budget = self.sh.budget
        old = self.ctx.vars.own(name)
        if old is not None:  # replaced in this context: its bytes are free again
            budget.release(len(old) + HELD_ITEM)
        budget.hold(len(value) + HELD_ITEM, self.at)
        self.ctx.vars[name] = value
        if name == "default":
            self.ctx.default_written = True

    def unset(self, name: str) -> None:
        old = self.ctx.vars.own(name)
        if old is not None:
            self.sh.budget.release(len(old) + HELD_ITEM)
        self.ctx.vars.pop(name, None)
        if name == "default":
            self.ctx.default_written = True
        self.ctx.exported.discard(name)

    def export(self, name: str) -> None:
        if name not in self.ctx.vars:
            self.set(name, "")
        self.ctx.exported.add(name)

    # --- messages --------------------------------------------------------------------
    def warn(self, message: str) -> None:
        where = f"{self.where}: " if self.where else ""
        line = f"{where}{message}"
        self.sh.budget.charge(len(line) + WORK_ITEM, self.at)
        self.sh.budget.hold(len(line) + HELD_ITEM, self.at)
        self.sh.warnings.append(line)

    def echo(self, text: str) -> None:
        self.sh.budget.charge(len(text) + WORK_ITEM, self.at)
        self.sh.budget.hold(len(text) + HELD_ITEM, self.at)
        self.sh.output.append(text)

    # --- reading and running config text ---------------------------------------------
    def run_text(self, text: str, *, config_file: bool, stop_on_error: bool = False) -> int:
        """Parse and run ``text`` the way GRUB reads a config file (``config_file``: lines
        starting with '#' skipped, a unit with a syntax error dropped) or a menu entry's
        source (grub_script_execute_sourcecode: a syntax error ends it)."""
        check_lines(text, self.where)
        self.sh.budget.charge(len(text), self.where)  # read, split into lines and lexed
        if config_file:
            numbered = [(n, line) for n, line in enumerate(_lines(text), start=1) if not line.startswith("#")]
        else:
            # grub_script_execute_sourcecode's getline: split at every newline, so text
            # ending in a newline has a last, empty line (and carriage returns stay).
            numbered = list(enumerate(text.split("\n"), start=1))
        source = Source([line for _, line in numbered], [n for n, _ in numbered])
        outer_line = self.line
        try:
            return self._run_units(source, config_file, stop_on_error)
        finally:
            self.line = outer_line

    def _run_units(self, source: Source, config_file: bool, stop_on_error: bool) -> int:
        ret = 0
        index = 0
        while index < len(source):
            self.line = source.numbers[index]
            try:
                unit = parse_unit(source, index, self._define_function, self.sh.budget, self.where)
            except ParseError as exc:
                self.warn(f"syntax error near line {source.numbers[exc.last]}: {exc}; statement skipped")
                if stop_on_error:
                    return E.INVALID_COMMAND
                index = exc.last + 1
                continue
            index = unit.last + 1
            self.sh.budget.charge(WORK_ITEM, self.at)  # the unit's parse
            try:
                if unit.commands:
                    ret = self.exec_list(unit.commands)
                    self.set("?", str(ret))
                elif not config_file:
                    ret = 0  # GRUB 2.06 lets an empty last line decide the result (eval, entries)
            finally:
                self.sh.budget.release(unit.held)  # its tree is dropped (a function keeps its own)
        return ret

    def _define_function(self, name: str, body: list[AstNode], held: int) -> None:
        """A function's body stays held while it is defined here (replaced: its bytes
        are free again, unless a menu snapshot still has it)."""
        functions = self.sh.functions
        if name not in functions and len(functions) >= LIMITS.max_functions:
            raise LimitExceeded(f"more than {LIMITS.max_functions} GRUB functions (max_functions)")
        if functions.own(name) is not None:
            self.sh.budget.release(self.sh.function_held.get(name, 0))
        self.sh.budget.hold(held + HELD_ITEM, self.at)
        self.sh.function_held[name] = held + HELD_ITEM
        functions[name] = body

    # --- execution -------------------------------------------------------------------
    def exec_list(self, cmds: list[AstNode]) -> int:
        ret = 0
        for cmd in cmds:
            if self.active_breaks:
                break
            ret = self.exec_cmd(cmd)
            if self.function_return:
                break
        return ret

    def exec_cmd(self, node: AstNode | list[AstNode] | None) -> int:
        if node is None:
            return 0
        self.sh.steps += 1
        if self.sh.steps > LIMITS.max_script_steps:
            raise LimitExceeded(f"GRUB script ran more than {LIMITS.max_script_steps} commands")
        if self.depth >= LIMITS.max_script_recursion:  # execute.c's recursion bound, GRUB's own error
            self.warn("error: maximum recursion depth exceeded")
            return E.RECURSION_DEPTH
        self.depth += 1
        try:
            if isinstance(node, list):
                ret = self.exec_list(node)
            elif isinstance(node, Command):
                ret = self.exec_cmdline(node)
            elif isinstance(node, If):
                ret = self.exec_if(node)
            elif isinstance(node, For):
                ret = self.exec_for(node)
            else:
                ret = self.exec_while(node)
        finally:
            self.depth -= 1
        self.set("?", str(ret))
        return ret

    def exec_if(self, node: If) -> int:
        ret = self.exec_cmd(node.cond)
        if self.function_return:
            return ret
        if self.get("?") == "0":
            return self.exec_cmd(node.then)
        return self.exec_cmd(node.orelse)

    def exec_for(self, node: For) -> int:
        try:
            words = self.expand(node.words, None)
        except GrubError as exc:
            self.report(exc)
            return exc.code
        self.active_loops += 1
        result = 0
        for count, word in enumerate(words):
            if count >= LIMITS.max_loop_iterations:
                raise LimitExceeded(f"a GRUB for loop ran more than {LIMITS.max_loop_iterations} times")
            if self.is_continue and self.active_breaks == 1:
                self.active_breaks = 0
            if not self.active_breaks:
                self.set(node.var, word)
                result = self.exec_cmd(node.body)
                if self.function_return:
                    break
        if self.active_breaks:
            self.active_breaks -= 1
        self.active_loops -= 1
        return result

    def exec_while(self, node: While) -> int:
        self.active_loops += 1
        count = 0
        while True:
            count += 1
            if count > LIMITS.max_loop_iterations:
                raise LimitExceeded(f"a GRUB while/until loop ran more than {LIMITS.max_loop_iterations} times")
            result = self.exec_cmd(node.cond)
            if self.function_return:
                break
            if (not result) if node.until else result:
                break
            result = self.exec_cmd(node.body)
            if self.function_return:
                break
            if self.active_breaks == 1 and self.is_continue:
                self.active_breaks = 0
            if self.active_breaks:
                break
        if self.active_breaks:
            self.active_breaks -= 1
        self.active_loops -= 1
        return result

    def report(self, exc: GrubError) -> None:
        if not exc.silent and exc.code != E.TEST_FAILURE:
            self.warn(f"error: {exc.message}")

    def exec_cmdline(self, node: Command) -> int:
        from .commands import COMMANDS

        try:
            argv = self.expand(node.words, node.block)
        except GrubError as exc:
            self.report(exc)
            return exc.code
        if not argv:
            return 0
        invert = False
        name, args = argv[0], argv[1:]
        if name == "!":
            if not args:
                self.warn("error: no command is specified")
                return E.BAD_ARGUMENT
            invert = True
            name, args = args[0], args[1:]
        command = COMMANDS.get(name)
        if name in DIALECT_COMMANDS and name not in self.sh.dialect.commands:
            command = None  # a command this GRUB build does not have
        func = None if command else self.sh.functions.get(name)
        if command is None and func is None:
            eq = name.find("=")
            if eq >= 0:
                self.set(name[:eq], name[eq + 1 :])
            elif name == "blscfg":
                self.warn(f"error: can't find command `blscfg' (the {self.sh.dialect.name} dialect of GRUB 2.06 "
                          "has no blscfg; BLS entries are not read)")
            else:
                self.warn(f"error: can't find command `{name[:20]}'")
            return 0
        err: GrubError | None = None
        try:
            if command is not None:
                ret = command(self, args, node.block)
            else:
                ret = self.call_function(name, func, args)
        except GrubError as exc:
            # without its traceback: kept past the except, it would make a cycle (its
            # frames hold it) that keeps the command's arguments alive until a GC pass
            err, ret = exc.with_traceback(None), exc.code
        if invert:
            if ret == E.TEST_FAILURE:
                ret, err = 0, None
            elif ret == 0:
                ret, err = E.TEST_FAILURE, None
            else:
                if err is not None:
                    self.report(err)
                ret, err = 0, None
        if err is not None:
            self.report(err)
        return ret

    def call_function(self, name: str, body: list[AstNode] | None, args: list[str]) -> int:
        assert body is not None
        if self.call_depth >= LIMITS.max_call_depth:
            raise LimitExceeded(f"GRUB functions nested more than {LIMITS.max_call_depth} deep (in {name})")
        loops = self.active_loops
        self.active_loops = 0
        old_scope = self.scope
        self.scope = list(args)
        self.call_depth += 1
        try:
            ret = self.exec_cmd(body)
        finally:
            self.call_depth -= 1
            self.function_return = False
            self.active_loops = loops
            self.scope = old_scope
        return ret

    def run_new_scope(self, source: str, args: list[str]) -> int:
        """grub_script_execute_new_scope: run source text with positional parameters."""
        old_scope = self.scope
        self.scope = list(args)
        try:
            return self.run_text(source, config_file=False, stop_on_error=True)
        finally:
            self.scope = old_scope

    # --- expansion (grub_script_arglist_to_argv) ---------------------------------------
    def expand(self, words: list[tuple[Part, ...]], block: Block | None) -> list[str]:
        slots: list[list[str] | None] = []
        total = 0

        def next_slot() -> None:
            if slots and slots[-1] is None:
                return
            slots.append(None)

        def append(raw: str) -> None:
            nonlocal total
            total += len(raw)
            if total > LIMITS.max_word_bytes:
                raise LimitExceeded(f"a GRUB command line expands past {LIMITS.max_word_bytes} bytes")
            if slots[-1] is None:
                slots[-1] = [raw]
            else:
                slots[-1].append(raw)  # joined once at the end: a word of many parts costs its length

        for parts in words:
            next_slot()
            for part in parts:
                if part.kind in (VAR, DQVAR):
                    quote = _escape if part.kind == VAR else _escape_quoted  # "$v" expands no wildcards
                    for i, value in enumerate(self.var_values(part.text, part.kind == VAR)):
                        if i:
                            next_slot()
                        append(quote(value))
                elif part.kind == TEXT:
                    if part.text:
                        append(part.text)
                elif part.kind in (DQSTR, SQSTR):
                    append(_escape_quoted(part.text))
                elif part.kind == GETTEXT:
                    append(_escape_quoted(self.gettext(part.text)))
        if block is not None:
            next_slot()
            append("{" + _escape(block.source) + "}")
        if slots and slots[-1] is None:
            slots.pop()
        self.sh.budget.charge(total + WORK_ITEM * (len(slots) + 1), self.at)
        joined = ["".join(s) if s else "" for s in slots]
        if not self.sh.wildcards:
            return [_unescape(s) for s in joined]
        from .wildcard import expand as expand_wildcards

        out: list[str] = []
        for raw in joined:
            found = expand_wildcards(self, raw)
            if found is None:
                out.append(_unescape(raw))
                continue
            for word in found:
                total += len(word)
                if total > LIMITS.max_word_bytes:
                    raise LimitExceeded(f"a GRUB command line expands past {LIMITS.max_word_bytes} bytes")
                out.append(word)
        return out

    def var_values(self, name: str, split: bool) -> list[str]:
        special = name[0].isdigit() or name in ("#", "*", "@")
        if not special:
            value = self.get(name)
            if not value:
                return []
            return _split(value) if split else [value]
        if self.scope is None:
            return []
        if name == "#":
            return [str(len(self.scope))]
        if name == "*" and not split:
            return [" ".join(self.scope)]
        if name in ("*", "@"):
            if split:
                return [w for arg in self.scope for w in _split(arg)]
            return list(self.scope)
        digits = name.lstrip("0")  # grub_strtoul: any number past the arguments is out of range
        if not digits or len(digits) > len(str(len(self.scope))) or int(digits) > len(self.scope):
            return []
        num = int(digits)
        value = self.scope[num - 1]
        return _split(value) if split else [value]

    def gettext(self, template: str) -> str:
        """$"..." strings: no translation catalogue, so the text itself, with the
        variables it names replaced (execute.c parse_string/gettext_putvar)."""
        self.sh.budget.charge(len(template) * CHAR_LOOP_WORK, self.at)  # a loop over its characters
        out: list[str] = []
        i, n = 0, len(template)
        escaped = False
        while i < n:
            c = template[i]
            if c == "\\":
                escaped = not escaped
                if not escaped:
                    out.append("\\")
                i += 1
                continue
            if c == "$":
                if escaped:
                    escaped = False
                    out.append("$")
                    i += 1
                    continue
                i += 1
                nxt = template[i] if i < n else ""
                if nxt == "{":
                    close = template.find("}", i + 1)
                    if close < 0:
                        break
                    out.append(self._gettext_var(template[i + 1 : close]))
                    i = close + 1
                elif nxt.isdigit():
                    j = i
                    while j < n and template[j].isdigit():
                        j += 1
                    out.append(self._gettext_var(template[i:j]))
                    i = j
                elif nxt.isalpha() or nxt == "_":
                    j = i
                    while j < n and (template[j].isalnum() or template[j] == "_"):
                        j += 1
                    out.append(self._gettext_var(template[i:j]))
                    i = j
                elif nxt in ("?", "#"):
                    out.append(self._gettext_var(nxt))
                    i += 1
                else:
                    out.append("$")
                continue
            if escaped:
                out.append("\\")
            escaped = False
            out.append(c)
            i += 1
        return "".join(out)

    def _gettext_var(self, name: str) -> str:
        if name == "#" and self.scope is not None:
            return str(len(self.scope))
        return self.get(name) or ""


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\")


def _escape_quoted(value: str) -> str:
    """Quoted text: its backslashes, and its wildcard characters (execute.c's
    wildcard_escape), are literal."""
    return value.replace("\\", "\\\\").replace("*", "\\*").replace("?", "\\?")


_ESCAPED = re.compile(r"\\(.?)", re.S)  # a backslash and what it escapes (nothing at the end)


def _unescape(raw: str) -> str:
    """Each backslash removed, the character after it kept; a last lone backslash dropped."""
    if "\\" not in raw:
        return raw
    return _ESCAPED.sub(r"\1", raw)


_WORD = re.compile("[^" + re.escape(_SPACE) + "]+")


def _split(value: str) -> list[str]:
    """A value's words, split on grub_isspace's blanks."""
    return _WORD.findall(value)


def _lines(text: str) -> list[str]:
    """grub_file_getline: split on newlines, carriage returns dropped."""
    lines = text.replace("\r", "").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines
