"""``llmcompare loadtest``: a compare run that only sweeps, its sweep tables printed.

The same plan as ``compare`` (:func:`~llmcompare.cli._compare.run_command`, the same option
groups): the items are answered once (or taken from the cache), then each model is swept at
each level; nothing is scored or judged and nothing is priced offline. With ``--out`` the run
folder is written as ``compare`` writes it, so ``llmcompare report RUN_DIR`` renders it again.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import click

from llmcompare.cli._common import _fail, _settings
from llmcompare.cli._compare import (
    RunFlags,
    _CompareCommand,
    _fields,
    _levels,
    _load_options,
    _model_flags,
    _model_options,
    _sending_options,
    _source_options,
    run_command,
)

if TYPE_CHECKING:
    from llmcompare.record import Comparison
    from llmcompare.report import Format

__all__ = ["loadtest_cmd"]


@click.command("loadtest", cls=_CompareCommand)
@_source_options
@_load_options
@_model_options
@_sending_options
def loadtest_cmd(
    prompts: str | None,
    suite: str | None,
    fields: Sequence[str],
    template: str | None,
    split: str | None,
    limit: int | None,
    load: str | None,
    slo: str | None,
    config: Path | None,
    models: Sequence[str],
    options: Sequence[str],
    out_typed: str | None,
    formats: Sequence[str],
    max_tokens: int | None,
    temperature: float | None,
    seed: int | None,
    concurrency: int,
    budget_usd: Decimal | None,
    rpm: float | None,
    tpm: float | None,
    progress: bool | None,
    force_new: bool,
    cache: bool,
    refresh: bool,
) -> None:
    """Sweep each model at the --load levels of requests in flight and find its operating point.

    A compare run that only sweeps: the items are answered once, then sent again at each
    level, timed (never from the cache). For each model and level: requests/s, output
    tokens/s, latency and time to first token (p50, p95), time per output token and errors;
    --slo picks the operating point, the highest throughput that meets it.

    For example: llmcompare loadtest prompts.jsonl -m llama --load 1,4,16 --slo
    "latency_p95<=10" --out run (a served model: -m chatgpt:NAME -O base_url=URL -O hosted=h100).
    """
    from llmcompare.report._terminal import print_sweeps, terminal_console

    # Checked first, before any file is read or model loaded: a load test without levels.
    if load is None and not _file_levels(config):
        _fail("loadtest needs --load LEVELS, the levels of requests in flight (e.g. --load 1,4,16)")
    if not models and config is None:
        _fail("loadtest needs the models to sweep: -m MODEL (repeat), or -c FILE")
    console = terminal_console()

    def show(result: Comparison, out: Path | None, formats: tuple[Format, ...]) -> None:
        print_sweeps(result, console)
        if result.failed:
            console.print(f"[yellow]{result.failed} requests of the run failed[/yellow]")

    run_command(
        console,
        show,
        RunFlags(
            prompts=prompts,
            suite=suite,
            config=config,
            flags=_model_flags(models, options),
            sources={
                "fields": _fields(fields, template),
                "split": split,
                "limit": limit,
                "load": _levels(load),
                "slo": slo,
            },
            settings=_settings(max_tokens, temperature, seed),
            samples=1,
            concurrency=concurrency,
            budget_usd=budget_usd,
            rpm=rpm,
            tpm=tpm,
            out_typed=out_typed,
            formats=formats,
            only_sweeps=True,
        ),
        progress=progress,
        force_new=force_new,
        cache=cache,
        refresh=refresh,
    )


def _file_levels(config: Path | None) -> bool:
    """Whether the config file sets ``load`` (its levels then stand in for --load)."""
    if config is None:
        return False
    from llmcompare.config import load_config
    from llmcompare.errors import LLMCompareError

    try:
        return bool(load_config(config).load)
    except (LLMCompareError, OSError, ValueError) as exc:
        _fail(str(exc))
