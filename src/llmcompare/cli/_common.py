"""What every command shares: exit codes, the one-line usage error, settings and report formats."""

from __future__ import annotations

import contextlib
import errno
import logging
import shlex
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar, cast

import click

from llmcompare.errors import LLMCompareError

if TYPE_CHECKING:
    from rich.console import Console

    from llmcompare.record import Comparison
    from llmcompare.report import Format

_F = TypeVar("_F", bound=Callable[..., Any])

EXIT_OK, EXIT_FAILURES, EXIT_USAGE = 0, 1, 2

EXIT_DISK_FULL = 3
"""The exit code when the disk (a quota, the file size limit) is full: what was written is kept."""

EXIT_INTERRUPTED = 130
"""The exit code after Ctrl-C (128 + SIGINT), as shells report it."""

# A write that failed for want of room: free some, and the same command goes on.
_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})

_FORMAT_CHOICE = click.Choice(["json", "csv", "html", "png", "svg"])


def _format_option(help_text: str) -> Callable[[_F], _F]:
    """The ``-f/--format`` option (repeatable) of the commands that write reports."""
    return click.option(
        "-f", "--format", "formats", multiple=True, type=_FORMAT_CHOICE, help=help_text
    )


def _rate_limit_options(who: str) -> list[Callable[[_F], _F]]:
    """The ``--rpm`` and ``--tpm`` options, limits for each of ``who`` (models, judge models)."""
    rate = click.FloatRange(min=0, min_open=True)
    return [
        click.option("--rpm", type=rate, help=f"Requests per minute, at most, for each {who}."),
        click.option(
            "--tpm",
            type=rate,
            help=f"Tokens per minute (input plus output), at most, for each {who}.",
        ),
    ]


def _run_dir_argument() -> Callable[[_F], _F]:
    """The ``RUN_DIR`` argument of the commands that read a saved run."""
    return click.argument("run_dir", type=click.Path(file_okay=False, exists=True, path_type=Path))


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: object = None,
    line: str | None = None,
) -> None:
    """A warning as the command prints it: one line, without the source line."""
    click.echo(f"llmcompare: warning: {message}", err=True)


class _LogLines(logging.Handler):
    """llmcompare's log warnings (a damaged line skipped, a long rate-limit wait) as lines."""

    def emit(self, record: logging.LogRecord) -> None:
        """Print the record as ``llmcompare: warning: ...`` (or ``error``)."""
        kind = "error" if record.levelno >= logging.ERROR else "warning"
        click.echo(f"llmcompare: {kind}: {record.getMessage()}", err=True)


@contextlib.contextmanager
def _warnings_as_lines() -> Iterator[None]:
    """While a command runs: each warning once, as an ``llmcompare: warning: ...`` line.

    A terminal user needs what went wrong, once, not the file and source line inside
    llmcompare (or click) that a Python warning shows by default. Warning options given to
    Python (``-W``, ``PYTHONWARNINGS``) are the user's own choice and stand.
    """
    logger = logging.getLogger("llmcompare")
    handler = _LogLines(logging.WARNING)
    with warnings.catch_warnings():
        if not sys.warnoptions:
            warnings.simplefilter("once")
        warnings.showwarning = _show_warning
        logger.addHandler(handler)
        try:
            yield
        finally:
            logger.removeHandler(handler)


def _settings(
    max_tokens: int | None, temperature: float | None, seed: int | None
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if max_tokens is not None:
        out["max_tokens"] = max_tokens
    if temperature is not None:
        out["temperature"] = temperature
    if seed is not None:
        out["seed"] = seed
    return out


def _fail(message: str) -> NoReturn:
    # One line per problem, each marked: a config with two mistakes lists both.
    for line in message.splitlines() or [""]:
        click.echo(f"llmcompare: error: {line}", err=True)
    sys.exit(EXIT_USAGE)


def _resume_command() -> str:
    """The command line that was run, as a shell takes it: the same command resumes an --out run."""
    return shlex.join(["llmcompare", *sys.argv[1:]])


def _os_error(exc: OSError, out: Path | None) -> NoReturn:
    """Stop on a file that could not be written or read: one line (and the resume command).

    A full disk exits with :data:`EXIT_DISK_FULL`; any other (a folder where a file should be,
    no permission) is a usage error.
    """
    what = exc.strerror or type(exc).__name__
    where = f"{what}: {exc.filename}" if exc.filename else what
    if exc.errno not in _FULL:
        _fail(where)
    if out is None:
        saved = "nothing was saved (with --out DIR a run can be resumed)"
        click.echo(f"llmcompare: error: the disk is full ({where}); {saved}", err=True)
    else:
        click.echo(
            f"llmcompare: error: the disk is full ({where}); what was written is in {out}. "
            f"Free some space, then resume with:\n  {_resume_command()}",
            err=True,
        )
    sys.exit(EXIT_DISK_FULL)


def _formats(formats: Sequence[str]) -> tuple[Format, ...]:
    """The report formats to write, checked before anything is sent."""
    chosen = cast("tuple[Format, ...]", tuple(formats) or ("json", "csv", "html"))
    if {"png", "svg"} & set(chosen):
        import importlib.util

        if importlib.util.find_spec("matplotlib") is None:
            _fail(
                "--format png/svg draws charts with matplotlib, which is not installed: "
                "pip install 'llmcompare[report]' (nothing was sent)"
            )
    if "html" in chosen:
        import importlib.util

        if importlib.util.find_spec("jinja2") is None:
            if formats:
                _fail(
                    "--format html renders templates with Jinja2, which is not installed: "
                    "pip install 'llmcompare[report]' (nothing was sent)"
                )
            # The default formats: the record and the CSVs are still written.
            click.echo(
                "llmcompare: note: no report.html without Jinja2: pip install 'llmcompare[report]'",
                err=True,
            )
            chosen = tuple(f for f in chosen if f != "html")
    return chosen


def _full_answers(out: Path | None, formats: Sequence[Format]) -> str:
    """Where every answer is, for the line under the terminal report's sample of them."""
    if out is None:
        return "with --out DIR every answer is kept in a file"
    # The file that shows every answer best, among those written.
    name = next(
        (f for fmt, f in (("csv", "comparison.csv"), ("html", "report.html")) if fmt in formats),
        "comparison.json",
    )
    return f"every answer is in {out / name}"


def _write_reports(
    result: Comparison, out: Path, formats: Sequence[Format], console: Console
) -> None:
    """Write each format; one that fails says so in one line and the others are still written."""
    from llmcompare.report import write_report

    failed = full = False
    # The record first: comparison.json is what every other format is made from.
    for fmt in sorted(formats, key=lambda f: f != "json"):
        try:
            for path in write_report(result, out, [fmt]):
                console.print(f"wrote {path}")
        except (OSError, LLMCompareError) as exc:
            failed = True
            full = full or (isinstance(exc, OSError) and exc.errno in _FULL)
            click.echo(f"llmcompare: error: could not write the {fmt} report: {exc}", err=True)
    if full:
        click.echo(f"Free some space, then run the same command:\n  {_resume_command()}", err=True)
        sys.exit(EXIT_DISK_FULL)
    if failed:
        sys.exit(EXIT_USAGE)
