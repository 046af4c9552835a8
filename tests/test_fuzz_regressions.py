"""What the fuzz campaigns found, each kept as a reproducer in fuzz/findings/ (the target
and its input: config text, or a seed image's name and the mutation) and replayed here.

A finding still open in another helper's area is ``xfail(strict=True)`` naming it: the
test starts passing, and so failing as XPASS, the day it is fixed, and then loses its mark.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from fuzz import campaign, seeds  # noqa: E402
from guestboot.errors import GuestbootError  # noqa: E402

FINDINGS = REPO / "fuzz" / "findings"
CONFIG_SECONDS = 2.0  # issue 9: "any config of a few MiB finishes or fails within 2 s"


@pytest.fixture(scope="module")
def executor(tmp_path_factory):
    made, _missing = seeds.build()
    runner = campaign.Executor(campaign.Seeds(made, seeds.config_seeds()), str(tmp_path_factory.mktemp("replay")))
    yield runner
    runner.close()


def _replay(executor, name: str, seconds: float) -> float:
    """Run finding ``name`` under an alarm of ``seconds``: its time; a typed error is a clean end."""
    case = json.loads((FINDINGS / name).read_text())
    start = time.monotonic()
    with campaign.alarm(seconds):
        try:
            executor.run(case)
        except GuestbootError:
            pass
    return time.monotonic() - start


@pytest.mark.xfail(strict=True, raises=campaign.Hang,
                   reason="open, owner grubbudget9 (boot/): a config sourcing itself three times nests 3^10 sources;"
                          " max_config_work (64 MiB of text) stops it only after 5-10 s")
def test_grub2_self_source_fanout_fails_fast(executor):
    _replay(executor, "grub2-self-source-fanout.json", CONFIG_SECONDS)


def test_every_finding_is_named_here():
    """A reproducer saved in fuzz/findings has a test in this file."""
    text = Path(__file__).read_text()
    for path in sorted(FINDINGS.glob("*.json")):
        assert f'"{path.name}"' in text, path.name
