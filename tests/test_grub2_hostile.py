"""Hostile GRUB 2 configs against the evaluator's resource bounds: configs that stay
inside every count in limits.py but would make a naive evaluator use gigabytes or
minutes. Each runs in a child process under an address-space limit and a wall clock."""

from __future__ import annotations

import resource
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from guestboot.boot.grub2.interp import Context, Interp, Shared
from guestboot.devices import DeviceMap
from guestboot.errors import LimitExceeded
from guestboot.limits import LIMITS

TESTS = Path(__file__).parent
MEMORY_CAP = 512 * 1024 * 1024  # RLIMIT_AS of the child
WALL_CLOCK = 60  # seconds; the case takes a few on a shared 2-core machine


def many_variables_many_entries(count: int) -> str:
    """~300 KB: ``count`` variables, then ``count`` entries (each loads a kernel)."""
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
    count = 9_900
    (tmp_path / "boot/grub").mkdir(parents=True)
    config = many_variables_many_entries(count)
    assert len(config) > 300_000
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
        from guestboot.errors import LimitExceeded

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
