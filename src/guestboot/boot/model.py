"""What boot-config parsers produce: a menu of entries, and for a chosen entry what to boot.

Every config format (GRUB 2, GRUB legacy, later syslinux and BLS) turns files into these
values. GRUB 2 runs an entry's body only when the entry is chosen, so an entry carries a
``run`` callable that evaluates it then and returns a BootSpec.
"""

from __future__ import annotations

from typing import Callable, NamedTuple


class FileRef(NamedTuple):
    """A file on a guest device. ``device`` is a canonical DeviceMap name ("hd0,gpt2"),
    ``path`` is absolute on that device; ``written`` is the path as the config wrote it
    (GRUB puts that in BOOT_IMAGE=); ``section``, when set, is the byte range of the file
    that is meant (a kernel or initrd inside a unified kernel image)."""

    device: str
    path: str
    written: str = ""
    section: tuple[int, int] | None = None  # (offset, size) inside the file: a UKI's .linux/.initrd

    def __str__(self) -> str:
        return f"({self.device}){self.path}"


class Module(NamedTuple):
    """A file a multiboot kernel gets loaded beside it (GRUB's ``module``/``module2``):
    ``args`` is its command line (the words after the file name, GRUB's loader/multiboot.c);
    ``unzip``: GRUB decompresses it (gzip, xz, lzop) unless ``--nounzip`` was given."""

    file: FileRef
    args: str = ""
    unzip: bool = True


class BootSpec(NamedTuple):
    """What the chosen entry boots.

    ``args`` are the kernel arguments as GRUB rebuilds them from the ``linux`` line (words
    joined by one space, quoting normalised) without BOOT_IMAGE; ``cmdline`` is what the
    kernel receives when GRUB boots it on x86 (``BOOT_IMAGE=<written path> `` + args for the
    ``linux`` loaders; equal to args for GRUB legacy). ``loader`` names the command that
    loaded the kernel: "linux", "linux16", "linuxefi", "kernel" (GRUB legacy) …
    """

    kernel: FileRef
    initrds: tuple[FileRef, ...] = ()
    args: str = ""
    cmdline: str = ""
    loader: str = "linux"
    modules: tuple[Module, ...] = ()  # multiboot/multiboot2 entries: the modules, in order


class Pick(NamedTuple):
    """What a format boots at one menu level when nobody chooses: ``index`` (within the
    menu), the ``fallbacks`` to try in order when it fails (entry numbers of the same
    menu, maybe out of range: those are skipped), and ``rest``, what a submenu chosen
    here is entered with (GRUB 2's ``a>b`` default paths; None for nothing)."""

    index: int
    fallbacks: tuple[int, ...] = ()
    rest: str | None = None


class DefaultRule:
    """How a config format picks its default entry; each format module gives its menus
    one (select.py asks it and never looks at ``Menu.format``). This base rule boots the
    first entry and has no fallbacks."""

    __slots__ = ()

    def pick(self, menu: Menu, entered: str | None) -> Pick:
        """The default at this level. ``entered`` is the ``rest`` of the level above
        when this menu is a submenu reached by default (None at the top)."""
        return Pick(0)

    def fallbacks(self, menu: Menu) -> tuple[int, ...]:
        """The fallbacks when the entry at this level was chosen explicitly."""
        return self.pick(menu, None).fallbacks

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


FIRST_ENTRY = DefaultRule()


class MenuEntry:
    """One line of a menu: a bootable entry (``run`` set) or a submenu (``submenu`` set).

    Equality is identity: two entries with the same title are still two entries."""

    __slots__ = ("title", "id", "classes", "users", "unrestricted", "submenu", "run")

    title: str
    id: str | None
    classes: tuple[str, ...]
    users: str | None
    unrestricted: bool
    submenu: Menu | None
    run: Callable[[], BootSpec] | None

    def __init__(
        self,
        title: str,
        id: str | None = None,
        classes: tuple[str, ...] = (),
        users: str | None = None,
        unrestricted: bool = False,
        submenu: Menu | None = None,
        run: Callable[[], BootSpec] | None = None,
    ) -> None:
        self.title = title
        self.id = id
        self.classes = classes
        self.users = users
        self.unrestricted = unrestricted
        self.submenu = submenu
        self.run = run

    def __repr__(self) -> str:  # ``run`` is left out: a closure says nothing useful
        return (
            f"MenuEntry(title={self.title!r}, id={self.id!r}, classes={self.classes!r},"
            f" users={self.users!r}, unrestricted={self.unrestricted!r}, submenu={self.submenu!r})"
        )

    @property
    def is_submenu(self) -> bool:
        return self.submenu is not None


class Menu:
    """A menu as the boot loader would show it.

    ``default``/``fallback``/``timeout`` are the raw values of those variables (GRUB 2) or
    directives (legacy) at the moment the menu is shown, or None when unset. ``saved`` holds
    for GRUB legacy's ``default saved`` the value found in the ``default`` file.
    ``origin`` says where the config was read ("hd0,gpt2:/grub/grub.cfg"); ``format`` is
    "grub2" or "grub-legacy". ``warnings`` are things a user should know (an unknown command
    skipped, a search that found nothing) in the order they happened. ``rule`` is the
    format's DefaultRule for this menu; ``dialect`` names the variant of the boot loader
    the config was evaluated as (GRUB 2: "debian", "fedora", "suse"; "" when the format
    has none) and ``dialect_reason`` why (the caller chose it, or what the image shows).
    Equality is identity.
    """

    __slots__ = ("entries", "default", "fallback", "timeout", "saved", "origin", "format", "warnings", "rule", "dialect",
                 "dialect_reason")

    entries: list[MenuEntry]
    default: str | None
    fallback: str | None
    timeout: str | None
    saved: str | None
    origin: str
    format: str
    warnings: list[str]
    rule: DefaultRule
    dialect: str
    dialect_reason: str

    def __init__(
        self,
        entries: list[MenuEntry] | None = None,
        default: str | None = None,
        fallback: str | None = None,
        timeout: str | None = None,
        saved: str | None = None,
        origin: str = "",
        format: str = "",
        warnings: list[str] | None = None,
        rule: DefaultRule = FIRST_ENTRY,
        dialect: str = "",
        dialect_reason: str = "",
    ) -> None:
        self.entries = [] if entries is None else entries
        self.default = default
        self.fallback = fallback
        self.timeout = timeout
        self.saved = saved
        self.origin = origin
        self.format = format
        self.warnings = [] if warnings is None else warnings
        self.rule = rule
        self.dialect = dialect
        self.dialect_reason = dialect_reason

    def __repr__(self) -> str:
        return (
            f"Menu(entries={self.entries!r}, default={self.default!r}, fallback={self.fallback!r},"
            f" timeout={self.timeout!r}, saved={self.saved!r}, origin={self.origin!r},"
            f" format={self.format!r}, warnings={self.warnings!r}, rule={self.rule!r}, dialect={self.dialect!r},"
            f" dialect_reason={self.dialect_reason!r})"
        )
