"""A config built for a run: :class:`ComparePlan`, the typed arguments of ``compare``.

:func:`build_plan` (what :meth:`CompareConfig.build <llmcompare.config.CompareConfig.build>` does)
builds the models, reads each API key from its variable and loads the prompts and scorers;
:meth:`ComparePlan.run` then calls :func:`llmcompare.comparison.compare` with every argument
named, so a type checker checks each one.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, cast

from pydantic import ValidationError

from llmcompare.config._judge import build_judge, judge_limits, model_limits
from llmcompare.config._problems import ConfigFileError, Problem, _message
from llmcompare.cost import Budget, LocalHardware
from llmcompare.errors import LLMCompareError
from llmcompare.judges import Judge, JudgePanel
from llmcompare.model import Model
from llmcompare.prompts import PromptItem, load_prompts
from llmcompare.ratelimit import RateLimits
from llmcompare.scorers import Scorer, scorer_from_name
from llmcompare.sources import is_source, load_source
from llmcompare.types import Settings

if TYPE_CHECKING:
    from llmcompare.config._schema import CompareConfig, ModelConfig
    from llmcompare.executors import Executor
    from llmcompare.record import Comparison
    from llmcompare.runs import ResponseCache


@dataclass(frozen=True)
class ComparePlan:
    """What a built config gives :func:`llmcompare.comparison.compare`; it owns the models.

    Its fields are ``compare``'s parameters, with their types; :meth:`run` passes each of them
    by name. Build one with :meth:`CompareConfig.build <llmcompare.config.CompareConfig.build>`.

    Attributes:
        config: The config it was built from (:meth:`CompareConfig.public_dict` for the record).
        models: The models by label, in run order.
        prompts: The items of the prompt files, or ``None`` for the built-in suite.
        scorers: Scorers applied to every item.
        overrides: Each model's own settings, by label (models without any are left out).
        settings: The shared settings.
        rpm: The shared requests-per-minute limit, for each model without limits of its own.
        tpm: The same for tokens per minute.
        limits: Each model's own limits, by label, and each judge model's, by its judge name
            (those without any are left out): they replace ``rpm`` and ``tpm`` for that model
            or judge; where it sets only one, the other is the shared one.
        samples: How many times each item runs on each model.
        concurrency: Requests in flight per API model.
        budget: Limits across the run, enforced before sending.
        hardware: Local cost assumptions for open models.
        confidence: The level of every interval.
        stats_seed: The seed of the bootstraps and permutation tests.
        executor: Where local models run (``None``: in this process).
        allow_code_execution: Whether code scorers may run the models' code, sandboxed.
        pass_at: The k values of pass@k for code scorers (``None``: 1 and ``samples``).
        out: The run folder, or ``None``.
        judge: The judge of the answers (or a panel), or ``None``; the plan owns its models.
        hosted: The hosted models' machines, by label (see ``compare``'s ``hosted``).
        load: The levels of a load sweep, or None.
        slo: The sweep's latency target, or None.
        what_if: Models priced without sending anything.
    """

    config: CompareConfig = field(repr=False)
    models: dict[str, Model]
    prompts: list[PromptItem] | None = field(repr=False)
    scorers: tuple[Scorer, ...] = ()
    overrides: dict[str, Settings] = field(default_factory=dict)
    settings: Settings = field(default_factory=lambda: cast(Settings, {}))
    rpm: float | None = None
    tpm: float | None = None
    limits: dict[str, RateLimits] = field(default_factory=dict)
    samples: int = 1
    concurrency: int = 8
    budget: Budget | None = None
    hardware: LocalHardware | None = None
    confidence: float = 0.95
    stats_seed: int = 0
    executor: Executor | None = None
    allow_code_execution: bool = False
    pass_at: list[int] | None = None
    out: Path | None = None
    judge: Judge | JudgePanel | None = None
    hosted: dict[str, LocalHardware] = field(default_factory=dict)
    load: list[int] | None = None
    slo: str | None = None
    what_if: list[str] = field(default_factory=list)

    def run(
        self,
        *,
        progress: bool | None = None,
        force_new: bool = False,
        cache: bool | ResponseCache = True,
        refresh: bool = False,
    ) -> Comparison:
        """Run the comparison: :func:`~llmcompare.comparison.compare` with this plan.

        The models stay open (close the plan, or use it as a context manager).

        Args:
            progress: Show a progress bar; ``None`` shows one when stderr is a terminal.
            force_new: Start over in an ``out`` folder that holds another comparison.
            cache: The response cache: ``True`` the shared one, ``False`` none, or give one.
            refresh: Send every request even when the cache has its answer.

        Returns:
            The typed record of the run.

        Raises:
            ConfigurationError: For anything that cannot run (nothing was sent).
            KeyboardInterrupt: On Ctrl-C: the answers so far are in ``out``.
        """
        # compare sits a layer above the config (it runs what a config describes), as the
        # record's facade methods import theirs; comparison never imports config: no circle.
        from llmcompare.comparison import compare

        return compare(
            self.models,
            self.prompts,
            scorers=self.scorers,
            samples=self.samples,
            concurrency=self.concurrency,
            rpm=self.rpm,
            tpm=self.tpm,
            limits=self.limits,
            budget=self.budget,
            hardware=self.hardware,
            progress=progress,
            overrides=self.overrides,
            out=self.out,
            force_new=force_new,
            cache=cache,
            refresh=refresh,
            confidence=self.confidence,
            stats_seed=self.stats_seed,
            executor=self.executor,
            allow_code_execution=self.allow_code_execution,
            pass_at=self.pass_at,
            judge=self.judge,
            hosted=self.hosted,
            load=self.load,
            slo=self.slo,
            what_if=self.what_if,
            **self.settings,
        )

    def compare_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``compare(**plan.compare_kwargs(), progress=...)``.

        Every field but ``config`` and ``out`` (give ``out=`` yourself), with the shared
        settings spread out. :meth:`run` does the same, checked by a type checker.
        """
        given = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name not in ("config", "settings", "out")
        }
        return {**given, **self.settings}

    def close(self) -> None:
        """Close every model, the judge's too (``compare`` closes only those it built)."""
        for model in self.models.values():
            model.close()
        for judge in () if self.judge is None else self.judge.judges:
            judge.model.close()

    def __enter__(self) -> ComparePlan:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def build_plan(config: CompareConfig) -> ComparePlan:
    """The plan of ``config``: what :meth:`CompareConfig.build` returns; see there."""
    if not config.models:
        raise ConfigFileError(
            config.path,
            [Problem("models", "no models: add [[models]] tables to the file, or give -m")],
        )
    config.check()
    items = _items(config)
    scorers = tuple(scorer_from_name(s) for s in config.scorers)
    # Before the models, so a missing Ray leaves nothing to close.
    executor = None if config.executor is None else config.executor.build()
    built = _models(config)
    by_label = list(zip(built, config.models, strict=True))
    try:
        models = {
            label: own for label, m in by_label if (own := model_limits(config, m)) is not None
        }
        limits = {**models, **judge_limits(config, models, built)}
        judge = build_judge(config)
    except BaseException:
        for model in built.values():
            model.close()
        raise
    return ComparePlan(
        config=config,
        models=built,
        prompts=items,
        scorers=scorers,
        overrides={label: s for label, m in by_label if (s := m.settings.as_settings())},
        settings=config.settings.as_settings(),
        rpm=config.rpm,
        tpm=config.tpm,
        limits=limits,
        samples=config.samples,
        concurrency=config.concurrency,
        budget=config.budget,
        hardware=config.hardware,
        confidence=config.confidence,
        stats_seed=config.stats_seed,
        executor=executor,
        allow_code_execution=config.allow_code_execution,
        pass_at=config.pass_at,
        out=config.out_dir(),
        judge=judge,
        hosted={label: m.hosted for label, m in by_label if m.hosted is not None},
        load=config.load,
        slo=config.slo,
        what_if=list(config.what_if),
    )


def _models(config: CompareConfig) -> dict[str, Model]:
    """Every model of the config, by label, in order; all closed again if one fails."""
    built: dict[str, Model] = {}
    try:
        for i, m in enumerate(config.models):
            model = _model(config, i, m)
            key = m.label or model.id
            if key in built:
                model.close()
                message = f"two models of the run are {key!r}: label them"
                raise ConfigFileError(config.path, [config._problem(i, ["label"], message)])
            built[key] = model
    except BaseException:
        for model in built.values():
            model.close()
        raise
    return built


def _model(config: CompareConfig, i: int, m: ModelConfig) -> Model:
    """Build ``config.models[i]``, its key read from its variable; problems at its line."""
    from llmcompare.plugins import get_model

    options = dict(m.options)
    if m.api_key_env is not None:
        key = os.environ.get(m.api_key_env)
        if not key:
            message = (
                f"the environment variable {m.api_key_env} is not set (or is empty); it must "
                f"hold the API key of model {m.shown!r}"
            )
            raise ConfigFileError(config.path, [config._problem(i, ["api_key_env"], message)])
        options["api_key"] = key
    try:
        return get_model(m.name, **options)
    except ValidationError as exc:
        # Only the messages: a pydantic error's text would show the values (the key).
        raise ConfigFileError(
            config.path,
            [
                config._problem(i, ["options", *err["loc"]], _message(err, None))
                for err in exc.errors()
            ],
        ) from None
    except (LLMCompareError, LookupError, ValueError) as exc:
        raise ConfigFileError(config.path, [config._problem(i, [], str(exc))]) from None
    finally:
        options.clear()  # the key is held by the model only


def _load(config: CompareConfig, source: str | Path) -> list[PromptItem]:
    if is_source(source) or config.fields is not None:
        # A field mapping reads a JSONL/CSV file's own columns, as a dataset's.
        return load_source(source, fields=config.fields, split=config.split, limit=config.limit)
    return load_prompts(source)[: config.limit]


def _items(config: CompareConfig) -> list[PromptItem] | None:
    files = config._sources()
    if not files:
        return None
    items: list[PromptItem] = []
    owner: dict[str, str | Path] = {}
    for path in files:
        for item in _load(config, path):
            if item.id in owner:
                _twice(config, item.id, path, owner[item.id])
            owner[item.id] = path
            items.append(item)
    return items


def _twice(config: CompareConfig, item_id: str, path: str | Path, other: str | Path) -> NoReturn:
    """Refuse an item id found twice among the prompt sources, at the ``prompts`` line."""
    where = "twice in it" if other == path else f"also in {other}"
    source = config._source
    raise ConfigFileError(
        config.path,
        [
            Problem(
                "prompts",
                f"item id {item_id!r} of {path} is {where}: ids must be unique across the "
                "prompt files",
                line=source.line_of(("prompts",)) if source else None,
            )
        ],
    )
