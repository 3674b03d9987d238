"""Running totals of usage and cost, and budgets enforced before a request is sent."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Sequence
from decimal import Decimal
from types import TracebackType
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field
from typing_extensions import Self

from llmcompare.cost._cost import (
    Assessed,
    Cost,
    CostStatus,
    EnergySource,
    LocalHardware,
    assess,
    batch_tier,
    energy_sum,
    worse,
)
from llmcompare.cost._prices import get_price
from llmcompare.errors import BudgetExceeded
from llmcompare.model import Model
from llmcompare.types import Completion, Request, Usage
from llmcompare.wrapper import ModelWrapper

__all__ = ["Budget", "CostTracker", "Totals", "input_token_bound"]

logger = logging.getLogger("llmcompare.cost")

_ZERO = Decimal(0)


def input_token_bound(request: Request) -> int:
    """An upper bound on the input tokens of a request, computed without a tokenizer.

    UTF-8 bytes of every message plus 8 tokens per message and 32 per request: byte-level BPE
    tokenizers (OpenAI's, Llama's) never produce more tokens than bytes, and the margins cover
    chat-format tokens (OpenAI adds 3 per message and 3 per reply). Real counts are usually
    about a quarter of this; budgets reserve it and give the rest back once the real usage is
    known.

    Args:
        request: The request.

    Returns:
        The bound, in tokens.
    """
    total = 32
    for message in request.messages:
        text = message.content
        total += 8 + (len(text) if text.isascii() else len(text.encode("utf-8")))
    return total


class Budget(BaseModel):
    """Limits a :class:`CostTracker` enforces before each request is sent.

    Each request reserves its worst case: :func:`input_token_bound` input tokens plus its
    ``max_tokens`` output tokens (``default_max_tokens`` when the request sets none), priced at
    the model's uncached input and output prices. A request whose worst case does not fit next to
    what is already spent and reserved raises :class:`~llmcompare.BudgetExceeded` and is not
    sent. After it returns, the reservation is replaced by the real usage and cost, so the rest
    becomes available again. For API models, under any concurrency the totals never pass a
    limit, as long as providers respect ``max_tokens``.

    For a USD limit the model must have a known price (a request to an unpriced API model is
    refused, since its cost could not be bounded). A local model's dollar cost is known only
    after it ran, so the first request of each local model runs alone, as a probe, while the
    others wait (or, in a batch, are refused): its measured cost per token then bounds the
    next ones, each reserving ``highest cost per output token seen x (input bound +
    max_tokens)`` (the whole cost, prompt included, over the output tokens: a probe that
    answered in one token gives a high rate, never a low one). Before a probe has been measured
    nothing bounds its cost: that one request is what a run can pass ``max_usd`` by. The bound
    after it is an estimate from measurements, conservative (a request alone costs more per
    token than a row of a batch, and the input bound is about four times the real count), not
    a guarantee as an API price is.

    Attributes:
        max_usd: Most dollars to spend.
        max_tokens: Most tokens (input plus output) to use.
        max_requests: Most requests to send (failed ones count: they were sent).
        default_max_tokens: Output tokens assumed for a request without ``max_tokens``. Set
            ``max_tokens`` on requests for a strict guarantee: a provider may generate more.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_usd: Annotated[Decimal, Field(ge=0)] | None = None
    max_tokens: Annotated[int, Field(ge=0)] | None = None
    max_requests: Annotated[int, Field(ge=0)] | None = None
    default_max_tokens: Annotated[int, Field(gt=0)] = 4096


class Totals(BaseModel):
    """Usage and cost summed over requests.

    Attributes:
        requests: Requests sent, failed ones included.
        failed: Requests sent that raised an error.
        refused: Requests refused by the budget (not sent).
        usage: Summed token usage of the successful requests.
        cost: Summed cost of the successful requests.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    requests: int = 0
    failed: int = 0
    refused: int = 0
    usage: Usage = Usage()
    cost: Cost = Cost()


class _Sum:
    """Mutable running sums; turned into :class:`Totals` only when read (cheap to update)."""

    __slots__ = (
        "assumptions",
        "cache",
        "energy",
        "estimated",
        "failed",
        "g_co2",
        "input",
        "kwh",
        "kwh_range",
        "output",
        "reasoning",
        "reasoning_usd",
        "refused",
        "requests",
        "sources",
        "status",
        "usd",
        "written",
    )

    def __init__(self) -> None:
        self.requests = self.failed = self.refused = 0
        self.input = self.output = self.cache = self.reasoning = self.written = 0
        self.kwh_range: tuple[Decimal, Decimal] | None = None
        self.reasoning_usd: Decimal | None = None
        self.estimated = False
        self.usd = _ZERO
        self.kwh: Decimal | None = None
        self.g_co2: Decimal | None = None
        self.status: CostStatus = "priced"
        self.sources: dict[str, None] = {}
        self.assumptions: dict[str, None] = {}
        self.energy: EnergySource | None = None

    def add(self, completion: Completion, cost: Assessed) -> None:
        usd, status, kwh, g_co2, source, assumptions, energy, kwh_range, reasoning_usd, _ = cost
        self.energy = energy_sum(self.energy, energy)
        if kwh_range is not None:
            low, high = self.kwh_range or (_ZERO, _ZERO)
            self.kwh_range = (low + kwh_range[0], high + kwh_range[1])
        if reasoning_usd is not None:
            self.reasoning_usd = (self.reasoning_usd or _ZERO) + reasoning_usd
        u = completion.usage
        self.requests += 1
        self.input += u.input_tokens
        self.output += u.output_tokens
        self.cache += u.cache_read_tokens
        self.reasoning += u.reasoning_tokens
        self.written += u.cache_write_tokens
        self.estimated = self.estimated or u.estimated
        self.usd += usd
        if kwh is not None:
            self.kwh = kwh if self.kwh is None else self.kwh + kwh
        if g_co2 is not None:
            self.g_co2 = g_co2 if self.g_co2 is None else self.g_co2 + g_co2
        self.status = worse(self.status, status)
        if source and source not in self.sources:
            for line in source.split("\n"):
                self.sources[line] = None
        if assumptions and assumptions not in self.assumptions:
            for line in assumptions.split("\n"):
                self.assumptions[line] = None

    def totals(self) -> Totals:
        return Totals(
            requests=self.requests,
            failed=self.failed,
            refused=self.refused,
            usage=Usage.model_construct(
                input_tokens=self.input,
                output_tokens=self.output,
                cache_read_tokens=self.cache,
                reasoning_tokens=self.reasoning,
                estimated=self.estimated,
                cache_write_tokens=self.written,
            ),
            cost=Cost.model_construct(
                usd=self.usd,
                status=self.status,
                kwh=self.kwh,
                g_co2=self.g_co2,
                source="\n".join(self.sources),
                assumptions="\n".join(self.assumptions),
                energy=self.energy,
                kwh_range=self.kwh_range,
                reasoning_usd=self.reasoning_usd,
            ),
        )


class _Reservation:
    __slots__ = ("local", "model_id", "probe", "tokens", "usd")

    def __init__(
        self, tokens: int, usd: Decimal, model_id: str, *, probe: bool, local: bool
    ) -> None:
        self.tokens = tokens
        self.usd = usd
        self.model_id = model_id  # the wrapped model's id: a local rate is kept under it
        self.probe = probe
        self.local = local


_PROBING = "a probe of this local model is in flight"


class _ProbeInFlight(BudgetExceeded):
    """A local model's request that must wait for its probe: not a refusal, a wait."""


class CostTracker:
    """Sum usage and cost by model, and enforce a :class:`Budget` before requests are sent.

    Wrap models with :meth:`wrap` so every call of every kind (sync, async, streaming, batch)
    is counted and checked against the budget; or pass the tracker to
    :func:`llmcompare.batch.generate_many`. Completions obtained elsewhere can be added with
    :meth:`record`. Safe to share between threads and asyncio tasks.

    Example:
        >>> from llmcompare.backends.fake import ScriptedModel
        >>> from llmcompare.cost import Budget, CostTracker
        >>> with CostTracker(Budget(max_requests=2)) as tracker:
        ...     model = tracker.wrap(ScriptedModel(default="ok", name="gpt-4o-mini"))
        ...     _ = [model.generate("hi") for _ in range(2)]
        >>> tracker.total.requests, tracker.total.cost.status
        (2, 'priced')

    Args:
        budget: Limits enforced before each request; None for no limit.
        hardware: The machine local models run on, for their cost (see
            :class:`~llmcompare.cost.LocalHardware`). Energy comes with each completion, as
            measured by its backend (``energy_j``), else from the configured watts.
    """

    def __init__(
        self,
        budget: Budget | None = None,
        *,
        hardware: LocalHardware | None = None,
    ) -> None:
        self.budget = budget
        self.hardware = hardware
        self._lock = threading.Lock()
        # Local models: the highest dollars per token measured so far, and the models whose
        # probe (their first request, alone) is in flight.
        self._local_rate: dict[str, Decimal] = {}
        self._probing: set[str] = set()
        self._total = _Sum()
        self._by_model: dict[str, _Sum] = {}
        self._spent_usd = _ZERO
        self._spent_tokens = 0
        self._sent = 0
        self._held_usd = _ZERO
        self._held_tokens = 0
        self._held_requests = 0

    # -- reading -------------------------------------------------------------------------------

    @property
    def total(self) -> Totals:
        """Totals over every model."""
        with self._lock:
            return self._total.totals()

    @property
    def by_model(self) -> dict[str, Totals]:
        """Totals per model id."""
        with self._lock:
            return {model: s.totals() for model, s in self._by_model.items()}

    @property
    def spent_usd(self) -> Decimal:
        """Dollars spent so far (priced and estimated costs; unpriced ones count as 0)."""
        with self._lock:
            return self._spent_usd

    @property
    def remaining_usd(self) -> Decimal | None:
        """Dollars of the budget neither spent nor reserved by requests in flight."""
        if self.budget is None or self.budget.max_usd is None:
            return None
        with self._lock:
            return self.budget.max_usd - self._spent_usd - self._held_usd

    def summary(self) -> str:
        """A few lines for humans: totals per model and overall."""
        lines = []
        for model, t in sorted(self.by_model.items()):
            lines.append(_line(model, t))
        lines.append(_line("total", self.total))
        return "\n".join(lines)

    # -- recording -----------------------------------------------------------------------------

    def record(self, completion: Completion, *, energy_j: float | None = None) -> Cost:
        """Add a completion obtained without :meth:`wrap` to the totals.

        Args:
            completion: The completion.
            energy_j: Measured energy of the request, for a local model.

        Returns:
            Its cost.
        """
        return self._settle(None, completion, energy_j).as_cost()

    def wrap(self, model: Model) -> Model:
        """A model whose every call goes through this tracker.

        Each request is checked against the budget before it is sent (raising
        :class:`~llmcompare.BudgetExceeded` when it does not fit) and recorded when it returns.
        In ``generate_batch``, refused requests get a ``BudgetExceeded`` result and the others
        are sent. A stream reserves at its first read and settles when it ends; close streams
        you do not read to the end (``with model.stream(...) as s:``).

        Args:
            model: Any model.

        Returns:
            The tracked model, with the same id and info.
        """
        return _TrackedModel(model, self)

    # -- budget book-keeping -------------------------------------------------------------------

    def _reserve(
        self,
        model_id: str,
        local: bool,
        request: Request,
        *,
        batch: bool = False,
        tier: str | None = None,
    ) -> _Reservation | None:
        budget = self.budget
        if budget is None:
            return None
        max_out = request.max_tokens or budget.default_max_tokens
        bound = input_token_bound(request)
        tokens = bound + max_out
        usd = _ZERO
        probe = False
        if budget.max_usd is not None and not local:
            price = get_price(model_id)
            if price is None:
                self._refuse(model_id)
                raise BudgetExceeded(
                    f"{model_id}: refused before sending: no price is known for this model, so "
                    "its cost cannot be bounded against max_usd; register one with "
                    "llmcompare.cost.register_price(...)"
                )
            # A Batch API model is billed at the batch tier, and so reserves at it; one that
            # asks for priority at its priority price (flex costs at most the standard price).
            unit_in, unit_out = (
                batch_tier(price, _ZERO, [])[:2] if batch else (price.input, price.output)
            )
            if tier == "priority" and not batch:
                listed = price.tiers.get(tier)
                if listed is None:
                    self._refuse(model_id)
                    raise BudgetExceeded(
                        f"{model_id}: refused before sending: no priority price is known for "
                        f"{price.model}, so its cost cannot be bounded against max_usd"
                    )
                unit_in, unit_out = listed.input, listed.output
            usd = (bound * unit_in + max_out * unit_out).scaleb(-6)
        with self._lock:
            why = None
            if budget.max_usd is not None and local:
                rate = self._local_rate.get(model_id)
                if rate is not None:
                    usd = rate * tokens
                elif model_id in self._probing:
                    why = _PROBING
                else:
                    probe = True
            if why is not None:
                pass
            elif (
                budget.max_requests is not None
                and self._sent + self._held_requests + 1 > budget.max_requests
            ):
                why = f"max_requests={budget.max_requests} reached"
            elif (
                budget.max_tokens is not None
                and self._spent_tokens + self._held_tokens + tokens > budget.max_tokens
            ):
                why = (
                    f"its worst case of {tokens} tokens does not fit in max_tokens="
                    f"{budget.max_tokens} ({self._spent_tokens} used, {self._held_tokens} "
                    "reserved by requests in flight)"
                )
            elif budget.max_usd is not None and (
                self._spent_usd + self._held_usd + usd > budget.max_usd
                or (probe and self._spent_usd + self._held_usd >= budget.max_usd)
            ):
                why = (
                    f"its worst case of ${usd} does not fit in max_usd=${budget.max_usd} "
                    f"(${self._spent_usd} spent, ${self._held_usd} reserved by requests in "
                    "flight)"
                )
            if why is None:
                self._held_requests += 1
                self._held_tokens += tokens
                self._held_usd += usd
                if probe:
                    self._probing.add(model_id)
                return _Reservation(tokens, usd, model_id, probe=probe, local=local)
            if why is not _PROBING:
                self._sum(model_id).refused += 1
                self._total.refused += 1
        if why is _PROBING:
            raise _ProbeInFlight(
                f"{model_id}: not sent yet: its first request runs alone to measure what a "
                "request of this local model costs, against max_usd"
            )
        raise BudgetExceeded(f"{model_id}: refused before sending: {why}")

    def needs_probe(self, model_id: str) -> bool:
        """Whether a local model's next request must run alone to measure its cost first."""
        budget = self.budget
        with self._lock:
            return (
                budget is not None
                and budget.max_usd is not None
                and model_id not in self._local_rate
            )

    def _refuse(self, model_id: str) -> None:
        with self._lock:
            self._sum(model_id).refused += 1
            self._total.refused += 1

    def _sum(self, model_id: str) -> _Sum:
        s = self._by_model.get(model_id)
        if s is None:
            s = self._by_model[model_id] = _Sum()
        return s

    def _unhold(self, reservation: _Reservation | None) -> None:
        if reservation is not None:
            self._held_requests -= 1
            self._held_tokens -= reservation.tokens
            self._held_usd -= reservation.usd
            if reservation.probe:
                self._probing.discard(reservation.model_id)

    def _settle(
        self, reservation: _Reservation | None, completion: Completion, energy_j: float | None
    ) -> Assessed:
        cost = assess(completion, self.hardware, energy_j)
        with self._lock:
            if reservation is not None and reservation.local:
                # The whole cost (prompt included) per OUTPUT token, the highest seen, bounds the
                # next requests: a probe that answered in one token gives a high rate, never a
                # low one, and a row of a batch costs less per token than a request alone.
                rate = cost.usd / max(completion.usage.output_tokens, 1)
                known = self._local_rate.get(reservation.model_id)
                if known is None or rate > known:
                    self._local_rate[reservation.model_id] = rate
            self._unhold(reservation)
            self._sent += 1
            self._spent_tokens += completion.usage.input_tokens + completion.usage.output_tokens
            self._spent_usd += cost.usd
            self._sum(completion.model).add(completion, cost)
            self._total.add(completion, cost)
        return cost

    def _release(self, reservation: _Reservation | None, model_id: str) -> None:
        with self._lock:
            self._unhold(reservation)
            self._sent += 1
            s = self._sum(model_id)
            s.requests += 1
            s.failed += 1
            self._total.requests += 1
            self._total.failed += 1

    # -- context manager -----------------------------------------------------------------------

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if logger.isEnabledFor(logging.INFO):
            logger.info("cost summary:\n%s", self.summary())

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)


def _line(name: str, t: Totals) -> str:
    energy = f", {t.cost.kwh} kWh, {t.cost.g_co2} gCO2" if t.cost.kwh is not None else ""
    return (
        f"{name}: {t.requests} requests ({t.failed} failed, {t.refused} refused), "
        f"{t.usage.input_tokens} in / {t.usage.output_tokens} out tokens, "
        f"${t.cost.usd} ({t.cost.status}){energy}"
    )


class _TrackedModel(ModelWrapper["_Reservation | None"]):
    """A model whose calls are checked against a budget and recorded; see CostTracker.wrap."""

    label = "tracked"

    def __init__(self, inner: Model, tracker: CostTracker) -> None:
        super().__init__(inner)
        self._tracker = tracker
        self._local = inner.info.open_weights
        self._batch_api = getattr(inner, "batch_api", False) is True  # chatgpt's batch=True
        tier = getattr(inner, "service_tier", None)  # chatgpt's service_tier option
        self._tier = tier if isinstance(tier, str) else None

    def _before(self, request: Request) -> _Reservation | None:
        deadline = time.monotonic() + _PROBE_WAIT_S
        while True:
            try:
                return self._tracker._reserve(
                    self._id, self._local, request, batch=self._batch_api, tier=self._tier
                )
            except _ProbeInFlight as exc:
                if time.monotonic() > deadline:
                    raise _probe_timeout(self._id) from exc
                time.sleep(_PROBE_POLL_S)

    def _before_batch(self, requests: Sequence[Request]) -> list[_Reservation | Exception | None]:
        # No waiting here: a batch's rows are admitted together, so a row waiting for the probe
        # of its own batch would wait forever. Rows behind a probe are not sent (their error
        # says why); generate_many sends a local model's probe on its own first.
        out: list[_Reservation | Exception | None] = []
        for request in requests:
            try:
                out.append(
                    self._tracker._reserve(
                        self._id, self._local, request, batch=self._batch_api, tier=self._tier
                    )
                )
            except BudgetExceeded as exc:
                out.append(exc)
        return out

    async def _abefore(self, request: Request) -> _Reservation | None:
        deadline = time.monotonic() + _PROBE_WAIT_S
        while True:
            try:
                return self._tracker._reserve(
                    self._id, self._local, request, batch=self._batch_api, tier=self._tier
                )
            except _ProbeInFlight as exc:
                if time.monotonic() > deadline:
                    raise _probe_timeout(self._id) from exc
                await asyncio.sleep(_PROBE_POLL_S)

    def _after(
        self, request: Request, completion: Completion, ticket: _Reservation | None
    ) -> Completion:
        self._tracker._settle(ticket, completion, None)
        return completion

    def _failed(self, request: Request, error: BaseException, ticket: _Reservation | None) -> None:
        self._tracker._release(ticket, self._id)


# How often a local model's request checks whether the probe that measures its cost is done,
# and how long it waits at most (a probe held by a stream nobody reads must not hang the rest).
_PROBE_POLL_S = 0.02
_PROBE_WAIT_S = 600.0


def _probe_timeout(model_id: str) -> BudgetExceeded:
    return BudgetExceeded(
        f"{model_id}: refused before sending: the request measuring this local model's cost "
        f"did not finish within {_PROBE_WAIT_S:.0f} s (a stream left unread?), so no cost "
        "bound is known"
    )
