"""systemd-boot: the ESP layout from bootctl install, Type #1 entries from systemd's
kernel-install, unified kernel images built with objcopy and Debian's linuxx64.efi.stub,
loader.conf, on a FAT ESP made by mkfs.fat + mcopy (tests/builders/sdboot.py). What the
real systemd-boot boots on such an ESP is checked by the real-bootloader harness
(tests/realboot/test_systemdboot.py). The rules followed are systemd-boot's own
(src/boot/efi/boot.c of systemd 252/253: config_entry_compare, config_default_entry_select,
config_entry_add_type1, config_entry_add_unified), cited in src/guestboot/boot/sdboot.py.
"""

from __future__ import annotations

import re

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from builders import boot as qemu  # noqa: E402
from builders import fat, initramfs, sdboot  # noqa: E402
from builders.initramfs import ToolMissing  # noqa: E402
from dirfs import DirFileSystem, device_map  # noqa: E402

from guestboot.boot import sdboot as sd  # noqa: E402
from guestboot.boot.discover import find_menu  # noqa: E402
from guestboot.errors import LimitExceeded  # noqa: E402
from guestboot.image import open_disks  # noqa: E402
from guestboot.pipeline import open_refs  # noqa: E402
from guestboot.select import boot  # noqa: E402

MID = sdboot.MACHINE_ID
T1_57 = f"{MID}-6.1.0-57-amd64.conf"
T1_9 = f"{MID}-6.1.0-9-amd64.conf"
NAMES = ("type1-9", "type1-57", "uki-a", "uki-b")


@pytest.fixture(scope="session")
def esp_build(tmp_path_factory):
    work = tmp_path_factory.mktemp("sdboot")
    try:
        kernel = qemu.debian_kernel()
        initrds = {n: initramfs.build_initramfs(work / f"{n}.img", n) for n in NAMES}
        esp = sdboot.esp_tree(work, kernel, initrds, loader_conf="timeout 3\ndefault @saved\n")
    except ToolMissing as err:
        pytest.skip(str(err))
    return work, esp


def _disk(esp_build, name: str, loader_conf: str | None, ukis: bool = True) -> Path:
    import shutil

    work, esp = esp_build
    tree = work / f"tree-{name}"
    shutil.copytree(esp, tree)
    if not ukis:
        shutil.rmtree(tree / "EFI")
    if loader_conf is None:
        (tree / "loader" / "loader.conf").unlink()
    else:
        (tree / "loader" / "loader.conf").write_text(loader_conf)
    return fat.esp_disk(work / f"{name}.img", tree)


_OPEN: list = []  # images stay open for the session: their byte sources read later


def _menu(path: Path):
    f = open(path, "rb")
    _OPEN.append(f)
    image = open_disks(((f.fileno(), str(path)),))
    return find_menu(image.devices), image


def test_generated_entries_sort_as_systemd_boot(esp_build) -> None:
    """All four share sort-key "debian" (the UKIs' from ID=); the UKIs have no machine-id,
    which sorts first; then versions newest first; titles made unique by the version."""
    disk = _disk(esp_build, "saved", "timeout 3\ndefault @saved\n")
    menu, _ = _menu(disk)
    assert menu.format == "systemd-boot"
    assert [e.id for e in menu.entries] == ["debian-uki-b.efi", "debian-uki-a.efi", T1_57, T1_9]
    # the title kernel-install wrote (systemd 252 takes the os-release it is given, 257 the
    # host's: "Debian GNU/Linux 12 (bookworm)" or "... 13 (trixie)"), the same in both
    titles = {re.search(r"^title\s+(.*)$", (esp_build[1] / "loader" / "entries" / conf).read_text(), re.M).group(1)
              for conf in (T1_57, T1_9)}
    assert len(titles) == 1
    (title,) = titles
    assert [e.title for e in menu.entries][2:] == [f"{title} (6.1.0-57-amd64)", f"{title} (6.1.0-9-amd64)"]
    assert menu.timeout == "3"
    # @saved without the EFI variable: the first entry, and the output says why
    assert any("@saved" in w and "first entry" in w for w in menu.warnings)
    choice, spec = boot(menu, None)
    assert choice.entry.id == "debian-uki-b.efi"
    assert spec.args == "quiet from=uki-b"


def test_type1_default_glob_and_what_it_loads(esp_build) -> None:
    disk = _disk(esp_build, "glob", f"default {MID}-6.1.0-9*\n", ukis=False)
    menu, _ = _menu(disk)
    choice, spec = boot(menu, None)
    assert choice.entry.id == T1_9
    assert spec.kernel.path == f"/{MID}/6.1.0-9-amd64/linux"
    assert [r.path for r in spec.initrds] == [f"/{MID}/6.1.0-9-amd64/type1-9.img"]
    # the options line kernel-install wrote (systemd adds systemd.machine_id= to it)
    written = (esp_build[1] / "loader" / "entries" / T1_9).read_text()
    options = next(line.split(None, 1)[1].strip() for line in written.splitlines() if line.startswith("options"))
    assert options.startswith("quiet from=type1-9")
    assert spec.args == options
    assert spec.cmdline == f"initrd=\\{MID}\\6.1.0-9-amd64\\type1-9.img " + spec.args


# --- rules on small trees -------------------------------------------------------------------
def _dir_menu(tmp: Path, files: dict[str, str]):
    for path, text in files.items():
        target = tmp / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return sd.evaluate(device_map(esp=DirFileSystem(tmp)), "esp", "/loader/entries")


def test_order_without_sort_key_and_boot_counting(tmp_path: Path) -> None:
    """No sort-key: by id, newest first, after those with one; a spent counter ("+0-3")
    goes last; an architecture other than x64 and a missing kernel drop the entry."""
    files = {
        "/k": "",
        "/loader/entries/a-1.conf": "linux /k\n",
        "/loader/entries/a-10.conf": "linux /k\n",
        "/loader/entries/b+0-3.conf": "linux /k\nsort-key zzz\n",
        "/loader/entries/c.conf": "linux /k\nsort-key x\n",
        "/loader/entries/arm.conf": "linux /k\narchitecture aa64\n",
        "/loader/entries/gone.conf": "linux /missing\n",
        "/loader/entries/auto-x.conf": "linux /k\n",
    }
    menu = _dir_menu(tmp_path, files)
    assert [e.id for e in menu.entries] == ["c.conf", "a-10.conf", "a-1.conf", "b+0-3.conf"]


def test_options_lines_join_and_quotes(tmp_path: Path) -> None:
    files = {"/k": "", "/i1": "", "/i2": "",
             "/loader/entries/x.conf": 'title "Quoted"\nlinux /k\noptions a=1\noptions  b=2 \ninitrd /i1\ninitrd /i2\n'}
    menu = _dir_menu(tmp_path, files)
    assert menu.entries[0].title == "Quoted"
    spec = menu.entries[0].run()
    assert spec.args == "a=1 b=2"
    assert [r.path for r in spec.initrds] == ["/i1", "/i2"]


def test_default_glob_case_folded_and_unmatched(tmp_path: Path) -> None:
    files = {"/k": "", "/loader/entries/Fedora-1.conf": "linux /k\n", "/loader/entries/fedora-2.conf": "linux /k\n",
             "/loader/loader.conf": "default FEDORA-1*\n"}
    menu = _dir_menu(tmp_path, files)
    assert menu.entries[menu.rule.pick(menu, None).index].id == "fedora-1.conf"
    (tmp_path / "loader" / "loader.conf").write_text("default nothing*\n")
    menu = _dir_menu(tmp_path, {})
    assert menu.rule.pick(menu, None).index == 0
    assert any("matches no entry" in w for w in menu.warnings)


def test_entry_bytes_bounded(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(sd, "LIMITS", sd.LIMITS._replace(max_entries_bytes=50))
    files = {"/k": "", **{f"/loader/entries/e{i}.conf": "linux /k\ntitle " + "x" * 30 + "\n" for i in range(3)}}
    with pytest.raises(LimitExceeded, match="max_entries_bytes"):
        _dir_menu(tmp_path, files)


# --- hostile unified kernel images (hand-made bytes: corruption cases) ------------------------
def _pe(sections: list[tuple[bytes, int, int, bytes]], count: int | None = None, lfanew: int = 0x80) -> bytes:
    """A minimal PE: MZ header, PE signature, COFF header, no optional header, section
    headers (name, virtual size, raw size, raw offset), then the given payload bytes."""
    import struct

    head = bytearray(b"MZ" + bytes(0x3A) + struct.pack("<I", lfanew))
    head += bytes(lfanew - len(head))
    head += b"PE\0\0" + struct.pack("<HHIIIHH", 0x8664, len(sections) if count is None else count, 0, 0, 0, 0, 0)
    for name, vsize, rsize, rptr, _data in sections:
        head += struct.pack("<8sIIIIIIHHI", name, vsize, 0, rsize, rptr, 0, 0, 0, 0, 0)
    out = bytearray(head)
    for _name, _vs, _rs, rptr, data in sections:
        if rptr + len(data) > len(out):
            out += bytes(rptr + len(data) - len(out))
        out[rptr : rptr + len(data)] = data
    return bytes(out)


def _uki_menu(tmp: Path, blob: bytes):
    target = tmp / "EFI" / "Linux" / "x.efi"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(blob)
    return sd.evaluate(device_map(esp=DirFileSystem(tmp)), "esp", "/EFI/Linux")


def test_hostile_uki_sections_are_skipped_with_a_warning(tmp_path: Path) -> None:
    osrel = b"ID=x\n"
    cases = {
        "section past the end": _pe([(b".osrel", 5, 5, 0x10000, b"")]),
        "no PE signature": b"MZ" + bytes(0x3A) + b"\x80\0\0\0" + bytes(0x100),
        "header offset far out": _pe([], lfanew=0x80)[:0x3C] + b"\xff\xff\xff\x7f" + bytes(0x100),
        "table past the end": _pe([(b".osrel", 5, 5, 0x200, osrel)], count=90),
        "no .osrel": _pe([(b".linux", 4, 4, 0x200, b"kern")]),
    }
    for what, blob in cases.items():
        menu = _uki_menu(tmp_path / what.replace(" ", "-"), blob)
        assert menu.entries == [], what
        assert any("x.efi" in w for w in menu.warnings), what


def test_too_many_pe_sections_skips_the_image(tmp_path: Path) -> None:
    """More than 96 sections: our bound (max_pe_sections), and systemd-boot's own
    (its PE reader refuses more than 96), so the file is skipped, saying why."""
    blob = _pe([(b".osrel", 5, 5, 0x4000, b"ID=x\n")] * 97)
    menu = _uki_menu(tmp_path, blob)
    assert menu.entries == [] and any("max_pe_sections" in w for w in menu.warnings)


def test_minimal_uki_sections_are_windows_of_the_file(tmp_path: Path) -> None:
    blob = _pe([(b".osrel", 5, 0x200, 0x400, b"ID=x\n"), (b".cmdline", 7, 0x200, 0x600, b"a=1 b\n\0"),
                (b".linux", 4, 0x200, 0x800, b"KERN"), (b".initrd", 3, 0x200, 0xA00, b"INI")])
    menu = _uki_menu(tmp_path, blob)
    spec = menu.entries[0].run()
    assert menu.entries[0].title == "x"
    assert spec.kernel.section == (0x800, 4) and spec.initrds[0].section == (0xA00, 3)
    # systemd-boot drops the last byte when it is a newline (here it is NUL), then reads
    # the section as a C string: the newline stays
    assert spec.args == "a=1 b\n"


def test_multi_profile_uki(esp_build, tmp_path: Path) -> None:
    """systemd 257's multi-profile UKI (boot_entry_add_type2): one entry per profile, the
    first keeping the file's id, the next "id@PROFILE-ID"; titles "NAME (TITLE)"; each
    profile's .cmdline over the base one (control characters made spaces, trailing
    ones dropped), the base .linux and .initrd for all."""
    work = esp_build[0]
    kernel = qemu.debian_kernel()
    esp = tmp_path / "esp"
    (esp / "EFI" / "Linux").mkdir(parents=True)
    sdboot.multi_profile_uki(esp / "EFI" / "Linux" / "multi.efi", kernel, work / "uki-a.img",
                             'ID=debian\nPRETTY_NAME="P"\nVERSION_ID="13"\n',
                             [("ID=default\nTITLE=Default\n", "quiet\n"), ("ID=debug\nTITLE=Debug\n", "debug\tconsole=ttyS0 \n"),
                              ("ID=plain\n", "plain\n")], tmp_path)
    menu = sd.evaluate(device_map(esp=DirFileSystem(esp)), "esp", "/EFI/Linux")
    assert [(e.id, e.title) for e in menu.entries] == [
        ("multi.efi", "P (Default)"), ("multi.efi@debug", "P (Debug)"), ("multi.efi@plain", "P (plain)")]
    specs = [e.run() for e in menu.entries]
    assert [s.args for s in specs] == ["quiet", "debug console=ttyS0", "plain"]
    assert len({s.kernel.section for s in specs}) == 1 and specs[0].kernel.section[1] == kernel.stat().st_size
    data = (esp / "EFI" / "Linux" / "multi.efi").read_bytes()
    offset, size = specs[2].initrds[0].section
    assert data[offset : offset + size] == (work / "uki-a.img").read_bytes()


def test_xbootldr_beside_the_esp(esp_build, tmp_path: Path) -> None:
    """loader.conf and the UKIs on the ESP, kernel-install's Type #1 entries and kernels
    on an XBOOTLDR partition (sgdisk type EA00; both FAT, mkfs.fat + mcopy): systemd-boot
    reads both (config_load_xbootldr); an entry's files are on its own partition."""
    import shutil

    from builders import disk

    work, esp_src = esp_build
    esp, xbl = tmp_path / "esp", tmp_path / "xbootldr"
    shutil.copytree(esp_src / "EFI", esp / "EFI")
    (esp / "loader").mkdir()
    (esp / "loader" / "loader.conf").write_text(f"default {MID}-6.1.0-57*\n")
    shutil.copytree(esp_src / "loader" / "entries", xbl / "loader" / "entries")
    shutil.copytree(esp_src / MID, xbl / MID)
    variant = "fat32"
    part = fat.VARIANTS[variant][1] * 1024 // 512
    image = disk.sgdisk_image(tmp_path / "xbl.img", (2048 + 2 * part + 2048) * 512, [
        "-n", f"1:2048:{2048 + part - 1}", "-t", "1:ef00", "-n", f"2:{2048 + part}:{2048 + 2 * part - 1}",
        "-t", "2:ea00"])
    for number, tree in ((0, esp), (1, xbl)):
        fat.format_at(image, variant, (2048 + number * part) * 512)
        fat.fill(image, tree, variant, (2048 + number * part) * 512)
    menu, _ = _menu(image)
    assert menu.origin == "hd0,gpt1:/EFI/Linux"
    assert [e.id for e in menu.entries] == ["debian-uki-b.efi", "debian-uki-a.efi", T1_57, T1_9]
    choice, spec = boot(menu, None)
    assert choice.entry.id == T1_57
    assert (spec.kernel.device, spec.kernel.path) == ("hd0,gpt2", f"/{MID}/6.1.0-57-amd64/linux")
    assert spec.initrds[0].device == "hd0,gpt2"


def test_sort_fields_are_bounded(tmp_path: Path) -> None:
    """Sorting compares versions again and again: a version longer than
    max_sort_field_bytes is refused instead of making the sort slow."""
    files = {"/k": "", "/loader/entries/a.conf": "linux /k\nsort-key x\nversion " + "1." * 300 + "\n",
             "/loader/entries/b.conf": "linux /k\nsort-key x\nversion 1\n"}
    with pytest.raises(LimitExceeded, match="max_sort_field_bytes"):
        _dir_menu(tmp_path, files)


def test_boot_counters_that_are_no_numbers(tmp_path: Path) -> None:
    """Only ASCII digits that fit a C int are a boot counter ("+²", "+99999999999" are
    part of the name), and a default pattern is bounded like the ids it matches."""
    files = {"/k": "", "/loader/entries/a+\u00b2.conf": "linux /k\n", "/loader/entries/b+99999999999-1.conf": "linux /k\n",
             "/loader/entries/c+0.conf": "linux /k\n"}
    menu = _dir_menu(tmp_path, files)
    assert [e.id for e in menu.entries] == ["b+99999999999-1.conf", "a+\u00b2.conf", "c+0.conf"]
    (tmp_path / "loader" / "loader.conf").write_text("default " + "*" * 300 + "\n")
    with pytest.raises(LimitExceeded, match="max_sort_field_bytes"):
        _dir_menu(tmp_path, {})


def test_esp_with_both_follows_its_removable_loader(esp_build, tmp_path: Path) -> None:
    """An ESP with systemd-boot's entries and a GRUB config (/EFI/debian/grub.cfg):
    systemd-boot as \\EFI\\BOOT\\BOOTX64.EFI (bootctl put it there) -> systemd-boot's menu;
    another EFI program there (here Debian's linuxx64.efi.stub, a PE that is not
    systemd-boot, standing for shim or GRUB) -> GRUB's config, which firmware would reach."""
    import shutil

    work, esp_src = esp_build
    for name, loader in (("sd", None), ("grub", sdboot.STUB)):
        tree = tmp_path / name
        shutil.copytree(esp_src, tree)
        (tree / "EFI" / "debian").mkdir()
        (tree / "EFI" / "debian" / "grub.cfg").write_text(f"menuentry grub {{ linux /{MID}/6.1.0-9-amd64/linux }}\n")
        if loader is not None:
            shutil.copyfile(loader, tree / "EFI" / "BOOT" / "BOOTX64.EFI")
        menu, _ = _menu(fat.esp_disk(tmp_path / f"{name}.img", tree))
        if loader is None:
            assert menu.format == "systemd-boot"
        else:
            assert (menu.format, menu.origin, [e.title for e in menu.entries]) == (
                "grub2", "hd0,gpt1:/EFI/debian/grub.cfg", ["grub"])
