"""Boot configurations: one module (or package) per format, each turning files into a
Menu (model.py). discover.py finds a guest's config and dispatches by format; nothing is
imported until it is used (``guestboot.boot.find_menu`` loads discover.py on first use).
"""

from __future__ import annotations

import importlib

_LAZY = {
    "find_menu": "guestboot.boot.discover",
    "config_menu": "guestboot.boot.discover",
    "find_config": "guestboot.boot.discover",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'guestboot.boot' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
