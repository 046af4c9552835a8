"""Which GRUB 2 the guest runs: distributions ship GRUB 2.06 with different patches, and a
config written for one can fail on another. A Dialect is the small set of differences the
evaluator models; the rest is upstream 2.06 as Debian builds it (checked with grub-emu).

* "debian" -- upstream 2.06 with Debian's patches (Debian, Ubuntu, and the default):
  no ``linuxefi``/``initrdefi`` and no ``blscfg`` ("can't find command", seen with
  grub-emu); ``menuentry --users`` needs a value, so ``--users $grub_users`` with the
  variable unset drops the entry with "missing mandatory option for `users'" (grub-emu).
* "fedora" -- Fedora, RHEL, CentOS and their rebuilds: the BLS patches add ``blscfg``
  (and its old name ``bls_import``: menu entries from /loader/entries, cmd_blscfg.py),
  ``linuxefi``/``initrdefi`` load like ``linux``/``initrd``,
  and ``--users`` may come without a value (their grub.cfg writes ``--users
  $grub_users`` on entries and leaves the variable unset).
* "suse" -- openSUSE and SLES: ``linuxefi``/``initrdefi`` as on Fedora, no ``blscfg``,
  ``--users`` as upstream.

btrfs paths. Upstream GRUB resolves a path on btrfs from the top-level subvolume ("/" is
the real root), whatever the default subvolume. SUSE's btrfs patches, which Fedora's
GRUB carries too (rhboot/grub2 grub-core/fs/btrfs.c: grub_btrfs_mount, find_path), add
``btrfs_relative_path``: when it starts with "y" or "1", paths start at the default
subvolume ("default" in the root tree directory). Their grub-install puts
``set btrfs_relative_path='y'`` in the core image's early config and their 00_header
writes it at the top of grub.cfg when SUSE_BTRFS_SNAPSHOT_BOOTING is on, so openSUSE's
``linux /boot/vmlinuz`` means /boot in the booted snapshot. Debian's GRUB ignores the
variable. (Their ``btrfs_subvol``/``btrfs_subvolid``, which pick another subvolume, are
not modelled: a config that sets them is evaluated as if they were unset.)

The feature flags and initial variables of all three are upstream 2.06's
(normal/main.c ``features[]``; ``grub_cpu``/``grub_platform`` of i386-pc): no difference
in them is known to matter to a config; the fields are here so that one can be recorded
where it is found.

:func:`detect` chooses from what the image shows when the caller does not say: the
``ID``/``ID_LIKE`` of an os-release file (the config's device first, then the others in
probe order; on each, from the top, btrfs's default subvolume, then "@"), else what the config shows of Fedora's (the commands ``blscfg``,
``linuxefi``, ``initrdefi``; the section of its BLS template ``10_linux_bls``;
``--users $grub_users``), else "debian"; with the reason, in one line, that the menu
records (``Menu.dialect_reason``) and ``guestboot list`` shows.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from ...devices import DeviceMap
from ...errors import ConfigError, GuestbootError
from ...fs import path as fspath
from ...limits import LIMITS

# normal/main.c `features[]` in GRUB 2.06 (later releases add more).
FEATURES = (
    "feature_chainloader_bpb",
    "feature_ntldr",
    "feature_platform_search_hint",
    "feature_default_font_path",
    "feature_all_video_module",
    "feature_menuentry_id",
    "feature_menuentry_options",
    "feature_200_final",
    "feature_nativedisk_cmd",
    "feature_timeout_style",
)
I386_PC = (("grub_cpu", "i386"), ("grub_platform", "pc"))


class Dialect(NamedTuple):
    name: str
    features: tuple[str, ...]  # feature_* variables set to "y" (exported)
    variables: tuple[tuple[str, str], ...]  # other initial variables (exported)
    commands: frozenset[str]  # commands of DIALECT_COMMANDS this build has
    users_optional: bool  # menuentry --users may be given without a value
    btrfs_relative_path: bool = False  # honours $btrfs_relative_path ("btrfs paths" above)


DEBIAN = Dialect("debian", FEATURES, I386_PC, frozenset(), False)
FEDORA = Dialect("fedora", FEATURES, I386_PC, frozenset({"blscfg", "bls_import", "linuxefi", "initrdefi"}), True,
                 True)
SUSE = Dialect("suse", FEATURES, I386_PC, frozenset({"linuxefi", "initrdefi"}), False, True)

DIALECTS = {d.name: d for d in (DEBIAN, FEDORA, SUSE)}
DIALECT_COMMANDS = frozenset().union(*(d.commands for d in DIALECTS.values()))  # not in every build

_OS_RELEASE = ("/etc/os-release", "/usr/lib/os-release")
_OS_RELEASE_BYTES = 64 * 1024  # os-release is a few hundred bytes; more is not read
_BY_OS = (  # os-release ID / ID_LIKE words, first match wins
    ("fedora", FEDORA), ("rhel", FEDORA), ("centos", FEDORA), ("rocky", FEDORA), ("almalinux", FEDORA),
    ("ol", FEDORA), ("amzn", FEDORA), ("suse", SUSE), ("opensuse", SUSE), ("sles", SUSE),
    ("debian", DEBIAN), ("ubuntu", DEBIAN),
)
# Fedora's own commands, its BLS template's section header, its --users $grub_users
_FEDORA_SIGNS = re.compile(
    r"^[ \t]*(?:blscfg|linuxefi|initrdefi)\b|^### BEGIN /etc/grub\.d/10_linux_bls ###|--users \$\{?grub_users\b", re.M
)


def named(name: str) -> Dialect:
    """The dialect called ``name``; ConfigError listing the known ones."""
    dialect = DIALECTS.get(name)
    if dialect is None:
        raise ConfigError(f"unknown GRUB dialect {name!r}; known: {', '.join(DIALECTS)}")
    return dialect


class Detected(NamedTuple):
    dialect: Dialect
    reason: str  # what on the image chose it, e.g. "(hd0,gpt3)/etc/os-release has 'fedora' in ID_LIKE"


def _system_roots(fs) -> list[str]:
    """Where a system's root may be on a file system: its top, its default root (btrfs's
    default subvolume: openSUSE's snapshot), the subvolume "@" (Ubuntu's, Debian's)."""
    try:
        default = fs.default_root_path()
    except GuestbootError:
        default = None
    return ["", *([default.rstrip("/")] if default else []), "/@"]


def _os_words(devices: DeviceMap, device: str) -> tuple[dict[str, str], str]:
    """ID and ID_LIKE words of the first os-release found, each with the key it came from,
    and where that file is ("" when none)."""
    names = [device] + [n for n in devices.names() if n != device]
    for name in names:
        record = devices.get(name)
        if record is None or record.fs is None:
            continue
        for path in (root + known for root in _system_roots(record.fs) for known in _OS_RELEASE):
            try:
                data = fspath.read_bytes(record.fs, path, _OS_RELEASE_BYTES)
            except GuestbootError:  # absent, too big, unreadable: look further
                continue
            words: dict[str, str] = {}
            for line in data.decode("utf-8", "replace").splitlines()[: LIMITS.max_config_files]:
                key, eq, value = line.partition("=")
                if eq and key.strip() in ("ID", "ID_LIKE"):
                    for word in value.strip().strip("\"'").lower().split():
                        words.setdefault(word, key.strip())
            return words, f"({name}){path}"
    return {}, ""


def detect(devices: DeviceMap, device: str, config_text: str) -> Detected:
    """The dialect the image shows and why (see the module's docstring)."""
    words, where = _os_words(devices, device)
    for word, dialect in _BY_OS:
        if word in words:
            return Detected(dialect, f"{where} has {word!r} in {words[word]}")
    sign = _FEDORA_SIGNS.search(config_text)
    if sign:
        shown = " ".join(sign.group(0).split())
        return Detected(FEDORA, f"the config has Fedora's {shown!r}")
    if where:
        return Detected(DEBIAN, f"{where} names no distribution we know; no Fedora sign in the config")
    return Detected(DEBIAN, "no os-release on the image, no Fedora sign in the config")
