"""The confined child can open nothing but guestboot's own code, so every other module
the library uses must be loaded before it confines itself (sandbox.preload_native), and
where it cannot even reach its own code, everything (sandbox.preload). Checked against
the source: every module outside the package that the library imports (outside cli/,
which runs in the parent), and every codec named in a .decode()/.encode() call."""

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
PARENT_ONLY = {"pwd", "tempfile", "traceback", "pkgutil", "site"}  # used before the fork


def _library_files():
    for path in sorted(PACKAGE.rglob("*.py")):
        if "cli" not in path.relative_to(PACKAGE).parts and path.name != "__main__.py":
            yield path


def _external_imports() -> set[str]:
    found = set()
    for path in _library_files():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module)
                found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found
            if not name.startswith(("guestboot", "__future__")) and name.split(".")[0] not in PARENT_ONLY}


def _missing_after(call: str, wanted: list[str]) -> list[str]:
    code = (
        "import importlib.util, json, sys\n"
        f"from guestboot.sandbox import {call}\n"
        f"{call}()\n"
        f"wanted = {wanted!r}\n"
        "def importable(name):\n"
        "    try:\n"
        "        return importlib.util.find_spec(name) is not None\n"
        "    except (ImportError, ValueError):\n"
        "        return False\n"
        "def loaded(name):\n"
        "    parent, _, leaf = name.rpartition('.')\n"
        "    return name in sys.modules or (parent in sys.modules and hasattr(sys.modules[parent], leaf))\n"
        "print(json.dumps([n for n in wanted if not loaded(n) and importable(n)]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True, timeout=60)
    return json.loads(out.stdout)


def test_every_module_the_library_imports_from_outside_is_preloaded():
    wanted = sorted(_external_imports())
    assert {"lzma", "zlib", "struct", "hashlib"} <= set(wanted)  # the scan sees what it should
    assert _missing_after("preload_native", wanted) == []


def test_the_full_preload_loads_the_package_too():
    wanted = sorted(_external_imports()) + ["guestboot.fs.xfs", "guestboot.boot.grub2.interp", "guestboot.kernel"]
    assert _missing_after("preload", wanted) == []


def test_every_codec_the_library_names_is_preloaded():
    named = set()
    for path in _library_files():
        named.update(re.findall(r"\.(?:de|en)code\(\s*[\"']([A-Za-z0-9_-]+)[\"']", path.read_text()))
    assert "cp437" in named
    preloaded = {codecs.lookup(name).name for name in ENCODINGS}
    assert {codecs.lookup(name).name for name in named} <= preloaded


def test_preload_does_not_pull_the_heavy_standard_modules():
    """The fallback preload loads every module: it must not load what
    test_startup_imports keeps out of an extraction (dataclasses, uuid) nor
    inspect/ast/platform."""
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
