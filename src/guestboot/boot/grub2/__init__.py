"""GRUB 2 configuration evaluation: ``evaluate`` runs a grub.cfg the way GRUB 2.06 does
and returns the Menu it would show (see menu.py). The package is split by job: lexer.py
(tokens), parser.py (grammar), interp.py (execution, expansion, files), commands.py (the
GRUB commands), options.py (GRUB's option parsing), menu.py (initial state and menus)."""

from __future__ import annotations

from .menu import evaluate

__all__ = ["evaluate"]
