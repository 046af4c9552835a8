"""One rule for a missing host tool or peer: a failure in CI (where .ci/run installs it,
so a skip there would hide a broken set-up), a skip with the reason elsewhere."""

from __future__ import annotations

import os

import pytest


def unavailable(reason: str):
    if os.environ.get("CI"):
        pytest.fail(f"CI lacks a test prerequisite: {reason}")
    pytest.skip(reason)
