"""A comparison's plan: every request of every model, built and checked before the first is sent.

Each model's part is a :class:`ModelRun`: its requests in the order of its rows, one
:class:`PlannedRequest` each, which then records where the request's answer came from (the run
folder, the response cache, or the model). :func:`plan_record` and :func:`config_record` are
what the run folder keeps of the plan.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from llmcompare._version import __version__
from llmcompare.comparison._inputs import Inputs, pass_at_ks
from llmcompare.cost import Budget, CostTracker, LocalHardware
from llmcompare.errors import ConfigurationError, user_stacklevel
from llmcompare.model import Model, ModelBase
from llmcompare.runs import model_identity, request_key
from llmcompare.runs._folder import fingerprint
from llmcompare.schema import check_formats
from llmcompare.scorers import scorer_name
from llmcompare.types import Completion, GenerationSettings, Request, Result, Settings

if TYPE_CHECKING:
    from llmcompare.comparison._run import Sending
    from llmcompare.energy import EnergyCounter
    from llmcompare.executors import Executor

__all__ = ["ModelRun", "PlannedRequest", "config_record", "plan_record", "plan_runs"]


@dataclass
class PlannedRequest:
    """One request of a model's run: what is sent for which row, and where its answer came from.

    Attributes:
        item_id: The item it asks.
        sample: Which sample of the item it is.
        request: The request as sent.
        key: Its :func:`~llmcompare.runs.request_key`: its name in the run folder and the
            response cache; given (:meth:`ModelRun.name_requests`) when either is used.
        result: Its answer or failure, once known.
        cached: Whether the answer came from the response cache (now, or in the run that
            recorded it).
        sent: Whether this call sent it (rather than reading its answer back).
        charged_before: What earlier runs on the run folder were charged for its failures
            that may be billed (a timeout, a cut stream), one (dollars, tokens) per failed row
            read back.
    """

    item_id: str
    sample: int
    request: Request
    key: str | None = None
    result: Result | None = None
    cached: bool = False
    sent: bool = False
    charged_before: tuple[tuple[Decimal | None, int], ...] = ()


@dataclass
class ModelRun:
    """One model's part of a comparison: its requests, in the order of its rows.

    Attributes:
        label: The model's label in the record.
        model: The model.
        requests: One record per request.
        cacheable: Whether the model has a cache identity (its answers go to the cache).
        wall_s: The wall time of what this call sent to it.
        hosted: The machine it is served from, when it is a hosted model (costed from
            machine time, open weights in the record).
        meter: The NVML counter of the hosted machine's GPU on this machine (``hosted.gpu``).
        joules: What ``meter`` measured over the window in which this call sent the model its
            requests (None: not measured).
    """

    label: str
    model: Model
    requests: list[PlannedRequest] = field(default_factory=list)
    cacheable: bool = False
    wall_s: float = 0.0
    hosted: LocalHardware | None = None
    meter: EnergyCounter | None = None
    joules: float | None = None

    @property
    def sent(self) -> bool:
        """Whether this call sent the model anything."""
        return any(p.sent for p in self.requests)

    def plan(self, inputs: Inputs, override: Mapping[str, Any]) -> None:
        """Build (and so validate) every request of this model: items by samples."""
        merged: dict[str, Any] = {**inputs.settings, **dict(override)}
        base = merged.get("seed")
        for sample in range(inputs.samples):
            if inputs.samples > 1:
                # Each sample its own seed, recorded with its row: samples differ, reruns repeat.
                merged["seed"] = (base or 0) + sample
            for item in inputs.items:
                own = item.json_schema
                # An item's schema is its response_format unless the call gives one (or None).
                extra = (
                    {"response_format": own}
                    if own is not None and "response_format" not in merged
                    else {}
                )
                request = Request.of(item.conversation(), **merged, **extra)
                self.requests.append(PlannedRequest(item.id, sample, request))
        # The model refuses now a setup it cannot run (a ChatGPT model without structured
        # outputs, a missing llguidance): every run is planned before any request is sent.
        check_formats(self.model, [p.request for p in self.requests])

    def name_requests(self, *, warn: bool) -> None:
        """Give every request its key; the model's identity is asked for once (it may load weights).

        Args:
            warn: Warn when the model has no identity because asking for it failed (the
                response cache is in use, and this model will not be cached).
        """
        identity = _identity(self.model, warn=warn)
        self.cacheable = identity is not None
        # A model that is never cached (a test double) still names its requests in the run
        # folder: by its id, as model_identity names a model with no cache identity of its own.
        named = identity if identity is not None else {"id": self.model.id}
        for planned in self.requests:
            planned.key = request_key(named, planned.request, planned.sample)

    def answer(
        self, i: int, completion: Completion | None = None, error: BaseException | None = None
    ) -> PlannedRequest:
        """Record request ``i``'s answer or failure; returns its record."""
        planned = self.requests[i]
        planned.result = Result(i, planned.request, completion, error)
        return planned


def plan_runs(
    built: Sequence[tuple[str, Model]],
    inputs: Inputs,
    overrides: Mapping[str, Settings],
    pass_at: Sequence[int] | None,
    budget: Budget | None,
    hardware: LocalHardware | None,
    executor: Executor | None,
) -> tuple[list[ModelRun], tuple[int, ...], CostTracker]:
    """Every model's requests, pass@k's k values and the cost tracker.

    Raises:
        ConfigurationError: For a model given twice, overrides of models not in the run, a
            pass@k that cannot be computed, a budget that cannot be enforced, a request a model
            cannot run.
    """
    runs = [ModelRun(label, model) for label, model in built]
    labels = [r.label for r in runs]
    if len(set(labels)) != len(labels):
        raise ConfigurationError(
            f"each model must appear once; got {labels} (give a mapping of labels to "
            "models to compare one model twice)"
        )
    unknown = sorted(set(overrides) - set(labels))
    if unknown:
        raise ConfigurationError(
            f"overrides name models that are not in this run: {unknown}; its models: {labels}"
        )
    ks = _greedy_pass_at(pass_at, pass_at_ks(pass_at, inputs.samples), runs, inputs, overrides)
    tracker = _cost_tracker(budget, hardware, executor, runs)
    # Every request of every model is built (and so validated) before the first is sent.
    for run in runs:
        run.plan(inputs, overrides.get(run.label, {}))
    return runs, ks, tracker


def _greedy_pass_at(
    pass_at: Sequence[int] | None,
    ks: tuple[int, ...],
    runs: Sequence[ModelRun],
    inputs: Inputs,
    overrides: Mapping[str, Mapping[str, Any]],
) -> tuple[int, ...]:
    """The k values of pass@k, refusing k > 1 where a model samples greedily.

    At temperature 0 every sample is the same answer, so pass@k would be pass@1 under another
    name: an explicit k > 1 is refused; the default keeps only pass@1.
    """
    shared = inputs.settings
    greedy = [
        r.label for r in runs if {**shared, **overrides.get(r.label, {})}.get("temperature") == 0
    ]
    if not greedy or max(ks) == 1:
        return ks
    if pass_at is None:
        return (1,)
    raise ConfigurationError(
        f"pass_at={list(ks)} at temperature 0 ({', '.join(greedy)}): greedy samples are one "
        "answer repeated, so pass@k > 1 would be pass@1; set a temperature (e.g. "
        "temperature=0.8) or ask only for pass_at=[1]"
    )


def _cost_tracker(
    budget: Budget | None,
    hardware: LocalHardware | None,
    executor: Executor | None,
    runs: Sequence[ModelRun],
) -> CostTracker:
    """The run's cost tracker; a budget with models an executor runs is refused.

    A budget is enforced before each request is sent, which only this process can do.
    """
    if budget is None or executor is None:
        return CostTracker(budget=budget, hardware=hardware)
    remote = [r.label for r in runs if executor.handles(r.model)]
    if remote:
        raise ConfigurationError(
            f"a budget cannot be enforced on models the executor runs ({', '.join(remote)}): "
            "drop the budget, or run them in this process (no executor / --ray-workers)"
        )
    return CostTracker(budget=budget, hardware=hardware)


def _identity(model: Model, *, warn: bool) -> dict[str, Any] | None:
    """The model's cache identity, or None when it cannot be cached (a test double, say)."""
    try:
        return model_identity(model)
    except Exception as exc:  # noqa: BLE001 - no identity: no cache for this model, not a failed run
        if warn:
            warnings.warn(
                f"{model.id}: not cached ({type(exc).__name__}: {exc})",
                RuntimeWarning,
                stacklevel=user_stacklevel(),
            )
        return None


# -- what the run folder keeps of the plan ---------------------------------------------------------


def plan_record(
    runs: Sequence[ModelRun], inputs: Inputs, overrides: Mapping[str, Settings] | None
) -> dict[str, Any]:
    """What makes two runs the same comparison: change any of it and a folder is not resumed.

    The requests as validated (so ``temperature=0`` and ``0.0`` are one setting), not the items'
    references, scorers or tags: scores are computed at the end, so those may change. The
    requests as sent, not their keys: a plan is known before any model loads its weights.
    """
    return {
        "models": {r.label: _model_record(r.model) for r in runs},
        "settings": _settings_record(inputs.settings),
        "overrides": {k: _settings_record(v) for k, v in (overrides or {}).items()},
        "requests": {
            r.label: fingerprint([p.request.model_dump(mode="json") for p in r.requests])
            for r in runs
        },
        "items": len(inputs.items),
        "samples": inputs.samples,
    }


def config_record(
    runs: Sequence[ModelRun],
    inputs: Inputs,
    budget: Budget | None,
    hardware: LocalHardware | None,
    sending: Sending,
) -> dict[str, Any]:
    """The rest of the configuration, for the record: scorers, budget, limits (no secrets)."""
    retry = sending.retry
    return {
        "llmcompare": __version__,
        "models": [
            {"label": r.label, "id": r.model.id, "info": r.model.info.model_dump(mode="json")}
            for r in runs
        ],
        "scorers": [scorer_name(s) for s in inputs.scorers],
        "budget": None if budget is None else budget.model_dump(mode="json"),
        "hardware": None if hardware is None else hardware.model_dump(mode="json"),
        "concurrency": sending.concurrency,
        "retry": None
        if retry is None
        else {"attempts": retry.attempts, "deadline_s": retry.deadline_s},
        "rpm": sending.rpm,
        "tpm": sending.tpm,
        # Each model's and judge's own limits as given, beside the shared ones they replace.
        "limits": {
            label: {"rpm": lim.rpm, "tpm": lim.tpm} for label, lim in sending.limits.items()
        },
    }


def _settings_record(settings: Mapping[str, Any]) -> dict[str, Any]:
    # Validated, so that temperature=0 and 0.0, or stop="x" and ["x"], are one setting.
    return GenerationSettings.model_validate(dict(settings)).model_dump(
        mode="json", exclude_unset=True
    )


def _model_record(model: Model) -> Any:
    # An API model's identity is cheap and names its server: the same id on another server is
    # another model. A local model's would load its weights; its id and description say which
    # weights it runs.
    if isinstance(model, ModelBase) and not model.info.open_weights:
        try:
            identity = model.cache_identity()
        except Exception:  # noqa: BLE001 - no identity: the id alone, as for local models
            identity = None
        if identity is not None:
            return {"id": model.id, "identity": identity}
    return {"id": model.id, "description": model.info.description}
