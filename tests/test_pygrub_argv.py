"""guestboot-pygrub takes pygrub's argv as libxl builds it (GNU getopt: options may follow
the image)."""

from __future__ import annotations

import pytest

from guestboot.cli.pygrub import parse


def test_libxl_argv_interleaved(tmp_path):
    # libxl: pygrub --output=F --output-format=simple0 --output-directory=D [--args=] disk
    o = parse(["--output=/f", "disk.img", "--output-format=simple0", f"--output-directory={tmp_path}",
               "-q", "--args=console=hvc0", "--entry=1>1"])
    assert not isinstance(o, int)
    assert (o.image, o.output, o.output_format) == ("disk.img", "/f", "simple0")
    assert o.output_directory == f"{tmp_path}/"
    assert (o.interactive, o.args, o.entry) == (False, "console=hvc0", "1>1")


def test_entry_implies_quiet_and_default_is_interactive():
    assert parse(["disk"]).interactive is True
    assert parse(["--entry=0", "disk"]).interactive is False


def test_output_dash_means_stdout():
    assert parse(["--output=-", "-q", "disk"]).output is None


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["--output-format=xml", "disk"], "unknown output format"),
        (["--runas=no-such-user-here", "-q", "disk"], "no such user"),
        (["--runas=0", "-q", "disk"], "as root"),
        (["--runas=root", "-q", "disk"], "is root"),
        (["--runas=-1", "-q", "disk"], "from 1 to"),
        (["--runas=1099511627776", "-q", "disk"], "from 1 to"),
        (["--offset=x", "disk"], "--offset 'x'"),
        (["--offset=-5", "disk"], "negative"),
        (["--runas=1000", "disk"], "--runas"),
        (["-q"], "no image"),
        (["--bogus", "disk"], "not recognized"),
        (["--output-directory=/nonexistent/dir", "disk"], "not an existing directory"),
    ],
)
def test_usage_errors_exit_2_with_one_line(argv, needle, capsys):
    assert parse(argv) == 2
    err = capsys.readouterr().err
    assert needle in err
    assert "Traceback" not in err


def test_runas_takes_a_name_or_a_number():
    import pwd

    nobody = pwd.getpwnam("nobody")
    by_name = parse(["--runas=nobody", "-q", "disk"])
    assert (by_name.uid, by_name.gid) == (nobody.pw_uid, nobody.pw_gid)
    by_number = parse(["--runas=4242", "-q", "disk"])
    assert (by_number.uid, by_number.gid) == (4242, 4242)  # as pygrub: the gid is the uid


def test_offset_in_hex():
    assert parse(["--offset=0x200000", "disk"]).offset == 0x200000
    assert parse(["--offset=2097152", "disk"]).offset == 2097152


@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_help_shows_the_options(flag, capsys):
    assert parse([flag]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Usage: guestboot-pygrub ")
    assert "--runas=USER" in out and "Exit codes" in out


def test_version(capsys):
    from guestboot import __version__

    assert parse(["--version"]) == 0
    assert capsys.readouterr().out == f"guestboot-pygrub {__version__}\n"
