"""All GRUB commands the evaluator knows, registered by importing their modules."""

from __future__ import annotations

from . import cmd_blscfg, cmd_loader, cmd_menu, cmd_script, cmd_search, cmd_test  # noqa: F401  (they register)
from .cmd_menu import read_config, run_config
from .registry import COMMANDS, Halt

__all__ = ["COMMANDS", "Halt", "read_config", "run_config"]
