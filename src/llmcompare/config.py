"""A comparison written down: models, prompts, scorers and limits in a TOML (or YAML) file.

``llmcompare compare -c compare.toml`` runs one. :func:`load_config` reads and validates the file:
every key is checked (an unknown or misspelled one is refused), each model's backend options are
checked by that backend, and every error names the file, the key and its line::

    compare.toml:9: models[1].optionz: unknown key; did you mean 'options'?

:meth:`CompareConfig.build` then turns the config into what
:func:`llmcompare.comparison.compare` takes, without sending anything::

    config = load_config("compare.toml")
    with config.build() as plan:
        result = compare(**plan.compare_kwargs())

API keys never live in the file: each model names, with ``api_key_env``, the environment variable
that holds ITS key, and the variable is read when the config is built. The key then goes to the
backend only: no ``repr``, error message or :meth:`CompareConfig.public_dict` holds it.

TOML is read with the standard library (``tomllib``; ``tomli`` on Python 3.10), YAML with PyYAML
when it is installed (the ``report`` extra).
"""

from __future__ import annotations

import difflib
import json
import os
import re
import sys
import types
import typing
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal, cast

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from llmcompare.cost import Budget, LocalHardware
from llmcompare.errors import ConfigurationError, LLMCompareError
from llmcompare.model import Model
from llmcompare.prompts import PromptItem, load_prompts
from llmcompare.scorers import Scorer, scorer_from_name
from llmcompare.sources import SUITES, FieldMap, is_source, load_source
from llmcompare.types import GenerationSettings, Settings

if typing.TYPE_CHECKING:
    from llmcompare.executors import Executor

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 only
    # mypy checks this branch (python_version = 3.10) where tomli may not be installed.
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

__all__ = [
    "CONFIG_FILE_SUFFIXES",
    "CompareConfig",
    "ComparePlan",
    "ConfigFileError",
    "ExecutorConfig",
    "ModelConfig",
    "Problem",
    "load_config",
    "models_from_flags",
]

CONFIG_FILE_SUFFIXES = frozenset({".toml", ".yaml", ".yml"})
"""The file names :func:`load_config` reads: TOML, or YAML when PyYAML is installed."""

_FROZEN = ConfigDict(frozen=True, extra="forbid")

_Loc = tuple[str | int, ...]

# Option names whose values are credentials: masked in repr and in public_dict().
_SECRET_OPTION = re.compile(r"key|token|secret|password|passwd|auth|credential|cookie", re.I)
_MASK = "***"


# --------------------------------------------------------------------------------------------------
# Errors


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a config, where it is and what is wrong.

    Attributes:
        key: The key path (``models[1].options.base_url``), or ``None`` for the whole file.
        message: What is wrong and, where it can tell, how to fix it.
        line: The 1-based line of the key in the file, when known.
        column: The 1-based column, when known (syntax errors).
        where: Where the key came from when not from the file (``"-m vllm"``).
    """

    key: str | None
    message: str
    line: int | None = None
    column: int | None = None
    where: str | None = None


class ConfigFileError(ConfigurationError):
    """A config that cannot run: one line per problem, each naming the file, the line and the key.

    Attributes:
        path: The config file (``None`` for a config given on the command line only).
        problems: What is wrong, in file order.
    """

    def __init__(self, path: str | None, problems: Sequence[Problem]) -> None:
        self.path = path
        self.problems = tuple(problems)
        super().__init__("\n".join(_describe(path, p) for p in self.problems))


def _describe(path: str | None, problem: Problem) -> str:
    if problem.where is not None:
        where = problem.where
    elif path is None:
        where = "config"
    else:
        where = path
        if problem.line is not None:
            where += f":{problem.line}"
            if problem.column is not None:
                where += f":{problem.column}"
    key = f"{problem.key}: " if problem.key else ""
    return f"{where}: {key}{problem.message}"


def _dotted(loc: Sequence[str | int]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


# --------------------------------------------------------------------------------------------------
# The schema


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
    """

    model_config = _FROZEN

    label: Annotated[str, AfterValidator(_label)] | None = None
    name: Annotated[str, Field(min_length=1)]
    options: dict[str, Any] = Field(default_factory=dict)
    api_key_env: Annotated[str, AfterValidator(_env_name)] | None = None
    settings: GenerationSettings = Field(default_factory=GenerationSettings)
    rpm: Annotated[float, Field(gt=0)] | None = None
    tpm: Annotated[float, Field(gt=0)] | None = None

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
    workers: Annotated[int, Field(ge=1)] = 2
    num_gpus_per_worker: Annotated[float, Field(ge=0)] = 0.0
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
    """

    model_config = _FROZEN

    models: list[ModelConfig] = Field(default_factory=list)
    prompts: Annotated[list[str], Field(min_length=1)] | None = None
    scorers: list[Annotated[str, AfterValidator(_scorer_name)]] = Field(default_factory=list)
    settings: GenerationSettings = Field(default_factory=GenerationSettings)
    samples: Annotated[int, Field(ge=1)] = 1
    concurrency: Annotated[int, Field(ge=1)] = 8
    rpm: Annotated[float, Field(gt=0)] | None = None
    tpm: Annotated[float, Field(gt=0)] | None = None
    budget: Budget | None = None
    hardware: LocalHardware | None = None
    confidence: Annotated[float, Field(gt=0, lt=1)] = 0.95
    stats_seed: Annotated[int, Field(ge=0)] = 0
    out: str | None = None
    executor: ExecutorConfig | None = None
    fields: FieldMap | None = None
    split: str | None = None
    limit: Annotated[int, Field(ge=1)] | None = None
    allow_code_execution: bool = False
    pass_at: list[Annotated[int, Field(ge=1)]] | None = None

    _base: Path | None = PrivateAttr(default=None)
    _source: _Source | None = PrivateAttr(default=None)

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

        Returns:
            A new config; this one is unchanged.

        Raises:
            ConfigFileError: When a value is out of bounds.
        """
        update: dict[str, Any] = {}
        chosen = list(self.models if models is None else models)
        given = dict(settings or {})
        try:
            if given:
                update["settings"] = GenerationSettings.model_validate(
                    {**self.settings.as_settings(), **given}
                )
            if given or rpm is not None or tpm is not None:
                chosen = [
                    _without(m, set(given), rpm=rpm is not None, tpm=tpm is not None)
                    for m in chosen
                ]
            update["models"] = chosen
            if prompts is not None:
                update["prompts"] = [
                    str(p) if _named(str(p)) else str(Path(p).absolute()) for p in prompts
                ]
            if fields:
                old_fields = self.fields.model_dump(exclude_none=True) if self.fields else {}
                update["fields"] = FieldMap.model_validate({**old_fields, **fields})
            if out is not None:
                update["out"] = str(Path(out).absolute())
            if executor is not None:
                update["executor"] = executor
            if budget_usd is not None:
                old = self.budget.model_dump(exclude_unset=True) if self.budget else {}
                update["budget"] = Budget.model_validate({**old, "max_usd": budget_usd})
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
            ):
                if value is not None:
                    update[name] = value
            # Validate the whole (the bounds of samples, rpm, ...) while keeping each model's
            # place in the file; model_copy alone would not check anything.
            CompareConfig.model_validate(
                {**self.model_dump(exclude={"models"}), **update, "models": []}
            )
        except ValidationError as exc:
            raise ConfigFileError(self.path, _problems(exc, None, "command line")) from None
        return self.model_copy(update=update)

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
        use), each API key read from its model's ``api_key_env``, and each model with a rate
        limit wrapped in :func:`llmcompare.ratelimit.with_rate_limit`.

        Returns:
            The plan; close it (or use it as a context manager) to close the models.

        Raises:
            ConfigFileError: For a config without models, or a model that cannot be built (an
                unset key variable, an option its backend refuses); the message names the
                variable and the model.
            PromptFileError: For a prompt file that cannot be read (names its file and line).
        """
        from llmcompare.plugins import get_model
        from llmcompare.ratelimit import with_rate_limit

        if not self.models:
            raise ConfigFileError(
                self.path,
                [Problem("models", "no models: add [[models]] tables to the file, or give -m")],
            )
        self.check()
        items = self._items()
        scorers = [scorer_from_name(s) for s in self.scorers]
        built: dict[str, Model] = {}
        # Without a model's own limit, compare() applies the shared ones (and records them);
        # with one, each model is wrapped with its own limits, else the shared ones.
        own_limits = any(m.rpm is not None or m.tpm is not None for m in self.models)
        try:
            for i, m in enumerate(self.models):
                options = dict(m.options)
                if m.api_key_env is not None:
                    key = os.environ.get(m.api_key_env)
                    if not key:
                        raise ConfigFileError(
                            self.path,
                            [
                                self._problem(
                                    i,
                                    ["api_key_env"],
                                    f"the environment variable {m.api_key_env} is not set (or "
                                    f"is empty); it must hold the API key of model {m.shown!r}",
                                )
                            ],
                        )
                    options["api_key"] = key
                try:
                    model = get_model(m.name, **options)
                except ValidationError as exc:
                    # Only the messages: a pydantic error's text would show the values (the key).
                    raise ConfigFileError(
                        self.path,
                        [
                            self._problem(i, ["options", *err["loc"]], _message(err, None))
                            for err in exc.errors()
                        ],
                    ) from None
                except (LLMCompareError, LookupError, ValueError) as exc:
                    raise ConfigFileError(self.path, [self._problem(i, [], str(exc))]) from None
                finally:
                    options.clear()  # the key is held by the model only
                rpm = m.rpm if m.rpm is not None else self.rpm
                tpm = m.tpm if m.tpm is not None else self.tpm
                if own_limits and (rpm is not None or tpm is not None):
                    model = with_rate_limit(model, rpm=rpm, tpm=tpm)
                key = m.label or model.id
                if key in built:
                    model.close()
                    raise ConfigFileError(
                        self.path,
                        [
                            self._problem(
                                i, ["label"], f"two models of the run are {key!r}: label them"
                            )
                        ],
                    )
                built[key] = model
        except BaseException:
            for model in built.values():
                model.close()
            raise
        overrides = {
            key: s
            for key, m in zip(built, self.models, strict=True)
            if (s := m.settings.as_settings())
        }
        return ComparePlan(
            config=self,
            models=built,
            prompts=items,
            scorers=tuple(scorers),
            overrides=overrides,
            settings=self.settings.as_settings(),
            rpm=None if own_limits else self.rpm,
            tpm=None if own_limits else self.tpm,
        )

    def _load(self, source: str | Path) -> list[PromptItem]:
        if is_source(source) or self.fields is not None:
            # A field mapping reads a JSONL/CSV file's own columns, as a dataset's.
            return load_source(source, fields=self.fields, split=self.split, limit=self.limit)
        return load_prompts(source)[: self.limit]

    def _items(self) -> list[PromptItem] | None:
        files = self._sources()
        if not files:
            return None
        items: list[PromptItem] = []
        owner: dict[str, str | Path] = {}
        for path in files:
            for item in self._load(path):
                if item.id in owner:
                    other = owner[item.id]
                    where = "twice in it" if other == path else f"also in {other}"
                    raise ConfigFileError(
                        self.path,
                        [
                            Problem(
                                "prompts",
                                f"item id {item.id!r} of {path} is {where}: ids must be unique "
                                "across the prompt files",
                                line=self._source.line_of(("prompts",)) if self._source else None,
                            )
                        ],
                    )
                owner[item.id] = path
                items.append(item)
        return items

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


def _order(problem: Problem) -> tuple[int, str]:
    return (problem.line or 0, problem.key or "")


@dataclass(frozen=True)
class ComparePlan:
    """What a built config gives :func:`llmcompare.comparison.compare`; it owns the models.

    Attributes:
        config: The config it was built from (:meth:`CompareConfig.public_dict` for the record).
        models: The models by label, in run order (rate-limited where the config says).
        prompts: The items of the prompt files, or ``None`` for the built-in suite.
        scorers: Scorers applied to every item.
        overrides: Each model's own settings, by label (models without any are left out).
        settings: The shared settings.
        rpm: The shared requests-per-minute limit for ``compare`` to apply, when no model has
            its own (otherwise every model is already wrapped with its limits).
        tpm: The same for tokens per minute.
    """

    config: CompareConfig = field(repr=False)
    models: dict[str, Model]
    prompts: list[PromptItem] | None = field(repr=False)
    scorers: tuple[Scorer, ...] = ()
    overrides: dict[str, Settings] = field(default_factory=dict)
    settings: Settings = field(default_factory=lambda: cast(Settings, {}))
    rpm: float | None = None
    tpm: float | None = None

    def compare_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``compare(**plan.compare_kwargs(), progress=...)``."""
        c = self.config
        return {
            "models": self.models,
            "prompts": self.prompts,
            "scorers": self.scorers,
            "samples": c.samples,
            "concurrency": c.concurrency,
            "budget": c.budget,
            "hardware": c.hardware,
            "overrides": self.overrides,
            "confidence": c.confidence,
            "stats_seed": c.stats_seed,
            "rpm": self.rpm,
            "tpm": self.tpm,
            "executor": None if c.executor is None else c.executor.build(),
            "allow_code_execution": c.allow_code_execution,
            "pass_at": c.pass_at,
            **self.settings,
        }

    def close(self) -> None:
        """Close every model (``compare`` closes only the models it built from names)."""
        for model in self.models.values():
            model.close()

    def __enter__(self) -> ComparePlan:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------------------------------
# Command-line models: -m [LABEL=]NAME, -O KEY=VALUE


_MODEL_FIELDS = ("api_key_env", "rpm", "tpm")


def _option_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def models_from_flags(
    flags: Sequence[tuple[str, str]], config: CompareConfig | None = None
) -> list[ModelConfig]:
    """The models of ``-m`` and ``-O`` flags, given in command-line order.

    ``-m NAME`` is a model (known by its id); ``-m LABEL=NAME`` gives it a label, needed when
    two models have the same name. With a config file, ``-m LABEL`` naming one of its models
    (by label, else by the name of one without a label) takes that model as the file
    describes it. ``-O KEY=VALUE`` applies to the ``-m``
    before it: a backend option (``base_url``, ``timeout``, ``device``, ...; ``options.KEY``
    says so explicitly), or one of the model's own keys: ``api_key_env``, ``rpm``, ``tpm``,
    ``settings.NAME``. A value is read as JSON when it parses (``30``, ``true``, ``null``,
    ``"text"``, ``[...]``), else as text.

    Args:
        flags: ``("-m", value)`` and ``("-O", value)`` pairs, in the order given.
        config: The config file's models, for ``-m LABEL``.

    Returns:
        The models, in order.

    Raises:
        ConfigFileError: For an ``-O`` without ``=``, before any ``-m``, or with a bad value; one
            line naming the flag.
    """
    file_models: dict[str, ModelConfig] = {}
    for m in config.models if config else ():
        file_models.setdefault(m.shown, m)
    specs: list[tuple[str, dict[str, Any], ModelConfig | None]] = []
    for flag, value in flags:
        if flag == "-m":
            label, sep, name = value.partition("=")
            if not sep and value in file_models:
                chosen = file_models[value]
                specs.append((value, chosen.model_dump(exclude_unset=True), chosen))
            else:
                specs.append((value, {"name": name} if sep else {"name": value}, None))
                if sep:
                    specs[-1][1]["label"] = label
            continue
        key, sep, text = value.partition("=")
        key = key.strip()
        if not sep or not key:
            _flag_error(f"-O {value}", "an option is KEY=VALUE, such as -O base_url=http://...")
        if not specs:
            _flag_error(f"-O {value}", "an option applies to the -m before it: give -m first")
        shown, data, _ = specs[-1]
        specs[-1] = (shown, data, None)  # changed on the command line: no longer the file's
        parsed = _option_value(text)
        head, dot, rest = key.partition(".")
        if key in ("label", "name"):
            _flag_error(f"-O {value}", "give a label as -m LABEL=NAME")
        elif key in _MODEL_FIELDS:
            data[key] = parsed
        elif head == "settings" and dot:
            data["settings"] = {**data.get("settings", {}), rest: parsed}
        else:
            option = rest if head == "options" and dot else key
            data["options"] = {**data.get("options", {}), option: parsed}
    out = []
    for shown, data, unchanged in specs:
        if unchanged is not None:
            out.append(unchanged)
            continue
        try:
            out.append(ModelConfig.model_validate(data))
        except ValidationError as exc:
            raise ConfigFileError(None, _problems(exc, None, f"-m {shown}")) from None
    return out


def _flag_error(where: str, message: str) -> typing.NoReturn:
    raise ConfigFileError(None, [Problem(None, message, where=where)])


# --------------------------------------------------------------------------------------------------
# Reading files


@dataclass(frozen=True)
class _Source:
    """A config file and the line of each key in it."""

    path: str
    lines: Mapping[_Loc, int]

    def line_of(self, loc: Sequence[str | int]) -> int | None:
        """The line of the longest prefix of ``loc`` found in the file."""
        parts = tuple(loc)
        while parts:
            if parts in self.lines:
                return self.lines[parts]
            parts = parts[:-1]
        return None


def load_config(path: str | Path) -> CompareConfig:
    """Read and validate a comparison config file (``.toml``, or ``.yaml``/``.yml``).

    Every key is checked against the schema (an unknown one is an error, with the closest known
    key suggested) and each model's options against its backend; models are not built and
    environment variables not read (that is :meth:`CompareConfig.build`).

    Args:
        path: The file.

    Returns:
        The config; its relative paths are relative to the file's folder.

    Raises:
        ConfigFileError: For a missing or malformed file or any invalid key: one line per
            problem, ``FILE:LINE: KEY: what is wrong``.
    """
    name = str(path)
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigFileError(name, [Problem(None, "no such file")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigFileError(name, [Problem(None, f"cannot read: {exc}")]) from None
    suffix = p.suffix.lower()
    if suffix not in CONFIG_FILE_SUFFIXES:
        raise ConfigFileError(name, [Problem(None, "unknown format: use .toml, .yaml or .yml")])
    data, lines = _read_toml(text, name) if suffix == ".toml" else _read_yaml(text, name)
    if not isinstance(data, Mapping):
        raise ConfigFileError(name, [Problem(None, "expected a mapping of keys at the top level")])
    source = _Source(name, lines)
    try:
        config = CompareConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigFileError(name, sorted(_problems(exc, source), key=_order)) from None
    config._base = p.parent.absolute()
    config._source = source
    for i, model in enumerate(config.models):
        model._index = i
    config.check()
    return config


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


def _message(err: Any, allowed: Sequence[str] | None) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        loc = err["loc"]
        key = str(loc[-1]) if loc else ""
        if not allowed:
            return "unknown key"
        close = difflib.get_close_matches(key, list(allowed), n=1, cutoff=0.6)
        if close:
            return f"unknown key; did you mean {close[0]!r}?"
        return "unknown key; the keys here are " + ", ".join(allowed)
    if kind == "missing":
        return "required, and missing"
    # Only pydantic's message: its input value could be a secret (an option, a header).
    msg = str(err["msg"])
    return msg.removeprefix("Value error, ")


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


_TOML_AT = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")


def _read_toml(text: str, name: str) -> tuple[Any, dict[_Loc, int]]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        # Python 3.14 gives the place as attributes; earlier ones only in the message.
        line, column = getattr(exc, "lineno", None), getattr(exc, "colno", None)
        at = _TOML_AT.search(message)
        if at is not None:
            line, column = int(at[1]), int(at[2])
            message = message[: at.start()]
        raise ConfigFileError(
            name, [Problem(None, f"invalid TOML: {message}", line=line, column=column)]
        ) from None
    return data, _TomlLines(text).scan()


def _read_yaml(text: str, name: str) -> tuple[Any, dict[_Loc, int]]:
    try:
        import yaml
    except ImportError:
        raise ConfigFileError(
            name,
            [
                Problem(
                    None,
                    "reading YAML config files needs PyYAML: pip install 'llmcompare[report]' "
                    "(or write the config in TOML)",
                )
            ],
        ) from None
    try:
        data = yaml.safe_load(text)
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigFileError(
            name, [Problem(None, f"invalid YAML: {problem}", line=line)]
        ) from None
    lines: dict[_Loc, int] = {}

    def walk(node: yaml.Node, loc: _Loc) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode):
                    sub = (*loc, str(key.value))
                    lines.setdefault(sub, key.start_mark.line + 1)
                    walk(value, sub)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                sub = (*loc, i)
                lines.setdefault(sub, item.start_mark.line + 1)
                walk(item, sub)

    if root is not None:
        walk(root, ())
    return data, lines


class _ScanError(Exception):
    """The scanner met something it does not follow: it keeps the lines found so far."""


class _TomlLines:
    """The line of every key of a TOML document that tomllib has already accepted.

    A small scanner of TOML's structure (tables, arrays of tables, dotted keys, inline tables,
    arrays, strings and comments), not a parser: the values are skipped, only where each key
    and array item starts is kept, as ``{("models", 1, "options"): 12}``. Best effort: where it
    loses track it stops, and the keys after that have no line.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.line = 1
        self.lines: dict[_Loc, int] = {}
        self.arrays: dict[_Loc, int] = {}

    def scan(self) -> dict[_Loc, int]:
        table: _Loc = ()
        try:
            while True:
                self.skip(newlines=True)
                if self.pos >= len(self.text):
                    break
                start = self.pos
                table = self.header() if self.peek() == "[" else self.key_value(table)
                if self.pos == start:
                    break
        except (_ScanError, IndexError):
            pass
        return self.lines

    # -- characters ---------------------------------------------------------------------------

    def peek(self, ahead: int = 0) -> str:
        i = self.pos + ahead
        return self.text[i] if i < len(self.text) else ""

    def advance(self, n: int = 1) -> None:
        chunk = self.text[self.pos : self.pos + n]
        self.line += chunk.count("\n")
        self.pos += len(chunk)

    def skip(self, *, newlines: bool) -> None:
        while self.pos < len(self.text):
            c = self.peek()
            if c in " \t" or (newlines and c in "\r\n"):
                self.advance()
            elif c == "#":
                end = self.text.find("\n", self.pos)
                self.advance((len(self.text) if end < 0 else end) - self.pos)
            else:
                return

    def expect(self, char: str) -> None:
        if self.peek() != char:
            raise _ScanError(char)
        self.advance()

    def note(self, loc: _Loc, line: int) -> None:
        self.lines.setdefault(loc, line)

    # -- structure ----------------------------------------------------------------------------

    def header(self) -> _Loc:
        line = self.line
        self.expect("[")
        is_array = self.peek() == "["
        if is_array:
            self.advance()
        parts = self.key()
        self.skip(newlines=False)
        self.expect("]")
        if is_array:
            self.expect("]")
        resolved: list[str | int] = []
        for j, part in enumerate(parts):
            resolved.append(part)
            loc = tuple(resolved)
            self.note(loc, line)
            if is_array and j == len(parts) - 1:
                n = self.arrays.get(loc, 0)
                self.arrays[loc] = n + 1
                resolved.append(n)
                self.note(tuple(resolved), line)
            elif loc in self.arrays:
                resolved.append(self.arrays[loc] - 1)  # [a.b] after [[a]]: the last a
        return tuple(resolved)

    def key_value(self, table: _Loc) -> _Loc:
        line = self.line
        parts = self.key()
        for j in range(1, len(parts) + 1):
            self.note((*table, *parts[:j]), line)
        self.skip(newlines=False)
        self.expect("=")
        self.skip(newlines=False)
        self.value((*table, *parts))
        return table

    def key(self) -> list[str]:
        parts: list[str] = []
        while True:
            self.skip(newlines=False)
            c = self.peek()
            if c in ('"', "'"):
                parts.append(self.string())
            else:
                start = self.pos
                while self.peek() and (self.peek().isalnum() or self.peek() in "_-"):
                    self.advance()
                if self.pos == start:
                    raise _ScanError("key")
                parts.append(self.text[start : self.pos])
            self.skip(newlines=False)
            if self.peek() != ".":
                return parts
            self.advance()

    def value(self, loc: _Loc) -> None:
        c = self.peek()
        if c in ('"', "'"):
            self.string()
        elif c == "[":
            self.array(loc)
        elif c == "{":
            self.inline_table(loc)
        else:
            start = self.pos
            while self.peek() and self.peek() not in ",]}\r\n#":
                self.advance()
            if self.pos == start:
                raise _ScanError("value")

    def string(self) -> str:
        quote = self.peek()
        basic = quote == '"'
        if self.text.startswith(quote * 3, self.pos):
            self.advance(3)
            start = self.pos
            while self.pos < len(self.text):
                if basic and self.peek() == "\\":
                    self.advance(2)
                elif self.text.startswith(quote * 3, self.pos):
                    run = 3
                    while run < 5 and self.peek(run) == quote:
                        run += 1
                    content = self.text[start : self.pos + run - 3]
                    self.advance(run)
                    return content
                else:
                    self.advance()
            raise _ScanError("string")
        self.advance()
        start = self.pos
        while self.pos < len(self.text):
            c = self.peek()
            if basic and c == "\\":
                self.advance(2)
            elif c == quote:
                content = self.text[start : self.pos]
                self.advance()
                return content
            elif c == "\n":
                break
            else:
                self.advance()
        raise _ScanError("string")

    def array(self, loc: _Loc) -> None:
        self.expect("[")
        index = 0
        while True:
            self.skip(newlines=True)
            if self.peek() == "]":
                self.advance()
                return
            self.note((*loc, index), self.line)
            self.value((*loc, index))
            self.skip(newlines=True)
            if self.peek() == ",":
                self.advance()
                index += 1
            elif self.peek() != "]":
                raise _ScanError("array")

    def inline_table(self, loc: _Loc) -> None:
        self.expect("{")
        while True:
            self.skip(newlines=True)
            if self.peek() == "}":
                self.advance()
                return
            line = self.line
            parts = self.key()
            for j in range(1, len(parts) + 1):
                self.note((*loc, *parts[:j]), line)
            self.skip(newlines=False)
            self.expect("=")
            self.skip(newlines=False)
            self.value((*loc, *parts))
            self.skip(newlines=True)
            if self.peek() == ",":
                self.advance()
            elif self.peek() != "}":
                raise _ScanError("inline table")
