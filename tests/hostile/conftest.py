"""Fixtures of the hostile suite: one image cache per session, one arena per case."""

from __future__ import annotations

import pytest

from hostile.harness import Arena
from hostile.images import Images


@pytest.fixture(scope="session")
def images(tmp_path_factory) -> Images:
    return Images(tmp_path_factory)


@pytest.fixture
def arena(tmp_path) -> Arena:
    return Arena(tmp_path / "arena")
