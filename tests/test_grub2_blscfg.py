"""Fedora's GRUB ``blscfg`` command (the "fedora" dialect).

The truth is Fedora's own source, read for this: rhboot/grub2, branch fedora-44 (commit
5e9e7e44eddcab0174decc12c3799825e600639f), grub-core/commands/blscfg.c -- the same
repository and commit as the corpus's grub-script files. Debian's GRUB has no blscfg, so
no GRUB on this machine can be asked; every expectation below is worked out from that
file (function named in each test) and the corpus configs are Fedora's, CentOS's and
petitboot's.

Kernel and initrd files are not in the corpus trees: each tree gets empty files at the
paths its BLS entries name, so the tree built is the answer expected.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from dirfs import DirFileSystem, device_map  # noqa: E402
from test_grub2_corpus import PETITBOOT, UROOT, build_petitboot, copy_tree, touch  # noqa: E402

from guestboot.boot.grub2 import evaluate  # noqa: E402
from guestboot.boot.grub2.cmd_blscfg import parse_entry  # noqa: E402
from guestboot.boot.vercmp import nvr_cmp, rpm_vercmp, strverscmp_improved  # noqa: E402
from guestboot.errors import ConfigError, GuestbootError, LimitExceeded  # noqa: E402
from guestboot.select import boot  # noqa: E402


# --- version comparisons -------------------------------------------------------------
@pytest.mark.parametrize(
    "older,newer",
    [
        ("1.0", "1.0.1"), ("1.0~rc1", "1.0"), ("1.0", "1.0+b1"), ("1.9", "1.10"), ("a", "1"),
        ("4.14.18", "4.15.2"), ("5.0.0-0.rc2.git0.1.fc31", "5.0.0-1.fc31"), ("001", "2"), ("1.a", "1.1"),
    ],
)
def test_rpm_vercmp_orders(older: str, newer: str) -> None:
    """blscfg.c vercmp (rpmvercmp with "~" and "+"): the newer side wins either way round."""
    assert rpm_vercmp(newer, older) == 1
    assert rpm_vercmp(older, newer) == -1


def test_rpm_vercmp_equal_and_separators() -> None:
    assert rpm_vercmp("1.0", "1_0") == 0  # separators do not count, only segments
    assert rpm_vercmp("01", "1") == 0  # leading zeros are dropped


def test_nvr_splits_at_the_last_two_dashes() -> None:
    """split_package_string: machine-id-version-release; the machine id (name) compares first."""
    mid = "6c063c8e48904f2684abde8eea303f41"
    assert nvr_cmp(f"{mid}-4.15.2-302.fc28.x86_64", f"{mid}-4.14.18-300.fc28.x86_64") == 1
    assert nvr_cmp(f"{mid}-5.18.0", f"{mid}-0-rescue") == 1  # "5.18.0" vs version "0"
    assert nvr_cmp(f"b-{mid}-1", f"a-{mid}-9") == 1  # name first


def test_strverscmp_improved_documented_order() -> None:
    """systemd's own list of versions in order (string-util-fundamental.c comment)."""
    order = ["122.1", "123~rc1-1", "123", "123-a", "123-a.1", "123-1", "123-1.1", "123^post1", "123.a-1",
             "123.1-1", "123a-1", "124-1"]
    for i, a in enumerate(order):
        for b in order[i + 1 :]:
            assert strverscmp_improved(a, b) == -1, (a, b)
            assert strverscmp_improved(b, a) == 1, (b, a)
    assert strverscmp_improved("00123", "123") == 0


# --- the entry file reader (read_entry) ---------------------------------------------------
def test_read_entry_line_rules() -> None:
    data = b"  title  My OS \r\n# comment\nlinux\t/vmlinuz quiet\noptions a  b\n\ninitrd /after-empty-line\n"
    pairs = parse_entry(data)
    # key ends at the first space, so a tab inside it stays; trailing blanks of a value stay
    assert pairs == [("title", "My OS "), ("linux\t/vmlinuz", "quiet"), ("options", "a  b")]


def test_read_entry_key_without_value_ends_the_file() -> None:
    assert parse_entry(b"title A\nversion\nlinux /k\n") == [("title", "A")]


# --- whole configs -------------------------------------------------------------------------
def _tree(tmp: Path, files: dict[str, str], **fs) -> object:
    for path, text in files.items():
        target = tmp / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return device_map(hd0=DirFileSystem(tmp, **fs))


def _entry(title: str, linux: str, *extra: str) -> str:
    return "\n".join([f"title {title}", f"linux {linux}", *extra]) + "\n"


def _menu(tmp: Path, cfg: str, entries: dict[str, str], more: dict[str, str] | None = None,
          dialect: str = "fedora", entries_dir: str = "/loader/entries"):
    files = {"/grub2/grub.cfg": cfg, **(more or {})}
    for name, text in entries.items():
        files[f"{entries_dir}/{name}"] = text
        for line in parse_entry(text.encode()):
            if line[0] in ("linux", "initrd"):
                for word in line[1].split():
                    if word.startswith("/"):
                        files.setdefault(word, "")
    dm = _tree(tmp, files)
    return evaluate(dm, "hd0", "/grub2/grub.cfg", grub_dialect=dialect)


def test_sorted_newest_first_and_ids(tmp_path: Path) -> None:
    """bls_add_entry keeps the list newest first (split_cmp on the file name); create_entry
    gives each the id of its file name without .conf, the title of its title line."""
    mid = "0123456789abcdef0123456789abcdef"
    names = [f"{mid}-5.9.1-100.fc33.x86_64", f"{mid}-5.10.0-1.fc33.x86_64", f"{mid}-5.10.0-0.rc7.fc33.x86_64",
             f"{mid}-0-rescue"]
    entries = {f"{n}.conf": _entry(f"T {n[33:]}", f"/vmlinuz-{n[33:]}", "options root=/dev/sda1") for n in names}
    menu = _menu(tmp_path, "blscfg\n", entries)
    assert [e.id for e in menu.entries] == [names[1], names[2], names[0], names[3]]
    spec = menu.entries[0].run()
    assert spec.kernel.path == "/vmlinuz-5.10.0-1.fc33.x86_64"
    assert spec.args == "root=/dev/sda1"
    assert spec.cmdline == "BOOT_IMAGE=(hd0)/vmlinuz-5.10.0-1.fc33.x86_64 root=/dev/sda1"


def test_entries_go_where_blscfg_runs(tmp_path: Path) -> None:
    cfg = "menuentry first { linux /k1 }\nblscfg\nmenuentry last { linux /k1 }\n"
    menu = _menu(tmp_path, cfg, {"a-1.conf": _entry("BLS", "/k2")}, {"/k1": ""})
    assert [e.title for e in menu.entries] == ["first", "BLS", "last"]


def test_options_expansion_and_default_kernelopts(tmp_path: Path) -> None:
    """expand_val: the first options line only; $var from the script environment and a
    blank after it; no options line: $default_kernelopts."""
    cfg = "set kernelopts='root=/dev/vda2 ro'\nset tuned_params=''\nset default_kernelopts='fallback=1'\nblscfg\n"
    entries = {
        "x-2.conf": _entry("two", "/k", "options $kernelopts $tuned_params quiet", "options ignored=1"),
        "x-1.conf": _entry("one", "/k"),
    }
    menu = _menu(tmp_path, cfg, entries)
    assert [e.title for e in menu.entries] == ["two", "one"]
    assert menu.entries[0].run().args == "root=/dev/vda2 ro quiet"
    assert menu.entries[1].run().args == "fallback=1"


def test_initrds_early_initrd_and_root(tmp_path: Path) -> None:
    """create_entry: every initrd line, each as ($root)PATH; $early_initrd files first,
    from the first initrd's directory; the body runs with $root as it is at boot."""
    cfg = "set early_initrd='ucode.img'\nblscfg\n"
    entries = {"x-1.conf": _entry("one", "/boot/k", "initrd /boot/i1.img", "initrd /boot/i2.img /boot/i3.img")}
    menu = _menu(tmp_path, cfg, entries, {"/boot/ucode.img": ""})
    spec = menu.entries[0].run()
    assert [r.path for r in spec.initrds] == ["/boot/ucode.img", "/boot/i1.img", "/boot/i2.img", "/boot/i3.img"]


def test_grub_arg_class_users(tmp_path: Path) -> None:
    entries = {"x-1.conf": _entry("one", "/k", "grub_users $grub_users", "grub_arg --unrestricted",
                                  "grub_class kernel", "grub_class fedora")}
    menu = _menu(tmp_path, "set grub_users=admin\nblscfg\n", entries)
    entry = menu.entries[0]
    assert entry.classes == ("kernel", "fedora")
    assert entry.users == "admin "  # expand_val adds a blank after a variable's value


def test_saved_entry_matches_the_file_name(tmp_path: Path) -> None:
    """grubby writes saved_entry as the file name without .conf; GRUB's default matches ids."""
    env = "# GRUB Environment Block\nsaved_entry=m-5.1-1\n".ljust(1024, "#")
    cfg = "load_env -f /grub2/grubenv\nset default=\"${saved_entry}\"\nblscfg\n"
    entries = {"m-5.2-1.conf": _entry("new", "/k"), "m-5.1-1.conf": _entry("old", "/k")}
    menu = _menu(tmp_path, cfg, entries, {"/grub2/grubenv": env})
    choice, spec = boot(menu, None)
    assert choice.names == ("old",)


def test_blsdir_and_fallback_to_boot(tmp_path: Path) -> None:
    """find_entry: /loader/entries, else /boot/loader/entries; $blsdir replaces the first."""
    menu = _menu(tmp_path, "blscfg\n", {"a-1.conf": _entry("in boot", "/boot/k")}, entries_dir="/boot/loader/entries")
    assert [e.title for e in menu.entries] == ["in boot"]
    other = tmp_path / "other"
    other.mkdir()
    menu = _menu(other, "set blsdir=/mine\nblscfg\n", {"a-1.conf": _entry("mine", "/k")}, entries_dir="/mine")
    assert [e.title for e in menu.entries] == ["mine"]


def test_blscfg_arguments_and_once_per_session(tmp_path: Path) -> None:
    """grub_cmd_blscfg: 'default' adds only the default entry, 'non-default' the others,
    an id that one; an entry is added once, however often blscfg runs."""
    cfg = "set default=m-1-1\nblscfg default\nmenuentry sep { true }\nblscfg non-default\nblscfg\nblscfg m-1-1\n"
    entries = {f"m-{v}-1.conf": _entry(f"v{v}", "/k") for v in (1, 2, 3)}
    menu = _menu(tmp_path, cfg, entries)
    assert [e.title for e in menu.entries] == ["v1", "sep", "v3", "v2"]


def test_debian_has_no_blscfg(tmp_path: Path) -> None:
    menu = _menu(tmp_path, "blscfg\n", {"a-1.conf": _entry("x", "/k")}, dialect="debian")
    assert menu.entries == []
    assert any("can't find command `blscfg'" in w for w in menu.warnings)


def test_name_that_makes_grub_loop_is_an_error(tmp_path: Path) -> None:
    """create_entry's strstr loop never ends for a ".conf" inside the id: GRUB hangs;
    we say so instead."""
    with pytest.raises(ConfigError, match="loop forever"):
        _menu(tmp_path, "blscfg\n", {"a.confx.conf": _entry("x", "/k")})


def test_entry_bytes_are_bounded(tmp_path: Path, monkeypatch) -> None:
    from guestboot import limits
    from guestboot.boot.grub2 import cmd_blscfg

    monkeypatch.setattr(cmd_blscfg, "LIMITS", limits.LIMITS._replace(max_entries_bytes=100))
    entries = {f"a-{i}.conf": _entry("x" * 40, "/k") for i in range(5)}
    with pytest.raises(LimitExceeded, match="max_entries_bytes"):
        _menu(tmp_path, "blscfg\n", entries)


# --- corpus: CentOS 8 Stream (u-root's tree) -------------------------------------------
def test_centos_8_stream(tmp_path: Path) -> None:
    """A real grub2-mkconfig config: grubenv's kernelopts and saved_entry, $tuned_params
    set empty by 00_tuned, 'grub_users $grub_users' unset, 'grub_arg --unrestricted'."""
    case = "CentOS_8_Stream_x86_64_blscfg_sda1"
    copy_tree(UROOT / case, tmp_path)
    dm = device_map(**{case: DirFileSystem(tmp_path, uuid=(tmp_path / "UUID").read_text().strip())})
    menu = evaluate(dm, case, "/EFI/centos/grub.cfg")
    assert menu.dialect == "fedora"
    assert [(e.title, e.id) for e in menu.entries] == [
        ("CentOS Linux (5.18.0) 8", "9af7b02ac08149d985841c07c8ff366e-5.18.0"),
        ("CentOS Linux (0-rescue-9af7b02ac08149d985841c07c8ff366e) 8", "9af7b02ac08149d985841c07c8ff366e-0-rescue"),
        ("tboot 1.10.2", None),
    ]
    assert all(e.users is None for e in menu.entries)
    choice, spec = boot(menu, None)
    assert choice.entry.id == "9af7b02ac08149d985841c07c8ff366e-5.18.0"
    assert spec.kernel.path == "/boot/vmlinuz-5.18.0"
    assert [r.path for r in spec.initrds] == ["/boot/initramfs-5.18.0.img"]
    assert spec.args == "root=UUID=d0be5cb9-622d-42d5-a531-674aaa120309 ro crashkernel=auto rhgb quiet console=ttyS1,57600n8"


# --- corpus: petitboot's blscfg cases -------------------------------------------------------
# GRUB's answer (blscfg.c) per case is a golden file, tests/data/own/blscfg/<case>.json:
# every entry (title, id, what it boots or the error class), the default's index, and
# "why" -- where petitboot's expectation differs, and the reason.
GOLDEN = Path(__file__).parent / "data" / "own" / "blscfg"
PETITBOOT_BLSCFG = sorted(p.stem for p in GOLDEN.glob("test-grub2-blscfg-*.json"))


def _touch_bls_files(root: Path) -> None:
    for conf in root.glob("**/loader/entries/*.conf"):
        for key, value in parse_entry(conf.read_bytes()):
            if key in ("linux", "initrd"):
                for word in value.split():
                    if word.startswith("/"):
                        touch(root, word)


@pytest.mark.parametrize("case", PETITBOOT_BLSCFG)
def test_petitboot_blscfg(case: str, tmp_path: Path) -> None:
    want = json.loads((GOLDEN / f"{case}.json").read_text())
    data = json.loads((PETITBOOT / case / "expected.json").read_text())
    _data, dm = build_petitboot(case, tmp_path)
    for dev in data["devices"]:
        _touch_bls_files(tmp_path / dev["id"])
    cfg = data["config_file"]
    menu = evaluate(dm, cfg["device"], cfg["path"], grub_dialect="fedora")
    got = []
    for entry in menu.entries:
        row: dict = {"title": entry.title, "id": entry.id}
        try:
            spec = entry.run()
        except GuestbootError as err:
            row["error"] = type(err).__name__
        else:
            row.update(kernel=str(spec.kernel), initrds=[str(i) for i in spec.initrds], args=spec.args)
        got.append(row)
    assert got == want["entries"]
    assert menu.rule.pick(menu, None).index == want["default"]
    assert len(PETITBOOT_BLSCFG) == len(list(PETITBOOT.glob("test-grub2-blscfg-*")))  # every corpus case has one


# --- Fedora's get_entry_number (normal/menu.c get_entry_number_helper) ---------------------
def test_fedora_default_matches_ids_before_numbers(tmp_path: Path) -> None:
    """A BLS id starting with digits is an id on Fedora (upstream GRUB reads "2a6f…" as the
    number 2); ids are tried before titles; a number must be the whole value."""
    from guestboot.boot.grub2.default import fedora_entry_number
    from guestboot.boot.menupath import entry_number

    entries = {"2a6f-5.2-1.conf": _entry("new", "/k"), "2a6f-5.1-1.conf": _entry("2a6f-5.2-1", "/k")}
    menu = _menu(tmp_path, "blscfg\n", entries)
    assert [e.id for e in menu.entries] == ["2a6f-5.2-1", "2a6f-5.1-1"]
    assert entry_number(menu, "2a6f-5.1-1") == 2  # upstream: the number 2 (out of range)
    assert fedora_entry_number(menu, "2a6f-5.1-1") == 1
    assert fedora_entry_number(menu, "2a6f-5.2-1") == 0  # the id of entry 0 before the title of entry 1
    assert fedora_entry_number(menu, "2a6f-5.1-1 extra") == -1  # more after the id: nothing
    assert fedora_entry_number(menu, "1") == 1
    assert fedora_entry_number(menu, "1>0") == -1 and entry_number(menu, "1>0") == 1
    assert fedora_entry_number(menu, "new") == 0  # a title
