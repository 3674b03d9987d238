"""The first steps of a comparison: its inputs checked, and its models built from their names.

Everything here runs before any model is asked anything: a typo in a scorer, a prompt file or
an option costs nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmcompare.errors import ConfigurationError, LLMCompareError
from llmcompare.model import Model
from llmcompare.plugins import get_model
from llmcompare.prompts import PROMPT_FILE_SUFFIXES, PromptItem, builtin_suite, load_prompts
from llmcompare.record import _aggregate
from llmcompare.scorers import Scorer, check_item
from llmcompare.types import Settings

__all__ = [
    "DEFAULT_SETTINGS",
    "Inputs",
    "Models",
    "build_models",
    "check_inputs",
    "pass_at_ks",
]

DEFAULT_SETTINGS: Settings = {"temperature": 0.0, "max_tokens": 256}
"""Settings used when a comparison is given none: greedy, so reruns give the same answers."""

Models = Sequence[Model | str] | Mapping[str, Model | str]
"""Models to compare: a list (each named by its id) or a mapping from a label to a model."""

Prompts = Iterable[PromptItem | str | Mapping[str, Any]] | str | Path | Any | None
"""Prompts as :func:`~llmcompare.compare` takes them (items, strings, a file, a source...)."""


@dataclass(frozen=True)
class Inputs:
    """A comparison's inputs, checked: what is asked, with which settings, and how it is scored.

    Attributes:
        items: The items, their ids unique.
        settings: The settings shared by every model, the defaults included.
        scorers: The scorers applied to every item, besides each item's own.
        scoring: Every item's scorers, each checked against its item.
        samples: How many times each item runs on each model.
        confidence: The level of every interval.
        stats_seed: The seed of the bootstraps and permutation tests.
        allow_code_execution: Whether code scorers may run the models' code.
    """

    items: list[PromptItem]
    settings: dict[str, Any]
    scorers: Sequence[Scorer]
    scoring: _aggregate.Scoring
    samples: int
    confidence: float
    stats_seed: int
    allow_code_execution: bool


def check_inputs(
    models: Models,
    prompts: Prompts,
    settings: Settings,
    scorers: Sequence[Scorer],
    samples: int,
    confidence: float,
    stats_seed: int,
    allow_code_execution: bool,
) -> Inputs:
    """The inputs of :func:`~llmcompare.compare`, checked before any model is built.

    Raises:
        LLMCompareError: When there are no models or no prompts.
        ConfigurationError: For an option, a prompt or a scorer that cannot run.
    """
    if not models:
        raise LLMCompareError("compare needs at least one model")
    _check_options(samples, confidence, stats_seed, scorers)
    items = _load_items(prompts)
    scoring = _aggregate.Scoring(scorers, allow_code_execution=allow_code_execution)
    # Validate every item's scorers before any model runs: a typo should not cost a whole run.
    for item in items:
        for scorer in scoring.for_item(item):
            check_item(scorer, item)
    return Inputs(
        items=items,
        settings={**DEFAULT_SETTINGS, **settings},
        scorers=scorers,
        scoring=scoring,
        samples=samples,
        confidence=confidence,
        stats_seed=stats_seed,
        allow_code_execution=allow_code_execution,
    )


def build_models(models: Models) -> tuple[list[tuple[str, Model]], list[Model]]:
    """Each model with its label, and the models built here from names (the run closes them).

    A model given in a list is labelled by its id; a mapping gives each its label.
    """
    given = list(models.items()) if isinstance(models, Mapping) else [(None, m) for m in models]
    built = [(label, get_model(m) if isinstance(m, str) else m) for label, m in given]
    owned = [m for (_, m), (_, g) in zip(built, given, strict=True) if isinstance(g, str)]
    return [(label or model.id, model) for label, model in built], owned


def pass_at_ks(pass_at: Sequence[int] | None, samples: int) -> tuple[int, ...]:
    """The k values of pass@k asked for, checked against ``samples``; by default 1 and samples."""
    if pass_at is None:
        return tuple(sorted({1, samples}))
    ks = tuple(pass_at)
    for k in ks:
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= samples:
            raise ConfigurationError(
                f"pass_at takes whole numbers k with 1 <= k <= samples ({samples}), got {k!r}: "
                "pass@k needs at least k samples of each item"
            )
    return tuple(sorted(set(ks)))


def _check_options(
    samples: int, confidence: float, stats_seed: int, scorers: Sequence[Scorer]
) -> None:
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise ConfigurationError(f"samples must be a whole number of at least 1, got {samples!r}")
    if not 0 < confidence < 1:
        raise ConfigurationError(f"confidence must be between 0 and 1, got {confidence!r}")
    if isinstance(stats_seed, bool) or not isinstance(stats_seed, int) or stats_seed < 0:
        raise ConfigurationError(f"stats_seed must be a whole number >= 0, got {stats_seed!r}")
    for scorer in scorers:
        if not callable(scorer):
            raise ConfigurationError(
                f"scorers must be callables (completion, item) -> float | bool | None; got "
                f"{scorer!r}"
            )


def _load_items(prompts: Prompts) -> list[PromptItem]:
    from llmcompare import sources

    if prompts is None:
        items = builtin_suite()
    elif sources.is_source(prompts):
        items = sources.load_source(prompts)
    elif isinstance(prompts, Path) or (isinstance(prompts, str) and _looks_like_file(prompts)):
        items = load_prompts(prompts)
    elif isinstance(prompts, str):
        raise ConfigurationError(
            f"prompts={prompts[:40]!r} is neither a list of prompts nor a prompt file "
            '(.jsonl, .csv, .yaml): to run one prompt, pass a list: ["..."]'
        )
    else:
        items = [PromptItem.of(p, index=i) for i, p in enumerate(prompts)]
    if not items:
        raise LLMCompareError("compare needs at least one prompt")
    counts = Counter(item.id for item in items)
    repeated = sorted(i for i, n in counts.items() if n > 1)
    if repeated:
        raise ConfigurationError(
            f"item ids must be unique, and {repeated} appear more than once: give each item its "
            "own id"
        )
    return items


def _looks_like_file(text: str) -> bool:
    return Path(text).suffix.lower() in PROMPT_FILE_SUFFIXES or (
        "\n" not in text and Path(text).is_file()
    )
