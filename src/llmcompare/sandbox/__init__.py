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
* every process it started killed at the end (the PID namespace dies with its first process);
* nothing left behind when the caller is killed (SIGTERM, SIGKILL, the OOM killer): the
  sandbox's first process dies with its parent (a death signal), ending the program and
  removing its folder, and ends the program itself shortly after the timeout (an alarm of its
  own), should its parent be stopped or hung.

As root, where the kernel does not apply the process-count limit, the program runs as the
unprivileged uid 65534 ("nobody"), mapped into its user namespace, so that the limit binds
(without namespaces, ``allow_network=True``: under real uid 65534, with root's access to the
host's files but no capabilities). Where that uid cannot be mapped, :class:`SandboxUnavailable`
says so and how to fix it; code never runs with a limit that does not bind.

:func:`check_sandbox` verifies that the isolation holds on this machine (once per process) and
raises :class:`SandboxUnavailable` when the network cannot be denied; code then runs only if
the caller explicitly accepts that (``allow_network=True``).

:class:`UnitTests` is the scorer built on it (``"unit_tests"``, alias ``"pass"``): the answer's
code, then the item's tests, run in a process of their own, forked by a harness that alone
reports a pass on a private channel with a per-run token, so no exit status, output or early
exit of the answer counts as a pass, and the tests' comparisons accept only plain values (or
the same types on both sides), so no object equal to everything does either. It is off unless
the user opts in with ``allow_code_execution=True``.
"""

from llmcompare.sandbox._process import (
    ExecResult,
    Limits,
    SandboxUnavailable,
    check_sandbox,
    run_python,
)
from llmcompare.sandbox._unit_tests import CodeExecutionWarning, UnitTests

__all__ = [
    "CodeExecutionWarning",
    "ExecResult",
    "Limits",
    "SandboxUnavailable",
    "UnitTests",
    "check_sandbox",
    "run_python",
]
