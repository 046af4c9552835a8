"""``test`` and ``[`` (grub-core/commands/test.c): string, number and file tests,
``!``, ``-a``/``-o`` and parentheses, evaluated left to right as GRUB does."""

from __future__ import annotations

from ...fs.base import FileType
from ...limits import LIMITS
from . import errors as E
from . import files
from .errors import GrubError
from .interp import Interp
from .parser import Block
from .registry import command, signed_number, strtoul


# --- test (commands/test.c) ----------------------------------------------------------
_STRING_OPS = frozenset(("=", "==", "!=", "<", "<=", ">", ">="))


@command("test", "[")
def cmd_test(it: Interp, args: list[str], block: Block | None) -> int:
    if args and args[-1] == "]":
        args = args[:-1]
    pos = [0]
    if _test_parse(it, args, pos, [0]):
        return 0
    raise GrubError(E.TEST_FAILURE, "false", silent=True)


def _test_parse(it: Interp, args: list[str], pos: list[int], depth: list[int]) -> bool:
    state = {"and": True, "or": False, "invert": False}

    def update(value: bool) -> None:
        state["and"] = state["and"] and (not value if state["invert"] else value)
        state["invert"] = False

    def exists(path: str) -> tuple[bool, bool, int | None]:
        node = files.file_info(it, path)
        if node is None:
            return False, False, None
        return True, node.type is FileType.DIR, node.mtime

    n = len(args)
    while pos[0] < n:
        i = pos[0]
        if i + 2 < n:
            a, op, b = args[i], args[i + 1], args[i + 2]
            if op in _STRING_OPS:  # compared only when asked: every word is a candidate operand
                order = 0 if op in ("=", "==", "!=") else _cmp(a, b)
                update({"=": a == b, "==": a == b, "!=": a != b,
                        "<": order < 0, "<=": order <= 0, ">": order > 0, ">=": order >= 0}[op])
                pos[0] += 3
                continue
            number_ops = {"-eq": "==", "-ge": ">=", "-gt": ">", "-le": "<=", "-lt": "<", "-ne": "!="}
            if op in number_ops:
                x, y = signed_number(a), signed_number(b)
                update({"==": x == y, ">=": x >= y, ">": x > y, "<=": x <= y, "<": x < y, "!=": x != y}[number_ops[op]])
                pos[0] += 3
                continue
            if op in ("-pgt", "-plt"):
                k = _common_prefix(a, b) - 1
                while k > 0 and k < len(a) and a[k].isdigit():
                    k -= 1
                k += 1
                x, y = _number_plain(a[k:]), _number_plain(b[k:])
                update(x > y if op == "-pgt" else x < y)
                pos[0] += 3
                continue
            if op.startswith("-nt") or op.startswith("-ot"):
                e1, _, m1 = exists(a)
                e2, _, m2 = exists(b)
                bias = signed_number(op[3:]) if len(op) > 3 else 0
                both = m1 is not None and m2 is not None
                if op.startswith("-nt"):
                    update((e1 and not e2) or (both and m1 + bias > m2))
                else:
                    update((not e1 and e2) or (both and m1 + bias < m2))
                pos[0] += 3
                continue
        if i + 1 < n:
            op, b = args[i], args[i + 1]
            if op in ("-d", "-e", "-f"):
                found, is_dir, _ = exists(b)
                update(found and (is_dir if op == "-d" else (not is_dir if op == "-f" else True)))
                pos[0] += 2
                continue
            if op == "-s":
                try:
                    _, node, _ = files.open_ref(it, b)
                    update(node.size != 0)
                except GrubError:
                    update(False)
                pos[0] += 2
                continue
            if op == "-n":
                update(b != "")
                pos[0] += 2
                continue
            if op == "-z":
                update(b == "")
                pos[0] += 2
                continue
        word = args[i]
        if word == ")":
            pos[0] += 1
            if depth[0] > 0:
                depth[0] -= 1
            return state["or"] or state["and"]
        if word == "(":
            pos[0] += 1
            depth[0] += 1
            if depth[0] > LIMITS.max_test_nesting:  # test.c's own bound, GRUB's own error
                raise GrubError(E.OUT_OF_RANGE, "max recursion depth exceeded")
            update(_test_parse(it, args, pos, depth))
            continue
        if word == "!":
            state["invert"] = not state["invert"]
            pos[0] += 1
            continue
        if word == "-a":
            pos[0] += 1
            continue
        if word == "-o":
            state["or"] = state["or"] or state["and"]
            state["and"] = True
            pos[0] += 1
            continue
        update(word != "")
        pos[0] += 1
    return state["or"] or state["and"]


def _common_prefix(a: str, b: str) -> int:
    """The length of the longest common prefix of ``a`` and ``b``: a binary search of
    slice comparisons (each in C), not a loop over characters."""
    lo, hi = 0, min(len(a), len(b))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[lo:mid] == b[lo:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _number_plain(text: str) -> int:
    try:
        return strtoul(text)[0]
    except GrubError:
        return 0


def _cmp(a: str, b: str) -> int:
    """grub_strcmp: bytes compared as unsigned."""
    x, y = a.encode("utf-8", "surrogateescape"), b.encode("utf-8", "surrogateescape")
    return (x > y) - (x < y)


