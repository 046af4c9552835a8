"""What the GRUB 2 evaluator holds while it runs: variable contexts, menu entries as
``menuentry`` records them, the loader state, and what one evaluation shares.

Contexts are copy on write: a context made from another (a submenu's, an entry run's)
reads the other's variables through a frozen snapshot and keeps only what it changes,
so a menu of many entries over many variables costs one snapshot per menu level, not one
copy per entry. The copies that remain (``copy_exported``, the snapshots) are counted
against LIMITS.max_copied_variables.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import TYPE_CHECKING, Iterator, Mapping

from ...errors import LimitExceeded
from ...limits import LIMITS
from ..budget import ConfigBudget
from ..model import FileRef
from .dialect import DEBIAN, Dialect

if TYPE_CHECKING:
    from ...devices import DeviceMap
    from .parser import Node as AstNode

_EMPTY: Mapping = MappingProxyType({})


class Overlay:
    """A mapping written over a frozen ``base`` that other overlays may share: writes and
    removals stay here. Used as a set too (``add``/``discard``, values True)."""

    __slots__ = ("_base", "_own", "_gone", "_extra")

    def __init__(self, base: Mapping | None = None) -> None:
        self._base: Mapping = _EMPTY if base is None else base
        self._own: dict = {}
        self._gone: set = set()  # names of the base removed here
        self._extra = 0  # names in _own that the base does not have

    def get(self, name, default=None):
        if name in self._own:
            return self._own[name]
        if name in self._gone:
            return default
        return self._base.get(name, default)

    def __contains__(self, name) -> bool:
        return name in self._own or (name not in self._gone and name in self._base)

    def own(self, name):
        """The value written here (not the base's), or None."""
        return self._own.get(name)

    def __getitem__(self, name):
        if name not in self:
            raise KeyError(name)
        return self.get(name)

    def __setitem__(self, name, value) -> None:
        if name not in self._own and name not in self._base:
            self._extra += 1
        self._own[name] = value
        self._gone.discard(name)

    def pop(self, name, default=None):
        value = self.get(name, default)
        if name in self._own:
            del self._own[name]
            if name not in self._base:
                self._extra -= 1
        if name in self._base:
            self._gone.add(name)
        return value

    def add(self, name) -> None:
        self[name] = True

    def discard(self, name) -> None:
        self.pop(name)

    def __len__(self) -> int:
        return len(self._base) - len(self._gone) + self._extra

    def __iter__(self) -> Iterator:
        for name in self._base:
            if name not in self._gone:
                yield name
        for name in self._own:
            if name not in self._base:
                yield name

    def items(self) -> Iterator[tuple]:
        for name in self:
            yield name, self.get(name)

    @property
    def changed(self) -> bool:
        return bool(self._own or self._gone)

    def frozen(self) -> Mapping:
        """A read-only snapshot to build other overlays on: the base itself when nothing
        was changed here, otherwise one flattened copy, which becomes the new base."""
        if self.changed:
            self._base = MappingProxyType(dict(self.items()))
            self._own, self._gone, self._extra = {}, set(), 0
        return self._base

    def __repr__(self) -> str:
        return f"Overlay({dict(self.items())!r})"


class RawEntry:
    """A menu entry as grub_normal_add_menu_entry stores it. Equality is identity."""

    __slots__ = ("title", "id", "classes", "users", "unrestricted", "args", "source", "submenu")

    def __init__(
        self,
        title: str,
        id: str | None,
        classes: tuple[str, ...],
        users: str | None,
        unrestricted: bool,
        args: list[str],
        source: str,  # "setparams ..." prefix + the block text
        submenu: bool,
    ) -> None:
        self.title = title
        self.id = id
        self.classes = classes
        self.users = users
        self.unrestricted = unrestricted
        self.args = args
        self.source = source
        self.submenu = submenu

    def __repr__(self) -> str:
        return (
            f"RawEntry(title={self.title!r}, id={self.id!r}, classes={self.classes!r},"
            f" users={self.users!r}, unrestricted={self.unrestricted!r}, args={self.args!r},"
            f" source={self.source!r}, submenu={self.submenu!r})"
        )


class Context:
    """One GRUB variable context: its variables, which of them are exported, its menu.
    ``vars`` and ``exported`` start as the given mappings (not copied, never written:
    changes go to an Overlay). ``default_written`` says whether ``default`` was set or
    unset in this context since it was last cleared (a submenu body that chooses its own
    default). Equality is identity."""

    __slots__ = ("vars", "exported", "menu", "default_written")

    def __init__(
        self,
        vars: Mapping[str, str] | None = None,
        exported: Mapping[str, bool] | set[str] | frozenset[str] | None = None,
        menu: list[RawEntry] | None = None,
    ) -> None:
        self.vars = Overlay(vars)
        if isinstance(exported, (set, frozenset)):
            exported = dict.fromkeys(exported, True)
        self.exported = Overlay(exported)
        self.menu = [] if menu is None else menu
        self.default_written = False

    def __repr__(self) -> str:
        return f"Context(vars={self.vars!r}, exported={self.exported!r}, menu={self.menu!r})"

    def copy_exported(self, shared: Shared) -> Context:
        """grub_env_context_open as Debian's GRUB 2.06 runs it (seen with grub-emu): a new
        context holding only the exported variables (still exported), and no menu."""
        shared.spend_copies(len(self.exported))
        kept = {name: value for name, value in self.vars.items() if name in self.exported}
        return Context(kept, dict.fromkeys(kept, True), [])

    def snapshot(self, shared: Shared) -> tuple[Mapping[str, str], Mapping[str, bool]]:
        """(variables, exported) as they are now, frozen, to start other contexts from
        (copy on write). At most one flattening copy, counted; later calls are free."""
        for overlay in (self.vars, self.exported):
            if overlay.changed:
                shared.spend_copies(len(overlay))
        return self.vars.frozen(), self.exported.frozen()


class Loaded:
    """What the loader holds after ``linux``/``initrd`` (GRUB's grub_loader state).
    Equality is identity."""

    __slots__ = ("loader", "kernel", "args", "initrds", "unsupported", "modules")

    def __init__(
        self,
        loader: str,
        kernel: FileRef | None,
        args: list[str],
        initrds: list[FileRef] | None = None,
        unsupported: str | None = None,  # a non-Linux loader (multiboot, chainloader …)
    ) -> None:
        self.loader = loader
        self.kernel = kernel
        self.args = args
        self.initrds = [] if initrds is None else initrds
        self.unsupported = unsupported
        self.modules: list[tuple[FileRef, list[str], bool]] = []  # multiboot: (file, args, unzip)

    def copy(self) -> Loaded:
        other = Loaded(self.loader, self.kernel, list(self.args), list(self.initrds), self.unsupported)
        other.modules = list(self.modules)
        return other

    def __repr__(self) -> str:
        return (
            f"Loaded(loader={self.loader!r}, kernel={self.kernel!r}, args={self.args!r},"
            f" initrds={self.initrds!r}, unsupported={self.unsupported!r})"
        )


class Shared:
    """State that is global in GRUB or per evaluation: devices, output, functions,
    counters. ``functions`` is copy on write like a context's variables. Equality is
    identity."""

    __slots__ = ("devices", "warnings", "output", "functions", "steps", "entries", "copies", "check_files", "dialect",
                 "bls", "wildcards", "budget", "function_held")

    def __init__(
        self,
        devices: DeviceMap,
        warnings: list[str],
        output: list[str] | None = None,
        functions: Mapping[str, list[AstNode]] | None = None,
        steps: int = 0,
        entries: int = 0,
        check_files: bool = True,
        copies: int = 0,
        dialect: Dialect = DEBIAN,
        budget: ConfigBudget | None = None,
    ) -> None:
        self.devices = devices
        self.dialect = dialect  # which GRUB build is emulated (dialect.py)
        # False only for pygrub's --isconfig: the config stands alone, kernel and initrd
        # paths are recorded as written, without looking for the files
        self.check_files = check_files
        self.warnings = warnings
        self.output = [] if output is None else output
        self.functions = Overlay(functions)
        self.steps = steps
        self.entries = entries
        self.copies = copies
        self.bls = None  # blscfg's session state (cmd_blscfg.BlsState), made on first use
        self.wildcards = False  # the regexp module is loaded: words are wildcard-expanded (wildcard.py)
        # bytes processed and held by this evaluation (boot/budget.py); an entry's run
        # shares its menu's evaluation's
        self.budget = ConfigBudget() if budget is None else budget
        self.function_held: dict[str, int] = {}  # bytes each function defined here holds

    def spend_copies(self, count: int) -> None:
        """Count ``count`` variables copied into a new context against the evaluation's
        budget (LIMITS.max_copied_variables)."""
        self.copies += count
        if self.copies > LIMITS.max_copied_variables:
            raise LimitExceeded(
                f"GRUB contexts copied more than {LIMITS.max_copied_variables} variables (max_copied_variables)"
            )

    def __repr__(self) -> str:
        return (
            f"Shared(devices={self.devices!r}, warnings={self.warnings!r}, output={self.output!r},"
            f" functions={self.functions!r}, steps={self.steps!r}, entries={self.entries!r})"
        )


class MenuReplaced(Exception):
    """``configfile`` produced a menu of its own; GRUB shows it instead of ours."""

    def __init__(self, interp) -> None:
        super().__init__("configfile")
        self.interp = interp


class BootNow(Exception):
    """The ``boot`` command ran with a kernel loaded."""
