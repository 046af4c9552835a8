"""Hostile boot configs, grouped by the part they attack: the GRUB 2 evaluator's resource
bounds (configs inside every count in limits.py that would make a naive evaluator use
gigabytes or minutes: run in a child under an address-space limit and a wall clock), its
own bounds, GRUB 2 positional parameters, and GRUB legacy device names (cases from an
adversarial review). Each ends in a GuestbootError or a clean result."""

from __future__ import annotations

import resource
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from dirfs import DirFileSystem, device_map
from guestboot.boot import legacy
from guestboot.boot.grub2.interp import Context, Interp, Shared
from guestboot.devices import DeviceMap
from guestboot.errors import ConfigError, LimitExceeded, Unsupported
from guestboot.limits import LIMITS

TESTS = Path(__file__).parent
MEMORY_CAP = 512 * 1024 * 1024  # RLIMIT_AS of the child
WALL_CLOCK = 60  # seconds; the case takes a few on a shared 2-core machine


def many_variables_many_entries(count: int) -> str:
    """``count`` variables, then ``count`` entries (each loads a kernel): about 30 bytes a line."""
    lines = [f"set v{i}=value{i}" for i in range(count)]
    lines += [f"menuentry 'e{i}' {{ linux /vmlinuz root=/dev/sda$v{i % 10} }}" for i in range(count)]
    return "\n".join(lines) + "\n"


def run_capped(code: str, cwd: Path) -> subprocess.CompletedProcess:
    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))

    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd, preexec_fn=cap, capture_output=True, text=True, timeout=WALL_CLOCK,
    )


def test_entries_share_one_snapshot_of_many_variables(tmp_path):
    # A copy of the variables per entry would copy count**2 of them, far past
    # max_copied_variables. (9,900 entries, each run as listing does, cost about 150 MiB
    # of work together: more than one evaluation's max_config_work, a typed error.)
    count = 3_000
    assert count * count > 5 * LIMITS.max_copied_variables
    (tmp_path / "boot/grub").mkdir(parents=True)
    config = many_variables_many_entries(count)
    assert len(config) > 90_000
    (tmp_path / "boot/grub/grub.cfg").write_text(config)
    (tmp_path / "vmlinuz").write_bytes(b"kernel")
    code = f"""
        import sys
        sys.path.insert(0, {str(TESTS)!r})
        from dirfs import DirFileSystem, device_map
        from guestboot.boot.grub2 import evaluate
        from guestboot.select import boot

        menu = evaluate(device_map(hd0=DirFileSystem({str(tmp_path)!r})), "hd0", "/boot/grub/grub.cfg")
        specs = [entry.run() for entry in menu.entries]  # what `guestboot list --json` does
        choice, spec = boot(menu, "{count - 1}")
        print(len(menu.entries), len(specs), specs[7].args, spec.args)
    """
    started = time.monotonic()
    done = run_capped(code, tmp_path)
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == [str(count), str(count), "root=/dev/sdavalue7", "root=/dev/sdavalue9"]
    assert elapsed < WALL_CLOCK


def test_submenus_over_many_exported_variables_hit_the_copy_budget(tmp_path):
    """Each submenu opens a context holding every exported variable: 9,000 exported
    variables times 2,000 submenus is 18 million copies, stopped by max_copied_variables."""
    (tmp_path / "boot/grub").mkdir(parents=True)
    lines = [f"set v{i}=value{i}; export v{i}" for i in range(9_000)]
    lines += [f"submenu 's{i}' {{ menuentry 'e' {{ linux /vmlinuz }} }}" for i in range(2_000)]
    (tmp_path / "boot/grub/grub.cfg").write_text("\n".join(lines) + "\n")
    code = f"""
        import sys
        sys.path.insert(0, {str(TESTS)!r})
        from dirfs import DirFileSystem, device_map
        from guestboot.boot.grub2 import evaluate
        from guestboot.errors import ConfigError, LimitExceeded, Unsupported

        try:
            evaluate(device_map(hd0=DirFileSystem({str(tmp_path)!r})), "hd0", "/boot/grub/grub.cfg")
        except LimitExceeded as err:
            print(err)
    """
    done = run_capped(code, tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "max_copied_variables" in done.stdout


# --- the interpreter's own bounds (limits.py), each hit by a config that asks for more ----


def _run(text: str) -> tuple[list[str], str | None]:
    shared = Shared(DeviceMap(), [])
    it = Interp(shared, Context())
    it.run_text(text, config_file=True)
    return shared.warnings, it.get("result")


def test_functions_have_their_own_bound():
    text = "".join(f"function f{i} {{ true; }}\n" for i in range(LIMITS.max_functions))
    warnings, _ = _run(text)
    assert not warnings
    with pytest.raises(LimitExceeded, match="max_functions"):
        _run(text + "function one_more { true; }\n")


def test_test_nesting_is_grubs_error_at_the_bound():
    def nested(depth: int) -> str:
        return f"if [ {'( ' * depth}x{' )' * depth} ]; then result=yes; else result=no; fi\n"

    assert _run(nested(LIMITS.max_test_nesting)) == ([], "yes")
    warnings, result = _run(nested(LIMITS.max_test_nesting + 1))
    assert result == "no" and any("max recursion depth exceeded" in w for w in warnings)


# --- GRUB legacy device names ---------------------------------------------------------------


@pytest.mark.timeout(5)
@pytest.mark.parametrize(
    "device, error",
    [
        ("(hd0,\u00b2)", Unsupported),  # str.isdigit() is true for a superscript two; int() refuses it
        ("(hd0," + "1" * 5000 + ")", ConfigError),  # int() refuses more than 4300 digits
        ("(hd0,2147483648)", ConfigError),  # past GRUB's MAXINT
        ("(hd\u0663,0)", ConfigError),  # a non-ASCII digit is no drive number
    ],
    ids=["superscript-digit", "5000-digits", "past-maxint", "arabic-indic-drive"],
)
def test_legacy_hostile_partition_numbers_are_typed_errors(tmp_path, device, error):
    (tmp_path / "vmlinuz").write_bytes(b"")
    config = f"title x\n  root {device}\n  kernel /vmlinuz\n"
    menu = legacy.parse_text(config, device_map(hd0=DirFileSystem(tmp_path)), "hd0", "/menu.lst")
    with pytest.raises(error):
        menu.entries[0].run()


# --- GRUB 2 positional parameters ----------------------------------------------------------


@pytest.mark.timeout(5)
@pytest.mark.parametrize(
    "reference, expected",
    [("$" + "1" * 5000, ""), ("${" + "0" * 5000 + "2}", "b"), ("${10}", ""), ("$02", "b"), ("$0", "")],
    ids=["5000-digits", "5000-zeros-then-2", "past-the-arguments", "leading-zero", "zero"],
)
def test_grub2_long_positional_parameters(reference, expected):
    """int() refuses strings of more than 4300 digits: a ValueError escaped from a
    function body that names a positional parameter with 5000 digits."""
    shared = Shared(DeviceMap(), [])
    Interp(shared, Context()).run_text(f"function f {{ echo {reference}; }}\nf a b\n", config_file=True)
    assert "".join(shared.output) == expected + "\n"
