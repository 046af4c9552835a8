"""One payload (the Debian kernel, the marker initrds) for every bootloader's cases."""

from __future__ import annotations

import pytest
from prereq import unavailable

from builders.initramfs import ToolMissing

from .harness import Payload


@pytest.fixture(scope="session")
def payload(tmp_path_factory) -> Payload:
    try:
        return Payload(tmp_path_factory.mktemp("realboot"))
    except ToolMissing as err:
        unavailable(str(err))
