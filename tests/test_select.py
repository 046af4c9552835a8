"""Which entry boots: GRUB 2.06's rules (grub-core/normal/menu.c) on hand-built menus,
then on real configs evaluated by the GRUB 2 interpreter, with grubenv files written by
the real grub-editenv (package grub-common), and a differential against pygrub's output
(tests/data/corpus/pygrub/pygrub-parse.txt)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from dirfs import DirFileSystem, device_map
from guestboot import select
from guestboot.boot.grub2.default import GrubDefault
from guestboot.boot.model import BootSpec, FileRef, Menu, MenuEntry
from guestboot.errors import ConfigError, CorruptImage, LimitExceeded, NotFound
from guestboot.limits import LIMITS
from guestboot.select import (
    boot,
    choose,
    entry_number,
    fallback_numbers,
    grub_strtoul,
    menuentry_eq,
    rest_of_path,
    rows,
)

CORPUS = Path(__file__).parent / "data" / "corpus"


# --- hand-built menus ---------------------------------------------------------------------


def leaf(title: str, id: str | None = None, fails: Exception | None = None) -> MenuEntry:
    def run() -> BootSpec:
        if fails is not None:
            raise fails
        return BootSpec(kernel=FileRef("hd0", f"/{title}"))

    return MenuEntry(title, id=id, run=run)


def submenu(
    title: str, id: str | None, entries: list[MenuEntry], default: str | None = None, fallback=None
) -> MenuEntry:
    """A submenu; a ``default`` given here is one its body set (GrubDefault.own)."""
    rule = GrubDefault(own=default is not None)
    return MenuEntry(title, id=id, submenu=Menu(entries, default=default, fallback=fallback, format="grub2", rule=rule))


def debian_like(default: str | None = None, fallback: str | None = None) -> Menu:
    """The shape grub-mkconfig writes on Debian: a simple entry, then 'Advanced options'."""
    return Menu(
        [
            leaf("Debian GNU/Linux", "gnulinux-simple-UUID"),
            submenu(
                "Advanced options for Debian GNU/Linux",
                "gnulinux-advanced-UUID",
                [
                    leaf(
                        "Debian GNU/Linux, with Linux 6.1.0-18-amd64", "gnulinux-6.1.0-18-amd64-advanced-UUID"
                    ),
                    leaf(
                        "Debian GNU/Linux, with Linux 6.1.0-18-amd64 (recovery mode)",
                        "gnulinux-6.1.0-18-amd64-recovery-UUID",
                    ),
                    leaf(
                        "Debian GNU/Linux, with Linux 6.1.0-17-amd64", "gnulinux-6.1.0-17-amd64-advanced-UUID"
                    ),
                ],
            ),
            leaf("Memory test (memtest86+x64.efi)", "memtest86+x64"),
            leaf("a>b title", "gt"),
        ],
        default=default,
        fallback=fallback,
        format="grub2", rule=GrubDefault(),
    )


@pytest.mark.parametrize(
    "default, path",
    [
        (None, (0,)),  # unset
        ("", (0,)),  # empty
        ("0", (0,)),
        ("2", (2,)),
        ("1", (1, 0)),  # a submenu: its own default (unset -> 0)
        ("1>1", (1, 1)),
        ("1>2", (1, 2)),
        ("1>", (1, 0)),  # nothing after '>': the submenu's default
        ("0x2", (2,)),  # strtoul base 0: hex
        ("02", (2,)),  # octal
        ("010", (0,)),  # octal 8: out of range -> 0
        ("08", (0,)),  # '8' is no octal digit, so decimal 8: out of range -> 0
        (" 2", (2,)),  # leading blanks skipped
        ("2 junk", (2,)),  # the rest after the number is ignored
        ("9", (0,)),  # out of range
        ("4294967298", (0,)),  # past unsigned long on i386-pc: overflow -> 0
        ("2147483649", (0,)),  # a negative int
        ("-1", (0,)),  # no sign: a title, which matches nothing
        ("gnulinux-simple-UUID", (0,)),
        ("memtest86+x64", (2,)),
        ("Memory test (memtest86+x64.efi)", (2,)),
        ("gnulinux-advanced-UUID>gnulinux-6.1.0-18-amd64-advanced-UUID", (1, 0)),
        ("gnulinux-advanced-UUID>gnulinux-6.1.0-17-amd64-advanced-UUID", (1, 2)),
        (
            "Advanced options for Debian GNU/Linux>Debian GNU/Linux, with Linux 6.1.0-18-amd64 (recovery mode)",
            (1, 1),
        ),
        ("gnulinux-advanced-UUID>1", (1, 1)),  # mixed: id then number
        ("gnulinux-advanced-UUID>nothing", (1, 0)),  # no match inside: that submenu's entry 0
        ("a>>b title", (3,)),  # '>>' is a literal '>'
        ("a>b title", (0,)),  # 'a' matches no entry
        ("no such entry", (0,)),
        ("Debian GNU/Linux>", (0,)),  # '>' ends the component
    ],
)
def test_default_resolution(default, path):
    menu = debian_like(default)
    assert choose(menu).path == path
    choice, spec = boot(menu)
    assert choice.path == path and spec.kernel.path == "/" + choice.entry.title


@pytest.mark.parametrize(
    "default, index", [("010", 8), ("08", 8), ("0x9", 9), ("011", 9), ("0x", 0), ("9x", 9), ("x9", 0)]
)
def test_number_bases(default, index):
    menu = Menu([leaf(f"e{i}") for i in range(10)], default=default, format="grub2", rule=GrubDefault())
    assert choose(menu).path == (index,)


def test_title_and_id_in_menu_order():
    """GRUB takes the first entry whose title OR id matches; not 'ids first'."""
    menu = Menu([leaf("x", "first"), leaf("first", "y")], default="first", format="grub2", rule=GrubDefault())
    assert choose(menu).path == (0,)
    menu = Menu([leaf("first", "y"), leaf("x", "first")], default="first", format="grub2", rule=GrubDefault())
    assert choose(menu).path == (0,)


def test_number_wins_over_title():
    """A default that starts with digits is a number even when a title spells it."""
    menu = Menu([leaf("a"), leaf("b"), leaf("1 kernel")], default="1 kernel", format="grub2", rule=GrubDefault())
    assert choose(menu).path == (1,)


def test_entry_without_id_matches_its_title():
    menu = Menu([leaf("a"), leaf("b")], default="b", format="grub2", rule=GrubDefault())
    assert choose(menu).names == ("b",)


def test_submenu_own_default_when_path_ends_there():
    menu = Menu(
        [leaf("a"), submenu("s", "s", [leaf("x"), leaf("y")], default="y")], default="s", format="grub2", rule=GrubDefault()
    )
    assert choose(menu).names == ("s", "y")
    # GRUB sets the submenu's default to the rest of the path, then runs the body, whose
    # own 'set default' wins; an explicit --entry path is what the user asked for
    menu.default = "s>x"
    assert choose(menu).names == ("s", "y")
    assert choose(menu, "s>x").names == ("s", "x")


def test_submenu_default_is_its_own_only_when_its_body_set_it():
    """GrubDefault.own, recorded by the evaluator: a submenu whose body set ``default``
    boots that, even when it equals what the submenu was entered with; one whose body
    left it alone boots the rest of the parent's path (entry 0 when there is none)."""
    body_set = submenu("s", "s", [leaf("x"), leaf("y")], default="1")
    menu = Menu([leaf("a"), body_set], default="1", format="grub2", rule=GrubDefault())
    assert choose(menu).names == ("s", "y")
    left_alone = Menu([leaf("x"), leaf("y")], default="1", format="grub2", rule=GrubDefault(own=False))
    menu = Menu([leaf("a"), MenuEntry("s", submenu=left_alone)], default="1", format="grub2", rule=GrubDefault())
    assert choose(menu).names == ("s", "x")
    menu.default = "1>1"
    assert choose(menu).names == ("s", "y")


def test_nested_submenus():
    inner = submenu("inner", "in", [leaf("p"), leaf("q")])
    menu = Menu([submenu("outer", "out", [leaf("z"), inner])], default="out>in>q", format="grub2", rule=GrubDefault())
    assert choose(menu).path == (0, 1, 1)
    assert choose(menu, "0>1").path == (0, 1, 0)


def test_empty_submenu_is_a_failure_then_fallback():
    menu = Menu([submenu("empty", "e", []), leaf("ok")], default="0", fallback="1", format="grub2", rule=GrubDefault())
    with pytest.raises(NotFound, match="no entries"):
        choose(menu)
    choice, _spec = boot(menu)
    assert choice.names == ("ok",) and "empty" in choice.notes[0]


# --- explicit choices (--entry) -----------------------------------------------------------


@pytest.mark.parametrize(
    "spec, path",
    [
        ("2", (2,)),
        ("1>2", (1, 2)),
        ("gnulinux-advanced-UUID>gnulinux-6.1.0-17-amd64-advanced-UUID", (1, 2)),
        ("Memory test (memtest86+x64.efi)", (2,)),
        ("a>>b title", (3,)),
        ("1", (1, 0)),
    ],
)
def test_explicit_entry(spec, path):
    assert choose(debian_like("0"), spec).path == path


@pytest.mark.parametrize("spec", ["9", "nope", "", "-1", "1>7", "gnulinux-advanced-UUID>nope", "4294967298"])
def test_explicit_entry_must_match(spec):
    with pytest.raises(NotFound) as err:
        choose(debian_like("0"), spec)
    message = str(err.value)
    assert "no menu entry matches" in message and "Debian GNU/Linux" in message


@pytest.mark.parametrize(
    "spec, unused",
    [
        ("1>1>1", "'1' after it is left unused"),  # 1>1 is already a bootable entry
        ("0>0", "'0' after it is left unused"),
        ("1>", "nothing follows the last '>'"),
        ("1>2>", "nothing follows the last '>'"),
        ("2 foo", "' foo' follows the entry number '2'"),
        ("1>1x", "'x' follows the entry number '1'"),
    ],
)
def test_explicit_entry_is_used_up(spec, unused):
    """The config's own default is read leniently, as GRUB does; a path the user typed
    must be used entirely (boot as well as choose)."""
    for run in (choose, boot):
        with pytest.raises(NotFound, match=re.escape(unused)):
            run(debian_like("0"), spec)


def test_default_keeps_grubs_leniency():
    for default, path in [("1>1>1", (1, 1)), ("1>", (1, 0)), ("2 foo", (2,)), ("0>0", (0,))]:
        assert choose(debian_like(default)).path == path


def test_explicit_title_that_starts_with_a_number():
    """A component that is not wholly a number names a title or id (pygrub's --entry
    takes titles), where GRUB's default would read the leading number."""
    menu = Menu([leaf("2.6.32-xen"), leaf("a"), leaf("b")], default="2.6.32-xen", format="grub2", rule=GrubDefault())
    assert choose(menu).names == ("b",)
    assert choose(menu, "2.6.32-xen").names == ("2.6.32-xen",)


def test_explicit_entry_lists_entries():
    with pytest.raises(
        NotFound, match=r"entries are: 0 'Debian GNU/Linux' id 'gnulinux-simple-UUID'; 1 .*\(submenu\)"
    ):
        choose(debian_like(), "nope")


# --- fallback -------------------------------------------------------------------------------


def test_fallback_when_default_kernel_missing():
    menu = debian_like("0", fallback="3 2")
    menu.entries[0] = leaf(
        "Debian GNU/Linux", "gnulinux-simple-UUID", fails=NotFound("/vmlinuz: no 'vmlinuz'")
    )
    menu.entries[3] = leaf("a>b title", "gt", fails=NotFound("/initrd.img: no 'initrd.img'"))
    choice, spec = boot(menu)
    assert choice.path == (2,) and spec.kernel.path == "/Memory test (memtest86+x64.efi)"
    assert [n.split(":")[0] for n in choice.notes] == [
        "entry 'Debian GNU/Linux' failed",
        "entry 'a>b title' failed",
    ]


def test_fallback_all_fail_raises_the_first_error():
    first = NotFound("first")
    menu = Menu(
        [leaf("a", fails=first), leaf("b", fails=ConfigError("second"))], fallback="1", format="grub2", rule=GrubDefault()
    )
    with pytest.raises(NotFound) as err:
        boot(menu)
    assert err.value is first


def test_fallback_not_used_for_corrupt_image():
    menu = Menu([leaf("a", fails=CorruptImage("bad extent")), leaf("b")], fallback="1", format="grub2", rule=GrubDefault())
    with pytest.raises(CorruptImage):
        boot(menu)


def test_fallback_into_submenu_uses_rest_of_default():
    """A submenu reached as a fallback gets the rest of 'default' (GRUB sets it again)."""
    sub = submenu("s", "s", [leaf("x"), leaf("y")])
    menu = Menu([leaf("a", fails=NotFound("gone")), sub], default="0>1", fallback="1", format="grub2", rule=GrubDefault())
    choice, _spec = boot(menu)
    assert choice.names == ("s", "y")


def test_submenu_fallback_then_top_fallback():
    sub = submenu(
        "s",
        "s",
        [leaf("x", fails=NotFound("x gone")), leaf("y", fails=NotFound("y gone")), leaf("z")],
        fallback="1 2",
    )
    menu = Menu([sub, leaf("top")], default="0", fallback="1", format="grub2", rule=GrubDefault())
    assert boot(menu)[0].names == ("s", "z")
    sub.submenu.fallback = "1"
    assert boot(menu)[0].names == ("top",)


@pytest.mark.parametrize(
    "text, numbers",
    [
        ("1", [1]),
        ("1 2", [1, 2]),
        (" 1\t2\n3", [1, 2, 3]),
        ("1,2", [1]),
        ("x 1", []),
        ("0x2 010", [2, 8]),
        ("", []),
        (None, []),
        ("1 2147483648 1", [1]),
        ("1 99999999999", [1]),
    ],
)
def test_fallback_syntax(text, numbers):
    assert list(fallback_numbers(text)) == numbers


def test_out_of_range_fallback_skipped():
    menu = Menu([leaf("a", fails=NotFound("gone")), leaf("b")], fallback="7 1", format="grub2", rule=GrubDefault())
    assert boot(menu)[0].names == ("b",)


# --- the pieces ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, result",
    [
        ("12", ("ok", 12)),
        ("0x1f", ("ok", 31)),
        ("0X1f", ("ok", 0)),
        ("017", ("ok", 15)),
        ("0", ("ok", 0)),
        ("0x", ("bad", 0)),
        ("abc", ("bad", 0)),
        ("", ("bad", 0)),
        ("\t\r\n 7", ("ok", 7)),
        ("\v7", ("bad", 0)),
        ("4294967295", ("ok", 4294967295)),
        ("4294967296", ("overflow", 4294967295)),
        ("1" * 30, ("overflow", (1 << 64) - 1)),
        ("٣", ("bad", 0)),
    ],
)
def test_grub_strtoul(text, result):
    assert grub_strtoul(text)[:2] == result


@pytest.mark.parametrize(
    "name, spec, equal",
    [
        ("a", "a", True),
        ("a", "a>b", True),
        ("a", "ab", False),
        ("a>b", "a>>b", True),
        ("a>b", "a>b", False),
        ("a>", "a>>", True),
        ("a>", "a>>>x", True),
        ("", "", True),
        ("", ">x", True),
        ("a", "", False),
    ],
)
def test_menuentry_eq(name, spec, equal):
    assert menuentry_eq(name, spec) is equal


@pytest.mark.parametrize(
    "spec, rest", [("a>b>c", "b>c"), ("a>>b>c", "c"), ("a", None), ("a>", None), ("a>>b", None), (">x", "x")]
)
def test_rest_of_path(spec, rest):
    assert rest_of_path(spec) == rest


def test_rows():
    table = [(r.depth, r.path, r.title, r.is_submenu, r.is_default) for r in rows(debian_like("1>2"))]
    assert table == [
        (0, (0,), "Debian GNU/Linux", False, False),
        (0, (1,), "Advanced options for Debian GNU/Linux", True, True),
        (1, (1, 0), "Debian GNU/Linux, with Linux 6.1.0-18-amd64", False, False),
        (1, (1, 1), "Debian GNU/Linux, with Linux 6.1.0-18-amd64 (recovery mode)", False, False),
        (1, (1, 2), "Debian GNU/Linux, with Linux 6.1.0-17-amd64", False, True),
        (0, (2,), "Memory test (memtest86+x64.efi)", False, False),
        (0, (3,), "a>b title", False, False),
    ]
    assert rows(debian_like())[0].id == "gnulinux-simple-UUID"


def test_deep_submenus_are_bounded(monkeypatch):
    monkeypatch.setattr(select, "LIMITS", LIMITS._replace(max_submenu_depth=4))
    menu = Menu([leaf("bottom")], format="grub2", rule=GrubDefault())
    for level in range(6):
        menu = Menu([MenuEntry(f"level{level}", submenu=menu)], format="grub2", rule=GrubDefault())
    with pytest.raises(LimitExceeded):
        choose(menu)
    with pytest.raises(LimitExceeded):
        boot(menu)
    with pytest.raises(LimitExceeded):
        rows(menu)


def test_long_hostile_default_is_quick():
    menu = Menu(
        [leaf(">" * 1000 + "a"), leaf("b")],
        default=">>" * 100_000 + "x",
        fallback="1 " * 100_000,
        format="grub2", rule=GrubDefault(),
    )
    assert entry_number(menu, menu.default) == -1
    menu.entries[0] = leaf("a", fails=NotFound("gone"))
    assert boot(menu)[0].names == ("b",)


def test_empty_menu():
    with pytest.raises(NotFound, match="no entries"):
        boot(Menu([], format="grub2", rule=GrubDefault()))


# --- real configs through the GRUB 2 interpreter --------------------------------------

DEBIAN10 = CORPUS / "uroot/grub/testdata_new/debian_10_4_installed"
DEBIAN10_UUID = "39ec20e2-83f5-44ce-8671-f31ce0856377"


@pytest.fixture(scope="session")
def grub2():
    """The GRUB 2 interpreter (guestboot.boot.grub2)."""
    from guestboot.boot import grub2 as module

    return module


def _kernels_of(config: str) -> list[str]:
    """The files the linux/initrd lines of ``config`` name, to put into the tree."""
    names: list[str] = []
    for m in re.finditer(r"^\s*(linux16|linux|initrd16|initrd)\s+(.*)$", config, re.M):
        paths = [w for w in m.group(2).split() if w.startswith("/")]
        names += paths[:1] if m.group(1).startswith("linux") else paths
    return names


@pytest.fixture(scope="session")
def debian10_tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("select") / "debian10"
    shutil.copytree(DEBIAN10, root)
    for name in _kernels_of((root / "boot/grub/grub.cfg").read_text()):
        (root / name.lstrip("/")).write_bytes(b"")
    return root


def _debian10(grub2, root: Path):
    devices = device_map(**{"hd0,msdos1": DirFileSystem(root, uuid=DEBIAN10_UUID)})
    return grub2.evaluate(
        devices,
        "hd0,msdos1",
        "/boot/grub/grub.cfg",
        env={"prefix": "(hd0,msdos1)/boot/grub", "root": "hd0,msdos1"},
    )


def _editenv(root: Path, *assignments: str, directory: str = "boot/grub") -> None:
    env = root / directory / "grubenv"
    env.unlink(missing_ok=True)
    subprocess.run(["grub-editenv", str(env), "create"], check=True, timeout=30)
    if assignments:
        subprocess.run(["grub-editenv", str(env), "set", *assignments], check=True, timeout=30)


ADV = f"gnulinux-advanced-{DEBIAN10_UUID}"
V4_19 = "Debian GNU/Linux, with Linux 4.19.0-9-amd64"


@pytest.mark.parametrize(
    "spec, names",
    [
        ("0", ("Debian GNU/Linux",)),
        ("1>1", ("Advanced options for Debian GNU/Linux", V4_19 + " (recovery mode)")),
        (
            f"{ADV}>gnulinux-4.19.0-9-amd64-recovery-{DEBIAN10_UUID}",
            ("Advanced options for Debian GNU/Linux", V4_19 + " (recovery mode)"),
        ),
        (f"Advanced options for Debian GNU/Linux>{V4_19}", ("Advanced options for Debian GNU/Linux", V4_19)),
        (ADV, ("Advanced options for Debian GNU/Linux", V4_19)),
    ],
)
def test_real_debian_config(grub2, debian10_tree, spec, names):
    _editenv(debian10_tree)
    menu = _debian10(grub2, debian10_tree)
    choice, spec_ = boot(menu, spec)
    assert choice.names == names
    assert spec_.kernel.path == "/boot/vmlinuz-4.19.0-9-amd64"
    assert "single" in spec_.args.split() if "recovery" in names[-1] else "single" not in spec_.args.split()


@pytest.mark.parametrize(
    "assignments, names",
    [
        ((), ("Debian GNU/Linux",)),
        (
            (f"next_entry={ADV}>gnulinux-4.19.0-9-amd64-recovery-{DEBIAN10_UUID}",),
            ("Advanced options for Debian GNU/Linux", V4_19 + " (recovery mode)"),
        ),
        (("next_entry=1>0",), ("Advanced options for Debian GNU/Linux", V4_19)),
        # a path that ends at the submenu: GRUB unsets 'default' inside it
        # (grub_menu_execute_entry), so the submenu boots its entry 0
        (("next_entry=1",), ("Advanced options for Debian GNU/Linux", V4_19)),
        ((f"next_entry={ADV}",), ("Advanced options for Debian GNU/Linux", V4_19)),
        (("next_entry=no such entry",), ("Debian GNU/Linux",)),
        (("saved_entry=1>1",), ("Debian GNU/Linux",)),  # Debian 10's config does not read saved_entry
    ],
)
def test_grubenv_next_entry(grub2, debian10_tree, assignments, names):
    """grubenv written by the real grub-editenv; Debian's header turns next_entry into
    the default (GRUB-NOTES.md)."""
    _editenv(debian10_tree, *assignments)
    menu = _debian10(grub2, debian10_tree)
    assert choose(menu).names == names


def test_saved_entry_default(grub2, tmp_path):
    """Fedora 16's config: set default="${saved_entry}" with a real grubenv."""
    root = tmp_path / "f16"
    (root / "boot/grub2").mkdir(parents=True)
    shutil.copy(CORPUS / "pygrub/fedora-16-with-xen.grub2", root / "boot/grub2/grub.cfg")
    for name in _kernels_of((root / "boot/grub2/grub.cfg").read_text()):
        (root / name.lstrip("/")).write_bytes(b"")
    _editenv(
        root,
        "saved_entry=Fedora Linux, with Linux 3.1.0-0.rc9.git0.0.fc16.x86_64 (recovery mode)",
        directory="boot/grub2",
    )
    devices = device_map(**{"hd0,msdos1": DirFileSystem(root)})
    menu = grub2.evaluate(
        devices,
        "hd0,msdos1",
        "/boot/grub2/grub.cfg",
        env={"prefix": "(hd0,msdos1)/boot/grub2", "root": "hd0,msdos1"},
    )
    assert choose(menu).names == ("Fedora Linux, with Linux 3.1.0-0.rc9.git0.0.fc16.x86_64 (recovery mode)",)


def test_real_config_fallback_when_kernel_missing(grub2, tmp_path):
    """The default entry's kernel is not on the disk: GRUB boots the fallback entry (here
    the submenu, whose own default is its entry 0)."""
    root = tmp_path / "t"
    shutil.copytree(DEBIAN10, root)
    cfg = root / "boot/grub/grub.cfg"
    text = cfg.read_text().replace('set default="0"', 'set default="0"\n   set fallback="1"')
    text = text.replace("linux\t/boot/vmlinuz-4.19.0-9-amd64", "linux\t/boot/vmlinuz-missing", 1)
    cfg.write_text(text)
    for name in ("vmlinuz-4.19.0-9-amd64", "initrd.img-4.19.0-9-amd64"):
        (root / "boot" / name).write_bytes(b"")
    _editenv(root)
    menu = _debian10(grub2, root)
    assert menu.fallback == "1"
    choice, spec = boot(menu)
    assert choice.names == ("Advanced options for Debian GNU/Linux", V4_19)
    assert spec.kernel.path == "/boot/vmlinuz-4.19.0-9-amd64"
    assert len(choice.notes) == 1 and "vmlinuz-missing" in choice.notes[0]
    with pytest.raises(NotFound, match="vmlinuz-missing"):
        choose(menu).entry.run()


def test_title_with_gt_in_real_script(grub2, tmp_path):
    (tmp_path / "boot/grub").mkdir(parents=True)
    (tmp_path / "vmlinuz-a").write_bytes(b"")
    (tmp_path / "vmlinuz-b").write_bytes(b"")
    (tmp_path / "boot/grub/grub.cfg").write_text(
        'set default="x>>y"\n' "menuentry 'x' { linux /vmlinuz-a }\n" "menuentry 'x>y' { linux /vmlinuz-b }\n"
    )
    subprocess.run(["grub-script-check", str(tmp_path / "boot/grub/grub.cfg")], check=True, timeout=30)
    menu = grub2.evaluate(device_map(hd0=DirFileSystem(tmp_path)), "hd0", "/boot/grub/grub.cfg")
    assert boot(menu)[1].kernel.path == "/vmlinuz-b"


# --- differential: pygrub's own output on its example configs ---------------------------


def _pygrub_parse() -> dict[str, dict]:
    """pygrub-parse.txt: {file: {"default": n, "images": [{title, kernel, initrd, args}]}}."""
    result: dict[str, dict] = {}
    current = None
    for line in (CORPUS / "pygrub/pygrub-parse.txt").read_text().splitlines():
        m = re.match(r"=== (\S+): default=(\d+)", line)
        if m:
            current = result[m.group(1)] = {"default": int(m.group(2)), "images": []}
            continue
        m = re.match(r"  \[\d+\] title='(.*)' kernel=(.*) initrd=(.*) args=(.*) root=", line)
        if m and current is not None:

            def path(text: str) -> str | None:
                found = re.match(r"\(None, '(.*)'\)", text)
                return found.group(1) if found else None

            args = m.group(4)
            current["images"].append(
                {
                    "title": m.group(1),
                    "kernel": path(m.group(2)),
                    "initrd": path(m.group(3)),
                    "args": None if args == "None" else args.strip("'"),
                }
            )
    return result


# Where we differ from pygrub on purpose, and why (the test checks our answer instead).
PYGRUB_DIFFERENCES = {
    # if/else is evaluated: pygrub reads both branches
    # submenus are kept: pygrub flattens them, so its indices past a submenu shift
    "ubuntu-14.04-lts.grub2": "submenu 'Advanced options for Ubuntu' is one item; pygrub flattens it",
    "fedora-16-with-xen.grub2": "submenu 'Xen 4.1' holds multiboot entries; pygrub flattens it",
}


@pytest.mark.parametrize(
    "name",
    [
        "debian-wheezy-hvm.grub2",
        "fedora-19.grub2",
        "rhel-7-beta.grub2",
        "ubuntu-14.04-lts.grub2",
        "fedora-16-with-xen.grub2",
    ],
)
def test_pygrub_examples(grub2, tmp_path, name):
    expected = _pygrub_parse()[name]
    text = (CORPUS / "pygrub" / name).read_text()
    (tmp_path / "boot/grub").mkdir(parents=True)
    (tmp_path / "boot/grub/grub.cfg").write_text(text)
    for path in _kernels_of(text):
        (tmp_path / path.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path.lstrip("/")).write_bytes(b"")
    # the entries find their device with search --fs-uuid: give the tree that UUID
    uuid = re.search(r"--fs-uuid.*?([0-9a-f]{8}-[0-9a-f-]{27})", text[text.index("\nmenuentry") :]).group(1)
    devices = device_map(**{"hd0,msdos1": DirFileSystem(tmp_path, uuid=uuid)})
    menu = grub2.evaluate(
        devices,
        "hd0,msdos1",
        "/boot/grub/grub.cfg",
        env={"prefix": "(hd0,msdos1)/boot/grub", "root": "hd0,msdos1"},
    )
    # the default entry: saved_entry is unset in an empty environment, so GRUB and
    # pygrub both boot entry 0
    choice, spec = boot(menu)
    top = expected["images"][expected["default"]]
    assert choice.path[0] == expected["default"] == 0
    assert choice.entry.title == top["title"]
    assert spec.kernel.path == top["kernel"]
    assert [r.path for r in spec.initrds] == ([top["initrd"]] if top["initrd"] else [])
    # pygrub keeps the text of the linux line; GRUB splits it into words and joins them
    # with one space (GRUB-NOTES.md), so compare words
    assert spec.args.split() == top["args"].split()
    if name in PYGRUB_DIFFERENCES:
        assert any(e.is_submenu for e in menu.entries), PYGRUB_DIFFERENCES[name]
        flat = [r.title for r in rows(menu) if not r.is_submenu]
        assert [i["title"] for i in expected["images"]] == flat, PYGRUB_DIFFERENCES[name]
    else:
        assert [e.title for e in menu.entries] == [i["title"] for i in expected["images"]]
        for index, image in enumerate(expected["images"]):
            _c, spec = boot(menu, str(index))
            assert spec.kernel.path == image["kernel"] and spec.args.split() == image["args"].split()
