"""The ``llmcompare`` command (also ``python -m llmcompare``).

Commands:
    compare   Run a prompt set on several models and report side by side.
    generate  Stream one answer from one model, then its usage and cost.
    models    List the registered models.
    plugins   List the plugins found, their models, and why any failed to load.

Exit codes: 0 success, 1 some requests failed, 2 usage error (bad option, bad prompt file,
unknown model, missing configuration).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from llmcompare.errors import ConfigurationError, LLMCompareError

if TYPE_CHECKING:
    from llmcompare.cost import Cost

__all__ = ["default_models", "main"]

EXIT_OK, EXIT_FAILURES, EXIT_USAGE = 0, 1, 2


def default_models() -> tuple[list[str], list[str]]:
    """The models a bare ``llmcompare compare`` runs, and hints for those it cannot.

    Returns:
        ``(model names, hint lines)``: the embedded Llama always; ChatGPT when
        ``OPENAI_API_KEY`` or ``OPENAI_BASE_URL`` is set, otherwise a line saying how to add it.
    """
    names = ["llama"]
    hints = []
    if os.environ.get("OPENAI_API_KEY") or os.environ.get("OPENAI_BASE_URL"):
        names.append("chatgpt")
    else:
        hints.append(
            "chatgpt: not configured; set OPENAI_API_KEY (or OPENAI_BASE_URL for an "
            "OpenAI-compatible server) to include it"
        )
    return names, hints


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


def _fail(message: str) -> None:
    click.echo(f"llmcompare: error: {message}", err=True)
    sys.exit(EXIT_USAGE)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="llmcompare")
def main() -> None:
    """Compare open models you run yourself with closed ones behind an API."""


@main.command("compare")
@click.argument("prompts", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("-m", "--model", "models", multiple=True, help="Model name; repeat for more.")
@click.option(
    "-o", "--out", type=click.Path(file_okay=False, path_type=Path), help="Report folder."
)
@click.option(
    "-f",
    "--format",
    "formats",
    multiple=True,
    type=click.Choice(["json", "csv", "html", "png", "svg"]),
    help="Report formats to write with --out (default: json, csv, html).",
)
@click.option("--max-tokens", type=click.IntRange(min=1), help="Token limit per answer.")
@click.option("--temperature", type=click.FloatRange(0, 2), help="Sampling temperature.")
@click.option("--seed", type=int, help="Sampling seed.")
@click.option("--concurrency", default=8, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--samples",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Run each item this many times per model (sample s gets seed base + s).",
)
@click.option("--budget-usd", type=Decimal, help="Refuse requests beyond this many dollars.")
@click.option(
    "--rpm",
    type=click.FloatRange(min=0, min_open=True),
    help="Requests per minute, at most, for each model.",
)
@click.option(
    "--tpm",
    type=click.FloatRange(min=0, min_open=True),
    help="Tokens per minute (input plus output), at most, for each model.",
)
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: on a TTY).")
def compare_cmd(
    prompts: Path | None,
    models: Sequence[str],
    out: Path | None,
    formats: Sequence[str],
    max_tokens: int | None,
    temperature: float | None,
    seed: int | None,
    concurrency: int,
    samples: int,
    budget_usd: Decimal | None,
    rpm: float | None,
    tpm: float | None,
    progress: bool | None,
) -> None:
    """Run PROMPTS (JSONL, CSV or YAML; default: the built-in suite) on every model."""
    from rich.console import Console

    from llmcompare.comparison import compare
    from llmcompare.cost import Budget
    from llmcompare.plugins import get_model
    from llmcompare.prompts import builtin_suite, load_prompts
    from llmcompare.report import print_report, write_report

    console = Console()
    names = list(models)
    if not names:
        names, hints = default_models()
        for hint in hints:
            console.print(f"[yellow]{hint}[/yellow]")
    try:
        items = load_prompts(prompts) if prompts is not None else builtin_suite()
        built = [get_model(n) for n in names]
    except (LLMCompareError, LookupError, ValueError) as exc:
        _fail(str(exc))
    settings = _settings(max_tokens, temperature, seed)
    budget = Budget(max_usd=budget_usd) if budget_usd is not None else None
    try:
        result = compare(
            built,
            items,
            concurrency=concurrency,
            samples=samples,
            rpm=rpm,
            tpm=tpm,
            budget=budget,
            progress=progress,
            **settings,
        )
    except (ConfigurationError, ValueError) as exc:
        _fail(str(exc))
    finally:
        for model in built:
            model.close()
    print_report(result, console)
    if out is not None:
        for path in write_report(result, out, formats or ("json", "csv", "html")):  # type: ignore[arg-type]
            console.print(f"wrote {path}")
    sys.exit(EXIT_FAILURES if result.failed else EXIT_OK)


@main.command("generate")
@click.argument("model")
@click.argument("prompt")
@click.option("--max-tokens", type=click.IntRange(min=1), help="Token limit.")
@click.option("--temperature", type=click.FloatRange(0, 2), help="Sampling temperature.")
@click.option("--seed", type=int, help="Sampling seed.")
@click.option("--system", help="A system message to put first.")
def generate_cmd(
    model: str,
    prompt: str,
    max_tokens: int | None,
    temperature: float | None,
    seed: int | None,
    system: str | None,
) -> None:
    """Stream MODEL's answer to PROMPT, then its usage and cost."""
    from llmcompare.cost import cost_of
    from llmcompare.plugins import get_model
    from llmcompare.types import Message

    try:
        m = get_model(model)
    except (LLMCompareError, LookupError, ValueError) as exc:
        _fail(str(exc))
    messages = ([Message.system(system)] if system else []) + [Message.user(prompt)]
    try:
        m.warm_up()  # loading weights is not answering: keep it out of the timings shown
        with m, m.stream(messages, **_settings(max_tokens, temperature, seed)) as stream:
            for chunk in stream:
                click.echo(chunk.text, nl=False)
            completion = stream.completion
    except (ConfigurationError, ImportError, ValueError) as exc:
        # Missing setup (a key, the model package, an extra) or a bad setting: a usage error.
        _fail(str(exc))
    except LLMCompareError as exc:
        click.echo(f"\nllmcompare: {exc}", err=True)
        sys.exit(EXIT_FAILURES)
    click.echo()
    u = completion.usage
    cost = cost_of(completion)
    est = " (estimated)" if u.estimated else ""
    click.echo(
        f"[{completion.model}] {u.input_tokens} in / {u.output_tokens} out tokens{est}, "
        f"{completion.latency_s:.2f} s, first token {completion.ttft_s or 0:.2f} s, "
        f"cost: {_describe(cost)}",
        err=True,
    )


def _describe(cost: Cost) -> str:
    if cost.status == "unpriced":
        return "unpriced (no price known for this model; see llmcompare.cost.register_price)"
    energy = f", {cost.kwh:.6f} kWh, {cost.g_co2:.3f} gCO2" if cost.kwh is not None else ""
    mark = "~" if cost.status == "estimated" else ""
    return f"{mark}${cost.usd:.6f} ({cost.status}){energy}"


@main.command("models")
def models_cmd() -> None:
    """List the registered models."""
    from llmcompare.plugins import list_models

    for entry in list_models():
        aliases = f" (aliases: {', '.join(entry.aliases)})" if entry.aliases else ""
        click.echo(f"{entry.name:<12} {entry.description}{aliases}  [plugin {entry.plugin}]")


@main.command("plugins")
def plugins_cmd() -> None:
    """List the plugins found, their models, and why any failed to load."""
    import warnings

    from llmcompare.plugins import list_plugins

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # failures are listed below, not warned twice
        plugins = list_plugins()
    for p in plugins:
        origin = f"{p.distribution or '?'} {p.version or ''}".strip()
        kind = "built-in" if p.builtin else "third-party"
        status = f"ERROR {p.error}" if p.error else "models: " + (", ".join(p.models) or "none")
        click.echo(f"{p.name:<12} {origin:<32} {kind:<12} {status}")
