"""The two front ends as a user runs them: output, files written, exit codes, one-line errors.

The image is made by mke2fs -d from a tree that holds the expected answer (kernel and
initrd bytes, grub.cfg); the corrupt variants are truncations of it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

GRUB_CFG = """\
set default="1>0"
set timeout=5
menuentry 'Plain' --id plain {
    linux /boot/vmlinuz-1 root=/dev/sda1 ro   quiet
    initrd /boot/initrd-a
}
submenu 'Advanced' --id adv {
    menuentry 'Rescue "x"' --id rescue {
        linux /boot/vmlinuz-1 root=/dev/sda1 single "a b"
        initrd /boot/initrd-a /boot/initrd-b
    }
    menuentry 'Broken' --id broken {
        linux /boot/missing-kernel
    }
}
"""


def run(*argv: str, check_rc: int | None = 0) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, *argv], capture_output=True, timeout=60)
    if check_rc is not None:
        assert proc.returncode == check_rc, proc.stderr.decode()
    return proc


def guestboot(*argv: str, check_rc: int | None = 0) -> subprocess.CompletedProcess:
    return run("-m", "guestboot", *argv, check_rc=check_rc)


def pygrub(*argv: str, check_rc: int | None = 0) -> subprocess.CompletedProcess:
    return run("-m", "guestboot.cli.pygrub", *argv, check_rc=check_rc)


def one_line_error(proc: subprocess.CompletedProcess, prog: str = "guestboot") -> str:
    err = proc.stderr.decode()
    lines = [line for line in err.splitlines() if "warning:" not in line and not line.startswith(f"{prog}: entry ")]
    assert len(lines) == 1, err
    assert lines[0].startswith(f"{prog}: ") and "Traceback" not in err
    return lines[0]


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    top = tmp_path_factory.mktemp("cli-tree")
    (top / "boot" / "grub").mkdir(parents=True)
    rng = __import__("random").Random(7)
    (top / "boot" / "vmlinuz-1").write_bytes(rng.randbytes(300_000))
    (top / "boot" / "initrd-a").write_bytes(rng.randbytes(120_000))
    (top / "boot" / "initrd-b").write_bytes(rng.randbytes(5_000))
    (top / "boot" / "grub" / "grub.cfg").write_text(GRUB_CFG)
    return top


@pytest.fixture(scope="module")
def disk(tree, tmp_path_factory) -> Path:
    image = tmp_path_factory.mktemp("cli-img") / "disk.img"
    subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", "-T", "default", "-L", "guest", "-d", str(tree),
                    str(image), "16M"], check=True, capture_output=True)
    return image


def test_list_shows_the_menu_with_the_default_path_marked(disk):
    out = guestboot("list", str(disk)).stdout.decode().splitlines()
    assert out[0] == ("(hd0)/boot/grub/grub.cfg (grub2, debian dialect: "
        "no os-release on the image, no Fedora sign in the config)")
    rows = [line.split(None, 2) if not line.startswith(" ") else ["", *line.split(None, 1)] for line in out[1:]]
    marked = [line for line in out[1:] if line.startswith("*")]
    assert [m.split()[1] for m in marked] == ["1", "1>0"]
    assert len(rows) == 4


def test_list_json_runs_each_entry_and_reports_failures(disk):
    data = json.loads(guestboot("list", "--json", str(disk)).stdout)
    assert data["default"] == [1, 0]
    plain, adv = data["entries"]
    assert plain["args"] == "root=/dev/sda1 ro quiet"  # GRUB re-joins words with one space
    assert plain["cmdline"] == "BOOT_IMAGE=/boot/vmlinuz-1 root=/dev/sda1 ro quiet"
    rescue, broken = adv["entries"]
    assert rescue["initrds"] == ["(hd0)/boot/initrd-a", "(hd0)/boot/initrd-b"]
    assert rescue["default"] is True
    assert "missing-kernel" in broken["error"]


def test_extract_writes_kernel_and_concatenated_initrds(disk, tree, tmp_path):
    out = tmp_path / "out"
    proc = guestboot("extract", str(disk), "-o", str(out))
    assert proc.stdout.decode() == 'BOOT_IMAGE=/boot/vmlinuz-1 root=/dev/sda1 single "a b"\n'
    assert (out / "kernel").read_bytes() == (tree / "boot" / "vmlinuz-1").read_bytes()
    assert (out / "initrd").read_bytes() == (tree / "boot" / "initrd-a").read_bytes() + (
        tree / "boot" / "initrd-b"
    ).read_bytes()
    assert (out / "kernel").stat().st_mode & 0o777 == 0o600
    # a second run never overwrites: exit 8 and the files are untouched
    before = (out / "kernel").stat().st_mtime_ns
    again = guestboot("extract", str(disk), "-o", str(out), check_rc=8)
    assert "already exists" in one_line_error(again)
    assert (out / "kernel").stat().st_mtime_ns == before


def test_extract_by_entry_spec_and_json(disk, tmp_path):
    proc = guestboot("extract", str(disk), "-o", str(tmp_path / "o"), "--entry", "plain", "--json")
    data = json.loads(proc.stdout)
    assert data["entry"]["path"] == "0" and data["entry"]["id"] == "plain"
    assert data["args"] == "root=/dev/sda1 ro quiet"
    assert data["initrd"].endswith("initrd")


def test_extract_of_an_entry_with_a_missing_kernel_is_not_found_and_leaves_nothing(disk, tmp_path):
    out = tmp_path / "o"
    proc = guestboot("extract", str(disk), "-o", str(out), "--entry", "adv>broken", check_rc=6)
    assert "missing-kernel" in one_line_error(proc)
    assert not out.exists()  # the directory this run created is removed again
    out.mkdir()
    guestboot("extract", str(disk), "-o", str(out), "--entry", "adv>broken", check_rc=6)
    assert list(out.iterdir()) == []  # a directory that was there stays, empty


def test_unknown_entry_is_not_found(disk, tmp_path):
    proc = guestboot("extract", str(disk), "-o", str(tmp_path / "o"), "--entry", "nope", check_rc=6)
    assert "nope" in one_line_error(proc)


def test_ls_and_cat(disk, tree):
    listing = guestboot("ls", str(disk), "/boot").stdout.decode()
    assert "vmlinuz-1" in listing and "grub/" in listing
    cat = guestboot("cat", str(disk), "/boot/grub/grub.cfg").stdout
    assert cat == (tree / "boot" / "grub" / "grub.cfg").read_bytes()
    devices = guestboot("ls", str(disk)).stdout.decode()
    assert devices.startswith(f"(hd0)  ext4  start=0 size={disk.stat().st_size}  uuid=")
    assert "label='guest'" in devices


def test_missing_image(tmp_path):
    proc = guestboot("list", str(tmp_path / "nope.img"), check_rc=6)
    assert "no such image" in one_line_error(proc)


@pytest.mark.timeout(20)
@pytest.mark.parametrize("keep", [512, 2048, 64 * 1024, 1024 * 1024])
def test_truncated_image_is_one_typed_error(disk, tmp_path, keep):
    cut = tmp_path / "cut.img"
    with open(disk, "rb") as src:
        cut.write_bytes(src.read(keep))
    proc = guestboot("extract", str(cut), "-o", str(tmp_path / "o"), check_rc=None)
    assert proc.returncode in (3, 6), proc.stderr.decode()
    one_line_error(proc)


def test_image_without_a_config(tmp_path):
    empty = tmp_path / "tree"
    empty.mkdir()
    (empty / "hello").write_text("hi")
    image = tmp_path / "plain.img"
    subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", "-T", "default", "-d", str(empty), str(image), "8M"],
                   check=True, capture_output=True)
    proc = guestboot("list", str(image), check_rc=6)
    assert "grub.cfg" in one_line_error(proc)


# --- guestboot-pygrub -------------------------------------------------------------------


def test_pygrub_libxl_call(disk, tree, tmp_path):
    outdir = tmp_path / "d"
    outdir.mkdir()
    result = tmp_path / "result"
    result.write_bytes(b"")  # libxl pre-creates it
    pygrub(f"--output={result}", "--output-format=simple0", f"--output-directory={outdir}", "-q", str(disk))
    data = result.read_bytes()
    fields = data.split(b"\0")
    assert fields[-2:] == [b"", b""]
    kernel = fields[0].removeprefix(b"kernel ").decode()
    ramdisk = fields[1].removeprefix(b"ramdisk ").decode()
    assert fields[2] == b'args root=/dev/sda1 single "a b"'
    assert Path(kernel).parent == outdir and Path(kernel).name.startswith("boot_kernel.")
    assert Path(kernel).read_bytes() == (tree / "boot" / "vmlinuz-1").read_bytes()
    assert Path(ramdisk).read_bytes().startswith((tree / "boot" / "initrd-a").read_bytes())


@pytest.mark.skipif(os.geteuid() != 0, reason="--runas needs root")
def test_pygrub_runas_reads_as_nobody(disk, tmp_path):
    private = tmp_path / "private.img"
    private.write_bytes(disk.read_bytes())
    private.chmod(0o600)
    outdir = tmp_path / "d"
    outdir.mkdir()
    proc = pygrub("--runas=65534", "-q", "--output-format=simple", f"--output-directory={outdir}", str(private))
    lines = proc.stdout.decode().split("\n")
    assert lines[0].startswith(f"kernel {outdir}/boot_kernel.")
    assert sorted(p.name.split(".")[0] for p in outdir.iterdir()) == ["boot_kernel", "boot_ramdisk"]


def test_pygrub_failure_exits_nonzero_and_leaves_no_files(disk, tmp_path):
    outdir = tmp_path / "d"
    outdir.mkdir()
    proc = pygrub("-q", "--entry=adv>broken", f"--output-directory={outdir}", str(disk), check_rc=6)
    one_line_error(proc, "guestboot-pygrub")
    assert list(outdir.iterdir()) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="--runas needs root")
def test_pygrub_runas_failure_is_not_exit_0(disk, tmp_path):
    outdir = tmp_path / "d"
    outdir.mkdir()
    proc = pygrub("--runas=65534", "-q", "--entry=adv>broken", f"--output-directory={outdir}", str(disk),
                  check_rc=6)
    one_line_error(proc, "guestboot-pygrub")
    assert list(outdir.iterdir()) == []


def test_pygrub_interactive_without_menu_boots_default(disk, tmp_path):
    outdir = tmp_path / "d"
    outdir.mkdir()
    proc = pygrub("--output-format=simple", f"--output-directory={outdir}", str(disk))
    assert b"booting the default entry" in proc.stderr
    assert b'args root=/dev/sda1 single "a b"\n' in proc.stdout


def test_pygrub_list_and_not_really(disk):
    listing = pygrub("-l", str(disk)).stdout.decode()
    assert "title: Advanced>Rescue \"x\"" in listing
    proc = pygrub("-q", "-n", "--entry=0", "--output-format=simple", str(disk))
    assert proc.stdout == b"kernel <kernel:/boot/vmlinuz-1>\nramdisk <ramdisk:/boot/initrd-a>\nargs root=/dev/sda1 ro quiet\n\n"


def test_a_flood_of_warnings_is_capped(tmp_path):
    tree = tmp_path / "tree"
    (tree / "boot" / "grub").mkdir(parents=True)
    (tree / "boot" / "vmlinuz").write_bytes(b"k")
    noise = "".join(f"no_such_command_{n}\n" for n in range(500))
    (tree / "boot" / "grub" / "grub.cfg").write_text(noise + "menuentry a { linux /boot/vmlinuz }\n")
    image = tmp_path / "noisy.img"
    subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", "-T", "default", "-d", str(tree), str(image), "8M"],
                   check=True, capture_output=True)
    proc = guestboot("list", str(image))
    lines = proc.stderr.decode().splitlines()
    assert len(lines) == 21 and "480 more warnings" in lines[-1]
    data = json.loads(guestboot("list", "--json", str(image)).stdout)
    assert len(data["warnings"]) == 500


def test_pygrub_kernel_given_by_the_host_skips_the_config(disk, tree, tmp_path):
    """pygrub's --kernel/--ramdisk/--args: the host names the files; no config is read."""
    outdir = tmp_path / "d"
    outdir.mkdir()
    proc = pygrub("-q", "--kernel=/boot/vmlinuz-1", "--ramdisk=/boot/initrd-b", "--args=console=hvc0",
                  "--output-format=simple", f"--output-directory={outdir}", str(disk))
    kernel, ramdisk, args, *_ = proc.stdout.decode().split("\n")
    assert args == "args console=hvc0"
    assert Path(kernel.removeprefix("kernel ")).read_bytes() == (tree / "boot" / "vmlinuz-1").read_bytes()
    assert Path(ramdisk.removeprefix("ramdisk ")).read_bytes() == (tree / "boot" / "initrd-b").read_bytes()
    missing = pygrub("-q", "--kernel=/boot/nope", f"--output-directory={outdir}", str(disk), check_rc=6)
    assert "/boot/nope" in one_line_error(missing, "guestboot-pygrub")
    assert len(list(outdir.iterdir())) == 2  # the failed run left nothing behind


def test_pygrub_offset_reads_one_file_system(tmp_path_factory):
    """pygrub's --offset: the file system at that byte is the whole guest (no table read);
    the Debian image's /boot partition still finds itself through `search --fs-uuid`."""
    from builders.guest_images import session_image

    debian = session_image(tmp_path_factory, "debian12-gpt")
    offset = 4096 * 512  # gpt2, the /boot partition (see the builder's layout)
    proc = pygrub("-q", "-n", f"--offset={offset}", "--output-format=simple", str(debian.path))
    expected = debian.default
    assert proc.stdout.decode() == (
        f"kernel <kernel:{expected.kernel}>\nramdisk <ramdisk:{expected.initrds[0]}>\nargs {expected.args}\n\n"
    )
    wrong = pygrub("-q", "-n", "--offset=512", str(debian.path), check_rc=None)
    assert wrong.returncode == 6
    one_line_error(wrong, "guestboot-pygrub")


# --- ordinary mistakes: one line, a documented code, nothing left behind ---------------


@pytest.mark.parametrize("command", ["list", "extract"])
def test_a_directory_is_not_an_image(tmp_path, command):
    extra = ["-o", str(tmp_path / "o")] if command == "extract" else []
    proc = guestboot(command, str(tmp_path), *extra, check_rc=2)
    assert "is a directory, not a disk image" in one_line_error(proc)
    assert not (tmp_path / "o").exists()


def test_a_pipe_is_refused_without_blocking(disk, tmp_path):
    """A FIFO nobody writes to would block a plain open(); /dev/stdin fed by a pipe too."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    proc = guestboot("list", str(fifo), check_rc=2)
    assert "is a pipe, not a disk image" in one_line_error(proc)
    with open(disk, "rb") as image:
        feeding = subprocess.Popen(["cat"], stdin=image, stdout=subprocess.PIPE)
        piped = subprocess.run([sys.executable, "-m", "guestboot", "list", "/dev/stdin"], stdin=feeding.stdout,
                               capture_output=True, timeout=60)
        feeding.stdout.close()
        feeding.kill()
        feeding.wait()
    assert piped.returncode == 2
    assert "/dev/stdin is a pipe" in one_line_error(piped)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_full_stdout_is_an_output_error_and_extract_leaves_nothing(disk, tmp_path):
    out = tmp_path / "o"
    with open("/dev/full", "wb") as full:
        for argv in (["list", str(disk)], ["cat", str(disk), "/boot/grub/grub.cfg"],
                     ["extract", str(disk), "-o", str(out)], ["extract", str(disk), "-o", str(out), "--json"]):
            proc = subprocess.run([sys.executable, "-m", "guestboot", *argv], stdout=full, stderr=subprocess.PIPE,
                                  timeout=60)
            assert proc.returncode == 8, proc.stderr.decode()
            assert "No space left on device" in one_line_error(proc)
            assert not out.exists()


def test_stdout_closed_early_is_an_output_error(disk):
    reader = subprocess.Popen([sys.executable, "-m", "guestboot", "cat", str(disk), "/boot/vmlinuz-1"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    reader.stdout.read(10)
    reader.stdout.close()  # as `| head -c 10` does
    err = reader.stderr.read().decode()
    assert reader.wait(timeout=60) == 8
    assert err.startswith("guestboot: output error: ") and "Broken pipe" in err and "Traceback" not in err


def test_the_extracted_entry_is_named_on_stderr(disk, tmp_path):
    proc = guestboot("extract", str(disk), "-o", str(tmp_path / "o"))
    assert proc.stderr.decode() == (
        "guestboot: entry 1>0: Advanced > Rescue \"x\" [rescue] from (hd0)/boot/grub/grub.cfg\n"
        "guestboot: warning: (hd0)/boot/vmlinuz-1 is neither a bzImage nor an ELF kernel\n"
    )


def test_force_replaces_outputs_and_drops_a_stale_initrd(disk, tree, tmp_path):
    out = tmp_path / "o"
    guestboot("extract", str(disk), "-o", str(out))  # the default has two initrds
    old_kernel = (out / "kernel").stat().st_ino
    (out / "kept").write_text("not ours")
    guestboot("extract", str(disk), "-o", str(out), "--entry", "adv>broken", "--force", check_rc=6)
    assert (out / "kernel").stat().st_ino == old_kernel  # a failed --force run changes nothing
    guestboot("extract", str(disk), "-o", str(out), "--entry", "plain", "--force")
    assert (out / "kernel").stat().st_ino != old_kernel  # a new file, renamed over the old one
    assert (out / "kernel").read_bytes() == (tree / "boot" / "vmlinuz-1").read_bytes()
    assert (out / "initrd").read_bytes() == (tree / "boot" / "initrd-a").read_bytes()
    assert sorted(p.name for p in out.iterdir()) == ["initrd", "kept", "kernel"]  # no temporaries left


def test_a_symlink_in_the_way_is_replaced_not_followed(disk, tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    victim = tmp_path / "victim"
    victim.write_text("host file")
    (out / "kernel").symlink_to(victim)
    proc = guestboot("extract", str(disk), "-o", str(out), check_rc=8)
    assert "already exists" in one_line_error(proc)
    guestboot("extract", str(disk), "-o", str(out), "--force")
    assert victim.read_text() == "host file" and not (out / "kernel").is_symlink()


def test_cat_and_ls_take_the_device_form_list_prints(disk, tree):
    config = guestboot("list", str(disk)).stdout.decode().splitlines()[0].split()[0]
    assert config == "(hd0)/boot/grub/grub.cfg"
    assert guestboot("cat", str(disk), config).stdout == (tree / "boot" / "grub" / "grub.cfg").read_bytes()
    listing = guestboot("ls", str(disk), "(hd0)/boot").stdout.decode().splitlines()
    assert listing[0] == "(hd0)/boot:"
    assert guestboot("ls", str(disk), "/boot").stdout.decode().splitlines()[0] == "(hd0)/boot:"
    proc = guestboot("cat", str(disk), "(hd0,gpt9)/x", check_rc=6)
    assert "no device (hd0,gpt9)" in one_line_error(proc)
    for wrong, why in (("(hd0/boot", "no closing ')'"), ("hd0:boot", "starts with '/'")):
        assert why in one_line_error(guestboot("cat", str(disk), wrong, check_rc=2))


def test_offset_in_hex_on_both_commands(tmp_path_factory):
    from builders.guest_images import session_image

    debian = session_image(tmp_path_factory, "debian12-gpt")
    hex_list = guestboot("list", "--offset", "0x200000", str(debian.path)).stdout
    assert hex_list == guestboot("list", "--offset", str(0x200000), str(debian.path)).stdout
    proc = pygrub("-q", "-n", "--offset=0x200000", "--output-format=simple", str(debian.path))
    assert proc.stdout.startswith(b"kernel <kernel:")
    bad = guestboot("list", "--offset", "0xzz", str(debian.path), check_rc=2)
    assert "not a number of bytes" in bad.stderr.decode()


def test_ls_shows_where_each_partition_lies(tmp_path_factory):
    from builders.guest_images import session_image

    debian = session_image(tmp_path_factory, "debian12-gpt")
    rows = guestboot("ls", str(debian.path)).stdout.decode().splitlines()
    boot = [row for row in rows if row.startswith("(hd0,gpt2)")]
    assert len(boot) == 1 and f"start={0x200000} " in boot[0] and " ext4 " in boot[0]


def test_version_on_both_commands():
    from guestboot import __version__

    assert guestboot("--version").stdout.decode() == f"guestboot {__version__}\n"
    assert pygrub("--version").stdout.decode() == f"guestboot-pygrub {__version__}\n"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become another user")
def test_permission_denied_is_said_so(disk, tmp_path):
    """An image the user cannot read: exit 9 and "permission denied", not "not found"
    (checked as nobody, in a child that drops privileges; root reads everything)."""
    from guestboot.cli.common import open_image_fd
    from guestboot.sandbox import check_target

    private = tmp_path / "private.img"
    private.write_bytes(b"x" * 4096)
    private.chmod(0o600)
    assert _as_nobody(lambda: open_image_fd(str(private))).startswith("PermissionDenied: cannot read image")
    assert _as_nobody(lambda: check_target(4242, 4242)).startswith("PermissionDenied: --runas needs root")


def _as_nobody(call) -> str:
    from forked import as_user

    def text() -> str:
        call()
        return "ok"

    return as_user(65534, 65534, text)


@pytest.mark.skipif(os.geteuid() != 0, reason="--runas needs root")
def test_pygrub_runas_by_name(disk, tmp_path):
    outdir = tmp_path / "d"
    outdir.mkdir()
    proc = pygrub("--runas=nobody", "-q", "--output-format=simple", f"--output-directory={outdir}", str(disk))
    assert proc.stdout.decode().startswith(f"kernel {outdir}/boot_kernel.")


@pytest.mark.parametrize("value", ["0", "-1", str(1 << 40), "no-such-user-here"])
def test_pygrub_runas_mistakes_are_usage_errors(disk, value):
    proc = pygrub(f"--runas={value}", "-q", str(disk), check_rc=2)
    lines = proc.stderr.decode().splitlines()
    assert lines[0].startswith("Usage: ") and lines[1].startswith("guestboot-pygrub: --runas")


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_pygrub_full_stdout_removes_the_files_it_wrote(disk, tmp_path):
    outdir = tmp_path / "d"
    outdir.mkdir()
    with open("/dev/full", "wb") as full:
        proc = subprocess.run([sys.executable, "-m", "guestboot.cli.pygrub", "-q", f"--output-directory={outdir}",
                               str(disk)], stdout=full, stderr=subprocess.PIPE, timeout=60)
    assert proc.returncode == 8
    assert "No space left on device" in one_line_error(proc, "guestboot-pygrub")
    assert list(outdir.iterdir()) == []


def test_a_guest_of_two_disks(tmp_path):
    """hd0 holds grub.cfg, which finds the kernel's file system on hd1 by UUID (GRUB's
    `search`): --disk gives the second disk, in order."""
    uuid = "0b8f6c1e-5d4a-4c3b-9a2f-7e6d5c4b3a21"
    config_tree, kernel_tree = tmp_path / "t0", tmp_path / "t1"
    (config_tree / "boot" / "grub").mkdir(parents=True)
    (config_tree / "boot" / "grub" / "grub.cfg").write_text(
        f"search --no-floppy --fs-uuid --set=root {uuid}\nmenuentry 'On hd1' {{\n linux /vmlinuz ro\n}}\n")
    kernel_tree.mkdir()
    (kernel_tree / "vmlinuz").write_bytes(b"kernel on the second disk" * 100)
    disk0, disk1 = tmp_path / "disk0.img", tmp_path / "disk1.img"
    for tree, image, extra in ((config_tree, disk0, []), (kernel_tree, disk1, ["-U", uuid])):
        subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", "-T", "default", *extra, "-d", str(tree), str(image), "8M"],
                       check=True, capture_output=True)
    devices = guestboot("ls", str(disk0), "--disk", str(disk1)).stdout.decode().splitlines()
    assert [row.split()[0] for row in devices] == ["(hd0)", "(hd1)"]
    assert f"uuid={uuid}" in devices[1]
    out = tmp_path / "o"
    proc = guestboot("extract", str(disk0), "--disk", str(disk1), "-o", str(out), "--json")
    assert json.loads(proc.stdout)["source"]["kernel"] == "(hd1)/vmlinuz"
    assert (out / "kernel").read_bytes() == (kernel_tree / "vmlinuz").read_bytes()
    alone = guestboot("extract", str(disk0), "-o", str(tmp_path / "o2"), check_rc=None)
    assert alone.returncode != 0 and not (tmp_path / "o2").exists()
    one_line_error(alone)


def test_format_option(disk):
    assert guestboot("list", "--format", "raw", str(disk)).stdout.startswith(b"(hd0)/boot/grub/grub.cfg")
    proc = guestboot("list", "--format", "no-such-format", str(disk), check_rc=4)
    assert "no-such-format" in one_line_error(proc)
