"""SYSLINUX / EXTLINUX / ISOLINUX configs (boot/syslinux.py).

Two kinds of test:

* The semantics, case by case, from SYSLINUX 6's own source (com32/elflink/ldlinux/
  readconfig.c, ldlinux.c, execute.c, kernel.c; com32/menu/readconfig.c, menumain.c):
  each test names the rule it checks.
* Every syslinux config of the corpus (u-root's install ISOs, petitboot's parser tests,
  pygrub's Alpine example) parses, and our menu, default and every entry's boot are the
  golden files tests/data/own/syslinux/<case>.json. Where a peer's expectation differs
  from SYSLINUX, the golden file says so ("peer"). GUESTBOOT_UPDATE_GOLDEN=1 rewrites
  them (review the diff: it is the answer).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from dirfs import DirFileSystem, device_map
from guestboot.boot.model import Menu
from guestboot.boot.syslinux import parse_config
from guestboot.errors import ConfigError, GuestbootError, LimitExceeded, NotFound, Unsupported
from guestboot.limits import LIMITS
from guestboot.select import choose

CORPUS = Path(__file__).parent / "data" / "corpus"
GOLDEN = Path(__file__).parent / "data" / "own" / "syslinux"


def _menu(tmp_path: Path, files: dict[str, str], config: str = "/boot/extlinux/extlinux.conf", **kw) -> Menu:
    for name, text in files.items():
        target = tmp_path / name.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    devices = device_map(**{"hd0": DirFileSystem(tmp_path)})
    return parse_config(devices, "hd0", config, **kw)


def _default(menu: Menu):
    choice = choose(menu)
    return choice.names, choice.entry.run()


KERNELS = {name: "" for name in ("/boot/vmlinuz-a", "/boot/vmlinuz-b", "/boot/initrd-a", "/boot/initrd-b")}


def test_label_append_initrd_and_boot_image(tmp_path):
    # record(): "kernel append initrd=X"; new_linux_kernel: BOOT_IMAGE=<kernel as written>.
    menu = _menu(tmp_path, {**KERNELS, "/boot/extlinux/extlinux.conf": (
        "DEFAULT a\nLABEL a\n  MENU LABEL Kernel ^A\n  LINUX ../vmlinuz-a\n  APPEND root=/dev/vda1 ro\n"
        "  INITRD ../initrd-a,../initrd-b\n")})
    names, spec = _default(menu)
    assert names == ("Kernel A",) and menu.entries[0].id == "a"
    assert str(spec.kernel) == "(hd0)/boot/vmlinuz-a"  # relative to the config's directory
    assert [str(i) for i in spec.initrds] == ["(hd0)/boot/initrd-a", "(hd0)/boot/initrd-b"]
    assert spec.args == "root=/dev/vda1 ro initrd=../initrd-a,../initrd-b"
    assert spec.cmdline == "BOOT_IMAGE=../vmlinuz-a root=/dev/vda1 ro initrd=../initrd-a,../initrd-b"


def test_global_append_dash_and_first_initrd_wins(tmp_path):
    menu = _menu(tmp_path, {**KERNELS, "/boot/extlinux/extlinux.conf": (
        "APPEND console=ttyS0\nDEFAULT g\n"
        "LABEL g\n KERNEL /boot/vmlinuz-a\n"                                   # global APPEND
        "LABEL own\n KERNEL /boot/vmlinuz-a\n APPEND quiet\n"                  # replaces it
        "LABEL none\n KERNEL /boot/vmlinuz-a\n APPEND -\n"                     # no arguments
        "LABEL both\n KERNEL /boot/vmlinuz-b\n APPEND initrd=/boot/initrd-b x\n INITRD /boot/initrd-a\n")})
    specs = {e.title: e.run() for e in menu.entries}
    assert specs["g"].args == "console=ttyS0"
    assert specs["own"].args == "quiet"
    assert specs["none"].args == "" and specs["none"].cmdline == "BOOT_IMAGE=/boot/vmlinuz-a "
    # INITRD becomes " initrd=..." after the APPEND text; the kernel loader takes the first.
    assert specs["both"].args == "initrd=/boot/initrd-b x initrd=/boot/initrd-a"
    assert [i.path for i in specs["both"].initrds] == ["/boot/initrd-b"]


def test_keywords_case_and_kernel_defaults_to_label(tmp_path):
    # looking_at is case-insensitive and needs a blank after the keyword; a LABEL without
    # KERNEL boots a kernel named like the label; KERNEL outside a label is ignored.
    menu = _menu(tmp_path, {"/boot/extlinux/vmlinuz": "", "/boot/extlinux/extlinux.conf": (
        "kernel /nowhere\ndefault vmlinuz\n  label vmlinuz\n\tappend a=1\nLABELX ignored\n")})
    names, spec = _default(menu)
    assert names == ("vmlinuz",) and spec.kernel.path == "/boot/extlinux/vmlinuz" and spec.args == "a=1"
    assert len(menu.entries) == 1


def test_default_is_a_kernel_path_with_arguments(tmp_path):
    # load_kernel: no such label, so an implicit image: the kernel and the words after it.
    menu = _menu(tmp_path, {**KERNELS, "/boot/extlinux/extlinux.conf": (
        "DEFAULT /boot/vmlinuz-b root=/dev/sda2 initrd=/boot/initrd-b\nLABEL a\n KERNEL /boot/vmlinuz-a\n")})
    names, spec = _default(menu)
    assert names == ("/boot/vmlinuz-b root=/dev/sda2 initrd=/boot/initrd-b",)
    assert menu.entries[-1].classes == ("command",)
    assert spec.kernel.path == "/boot/vmlinuz-b" and [i.path for i in spec.initrds] == ["/boot/initrd-b"]
    assert spec.args == "root=/dev/sda2 initrd=/boot/initrd-b"


def test_default_label_with_more_words(tmp_path):
    menu = _menu(tmp_path, {**KERNELS, "/boot/extlinux/extlinux.conf": (
        "DEFAULT a single\nLABEL a\n KERNEL /boot/vmlinuz-a\n APPEND ro\n")})
    _names, spec = _default(menu)
    assert spec.args == "ro single"


def test_implicit_0_refuses_a_default_that_is_no_label(tmp_path):
    menu = _menu(tmp_path, {**KERNELS, "/boot/extlinux/extlinux.conf": (
        "IMPLICIT 0\nDEFAULT /boot/vmlinuz-b\nLABEL a\n KERNEL /boot/vmlinuz-a\n")})
    names, _spec = _default(menu)
    assert names == ("a",)
    assert any("IMPLICIT 0" in w for w in menu.warnings)


@pytest.mark.parametrize(
    "directives, expected",
    [
        ("DEFAULT b", "b"),  # no UI: DEFAULT boots at once (PROMPT 0)
        ("DEFAULT b\nPROMPT 1\nTIMEOUT 30\nONTIMEOUT c", "c"),  # the prompt times out
        ("DEFAULT b\nPROMPT 1\nONTIMEOUT c", "b"),  # no timeout: Enter boots DEFAULT
        ("DEFAULT b\nONTIMEOUT c\nTIMEOUT 30", "b"),  # PROMPT 0: no prompt, no timeout
        ("UI menu.c32\nDEFAULT b", "b"),  # the menu: DEFAULT (with UI) beats MENU DEFAULT
        ("DEFAULT menu.c32", "c"),  # the menu without UI: DEFAULT names no label; MENU DEFAULT
        ("DEFAULT vesamenu.c32\nTIMEOUT 50\nONTIMEOUT a", "a"),  # the menu times out
        ("UI vesamenu.c32\nDEFAULT b\nTIMEOUT 0\nONTIMEOUT a", "b"),  # TIMEOUT 0: no timeout
        ("TIMEOUT 10", "a"),  # no DEFAULT, no UI: SYSLINUX waits; the first label
        ("UI menu.c32\nDEFAULT b\nDEFAULT c", "c"),  # the last DEFAULT
    ],
)
def test_what_boots_by_default(tmp_path, directives, expected):
    labels = "".join(f"LABEL {n}\n KERNEL /boot/vmlinuz-a\n APPEND which={n}\n" for n in "ab")
    labels += "LABEL c\n MENU DEFAULT\n KERNEL /boot/vmlinuz-a\n APPEND which=c\n"
    menu = _menu(tmp_path, {**KERNELS, "/boot/extlinux/extlinux.conf": directives + "\n" + labels})
    _names, spec = _default(menu)
    assert spec.args == f"which={expected}"


def test_timeout_is_tenths(tmp_path):
    menu = _menu(tmp_path, {**KERNELS, "/boot/extlinux/extlinux.conf": "TIMEOUT 25\nLABEL a\n KERNEL /boot/vmlinuz-a\n"})
    assert menu.timeout == "2.5"


def test_include_and_menu_include_submenu(tmp_path):
    # INCLUDE reads the file in place (the pending label goes on); MENU INCLUDE with a tag
    # is a submenu; a DEFAULT label inside a submenu starts the menu there.
    menu = _menu(tmp_path, {**KERNELS,
        "/boot/extlinux/extlinux.conf": "UI menu.c32\nDEFAULT deep\nLABEL a\nINCLUDE part.cfg\nMENU INCLUDE sub.cfg More\n",
        "/boot/extlinux/part.cfg": " KERNEL /boot/vmlinuz-a\n APPEND from=include\n",
        "/boot/extlinux/sub.cfg": "MENU LABEL Other things\nLABEL deep\n MENU LABEL Deep one\n KERNEL /boot/vmlinuz-b\n"})
    assert [e.title for e in menu.entries] == ["a", "Other things"]
    assert menu.entries[0].run().args == "from=include"
    names, spec = _default(menu)
    assert names == ("Other things", "Deep one") and spec.kernel.path == "/boot/vmlinuz-b"


def test_menu_begin_end_and_hidden(tmp_path):
    menu = _menu(tmp_path, {**KERNELS, "/boot/extlinux/extlinux.conf": (
        "UI menu.c32\nLABEL a\n KERNEL /boot/vmlinuz-a\nMENU SEPARATOR\nMENU BEGIN adv\n MENU TITLE Advanced\n"
        " LABEL b\n  KERNEL /boot/vmlinuz-b\n  MENU DEFAULT\nMENU END\nLABEL h\n MENU HIDE\n KERNEL /boot/vmlinuz-b\n")})
    assert [(e.title, e.is_submenu) for e in menu.entries] == [("a", False), ("Advanced", True), ("h", False)]
    assert menu.entries[2].classes == ("hidden",)
    assert _default(menu)[0] == ("a",)  # MENU DEFAULT in a submenu is that submenu's default
    sub = menu.entries[1].submenu
    assert choose(sub).entry.title == "b"


def test_include_loop_is_bounded(tmp_path):
    with pytest.raises(LimitExceeded, match="nested more than"):
        _menu(tmp_path, {"/boot/extlinux/extlinux.conf": "INCLUDE extlinux.conf\n"})


def test_missing_include_is_skipped_with_a_warning(tmp_path):
    menu = _menu(tmp_path, {**KERNELS, "/boot/extlinux/extlinux.conf": "INCLUDE gone.cfg\nLABEL a\n KERNEL /boot/vmlinuz-a\n"})
    assert any("gone.cfg" in w and "skipped" in w for w in menu.warnings)
    assert [e.title for e in menu.entries] == ["a"]


def test_config_switches_to_another_config_and_directory(tmp_path):
    menu = _menu(tmp_path, {**KERNELS,
        "/boot/extlinux/extlinux.conf": "DEFAULT other\nLABEL other\n CONFIG /cfg/next.cfg /boot\n",
        "/cfg/next.cfg": "DEFAULT n\nLABEL n\n KERNEL vmlinuz-b\n"})
    _names, spec = _default(menu)
    assert spec.kernel.path == "/boot/vmlinuz-b"


def test_mboot_xen_entry_boots_its_linux_kernel(tmp_path):
    menu = _menu(tmp_path, {**KERNELS, "/boot/extlinux/xen.gz": "", "/boot/extlinux/extlinux.conf": (
        "DEFAULT xen\nLABEL xen\n KERNEL mboot.c32\n APPEND xen.gz dom0_mem=1G --- ../vmlinuz-a root=/dev/xvda1 --- ../initrd-a\n")})
    _names, spec = _default(menu)
    assert spec.kernel.path == "/boot/vmlinuz-a" and [i.path for i in spec.initrds] == ["/boot/initrd-a"]
    assert spec.args == "root=/dev/xvda1"
    assert any("hypervisor 'xen.gz'" in w for w in menu.warnings)


@pytest.mark.parametrize(
    "line, error",
    [
        ("KERNEL chain.c32", Unsupported),
        ("COM32 hdt", Unsupported),
        ("LOCALBOOT 0", Unsupported),
        ("KERNEL memdisk.img", Unsupported),
        ("KERNEL /missing", NotFound),
    ],
)
def test_entries_we_do_not_boot(tmp_path, line, error):
    menu = _menu(tmp_path, {"/boot/extlinux/extlinux.conf": f"DEFAULT x\nLABEL x\n {line}\n"})
    with pytest.raises(error):
        _default(menu)[1]


def test_text_help_is_not_read_as_directives(tmp_path):
    menu = _menu(tmp_path, {**KERNELS, "/boot/extlinux/extlinux.conf": (
        "LABEL a\n KERNEL /boot/vmlinuz-a\n TEXT HELP\n LABEL fake\n KERNEL /x\n ENDTEXT\n APPEND after=help\n")})
    assert [e.title for e in menu.entries] == ["a"] and menu.entries[0].run().args == "after=help"


def test_long_lines_and_control_bytes_are_bounded(tmp_path):
    # fgets(4096): a longer line goes on as the next line; the command line limit is 2048.
    long = "x" * 5000
    menu = _menu(tmp_path, {**KERNELS, "/boot/extlinux/extlinux.conf": (
        f"DEFAULT a\nLABEL a\n KERNEL /boot/vmlinuz-a\n APPEND {long}\n")})
    with pytest.raises(ConfigError, match="2048"):
        _default(menu)
    menu = _menu(tmp_path, {**KERNELS, "/boot/extlinux/extlinux.conf": "DEFAULT /boot/vmlinuz-a \x1b[2J\r junk\n"})
    assert "\x1b" not in menu.entries[-1].title


def test_many_includes_are_bounded(tmp_path):
    files = {"/boot/extlinux/extlinux.conf": "INCLUDE a.cfg\n" * (LIMITS.max_config_files + 1), "/boot/extlinux/a.cfg": ""}
    with pytest.raises(LimitExceeded, match="config files"):
        _menu(tmp_path, files)


# --- the corpus, as golden files --------------------------------------------------------------
def _uroot(name: str) -> tuple[Path, str]:
    return CORPUS / "uroot" / "syslinux" / "testdata" / name, "/isolinux/isolinux.cfg"


CASES = {
    "uroot-debian_9_install": (_uroot("debian_9_install"), None),
    "uroot-debian_10_install": (_uroot("debian_10_install"), None),
    "uroot-fedora_27_install": (_uroot("fedora_27_install"), None),
    "uroot-qubes_3_2_install": (_uroot("qubes_3_2_install"), None),
    "pygrub-alpine-linux-2.3.2": ((CORPUS / "pygrub", "/alpine-linux-2.3.2.extlinux"), None),
}
for _case in ("explicit", "global-append", "nested-config", "single-yocto"):
    _data = json.loads((CORPUS / "petitboot" / f"test-syslinux-{_case}" / "expected.json").read_text())
    CASES[f"petitboot-syslinux-{_case}"] = (
        (CORPUS / "petitboot" / f"test-syslinux-{_case}" / "__test0", _data["config_file"]["path"]),
        _data,
    )

# Where the peer's answer is not SYSLINUX's, and why (written into the golden file).
PEER_NOTES = {
    "petitboot-syslinux-global-append": "petitboot puts the global APPEND before a label's own; SYSLINUX's record() "
    "uses the label's APPEND instead of the global one. petitboot drops initrd= from the args; SYSLINUX's kernel gets it.",
    "petitboot-syslinux-nested-config": "as global-append: a label's APPEND replaces the global one in SYSLINUX; "
    "FDIMAGE/COMBOOT/COM32/BSS labels are entries SYSLINUX shows (we refuse to boot them).",
    "petitboot-syslinux-explicit": "petitboot shows only 'backup'; SYSLINUX's DEFAULT 'boot' is no label and IMPLICIT 0 "
    "forbids booting it, so SYSLINUX waits at its prompt: we boot the first label and say so.",
    "pygrub-alpine-linux-2.3.2": "pygrub: entry 0 (DEFAULT menu.c32 is no label), args without initrd=; SYSLINUX runs "
    "menu.c32 whose MENU DEFAULT is the same label, and its kernel gets initrd= in the command line.",
    "uroot-debian_10_install": "u-root flattens submenus and keeps MENU LABEL's ^ hotkey marks; menu.c32 shows neither.",
}


def _tree(case: str, tmp_path: Path) -> tuple[Path, str]:
    (top, config), data = CASES[case]
    work = tmp_path / "tree"
    shutil.copytree(top, work)
    if data:  # petitboot's trees hold no kernels: add the files its expectations name
        for option in data["expect"]["options"]:
            for key in ("boot_image", "initrd"):
                res = option.get(key)
                if res and res.get("resolved"):
                    target = work / res["path"].lstrip("/")
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.touch()
    return work, config


def _entries(menu: Menu) -> list[dict]:
    rows = []
    for entry in menu.entries:
        row: dict = {"title": entry.title, "label": entry.id, "classes": list(entry.classes)}
        if entry.submenu is not None:
            row["entries"] = _entries(entry.submenu)
        else:
            try:
                spec = entry.run()
            except GuestbootError as err:
                row["error"] = f"{type(err).__name__}: {err}"
            else:
                row.update(kernel=str(spec.kernel), initrds=[str(i) for i in spec.initrds], args=spec.args,
                           cmdline=spec.cmdline)
        rows.append(row)
    return rows


@pytest.mark.parametrize("case", sorted(CASES))
def test_corpus_golden(case, tmp_path):
    top, config = _tree(case, tmp_path)
    devices = device_map(**{"hd0": DirFileSystem(top)})
    check = CASES[case][1] is not None  # u-root's trees hold configs only
    menu = parse_config(devices, "hd0", config, check_files=check)
    choice = choose(menu)
    got = {
        "config": config,
        "default": menu.default,
        "timeout": menu.timeout,
        "chosen": list(choice.path),
        "chosen_titles": list(choice.names),
        "entries": _entries(menu),
        "warnings": menu.warnings,
    }
    if case in PEER_NOTES:
        got["peer"] = PEER_NOTES[case]
    golden = GOLDEN / f"{case}.json"
    if os.environ.get("GUESTBOOT_UPDATE_GOLDEN"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(json.dumps(got, indent=1, ensure_ascii=False) + "\n")
    assert got == json.loads(golden.read_text())


# --- hostile configs ----------------------------------------------------------------------------
def test_deep_menu_begin_is_bounded(tmp_path):
    with pytest.raises(LimitExceeded, match="MENU BEGIN"):
        _menu(tmp_path, {"/boot/extlinux/extlinux.conf": "MENU BEGIN x\n" * (LIMITS.max_submenu_depth + 1)})


def test_many_labels_are_bounded(tmp_path):
    text = "LABEL x\n" * (LIMITS.max_menu_entries + 1)
    with pytest.raises(LimitExceeded, match="labels"):
        _menu(tmp_path, {"/boot/extlinux/extlinux.conf": text})


def test_config_loop_is_bounded(tmp_path):
    menu = _menu(tmp_path, {"/boot/extlinux/extlinux.conf": "DEFAULT again\nLABEL again\n CONFIG extlinux.conf\n"})
    with pytest.raises(LimitExceeded, match="CONFIG nested"):
        _default(menu)


def test_random_configs_fail_only_with_typed_errors(tmp_path):
    """Keyword soup and random bytes: a Menu or a GuestbootError, never anything else."""
    import random

    from guestboot.errors import GuestbootError

    words = ["LABEL", "KERNEL", "LINUX", "APPEND", "APPEND -", "INITRD", "DEFAULT", "UI", "MENU", "MENU BEGIN",
             "MENU END", "MENU DEFAULT", "MENU HIDE", "MENU LABEL", "MENU INCLUDE", "INCLUDE", "CONFIG", "ONTIMEOUT",
             "TIMEOUT", "PROMPT", "IMPLICIT", "TEXT HELP", "ENDTEXT", "IPAPPEND", "COM32", "LOCALBOOT", "menu.c32",
             "mboot.c32", "---", "initrd=", ",", "a.cfg", "/boot/vmlinuz-a", "../initrd-a", "\x00", "\xff", "\r"]
    rng = random.Random(88)
    (tmp_path / "boot/extlinux").mkdir(parents=True)
    for name in ("/boot/vmlinuz-a", "/boot/initrd-a"):
        (tmp_path / name.lstrip("/")).write_text("")
    devices = device_map(**{"hd0": DirFileSystem(tmp_path)})
    for round_ in range(300):
        lines = [" ".join(rng.choice(words) for _ in range(rng.randrange(1, 5))) for _ in range(rng.randrange(1, 30))]
        data = "\n".join(lines).encode("utf-8", "surrogateescape")
        if round_ % 5 == 0:
            data = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 400)))
        (tmp_path / "boot/extlinux/extlinux.conf").write_bytes(data)
        (tmp_path / "boot/extlinux/a.cfg").write_bytes(data[: len(data) // 2])
        try:
            menu = parse_config(devices, "hd0", "/boot/extlinux/extlinux.conf")
            choose(menu).entry.run()
        except GuestbootError:
            pass


def test_damaged_adv_is_ignored(tmp_path):
    """Corruption cases for the ADV (real ones are made by extlinux in
    test_syslinux_images.py): bad checksums, an overrunning record."""
    import struct

    from guestboot.boot import syslinux_adv as adv

    def copy(records: bytes, good: bool = True) -> bytes:
        data = records.ljust(500, b"\0")
        words = struct.unpack("<125I", data)
        checksum = (adv.ADV_MAGIC2 - sum(words)) & 0xFFFFFFFF
        return struct.pack("<II", adv.ADV_MAGIC1, checksum if good else checksum ^ 1) + data + struct.pack(
            "<I", adv.ADV_MAGIC3)

    once = bytes([adv.ADV_BOOTONCE, 1]) + b"b"
    assert adv.parse(copy(once) * 2) == {adv.ADV_BOOTONCE: b"b"}
    assert adv.parse(copy(once, good=False) + copy(b"")) == {}  # the second copy is valid and empty
    assert adv.parse(copy(once, good=False) * 2) == {}
    overrun = (bytes([9, 248]) + b"x" * 248 + bytes([adv.ADV_BOOTONCE, 255]) + b"y" * 250)[:500]  # runs past the end
    assert adv.ADV_BOOTONCE not in adv.parse(copy(overrun) * 2)
    assert adv.parse(b"\xff" * 1024) == {} and adv.parse(b"") == {}
    # the ADV in ldlinux.sys beside the config decides, DEFAULT aside
    files = {**KERNELS, "/boot/extlinux/extlinux.conf": "DEFAULT a\nLABEL a\n KERNEL /boot/vmlinuz-a\nLABEL b\n"
             " KERNEL /boot/vmlinuz-b\n"}
    target = tmp_path / "boot/extlinux/ldlinux.sys"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"\x90" * 4096 + copy(once) * 2)
    assert _default(_menu(tmp_path, files))[0] == ("b",)
    target.write_bytes(b"\x90" * 4096 + copy(once, good=False) * 2)
    assert _default(_menu(tmp_path, files))[0] == ("a",)
