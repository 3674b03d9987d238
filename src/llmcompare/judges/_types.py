"""What judging leaves in a record: each request to a judge, each verdict, each pair's figures.

Frozen pydantic models that refuse unknown fields, like the rest of a record: a judged run saves
as JSON and loads back equal, and a report renders it without a judge at hand.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal, TypeAlias

from pydantic import BaseModel, ConfigDict

from llmcompare.cost import Cost
from llmcompare.types import Usage

__all__ = [
    "Call",
    "Grade",
    "JudgeInfo",
    "Judging",
    "Mode",
    "Outcome",
    "PairFigures",
    "PairVerdict",
    "Said",
    "format_p",
]

_FROZEN = ConfigDict(frozen=True, extra="forbid")

Outcome: TypeAlias = Literal["a", "b", "tie"]
"""A verdict on a pair of models: model a's answer is better, model b's, or neither."""

Said: TypeAlias = Literal["A", "B", "tie"]
"""A pairwise judge's verdict as it saw the answers: the one shown first (A), second (B), or tie."""

Mode: TypeAlias = Literal["pairwise", "pointwise"]
"""How a judge judges: two answers side by side, or each answer alone on a scale."""


class Call(BaseModel):
    """One request to a judge, and what it answered.

    Attributes:
        judge: The judge's name.
        first: Pairwise: the model whose answer was shown first (as "A"); None for pointwise.
        said: Pairwise: the verdict as the judge saw it (positions, before un-swapping).
        grade: Pointwise: the grade on the judge's scale.
        reasoning: The judge's reasoning, kept as it gave it.
        error: Why this request gave no verdict (a failed request, a refused one, a reply with
            no verdict in it); None when it gave one.
        cached: Whether the reply came from the response cache (or a run folder) rather than
            from the judge now: its cost was paid by the run that asked it.
        usage: The request's tokens.
        cost: What the request cost: its answer, and any attempt charged as maybe billed
            (a timeout; an estimate), this process's or an earlier one's on the run folder.
        repeat: The same request as an earlier call of this judge (an identical prompt: two
            identical answers shown in both orders, or graded alike). It was sent once: its
            tokens and cost are on that call, and here ``usage`` is empty and ``cost`` None.
    """

    model_config = _FROZEN

    judge: str
    first: str | None = None
    said: Said | None = None
    grade: float | None = None
    reasoning: str = ""
    error: str | None = None
    cached: bool = False
    usage: Usage = Usage()
    cost: Cost | None = None
    repeat: bool = False


class PairVerdict(BaseModel):
    """Which of two models answered one item better, with every judge request behind it.

    With ``swap`` each judge saw the pair in both orders; a verdict that changed with the
    order counts as a tie and is ``inconsistent``. A panel's verdict is its judges' vote.

    Attributes:
        item_id: The item.
        sample: Which sample of the item.
        model_a: The first model of the pair (in run order).
        model_b: The second.
        winner: ``"a"``, ``"b"`` or ``"tie"``; None when no verdict could be formed (every
            judge's request failed or gave no verdict).
        inconsistent: Whether a judge's verdict flipped when the order was swapped.
        votes: Each judge's own verdict, by name (None: that judge gave none).
        calls: The requests, in the order asked.
    """

    model_config = _FROZEN

    item_id: str
    sample: int = 0
    model_a: str
    model_b: str
    winner: Outcome | None
    inconsistent: bool = False
    votes: dict[str, Outcome | None]
    calls: tuple[Call, ...] = ()


class Grade(BaseModel):
    """A pointwise judge's grade of one answer.

    Attributes:
        item_id: The item.
        sample: Which sample.
        model: The model whose answer was graded.
        score: The grade scaled to [0, 1] (``(grade - low) / (high - low)``), a panel's vote
            over its judges; None when no judge gave one.
        grades: Each judge's grade on its own scale, by name.
        calls: The requests.
    """

    model_config = _FROZEN

    item_id: str
    sample: int = 0
    model: str
    score: float | None
    grades: dict[str, float | None]
    calls: tuple[Call, ...] = ()


class JudgeInfo(BaseModel):
    """One judge as the record names it.

    Attributes:
        name: The judge's name (its key in votes and calls).
        model: The judge model's id.
        mode: ``"pairwise"`` or ``"pointwise"``.
        rubric: The rubric it was given.
        swap: Pairwise: whether each pair was asked in both orders.
        allow_tie: Pairwise: whether a tie was a verdict it could give.
        scale: Pointwise: the lowest and highest grade.
        structured: Whether its verdicts came as structured output (a JSON schema given as
            ``response_format``) or were parsed from free text.
    """

    model_config = _FROZEN

    name: str
    model: str
    mode: Mode
    rubric: str
    swap: bool = False
    allow_tie: bool = True
    scale: tuple[int, int] | None = None
    structured: bool = True


class PairFigures(BaseModel):
    """What the verdicts say about one pair of models.

    Attributes:
        model_a: The first model (wins are its wins).
        model_b: The second.
        judged: Pairs with a verdict (items times samples, less the failed ones).
        wins: Verdicts for ``model_a``.
        losses: Verdicts for ``model_b``.
        ties: Ties, inconsistent verdicts included.
        inconsistent: Verdicts that flipped with the order (counted as ties).
        failed: Pairs with no verdict.
        win_rate: ``(wins + ties / 2) / judged``; None with nothing judged.
        win_rate_ci: Its interval: over items, by :func:`llmcompare.stats.mean_interval` (Wilson
            when there is no tie, else a BCa bootstrap).
        ci_method: How the interval was computed.
        p_value: The exact two-sided sign test of wins against losses, ties set aside.
        position_bias: Share of pairs asked in both orders whose verdict flipped with the order
            (None without swap).
        first_position: Share of the requests that picked a side which picked the answer shown
            first (0.5: no preference; None: no request picked a side).
        longer_won: Share of decided pairs whose answers differ in length won by the longer
            answer (0.5: no preference; None: no such pair).
        longer_decided: How many decided pairs that share is over.
        confidence: The level of the interval.
    """

    model_config = _FROZEN

    model_a: str
    model_b: str
    judged: int
    wins: int
    losses: int
    ties: int
    inconsistent: int = 0
    failed: int = 0
    win_rate: float | None
    win_rate_ci: tuple[float, float] | None = None
    ci_method: str | None = None
    p_value: float
    position_bias: float | None = None
    first_position: float | None = None
    longer_won: float | None = None
    longer_decided: int = 0
    confidence: float = 0.95

    def line(self) -> str:
        """The pair in one line, as the terminal report prints it.

        Example:
            >>> PairFigures(model_a="llama", model_b="gpt", judged=100, wins=31, losses=52,
            ...             ties=17, inconsistent=9, win_rate=0.395, win_rate_ci=(0.31, 0.5),
            ...             p_value=0.0274).line()
            'llama vs gpt: 31 wins, 52 losses, 17 ties (9 inconsistent); win rate 0.40 [0.31, 0.50], p = 0.027'
        """  # noqa: E501 - the doctest shows the whole line
        head = (
            f"{self.model_a} vs {self.model_b}: {self.wins} wins, {self.losses} losses, "
            f"{self.ties} ties ({self.inconsistent} inconsistent)"
        )
        if self.win_rate is None:
            return f"{head}; nothing judged"
        interval = (
            f" [{self.win_rate_ci[0]:.2f}, {self.win_rate_ci[1]:.2f}]"
            if self.win_rate_ci is not None
            else ""
        )
        return f"{head}; win rate {self.win_rate:.2f}{interval}, {format_p(self.p_value)}"

    def bias_line(self) -> str:
        """The bias figures in one line (position, first position, length)."""
        parts = []
        if self.position_bias is not None:
            parts.append(f"position bias {self.position_bias:.0%} of swapped pairs flipped")
        if self.first_position is not None:
            parts.append(f"first answer picked {self.first_position:.0%}")
        if self.longer_won is not None:
            parts.append(
                f"longer answer won {self.longer_won:.0%} of {self.longer_decided} decided pairs"
            )
        return f"{self.model_a} vs {self.model_b}: " + ("; ".join(parts) or "no bias figures")


class Judging(BaseModel):
    """A run's judging: the judges, every verdict, each pair's figures and what it cost.

    The judge's dollars and tokens are here, never in the compared models' summaries.

    Attributes:
        mode: ``"pairwise"`` or ``"pointwise"``.
        judges: The judges (one, or a panel's).
        vote: How a panel combined its judges (``"majority"`` or ``"mean"``); None for one.
        verdicts: One per item, sample and pair of models (pointwise: derived from grades).
        grades: Pointwise: one per item, sample and model.
        pairs: Each pair of models' figures, in run order.
        agreement: A panel's agreement beyond chance (Fleiss' kappa) over the verdicts every
            judge gave; None for one judge, or when undefined.
        agreement_n: How many verdicts (or grades) that is over.
        requests: Requests asked of the judges (read back ones included; an identical request
            repeated within a judging, sent once, counts once).
        cached: Replies that came from the cache or the run folder.
        failed: Requests that gave no verdict.
        usage: The judges' tokens.
        cost: The judges' cost, failed attempts charged as maybe billed included.
        confidence: The level of every interval.
    """

    model_config = _FROZEN

    mode: Mode
    judges: tuple[JudgeInfo, ...]
    vote: Literal["majority", "mean"] | None = None
    verdicts: tuple[PairVerdict, ...] = ()
    grades: tuple[Grade, ...] = ()
    pairs: tuple[PairFigures, ...] = ()
    agreement: float | None = None
    agreement_n: int = 0
    requests: int = 0
    cached: int = 0
    failed: int = 0
    usage: Usage = Usage()
    cost: Cost = Cost()
    confidence: float = 0.95

    def cost_line(self) -> str:
        """The judging cost on its own line: ``judging: $0.42, 310k tokens``.

        Example:
            >>> Judging(mode="pairwise", judges=(), usage=Usage(input_tokens=309_500,
            ...         output_tokens=800)).cost_line()
            'judging: $0, 310k tokens (0 requests)'
        """
        cost = self.cost
        usd = "unpriced" if cost.status == "unpriced" else f"${_usd(cost.usd)}"
        mark = "~" if cost.status == "estimated" else ""
        extra = [f"{self.requests} requests"]
        if self.cached:
            extra.append(f"{self.cached} from the cache")
        if self.failed:
            extra.append(f"{self.failed} without a verdict")
        return (
            f"judging: {mark}{usd}, {_tokens(self.usage.total_tokens)} tokens ({', '.join(extra)})"
        )


def format_p(p: float) -> str:
    """A p-value as the reports print it: two significant digits, or ``p < 0.001``.

    Example:
        >>> format_p(0.03), format_p(0.0274), format_p(1.0), format_p(0.0004)
        ('p = 0.03', 'p = 0.027', 'p = 1', 'p < 0.001')
    """
    return "p < 0.001" if p < 0.001 else f"p = {p:.2g}"


def _usd(amount: Decimal) -> str:
    if 0 < amount < Decimal("0.01"):
        return f"{amount:.2g}"  # a cent's fraction, two digits that say how much
    return f"{amount:.2f}".rstrip("0").rstrip(".")


def _tokens(n: int) -> str:
    if n >= 1_000_000:
        return f"{n / 1_000_000:.1f}M"
    if n >= 1_000:
        return f"{n / 1_000:.0f}k"
    return str(n)
