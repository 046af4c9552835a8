"""The kernel command line as GRUB 2 rebuilds it from the words of a ``linux`` line.

GRUB's loaders (grub-core/lib/cmdline.c, grub_create_loader_cmdline) get the line already
split into words with the quoting removed. They write each word back: a word that holds a
space is wrapped in double quotes, and every ``\\``, ``'`` and ``"`` inside a word gets a
backslash in front. Words are separated by one space (an empty word therefore leaves two
spaces). On x86 the ``linux`` loader puts ``BOOT_IMAGE=`` in front of the rebuilt line
*including* the kernel path word, as written (grub-core/loader/i386/linux.c).
"""

from __future__ import annotations

from typing import Sequence


def _word(word: str) -> str:
    escaped = "".join("\\" + c if c in "\\'\"" else c for c in word)
    return f'"{escaped}"' if " " in word else escaped


def rebuild(words: Sequence[str]) -> str:
    """The words joined the way GRUB joins them for the kernel."""
    return " ".join(_word(w) for w in words)


def with_boot_image(kernel_written: str, args: Sequence[str]) -> str:
    """What an x86 ``linux``/``linux16`` load hands the kernel: ``BOOT_IMAGE=`` followed
    by the rebuilt kernel path and arguments."""
    return "BOOT_IMAGE=" + rebuild([kernel_written, *args])
