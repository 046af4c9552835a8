"""Finding the config on a guest: pygrub's path order, device order, --isconfig.

Device maps are shaped like real disks (DirFileSystem per partition, names as GRUB gives
them): a whole-disk file system, an MBR disk with a separate /boot, a disk whose first
partition holds no file system. The trees are the answer: each holds exactly the files
the case expects to be found.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from dirfs import DirFileSystem, device_map
from guestboot.boot import discover
from guestboot.boot.model import FileRef
from guestboot.boot.discover import FORMATS, config_menu, config_paths, find_config, find_menu
from guestboot.errors import ConfigError, NotFound
from guestboot.select import boot

CORPUS = Path(__file__).parent / "data" / "corpus"
RHEL = CORPUS / "uroot/grub/testdata_new/rhel_7_8_another"
EQ_STYLE = Path(__file__).parent / "data" / "own" / "legacy-eq"  # our own text

# The list in Xen 4.17's pygrub (Grub.read_config), without the syslinux paths we do not
# read yet: GRUB 2 first, then GRUB legacy.
PYGRUB_ORDER = [
    "/platform/i86xpv/kernel/amd64/unix",  # sniff_solaris, before any config
    "/platform/i86xpv/kernel/unix",
    "/boot/grub/grub.cfg",
    "/grub/grub.cfg",
    "/boot/grub2/grub.cfg",
    "/grub2/grub.cfg",
    "/boot/isolinux/isolinux.cfg",
    "/boot/extlinux/extlinux.conf",
    "/boot/extlinux.conf",
    "/extlinux/extlinux.conf",
    "/extlinux.conf",
    "/boot/grub/menu.lst",
    "/boot/grub/grub.conf",
    "/grub/menu.lst",
    "/grub/grub.conf",
]

LEGACY = "title t\n kernel /vmlinuz ro\n"


def tree(base: Path, *files: str, text: str = LEGACY) -> DirFileSystem:
    """A file system holding ``files`` (configs get ``text``, others are empty)."""
    base.mkdir(parents=True, exist_ok=True)
    for name in files:
        path = base / name.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text if name in PYGRUB_ORDER else "")
    return DirFileSystem(base)


def test_order_is_pygrubs():
    paths = [p for p, _f in config_paths()]
    assert paths[: len(PYGRUB_ORDER)] == PYGRUB_ORDER
    # then what pygrub does not know: GRUB 2 in btrfs subvolume "@", SYSLINUX's other places
    rest = paths[len(PYGRUB_ORDER) :]
    assert rest[:2] == ["/@/boot/grub/grub.cfg", "/@/boot/grub2/grub.cfg"]
    assert "/isolinux/isolinux.cfg" in rest and "/syslinux/syslinux.cfg" in rest
    assert {f for _p, f in config_paths()} >= {"solaris-xpv", "grub2", "grub-legacy", "syslinux"}


@pytest.mark.parametrize("position", range(len(PYGRUB_ORDER)))
def test_priority_on_one_device(tmp_path, position):
    """With every config present from ``position`` on, the one at ``position`` wins."""
    fs = tree(tmp_path, *PYGRUB_ORDER[position:])
    device, path, fmt, warnings = find_config(device_map(hd0=fs))
    assert (device, path) == ("hd0", PYGRUB_ORDER[position])
    assert fmt == ("solaris-xpv" if path.startswith("/platform/") else "grub2" if "grub" in path and path.endswith(".cfg")
                   else "syslinux" if "linux" in path else "grub-legacy")
    assert warnings == []


def test_separate_boot_partition(tmp_path):
    """MBR disk: (hd0,msdos1) is /boot (config at /grub/menu.lst), (hd0,msdos2) is /."""
    devices = device_map(
        **{
            "hd0": None,
            "hd0,msdos1": tree(tmp_path / "boot", "/grub/menu.lst", "/vmlinuz"),
            "hd0,msdos2": tree(tmp_path / "root", "/etc/fstab"),
        },
        problems={"hd0": "partitioned disk"},
    )
    menu = find_menu(devices)
    assert menu.origin == "hd0,msdos1:/grub/menu.lst"
    assert menu.warnings == []  # a device with no file system is not worth a warning
    assert boot(menu)[1].kernel.device == "hd0,msdos1"


def test_first_device_with_a_config_wins(tmp_path):
    """Table order across partitions: a config on partition 1 beats a higher-priority
    path on partition 2 (pygrub walks partitions, then paths)."""
    devices = device_map(
        **{
            "hd0,msdos1": tree(tmp_path / "p1", "/grub/grub.conf", "/vmlinuz"),
            "hd0,msdos2": tree(tmp_path / "p2", "/boot/grub/menu.lst", "/vmlinuz"),
        }
    )
    assert find_config(devices)[:2] == ("hd0,msdos1", "/grub/grub.conf")


def test_unreadable_partition_skipped(tmp_path):
    devices = device_map(
        **{
            "hd0,gpt1": None,
            "hd0,gpt2": tree(tmp_path / "p2", "/boot/grub/menu.lst", "/vmlinuz"),
        },
        problems={"hd0,gpt1": "unsupported file system (swap)"},
    )
    device, path, _fmt, warnings = find_config(devices)
    assert (device, path) == ("hd0,gpt2", "/boot/grub/menu.lst")
    assert warnings == []  # no file system there: nothing to warn about once a config is found


def test_corrupt_partition_is_warned_about(tmp_path):
    from guestboot.errors import CorruptImage

    devices = device_map(
        **{
            "hd0,gpt1": None,
            "hd0,gpt2": tree(tmp_path / "p2", "/boot/grub/menu.lst", "/vmlinuz"),
        },
        problems={"hd0,gpt1": CorruptImage("ext4: bad group descriptor", where="(hd0,gpt1)", offset=0x800)},
    )
    _device, _path, _fmt, warnings = find_config(devices)
    assert warnings == ["skipped (hd0,gpt1): ext4: bad group descriptor (at byte offset 0x800)"]


def test_nothing_found_says_what_was_tried(tmp_path):
    devices = device_map(**{"hd0,msdos1": tree(tmp_path / "p1", "/etc/fstab"), "hd0,msdos2": None})
    with pytest.raises(NotFound) as err:
        find_menu(devices)
    message = str(err.value)
    for path in PYGRUB_ORDER:
        assert path in message
    assert "(hd0,msdos1)" in message and "(hd0,msdos2) skipped: no recognised file system" in message


def test_directory_named_like_a_config_is_not_one(tmp_path):
    fs = tree(tmp_path, "/boot/grub/grub.conf")
    (tmp_path / "boot/grub/menu.lst").mkdir()
    assert find_config(device_map(hd0=fs))[1] == "/boot/grub/grub.conf"


def test_symlinked_menu_lst(tmp_path):
    """RHEL/CentOS 5-6: /boot/grub/menu.lst -> ./grub.conf; the symlink's path is found
    first and read through."""
    fs = tree(tmp_path, "/boot/grub/grub.conf", "/vmlinuz")
    (tmp_path / "boot/grub/menu.lst").symlink_to("./grub.conf")
    menu = find_menu(device_map(hd0=fs))
    assert menu.origin == "hd0:/boot/grub/menu.lst" and menu.entries[0].title == "t"


def test_dangling_symlink_skipped(tmp_path):
    fs = tree(tmp_path, "/grub/menu.lst")
    (tmp_path / "boot/grub").mkdir(parents=True)
    (tmp_path / "boot/grub/menu.lst").symlink_to("nowhere")
    assert find_config(device_map(hd0=fs))[1] == "/grub/menu.lst"


def test_symlink_loop_is_bounded(tmp_path):
    fs = tree(tmp_path, "/grub/menu.lst")
    (tmp_path / "boot/grub").mkdir(parents=True)
    (tmp_path / "boot/grub/grub.cfg").symlink_to("grub.cfg")
    device, path, _fmt, warnings = find_config(device_map(hd0=fs))
    assert path == "/grub/menu.lst"
    assert (
        len(warnings) == 1 and "(hd0)/boot/grub/grub.cfg skipped" in warnings[0] and "symlinks" in warnings[0]
    )
    (tmp_path / "grub/menu.lst").unlink()
    with pytest.raises(NotFound, match="more than 40 symlinks"):
        find_config(device_map(hd0=fs))


def test_a_config_directory_past_its_limit_is_a_limit_not_a_missing_config(tmp_path, monkeypatch):
    """A guest whose only config is a BLS directory of more entry files than
    max_config_files has a config we refused to read: exit 5 (limit), naming the
    directory and the limit, not 6 (no config). With one file fewer it is read."""
    from guestboot.errors import LimitExceeded
    from guestboot.limits import LIMITS

    monkeypatch.setattr(discover, "LIMITS", LIMITS._replace(max_config_files=8))
    entries = tmp_path / "boot/loader/entries"
    entries.mkdir(parents=True)
    for i in range(9):
        (entries / f"e{i}.conf").write_text(f"title e{i}\nlinux /vmlinuz\n")
    with pytest.raises(LimitExceeded, match=r"/boot/loader/entries: more than 8 files .*max_config_files") as caught:
        find_config(device_map(hd0=DirFileSystem(tmp_path)))
    assert caught.value.exit_code == 5 and "\n" not in str(caught.value)
    (entries / "e8.conf").unlink()
    assert find_config(device_map(hd0=DirFileSystem(tmp_path)))[1:3] == ("/boot/loader/entries", "systemd-boot")


def test_rhel_tree_prefers_grub2(tmp_path):
    """The real RHEL 7.8 tree holds /boot/grub2/grub.cfg and /boot/grub/grub.conf: GRUB 2
    comes first in pygrub's list."""
    assert find_config(device_map(hd0=DirFileSystem(RHEL)))[1:3] == ("/boot/grub2/grub.cfg", "grub2")
    root = tmp_path / "rhel"
    shutil.copytree(RHEL, root)
    shutil.rmtree(root / "boot/grub2")
    (root / "boot/vmlinuz-3.10.0-1127.el7.x86_64").write_bytes(b"")
    (root / "boot/initramfs-3.10.0-1127.el7.x86_64.img").write_bytes(b"")
    menu = find_menu(device_map(hd0=DirFileSystem(root)))
    assert menu.format == "grub-legacy" and menu.origin == "hd0:/boot/grub/grub.conf"
    assert boot(menu)[1].kernel.path == "/boot/vmlinuz-3.10.0-1127.el7.x86_64"


def test_config_error_is_located(tmp_path, monkeypatch):
    fs = tree(tmp_path, "/boot/grub/menu.lst")

    def broken(devices, device, path, *, env=None, check_files=True):
        raise ConfigError("syntax error at line 3")

    from guestboot.boot import legacy

    monkeypatch.setattr(legacy, "evaluate", broken)
    with pytest.raises(ConfigError, match=r"^\(hd0\)/boot/grub/menu.lst: syntax error"):
        find_menu(device_map(hd0=fs))


def test_registry_is_one_line_per_format(tmp_path, monkeypatch):
    """A new format is a module with evaluate() plus one FORMATS line."""
    import sys
    import types

    from guestboot.boot.model import Menu

    fake = types.ModuleType("guestboot_test_fakefmt")
    fake.evaluate = lambda devices, device, path, *, env=None, check_files=True: Menu(origin=f"{device}:{path}", format="fake")
    monkeypatch.setitem(sys.modules, "guestboot_test_fakefmt", fake)
    line = discover.Format("fake", "guestboot_test_fakefmt", (discover.Location("/fake.conf"),))
    monkeypatch.setattr(discover, "FORMATS", FORMATS + (line,))
    menu = find_menu(device_map(hd0=tree(tmp_path, "/fake.conf")))
    assert (menu.format, menu.origin) == ("fake", "hd0:/fake.conf")


def test_directory_location(tmp_path, monkeypatch):
    """A Location with a pattern finds the directory when it holds a matching regular
    file; the format gets the directory; later formats come after pygrub's."""
    import sys
    import types

    from guestboot.boot.model import Menu

    fake = types.ModuleType("guestboot_test_dirfmt")
    fake.evaluate = lambda devices, device, path, *, env=None, check_files=True: Menu(origin=f"{device}:{path}", format="dirfmt")
    monkeypatch.setitem(sys.modules, "guestboot_test_dirfmt", fake)
    line = discover.Format("dirfmt", "guestboot_test_dirfmt", (discover.Location("/loader/entries", "*.conf"),))
    monkeypatch.setattr(discover, "FORMATS", FORMATS + (line,))
    assert config_paths()[-1] == ("/loader/entries/*.conf", "dirfmt")
    no_match = tree(tmp_path / "a", "/loader/entries/x.txt", "/loader/entries/dir.conf/y")
    match = tree(tmp_path / "b", "/loader/entries/x.txt", "/loader/entries/b.conf", "/loader/entries/a.conf")
    menu = find_menu(device_map(hd0=no_match, hd1=match))
    assert (menu.format, menu.origin) == ("dirfmt", "hd1:/loader/entries")
    assert discover.matching_files(match, "/loader/entries", "*.conf") == ["a.conf", "b.conf"]
    grub_too = tree(tmp_path / "c", "/loader/entries/a.conf", "/boot/grub/grub.cfg")
    assert find_menu(device_map(hd0=grub_too)).format == "grub2"  # pygrub's formats first


def test_directory_location_is_bounded(tmp_path):
    from guestboot.errors import LimitExceeded

    fs = tree(tmp_path, *(f"/loader/entries/{i}.conf" for i in range(5)))
    assert len(discover.matching_files(fs, "/loader/entries", "*.conf", limit=5)) == 5
    with pytest.raises(LimitExceeded, match="max_config_files"):
        discover.matching_files(fs, "/loader/entries", "*.conf", limit=4)


# --- --isconfig ---------------------------------------------------------------------------


def test_isconfig_by_name(tmp_path):
    one = tmp_path / "cfg"
    one.mkdir()
    shutil.copy(EQ_STYLE / "boot/grub/menu.lst", one / "menu.lst")
    menu = find_menu(device_map(hd0=DirFileSystem(one)), isconfig=True)
    assert menu.format == "grub-legacy" and len(menu.entries) == 2
    assert menu.origin == "hd0:/menu.lst"


def test_isconfig_by_content(tmp_path):
    """A file named neither grub.cfg nor menu.lst: GRUB legacy text is recognised."""
    one = tmp_path / "cfg"
    one.mkdir()
    shutil.copy(RHEL / "boot/grub/grub.conf", one / "guest.conf")
    menu = config_menu(device_map(hd0=DirFileSystem(one)), "hd0", "/guest.conf")
    assert menu.format == "grub-legacy"
    assert menu.entries[0].title == "Red Hat Enterprise Linux 7 (3.10.0-1127.el7.x86_64)"


def test_isconfig_needs_one_file(tmp_path):
    (tmp_path / "a").write_text(LEGACY)
    (tmp_path / "b").write_text(LEGACY)
    with pytest.raises(ConfigError, match="expected one file"):
        find_menu(device_map(hd0=DirFileSystem(tmp_path)), isconfig=True)
    with pytest.raises(NotFound):
        find_menu(device_map(hd0=None), isconfig=True)


def test_unknown_format_name():
    with pytest.raises(ConfigError, match="unknown config format"):
        discover.evaluate_config(device_map(), "hd0", "/x", "lilo")


def test_rhel_grub2_through_the_interpreter(tmp_path):
    """The real RHEL 7.8 tree as the first partition of an MBR disk: the GRUB 2 config is
    found and evaluated; saved_entry comes from a grubenv written by grub-editenv."""
    root = tmp_path / "rhel"
    shutil.copytree(RHEL, root)
    uuid = (root / "UUID").read_text().strip()
    for name in (
        "vmlinuz-3.10.0-1127.el7.x86_64",
        "initramfs-3.10.0-1127.el7.x86_64.img",
        "vmlinuz-0-rescue-8ae51ce6a0a74f8d85fe6f1281d8477f",
        "initramfs-0-rescue-8ae51ce6a0a74f8d85fe6f1281d8477f.img",
    ):
        (root / "boot" / name).write_bytes(b"")
    devices = device_map(**{"hd0": None, "hd0,msdos1": DirFileSystem(root, uuid=uuid)})
    menu = find_menu(devices)
    assert (menu.format, menu.origin) == ("grub2", "hd0,msdos1:/boot/grub2/grub.cfg")
    choice, spec = boot(menu)
    assert choice.path == (0,)
    assert spec.kernel == FileRef(
        "hd0,msdos1", "/boot/vmlinuz-3.10.0-1127.el7.x86_64", "/boot/vmlinuz-3.10.0-1127.el7.x86_64"
    )
    assert spec.loader == "linux16"
    assert spec.args == (
        "root=UUID=71360dfb-1e6e-40dc-abec-3538d5fffa39 ro console=tty0 console=ttyS0,115200n8"
        " no_timer_check net.ifnames=0 crashkernel=auto LANG=en_US.UTF-8"
    )
    rescue = "Red Hat Enterprise Linux Server (0-rescue-8ae51ce6a0a74f8d85fe6f1281d8477f) 7.8 (Maipo)"
    env = root / "boot/grub2/grubenv"
    subprocess.run(["grub-editenv", str(env), "create"], check=True, timeout=30)
    subprocess.run(["grub-editenv", str(env), "set", f"saved_entry={rescue}"], check=True, timeout=30)
    choice, spec = boot(find_menu(devices))
    assert choice.names == (rescue,)
    assert spec.initrds[0].path == "/boot/initramfs-0-rescue-8ae51ce6a0a74f8d85fe6f1281d8477f.img"
