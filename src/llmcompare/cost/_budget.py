"""Budgets: the limits, and the worst case a request reserves against them before it is sent."""

from __future__ import annotations

import threading
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from llmcompare.cost._cost import batch_tier
from llmcompare.cost._prices import get_price
from llmcompare.errors import BudgetExceeded
from llmcompare.types import Request

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "POLL_S",
    "WAIT_S",
    "Budget",
    "Reservation",
    "Wait",
    "input_token_bound",
    "show_usd",
    "worst_case",
]

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


DEFAULT_MAX_TOKENS = 4096
"""The output tokens assumed for a request without max_tokens (Budget.default_max_tokens)."""


def worst_case(
    model_id: str,
    request: Request,
    default_max_tokens: int,
    *,
    batch: bool = False,
    tier: str | None = None,
) -> tuple[int, Decimal | None]:
    """A request's most tokens (input bound plus max_tokens) and most dollars (None: unpriced).

    Priced at the model's uncached input and output prices; a Batch API model at its batch
    tier, as it is billed; one that asks for the priority tier at its priority price (None
    when the table lists none). Flex costs at most the standard price.
    """
    max_out = request.max_tokens or default_max_tokens
    bound = input_token_bound(request)
    price = get_price(model_id)
    if price is None:
        return bound + max_out, None
    if batch:
        unit_in, unit_out = batch_tier(price, _ZERO, [])[:2]
    elif tier == "priority":
        listed = price.tiers.get(tier)
        if listed is None:
            return bound + max_out, None
        unit_in, unit_out = listed.input, listed.output
    else:
        unit_in, unit_out = price.input, price.output
    return bound + max_out, (bound * unit_in + max_out * unit_out).scaleb(-6)


class Budget(BaseModel):
    """Limits a :class:`CostTracker` enforces before each request is sent.

    Each request reserves its worst case: :func:`input_token_bound` input tokens plus its
    ``max_tokens`` output tokens (``default_max_tokens`` when the request sets none), priced at
    the model's uncached input and output prices. A request whose worst case does not fit next to
    what is already spent raises :class:`~llmcompare.BudgetExceeded` and is not sent; one that
    fits, but not beside what requests in flight reserve, waits for them to settle (up to
    600 s), since they settle at their real usage, usually a fraction of their worst case.
    After a request returns, its reservation is replaced by the real usage and cost, so the
    rest becomes available again. A request that failed after it reached the provider (a timeout
    while waiting for the answer, a cut stream: the backend marks its error ``maybe_billed``)
    may be billed all the same, so its reservation is charged, not given back (the row and the
    error's ``charged_usd`` and ``charged_tokens`` say so; a model without a price, or a tier
    without one, is charged the tokens alone). :func:`~llmcompare.batch.generate_many` and
    :func:`~llmcompare.compare` put the tracker under the retries: every attempt is checked
    and charged, so a retry never passes a limit. For API models, under any concurrency the
    totals never pass a limit, as long as providers respect ``max_tokens``.

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
        max_requests: Most requests to send (failed ones count: they were sent; so does each
            attempt of a retried request under :func:`~llmcompare.batch.generate_many`).
        default_max_tokens: Output tokens assumed for a request without ``max_tokens``. Set
            ``max_tokens`` on requests for a strict guarantee: a provider may generate more.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_usd: Annotated[Decimal, Field(ge=0)] | None = None
    max_tokens: Annotated[int, Field(ge=0)] | None = None
    max_requests: Annotated[int, Field(ge=0)] | None = None
    default_max_tokens: Annotated[int, Field(gt=0)] = DEFAULT_MAX_TOKENS


class Reservation:
    """What one request in flight holds of a budget, until it settles."""

    __slots__ = ("local", "model_id", "probe", "thread", "tokens", "usd")

    def __init__(
        self, tokens: int, usd: Decimal, model_id: str, *, probe: bool, local: bool
    ) -> None:
        self.tokens = tokens
        self.usd = usd
        self.model_id = model_id  # the wrapped model's id: a local rate is kept under it
        self.probe = probe
        self.local = local
        # A thread blocked waiting for room must not wait for what it holds itself (a stream
        # it has not read to its end): that would never settle.
        self.thread = threading.get_ident()


class Wait(BudgetExceeded):
    """A request that must wait for requests in flight to settle: not a refusal, a wait.

    Its own worst case fits in the budget, but not beside what requests in flight reserve
    (which settle at their real usage, usually far less), or it is a local model's request
    behind the probe that measures its cost.

    Attributes:
        model_id: The model it is for.
        reason: Why it waits.
        generation: The tracker's count of settled requests when it was told to wait: it may
            try again once that count has moved.
        in_vain: Why it is refused if nothing settles in time.
        probe: Whether it waits for a local model's probe (else for room in the budget).
    """

    def __init__(
        self, model_id: str, reason: str, *, generation: int, in_vain: str, probe: bool = False
    ) -> None:
        super().__init__(f"{model_id}: not sent yet: {reason}")
        self.model_id = model_id
        self.reason = reason
        self.generation = generation
        self.in_vain = in_vain
        self.probe = probe

    def refused(self, why: str) -> BudgetExceeded:
        """The refusal it ends in, for ``why`` (it waited in vain, or could not wait)."""
        return BudgetExceeded(f"{self.model_id}: refused before sending: {why}")


WAIT_S = 600.0
"""How long a request waits at most for room in the budget (requests in flight to settle, a
local model's probe to be measured): a stream left unread must not hang the rest for ever."""
POLL_S = 0.02
"""How often a waiting async request looks again (a sync one is woken when a request settles)."""


def show_usd(usd: Decimal) -> str:
    """Dollars for a message: no exponent (``0`` rather than ``0E-8``), no trailing zeros."""
    return f"{usd.normalize():f}"
