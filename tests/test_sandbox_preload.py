"""The confined child can open no file, so every module and codec the library may load
on the way must be loaded before the fork (sandbox.preload). Checked against the source:
every import inside a function of the library (outside cli/, which runs in the parent),
and every codec named in a .decode()/.encode() call, is loaded by preload in a fresh
interpreter."""

from __future__ import annotations

import ast
import codecs
import json
import re
import subprocess
import sys
from pathlib import Path

import guestboot
from guestboot.sandbox import ENCODINGS

PACKAGE = Path(guestboot.__file__).parent
PARENT_ONLY = {"pwd", "tempfile", "traceback", "pkgutil", "importlib", "codecs"}  # used before the fork


def _library_files():
    for path in sorted(PACKAGE.rglob("*.py")):
        if "cli" not in path.relative_to(PACKAGE).parts and path.name != "__main__.py":
            yield path


def _nested_imports() -> set[str]:
    found = set()
    for path in _library_files():
        tree = ast.parse(path.read_text(), str(path))
        for func in ast.walk(tree):
            if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(func):
                if isinstance(node, ast.Import):
                    found.update(alias.name for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    found.add(node.module)
                    found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if not name.startswith("guestboot") and name.split(".")[0] not in PARENT_ONLY}


def test_every_import_inside_a_function_is_preloaded():
    wanted = sorted(_nested_imports())
    assert "lzma" in wanted and "zlib" in wanted  # the scan sees what it should
    code = (
        "import importlib.util, json, sys\n"
        "from guestboot.sandbox import preload\n"
        "preload()\n"
        f"wanted = {wanted!r}\n"
        "def importable(name):\n"
        "    try:\n"
        "        return importlib.util.find_spec(name) is not None\n"
        "    except (ImportError, ValueError):\n"
        "        return False\n"
        "missing = [n for n in wanted if n not in sys.modules and importable(n) and not"
        " (n.rpartition('.')[0] in sys.modules and hasattr(sys.modules[n.rpartition('.')[0]], n.rpartition('.')[2]))]\n"
        "print(json.dumps(missing))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True, timeout=60)
    assert json.loads(out.stdout) == []


def test_every_codec_the_library_names_is_preloaded():
    named = set()
    for path in _library_files():
        named.update(re.findall(r"\.(?:de|en)code\(\s*[\"']([A-Za-z0-9_-]+)[\"']", path.read_text()))
    assert "cp437" in named
    preloaded = {codecs.lookup(name).name for name in ENCODINGS}
    assert {codecs.lookup(name).name for name in named} <= preloaded


def test_preload_does_not_pull_the_heavy_standard_modules():
    """preload runs on every sandboxed run: it must not load what test_startup_imports
    keeps out of an extraction (dataclasses, uuid) nor inspect/ast/platform."""
    code = ("import sys\nfrom guestboot.sandbox import preload\npreload()\n"
            "print(' '.join(m for m in ('dataclasses', 'uuid', 'inspect', 'ast', 'platform') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True, timeout=60, text=True)
    assert out.stdout.strip() == ""


def test_preload_finds_every_module_of_the_package_but_the_front_ends():
    from guestboot.sandbox import _package_modules

    names = set(_package_modules())
    on_disk = {".".join(("guestboot",) + path.relative_to(PACKAGE).with_suffix("").parts).removesuffix(".__init__")
               for path in _library_files()}
    assert names == on_disk - {"guestboot"}
