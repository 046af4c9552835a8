"""The one exception tree of guestboot.

Nothing else escapes the library: every parser turns what went wrong into one of these,
with a one-line message that says what, where (image, partition, path) and at which byte
offset. The CLI maps each class to one documented exit code (see README, "Exit codes").
"""

from __future__ import annotations


class GuestbootError(Exception):
    """Base class. ``exit_code`` is what the CLI exits with for this class. ``warnings``
    are the one-line warnings gathered before the failure (pipeline.run fills them in), so
    a front end can show them with the error."""

    exit_code = 1
    kind = "error"

    def __init__(self, message: str, *, where: str | None = None, offset: int | None = None):
        super().__init__(message)
        self.message = message
        self.where = where
        self.offset = offset
        self.warnings: list[str] = []

    def located(self, where: str) -> "GuestbootError":
        """Prefix a location (outermost last) and return self, for re-raising."""
        self.where = f"{where}:{self.where}" if self.where else where
        return self

    def __str__(self) -> str:
        text = self.message
        if self.where:
            text = f"{self.where}: {text}"
        if self.offset is not None:
            text = f"{text} (at byte offset {self.offset:#x})"
        return text


class CorruptImage(GuestbootError):
    """The guest's bytes contradict the on-disk format (bad magic, offset out of range …)."""

    exit_code = 3
    kind = "corrupt image"


class Unsupported(GuestbootError):
    """Well-formed, but uses a format or feature we do not read (names the feature)."""

    exit_code = 4
    kind = "unsupported"


class LimitExceeded(GuestbootError):
    """A bound from limits.py was reached (too many entries, too deep, too large …)."""

    exit_code = 5
    kind = "limit exceeded"


class SymlinkLoop(LimitExceeded):
    """A path's symlinks go round (more hops, or more components, than the limits allow):
    for finding a boot config this is a path that leads nowhere, as GRUB treats it."""


class NotFound(GuestbootError):
    """A file, partition, config or menu entry that was asked for does not exist."""

    exit_code = 6
    kind = "not found"


class ConfigError(GuestbootError):
    """The guest's boot configuration cannot be evaluated (syntax error, bad default …)."""

    exit_code = 7
    kind = "config error"


class OutputError(GuestbootError):
    """Writing on the host failed: output exists, is a symlink, disk full, not writable."""

    exit_code = 8
    kind = "output error"


class UsageError(GuestbootError):
    """What the user asked for cannot be done as asked: the image is a directory or a
    pipe, a --runas value is not a user. Not a problem of the guest's bytes."""

    exit_code = 2
    kind = "usage error"


class PermissionDenied(GuestbootError):
    """The host refused: the image is not readable by this user, --runas needs root."""

    exit_code = 9
    kind = "permission denied"


class InternalError(GuestbootError):
    """A bug, reported as one line: e.g. the deprivileged child crashed or was killed."""

    exit_code = 70
    kind = "internal error"
