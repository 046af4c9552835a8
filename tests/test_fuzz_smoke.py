"""CI smoke of the fuzzing (fuzz/): every target on seeded mutations of its real seeds, a
short multi-process campaign through the pipeline, and atheris for a few seconds when it
is installed (the ``fuzz`` extra). The long campaigns are fuzz/campaign.py's job.

The contract checked is the targets': every input ends in a result or a GuestbootError,
within 5 s; the campaign's peak RSS stays under the sandbox's 256 MiB.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from fuzz import campaign, seeds, targets  # noqa: E402
from fuzz.mutate import Layout, Mutation, PatchedSource, WorkingCopy, mutate  # noqa: E402
from guestboot.source import BytesSource, FileSource  # noqa: E402

CASES = 80  # seeded mutations per target
SMOKE_SEED = 20261204


@pytest.fixture(scope="session")
def seed_set():
    made, missing = seeds.build()
    return made, missing, seeds.config_seeds()


@pytest.fixture(scope="session")
def executor(seed_set, tmp_path_factory):
    made, _missing, texts = seed_set
    runner = campaign.Executor(campaign.Seeds(made, texts), str(tmp_path_factory.mktemp("fuzz-scratch")))
    yield runner
    runner.close()


def test_seeds_are_made_for_every_area(seed_set):
    """Every image-target area has real seeds here (a tool missing would make the smoke hollow)."""
    made, missing, texts = seed_set
    tags = set().union(*(s.tags for s in made))
    assert {"fs", "table", "lvm", "md", "image", "initrd", "env"} <= tags, missing
    for target in targets.TARGETS:
        if target.kind == "text":
            assert texts[next(iter(target.tags))], target.name
        elif target.name != "kernel.inspect":  # kernels: downloaded by tests
            assert any(s.tags & target.tags for s in made), (target.name, missing)


@pytest.mark.parametrize("name", [t.name for t in targets.TARGETS if t.name.startswith("fs.") and t.name != "fs.probe"])
def test_unmutated_fs_seed_is_read_back(name, seed_set):
    """The fs targets do read the tree: an unchanged seed walks to the files written into it."""
    made = [s for s in seed_set[0] if s.tags & targets.BY_NAME[name].tags]
    if not made:
        pytest.skip(f"no seed for {name}: {seed_set[1]}")
    module = name.split(".", 1)[1]
    for seed in made:
        fd = os.open(seed.path, os.O_RDONLY)
        try:
            import importlib

            fs = importlib.import_module(f"guestboot.fs.{module}").probe(FileSource(fd, name=seed.name))
            assert fs is not None, seed.name
            # the tree holds a 75 KiB kernel and a 30 KB initrd, among others
            assert targets.walk(fs) > 100_000, seed.name
        finally:
            os.close(fd)


def test_unmutated_md_seeds_are_assembled(seed_set):
    """The md seeds are real members: each alone assembles (degraded RAID1) into an array
    holding the ext4 seed, which the ext driver walks."""
    from guestboot.fs import ext
    from guestboot.volume import STACKS
    from guestboot.volume.stack import discover

    made = [s for s in seed_set[0] if "md" in s.tags]
    assert {s.name for s in made} == {"md-raid1-1.2.img", "md-raid1-0.90.img"}, seed_set[1]
    for seed in made:
        fd = os.open(seed.path, os.O_RDONLY)
        try:
            found = discover([("hd0", FileSource(fd, name=seed.name))], [s for s in STACKS if s[0] == "md"])
            [volume] = [v for v in found.volumes if v.disk.startswith("md")]  # the array, a disk of its own
            assert targets.walk(ext.probe(volume.source)) > 100_000, seed.name
        finally:
            os.close(fd)


@pytest.mark.parametrize("name", campaign.target_names()[:len(targets.TARGETS) + 1])
def test_target_keeps_its_contract_on_mutations(name, executor):
    """CASES seeded mutations of the target's seeds: a result or a typed error each, in time."""
    failures = []
    ran = 0
    for k in range(CASES):
        rng = random.Random(f"{SMOKE_SEED}:{name}:{k}")
        case = executor.draw(name, rng)
        if not case:
            pytest.skip(f"no seed for {name}")
        try:
            with campaign.alarm(campaign.HANG_SECONDS):
                executor.run(case)
        except campaign.Hang:
            failures.append(("hang", case))
        except Exception as err:  # the finding the smoke is for
            failures.append((f"{type(err).__name__}: {err} at {campaign.innermost_frame(err)}", case))
        ran += 1
    assert ran == CASES
    assert not failures, failures[:3]


def test_campaign_counts_and_stays_within_memory(tmp_path):
    """Two processes, every target and the pipeline, deterministic by seed: the counts add
    up, nothing untyped, no hang, peak RSS under 256 MiB."""
    total = campaign.campaign(1200, 2, 7, str(tmp_path / "findings"))
    assert total["executions"] == 1200
    assert total["untyped"] == 0 and total["hangs"] == 0, total["crashes"]
    assert total["by_target"].get(campaign.PIPELINE, 0) >= 60
    assert set(total["by_target"]) >= {t.name for t in targets.TARGETS}
    assert 0 < total["rss"] < 256 * 1024
    assert not (tmp_path / "findings").exists()


def test_campaign_reports_an_untyped_exception_as_a_finding(tmp_path, monkeypatch):
    """The harness can fail: a target that raises ValueError is counted, keyed by its frame,
    and saved as a reproducer that replay runs again."""

    def broken(data):
        raise ValueError("not a GuestbootError")

    monkeypatch.setattr(targets, "TARGETS", (targets.Target("config.broken", "text", frozenset({"grub2"}), broken),))
    monkeypatch.setattr(targets, "BY_NAME", {"config.broken": targets.TARGETS[0]})
    monkeypatch.setattr(campaign, "PIPELINE_WEIGHT", 0)
    total = campaign.campaign(20, 1, 3, str(tmp_path))
    assert total["untyped"] == 20
    [key] = total["crashes"]
    assert key.startswith("config.broken ValueError") and "test_fuzz_smoke.py" in key
    [saved] = tmp_path.glob("untyped-*.json")
    from fuzz.replay import main as replay_main

    assert replay_main([str(saved)]) == 1


def test_mutations_replay_from_their_seed():
    """One (seed, process, execution) number gives one input: what a reproducer relies on."""
    data = bytes(range(256)) * 64
    layout = Layout.of_bytes(data)
    source = BytesSource(data)
    draws = [mutate(layout, random.Random("1:0:5"), source.pread) for _ in range(2)]
    assert draws[0] == draws[1]
    assert Mutation.from_json(draws[0].to_json()) == draws[0]


def test_patched_source_and_working_copy_agree(tmp_path):
    """The in-memory view and the written-and-undone copy give the same bytes."""
    rng = random.Random(5)
    base = tmp_path / "seed.img"
    base.write_bytes(rng.randbytes(64 * 1024))
    layout = Layout.of_file(str(base))
    copy = WorkingCopy(str(base), str(tmp_path / "copy.img"))
    try:
        for k in range(50):
            mutation = mutate(layout, random.Random(k), copy.read_seed)
            view = PatchedSource(BytesSource(base.read_bytes()), mutation)
            copy.apply(mutation)
            written = os.pread(copy.fd, copy.size, 0)
            assert view.pread(0, view.size) == written
            copy.undo(mutation)
            assert os.pread(copy.fd, copy.size + 1, 0) == base.read_bytes()
    finally:
        copy.close()


def test_atheris_smoke(tmp_path):
    """Coverage-guided: every target in one atheris process for a few seconds, within
    libFuzzer's memory limit (256 MiB, the sandbox's)."""
    pytest.importorskip("atheris")
    done = subprocess.run(
        [sys.executable, str(REPO / "fuzz" / "atheris_run.py"), "all", str(tmp_path),
         "-max_total_time=8", "-timeout=5", "-rss_limit_mb=256", "-print_final_stats=1"],
        capture_output=True, text=True, timeout=240, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    runs = [line for line in done.stderr.splitlines() if line.startswith("stat::number_of_executed_units")]
    assert runs and int(runs[0].split(":")[-1]) > 50, done.stderr[-2000:]
    assert not list(tmp_path.glob("crash-*")) + list(tmp_path.glob("oom-*")) + list(tmp_path.glob("timeout-*"))


HIGH_PEAK_PARENT = """
import subprocess, sys
held = bytearray(PEAK_MIB << 20)
held[::4096] = b"\x01" * len(held[::4096])  # resident, so it is this process's peak RSS
del held
sys.exit(subprocess.run(sys.argv[1:]).returncode)
"""


def test_atheris_memory_limit_counts_the_harness_only(tmp_path):
    """Regression (CI on 2026-12-04): libFuzzer compares -rss_limit_mb with getrusage's
    peak RSS, which Linux carries across exec from the starting process. Started by a
    process that had once held 2.4 GiB (the test session), the harness stopped as out of
    memory in its first second. Here a parent that once held 600 MiB starts it with a
    400 MiB limit: the harness (which forks first) runs to the end."""
    pytest.importorskip("atheris")
    parent = HIGH_PEAK_PARENT.replace("PEAK_MIB", "600")
    done = subprocess.run(
        [sys.executable, "-c", parent, sys.executable, str(REPO / "fuzz" / "atheris_run.py"), "config.grub-legacy",
         str(tmp_path), "-runs=300", "-rss_limit_mb=400", "-print_final_stats=1"],
        capture_output=True, text=True, timeout=240, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    peak = [line for line in done.stderr.splitlines() if line.startswith("stat::peak_rss_mb")]
    assert peak and int(peak[0].split(":")[-1]) < 400, done.stderr[-2000:]


def test_campaign_without_seeds_ends(tmp_path, monkeypatch):
    """Targets that have no seed here (or no target selected) end the run instead of spinning."""
    monkeypatch.setattr(campaign.Executor, "draw", lambda self, name, rng: {})
    assert campaign.campaign(50, 1, 1, str(tmp_path))["executions"] == 0
    assert campaign.campaign(50, 1, 1, str(tmp_path), targets=["no-such-target"])["executions"] == 0


def test_campaign_stops_on_its_own_io_error(tmp_path, monkeypatch):
    """A full host disk while writing a working copy stops the campaign as a harness
    error: it is not counted as an untyped exception of the code under test."""

    def full(self, mutation):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(campaign, "PIPELINE_WEIGHT", 1)
    monkeypatch.setattr(WorkingCopy, "apply", full)
    total = campaign.campaign(200, 1, 4, str(tmp_path), targets=[campaign.PIPELINE])
    assert total["untyped"] == 0 and total["executions"] == 0
    assert "No space left" in total["harness_error"]
