"""FAT through the whole pipeline: an EFI system partition on a GPT disk (512- and
4096-byte sectors) holding a GRUB 2 config, kernel and initrd, as a distribution that
mounts the ESP at /boot leaves it. ``guestboot ls``/``cat`` reach the ESP's files,
``list``/``extract`` evaluate its grub.cfg (whose ``search`` finds the ESP by the FAT
serial and label, and whose second entry spells the paths in another case, which GRUB's
FAT driver accepts), and the real pygrub (Xen's libfsimage has a FAT reader) extracts the
same kernel and initrd as guestboot-pygrub, except where it looks a path up with the
case GRUB ignores.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
from prereq import need_real_pygrub

from builders import fat as builder

RELEASE = "6.1.0-13-amd64"
GRUB_CFG = f"""\
set default=1
set timeout=1
search --no-floppy --fs-uuid --set=root {builder.UUID}
menuentry 'Debian GNU/Linux' --id debian {{
    linux /vmlinuz-{RELEASE} root=/dev/vda2 ro quiet
    initrd /initrd.img-{RELEASE}
}}
menuentry 'Debian, paths in another case' --id upper {{
    search --no-floppy --label --set=root {builder.LABEL}
    linux /VMLINUZ-{RELEASE.upper()} root=/dev/vda2 ro single
    initrd /Initrd.IMG-{RELEASE}
}}
"""
DEBIAN_STUB = f"""\
search.fs_uuid {builder.UUID} root
set prefix=($root)'/grub'
configfile $prefix/grub.cfg
"""


def run(*argv: str, check_rc: int | None = 0) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", *argv], capture_output=True, timeout=120)
    if check_rc is not None:
        assert proc.returncode == check_rc, proc.stderr.decode()
    return proc


@pytest.fixture(scope="module")
def esp_tree(tmp_path_factory) -> Path:
    top = tmp_path_factory.mktemp("esp-tree") / "tree"
    rng = random.Random(61)
    (top / "grub").mkdir(parents=True)
    (top / "grub" / "grub.cfg").write_text(GRUB_CFG)
    (top / f"vmlinuz-{RELEASE}").write_bytes(rng.randbytes(700_000))
    (top / f"initrd.img-{RELEASE}").write_bytes(rng.randbytes(250_000))
    for vendor, name in (("debian", "grubx64.efi"), ("BOOT", "BOOTX64.EFI"), ("Linux", f"debian-{RELEASE}.efi")):
        (top / "EFI" / vendor).mkdir(parents=True, exist_ok=True)
        (top / "EFI" / vendor / name).write_bytes(rng.randbytes(30_000))
    (top / "EFI" / "debian" / "grub.cfg").write_text(DEBIAN_STUB)
    (top / "loader" / "entries").mkdir(parents=True)
    (top / "loader" / "entries" / f"debian-{RELEASE}.conf").write_text(f"title Debian\nlinux /vmlinuz-{RELEASE}\n")
    return top


@pytest.fixture(scope="module", params=[512, 4096])
def esp(request, esp_tree, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp(f"esp-{request.param}") / "disk.img"
    return builder.esp_disk(path, esp_tree, request.param)


def test_ls_shows_the_esp_and_its_files(esp, esp_tree):
    devices = run("guestboot", "ls", str(esp)).stdout.decode().splitlines()
    esp_line = next(line for line in devices if line.startswith("(hd0,gpt1)  vfat  "))
    assert f"start={builder.ESP_START} " in esp_line and esp_line.endswith(f"uuid={builder.UUID} label='{builder.LABEL}'")
    assert any(line.startswith("(hd0,gpt2)") and "no recognised file system" in line for line in devices)
    listing = run("guestboot", "ls", str(esp), "gpt1:/EFI").stdout.decode().splitlines()
    assert listing[0] == "(hd0,gpt1)/EFI:"
    assert [line.split() for line in listing[1:]] == [["d", "0", "BOOT/"], ["d", "0", "Linux/"], ["d", "0", "debian/"]]
    for path in ("/EFI/debian/grub.cfg", "/loader/entries/debian-6.1.0-13-amd64.conf", "/EFI/BOOT/BOOTX64.EFI"):
        cat = run("guestboot", "cat", str(esp), f"gpt1:{path}").stdout
        assert cat == (esp_tree / path.lstrip("/")).read_bytes(), path
    # the path as UEFI firmware or GRUB might spell it
    assert run("guestboot", "cat", str(esp), "gpt1:/efi/boot/bootx64.efi").stdout == (
        esp_tree / "EFI" / "BOOT" / "BOOTX64.EFI").read_bytes()


@pytest.mark.parametrize("esp", [512], indirect=True)  # grub-fstest's loop disk has 512-byte sectors
def test_grub_reads_the_esp_partition_as_we_do(esp, esp_tree):
    """GRUB's partition code and FAT driver on the same disk: ``(loop0,gpt1)`` lists and
    reads what ``gpt1:`` gives us."""
    for directory in ("/", "/EFI", "/EFI/debian", "/loader/entries"):
        grub = subprocess.run(["grub-fstest", str(esp), "ls", f"(loop0,gpt1){directory}"], capture_output=True,
                              timeout=60, check=True).stdout.decode().split()
        ours = run("guestboot", "ls", str(esp), f"gpt1:{directory}").stdout.decode().splitlines()[1:]
        assert sorted(g.lower() for g in grub) == sorted(line.split()[-1].lower() for line in ours), directory
    grub_cfg = subprocess.run(["grub-fstest", str(esp), "cat", "(loop0,gpt1)/GRUB/GRUB.CFG"], capture_output=True,
                              timeout=60, check=True).stdout
    assert grub_cfg == run("guestboot", "cat", str(esp), "gpt1:/GRUB/GRUB.CFG").stdout == GRUB_CFG.encode()


def test_list_and_extract_from_the_esp(esp, esp_tree, tmp_path):
    menu = json.loads(run("guestboot", "list", "--json", str(esp)).stdout)
    assert [e["title"] for e in menu["entries"]] == ["Debian GNU/Linux", "Debian, paths in another case"]
    assert menu["default"] == [1]
    out = tmp_path / "out"
    cmdline = run("guestboot", "extract", str(esp), "-o", str(out)).stdout.decode()
    assert cmdline == f"BOOT_IMAGE=/VMLINUZ-{RELEASE.upper()} root=/dev/vda2 ro single\n"
    assert (out / "kernel").read_bytes() == (esp_tree / f"vmlinuz-{RELEASE}").read_bytes()
    assert (out / "initrd").read_bytes() == (esp_tree / f"initrd.img-{RELEASE}").read_bytes()
    data = json.loads(run("guestboot", "extract", str(esp), "-o", str(tmp_path / "o2"), "--entry", "debian",
                          "--json").stdout)
    assert data["config"] == "(hd0,gpt1)/grub/grub.cfg"
    assert data["source"]["kernel"] == f"(hd0,gpt1)/vmlinuz-{RELEASE}"


def pygrub_run(argv: list[str], image: Path, out: Path, *options: str) -> tuple[int, dict[str, str], bytes]:
    """Run a pygrub front end as libxl does; (exit code, simple0 fields, stderr)."""
    out.mkdir()
    done = subprocess.run([*argv, "-q", f"--output-directory={out}", "--output-format=simple0", *options, str(image)],
                          capture_output=True, timeout=120)
    fields = dict(item.split(" ", 1) for item in done.stdout.decode().split("\0") if " " in item)
    return done.returncode, fields, done.stderr


@pytest.fixture(scope="module")
def real_pygrub() -> list[str]:
    return [str(need_real_pygrub())]


def test_real_pygrub_reads_the_esp_as_we_do(real_pygrub, esp, esp_tree, tmp_path, request):
    """Entry 0: Xen's pygrub (libfsimage's FAT reader) and guestboot-pygrub extract the
    same kernel and initrd and pass the same arguments. On the disk of 4096-byte sectors
    the real pygrub finds no partition at all (it reads GPT in 512-byte sectors)."""
    ours = [sys.executable, "-m", "guestboot.cli.pygrub"]
    rc_theirs, theirs, err = pygrub_run(real_pygrub, esp, tmp_path / "theirs", "--entry=0")
    rc_ours, mine, err_ours = pygrub_run(ours, esp, tmp_path / "ours", "--entry=0")
    assert rc_ours == 0, err_ours
    assert mine["args"] == "root=/dev/vda2 ro quiet"
    if request.node.callspec.params["esp"] == 4096:
        assert rc_theirs != 0 and b"Unable to find partition containing kernel" in err
    else:
        assert rc_theirs == 0, err
        assert theirs["args"] == mine["args"]
    for kind, name in (("kernel", f"vmlinuz-{RELEASE}"), ("ramdisk", f"initrd.img-{RELEASE}")):
        expected = (esp_tree / name).read_bytes()
        assert Path(mine[kind]).read_bytes() == expected
        if rc_theirs == 0:
            assert Path(theirs[kind]).read_bytes() == expected


def test_real_pygrub_fails_where_grub_ignores_case(real_pygrub, esp, esp_tree, tmp_path, request):
    """The default entry spells its paths in another case. GRUB's FAT driver (and UEFI
    firmware) look names up case-insensitively, so GRUB boots it; libfsimage does not, so
    the real pygrub fails to open the kernel. guestboot-pygrub boots what GRUB boots."""
    rc_theirs, _theirs, err = pygrub_run(real_pygrub, esp, tmp_path / "theirs")
    assert rc_theirs != 0
    if request.node.callspec.params["esp"] == 512:  # (it finds no partition on the other disk)
        assert f"Error opening /VMLINUZ-{RELEASE.upper()}" in err.decode()
    rc_ours, mine, err_ours = pygrub_run([sys.executable, "-m", "guestboot.cli.pygrub"], esp, tmp_path / "ours")
    assert rc_ours == 0, err_ours
    assert mine["args"] == "root=/dev/vda2 ro single"
    assert Path(mine["kernel"]).read_bytes() == (esp_tree / f"vmlinuz-{RELEASE}").read_bytes()
    assert Path(mine["ramdisk"]).read_bytes() == (esp_tree / f"initrd.img-{RELEASE}").read_bytes()
