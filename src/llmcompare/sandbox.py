"""Run code written by a model, bounded: a separate process, limits, no network, a throwaway folder.

Code a model writes is hostile until shown otherwise. :func:`run_python` runs a program in a
fresh ``python -I -B`` process, with:

* a wall-clock timeout, after which the whole process tree is killed;
* CPU-time, address-space (memory), process-count, file-size (which also caps the output) and
  open-file limits (``resource.setrlimit`` in the child);
* no network: new user, network, mount, PID and IPC namespaces (Linux, through ``unshare(2)``):
  the program sees only a loopback interface that is down;
* a root of its own holding only what Python needs (``/usr``, ``/lib*``, ``/bin``, this Python's
  install and virtual environment), bound read-only: no ``/root``, ``/home``, ``/tmp`` or other
  private trees of the host; a procfs of its own PID namespace (only its own processes); a
  ``/dev`` of only ``null``, ``zero``, ``random`` and ``urandom``; and one writable working
  folder, a ``tmpfs`` capped in size (``Limits.work_mb``) that is gone afterwards;
* no capabilities, even those of its namespace's root (locked securebits, an empty bounding
  set, no new privileges), so it cannot mount, or make a read-only mount writable again;
* a clean environment (no API keys or anything else inherited) and isolated mode (``-I``: no
  user site, no ``PYTHON*`` variables);
* every process it started killed at the end (the PID namespace dies with its first process).

When running as root, where the kernel does not apply the process-count limit, a ``pids``
cgroup bounds the processes instead when one can be made.

:func:`check_sandbox` verifies that the isolation holds on this machine (once per process) and
raises :class:`SandboxUnavailable` when the network cannot be denied; code then runs only if
the caller explicitly accepts that (``allow_network=True``).

:class:`UnitTests` is the scorer built on it (``"unit_tests"``, alias ``"pass"``): the answer's
code, then the item's tests, run by a harness that reports a pass on a private channel with a
per-run token, so no exit status, output or early exit of the answer counts as a pass. It is off
unless the user opts in with ``allow_code_execution=True``.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from llmcompare.errors import ConfigurationError, LLMCompareError

if TYPE_CHECKING:
    from llmcompare.prompts import PromptItem
    from llmcompare.types import Completion

__all__ = [
    "CodeExecutionWarning",
    "ExecResult",
    "Limits",
    "SandboxUnavailable",
    "UnitTests",
    "check_sandbox",
    "run_python",
]


class SandboxUnavailable(LLMCompareError):
    """The sandbox cannot deny the program the network (or cannot start) on this machine."""


class CodeExecutionWarning(UserWarning):
    """Code written by a model is about to be run on this machine (the user opted in)."""


class Limits(BaseModel):
    """Bounds on one run of a program.

    Attributes:
        timeout_s: Wall-clock seconds before the whole process tree is killed.
        cpu_s: CPU seconds (``RLIMIT_CPU``).
        memory_mb: Address space in MiB (``RLIMIT_AS``).
        processes: Processes at once (``RLIMIT_NPROC``; a ``pids`` cgroup as root).
        file_size_mb: Largest file the program may write, its output included (``RLIMIT_FSIZE``).
        output_chars: Characters of output kept in the result (the end of it).
        work_mb: Size of the working folder in MiB, all files together (a ``tmpfs`` of its
            own, so no program can fill the host's disk).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    timeout_s: float = Field(default=10.0, gt=0, le=3600)
    cpu_s: int = Field(default=10, ge=1, le=3600)
    memory_mb: int = Field(default=1024, ge=64)
    processes: int = Field(default=32, ge=1)
    file_size_mb: int = Field(default=8, ge=1)
    output_chars: int = Field(default=4000, ge=0)
    work_mb: int = Field(default=64, ge=1)


Status = Literal["passed", "failed", "timeout"]


class ExecResult(BaseModel):
    """What one run of a program did.

    Attributes:
        status: ``"passed"`` (exit status 0), ``"failed"`` (any other exit, a signal, a limit)
            or ``"timeout"`` (killed at the wall-clock limit).
        returncode: The exit status (negative: the signal that ended it); None after a timeout.
        output: The end of its standard output and error.
        duration_s: Wall-clock seconds it ran.
        isolated: Whether it ran with the network denied (namespaces), as is the default.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    status: Status
    returncode: int | None
    output: str
    duration_s: float
    isolated: bool

    @property
    def passed(self) -> bool:
        """Whether the program exited with status 0 in time."""
        return self.status == "passed"


# The first process of the sandbox: it enters the namespaces, makes the file system read-only
# but for the working folder, sets the limits and runs the program as PID 1 of a new PID
# namespace, so every process the program starts dies with it. It is a separate, fresh Python
# process (single-threaded, as unshare(CLONE_NEWUSER) requires), never a preexec_fn of ours.
_BOOTSTRAP = r"""
import ctypes, fcntl, json, os, resource, signal, sys
cfg = json.loads(sys.argv[1])
work = cfg["work"]
sys.stdin.buffer.read(1)  # wait until the parent has put this process in its cgroup
files = {name: open(os.path.join(work, name), "rb").read() for name in os.listdir(work)}
libc = ctypes.CDLL(None, use_errno=True)
def fail(what):
    sys.stderr.write(f"SANDBOX-UNAVAILABLE {what}: {os.strerror(ctypes.get_errno())}\n")
    os._exit(97)
if cfg["isolate"]:
    uid, gid = os.getuid(), os.getgid()
    # user | mount | ipc | pid | net namespaces
    if libc.unshare(0x10000000 | 0x00020000 | 0x08000000 | 0x20000000 | 0x40000000) != 0:
        fail("unshare")
    for name, text in (("setgroups", "deny"), ("uid_map", f"0 {uid} 1"), ("gid_map", f"0 {gid} 1")):
        with open("/proc/self/" + name, "w") as f:
            f.write(text)
    MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
    MS_BIND, MS_REC, MS_PRIVATE = 4096, 16384, 1 << 18
    def mount(src, dst, fstype, flags, data, what):
        if libc.mount(src, dst.encode(), fstype, flags, data) != 0:
            fail(f"{what} {dst!r}")
    mount(None, "/", None, MS_REC | MS_PRIVATE, None, "mount")
    # A new root of only what Python needs, bound read-only: no /root, /home, /work, /tmp or
    # /proc of the host; its own /dev, procfs and size-capped work folder.
    root = cfg["root"]
    mount(b"tmpfs", root, b"tmpfs", MS_NOSUID | MS_NODEV, b"size=1m,mode=755", "tmpfs")
    for path in cfg["binds"]:
        inside = root + path
        if os.path.islink(path):
            os.makedirs(os.path.dirname(inside), exist_ok=True)
            os.symlink(os.readlink(path), inside)
        elif os.path.isdir(path):
            os.makedirs(inside, exist_ok=True)
            mount(path.encode(), inside, None, MS_BIND | MS_REC, None, "mount")
    os.makedirs(root + "/dev")
    mount(b"tmpfs", root + "/dev", b"tmpfs", MS_NOSUID | MS_NOEXEC, b"size=64k,mode=755", "tmpfs")
    # A /dev of four harmless devices: no disks, loop devices, kmsg or terminals to write to.
    for name in ("null", "zero", "random", "urandom"):
        open(root + "/dev/" + name, "w").close()
        mount(b"/dev/" + name.encode(), root + "/dev/" + name, None, MS_BIND, None, "mount")
    os.makedirs(root + "/proc")
    os.makedirs(root + work)
    # mount_setattr(root, AT_RECURSIVE, {MOUNT_ATTR_RDONLY}): every mount read-only.
    attr = (ctypes.c_uint64 * 4)(1, 0, 0, 0)
    # 442: mount_setattr, the same number on every architecture (a syscall added in 5.12).
    if libc.syscall(442, -100, root.encode(), 0x8000, ctypes.byref(attr), ctypes.sizeof(attr)):
        fail("read-only mounts")
    # The one writable folder: a tmpfs capped in size, so no answer can fill the host's disk.
    size = f"size={cfg['work_mb']}m,mode=700".encode()
    mount(b"tmpfs", root + work, b"tmpfs", MS_NOSUID | MS_NODEV, size, "tmpfs")
    if libc.chroot(root.encode()) != 0:
        fail("chroot")
    os.chdir(work)
    for name, data in files.items():
        with open(name, "wb") as f:
            f.write(data)
# The harness's private channels, at 3 (the token, read once) and 4 (the verdict).
fds = [fcntl.fcntl(fd, fcntl.F_DUPFD, 100) for fd in cfg["fds"]]
for fd in cfg["fds"]:
    os.close(fd)
for number, fd in enumerate(fds, 3):
    os.dup2(fd, number)
    os.close(fd)
pid = os.fork()
if pid == 0:
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: die with the bootstrap
    os.chdir(work)
    if cfg["isolate"]:
        # The procfs of its own PID namespace: only its own processes. Where the kernel refuses
        # a new procfs (a container masking parts of its /proc), there is no /proc at all.
        libc.mount(b"proc", b"/proc", b"proc", 1 | 2 | 4 | 8, None)
    mb = 1024 * 1024
    for res, value in (
        (resource.RLIMIT_CPU, cfg["cpu_s"]),
        (resource.RLIMIT_AS, cfg["memory_mb"] * mb),
        (resource.RLIMIT_DATA, cfg["memory_mb"] * mb),
        (resource.RLIMIT_NPROC, cfg["processes"]),
        (resource.RLIMIT_FSIZE, cfg["file_size_mb"] * mb),
        (resource.RLIMIT_NOFILE, 64),
        (resource.RLIMIT_CORE, 0),
    ):
        resource.setrlimit(res, (value, value))
    if cfg["isolate"]:
        # The program must not hold the capabilities of its namespace's root: with them it
        # could make a read-only mount (or a bind mount of one) writable again. Securebits
        # NOROOT (locked): uid 0 gains nothing at exec; the bounding set emptied; no new privs.
        if libc.prctl(28, 0x2F, 0, 0, 0) != 0:  # PR_SET_SECUREBITS
            fail("securebits")
        for cap in range(64):
            libc.prctl(24, cap, 0, 0, 0)  # PR_CAPBSET_DROP (fails past the last capability)
        libc.prctl(38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS
    os.execve(cfg["python"], [cfg["python"], "-I", "-B", "program.py"], cfg["env"])
for number in range(3, 3 + len(fds)):
    os.close(number)
_, status = os.waitpid(pid, 0)
code = os.waitstatus_to_exitcode(status)
sys.exit(code % 256 if code >= 0 else 128 - code)
"""

# The program UnitTests runs: a harness of ours that runs the answer, then the tests, and
# reports a pass only by writing a per-run token to a descriptor the answer is not told about.
# Exiting early (sys.exit(0), os._exit(0), an atexit hook), printing anything or redefining
# names cannot produce the token; the tests run with the builtins as they were before the
# answer ran. The token is read, once, from a pipe before the answer runs and kept only in
# this function's locals: forging it means walking the stack or the interpreter's memory.
_HARNESS = r"""
def _harness():
    import builtins, os, sys
    # Everything the harness uses after the answer ran, taken before: the answer may replace
    # any builtin or module attribute.
    read, write, remove, exit_now, close = os.read, os.write, os.remove, os._exit, os.close
    run, build, copy, base = exec, compile, dict, BaseException
    settrace, setprofile, frames = sys.settrace, sys.setprofile, sys._current_frames
    stdout, stderr = sys.stdout, sys.stderr
    token = read(3, 256)
    close(3)
    sources = []
    for name in ("answer.py", "tests.py"):
        with open(name, encoding="utf-8") as f:
            sources.append((name, f.read()))
        remove(name)  # neither the answer nor the tests are left on disk to read
    pristine = copy(vars(builtins))
    namespace = {"__name__": "__main__", "__builtins__": copy(pristine)}
    passed = False
    try:
        answer, tests = sources
        run(build(answer[1], answer[0], "exec"), namespace)
        if len(frames()) > 1:
            raise RuntimeError("the answer left threads running")
        # Whatever the answer did to the builtins or the hooks is undone for the tests.
        settrace(None)
        setprofile(None)
        namespace["__builtins__"] = copy(pristine)
        run(build(tests[1], tests[0], "exec"), namespace)
        passed = True
    except base as exc:
        write(2, ("%s: %s\n" % (type(exc).__name__, exc)).encode("utf-8", "replace"))
    for stream in (stdout, stderr):
        try:
            stream.flush()
        except base:
            pass
    if passed:
        write(4, token)
    exit_now(0 if passed else 1)


_harness()
"""

_UNAVAILABLE = 97

# Only what a Python program needs to start: no keys, no proxies, no home of the user.
_CLEAN_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}


def _pids_cgroup(limit: int) -> Path | None:
    """A fresh ``pids`` cgroup capped at ``limit`` (root only), or None where none can be made."""
    if os.geteuid() != 0:
        return None  # RLIMIT_NPROC binds for other users
    for parent in (Path("/sys/fs/cgroup/pids"), Path("/sys/fs/cgroup")):
        if not (parent / "cgroup.procs").exists():
            continue
        path = parent / f"llmcompare-{os.getpid()}-{time.monotonic_ns()}"
        try:
            path.mkdir()
        except OSError:
            continue
        try:
            (path / "pids.max").write_text(str(limit))
        except OSError:
            path.rmdir()
            continue
        return path
    return None


def _remove_cgroup(path: Path) -> None:
    for _ in range(100):
        try:
            path.rmdir()
        except OSError:
            # Its last processes are still being reaped.
            time.sleep(0.01)
        else:
            return


def _binds() -> list[str]:
    """What the program's root holds, read-only: the system's libraries and this Python."""
    wanted = ["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"]
    wanted += [sys.base_prefix, sys.prefix, os.path.dirname(os.path.realpath(sys.executable))]
    kept: list[str] = []
    for path in sorted({os.path.abspath(p) for p in wanted}, key=len):
        if os.path.lexists(path) and not any(path.startswith(k + "/") for k in kept):
            kept.append(path)
    return kept


def run_python(
    code: str, *, limits: Limits | None = None, allow_network: bool = False
) -> ExecResult:
    """Run a Python program in the sandbox (see the module docstring) and say how it ended.

    Args:
        code: The program's source.
        limits: Its bounds; the defaults of :class:`Limits` when None.
        allow_network: Run even where the network cannot be denied (without namespaces, so
            also without the read-only file system). Only for a machine that is itself a
            sandbox.

    Raises:
        SandboxUnavailable: When the namespaces cannot be entered and ``allow_network`` is
            False.
    """
    result, _ = _run({"program.py": code}, b"", limits, allow_network)
    return result


def _spawn(
    config: dict[str, Any], outer: str, output: IO[bytes], limits: Limits, report_read: int
) -> tuple[int | None, bytes]:
    """Start the bootstrap, wait for it (at most the timeout), kill what is left of it.

    Returns its exit status (None after a timeout) and what was written to ``report_read``'s
    pipe (the program's descriptor 4). Closes the descriptors it hands over.
    """
    import json

    cgroup = _pids_cgroup(limits.processes)
    try:
        # A fixed command: the program is a file in the folder, never an argument.
        proc = subprocess.Popen(  # noqa: S603
            [sys.executable, "-I", "-B", "-c", _BOOTSTRAP, json.dumps(config)],
            stdin=subprocess.PIPE,
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=outer,
            env=_CLEAN_ENV,
            pass_fds=tuple(config["fds"]),
            # Its own process group (setsid in the child, no preexec_fn): one kill ends all.
            start_new_session=True,
        )
    except BaseException:
        os.close(report_read)
        raise
    finally:
        for fd in config["fds"]:
            os.close(fd)
    returncode: int | None
    try:
        if cgroup is not None:
            with contextlib.suppress(OSError):
                (cgroup / "cgroup.procs").write_text(str(proc.pid))
        assert proc.stdin is not None
        with contextlib.suppress(OSError):
            proc.stdin.write(b"g")
            proc.stdin.close()
        try:
            returncode = proc.wait(timeout=limits.timeout_s)
        except subprocess.TimeoutExpired:
            returncode = None
    finally:
        # Whatever is left of the group (a timeout, a daemon forked without namespaces).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        if cgroup is not None:
            _remove_cgroup(cgroup)
        os.set_blocking(report_read, False)
        try:
            report = os.read(report_read, 4096)
        except BlockingIOError:
            report = b""
        finally:
            os.close(report_read)
    return returncode, report


def _run(
    files: dict[str, str], token: bytes, limits: Limits | None, allow_network: bool
) -> tuple[ExecResult, bytes]:
    """Run ``program.py`` of ``files`` in the sandbox; also what it wrote to descriptor 4.

    ``token`` is what the program can read, once, from descriptor 3.
    """
    limits = limits or Limits()
    isolate = sys.platform == "linux" and not allow_network
    if not isolate and not allow_network:
        raise SandboxUnavailable(
            f"cannot deny the network on {sys.platform}: code execution needs Linux namespaces"
        )
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="llmcompare-sandbox-") as outer:
        work = Path(outer) / "work"
        work.mkdir()
        (Path(outer) / "root").mkdir()
        for name, text in files.items():
            (work / name).write_text(text, encoding="utf-8")
        token_read, token_write = os.pipe()
        report_read, report_write = os.pipe()
        os.write(token_write, token)
        os.close(token_write)
        config = {
            "work": str(work),
            "root": str(Path(outer) / "root"),
            "binds": _binds(),
            "fds": [token_read, report_write],
            "isolate": isolate,
            "python": sys.executable,
            "env": {**_CLEAN_ENV, "HOME": str(work), "TMPDIR": str(work)},
            "cpu_s": limits.cpu_s,
            "memory_mb": limits.memory_mb,
            "processes": limits.processes,
            "file_size_mb": limits.file_size_mb,
            "work_mb": limits.work_mb,
        }
        with open(Path(outer) / "output", "w+b") as output:
            returncode, report = _spawn(config, outer, output, limits, report_read)
            output.seek(0)
            text = output.read().decode("utf-8", "replace")
    duration = time.perf_counter() - start
    if returncode == _UNAVAILABLE and "SANDBOX-UNAVAILABLE" in text:
        reason = text.split("SANDBOX-UNAVAILABLE", 1)[1].strip().splitlines()[0]
        raise SandboxUnavailable(
            f"cannot deny the network to the code it runs ({reason}): allow unprivileged user "
            "namespaces (Ubuntu 24.04+: sysctl -w "
            "kernel.apparmor_restrict_unprivileged_userns=0; older Debian: sysctl -w "
            "kernel.unprivileged_userns_clone=1; in a container: a seccomp profile that allows "
            "unshare and mount), or accept running without (allow_network=True) only on a "
            "machine that is itself a sandbox"
        )
    if returncode is None:
        status: Status = "timeout"
    else:
        status = "passed" if returncode == 0 else "failed"
    keep = limits.output_chars
    result = ExecResult(
        status=status,
        returncode=returncode,
        output=text[-keep:] if keep else "",
        duration_s=duration,
        isolated=isolate,
    )
    return result, report


@functools.lru_cache(maxsize=2)
def _probe(allow_network: bool) -> str | None:
    """None when the sandbox holds on this machine; else why not."""
    if allow_network:
        return None  # nothing to verify: the caller accepted running without namespaces
    # A server of ours on the loopback interface: reachable from here, and from the program
    # only if it shares our network. Nothing leaves the machine either way.
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        probe = (
            "import socket\n"
            "try:\n"
            f"    socket.create_connection(('127.0.0.1', {port}), timeout=2).close()\n"
            "except OSError:\n"
            "    raise SystemExit(3)\n"
        )
        try:
            result = run_python(probe, limits=Limits(timeout_s=30))
        except SandboxUnavailable as exc:
            return str(exc)
    if result.returncode != 3:
        return f"the sandbox did not deny the network (probe: {result.status}, {result.output})"
    return None


def check_sandbox(*, allow_network: bool = False) -> None:
    """Check, once per process, that code can run here with the network denied.

    Raises:
        SandboxUnavailable: When it cannot (and ``allow_network`` is False); says why.
    """
    reason = _probe(allow_network)
    if reason is not None:
        raise SandboxUnavailable(reason)


class UnitTests:
    """Score 1.0 when the answer's code passes the item's tests, run in the sandbox.

    The item's ``reference`` holds the tests: Python code that raises (an ``assert``) when the
    answer is wrong. A harness runs the answer's code (see
    :func:`llmcompare.humaneval.extract_code`, which also completes a bare function body from
    the item's ``stub``), then the tests in the same namespace with the builtins as they were
    before the answer ran, and reports a pass only by writing a per-run random token to a
    descriptor the answer is not told about (see :meth:`run`). What this cannot stop, as the
    answer and the tests share one interpreter: an answer written to cheat on purpose (walking
    the stack to the harness's frame, reading the interpreter's memory, returning an object
    equal to everything).

    Running code a model wrote is OFF unless ``allow_code_execution=True``: without it,
    :meth:`check` refuses every item before anything is sent. With it, a
    :class:`CodeExecutionWarning` says what is run.

    Args:
        allow_code_execution: Opt in to running model-written code on this machine.
        limits: Bounds of each run (see :class:`Limits`).
        allow_network: Run even where the network cannot be denied (see :func:`run_python`).
        name: The name the score is reported under.
    """

    pass_at_k = True
    """Marks a pass/fail code scorer: comparisons report pass@k for it when items have samples."""

    def __init__(
        self,
        *,
        allow_code_execution: bool = False,
        limits: Limits | None = None,
        allow_network: bool = False,
        name: str = "unit_tests",
    ) -> None:
        self.name = name
        self.allow_code_execution = allow_code_execution
        self.limits = limits or Limits()
        self.allow_network = allow_network
        self._warned = False

    def check(self, item: PromptItem) -> None:
        """Refuse to score unless the user opted in, the sandbox holds and the item has tests.

        Raises:
            ConfigurationError: Code execution is off, or the item has no tests.
            SandboxUnavailable: The network cannot be denied on this machine.
        """
        if not self.allow_code_execution:
            raise ConfigurationError(
                f"item {item.id!r}: the {self.name} scorer runs code written by the models; it "
                "is off by default: opt in with allow_code_execution=True "
                "(--allow-code-execution on the command line)"
            )
        if not item.reference:
            raise ConfigurationError(
                f"item {item.id!r}: the {self.name} scorer needs the item's tests as its reference"
            )
        check_sandbox(allow_network=self.allow_network)
        if not self._warned:
            self._warned = True
            warnings.warn(
                "llmcompare will run the code the models write, with each item's tests, on this "
                f"machine: each in its own process with no network, a {self.limits.timeout_s:g} s "
                f"timeout, {self.limits.cpu_s} CPU s, {self.limits.memory_mb} MiB, "
                f"{self.limits.processes} processes, a read-only file system of only what "
                f"Python needs but for a throwaway {self.limits.work_mb} MiB folder, and no "
                "inherited environment",
                CodeExecutionWarning,
                stacklevel=2,
            )

    def program(self, completion: Completion, item: PromptItem) -> str:
        """The answer's code as it is run (then the item's tests run after it, by a harness)."""
        from llmcompare.humaneval import extract_code

        return extract_code(completion.text, stub=item.stub)

    def run(self, completion: Completion, item: PromptItem) -> ExecResult:
        """Run the answer, then the item's tests, in the sandbox; ``passed`` only when they pass.

        A pass is the harness's report, carrying a per-run random token, on a descriptor the
        answer is not told about: no exit status, output or early exit of the answer counts.
        """
        import secrets

        if not self.allow_code_execution:
            self.check(item)  # raises: never run code the user did not allow
        token = secrets.token_hex(32).encode()
        files = {
            "program.py": _HARNESS,
            "answer.py": self.program(completion, item),
            "tests.py": item.reference or "",
        }
        result, report = _run(files, token, self.limits, self.allow_network)
        if result.passed and not secrets.compare_digest(report, token):
            # Exit status 0 without the harness's report: the answer ended the run itself.
            return result.model_copy(update={"status": "failed"})
        return result

    def __call__(self, completion: Completion, item: PromptItem) -> bool | None:
        """Run the answer against the tests: True when they pass, None without tests."""
        if item.reference is None:
            return None
        return self.run(completion, item).passed
