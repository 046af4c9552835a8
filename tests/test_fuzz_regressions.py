"""What the fuzz campaigns found, each kept as a reproducer in fuzz/findings/ (the target
and its input: config text, or a seed image's name and the mutation) and replayed here.

Each replays under the campaign's contract (a result or a typed error, within 5 s of CPU
time). A finding still open in another helper's area is ``xfail(strict=True)`` naming it.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from fuzz import campaign, seeds, targets  # noqa: E402
from guestboot.errors import LimitExceeded  # noqa: E402

FINDINGS = REPO / "fuzz" / "findings"


def test_grub2_self_source_fanout_ends_in_time():
    """Found as a 15-22 s run before configs were charged for work (boot/ budgets); now a
    LimitExceeded after about 2 s of CPU time, inside the 5 s contract."""
    case = json.loads((FINDINGS / "grub2-self-source-fanout.json").read_text())
    with campaign.alarm(campaign.HANG_SECONDS, wall_factor=60):
        with pytest.raises(LimitExceeded, match="max_config_work"):
            targets.BY_NAME[case["target"]].run(bytes.fromhex(case["text"]))


def test_every_finding_is_named_here():
    """A reproducer saved in fuzz/findings has a test in this file."""
    text = Path(__file__).read_text()
    for path in sorted(FINDINGS.glob("*.json")):
        assert f'"{path.name}"' in text, path.name


def test_qcow2_huge_cluster_bits_is_corrupt():
    """Found by the campaign through pipeline.run: cluster_bits was used (1 << cluster_bits)
    before it was checked, a MemoryError under the sandbox's RLIMIT_AS. Replayed on the real
    compressed-qcow2 seed with the mutation found, and on the same header change alone."""
    import struct

    from fuzz.mutate import Mutation, PatchedSource
    from guestboot.errors import CorruptImage
    from guestboot.source import FileSource
    from guestboot.source import qcow2

    case = json.loads((FINDINGS / "qcow2-cluster-bits-memoryerror.json").read_text())
    made = {s.name: s for s in seeds.build()[0]}
    if case["seed"] not in made:
        pytest.skip(f"no {case['seed']} seed here")
    fd = os.open(made[case["seed"]].path, os.O_RDONLY)
    try:
        base = FileSource(fd, name=case["seed"])
        for mutation in (Mutation.from_json(case["mutation"]), Mutation(((20, struct.pack(">I", 1 << 30)),))):
            with campaign.alarm(campaign.HANG_SECONDS, wall_factor=60):
                with pytest.raises(CorruptImage, match="cluster_bits"):
                    qcow2.Header.read(PatchedSource(base, mutation))  # refused before 1 << cluster_bits
    finally:
        os.close(fd)
