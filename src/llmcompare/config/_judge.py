"""The judge of a config, built: its models (keys read from their variables), its rubric.

:func:`build_judge` turns a :class:`~llmcompare.config.JudgeConfig` into a
:class:`~llmcompare.judges.PairwiseJudge`, a :class:`~llmcompare.judges.PointwiseJudge` or a
:class:`~llmcompare.judges.JudgePanel` (the flags' own config comes from
:func:`~llmcompare.config.judge_from_flags`). A judge model's ``rpm`` / ``tpm`` are not applied
to its model: ``judge_limits`` gives them to the plan's ``limits``, by the judge's name, so
``compare`` owns every limit and the record states them (``Comparison.rejudge`` takes them as
its ``limits=``).
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING

from pydantic import ValidationError

from llmcompare.config._problems import ConfigFileError, Problem, _dotted, _message
from llmcompare.errors import ConfigurationError, LLMCompareError
from llmcompare.judges import (
    PAIRWISE_RUBRIC,
    POINTWISE_RUBRIC,
    Judge,
    JudgePanel,
    PairwiseJudge,
    PointwiseJudge,
)
from llmcompare.ratelimit import RateLimits

if TYPE_CHECKING:
    from llmcompare.config._schema import CompareConfig, ModelConfig
    from llmcompare.model import Model

__all__ = ["build_judge", "judge_limits", "model_limits"]


def build_judge(config: CompareConfig) -> Judge | JudgePanel | None:
    """The config's judge, built (its models too: close them with the plan).

    Its models' ``rpm`` / ``tpm`` are not applied here: they go to the plan's ``limits``
    (:meth:`CompareConfig.build <llmcompare.config.CompareConfig.build>`), by judge name, which
    ``compare`` applies. A judge used outside ``compare`` is held to them by passing those
    limits on: ``record.rejudge(judge, limits=plan.limits)``
    (:meth:`~llmcompare.record.Comparison.rejudge`); without them it sends unlimited.

    Raises:
        ConfigFileError: For a judge model that cannot be built (an unset key variable, an
            option its backend refuses), or a rubric file that cannot be read.
    """
    judge = config.judge
    if judge is None:
        return None
    rubric = judge.rubric if judge.rubric_file is None else _rubric(config, judge.rubric_file)
    built: list[Model] = []
    try:
        judges: list[Judge] = []
        for k, m in enumerate(judge.models):
            model = _model(config, k, m)
            built.append(model)
            name, settings = m.label or m.name, m.settings.as_settings()
            if judge.mode == "pairwise":
                judges.append(
                    PairwiseJudge(
                        model,
                        rubric=rubric or PAIRWISE_RUBRIC,
                        swap=judge.swap,
                        allow_tie=judge.allow_tie,
                        name=name,
                        settings=settings,
                    )
                )
            else:
                judges.append(
                    PointwiseJudge(
                        model,
                        rubric=rubric or POINTWISE_RUBRIC,
                        scale=judge.scale,
                        name=name,
                        settings=settings,
                    )
                )
        return judges[0] if len(judges) == 1 else JudgePanel(judges, vote=judge.vote)
    except ConfigFileError:
        for model in built:
            model.close()
        raise
    except ConfigurationError as exc:
        for model in built:
            model.close()
        raise ConfigFileError(config.path, [_problem(config, ["judge"], exc.message)]) from None


def model_limits(config: CompareConfig, m: ModelConfig) -> RateLimits | None:
    """A model's (or judge model's) own limits, the shared one where it sets only one.

    None where it sets neither: the shared ``rpm`` / ``tpm`` apply to it as they are.
    """
    if m.rpm is None and m.tpm is None:
        return None
    return RateLimits(
        rpm=config.rpm if m.rpm is None else m.rpm, tpm=config.tpm if m.tpm is None else m.tpm
    )


def judge_limits(
    config: CompareConfig, models: Mapping[str, RateLimits], labels: Collection[str]
) -> dict[str, RateLimits]:
    """Each judge model's own limits, by its judge name (those without any left out).

    Args:
        config: The config.
        models: The models' own limits, by label.
        labels: The labels of the run's models.

    Raises:
        ConfigFileError: For a judge named like a model of the run whose limits differ from
            the model's: one name is one entry of ``compare``'s ``limits``.
    """
    out: dict[str, RateLimits] = {}
    for k, m in enumerate(() if config.judge is None else config.judge.models):
        own = model_limits(config, m)
        if own is None:
            continue
        name = m.label or m.name
        if name in labels and models.get(name) != own:
            message = (
                f"the judge {name!r} is named like a model of the run, so both have one entry "
                "of limits: give them the same rpm and tpm, or the judge a label of its own"
            )
            key = "rpm" if m.rpm is not None else "tpm"
            raise ConfigFileError(
                config.path, [_problem(config, ["judge", "models", k, key], message)]
            )
        out[name] = own
    return out


def _rubric(config: CompareConfig, name: str) -> str:
    path = config._resolve(name)
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        message = f"cannot read the rubric file {path}: {getattr(exc, 'strerror', None) or exc}"
        problem = _problem(config, ["judge", "rubric_file"], message)
        raise ConfigFileError(config.path, [problem]) from None
    if not text:
        message = f"the rubric file {path} is empty"
        raise ConfigFileError(config.path, [_problem(config, ["judge", "rubric_file"], message)])
    return text


def _problem(config: CompareConfig, loc: list[str | int], message: str) -> Problem:
    source = config._source
    if source is None:
        return Problem(_dotted(tuple(loc)), message, where="--judge")
    if (
        loc[:3] == ["judge", "models", 0]
        and config.judge is not None
        and len(config.judge.models) == 1
    ):
        # A [judge] table may hold its one model's keys itself (name = ..., options = ...).
        own = ["judge", *loc[3:]]
        if tuple(own) in source.lines or tuple(loc) not in source.lines:
            loc = own
    return Problem(_dotted(tuple(loc)), message, line=source.line_of(tuple(loc)))


def _model(config: CompareConfig, k: int, m: ModelConfig) -> Model:
    """Judge model ``k``, its key read from its variable; problems at its line."""
    from llmcompare.plugins import get_model

    loc: list[str | int] = ["judge", "models", k]
    options = dict(m.options)
    if "api_key" in options:
        message = "a key does not belong in a config file: name its variable with api_key_env"
        raise ConfigFileError(config.path, [_problem(config, [*loc, "options"], message)])
    if m.api_key_env is not None:
        key = os.environ.get(m.api_key_env)
        if not key:
            message = (
                f"the environment variable {m.api_key_env} is not set (or is empty); it must "
                f"hold the API key of the judge {m.shown!r}"
            )
            raise ConfigFileError(config.path, [_problem(config, [*loc, "api_key_env"], message)])
        options["api_key"] = key
    try:
        model = get_model(m.name, **options)
    except ValidationError as exc:
        # Only the messages: a pydantic error's text would show the values (the key).
        problems = [
            _problem(config, [*loc, "options", *err["loc"]], _message(err, None))
            for err in exc.errors()
        ]
        raise ConfigFileError(config.path, problems) from None
    except (LLMCompareError, LookupError, ValueError) as exc:
        raise ConfigFileError(config.path, [_problem(config, loc, str(exc))]) from None
    finally:
        options.clear()  # the key is held by the model only
    return model
