"""``llmcompare report`` and ``rescore``: a saved run folder, rendered or scored again."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from llmcompare.cli._common import (
    _fail,
    _format_option,
    _formats,
    _full_answers,
    _run_dir_argument,
    _write_reports,
)
from llmcompare.errors import ConfigurationError

if TYPE_CHECKING:
    from llmcompare.record import Comparison


def _load_run(run_dir: Path) -> Comparison:
    from pydantic import ValidationError

    from llmcompare.record import Comparison

    record = run_dir / "comparison.json"
    if not record.is_file():
        _fail(
            f"{run_dir} has no comparison.json: not a finished run folder (run `llmcompare "
            "compare --out` on it again to finish it)"
        )
    try:
        return Comparison.load(record)
    except (OSError, ValueError, ValidationError) as exc:
        _fail(f"{record} cannot be read: {str(exc).splitlines()[0]}")


@click.command("report")
@_run_dir_argument()
@_format_option("Formats to write (default: csv, html).")
@click.option("--print/--no-print", "show", default=True, help="Also print the tables.")
def report_cmd(run_dir: Path, formats: Sequence[str], show: bool) -> None:
    """Render the reports of a saved run in RUN_DIR again, from its comparison.json.

    Nothing is sent and nothing is re-scored: the record is read and rendered.
    """
    from llmcompare.report import print_report
    from llmcompare.report._terminal import terminal_console

    console = terminal_console()
    chosen = _formats(formats or ("csv", "html"))
    result = _load_run(run_dir)
    if show:
        print_report(result, console, full_answers=_full_answers(run_dir, chosen))
    _write_reports(result, run_dir, chosen, console)


@click.command("rescore")
@_run_dir_argument()
@click.option(
    "-s",
    "--scorer",
    "scorers",
    multiple=True,
    help="A scorer name (contains, exact, regex, numeric, json, max_words:N, "
    "max_chars:N); repeat for more.",
)
@click.option(
    "--replace",
    is_flag=True,
    help="Use only these scorers (default: each item's own scorers run too).",
)
@_format_option("Reports to write after rescoring (default: json, csv, html).")
@click.option(
    "--allow-code-execution",
    is_flag=True,
    help="Let code scorers (unit_tests) run the saved answers' code, sandboxed.",
)
def rescore_cmd(
    run_dir: Path,
    scorers: Sequence[str],
    replace: bool,
    formats: Sequence[str],
    allow_code_execution: bool,
) -> None:
    """Score the answers saved in RUN_DIR again with other scorers; nothing is sent.

    The record (comparison.json) and the reports are written again with the new scores,
    summaries and pairwise differences.
    """
    from llmcompare.report import print_report
    from llmcompare.report._terminal import terminal_console
    from llmcompare.scorers import scorer_from_name

    console = terminal_console()
    chosen = _formats(formats)
    result = _load_run(run_dir)
    try:
        built = [
            scorer_from_name(name, allow_code_execution=allow_code_execution) for name in scorers
        ]
        rescored = result.rescore(built, replace=replace, allow_code_execution=allow_code_execution)
    except ConfigurationError as exc:
        _fail(exc.message)
    print_report(rescored, console, full_answers=_full_answers(run_dir, chosen))
    _write_reports(rescored, run_dir, chosen, console)
