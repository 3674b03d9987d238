"""Running totals of usage and cost, and budgets enforced before a request is sent."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Sequence
from decimal import Decimal
from types import TracebackType

from pydantic import BaseModel, ConfigDict
from typing_extensions import Self

from llmcompare.cost._budget import (
    DEFAULT_MAX_TOKENS,
    POLL_S,
    WAIT_S,
    Budget,
    Reservation,
    Wait,
    show_usd,
    worst_case,
)
from llmcompare.cost._cost import (
    UNANSWERED,
    Assessed,
    Cost,
    CostStatus,
    EnergySource,
    LocalHardware,
    assess,
    energy_sum,
    worse,
)
from llmcompare.cost._hosting import machine_time_bound
from llmcompare.cost._prices import get_price
from llmcompare.errors import BackendError, BudgetExceeded
from llmcompare.model import Model
from llmcompare.types import Completion, Request, Usage
from llmcompare.wrapper import ModelWrapper

__all__ = ["CostTracker", "Totals"]

logger = logging.getLogger("llmcompare.cost")

_ZERO = Decimal(0)


class Totals(BaseModel):
    """Usage and cost summed over requests.

    Attributes:
        requests: Requests sent, failed ones included (each attempt of a retried request
            that went through the tracker counts).
        failed: Requests sent that raised an error.
        refused: Requests refused by the budget (not sent).
        unanswered: Failed requests of priced models that reached the provider and may be
            billed (a timeout, a cut stream): charged at their worst case, in ``cost``.
        usage: Summed token usage of the successful requests.
        cost: Summed cost of the successful requests and of the unanswered ones.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    requests: int = 0
    failed: int = 0
    refused: int = 0
    unanswered: int = 0
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
        "unanswered",
        "usd",
        "written",
    )

    def __init__(self) -> None:
        self.requests = self.failed = self.refused = self.unanswered = 0
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

    def fail(self, charged: Decimal | None) -> None:
        """Count a failed request; one that may be billed is charged (an estimate)."""
        self.requests += 1
        self.failed += 1
        if charged is not None:
            self.unanswered += 1
            self.usd += charged
            self.status = worse(self.status, "estimated")
            self.assumptions[UNANSWERED] = None

    def totals(self) -> Totals:
        return Totals(
            requests=self.requests,
            failed=self.failed,
            refused=self.refused,
            unanswered=self.unanswered,
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

    Attributes:
        hosted: Hosted models' machines, by model id: such a model's answer counts its
            latency at the machine's rate (the most its share of the busy time can be), never
            a token price.
    """

    def __init__(
        self,
        budget: Budget | None = None,
        *,
        hardware: LocalHardware | None = None,
    ) -> None:
        self.budget = budget
        self.hardware = hardware
        self.hosted: dict[str, LocalHardware] = {}
        self._lock = threading.Lock()
        # Notified each time a request in flight settles: requests waiting for room wake up.
        self._settled = threading.Condition(self._lock)
        self._generation = 0
        self._holding: dict[int, int] = {}  # reservations in flight by thread
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

    def record_unanswered(self, model_id: str, usd: Decimal | None, tokens: int = 0) -> None:
        """Add a request that failed without :meth:`wrap` and was charged as maybe billed.

        Under :meth:`wrap` a request that reached the provider and gave no answer (a timeout,
        a cut stream) is charged its worst case (the error's ``charged_usd`` and
        ``charged_tokens``). A run resumed from its files (a comparison's run folder,
        :func:`~llmcompare.batch.generate_many`'s results file, a judge's judgments) adds so
        what its failed rows were charged: the budget then bounds what every process of the
        run sent. It counts as :meth:`record` counts an answer read back: a request
        (``requests``, ``failed``, priced ones ``unanswered``; towards ``max_requests``), its
        dollars and its tokens spent.

        Args:
            model_id: The model's id.
            usd: The dollars it was charged (None: an unpriced model, charged tokens only).
            tokens: The tokens it was charged (towards ``max_tokens``).

        Raises:
            ValueError: When ``usd`` is negative or not finite, or ``tokens`` negative.
        """
        if usd is not None and (not usd.is_finite() or usd < 0):
            raise ValueError(f"{model_id}: a charge must be a finite number of dollars >= 0")
        if tokens < 0:
            raise ValueError(f"{model_id}: a charge must be a number of tokens >= 0")
        self._release(None, model_id, (tokens, usd))

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
    ) -> Reservation | None:
        budget = self.budget
        if budget is None:
            return None
        tokens, worst = worst_case(
            model_id, request, budget.default_max_tokens, batch=batch, tier=tier
        )
        usd = _ZERO
        probe = False
        if budget.max_usd is not None and not local:
            if worst is None:
                self._refuse(model_id)
                price = get_price(model_id)
                if price is not None:  # priced, but not at the tier it asks for
                    raise BudgetExceeded(
                        f"{model_id}: refused before sending: no {tier} price is known for "
                        f"{price.model}, so its cost cannot be bounded against max_usd"
                    )
                raise BudgetExceeded(
                    f"{model_id}: refused before sending: no price is known for this model, so "
                    "its cost cannot be bounded against max_usd; register one with "
                    "llmcompare.cost.register_price(...)"
                )
            usd = worst
        with self._lock:
            why: str | None = None  # why it is refused
            wait: tuple[str, str] | None = None  # why it waits, and the refusal if in vain
            probing = False
            if budget.max_usd is not None and local:
                rate = self._local_rate.get(model_id)
                if rate is not None:
                    usd = rate * tokens
                elif model_id in self._probing:
                    probing = True
                    wait = (
                        "its first request runs alone to measure what a request of this local "
                        "model costs, against max_usd",
                        f"the request measuring this local model's cost did not finish within "
                        f"{WAIT_S:.0f} s (a stream left unread?), so no cost bound is known",
                    )
                else:
                    probe = True
            if wait is None:
                why, wait = self._room(budget, tokens, usd, probe)
            if why is None and wait is None:
                self._held_requests += 1
                self._held_tokens += tokens
                self._held_usd += usd
                if probe:
                    self._probing.add(model_id)
                held = Reservation(tokens, usd, model_id, probe=probe, local=local)
                self._holding[held.thread] = self._holding.get(held.thread, 0) + 1
                return held
            if why is not None:
                self._sum(model_id).refused += 1
                self._total.refused += 1
            generation = self._generation
        if why is not None:
            raise BudgetExceeded(f"{model_id}: refused before sending: {why}")
        assert wait is not None
        raise Wait(model_id, wait[0], generation=generation, in_vain=wait[1], probe=probing)

    def _room(
        self, budget: Budget, tokens: int, usd: Decimal, probe: bool
    ) -> tuple[str | None, tuple[str, str] | None]:
        """Whether a request fits (under the lock): why it is refused, or why it must wait.

        Refused when it cannot fit even once every request in flight has settled; told to wait
        when it fits alone but not beside what they reserve: they settle at their real usage,
        usually a fraction of their worst case, so refusing it now would refuse almost
        everything that fits under concurrency.
        """
        flight_usd = f"${show_usd(self._held_usd)} reserved by requests in flight"
        in_vain = f"the requests in flight did not settle within {WAIT_S:.0f} s"
        if (
            budget.max_requests is not None
            and self._sent + self._held_requests + 1 > budget.max_requests
        ):
            # Requests in flight count once they end, whatever the outcome: no point waiting.
            return f"max_requests={budget.max_requests} reached", None
        waits = []
        if budget.max_tokens is not None:
            worst = f"its worst case of {tokens} tokens"
            if self._spent_tokens + tokens > budget.max_tokens:
                return (
                    f"{worst} does not fit in max_tokens={budget.max_tokens} "
                    f"({self._spent_tokens} used)"
                ), None
            if self._spent_tokens + self._held_tokens + tokens > budget.max_tokens:
                waits.append(
                    f"{worst} fits in max_tokens={budget.max_tokens} only once requests in "
                    f"flight settle ({self._spent_tokens} used, {self._held_tokens} reserved)"
                )
        if budget.max_usd is not None:
            worst = f"its worst case of ${show_usd(usd)}"
            spent = f"${show_usd(self._spent_usd)} spent"
            if self._spent_usd + usd > budget.max_usd or (
                probe and self._spent_usd >= budget.max_usd
            ):
                return f"{worst} does not fit in max_usd=${budget.max_usd} ({spent})", None
            if self._spent_usd + self._held_usd + usd > budget.max_usd or (
                probe and self._spent_usd + self._held_usd >= budget.max_usd
            ):
                waits.append(
                    f"{worst} fits in max_usd=${budget.max_usd} only once requests in flight "
                    f"settle ({spent}, {flight_usd})"
                )
        if waits:
            return None, ("; ".join(waits), f"{waits[0]}, and {in_vain}")
        return None, None

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

    def _unhold(self, reservation: Reservation | None) -> None:
        if reservation is not None:
            left = self._holding.pop(reservation.thread) - 1
            if left:
                self._holding[reservation.thread] = left
            self._held_requests -= 1
            self._held_tokens -= reservation.tokens
            self._held_usd -= reservation.usd
            if reservation.probe:
                self._probing.discard(reservation.model_id)
            # Room may have come back: the requests waiting for it look again.
            self._generation += 1
            self._settled.notify_all()

    def _wait_sync(self, waiting: Wait, deadline: float) -> None:
        """Block until a request in flight settles after ``waiting`` was raised, or time runs out.

        Raises:
            BudgetExceeded: When nothing settled before the deadline, or when this thread holds
                one of the requests in flight itself (waiting for it would never end).
        """
        with self._settled:
            if threading.get_ident() in self._holding:
                raise self._refused(
                    waiting,
                    f"{waiting.reason}, and this thread holds one of the requests in flight "
                    "(a stream not read to its end?)",
                )
            settled = self._settled.wait_for(
                lambda: self._generation != waiting.generation,
                timeout=max(deadline - time.monotonic(), 0.0),
            )
            if not settled:
                raise self._refused(waiting, waiting.in_vain)

    async def _wait_async(self, waiting: Wait, deadline: float) -> None:
        """The same wait without blocking the event loop (the tracker is shared by threads)."""
        while self._generation == waiting.generation:
            if time.monotonic() > deadline:
                with self._lock:
                    raise self._refused(waiting, waiting.in_vain)
            await asyncio.sleep(POLL_S)

    def _refused(self, waiting: Wait, why: str) -> BudgetExceeded:
        """A wait that ends in a refusal (under the lock): counted, and its error."""
        self._sum(waiting.model_id).refused += 1
        self._total.refused += 1
        return waiting.refused(why)

    def _settle(
        self, reservation: Reservation | None, completion: Completion, energy_j: float | None
    ) -> Assessed:
        machine = self.hosted.get(completion.model)
        cost = (
            assess(completion, self.hardware, energy_j)
            if machine is None
            else machine_time_bound(completion, machine)
        )
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
            # An answer read back (``record``) holds its earlier attempts' charged tokens.
            usage, earlier = completion.usage, completion.unanswered_tokens or 0
            self._spent_tokens += usage.input_tokens + usage.output_tokens + earlier
            self._spent_usd += cost.usd
            self._sum(completion.model).add(completion, cost)
            self._total.add(completion, cost)
        return cost

    def _release(
        self,
        reservation: Reservation | None,
        model_id: str,
        charge: tuple[int, Decimal | None] | None = None,
    ) -> None:
        """A failed request: its reservation given back, or, ``charge``d, spent."""
        # A charge's dollars are None for an unpriced model: its tokens count all the same.
        charged = None if charge is None else charge[1]
        with self._lock:
            self._unhold(reservation)
            self._sent += 1
            if charge is not None:
                self._spent_tokens += charge[0]
                self._spent_usd += charged or 0
            self._sum(model_id).fail(charged)
            self._total.fail(charged)

    def _fail(
        self,
        reservation: Reservation | None,
        model_id: str,
        request: Request,
        error: BaseException,
        *,
        batch: bool = False,
        tier: str | None = None,
    ) -> None:
        """Settle a failed API request: one that may be billed is charged its worst case.

        A request that reached the provider before it failed (a timeout, a cut stream: the
        backend marks its error ``maybe_billed``) may be billed in full, so it is charged
        what its reservation held (input bound plus ``max_tokens``; dollars only where the
        model has a price), never nothing: a budget then bounds what a run of timeouts can
        cost, and the retry that would pass it is refused.
        The charge goes on the error (``charged_usd``, ``charged_tokens``) for its row.
        """
        charge = None
        if isinstance(error, BackendError) and error.maybe_billed:
            default = self.budget.default_max_tokens if self.budget else DEFAULT_MAX_TOKENS
            tokens, usd = worst_case(model_id, request, default, batch=batch, tier=tier)
            # Unpriced, its tokens are charged all the same: a max_tokens budget holds.
            charge = (tokens, usd)
            error.charged_usd = usd
            error.charged_tokens = tokens
        self._release(reservation, model_id, charge)

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


class _TrackedModel(ModelWrapper["Reservation | None"]):
    """A model whose calls are checked against a budget and recorded; see CostTracker.wrap."""

    label = "tracked"

    def __init__(self, inner: Model, tracker: CostTracker) -> None:
        super().__init__(inner)
        self._tracker = tracker
        self._local = inner.info.open_weights
        self._batch_api = getattr(inner, "batch_api", False) is True  # chatgpt's batch=True
        tier = getattr(inner, "service_tier", None)  # chatgpt's service_tier option
        self._tier = tier if isinstance(tier, str) else None

    def _before(self, request: Request) -> Reservation | None:
        deadline = time.monotonic() + WAIT_S
        while True:
            try:
                return self._tracker._reserve(
                    self._id, self._local, request, batch=self._batch_api, tier=self._tier
                )
            except Wait as waiting:
                self._tracker._wait_sync(waiting, deadline)

    def _before_batch(self, requests: Sequence[Request]) -> list[Reservation | Exception | None]:
        # No waiting here: a batch's rows are admitted together, so a row waiting for the probe
        # of its own batch, or for its other rows to settle, would wait forever. Rows behind a
        # probe are not sent (their error says why; generate_many sends a local model's probe
        # on its own first); rows that do not fit beside the others are refused.
        out: list[Reservation | Exception | None] = []
        for request in requests:
            try:
                out.append(
                    self._tracker._reserve(
                        self._id, self._local, request, batch=self._batch_api, tier=self._tier
                    )
                )
            except Wait as waiting:
                if waiting.probe:
                    out.append(waiting)
                else:
                    self._tracker._refuse(self._id)
                    out.append(waiting.refused(f"{waiting.reason} (a batch's rows go together)"))
            except BudgetExceeded as exc:
                out.append(exc)
        return out

    async def _abefore(self, request: Request) -> Reservation | None:
        deadline = time.monotonic() + WAIT_S
        while True:
            try:
                return self._tracker._reserve(
                    self._id, self._local, request, batch=self._batch_api, tier=self._tier
                )
            except Wait as waiting:
                await self._tracker._wait_async(waiting, deadline)

    def _after(
        self, request: Request, completion: Completion, ticket: Reservation | None
    ) -> Completion:
        self._tracker._settle(ticket, completion, None)
        return completion

    def _failed(self, request: Request, error: BaseException, ticket: Reservation | None) -> None:
        if self._local:
            self._tracker._release(ticket, self._id)
        else:
            self._tracker._fail(
                ticket, self._id, request, error, batch=self._batch_api, tier=self._tier
            )
