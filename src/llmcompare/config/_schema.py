"""The schema of a comparison config: :class:`CompareConfig` and its parts.

:class:`ModelConfig` is one model, :class:`ExecutorConfig` where local models run: frozen
pydantic models that refuse unknown keys. :meth:`CompareConfig.check` checks what the schema
cannot (unique labels, known model names, each backend's options), and
:meth:`CompareConfig.build` turns a config into a :class:`~llmcompare.config.ComparePlan`.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from llmcompare.batch._slo import parse_slo
from llmcompare.config._plan import ComparePlan, build_plan
from llmcompare.config._problems import (
    ConfigFileError,
    Problem,
    _dotted,
    _Loc,
    _message,
    _no_bool,
    _order,
    _Source,
)
from llmcompare.cost import Budget, LocalHardware, hosted_hardware
from llmcompare.errors import ConfigurationError
from llmcompare.ratelimit import RateLimits
from llmcompare.scorers import scorer_from_name
from llmcompare.sources import SUITES, FieldMap
from llmcompare.types import GenerationSettings

if typing.TYPE_CHECKING:
    from llmcompare.executors import Executor

_FROZEN = ConfigDict(frozen=True, extra="forbid")

# Option names whose values are credentials: masked in repr and in public_dict().
_SECRET_OPTION = re.compile(r"key|token|secret|password|passwd|auth|credential|cookie", re.I)
_MASK = "***"


_NOT_BOOL = BeforeValidator(_no_bool)
"""On every number of the schema: a YAML ``yes`` is not 1."""


def _rate(value: float | None, info: ValidationInfo) -> float | None:
    """A limit the rate limiter takes (one that admits less than one a day is refused)."""
    RateLimits(**{str(info.field_name): value})
    return value


def _slo(value: str) -> str:
    try:
        parse_slo(value)
    except ConfigurationError as exc:
        raise ValueError(str(exc)) from None
    return value


def _hosted(value: Any) -> Any:
    """A preset name or a machine's figures as the hardware (an unknown one is refused)."""
    if value is None or isinstance(value, LocalHardware):
        return value
    try:
        return hosted_hardware(value)
    except ConfigurationError as exc:
        raise ValueError(str(exc)) from None


def _label(value: str) -> str:
    if not value.strip() or value != value.strip() or "=" in value:
        raise ValueError("a label is not empty, has no '=' and no spaces at either end")
    return value


def _env_name(value: str) -> str:
    # Never echo the value: a key pasted here by mistake must not reach the error message.
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
        raise ValueError(
            "must be the NAME of an environment variable (letters, digits and _), such as "
            "OPENAI_API_KEY, not the key itself"
        )
    return value


def _mask_options(options: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in options.items():
        if key == "headers" and isinstance(value, Mapping):
            # HTTP headers often carry credentials (a gateway token, Azure's api-key).
            out[key] = dict.fromkeys(value, _MASK)
        elif _SECRET_OPTION.search(key):
            out[key] = _MASK
        elif isinstance(value, str) and "://" in value:
            # A URL may carry "user:password@" or a key in its query: neither is written out.
            out[key] = _url_without_secrets(value)
        else:
            out[key] = value
    return out


def _url_without_secrets(url: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{_MASK}@{netloc.rpartition('@')[2]}"
    query = _MASK if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


class ModelConfig(BaseModel):
    """One model of a comparison: a ``[[models]]`` table of the file, or a ``-m`` flag.

    In a file, a model may also be written as a string: ``"llama"`` or ``"label=name"``.

    Attributes:
        label: What the model is called in the record, the reports and ``overrides``; unique in
            the comparison. Without one, the model's id (``fake`` is ``fake:echo``): give labels
            when two models have the same name (one model on two servers).
        name: What :func:`llmcompare.get_model` takes: ``"llama"``, ``"chatgpt:gpt-5.4-mini"``,
            ``"chatgpt:meta-llama/Llama-3.1-8B-Instruct"`` for a vLLM server, ...
        options: The backend's options (``base_url``, ``timeout``, ``device``, ``dtype``, ...),
            checked by the backend's own options model: an unknown one is an error.
        api_key_env: The name of the environment variable that holds THIS model's API key. It
            is read when the config is built (a missing or empty variable is an error, raised
            before anything is sent) and passed to the backend as its ``api_key`` option.
        settings: Generation settings for this model only, over the shared ones.
        rpm: Requests per minute, at most, for this model (default: the config's ``rpm``).
        tpm: Tokens per minute, at most, for this model (default: the config's ``tpm``).
        hosted: The machine this model is served from, making it a hosted model (open weights,
            costed from machine time): a preset name (``"h100"``) or its figures,
            ``{ usd_per_hour = 2.99, watts = 700, name = "1x H100 80GB on demand" }``.
    """

    model_config = _FROZEN

    label: Annotated[str, AfterValidator(_label)] | None = None
    name: Annotated[str, Field(min_length=1)]
    options: dict[str, Any] = Field(default_factory=dict)
    api_key_env: Annotated[str, AfterValidator(_env_name)] | None = None
    settings: GenerationSettings = Field(default_factory=GenerationSettings)
    rpm: Annotated[float, Field(gt=0), _NOT_BOOL] | None = None
    tpm: Annotated[float, Field(gt=0), _NOT_BOOL] | None = None
    hosted: Annotated[LocalHardware, BeforeValidator(_hosted)] | None = None

    _limits = field_validator("rpm", "tpm")(_rate)

    # The model's position among the file's [[models]], so a problem found later (an option its
    # backend refuses, a missing key variable) is reported at its line; None for a -m flag.
    _index: int | None = PrivateAttr(default=None)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, str):
            label, sep, name = data.partition("=")
            return {"label": label, "name": name} if sep else {"name": data}
        return data

    @property
    def shown(self) -> str:
        """How messages name the model: its label, else its name."""
        return self.label or self.name

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        for name, value in super().__repr_args__():
            yield name, _mask_options(value) if name == "options" else value


def _scorer_name(spec: str) -> str:
    try:
        scorer_from_name(spec)
    except ConfigurationError as exc:
        # As a ValueError pydantic reports it at its place: scorers[1].
        raise ValueError(exc.message) from None
    return spec


_MODEL_KEYS = frozenset(ModelConfig.model_fields)


class JudgeConfig(BaseModel):
    """The judge of a comparison: the ``[judge]`` table of a file, or ``--judge`` flags.

    The judge model is a model like the others (``name``, ``options``, ``api_key_env``,
    ``settings``, ``rpm``, ``tpm``), written in the table itself, or as ``judge = "NAME"``; a
    panel lists its models as ``[[judge.models]]`` tables (each with its own ``label``).

    Attributes:
        models: The judge model, or a panel's models.
        mode: ``"pairwise"`` (two answers side by side) or ``"pointwise"`` (a grade each).
        rubric: What the judge should value, replacing the default rubric.
        rubric_file: A text file holding the rubric (relative to the config file).
        swap: Pairwise: ask each pair in both orders.
        allow_tie: Pairwise: let the judge say tie.
        vote: A panel's vote: ``"majority"`` or ``"mean"``.
        scale: Pointwise: the lowest and highest grade.
    """

    model_config = _FROZEN

    models: Annotated[list[ModelConfig], Field(min_length=1)]
    mode: Literal["pairwise", "pointwise"] = "pairwise"
    rubric: Annotated[str, Field(min_length=1)] | None = None
    rubric_file: str | None = None
    swap: bool = True
    allow_tie: bool = True
    vote: Literal["majority", "mean"] = "majority"
    scale: tuple[int, int] = (1, 10)

    @model_validator(mode="before")
    @classmethod
    def _one_model(cls, data: Any) -> Any:
        # judge = "chatgpt:gpt-5.4", or a [judge] table holding the model's own keys.
        if isinstance(data, str):
            return {"models": [data]}
        if isinstance(data, Mapping) and "name" in data:
            own = {k: v for k, v in data.items() if k in _MODEL_KEYS}
            return {**{k: v for k, v in data.items() if k not in _MODEL_KEYS}, "models": [own]}
        return data

    @model_validator(mode="after")
    def _one_rubric(self) -> JudgeConfig:
        if self.rubric is not None and self.rubric_file is not None:
            raise ValueError("give rubric or rubric_file, not both")
        return self


class ExecutorConfig(BaseModel):
    """Where local models run (``executor = { kind = "ray", workers = 4 }`` in a config file).

    Attributes:
        kind: ``"local"`` (this process, the default) or ``"ray"`` (Ray actors; needs
            ``pip install "llmcompare[ray]"``).
        workers: Ray actors per local model.
        num_gpus_per_worker: GPUs each actor reserves.
        address: The Ray cluster to join (``"auto"``, ``"ray://host:10001"``); none starts a
            local one.
    """

    model_config = _FROZEN

    kind: Literal["local", "ray"] = "local"
    workers: Annotated[int, Field(ge=1), _NOT_BOOL] = 2
    num_gpus_per_worker: Annotated[float, Field(ge=0), _NOT_BOOL] = 0.0
    address: str | None = None

    def build(self) -> Executor | None:
        """The executor to give :func:`~llmcompare.compare` (None: in this process)."""
        if self.kind == "local":
            return None
        from llmcompare.executors import RayExecutor

        return RayExecutor(
            self.workers, num_gpus_per_worker=self.num_gpus_per_worker, address=self.address
        )


class CompareConfig(BaseModel):
    """A whole comparison: what :func:`load_config` reads and ``llmcompare compare -c`` runs.

    Relative paths (``prompts``, ``out``) are relative to the config file's folder, so a config
    means the same wherever it is run from; for a config built in code, to the working folder.

    Attributes:
        models: The models, in run order (at least one to run; ``-m`` flags replace them).
        prompts: Prompt files (JSONL, CSV or YAML), saved datasets' folders, hub ids
            (``"hf:openai/gsm8k:main:test"``) or suite names (``"humaneval"``), run one after
            the other; item ids must be unique across them. ``None`` runs the built-in suite.
        fields: Which column of a dataset source is which item field (``prompt`` or
            ``template``, ``reference``, ``id``, ``system``, ``tags``); see
            :class:`llmcompare.sources.FieldMap`.
        split: The split of a dataset source that has several.
        limit: Only the first ``limit`` items of each source.
        allow_code_execution: Let code scorers (``unit_tests``) run the models' code in the
            sandbox (:mod:`llmcompare.sandbox`).
        pass_at: The k values of pass@k for code scorers (default: 1 and ``samples``).
        scorers: Scorer names (see :func:`llmcompare.scorers.scorer_from_name`) applied to every
            item, besides each item's own.
        settings: Generation settings shared by every model (on top of greedy,
            ``max_tokens=256``).
        samples: How many times to run each item on each model.
        concurrency: Requests in flight per API model (local models batch every pending
            request within their own limits).
        rpm: Requests per minute, at most, for each model that sets no ``rpm`` of its own.
        tpm: Tokens per minute, at most, for each model that sets no ``tpm`` of its own.
        budget: Limits on dollars, tokens and requests across the run, enforced before sending.
        hardware: Local cost assumptions (dollars per hour, watts, ...) for open models.
        confidence: The level of every interval in the record.
        stats_seed: The seed of the bootstraps and permutation tests.
        out: The report folder.
        executor: Where local models run (default: in this process).
        sweep: Settings as an axis: each key (a generation setting, or a backend option such
            as ``reasoning_effort``) with its values; every model that takes the key runs once
            per value, as its own labelled column (``<model>[reasoning_effort=low]``). See
            :mod:`llmcompare.config._sweep`.
        judge: The judge of the answers (see :class:`JudgeConfig`), or None.
        load: Levels of requests in flight for a load sweep (``compare``'s ``load``; not
            ``sweep``, which sweeps settings), or None.
        slo: The latency target of the load sweep (``"ttft_p95<=1,latency_p95<=10"``), or None.
        what_if: Models priced on the items without sending anything (``compare``'s).
    """

    model_config = _FROZEN

    models: list[ModelConfig] = Field(default_factory=list)
    prompts: Annotated[list[str], Field(min_length=1)] | None = None
    scorers: list[Annotated[str, AfterValidator(_scorer_name)]] = Field(default_factory=list)
    settings: GenerationSettings = Field(default_factory=GenerationSettings)
    samples: Annotated[int, Field(ge=1), _NOT_BOOL] = 1
    concurrency: Annotated[int, Field(ge=1), _NOT_BOOL] = 8
    rpm: Annotated[float, Field(gt=0), _NOT_BOOL] | None = None
    tpm: Annotated[float, Field(gt=0), _NOT_BOOL] | None = None
    budget: Budget | None = None
    hardware: LocalHardware | None = None
    confidence: Annotated[float, Field(gt=0, lt=1), _NOT_BOOL] = 0.95
    stats_seed: Annotated[int, Field(ge=0), _NOT_BOOL] = 0
    out: str | None = None
    executor: ExecutorConfig | None = None
    fields: FieldMap | None = None
    split: str | None = None
    limit: Annotated[int, Field(ge=1), _NOT_BOOL] | None = None
    allow_code_execution: bool = False
    pass_at: list[Annotated[int, Field(ge=1), _NOT_BOOL]] | None = None
    sweep: dict[str, Annotated[list[Any], Field(min_length=1)]] = Field(default_factory=dict)
    judge: JudgeConfig | None = None
    load: list[Annotated[int, Field(ge=1), _NOT_BOOL]] | None = None
    slo: Annotated[str, AfterValidator(_slo)] | None = None
    what_if: list[str] = Field(default_factory=list)

    _base: Path | None = PrivateAttr(default=None)
    _source: _Source | None = PrivateAttr(default=None)

    _limits = field_validator("rpm", "tpm")(_rate)

    @field_validator("prompts", mode="before")
    @classmethod
    def _one_file(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    # -- paths --------------------------------------------------------------------------------

    @property
    def path(self) -> str | None:
        """The file the config was read from, or ``None``."""
        return None if self._source is None else self._source.path

    def _resolve(self, name: str) -> Path:
        base = self._base if self._base is not None else Path.cwd()
        return base / Path(name).expanduser()

    def prompt_files(self) -> list[Path]:
        """The prompt files and dataset folders, resolved (hub ids and suites left out)."""
        return [p for p in self._sources() if isinstance(p, Path)]

    def _sources(self) -> list[str | Path]:
        """Every prompt source: hub ids and suite names as given, paths resolved."""
        return [p if _named(p) else self._resolve(p) for p in self.prompts or ()]

    def out_dir(self) -> Path | None:
        """The report folder, resolved, or ``None``."""
        return None if self.out is None else self._resolve(self.out)

    # -- command-line flags -------------------------------------------------------------------

    def with_overrides(
        self,
        *,
        models: Sequence[ModelConfig] | None = None,
        prompts: Sequence[str | Path] | None = None,
        settings: Mapping[str, Any] | None = None,
        samples: int | None = None,
        concurrency: int | None = None,
        budget_usd: Decimal | None = None,
        rpm: float | None = None,
        tpm: float | None = None,
        out: str | Path | None = None,
        executor: ExecutorConfig | None = None,
        fields: Mapping[str, str] | None = None,
        split: str | None = None,
        limit: int | None = None,
        allow_code_execution: bool | None = None,
        pass_at: Sequence[int] | None = None,
        scorers: Sequence[str] | None = None,
        sweep: Mapping[str, Sequence[Any]] | None = None,
        judge: JudgeConfig | None = None,
        load: Sequence[int] | None = None,
        slo: str | None = None,
        what_if: Sequence[str] | None = None,
    ) -> CompareConfig:
        """This config with command-line flags over it: each flag given wins over the file.

        ``None`` (or an empty ``settings``) means "not given". Paths given here are relative to
        the working folder. A setting given here (``--max-tokens``, ...) replaces the shared one
        AND that setting of every model, and ``rpm``/``tpm`` replace every model's own: a flag
        is the last word for the run.

        Args:
            models: Models that replace the file's (``-m``; see :func:`models_from_flags`).
            prompts: Prompt files that replace the file's.
            settings: Generation settings (``--max-tokens``, ``--temperature``, ``--seed``).
            samples: ``--samples``.
            concurrency: ``--concurrency``.
            budget_usd: ``--budget-usd``: replaces the budget's ``max_usd``, keeping its other
                limits.
            rpm: ``--rpm``.
            tpm: ``--tpm``.
            out: ``--out``.
            executor: ``--ray-workers`` / ``--ray-address``: replaces the file's executor.
            fields: ``--field KEY=COLUMN`` and ``--template``: merged over the file's fields.
            split: ``--split``.
            limit: ``--limit``.
            allow_code_execution: ``--allow-code-execution``.
            pass_at: ``--pass-at``.
            scorers: ``--scorer``: added to the file's scorers.
            sweep: ``-S KEY=V1,V2``: each key's values replace the file's for that key.
            judge: ``--judge``, ``--judge-mode``, ``--judge-rubric``: replaces the file's judge
                (:func:`~llmcompare.config.judge_from_flags` builds it over the file's).
            load: ``--load``: the levels of a load sweep.
            slo: ``--slo``: the sweep's latency target.
            what_if: ``--what-if``: added to the file's.

        Returns:
            A new config; this one is unchanged.

        Raises:
            ConfigFileError: When a value is out of bounds.
        """
        update: dict[str, Any] = {}
        chosen = list(self.models if models is None else models)
        given = dict(settings or {})
        # The parts given whole (settings, fields, budget) are merged here and validated with
        # the rest, in one validation: a problem then has its place (fields.answer), and the
        # keys it suggests are those of that place, not the top level's.
        if given:
            update["settings"] = {**self.settings.as_settings(), **given}
        if given or rpm is not None or tpm is not None:
            chosen = [
                _without(m, set(given), rpm=rpm is not None, tpm=tpm is not None) for m in chosen
            ]
        if prompts is not None:
            update["prompts"] = [
                str(p) if _named(str(p)) else str(Path(p).absolute()) for p in prompts
            ]
        if fields:
            old_fields = self.fields.model_dump(exclude_none=True) if self.fields else {}
            update["fields"] = {**old_fields, **fields}
        if out is not None:
            update["out"] = str(Path(out).absolute())
        if executor is not None:
            update["executor"] = executor
        if sweep:
            update["sweep"] = {**self.sweep, **{k: list(v) for k, v in sweep.items()}}
        if budget_usd is not None:
            old = self.budget.model_dump(exclude_unset=True) if self.budget else {}
            update["budget"] = {**old, "max_usd": budget_usd}
        for name, value in (
            ("samples", samples),
            ("concurrency", concurrency),
            ("rpm", rpm),
            ("tpm", tpm),
            ("split", split),
            ("limit", limit),
            ("allow_code_execution", allow_code_execution),
            ("pass_at", None if pass_at is None else list(pass_at)),
            ("scorers", None if not scorers else [*self.scorers, *scorers]),
            ("judge", judge),
            ("load", None if load is None else list(load)),
            ("slo", slo),
            ("what_if", None if not what_if else [*self.what_if, *what_if]),
        ):
            if value is not None:
                update[name] = value
        try:
            # The whole is validated (the bounds of samples, rpm, ...) without the models, which
            # keep their place in the file; model_copy alone would not check anything.
            checked = CompareConfig.model_validate(
                {**self.model_dump(exclude={"models"}), **update, "models": []}
            )
        except ValidationError as exc:
            raise ConfigFileError(self.path, _problems(exc, None, "command line")) from None
        return self.model_copy(
            update={**{name: getattr(checked, name) for name in update}, "models": chosen}
        )

    # -- checks -------------------------------------------------------------------------------

    def _where(self, index: int, rest: Sequence[str | int]) -> tuple[str, int | None, str | None]:
        """``(key path, line, where)`` for a problem of ``models[index]``."""
        model = self.models[index]
        if model._index is not None and self._source is not None:
            loc: _Loc = ("models", model._index, *rest)
            return _dotted(loc), self._source.line_of(loc), None
        return _dotted(rest), None, f"model {model.shown!r}"

    def _problem(self, index: int, rest: Sequence[str | int], message: str) -> Problem:
        key, line, where = self._where(index, rest)
        return Problem(key=key or None, message=message, line=line, where=where)

    def check(self) -> None:
        """Check what the schema cannot: unique labels, known model names, backend options.

        :func:`load_config` and :meth:`build` call it; nothing is built or sent.

        Raises:
            ConfigFileError: Listing every problem, each with its key and line.
        """
        from llmcompare.errors import UnknownModelError
        from llmcompare.plugins import registry

        problems: list[Problem] = []
        seen: dict[tuple[bool, str], int] = {}
        for i, model in enumerate(self.models):
            # Two models without labels clash when they have the same name (the same id).
            mark = (model.label is not None, model.shown)
            if mark in seen:
                problems.append(
                    self._problem(
                        i,
                        ["label"] if model.label is not None else ["name"],
                        f"{model.shown!r} names two models of the run: give each its own label "
                        "(label = ..., or -m LABEL=NAME)",
                    )
                )
            seen.setdefault(mark, i)
            try:
                entry = registry().entry(model.name.strip().partition(":")[0])
            except UnknownModelError as exc:
                problems.append(self._problem(i, ["name"], exc.message))
                continue
            if "api_key" in model.options:
                problems.append(
                    self._problem(
                        i,
                        ["options", "api_key"],
                        "a key does not belong in a config file: put it in an environment "
                        "variable and name that variable with api_key_env",
                    )
                )
                continue
            options = dict(model.options)
            if model.api_key_env is not None:
                options["api_key"] = "placeholder-checked-not-sent"
            try:
                entry.options.model_validate(options)
            except ValidationError as exc:
                for err in exc.errors():
                    loc = tuple(err["loc"])
                    if loc[:1] == ("api_key",) and model.api_key_env is not None:
                        message = f"the {entry.name!r} backend takes no API key (no api_key option)"
                        problems.append(self._problem(i, ["api_key_env"], message))
                        continue
                    known = list(entry.options.model_fields) if len(loc) == 1 else None
                    message = _message(err, known)
                    problems.append(self._problem(i, ["options", *loc], message))
        if problems:
            raise ConfigFileError(self.path, sorted(problems, key=_order))

    # -- building -----------------------------------------------------------------------------

    def build(self) -> ComparePlan:
        """Build the models, load the prompts and scorers: everything ``compare`` needs.

        Nothing is sent: models are built (cheap: weights load and clients connect on first
        use), each API key read from its model's ``api_key_env``, and each model's own rate
        limits handed to ``compare`` (its ``limits=``) in the plan.

        Returns:
            The plan; close it (or use it as a context manager) to close the models.

        Raises:
            ConfigFileError: For a config without models, or a model that cannot be built (an
                unset key variable, an option its backend refuses); the message names the
                variable and the model.
            PromptFileError: For a prompt file that cannot be read (names its file and line).
        """
        from llmcompare.config._sweep import swept_models

        if not self.sweep:
            return build_plan(self)
        # Each swept model becomes its variants: the plan runs (and labels) each on its own.
        models = swept_models(self.models, self.sweep, self.path)
        return build_plan(self.model_copy(update={"models": models, "sweep": {}}))

    # -- output -------------------------------------------------------------------------------

    def public_dict(self) -> dict[str, Any]:
        """The config as resolved for the run (paths absolute), JSON-ready and without secrets.

        What to write next to a run's results: it names each model's key VARIABLE, never a
        key, and credential-looking options (header values, tokens) are masked as ``***``.
        It validates back into a :class:`CompareConfig`.
        """
        data = self.model_dump(mode="json")
        # Settings as given: a setting written out as null would, read back, replace a shared
        # one with the backend's default.
        data["settings"] = self.settings.model_dump(mode="json", exclude_unset=True)
        for model, dumped in zip(self.models, data["models"], strict=True):
            dumped["options"] = _mask_options(dumped["options"])
            dumped["settings"] = model.settings.model_dump(mode="json", exclude_unset=True)
        if self.prompts is not None:
            data["prompts"] = [str(p) for p in self._sources()]
        if self.out is not None:
            data["out"] = str(self.out_dir())
        if self.judge is not None:
            for model, dumped in zip(self.judge.models, data["judge"]["models"], strict=True):
                dumped["options"] = _mask_options(dumped["options"])
                dumped["settings"] = model.settings.model_dump(mode="json", exclude_unset=True)
        return data


def _named(source: str) -> bool:
    """A hub id or a suite name: a prompt source that is not a path."""
    return source.startswith("hf:") or source in SUITES


def _without(model: ModelConfig, settings: set[str], *, rpm: bool, tpm: bool) -> ModelConfig:
    """The model with the settings and limits a command-line flag replaces taken out."""
    own = {k: v for k, v in model.settings.as_settings().items() if k not in settings}
    update: dict[str, Any] = {"settings": GenerationSettings.model_validate(own)}
    if rpm:
        update["rpm"] = None
    if tpm:
        update["tpm"] = None
    return model.model_copy(update=update)


def _problems(
    exc: ValidationError, source: _Source | None, where: str | None = None
) -> list[Problem]:
    out = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        out.append(
            Problem(
                key=_dotted(loc) or None,
                message=_message(err, _allowed_keys(loc)),
                line=None if source is None else source.line_of(loc),
                where=where,
            )
        )
    return out


def _unwrap(tp: Any) -> Any:
    while True:
        origin = typing.get_origin(tp)
        if origin is Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (typing.Union, types.UnionType):
            rest = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(rest) != 1:
                return tp
            tp = rest[0]
        else:
            return tp


def _allowed_keys(loc: Sequence[str | int]) -> list[str] | None:
    """The keys allowed where the last part of ``loc`` is, walking the schema's types."""
    tp: Any = CompareConfig
    for part in loc[:-1]:
        tp = _unwrap(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            if not isinstance(part, str) or part not in tp.model_fields:
                return None
            tp = tp.model_fields[part].annotation
        elif typing.get_origin(tp) in (list, tuple) and isinstance(part, int):
            tp = typing.get_args(tp)[0]
        elif typing.get_origin(tp) is dict:
            tp = typing.get_args(tp)[1]
        else:
            return None
    tp = _unwrap(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return list(tp.model_fields)
    return None
