"""``llmcompare generate``, ``models`` and ``plugins``: one answer, and what is installed."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from llmcompare.cli._common import EXIT_FAILURES, _fail, _settings
from llmcompare.errors import ConfigurationError, LLMCompareError

if TYPE_CHECKING:
    from llmcompare.cost import Cost


@click.command("generate")
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


@click.command("models")
def models_cmd() -> None:
    """List the registered models."""
    from llmcompare.plugins import list_models

    for entry in list_models():
        aliases = f" (aliases: {', '.join(entry.aliases)})" if entry.aliases else ""
        click.echo(f"{entry.name:<12} {entry.description}{aliases}  [plugin {entry.plugin}]")


@click.command("plugins")
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
