"""Choice by guest type: refuse, before anything is written, an entry whose kernel cannot
boot as the guest type the host will build (Xen PV, PVH, or HVM), or pick the newest
entry whose kernel can.

The host knows the guest type (xl's ``type=``); the guest's menu does not. Without this
check the domain builder learns at build time that a kernel has no PV entry point or no
PVH note (kernel/xen.py says which notes each type needs). ``--prefer-capable`` picks,
among the menu's entries that boot a kernel able to run as the type, the one with the
newest kernel release (compared number by number, as version sorting does); ties go to
the first in menu order.
"""

from __future__ import annotations

import re
from typing import Any, Iterator

from .boot.model import BootSpec, Menu
from .errors import GuestbootError, Unsupported
from .kernels import Inspector
from .limits import LIMITS
from .select import Choice

GUEST_TYPES = ("any", "pv", "pvh", "hvm")
NAMES = {"pv": "Xen PV", "pvh": "Xen PVH", "hvm": "HVM"}


class IncapableKernel(Unsupported):
    """The chosen entry's kernel cannot boot as the guest type asked for."""


def supports(info: dict[str, Any]) -> list[str]:
    return list(info.get("supports", []))


def capable(info: dict[str, Any], guest_type: str) -> bool:
    return guest_type == "any" or guest_type in supports(info)


def describe(info: dict[str, Any]) -> str:
    if "error" in info:
        return f"cannot be inspected ({info['error']})"
    kinds = supports(info)
    return f"{info['summary'].split(':', 1)[0]}, which boots as {' or '.join(NAMES[k] for k in kinds)} only" \
        if kinds else f"{info['summary'].split(':', 1)[0]}, which boots as none of PV, PVH, HVM"


def release_key(release: str) -> tuple:
    """"6.1.0-57-amd64" → ((0, 6), (0, 1), (0, 0), (0, 57), (1, 'amd')…): numbers compare as
    numbers; text ranks above them, as in version sorting."""
    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in re.findall(r"\d+|[A-Za-z]+", release))


def leaves(menu: Menu, prefix: tuple[int, ...] = (), names: tuple[str, ...] = ()) -> Iterator[Choice]:
    """Every entry that boots something, depth-first in menu order."""
    for index, entry in enumerate(menu.entries):
        path, here = prefix + (index,), names + (entry.title,)
        if entry.submenu is not None:
            if len(path) <= LIMITS.max_submenu_depth:
                yield from leaves(entry.submenu, path, here)
        elif entry.run is not None:
            yield Choice(path, entry, here)


def check(menu: Menu, choice: Choice, spec: BootSpec, inspector: Inspector, guest_type: str, *,
          prefer_capable: bool) -> tuple[Choice, BootSpec, list[str]]:
    """(choice, spec, notes): the chosen entry when its kernel can boot as ``guest_type``;
    with ``prefer_capable`` the newest entry whose kernel can; else IncapableKernel."""
    if guest_type == "any":
        return choice, spec, []
    info = inspector.kernel(spec.kernel)
    if capable(info, guest_type):
        return choice, spec, []
    where = f"entry {'>'.join(str(n) for n in choice.path)} '{' > '.join(choice.names)}'"
    refusal = f"{where}: kernel {spec.kernel} is {describe(info)}, not {NAMES[guest_type]}"
    if not prefer_capable:
        kinds = supports(info)
        hint = (f"make the guest {' or '.join(NAMES[k] for k in kinds)} (--guest-type {kinds[0]}), " if kinds
                else "install a kernel that can, ")
        raise IncapableKernel(f"{refusal}; to boot it {hint}choose another entry with --entry,"
                              " or pass --prefer-capable to boot the newest entry that can")
    best: tuple[tuple, int, Choice, BootSpec] | None = None
    for order, candidate in enumerate(leaves(menu)):
        try:
            candidate_spec = candidate.entry.run()  # type: ignore[misc]
        except GuestbootError:
            continue
        candidate_info = inspector.kernel(candidate_spec.kernel)
        if not capable(candidate_info, guest_type):
            continue
        key = release_key(str(candidate_info.get("release", "")))
        if best is None or key > best[0]:
            best = (key, order, candidate, candidate_spec)
    if best is None:
        raise IncapableKernel(f"{refusal}; no entry of the menu boots a kernel that can (--prefer-capable)")
    _key, _order, picked, picked_spec = best
    note = (f"{refusal}; booting entry {'>'.join(str(n) for n in picked.path)} '{' > '.join(picked.names)}'"
            f" instead, the newest that can (--prefer-capable)")
    return picked, picked_spec, [note]
