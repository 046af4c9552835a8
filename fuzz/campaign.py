"""A mutation campaign over the real seed images and configs, in several processes.

    python -m fuzz.campaign --executions 1000000 --processes 2 --seed 1 --out fuzz-findings

Each process takes the targets in turn (fuzz/targets.py, plus ``pipeline``: pipeline.run,
what the sandboxed child runs, on a mutated working copy of a whole seed image), draws a
seed and a mutation from a random generator seeded by (seed, process, execution number),
so every execution replays on its own, and runs it under the sandbox's memory limit
(RLIMIT_AS: what the process holds + 256 MiB) with an alarm at 5 s of CPU time (or 120 s
of wall time). It prints executions,
unique crashes (by exception type and innermost guestboot frame), hangs (> 5 s), untyped
exceptions and peak RSS. Every finding is saved in ``--out`` as a reproducer (JSON: the
target, the seed, the mutation or text) that ``python -m fuzz.replay FILE`` runs again.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import random
import resource
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path

if __package__ in (None, ""):  # run as a script: the repository root on the path
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fuzz import targets as registry  # noqa: E402
from fuzz.mutate import Layout, Mutation, PatchedSource, WorkingCopy, mutate  # noqa: E402

HANG_SECONDS = 5.0  # CPU seconds (see alarm)
WALL_FACTOR = 24  # … or this many times that in wall time: 120 s, when libxl kills a restricted bootloader
PIPELINE = "pipeline"
PIPELINE_TAGS = frozenset({"fs", "table", "lvm", "image"})
PIPELINE_WEIGHT = 3  # turns the pipeline takes per round of the targets (about a tenth of the executions)
PIPELINE_ACTIONS = ("extract", "extract", "inspect", "devices")
TEXT_TOKENS = (b"{", b"}", b'"', b"'", b"\\", b"$", b"${", b"$@", b"(", b")", b"\n", b";", b"|", b"&&",
               b"fi", b"then", b"else", b"done", b"do", b"[", b"]", b"menuentry x {", b"submenu y {",
               b"function f { f; }\nf\n", b"while true; do true; done\n", b"source $prefix/grub.cfg\n",
               b"configfile /boot/grub/grub.cfg\n", b"set default=", b"\0", b"\xff", b"${a}${a}${a}",
               b"LABEL x\n", b"INCLUDE extlinux.conf\n", b"title x\n", b"kernel /boot/vmlinuz-6.1.0-13-amd64\n",
               b"linux /boot/vmlinuz-6.1.0-13-amd64\n", b"initrd ", b"=", b"#", b"\t", b"saved_entry=")


class HarnessError(Exception):
    """The campaign's own I/O failed (a working copy, a reproducer: the host's disk is full):
    not a finding of the code under test; the campaign stops and says so."""


class Hang(BaseException):
    """The alarm rang: an execution ran longer than HANG_SECONDS."""


def _ring(_signum, _frame):
    raise Hang()


@contextlib.contextmanager
def alarm(seconds: float, wall_factor: float = None):
    """Raise Hang in the ``with`` block once it has used ``seconds`` of CPU time (the
    process's user + system time, as the sandbox's RLIMIT_CPU counts: on a machine shared
    by other jobs, wall time measures them too), or after WALL_FACTOR times that in wall
    time (a block on I/O, a sleep)."""
    previous = {sig: signal.signal(sig, _ring) for sig in (signal.SIGPROF, signal.SIGALRM)}
    signal.setitimer(signal.ITIMER_PROF, seconds)
    signal.setitimer(signal.ITIMER_REAL, seconds * (wall_factor or WALL_FACTOR))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.setitimer(signal.ITIMER_REAL, 0)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def mutate_text(text: bytes, rng: random.Random) -> bytes:
    """Insert, delete, duplicate or replace pieces of a config (tokens of its languages)."""
    data = bytearray(text)
    for _ in range(rng.randint(1, 6)):
        at = rng.randrange(len(data) + 1)
        kind = rng.randrange(5)
        if kind == 0:
            data[at:at] = rng.choice(TEXT_TOKENS)
        elif kind == 1:
            del data[at:at + rng.randint(1, 40)]
        elif kind == 2 and data:
            start = rng.randrange(len(data))
            piece = data[start:start + rng.randint(1, 200)]
            data[at:at] = piece * rng.choice((1, 1, 2, 8))
        elif kind == 3:
            data[at:at] = bytes([rng.randrange(256)])
        elif data:
            data[min(at, len(data) - 1)] ^= 1 << rng.randrange(8)
    return bytes(data)


def innermost_frame(err: BaseException) -> str:
    """file:line:function of the innermost frame in guestboot (else the innermost at all)."""
    frames = traceback.extract_tb(err.__traceback__)
    ours = [f for f in frames if "/guestboot/" in f.filename] or frames
    if not ours:
        return "?"
    frame = ours[-1]
    path = frame.filename.split("/guestboot/", 1)[-1] if "/guestboot/" in frame.filename else frame.filename
    return f"{path}:{frame.lineno}:{frame.name}"


class Seeds:
    """The seeds, their layouts (lazily) and the config texts."""

    def __init__(self, image_seeds, texts: dict[str, list[bytes]]):
        self.images = list(image_seeds)
        self.texts = texts
        self._layouts: dict[str, Layout] = {}
        self._fds: dict[str, int] = {}

    def for_target(self, target) -> list:
        if target.kind == "text":
            return self.texts.get(next(iter(target.tags)), [])
        return [s for s in self.images if s.tags & target.tags]

    def fd(self, seed) -> int:
        if seed.name not in self._fds:
            self._fds[seed.name] = os.open(seed.path, os.O_RDONLY)
        return self._fds[seed.name]

    def layout(self, seed) -> Layout:
        if seed.name not in self._layouts:
            self._layouts[seed.name] = Layout.of_file(str(seed.path))
        return self._layouts[seed.name]


class Executor:
    """Runs one execution of a target or of the pipeline; owns the working copies."""

    def __init__(self, seeds: Seeds, scratch: str):
        self.seeds = seeds
        self.scratch = scratch
        self.copies: dict[str, WorkingCopy] = {}
        self.outputs = [os.memfd_create("fuzz-kernel"), os.memfd_create("fuzz-initrd")]

    def draw(self, target_name: str, rng: random.Random) -> dict:
        """The input of one execution, as a reproducer records it."""
        if target_name == PIPELINE:
            choices = [s for s in self.seeds.images if s.tags & PIPELINE_TAGS]
        else:
            choices = self.seeds.for_target(registry.BY_NAME[target_name])
        if not choices:
            return {}
        pick = rng.randrange(len(choices))
        if target_name != PIPELINE and registry.BY_NAME[target_name].kind == "text":
            return {"target": target_name, "text": mutate_text(choices[pick], rng).hex()}
        seed = choices[pick]
        fd = self.seeds.fd(seed)
        mutation = mutate(self.seeds.layout(seed), rng, lambda at, n: os.pread(fd, n, at))
        case = {"target": target_name, "seed": seed.name, "mutation": mutation.to_json()}
        if target_name == PIPELINE:
            case["action"] = rng.choice(PIPELINE_ACTIONS)
        return case

    def run(self, case: dict) -> str | None:
        """Run ``case``: the typed error's class name, or None; anything else propagates."""
        name = case["target"]
        if "text" in case:
            return registry.call(registry.BY_NAME[name], bytes.fromhex(case["text"]))
        seed = next(s for s in self.seeds.images if s.name == case["seed"])
        mutation = Mutation.from_json(case["mutation"])
        if name == PIPELINE:
            return self._pipeline(seed, mutation, case["action"])
        from guestboot.source import FileSource

        source = PatchedSource(FileSource(self.seeds.fd(seed), name=seed.name), mutation)
        return registry.call(registry.BY_NAME[name], source)

    def _pipeline(self, seed, mutation: Mutation, action: str) -> str | None:
        from guestboot import pipeline
        from guestboot.errors import GuestbootError

        copy = self.copies.get(seed.name)
        if copy is None:
            copy = self.copies[seed.name] = WorkingCopy(str(seed.path), os.path.join(self.scratch, seed.name))
        for fd in self.outputs:
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
        try:
            copy.apply(mutation)
        except OSError as err:
            raise HarnessError(f"writing the working copy of {seed.name}: {err}") from err
        try:
            request = pipeline.Request(action=action, disks=((copy.fd, seed.name),),
                                       kernel_fd=self.outputs[0], initrd_fd=self.outputs[1])
            pipeline.run(request)
        except GuestbootError as err:
            return type(err).__name__
        finally:
            try:
                copy.undo(mutation)
            except OSError as err:
                raise HarnessError(f"restoring the working copy of {seed.name}: {err}") from err
        return None

    def close(self) -> None:
        for copy in self.copies.values():
            copy.close()


def _limit_memory() -> None:
    held = 0
    try:
        with open("/proc/self/statm", "rb") as f:
            held = int(f.read().split()[0]) * resource.getpagesize()
    except (OSError, ValueError, IndexError):
        pass
    from guestboot.limits import LIMITS

    memory = LIMITS.sandbox_memory  # what the sandboxed child may add to what it holds (RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (held + memory, held + memory))


def target_names(selected: list[str] | None = None) -> list[str]:
    names = [t.name for t in registry.TARGETS] + [PIPELINE] * PIPELINE_WEIGHT
    return [n for n in names if not selected or any(n == s or n.startswith(s + ".") for s in selected)]


def worker(index: int, args: dict, queue) -> None:
    from fuzz import seeds as seedmod

    os.nice(0)
    image_seeds, _missing = seedmod.build()
    texts = seedmod.config_seeds()
    names = target_names(args["targets"])
    scratch = tempfile.mkdtemp(prefix=f"fuzz-{index}-")
    executor = Executor(Seeds(image_seeds, texts), scratch)
    _limit_memory()
    out = Path(args["out"])
    stats = {"executions": 0, "typed": 0, "untyped": 0, "hangs": 0, "crashes": {}, "by_target": {}, "cpu_by_target": {}}
    last = time.monotonic()
    k = empty = 0
    try:
        while names and stats["executions"] < args["executions"] and time.monotonic() < args["deadline"]:
            name = names[k % len(names)]
            rng = random.Random(f"{args['seed']}:{index}:{k}")
            k += 1
            case = executor.draw(name, rng)
            if not case:  # a target without seeds here; none at all: nothing to run
                empty += 1
                if empty > len(names):
                    break
                continue
            empty = 0
            start, cpu = time.monotonic(), time.process_time()
            finding = None
            try:
                with alarm(HANG_SECONDS):
                    if executor.run(case):
                        stats["typed"] += 1
            except Hang:
                finding = ("hang", "Hang", f"> {HANG_SECONDS:g} s")
            except HarnessError as err:
                stats["harness_error"] = str(err)
                break
            except Exception as err:  # the contract: nothing but GuestbootError escapes
                finding = ("untyped", type(err).__name__, innermost_frame(err))
                case["error"] = f"{type(err).__name__}: {err}"[:500]
            elapsed, used = time.monotonic() - start, time.process_time() - cpu
            if finding is None and (used > HANG_SECONDS or elapsed > HANG_SECONDS * WALL_FACTOR):
                finding = ("hang", "Hang", f"{used:.1f} s CPU, {elapsed:.1f} s in all, in C code")
            stats["executions"] += 1
            stats["by_target"][name] = stats["by_target"].get(name, 0) + 1
            stats["cpu_by_target"][name] = stats["cpu_by_target"].get(name, 0.0) + used
            if finding:
                kind, error, frame = finding
                stats["hangs" if kind == "hang" else "untyped"] += 1
                key = f"{name} {error} {frame}"
                if key not in stats["crashes"]:
                    stats["crashes"][key] = 0
                    case.update(kind=kind, frame=frame, seconds=round(elapsed, 2), cpu_seconds=round(used, 2), replay=f"{args['seed']}:{index}:{k - 1}")
                    try:
                        out.mkdir(parents=True, exist_ok=True)
                        (out / f"{kind}-{len(stats['crashes']):03d}-{index}-{k - 1}.json").write_text(
                            json.dumps(case, indent=1))
                    except OSError as err:
                        stats["harness_error"] = f"saving a reproducer: {err}"
                        break
                stats["crashes"][key] += 1
            if time.monotonic() - last > 10:
                last = time.monotonic()
                queue.put((index, dict(stats, rss=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss), False))
    finally:
        queue.put((index, dict(stats, rss=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss), True))
        with contextlib.suppress(OSError):
            executor.close()
            os.rmdir(scratch)


def _merge(parts: dict[int, dict]) -> dict:
    total = {"executions": 0, "typed": 0, "untyped": 0, "hangs": 0, "crashes": {}, "by_target": {},
             "cpu_by_target": {}, "rss": 0}
    for part in parts.values():
        for key in ("executions", "typed", "untyped", "hangs"):
            total[key] += part[key]
        for key, count in part["crashes"].items():
            total["crashes"][key] = total["crashes"].get(key, 0) + count
        for field in ("by_target", "cpu_by_target"):
            for key, count in part.get(field, {}).items():
                total[field][key] = total[field].get(key, 0) + count
        total["rss"] = max(total["rss"], part["rss"])
        if part.get("harness_error"):
            total["harness_error"] = part["harness_error"]
    return total


def _line(total: dict, started: float) -> str:
    elapsed = time.monotonic() - started
    return (f"executions {total['executions']}  ({total['executions'] / max(elapsed, 1e-9):.0f}/s, {elapsed:.0f} s)  "
            f"unique crashes {len(total['crashes'])}  hangs {total['hangs']}  untyped exceptions {total['untyped']}  "
            f"typed errors {total['typed']}  peak RSS {total['rss'] / 1024:.1f} MiB")


def campaign(executions: int, processes: int, seed: int, out: str, targets: list[str] | None = None,
             seconds: float | None = None, progress=None) -> dict:
    """Run the campaign; the merged statistics (``rss`` in KiB, ``crashes`` by key)."""
    started = time.monotonic()
    deadline = time.monotonic() + seconds if seconds else float("inf")
    share = [executions // processes + (1 if i < executions % processes else 0) for i in range(processes)]
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    procs = [context.Process(target=worker, args=(i, {"executions": share[i], "seed": seed, "out": out,
                                                      "targets": targets, "deadline": deadline}, queue))
             for i in range(processes)]
    for proc in procs:
        proc.start()
    parts: dict[int, dict] = {}
    done: set[int] = set()
    while len(done) < processes:
        try:
            index, stats, final = queue.get(timeout=5)
        except Exception:  # queue.Empty: check that the workers live
            dead = [i for i, p in enumerate(procs) if not p.is_alive() and i not in done]
            if dead and queue.empty():
                for i in dead:  # a worker killed (by the kernel, out of memory …) is a finding too
                    parts.setdefault(i, {"executions": 0, "typed": 0, "untyped": 0, "hangs": 0, "crashes": {},
                                         "by_target": {}, "rss": 0})
                    parts[i]["crashes"][f"worker {i} died: exit {procs[i].exitcode}"] = 1
                    parts[i]["untyped"] += 1
                    done.add(i)
            continue
        parts[index] = stats
        if final:
            done.add(index)
        if progress:
            progress(_line(_merge(parts), started))
    for proc in procs:
        proc.join()
    total = _merge(parts)
    total["line"] = _line(total, started)
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--executions", type=int, default=100_000)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", default="fuzz-findings")
    parser.add_argument("--seconds", type=float, default=None, help="stop after this long even if short of --executions")
    parser.add_argument("--target", action="append", help="only these targets (a name or a prefix: fs, config, …)")
    args = parser.parse_args(argv)
    total = campaign(args.executions, args.processes, args.seed, args.out, args.target, args.seconds,
                     progress=lambda line: print(line, flush=True))
    print("by target (executions, CPU ms each): " + ", ".join(
        f"{k} {v} {1000 * total['cpu_by_target'].get(k, 0) / max(v, 1):.1f}" for k, v in sorted(total["by_target"].items())))
    for key, count in sorted(total["crashes"].items()):
        print(f"finding: {key}  x{count}")
    print("final: " + total["line"])
    if total.get("harness_error"):
        print(f"stopped early, not a finding: {total['harness_error']}")
        return 2
    return 1 if total["crashes"] else 0


if __name__ == "__main__":
    sys.exit(main())
