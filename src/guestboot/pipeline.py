"""The pipeline end to end, as the front ends use it: image → menu → choice → files.

Kept in the library (not in cli/) so that a deprivileged child can run exactly this and
hand the parent only the result.
"""

from __future__ import annotations

from .boot.model import BootSpec, FileRef, Menu
from .devices import DeviceMap
from .source import ByteSource


class Plan:
    """What boots: the menu it was chosen from, the entry and the files it loads."""

    __slots__ = ("menu", "path", "titles", "entry_id", "spec")

    menu: Menu
    path: tuple[int, ...]  # index path of the chosen entry from the top menu
    titles: tuple[str, ...]  # titles along that path
    entry_id: str | None
    spec: BootSpec

    def __init__(
        self, menu: Menu, path: tuple[int, ...], titles: tuple[str, ...], entry_id: str | None, spec: BootSpec
    ) -> None:
        self.menu = menu
        self.path = path
        self.titles = titles
        self.entry_id = entry_id
        self.spec = spec

    def __repr__(self) -> str:
        return (
            f"Plan(menu={self.menu!r}, path={self.path!r}, titles={self.titles!r},"
            f" entry_id={self.entry_id!r}, spec={self.spec!r})"
        )


def load_menu(devices: DeviceMap, *, isconfig: bool = False) -> Menu:
    from .boot.discover import find_menu

    return find_menu(devices, isconfig=isconfig)


def plan_boot(devices: DeviceMap, entry: str | None = None, *, menu: Menu | None = None) -> Plan:
    """Which entry boots (``entry`` uses GRUB's ``default`` syntax; None = the config's
    own default) and what it loads."""
    from .select import boot

    if menu is None:
        menu = load_menu(devices)
    choice, spec = boot(menu, entry)
    return Plan(menu, tuple(choice.path), tuple(choice.names), choice.entry.id, spec)


def open_refs(devices: DeviceMap, refs: tuple[FileRef, ...] | list[FileRef]) -> list[ByteSource]:
    return [devices.open(ref.device, ref.path) for ref in refs]
