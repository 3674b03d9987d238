"""The ``llmcompare`` command (also ``python -m llmcompare``).

Commands:
    compare   Run a prompt set on several models and report side by side.
    loadtest  Sweep models at levels of requests in flight; each one's operating point.
    generate  Stream one answer from one model, then its usage and cost.
    models    List the registered models.
    prices    Show a model's prices, tier by tier, and where each comes from.
    plugins   List the plugins found, their models, and why any failed to load.
    cache     Show (``cache info``) or empty (``cache clear``) the response cache.
    report    Render the reports of a saved run again (any format), from its record.
    rescore   Score a saved run's answers again with other scorers; nothing is sent.
    rejudge   Judge a saved run's answers again with another judge; no compared model is asked.
    judge-audit  Check a judge against human labels on pairs (agreement, Cohen's kappa).

Exit codes: 0 success, 1 some requests failed, 2 usage error (bad option, bad prompt file,
unknown model, missing configuration), 3 the disk is full (free space; an --out run resumes),
130 interrupted (Ctrl-C; an --out run resumes).

Warnings (Python's and llmcompare's log warnings) are printed once each, as one
``llmcompare: warning: ...`` line.

Each group of commands lives in its own private module: ``_compare``, ``_loadtest`` (over
``_compare``'s plumbing), ``_models`` (generate,
models, plugins), ``_cache``, ``_saved`` (report, rescore) and ``_judge`` (rejudge,
judge-audit, the ``--judge`` flags), over ``_common``.
"""

from __future__ import annotations

import click

from llmcompare.cli._cache import cache_group
from llmcompare.cli._common import _warnings_as_lines
from llmcompare.cli._compare import compare_cmd, default_models
from llmcompare.cli._judge import judge_audit_cmd, rejudge_cmd
from llmcompare.cli._loadtest import loadtest_cmd
from llmcompare.cli._models import generate_cmd, models_cmd, plugins_cmd
from llmcompare.cli._prices import prices_cmd
from llmcompare.cli._saved import report_cmd, rescore_cmd

__all__ = ["default_models", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="llmcompare")
def main() -> None:
    """Compare open models you run yourself with closed ones behind an API."""
    click.get_current_context().with_resource(_warnings_as_lines())


for _command in (
    compare_cmd,
    loadtest_cmd,
    generate_cmd,
    models_cmd,
    plugins_cmd,
    prices_cmd,
    cache_group,
    report_cmd,
    rescore_cmd,
    rejudge_cmd,
    judge_audit_cmd,
):
    main.add_command(_command)
