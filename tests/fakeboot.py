"""A config format that exists only in the tests: "fakeboot", registered from outside the
package (tests/test_format_registry.py adds its line to boot/discover.py's FORMATS at run
time) to show that a new format needs one module and one registry line, and nothing in
select.py or the front ends.

Its config is a directory of entry files (``/fakeboot/entries/*.entry``, found on EFI
System Partitions only), one entry per file in file-name order, each made of lines
``title T``, ``kernel PATH``, ``initrd PATH``, ``args TEXT`` and ``priority N``. Its own
default rule, unlike any GRUB's: the entry with the highest priority boots, the first of
them on a tie; the other entries by falling priority are its fallbacks.
"""

from __future__ import annotations

from guestboot.boot.discover import matching_files
from guestboot.boot.model import BootSpec, DefaultRule, FileRef, Menu, MenuEntry, Pick
from guestboot.errors import ConfigError
from guestboot.fs.path import read_bytes

NAME = "fakeboot"
PATTERN = "*.entry"


class HighestPriority(DefaultRule):
    __slots__ = ("priorities",)

    def __init__(self, priorities: list[int]) -> None:
        self.priorities = priorities

    def pick(self, menu: Menu, entered: str | None) -> Pick:
        order = sorted(range(len(self.priorities)), key=lambda i: (-self.priorities[i], i))
        return Pick(order[0], tuple(order[1:])) if order else Pick(0)


def _entry(device: str, fields: dict[str, str]) -> MenuEntry:
    def run() -> BootSpec:
        if "kernel" not in fields:
            raise ConfigError(f"fakeboot entry {fields.get('title')!r} has no kernel")
        initrds = (FileRef(device, fields["initrd"]),) if "initrd" in fields else ()
        args = fields.get("args", "")
        return BootSpec(FileRef(device, fields["kernel"]), initrds, args, args, loader="fakeboot")

    return MenuEntry(fields.get("title", "?"), run=run)


def evaluate(devices, device, path, *, env=None, check_files=True) -> Menu:
    fs = devices.filesystem(device)
    entries, priorities = [], []
    for name in matching_files(fs, path, PATTERN):
        text = read_bytes(fs, f"{path}/{name}", 4096).decode()
        fields = dict(line.split(" ", 1) for line in text.splitlines() if " " in line)
        entries.append(_entry(device, fields))
        priorities.append(int(fields.get("priority", "0")))
    return Menu(entries, origin=f"{device}:{path}", format=NAME, rule=HighestPriority(priorities))
