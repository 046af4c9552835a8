"""GRUB legacy menu.lst / grub.conf on real distribution configs (tests/data/corpus).

Each tree is the corpus config plus the files it names (empty placeholders, as in
u-root's test data), so the expected kernel/initrd are the files the tree holds. The
peer is Xen's own GrubConf.py (package xen-utils-<version>), run in a subprocess.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from prereq import real_pygrub_libdir

from dirfs import DirFileSystem, device_map
from guestboot.boot import legacy
from guestboot.boot.model import FileRef
from guestboot.errors import ConfigError, LimitExceeded, NotFound, Unsupported
from guestboot.limits import LIMITS
from guestboot.boot.legacy import legacy_fallbacks, legacy_number
from guestboot.select import boot, choose

CORPUS = Path(__file__).parent / "data" / "corpus"
RHEL = CORPUS / "uroot/grub/testdata_new/rhel_7_8_another"
EQ_STYLE = Path(__file__).parent / "data" / "own" / "legacy-eq"  # our own text

RHEL_KERNEL = "/boot/vmlinuz-3.10.0-1127.el7.x86_64"
RHEL_INITRD = "/boot/initramfs-3.10.0-1127.el7.x86_64.img"
RHEL_ARGS = "ro root=UUID=71360dfb-1e6e-40dc-abec-3538d5fffa39 console=hvc0 LANG=en_US.UTF-8"
EQ_KERNEL = "/boot/vmlinuz-2.6.14-ex-i686"
EQ_INITRD = "/boot/initrd-2.6.14-ex-i686.img"


def _tree(base: Path, source: Path, files: list[str]) -> Path:
    shutil.copytree(source, base)
    for name in files:
        target = base / name.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(b"")
    return base


@pytest.fixture(scope="session")
def rhel_tree(tmp_path_factory) -> Path:
    return _tree(tmp_path_factory.mktemp("legacy") / "rhel", RHEL, [RHEL_KERNEL, RHEL_INITRD])


@pytest.fixture(scope="session")
def eq_style_tree(tmp_path_factory) -> Path:
    return _tree(tmp_path_factory.mktemp("legacy") / "eq", EQ_STYLE, [EQ_KERNEL, EQ_INITRD])


def _write(tmp_path: Path, config: str, files=(), name="boot/grub/menu.lst") -> Path:
    (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / name).write_text(config)
    for f in files:
        (tmp_path / f.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / f.lstrip("/")).write_bytes(b"")
    return tmp_path


# --- real configs ------------------------------------------------------------------------


def test_rhel_grub_conf(rhel_tree):
    devices = device_map(hd0=DirFileSystem(rhel_tree))
    menu = legacy.parse(devices, "hd0", "/boot/grub/grub.conf")
    assert menu.format == "grub-legacy"
    assert menu.origin == "hd0:/boot/grub/grub.conf"
    assert [e.title for e in menu.entries] == ["Red Hat Enterprise Linux 7 (3.10.0-1127.el7.x86_64)"]
    assert (menu.default, menu.timeout, menu.fallback) == ("0", "0", None)
    choice, spec = boot(menu)
    assert choice.path == (0,)
    assert spec.kernel == FileRef("hd0", RHEL_KERNEL, RHEL_KERNEL)
    assert spec.initrds == (FileRef("hd0", RHEL_INITRD, RHEL_INITRD),)
    assert spec.args == spec.cmdline == RHEL_ARGS
    assert spec.loader == "kernel"
    assert menu.warnings == []


def test_key_equals_value_menu_lst(eq_style_tree):
    """'default=0' and 'kernel=' (= as separator), tab-indented bodies, and gfxmenu (a
    distribution patch GRUB 0.97 lacks) skipped without stopping the menu."""
    devices = device_map(hd0=DirFileSystem(eq_style_tree))
    menu = legacy.parse(devices, "hd0", "/boot/grub/menu.lst")
    assert [e.title for e in menu.entries] == [
        "Example Linux 2.6.14 (i686)",
        "Example Linux 2.6.14 (i686, no framebuffer)",
    ]
    assert (menu.default, menu.timeout) == ("0", "10")
    choice, spec = boot(menu, "1")
    assert choice.names == ("Example Linux 2.6.14 (i686, no framebuffer)",)
    assert spec.kernel.path == EQ_KERNEL and spec.initrds[0].path == EQ_INITRD
    assert spec.args == "root=/dev/hda1 ro  quiet vga=normal"  # GRUB legacy passes it verbatim


def _pygrub_grubconf() -> Path:
    return real_pygrub_libdir()


_PEER = """
import json, sys
sys.path.insert(0, sys.argv[1])
from grub.GrubConf import GrubConfigFile
cf = GrubConfigFile()
cf.parse(open(sys.argv[2]).read())
print(json.dumps({"default": cf.default, "images": [
    {"title": i.title, "kernel": i.kernel[1], "args": i.args, "initrd": i.initrd[1] if i.initrd else None}
    for i in cf.images]}))
"""


@pytest.mark.parametrize(
    "tree, config",
    [("rhel_tree", "boot/grub/grub.conf"), ("eq_style_tree", "boot/grub/menu.lst")],
)
def test_same_as_pygrub(request, tree, config):
    """Differential against Xen's GrubConf.py: titles, default, kernel, initrd, args."""
    root = request.getfixturevalue(tree)
    out = subprocess.run(
        [sys.executable, "-c", _PEER, str(_pygrub_grubconf()), str(root / config)],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    peer = json.loads(out.stdout)
    menu = legacy.parse(device_map(hd0=DirFileSystem(root)), "hd0", "/" + config)
    assert [e.title for e in menu.entries] == [i["title"] for i in peer["images"]]
    assert choose(menu).path == (peer["default"],)
    for index, image in enumerate(peer["images"]):
        _choice, spec = boot(menu, str(index))
        assert spec.kernel.path == image["kernel"]
        assert spec.args == image["args"]
        assert [r.path for r in spec.initrds] == ([image["initrd"]] if image["initrd"] else [])


# --- default saved ------------------------------------------------------------------------

SAVED_CONFIG = """default saved
timeout 5
title first
    kernel /vmlinuz-1 ro
title second
    kernel /vmlinuz-2 ro single
    savedefault
"""

# What GRUB legacy's grub-set-default writes: the number, then comment lines that keep
# the file's size (the layout of util/grub-set-default.in in GRUB 0.97).
DEFAULT_FILE = "1\n#\n#\n#\n#\n#\n#\n#\n#\n#\n#\n# WARNING: If you want to edit this file directly, do not remove any line\n"


@pytest.mark.parametrize(
    "default_file, expected, warned",
    [(DEFAULT_FILE, 1, False), ("0x1\n", 1, False), ("junk\n", 0, True), (None, 0, True), ("7\n", 0, False)],
)
def test_default_saved(tmp_path, default_file, expected, warned):
    _write(tmp_path, SAVED_CONFIG, ["/vmlinuz-1", "/vmlinuz-2"])
    if default_file is not None:
        (tmp_path / "boot/grub/default").write_text(default_file)
    menu = legacy.parse(device_map(hd0=DirFileSystem(tmp_path)), "hd0", "/boot/grub/menu.lst")
    assert menu.default == "saved"
    assert choose(menu).path == (expected,)
    assert any("default saved" in w for w in menu.warnings) == warned


def test_default_saved_reads_the_config_directory(tmp_path):
    """The default file is the one next to the config (here /grub/ on a /boot partition)."""
    _write(tmp_path, SAVED_CONFIG, ["/vmlinuz-1", "/vmlinuz-2"], name="grub/menu.lst")
    (tmp_path / "grub/default").write_text(DEFAULT_FILE)
    (tmp_path / "boot/grub").mkdir(parents=True)
    (tmp_path / "boot/grub/default").write_text("0\n")
    menu = legacy.parse(device_map(hd0=DirFileSystem(tmp_path)), "hd0", "/grub/menu.lst")
    assert menu.saved == "1" and choose(menu).path == (1,)


def test_default_saved_on_real_rhel_config(rhel_tree, tmp_path):
    """The RHEL config with its default line turned into 'default saved' (what
    grub-set-default setups use), a second entry appended, and a default file."""
    root = tmp_path / "t"
    shutil.copytree(rhel_tree, root)
    conf = root / "boot/grub/grub.conf"
    text = conf.read_text().replace("default=0", "default=saved")
    conf.write_text(text + "title rescue\n\troot (hd0)\n\tkernel /boot/vmlinuz-rescue ro\n")
    (root / "boot/vmlinuz-rescue").write_bytes(b"")
    (root / "boot/grub/default").write_text(DEFAULT_FILE)
    menu = legacy.parse(device_map(hd0=DirFileSystem(root)), "hd0", "/boot/grub/grub.conf")
    choice, spec = boot(menu)
    assert choice.names == ("rescue",) and spec.kernel.path == "/boot/vmlinuz-rescue"


# --- GRUB legacy's reading rules --------------------------------------------------------


def test_line_rules(tmp_path):
    config = (
        "# comment\r\n"
        "   timeout=3\n"
        "fallback 1\n"
        "color light-gray/blue\n"
        "frobnicate now\n"
        "root (hd0,0)\n"  # before any title: not a menu command, ignored
        "title  empty one  \n"
        "title\tspaced   \n"
        "\tkernel=/vmlinuz  ro \\\n"
        "  quiet\n"
        "\tbogus line\n"
        "title only-unknown\n"
        "\tnotacommand x\n"
    )
    _write(tmp_path, config, ["/vmlinuz"])
    menu = legacy.parse(device_map(hd0=DirFileSystem(tmp_path)), "hd0", "/boot/grub/menu.lst")
    # "empty one" and "only-unknown" have no command GRUB knows: dropped
    assert [e.title for e in menu.entries] == ["spaced"]
    assert menu.timeout == "3" and menu.fallback == "1"
    _choice, spec = boot(menu)
    assert spec.args == "ro    quiet"  # verbatim: blanks kept, the backslash-newline is one space
    assert any("'frobnicate'" in w for w in menu.warnings)
    assert any("'bogus'" in w for w in menu.warnings)
    assert any("'empty one'" in w for w in menu.warnings)
    assert any("line 6: root before the first title" in w for w in menu.warnings)


def test_kernel_options_and_types(tmp_path):
    config = (
        "title linux\n kernel --type=linux --no-mem-option /vmlinuz root=/dev/xvda1\n"
        "title netbsd\n kernel --type=netbsd /netbsd\n"
        "title xen\n kernel /xen.gz dom0_mem=512M\n module /vmlinuz ro\n module /initrd.img\n"
        "title windows\n rootnoverify (hd0,1)\n chainloader +1\n"
        "title blocklist\n kernel (hd0,0)+1\n"
    )
    _write(tmp_path, config, ["/vmlinuz", "/netbsd", "/xen.gz", "/initrd.img"])
    devices = device_map(**{"hd0,msdos1": DirFileSystem(tmp_path), "hd0,msdos2": DirFileSystem(tmp_path)})
    menu = legacy.parse(devices, "hd0,msdos1", "/boot/grub/menu.lst")
    _c, spec = boot(menu, "linux")
    assert spec.kernel == FileRef("hd0,msdos1", "/vmlinuz", "/vmlinuz") and spec.args == "root=/dev/xvda1"
    for title in ("netbsd", "xen", "windows", "blocklist"):
        with pytest.raises(Unsupported):
            choose(menu, title).entry.run()


def test_root_devices(tmp_path):
    """(hd0,0) is the first partition; a device not on the image reads the config's
    device (pygrub's behaviour), with a warning."""
    boot_part, root_part = tmp_path / "boot", tmp_path / "root"
    _write(
        boot_part,
        "title a\n root (hd0,0)\n kernel /vmlinuz-a\n"
        "title b\n root (hd0,1)\n kernel /vmlinuz-b\n initrd (hd0,0)/initrd-b\n"
        "title c\n root (hd0,4)\n kernel /vmlinuz-a\n"
        "title d\n kernel (hd1)/vmlinuz-a\n"
        "title e\n root (hd0,0,a)\n kernel /vmlinuz-a\n",
        ["/vmlinuz-a", "/initrd-b"],
        name="grub/menu.lst",
    )
    (root_part / "vmlinuz-b").parent.mkdir(parents=True)
    (root_part / "vmlinuz-b").write_bytes(b"")
    devices = device_map(
        **{"hd0": None, "hd0,msdos1": DirFileSystem(boot_part), "hd0,msdos2": DirFileSystem(root_part)}
    )
    menu = legacy.parse(devices, "hd0,msdos1", "/grub/menu.lst")
    assert boot(menu, "a")[1].kernel.device == "hd0,msdos1"
    spec = boot(menu, "b")[1]
    assert spec.kernel.device == "hd0,msdos2"
    assert spec.initrds == (FileRef("hd0,msdos1", "/initrd-b", "(hd0,0)/initrd-b"),)
    assert not menu.warnings
    assert boot(menu, "c")[1].kernel.device == "hd0,msdos1"
    assert any("(hd0,4) is not on this image" in w for w in menu.warnings)
    assert boot(menu, "d")[1].kernel.device == "hd0,msdos1"
    with pytest.raises(Unsupported, match="BSD"):
        choose(menu, "e").entry.run()


def test_missing_kernel_falls_back(tmp_path):
    _write(
        tmp_path,
        "default 0\nfallback 2 1\n"
        "title gone\n kernel /vmlinuz-gone\n"
        "title ok\n kernel /vmlinuz-ok\n"
        "title no-initrd\n kernel /vmlinuz-ok\n initrd /initrd-gone\n",
        ["/vmlinuz-ok"],
    )
    menu = legacy.parse(device_map(hd0=DirFileSystem(tmp_path)), "hd0", "/boot/grub/menu.lst")
    choice, spec = boot(menu)
    assert choice.names == ("ok",) and spec.kernel.path == "/vmlinuz-ok"
    assert len(choice.notes) == 2 and "gone" in choice.notes[0] and "initrd-gone" in choice.notes[1]


def test_all_fail_raises_first_error(tmp_path):
    _write(tmp_path, "fallback 1\ntitle a\n kernel /nope-a\ntitle b\n kernel /nope-b\n")
    menu = legacy.parse(device_map(hd0=DirFileSystem(tmp_path)), "hd0", "/boot/grub/menu.lst")
    with pytest.raises(NotFound, match="nope-a"):
        boot(menu)


def test_default_past_the_end_uses_first_fallback(tmp_path):
    """stage2.c: default >= number of entries -> fallback[0]; fallbacks past the end dropped."""
    _write(
        tmp_path,
        "default 5\nfallback 9 2 1\ntitle a\n kernel /k\ntitle b\n kernel /k\ntitle c\n kernel /k\n",
        ["/k"],
    )
    menu = legacy.parse(device_map(hd0=DirFileSystem(tmp_path)), "hd0", "/boot/grub/menu.lst")
    assert choose(menu).path == (2,)
    (tmp_path / "boot/grub/menu.lst").write_text("default 5\ntitle a\n kernel /k\ntitle b\n kernel /k\n")
    menu = legacy.parse(device_map(hd0=DirFileSystem(tmp_path)), "hd0", "/boot/grub/menu.lst")
    assert choose(menu).path == (0,)


def test_bad_default_keeps_previous(tmp_path):
    _write(tmp_path, "default 1\ndefault x\ntitle a\n kernel /k\ntitle b\n kernel /k\n", ["/k"])
    menu = legacy.parse(device_map(hd0=DirFileSystem(tmp_path)), "hd0", "/boot/grub/menu.lst")
    assert menu.default == "1" and any("default 'x'" in w for w in menu.warnings)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("1 2", [1, 2]),
        ("1\t 0x2", [1, 2]),
        ("1,2", [1]),
        ("1 1", [1]),
        ("1 1 2", None),
        ("x", None),
        ("", []),
        ("0 1 2 3 4 5 6 7 8 9", [0, 1, 2, 3, 4, 5, 6, 7]),
        ("99999999999", None),
    ],
)
def test_legacy_fallback_syntax(text, expected):
    assert legacy_fallbacks(text) == expected


@pytest.mark.parametrize(
    "text, expected", [("12", 12), ("0x1f", 31), ("0X1F", 31), ("3abc", 3), (" 3", None), ("-1", None)]
)
def test_legacy_number(text, expected):
    parsed = legacy_number(text)
    assert (parsed[0] if parsed else None) == expected


# --- hostile input ------------------------------------------------------------------------


def test_too_many_entries(tmp_path, monkeypatch):
    monkeypatch.setattr(legacy, "LIMITS", LIMITS._replace(max_menu_entries=3))
    _write(tmp_path, "title x\n kernel /k\n" * 4)
    with pytest.raises(LimitExceeded, match="menu entries"):
        legacy.parse(device_map(hd0=DirFileSystem(tmp_path)), "hd0", "/boot/grub/menu.lst")


def test_config_too_large(tmp_path, monkeypatch):
    monkeypatch.setattr(legacy, "LIMITS", LIMITS._replace(max_config_bytes=100))
    _write(tmp_path, "title x\n kernel /k\n" * 20)
    with pytest.raises(LimitExceeded):
        legacy.parse(device_map(hd0=DirFileSystem(tmp_path)), "hd0", "/boot/grub/menu.lst")


@pytest.mark.parametrize(
    "body, error",
    [
        (" root hd0\n kernel /k\n", ConfigError),
        (" root (\x00)\n kernel /k\n", ConfigError),
        (" kernel (hd0/k\n", ConfigError),
        (" kernel\n", ConfigError),
        (" kernel --bogus /k\n", ConfigError),
        (" kernel /k/..\n", NotFound),
        (" kernel vmlinuz\n", Unsupported),
    ],
)
def test_bad_entries(tmp_path, body, error):
    _write(tmp_path, "title x\n" + body, ["/k"])
    menu = legacy.parse(device_map(hd0=DirFileSystem(tmp_path)), "hd0", "/boot/grub/menu.lst")
    with pytest.raises(error):
        menu.entries[0].run()


def test_binary_garbage_is_not_a_crash(tmp_path):
    (tmp_path / "boot/grub").mkdir(parents=True)
    (tmp_path / "boot/grub/menu.lst").write_bytes(
        bytes(range(256)) * 8 + b"\ntitle \xff\xfe\n kernel /\xff\n"
    )
    menu = legacy.parse(device_map(hd0=DirFileSystem(tmp_path)), "hd0", "/boot/grub/menu.lst")
    assert len(menu.entries) == 1
    with pytest.raises(NotFound):
        boot(menu)
