"""Run a program in the sandbox: the bootstrap's process, its limits, the result."""

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
from pathlib import Path
from typing import IO, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from llmcompare.errors import LLMCompareError
from llmcompare.sandbox._bootstrap import BOOTSTRAP as _BOOTSTRAP


class SandboxUnavailable(LLMCompareError):
    """The sandbox cannot deny the program the network (or cannot start) on this machine."""


class Limits(BaseModel):
    """Bounds on one run of a program.

    Attributes:
        timeout_s: Wall-clock seconds before the whole process tree is killed (by this
            process; the sandbox's own process also ends the program two seconds later,
            should this process be stopped).
        cpu_s: CPU seconds (``RLIMIT_CPU``).
        memory_mb: Address space in MiB (``RLIMIT_AS``).
        processes: Processes at once (``RLIMIT_NPROC``; as root, which it does not bind,
            the program runs as the unprivileged uid 65534, "nobody").
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


_UNAVAILABLE = 97
_EXPIRED = 98  # the bootstrap ended the program at its own alarm

# Who runs the program when llmcompare runs as root: RLIMIT_NPROC does not bind root, so the
# process limit would not hold. 65534 is "nobody" on every common distribution.
_UNPRIVILEGED = 65534

# The bootstrap ends the program itself this long after the timeout, should its parent not
# (stopped or hung): later than the parent's own kill, so a timeout still reads as one.
_ALARM_GRACE_S = 2.0

# Only what a Python program needs to start: no keys, no proxies, no home of the user.
_CLEAN_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}


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

    try:
        # A fixed command: the program is a file in the folder, never an argument.
        proc = subprocess.Popen(  # noqa: S603
            [sys.executable, "-I", "-B", "-c", _BOOTSTRAP, json.dumps(config)],
            stdin=subprocess.DEVNULL,
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
        returncode = proc.wait(timeout=limits.timeout_s)
    except subprocess.TimeoutExpired:
        returncode = None
    finally:
        # Whatever is left of the group (a timeout, a daemon forked without namespaces).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
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
    # The bootstrap removes the folder itself should this process die (SIGTERM, SIGKILL): then
    # it may be gone when this process comes to remove it.
    with tempfile.TemporaryDirectory(
        prefix="llmcompare-sandbox-", ignore_cleanup_errors=True
    ) as outer:
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
            "outer": outer,
            "parent": os.getpid(),
            "uid": _UNPRIVILEGED if os.geteuid() == 0 else None,
            "alarm_s": limits.timeout_s + _ALARM_GRACE_S,
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
        if reason.startswith(f"uid {_UNPRIVILEGED} "):
            raise SandboxUnavailable(
                f"cannot bound the processes of the code it runs ({reason}): as root it runs "
                f"that code as uid {_UNPRIVILEGED}, so that the process limit binds, which "
                "needs CAP_SETUID, CAP_SETGID and CAP_SETFCAP and this Python readable by "
                "all users; or run llmcompare as a user other than root"
            )
        raise SandboxUnavailable(
            f"cannot deny the network to the code it runs ({reason}): allow unprivileged user "
            "namespaces (Ubuntu 24.04+: sysctl -w "
            "kernel.apparmor_restrict_unprivileged_userns=0; older Debian: sysctl -w "
            "kernel.unprivileged_userns_clone=1; in a container: a seccomp profile that allows "
            "unshare and mount), or accept running without (allow_network=True) only on a "
            "machine that is itself a sandbox"
        )
    if returncode == _EXPIRED and duration >= limits.timeout_s:
        returncode = None  # a timeout, seen by the bootstrap while this process was stopped
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
