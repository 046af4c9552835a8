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
        (["--runas=bob", "-q", "disk"], "integer user id"),
        (["--offset=x", "disk"], "offset value"),
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
