"""``llmcompare rejudge`` and ``judge-audit``, and the ``--judge`` flags ``compare`` shares."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from llmcompare.cli._common import (
    EXIT_INTERRUPTED,
    _fail,
    _format_option,
    _formats,
    _rate_limit_options,
    _run_dir_argument,
    _write_reports,
)
from llmcompare.errors import ConfigurationError, LLMCompareError

if TYPE_CHECKING:
    from llmcompare.cost import Budget
    from llmcompare.judges import Judge, JudgePanel
    from llmcompare.ratelimit import RateLimits

_F = TypeVar("_F", bound=Callable[..., Any])


def judge_options(*, required: bool = False) -> Callable[[_F], _F]:
    """``--judge`` (repeatable: a panel), ``--judge-mode`` and ``--judge-rubric``."""

    def add(f: _F) -> _F:
        f = click.option(
            "--judge-rubric",
            type=click.Path(dir_okay=False, exists=True, path_type=Path),
            help="A text file with the judge's rubric (what it should value).",
        )(f)
        f = click.option(
            "--judge-mode",
            type=click.Choice(["pairwise", "pointwise"]),
            help="pairwise: two answers side by side, both orders (default); pointwise: a grade.",
        )(f)
        return click.option(
            "--judge",
            "judges",
            multiple=True,
            required=required,
            metavar="[LABEL=]NAME",
            help="A judge model (chatgpt:gpt-5.4, llama, ...); repeat for a panel.",
        )(f)

    return add


def _judge(
    names: Sequence[str], mode: str | None, rubric: Path | None, *, swap: bool = True
) -> tuple[Judge | JudgePanel, dict[str, RateLimits]]:
    """The judge the flags name, built, with its models' own limits; exit 2 if it cannot be."""
    from llmcompare.config import CompareConfig, build_judge, judge_from_flags
    from llmcompare.config._judge import judge_limits

    try:
        config = judge_from_flags(names, mode, rubric, None)
        if config is not None and not swap:
            config = config.model_copy(update={"swap": False})
        whole = CompareConfig(judge=config)
        judge = build_judge(whole)
        # build_judge leaves its models' rpm / tpm to the caller (compare's limits=).
        limits = judge_limits(whole, {}, ())
    except (LLMCompareError, LookupError, ValueError) as exc:
        _fail(str(exc))
    assert judge is not None  # --judge is required here
    return judge, limits


def _close(judge: Judge | JudgePanel) -> None:
    for one in judge.judges:
        one.model.close()


def _sending_options(f: _F) -> _F:
    """How the judge's requests are sent: budget, concurrency, rate limits, cache, progress."""
    for option in reversed(
        [
            click.option(
                "--budget-usd", type=click.FloatRange(min=0), help="Most dollars the judge spends."
            ),
            click.option("--concurrency", default=8, show_default=True, type=click.IntRange(min=1)),
            *_rate_limit_options("judge model"),
            click.option(
                "--cache/--no-cache", default=True, show_default=True, help="Reuse cached replies."
            ),
            click.option(
                "--progress/--no-progress", default=None, help="Progress bar (default: on a TTY)."
            ),
        ]
    ):
        f = option(f)
    return f


def _budget(usd: float | None) -> Budget | None:
    from llmcompare.cost import Budget

    return None if usd is None else Budget(max_usd=Decimal(str(usd)))


@click.command("rejudge")
@_run_dir_argument()
@judge_options(required=True)
@_sending_options
@click.option("--refresh", is_flag=True, help="Ask the judge again, even when cached.")
@_format_option("Reports to write after judging (default: json, csv, html).")
def rejudge_cmd(
    run_dir: Path,
    judges: Sequence[str],
    judge_mode: str | None,
    judge_rubric: Path | None,
    budget_usd: float | None,
    concurrency: int,
    rpm: float | None,
    tpm: float | None,
    cache: bool,
    progress: bool | None,
    refresh: bool,
    formats: Sequence[str],
) -> None:
    """Judge the answers saved in RUN_DIR again; no compared model is asked anything.

    The judge's replies are kept in RUN_DIR/judgments.jsonl as they arrive (run the same
    command again to resume), and the record and the reports are written again with the new
    verdicts.
    """
    from llmcompare.cli._saved import _load_run
    from llmcompare.report import print_report
    from llmcompare.report._terminal import terminal_console

    console = terminal_console()
    chosen = _formats(formats)
    record = _load_run(run_dir)
    judge, limits = _judge(judges, judge_mode, judge_rubric)
    try:
        judged = record.rejudge(
            judge,
            out=run_dir,
            cache=cache,
            budget=_budget(budget_usd),
            concurrency=concurrency,
            rpm=rpm,
            tpm=tpm,
            limits=limits,
            progress=progress,
            refresh=refresh,
        )
    except (ConfigurationError, ValueError) as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        click.echo(f"llmcompare: interrupted; run the same command to resume ({run_dir})", err=True)
        raise SystemExit(EXIT_INTERRUPTED) from None
    finally:
        _close(judge)
    print_report(judged, console)
    _write_reports(judged, run_dir, chosen, console)


@click.command("judge-audit")
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@judge_options(required=True)
@click.option("--swap/--no-swap", default=True, show_default=True, help="Ask both orders.")
@click.option(
    "--self-consistency/--no-self-consistency",
    default=True,
    show_default=True,
    help="Ask each pair once more, to see whether the judge repeats itself.",
)
@_sending_options
def judge_audit_cmd(
    file: Path,
    judges: Sequence[str],
    judge_mode: str | None,
    judge_rubric: Path | None,
    swap: bool,
    self_consistency: bool,
    budget_usd: float | None,
    concurrency: int,
    rpm: float | None,
    tpm: float | None,
    cache: bool,
    progress: bool | None,
) -> None:
    """Check a judge against people: its verdicts on FILE's labelled pairs against theirs.

    FILE is JSONL, one human vote a line: question, answer_a, answer_b and human ("a", "b" or
    "tie"). Prints the agreement with and without ties, Cohen's kappa with its interval, the
    position and self-consistency, and the judge's cost.
    """
    from llmcompare.judges import JudgePanel, PairwiseJudge, audit

    if judge_mode == "pointwise":
        _fail("judge-audit compares pairwise verdicts: leave out --judge-mode pointwise")
    judge, _ = _judge(judges, judge_mode, judge_rubric, swap=swap)  # --judge sets no limits
    assert isinstance(judge, (PairwiseJudge, JudgePanel))  # pairwise: checked above
    try:
        found = audit(
            judge,
            file,
            self_consistency=self_consistency,
            cache=cache,
            budget=_budget(budget_usd),
            concurrency=concurrency,
            rpm=rpm,
            tpm=tpm,
            progress=progress,
        )
    except (ConfigurationError, ValueError) as exc:
        _fail(str(exc))
    finally:
        _close(judge)
    for line in found.lines():
        click.echo(line)
