"""``llmcompare loadtest``: a compare run that only sweeps, its sweep tables printed.

The same plan as ``compare`` (:func:`~llmcompare.cli._compare.run_command`, the same option
groups): the items are answered once (or taken from the cache), then each model is swept at
each level; nothing is scored or judged and nothing is priced offline. With ``--out`` the run
folder is written as ``compare`` writes it, so ``llmcompare report RUN_DIR`` renders it again.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

import click

from llmcompare.cli._common import _fail
from llmcompare.cli._compare import (
    RunFlags,
    _CompareCommand,
    _load_options,
    _model_options,
    _sending_options,
    _source_options,
    run_command,
    with_run_flags,
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
@with_run_flags
def loadtest_cmd(flags: RunFlags) -> None:
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
    if flags.load is None and not _file_levels(flags.config):
        _fail("loadtest needs --load LEVELS, the levels of requests in flight (e.g. --load 1,4,16)")
    if not flags.models and flags.config is None:
        _fail("loadtest needs the models to sweep: -m MODEL (repeat), or -c FILE")
    console = terminal_console()

    def show(result: Comparison, out: Path | None, formats: tuple[Format, ...]) -> None:
        print_sweeps(result, console)
        if result.failed:
            console.print(f"[yellow]{result.failed} requests of the run failed[/yellow]")

    run_command(console, show, dataclasses.replace(flags, only_sweeps=True))


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
