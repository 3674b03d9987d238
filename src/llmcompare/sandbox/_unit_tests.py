"""The ``unit_tests`` scorer: the answer's code, then the item's tests, run in the sandbox."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

from llmcompare.errors import ConfigurationError, user_stacklevel
from llmcompare.sandbox._harness import HARNESS as _HARNESS
from llmcompare.sandbox._process import ExecResult, Limits, _run, check_sandbox

if TYPE_CHECKING:
    from llmcompare.prompts import PromptItem
    from llmcompare.types import Completion


class CodeExecutionWarning(UserWarning):
    """Code written by a model is about to be run on this machine (the user opted in)."""


class UnitTests:
    """Score 1.0 when the answer's code passes the item's tests, run in the sandbox.

    The item's ``reference`` holds the tests: Python code that raises (an ``assert``) when the
    answer is wrong. A harness runs the answer's code (see
    :func:`llmcompare.humaneval.extract_code`, which also completes a bare function body from
    the item's ``stub``), then the tests in the same namespace with the builtins as they were
    before the answer ran.

    A pass is not an exit status of the answer. The harness's first process holds a per-run
    random token and the descriptor a pass is reported on; no other process can read its
    memory or descriptors. It forks the process that runs the answer and the tests, which
    holds neither and reports only by its exit status: one status, drawn per run and read from
    a pipe only after the tests returned. So an early exit (``sys.exit(0)``, ``os._exit(0)``,
    an ``atexit`` hook, a thread) or a token found by walking up the stack scores 0.

    The rule for comparisons: the tests' comparisons (``==``, ``!=``, ``<``, ``<=``, ``>``,
    ``>=``, ``in``, ``not in``) and the values their asserts test must be plain values: None,
    bool, int, float, complex, str, bytes, range and lists, tuples, sets, frozensets and dicts
    of them (those exact types: a subclass may redefine its comparisons). A comparison whose
    sides hold other types passes only when both sides hold the same ones (the test expects
    that type, e.g. ``Fraction``); else the tests fail. So an object equal to everything, or
    always true, scores 0, and so does a right answer of another type than the test expects
    (a ``numpy.int64`` or a ``Counter`` where the test compares with an ``int`` or a
    ``dict``).

    What this cannot stop: the answer and the tests share one interpreter, so an answer written
    against this harness on purpose (one that does what the harness does once the tests pass:
    reads the pass status from the harness's pipe and exits with it) can still fake a pass.

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
                stacklevel=user_stacklevel(),
            )

    def program(self, completion: Completion, item: PromptItem) -> str:
        """The answer's code as it is run (then the item's tests run after it, by a harness)."""
        from llmcompare.humaneval import extract_code

        return extract_code(completion.text, stub=item.stub)

    def run(self, completion: Completion, item: PromptItem) -> ExecResult:
        """Run the answer, then the item's tests, in the sandbox; ``passed`` only when they pass.

        A pass is the harness's report, carrying a per-run random token, on a descriptor that
        only the harness's first process holds: no exit status, output or early exit of the
        answer counts.
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
