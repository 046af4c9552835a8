"""What the fuzz campaigns found, each kept as a reproducer in fuzz/findings/ (the target
and its input: config text, or a seed image's name and the mutation) and replayed here.

Each replays under the campaign's contract (a result or a typed error, within 5 s of CPU
time). A finding still open in another helper's area is ``xfail(strict=True)`` naming it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from fuzz import campaign, targets  # noqa: E402
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
