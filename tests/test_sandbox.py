"""The sandbox proven from inside the child (issue 9): what a confined child can and cannot
do, how each way it can end becomes one typed error, and the seccomp filter's program.

Each test runs a function in the real confined child (sandbox.run, every layer on) and
looks at what happened there. Root runs see the uid drop; every run sees the chroot,
the namespaces the kernel grants, the rlimits and the seccomp filter.
"""

from __future__ import annotations

import os
import socket
import struct
import time

import pytest

from guestboot import errors
from guestboot.limits import LIMITS
from guestboot.sandbox import DEFAULT_ID, Settings, run, seccomp, settings_for

ROOT = os.geteuid() == 0


def confined(work, keep=(), **changes):
    return run(work, keep, Settings()._replace(**changes))


def attempt(call) -> str:
    """"ok" or the exception's class and errno name."""
    import errno

    try:
        result = call()
    except OSError as err:
        return f"{type(err).__name__}:{errno.errorcode.get(err.errno, err.errno)}"
    except Exception as err:
        return type(err).__name__
    if result == 0 and call is os.fork:  # a fork that worked: the grandchild ends at once
        os._exit(0)
    return "ok"


def test_the_child_can_reach_nothing_on_the_host(tmp_path):
    secret = tmp_path / "host-file"
    secret.write_bytes(b"host secret")
    secret.chmod(0o644)
    unlisted = os.open(tmp_path / "host-file", os.O_RDONLY)  # open in the parent, not given to the child

    def work():
        return {
            "open_host_file": attempt(lambda: open(secret, "rb").read()),
            "open_etc_passwd": attempt(lambda: open("/etc/passwd", "rb").read()),
            "create_file": attempt(lambda: open("new-file", "wb")),
            "socket": attempt(lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM)),
            "unix_socket": attempt(lambda: socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)),
            "fork": attempt(os.fork),
            "read_unlisted_fd": attempt(lambda: os.pread(unlisted, 4, 0)),
            "write_stdout": attempt(lambda: os.write(1, b"x")),
            "write_stderr": attempt(lambda: os.write(2, b"x")),
            "list_root": attempt(lambda: os.listdir("/")),
            "write_own_code": attempt(lambda: open(errors.__file__, "ab")),
            "kill_parent": attempt(lambda: os.kill(os.getppid() or 1, 9)),
            "uid": os.getuid(), "euid": os.geteuid(), "gid": os.getgid(), "groups": os.getgroups(),
        }

    try:
        seen = confined(work)
    finally:
        os.close(unlisted)
    for name in ("open_host_file", "open_etc_passwd", "create_file", "socket", "unix_socket", "fork",
                 "kill_parent", "write_own_code"):
        assert seen[name].startswith(("PermissionError", "OSError", "BlockingIOError", "FileNotFoundError")), \
            (name, seen[name])
    # what the root holds: nothing, or (with a mount namespace) guestboot's code, read-only
    assert seen["list_root"] in ("ok", "PermissionError:EPERM")
    for name in ("read_unlisted_fd", "write_stdout", "write_stderr"):
        assert seen[name] == "OSError:EBADF", (name, seen[name])
    if ROOT:
        assert (seen["uid"], seen["euid"], seen["gid"], seen["groups"]) == (DEFAULT_ID, DEFAULT_ID, DEFAULT_ID, [])
        assert os.geteuid() == 0  # the parent keeps its identity
    else:
        assert seen["uid"] == os.getuid()


def test_the_child_reads_and_writes_the_descriptors_it_was_given(tmp_path):
    image = tmp_path / "image"
    image.write_bytes(b"guest bytes")
    image.chmod(0o600)  # readable by root only: the child reads it through the descriptor
    out_path = tmp_path / "out"
    image_fd = os.open(image, os.O_RDONLY)
    out_fd = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)

    def work():
        data = os.pread(image_fd, 5, 0)
        os.write(out_fd, data.upper())
        return {"read": data.decode(), "size": os.fstat(image_fd).st_size}

    try:
        assert confined(work, (image_fd, out_fd)) == {"read": "guest", "size": 11}
    finally:
        os.close(image_fd)
        os.close(out_fd)
    assert out_path.read_bytes() == b"GUEST"


@pytest.mark.skipif(not ROOT, reason="--runas needs root")
def test_runas_uid_is_the_one_the_child_runs_as():
    assert confined(lambda: {"ids": [os.getuid(), os.getgid()]}, uid=4242, gid=4343) == {"ids": [4242, 4343]}


def test_the_debug_report_names_every_layer():
    report: list[str] = []
    run(lambda: {}, (), Settings(), report)
    text = "\n".join(report)
    assert "every other one closed" in text
    assert "namespaces" in text
    if ROOT:
        assert "chroot into" in text
    assert "rlimits AS=" in text and "NPROC=0" in text and "CORE=0" in text
    # no new descriptor at all, or with guestboot's code in the root, a few for its files
    assert ("NOFILE=0 " in text) != ("guestboot's code" in text)
    if seccomp.supported():
        assert "seccomp filter" in text and "no_new_privs set" in text


# --- runaways: every limit ends the child with one typed error -------------------------------


def test_a_runaway_loop_is_stopped_by_the_wall_clock():
    def work():
        while True:
            time.sleep(0.01)

    started = time.monotonic()
    with pytest.raises(errors.LimitExceeded, match="longer than 1 s.*sandbox_wall_seconds"):
        confined(work, wall_seconds=1)
    assert time.monotonic() - started < 5


def test_a_runaway_in_python_is_stopped_by_the_cpu_limit():
    def work():
        n = 0
        while True:
            n += 1

    with pytest.raises(errors.LimitExceeded, match="CPU time.*sandbox_cpu_seconds"):
        confined(work, cpu_seconds=1, wall_seconds=30)


def test_a_runaway_in_the_regex_engine_is_stopped_by_the_cpu_limit():
    import re

    pattern = re.compile(r"(a+)+b")  # catastrophic backtracking (the engine checks for signals)

    with pytest.raises(errors.LimitExceeded, match="CPU time.*sandbox_cpu_seconds"):
        confined(lambda: {"m": bool(pattern.match("a" * 60))}, cpu_seconds=1, wall_seconds=30)


def test_a_runaway_in_c_code_that_never_checks_for_signals_is_killed_at_the_hard_cpu_limit():
    """SIGXCPU's Python handler cannot run inside one long C call; one second later
    the kernel sends SIGKILL, and the parent still says it was the CPU limit."""
    import hashlib

    started = time.monotonic()
    with pytest.raises(errors.LimitExceeded, match="more than 1 s of CPU time"):
        confined(lambda: {"k": hashlib.pbkdf2_hmac("sha256", b"x", b"y", 2**31 - 1).hex()}, cpu_seconds=1,
                 wall_seconds=30)
    assert time.monotonic() - started < 20


def test_a_memory_blowup_is_stopped_by_the_address_space_limit():
    def work():
        hoard = []
        while True:
            hoard.append(bytearray(8 << 20))

    with pytest.raises(errors.LimitExceeded, match="more memory than the 64 MiB.*PYGRUB_MAX_RAM_USAGE_MB"):
        confined(work, memory=64 << 20)


def test_a_file_larger_than_the_file_size_limit_is_refused(tmp_path):
    from guestboot.extract import copy_sources
    from guestboot.source import BytesSource

    out_fd = os.open(tmp_path / "kernel", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with pytest.raises(errors.LimitExceeded, match="file-size limit.*PYGRUB_MAX_FILE_SIZE_MB"):
            confined(lambda: {"n": copy_sources([BytesSource(b"k" * (3 << 20))], out_fd, name="kernel")},
                     (out_fd,), file_size=1 << 20)
    finally:
        os.close(out_fd)
    assert os.path.getsize(tmp_path / "kernel") <= 1 << 20


# --- every end maps to a documented code ---------------------------------------------------


@pytest.mark.parametrize("cls", [errors.CorruptImage, errors.NotFound, errors.LimitExceeded, errors.ConfigError])
def test_typed_errors_cross_the_pipe(cls):
    def work():
        raise cls("bad thing", where="(hd0,gpt2)", offset=0x400)

    with pytest.raises(cls) as info:
        confined(work)
    assert str(info.value) == "(hd0,gpt2): bad thing (at byte offset 0x400)"


def test_an_error_class_defined_outside_errors_py_keeps_its_exit_code():
    class NotThatKernel(errors.Unsupported):
        pass

    with pytest.raises(errors.Unsupported, match="kernel is PV only") as info:
        confined(lambda: (_ for _ in ()).throw(NotThatKernel("kernel is PV only")))
    assert info.value.exit_code == 4


def test_warnings_cross_the_pipe_with_the_error():
    def work():
        err = errors.NotFound("no config")
        err.warnings = ["gpt2: clipped"]
        raise err

    with pytest.raises(errors.NotFound) as info:
        confined(work)
    assert info.value.warnings == ["gpt2: clipped"]


def test_a_bug_in_the_child_is_an_internal_error_not_exit_1():
    with pytest.raises(errors.InternalError, match="ZeroDivisionError") as info:
        confined(lambda: {"x": 1 // 0})
    assert info.value.exit_code == 70


def test_a_crash_of_the_interpreter_is_an_internal_error():
    import ctypes

    with pytest.raises(errors.InternalError, match="killed by SIGSEGV"):
        confined(lambda: {"x": ctypes.memset(16, 0, 1)})  # a write to an unmapped page


def test_a_result_over_the_cap_is_a_limit():
    with pytest.raises(errors.LimitExceeded, match="max_child_result"):
        confined(lambda: {"x": "y" * LIMITS.max_child_result})


# --- settings --------------------------------------------------------------------------------


def test_pygrub_environment_variables_set_the_limits():
    settings = settings_for(environ={"PYGRUB_MAX_FILE_SIZE_MB": "128", "PYGRUB_MAX_RAM_USAGE_MB": "300"})
    assert (settings.file_size, settings.memory) == (128 << 20, 300 << 20)
    assert settings_for(environ={}).memory == LIMITS.sandbox_memory
    for bad in ("-1", "0", "lots", "1e3"):
        with pytest.raises(errors.UsageError, match="PYGRUB_MAX_RAM_USAGE_MB"):
            settings_for(environ={"PYGRUB_MAX_RAM_USAGE_MB": bad})


@pytest.mark.parametrize("uid,cls", [(0, errors.UsageError), (-1, errors.UsageError), (1 << 40, errors.UsageError)])
def test_check_target_refuses_root_and_absurd_ids(uid, cls):
    from guestboot.sandbox import check_target

    with pytest.raises(cls):
        check_target(uid, 1000)


# --- the seccomp program, run by a small classic-BPF interpreter ----------------------------


def _bpf(program: bytes, nr: int, arch: int, flags: int = 0) -> int:
    """What the filter returns for one call (seccomp_data: nr, arch, ip, args[0..5];
    ``flags`` is args[2], openat's)."""
    data = struct.pack("=iIQ6Q", nr, arch, 0, 0, 0, flags, 0, 0, 0)
    code = [seccomp.SOCK_FILTER.unpack_from(program, i) for i in range(0, len(program), seccomp.SOCK_FILTER.size)]
    acc = pc = 0
    for _ in range(len(code)):
        op, jt, jf, k = code[pc]
        if op == seccomp.BPF_LD_W_ABS:
            acc = struct.unpack_from("=I", data, k)[0]
            pc += 1
        elif op == seccomp.BPF_JEQ_K:
            pc += 1 + (jt if acc == k else jf)
        elif op == seccomp.BPF_JGE_K:
            pc += 1 + (jt if acc >= k else jf)
        elif op == seccomp.BPF_JSET_K:
            pc += 1 + (jt if acc & k else jf)
        elif op == seccomp.BPF_RET_K:
            return k
        else:
            raise AssertionError(f"unexpected BPF op {op:#x}")
    raise AssertionError("the program did not return")


@pytest.mark.parametrize("arch", sorted(seccomp.ARCHES))
def test_the_filter_allows_the_list_refuses_the_rest_and_kills_other_abis(arch):
    program = seccomp.program(arch)
    column = tuple(seccomp.ARCHES).index(arch)
    audit = seccomp.ARCHES[arch]
    allowed = {numbers[column] for numbers in seccomp.ALLOWED.values()}
    for nr in range(0, 460):
        want = seccomp.SECCOMP_RET_ALLOW if nr in allowed else seccomp.SECCOMP_RET_ERRNO | 1
        assert _bpf(program, nr, audit) == want, nr
    other = next(value for name, value in seccomp.ARCHES.items() if name != arch)
    assert _bpf(program, 0, other) == seccomp.SECCOMP_RET_KILL_PROCESS
    assert _bpf(program, 0, 0x40000003) == seccomp.SECCOMP_RET_KILL_PROCESS  # i386
    if arch == "x86_64":
        assert _bpf(program, 0x40000000 + 1, audit) == seccomp.SECCOMP_RET_KILL_PROCESS  # x32 write


def test_the_filter_names_the_calls_it_refuses():
    x86 = {name: numbers[0] for name, numbers in seccomp.ALLOWED.items()}
    for refused in ("openat", "open", "socket", "connect", "clone", "fork", "execve", "kill", "ptrace", "mount",
                    "chroot", "setuid", "unshare", "prctl", "ioctl", "dup", "pipe"):
        assert refused not in x86
    assert x86["pread64"] == 17 and x86["copy_file_range"] == 326 and x86["exit_group"] == 231


@pytest.mark.skipif(not ROOT, reason="simulates an unprivileged caller by dropping from root")
def test_an_unprivileged_caller_gets_every_layer_it_can():
    """What a user without root gets: a user namespace mapping only its own uid (where
    the kernel allows one) and in it the other namespaces and the chroot, then rlimits and
    seccomp. Simulated in a forked child that drops to uid/gid 1000 after the imports."""
    import json

    from forked import as_user
    from guestboot.sandbox import preload

    preload()

    def call() -> str:
        report: list[str] = []
        try:
            seen = run(lambda: {"uid": os.getuid(), "open": attempt(lambda: open("/etc/passwd", "rb")),
                                "fork": attempt(os.fork)}, (), Settings(), report)
        except errors.GuestbootError as err:
            seen = {"error": str(err)}
        return json.dumps({"seen": seen, "report": report})

    data = json.loads(as_user(1000, 1000, call, dumpable=True))
    assert data["seen"]["uid"] == 1000
    assert data["seen"]["open"].startswith(("PermissionError", "FileNotFoundError"))
    assert data["seen"]["fork"].startswith("PermissionError")
    report = "\n".join(data["report"])
    assert "(not root: no other user to become)" in report and "rlimits AS=" in report
    if "user namespace (our uid only)" in report:  # the kernel allows unprivileged user namespaces
        assert "chroot into" in report
    else:
        assert "no user namespace" in report


def test_the_child_dies_with_the_process_that_started_it():
    """libxl may SIGTERM the bootloader; its confined child must not live on (the
    wall-clock limit is kept by the process that was killed)."""
    import json
    import signal

    read_end, write_end = os.pipe()
    starter = os.fork()
    if starter == 0:  # stands for guestboot's process: starts a child that would sleep for ever
        try:
            os.close(read_end)

            def work():
                os.write(write_end, json.dumps({"child": os.getpid()}).encode())
                while True:
                    time.sleep(0.05)

            confined(work, (write_end,), namespaces=False)
        finally:
            os._exit(0)
    os.close(write_end)
    try:
        child = json.loads(os.read(read_end, 4096))["child"]
        os.kill(starter, signal.SIGKILL)
        os.waitpid(starter, 0)
        for _ in range(200):
            try:
                os.kill(child, 0)
            except ProcessLookupError:
                break
            with open(f"/proc/{child}/stat") as stat:
                if stat.read().split(")")[-1].split()[0] == "Z":
                    break  # dead, waiting to be reaped by init
            time.sleep(0.01)
        else:
            pytest.fail("the confined child outlived the process that started it")
    finally:
        os.close(read_end)


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(n) for n in f.read().split()]
    except (FileNotFoundError, ProcessLookupError):
        return []


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[-1].split()[0] in ("Z", "X")  # dead, not yet reaped
    except (FileNotFoundError, ProcessLookupError):
        return True


@pytest.mark.skipif(not os.path.exists(f"/proc/{os.getpid()}/task/{os.getpid()}/children"),
                    reason="needs /proc/PID/task/TID/children")
def test_with_a_pid_namespace_the_waiter_and_the_worker_die_with_the_starter():
    """As root, the child waits in the host's PID namespace and its child works as PID 1
    of a new one; both must end when the process that started them is killed."""
    import signal

    read_end, write_end = os.pipe()
    starter = os.fork()
    if starter == 0:
        try:
            os.close(read_end)

            def work():
                os.write(write_end, b"working")
                while True:
                    time.sleep(0.05)

            confined(work, (write_end,))
        finally:
            os._exit(0)
    os.close(write_end)
    try:
        assert os.read(read_end, 16) == b"working"
        family = []
        pending = [starter]
        while pending:
            pid = pending.pop()
            kids = _children(pid)
            family += kids
            pending += kids
        assert family  # the confined child (and, with a PID namespace, its worker)
        os.kill(starter, signal.SIGKILL)
        os.waitpid(starter, 0)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not all(_gone(pid) for pid in family):
            time.sleep(0.02)
        assert all(_gone(pid) for pid in family), family
    finally:
        os.close(read_end)


@pytest.mark.parametrize("arch", sorted(seccomp.ARCHES))
def test_with_a_code_root_the_filter_opens_for_reading_only(arch):
    import os as host

    program = seccomp.program(arch, read_opens=True)
    column = tuple(seccomp.ARCHES).index(arch)
    audit = seccomp.ARCHES[arch]
    openat = seccomp.READ_OPEN_CALLS["openat"][column]
    allow, deny = seccomp.SECCOMP_RET_ALLOW, seccomp.SECCOMP_RET_ERRNO | 1
    assert _bpf(program, openat, audit, host.O_RDONLY | host.O_CLOEXEC) == allow
    assert _bpf(program, openat, audit, host.O_RDONLY | host.O_CLOEXEC | host.O_DIRECTORY) == allow
    for flags in (host.O_WRONLY, host.O_RDWR, host.O_CREAT, host.O_TRUNC, host.O_APPEND, host.O_RDONLY | host.O_CREAT,
                  getattr(host, "O_TMPFILE", 0x410000) | host.O_RDWR):
        assert _bpf(program, openat, audit, flags) == deny, hex(flags)
    assert _bpf(program, seccomp.READ_ONLY_CALLS["getdents64"][column], audit) == allow
    assert _bpf(program, seccomp.ALLOWED["pread64"][column], audit) == allow
    assert _bpf(program, 0, next(v for n, v in seccomp.ARCHES.items() if n != arch)) == seccomp.SECCOMP_RET_KILL_PROCESS
    plain = seccomp.program(arch)
    assert _bpf(plain, openat, audit, host.O_RDONLY) == deny  # without a code root no open at all


def test_a_module_the_confined_child_cannot_load_is_named_with_the_fix():
    def work():
        import wave  # noqa: F401  (a standard module the library does not use: not preloaded)

        return {}

    try:
        result = confined(work)
    except errors.InternalError as err:
        assert "wave" in str(err) and "PRELOAD_MODULES" in str(err)
    else:
        pytest.fail(f"the confined child read the host's standard library: {result}")
