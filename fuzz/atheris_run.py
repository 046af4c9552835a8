"""Coverage-guided fuzzing of one target with atheris (libFuzzer for Python).

    python fuzz/atheris_run.py TARGET|all [CORPUS_DIR] [libFuzzer options: -runs=N -max_total_time=S …]

Text targets (config.*) take libFuzzer's bytes as the config, starting from the real
configs of the corpus (written into a corpus directory libFuzzer grows). Image targets
take libFuzzer's bytes as a patch program over a real seed image: which seed, then
patches (an offset in one of the seed's non-zero blocks, bytes to write) and maybe a
truncation, so the fuzzer steers byte changes of a multi-megabyte image by coverage
without ever holding a copy of it.

The contract is the targets' own: a GuestbootError is a clean end; any other exception
is a crash libFuzzer reports (and saves as crash-*), over ``-timeout`` (5 s by default
here) a hang. Needs the ``fuzz`` extra (pip install -e '.[fuzz]').
"""

from __future__ import annotations

import functools
import os
import pkgutil
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fuzz import seeds as seedmod  # noqa: E402
from fuzz import targets as registry  # noqa: E402
from fuzz.mutate import BLOCK, Layout, Mutation, PatchedSource  # noqa: E402

MAX_PATCHES = 8
ALL = "all"  # every target in one process: the first input byte chooses


def _import_guestboot() -> None:
    """Import every guestboot module (they are imported lazily otherwise), instrumented."""
    import importlib

    import guestboot

    for module in pkgutil.walk_packages(guestboot.__path__, "guestboot."):
        if ".cli" in module.name or module.name.endswith("__main__"):
            continue
        importlib.import_module(module.name)


def patch_program(data: bytes, layouts: list[Layout], atheris) -> tuple[int, Mutation]:
    """(seed index, Mutation) that ``data`` describes."""
    fdp = atheris.FuzzedDataProvider(data)
    index = fdp.ConsumeIntInRange(0, len(layouts) - 1)
    layout = layouts[index]
    patches = []
    for _ in range(fdp.ConsumeIntInRange(0, MAX_PATCHES)):
        block = layout.blocks[fdp.ConsumeIntInRange(0, len(layout.blocks) - 1)]
        at = min(block + fdp.ConsumeIntInRange(0, BLOCK - 1), max(0, layout.size - 1))
        patches.append((at, fdp.ConsumeBytes(fdp.ConsumeIntInRange(1, 16))))
    truncate = None
    if fdp.ConsumeBool():
        truncate = fdp.ConsumeIntInRange(0, layout.size)
    return index, Mutation(tuple(patches), truncate)


def _own_rss_count() -> int | None:
    """Fork, so that libFuzzer's memory limit counts this harness's memory only.

    libFuzzer checks ``-rss_limit_mb`` against the peak RSS getrusage() reports, and Linux
    carries the peak of the process that started us across exec: run from a pytest process
    that had once held 2.4 GiB, the harness was stopped as "out of memory" within its first
    second, blaming whatever input ran then. A forked child's count starts at this process's
    present RSS (a few MiB here, before atheris and guestboot are imported). Returns None in
    the child; in the parent, the child's exit status (128 + signal if it was killed)."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        import ctypes
        import signal

        # ends with the parent (a test's timeout kills the parent only)
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
        if os.getppid() == 1:
            os._exit(70)
        return None
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except KeyboardInterrupt:  # the child got it too (same process group) and ends itself
            continue
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def main(argv: list[str] | None = None) -> int:
    status = _own_rss_count()
    if status is not None:
        return status
    code = 70
    try:
        code = _fuzz(argv)
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else 1
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:  # the forked child never returns into its caller
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _fuzz(argv: list[str] | None) -> int:
    import atheris

    argv = list(sys.argv if argv is None else argv)
    if len(argv) < 2 or argv[1] not in (*registry.BY_NAME, ALL):
        print(f"usage: {argv[0]} TARGET|all [libFuzzer options]; targets: {', '.join(registry.BY_NAME)}",
              file=sys.stderr)
        return 2
    names = list(registry.BY_NAME) if argv[1] == ALL else [argv[1]]
    options = [a for a in argv[2:] if a.startswith("-")]
    dirs = [a for a in argv[2:] if not a.startswith("-")]
    if not any(a.startswith("-timeout=") for a in options):
        options.append("-timeout=5")
    with atheris.instrument_imports(include=["guestboot"]):
        _import_guestboot()
    corpus = dirs[0] if dirs else tempfile.mkdtemp(prefix=f"atheris-{argv[1]}-")
    Path(corpus).mkdir(parents=True, exist_ok=True)
    runners = [_runner(registry.BY_NAME[name], corpus, atheris, prefix=bytes([i]) if len(names) > 1 else b"")
               for i, name in enumerate(names)]
    if len(runners) == 1:
        one = runners[0]
    else:  # the first byte chooses the target, the rest is its input
        def one(data: bytes) -> None:
            if data:
                runners[data[0] % len(runners)](data[1:])
    atheris.Setup([argv[0], *options, corpus, *dirs[1:]], one)
    atheris.Fuzz()
    return 0


@functools.lru_cache(maxsize=1)
def _image_seeds() -> tuple:
    return tuple(seedmod.build()[0])


def _runner(target, corpus: str, atheris, prefix: bytes):
    """The function that runs ``target`` on libFuzzer's bytes; its seeds written into ``corpus``."""
    from guestboot.source import FileSource

    if target.kind == "text":
        for i, text in enumerate(seedmod.config_seeds().get(next(iter(target.tags)), [])):
            Path(corpus, f"{target.name}-{i:03d}").write_bytes(prefix + text)
        return lambda data: registry.call(target, data)
    image_seeds = [s for s in _image_seeds() if s.tags & target.tags]
    if not image_seeds:
        return lambda data: None
    layouts = [Layout.of_file(str(s.path)) for s in image_seeds]
    fds = [os.open(s.path, os.O_RDONLY) for s in image_seeds]
    Path(corpus, f"{target.name}-unchanged").write_bytes(prefix + bytes(8))

    def one(data: bytes) -> None:
        index, mutation = patch_program(data, layouts, atheris)
        source = PatchedSource(FileSource(fds[index], name=image_seeds[index].name), mutation)
        registry.call(target, source)
    return one


if __name__ == "__main__":
    sys.exit(main())
