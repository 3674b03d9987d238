"""A judge checked against people: agreement with human labels on pairs they judged.

This is how the MT-Bench paper reports judge-human agreement (Zheng et al. 2023): over votes,
"with ties" (three classes) and "without ties" (rows where either side said tie dropped), and
Cohen's kappa over the three classes, the chance-corrected form. Audit a judge on 50-100 of
your own labelled pairs before trusting its verdicts on your prompts.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from llmcompare.cost import Budget, Cost, CostTracker
from llmcompare.errors import ConfigurationError
from llmcompare.judges._figures import vote_of
from llmcompare.judges._judge import JudgePanel, PairwiseJudge
from llmcompare.judges._run import call_of, members, panel_vote
from llmcompare.judges._send import Sending, ask
from llmcompare.judges._types import Call, Outcome
from llmcompare.retry import DEFAULT_POLICY, RetryPolicy
from llmcompare.runs import ResponseCache
from llmcompare.stats import cohen_kappa
from llmcompare.types import Request, Usage

__all__ = ["JudgeAudit", "audit"]

_LABELS: tuple[Outcome, ...] = ("a", "b", "tie")
_HUMAN: dict[str, Outcome] = {label: label for label in _LABELS}


class JudgeAudit(BaseModel):
    """How a judge's verdicts agree with people's on the same pairs.

    Attributes:
        judge: The judge's name (a panel's judges' names joined).
        n: Human votes compared (rows whose pair got a verdict).
        pairs: Distinct pairs judged.
        agreement: Share of votes where the judge's verdict equals the human label, ties a
            class of their own.
        agreement_without_ties: The same over the votes where neither the judge nor the human
            said tie; None when there is none.
        n_without_ties: How many votes that is.
        kappa: Cohen's kappa over the three classes (None: undefined).
        kappa_ci: Its percentile bootstrap interval over votes.
        position_consistency: Share of pairs whose verdict survived the swap of the answers
            (None without swap).
        self_consistency: Share of pairs whose verdict was the same when the same request was
            asked again (None when not asked).
        failed: Votes whose pair got no verdict (left out of the figures above).
        confusion: Counts of (human label, judge verdict).
        requests: Requests asked of the judge.
        cached: Replies read from the cache.
        usage: The judge's tokens.
        cost: The judge's cost.
        confidence: The level of the kappa's interval.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    judge: str
    n: int
    pairs: int
    agreement: float | None
    agreement_without_ties: float | None
    n_without_ties: int
    kappa: float | None
    kappa_ci: tuple[float, float] | None
    position_consistency: float | None
    self_consistency: float | None
    failed: int
    confusion: dict[str, dict[str, int]]
    requests: int
    cached: int
    usage: Usage
    cost: Cost
    confidence: float

    def lines(self) -> list[str]:
        """The audit for humans, one figure a line."""

        def pct(x: float | None) -> str:
            return "-" if x is None else f"{x:.1%}"

        kappa = "undefined" if self.kappa is None else f"{self.kappa:.3f}"
        if self.kappa_ci is not None:
            kappa += f" [{self.kappa_ci[0]:.3f}, {self.kappa_ci[1]:.3f}]"
        head = "human \\ judge"
        table = [f"  {head:<14}" + "".join(f"{j:>6}" for j in _LABELS)]
        for h in _LABELS:
            row = self.confusion.get(h, {})
            table.append(f"  {h:<14}" + "".join(f"{row.get(j, 0):>6}" for j in _LABELS))
        usd = "unpriced" if self.cost.status == "unpriced" else f"${self.cost.usd:.4f}"
        return [
            f"judge {self.judge}: {self.n} human votes on {self.pairs} pairs"
            + (f" ({self.failed} votes without a verdict, left out)" if self.failed else ""),
            f"agreement (ties a class): {pct(self.agreement)}",
            f"agreement without ties: {pct(self.agreement_without_ties)} "
            f"(n = {self.n_without_ties})",
            f"Cohen's kappa: {kappa}",
            f"position consistency: {pct(self.position_consistency)}",
            f"self-consistency: {pct(self.self_consistency)}",
            *table,
            f"cost: {usd} ({self.cost.status}), {self.usage.total_tokens} tokens, "
            f"{self.requests} requests, {self.cached} from the cache",
        ]


def audit(
    judge: PairwiseJudge | JudgePanel,
    pairs: str | os.PathLike[str] | Iterable[Mapping[str, Any]],
    *,
    self_consistency: bool = True,
    cache: bool | ResponseCache = True,
    budget: Budget | None = None,
    concurrency: int = 8,
    retry: RetryPolicy | None = DEFAULT_POLICY,
    rpm: float | None = None,
    tpm: float | None = None,
    progress: bool | None = None,
    confidence: float = 0.95,
    seed: int = 0,
) -> JudgeAudit:
    """Judge pairs that people labelled, and measure how far the judge agrees with them.

    ``pairs`` is a JSONL file (or a list of dicts) with ``question``, ``answer_a``,
    ``answer_b`` and the human label ``human`` (``"a"``, ``"b"`` or ``"tie"``), one row per
    human vote: several votes on one pair are several rows, and the pair is judged once.
    Other fields are ignored. Every row is checked before anything is sent.

    Args:
        judge: A pairwise judge or a panel of them.
        pairs: The labelled pairs.
        self_consistency: Ask each pair's first order once more (a second sample, so the
            cache does not answer it) to see whether the judge repeats itself.
        cache: The response cache: True the shared one, False none, or give one.
        budget: Limits on the judge's dollars, tokens or requests.
        concurrency: Requests in flight.
        retry: The retry policy; None retries nothing.
        rpm: Requests per minute, at most, per judge model.
        tpm: Tokens per minute, at most, per judge model.
        progress: Show a progress bar; None: when stderr is a terminal.
        confidence: The level of the kappa's interval.
        seed: Seeds its bootstrap.

    Raises:
        ConfigurationError: For a row that cannot be judged (naming it), a pointwise judge,
            or no rows.
    """
    if judge.mode != "pairwise":
        raise ConfigurationError("an audit compares pairwise verdicts: give a pairwise judge")
    rows = _rows(pairs)
    distinct = list(dict.fromkeys((q, a, b) for q, a, b, _ in rows))
    store = ResponseCache() if cache is True else (cache or None)
    tracker = CostTracker(budget)
    sending = Sending(tracker, store, None, concurrency, retry, rpm, tpm, progress=progress)
    try:
        per_pair = _judge_pairs(judge, distinct, sending, self_consistency)
    finally:
        if cache is True and store is not None:
            store.close()
    verdicts = {
        pair: panel_vote(
            [v for v, _, _ in found], judge.vote if isinstance(judge, JudgePanel) else "majority"
        )
        for pair, found in per_pair.items()
    }
    compared = [(h, verdicts[(q, a, b)]) for q, a, b, h in rows if verdicts[(q, a, b)] is not None]
    calls = [c for found in per_pair.values() for _, _, judge_calls in found for c in judge_calls]
    return _audit(judge, rows, distinct, per_pair, compared, calls, confidence, seed)


def _judge_pairs(
    judge: PairwiseJudge | JudgePanel,
    distinct: Sequence[tuple[str, str, str]],
    sending: Sending,
    again: bool,
) -> dict[tuple[str, str, str], list[tuple[Outcome | None, bool | None, list[Call]]]]:
    """Per pair, each judge's ``(verdict, same when asked again, its calls)``."""
    out: dict[tuple[str, str, str], list[tuple[Outcome | None, bool | None, list[Call]]]] = {
        pair: [] for pair in distinct
    }
    for one in members(judge):
        assert isinstance(one, PairwiseJudge)
        asked: list[tuple[Request, int]] = []
        for q, a, b in distinct:
            asked.append((one.request(q, None, a, b), 0))
            if one.swap:
                asked.append((one.request(q, None, b, a), 0))
            if again:
                asked.append((one.request(q, None, a, b), 1))
        replies = iter(ask(one.model, one.name, asked, sending))
        for pair in distinct:
            calls = [call_of(one, next(replies), None, "a")]
            if one.swap:
                calls.append(call_of(one, next(replies), None, "b"))
            verdict, _ = vote_of(calls, "a")
            same = None
            if again:
                repeat = call_of(one, next(replies), None, "a")
                first_said, again_said = vote_of(calls[:1], "a")[0], vote_of([repeat], "a")[0]
                if first_said is not None and again_said is not None:
                    same = first_said == again_said
                calls.append(repeat)
            out[pair].append((verdict, same, calls))
    return out


def _audit(
    judge: PairwiseJudge | JudgePanel,
    rows: Sequence[tuple[str, str, str, Outcome]],
    distinct: Sequence[tuple[str, str, str]],
    per_pair: Mapping[tuple[str, str, str], list[tuple[Outcome | None, bool | None, list[Call]]]],
    compared: Sequence[tuple[Outcome, Outcome | None]],
    calls: Sequence[Call],
    confidence: float,
    seed: int,
) -> JudgeAudit:
    human = [h for h, _ in compared]
    said = [j for _, j in compared if j is not None]
    no_ties = [(h, j) for h, j in compared if h != "tie" and j != "tie"]
    kappa = (
        cohen_kappa(human, said, categories=_LABELS, confidence=confidence, seed=seed)
        if human
        else None
    )
    swapped = [
        _consistent(judge_calls) for found in per_pair.values() for _, _, judge_calls in found
    ]
    survived = [s for s in swapped if s is not None]
    repeated = [same for found in per_pair.values() for _, same, _ in found if same is not None]
    confusion = {h: dict.fromkeys(_LABELS, 0) for h in _LABELS}
    for h, j in compared:
        if j is not None:
            confusion[h][j] += 1
    return JudgeAudit(
        judge=judge.name,
        n=len(compared),
        pairs=len(distinct),
        agreement=sum(h == j for h, j in compared) / len(compared) if compared else None,
        agreement_without_ties=(
            sum(h == j for h, j in no_ties) / len(no_ties) if no_ties else None
        ),
        n_without_ties=len(no_ties),
        kappa=None if kappa is None else kappa.kappa,
        kappa_ci=(
            None
            if kappa is None or kappa.low is None or kappa.high is None
            else (kappa.low, kappa.high)
        ),
        position_consistency=sum(survived) / len(survived) if survived else None,
        self_consistency=sum(repeated) / len(repeated) if repeated else None,
        failed=len(rows) - len(compared),
        confusion=confusion,
        requests=sum(1 for c in calls if not c.repeat),
        cached=sum(1 for c in calls if c.cached and not c.repeat),
        usage=sum((c.usage for c in calls), Usage()),
        cost=sum((c.cost for c in calls if c.cost is not None), Cost()),
        confidence=confidence,
    )


def _consistent(calls: Sequence[Call]) -> bool | None:
    """Whether a pair's two orders agreed (None: not asked in both, or a verdict missing)."""
    orders = [c for c in calls if c.first == "a"][:1] + [c for c in calls if c.first == "b"][:1]
    if len(orders) < 2:
        return None
    verdict, flipped = vote_of(orders, "a")
    return None if verdict is None else not flipped


def _rows(
    pairs: str | os.PathLike[str] | Iterable[Mapping[str, Any]],
) -> list[tuple[str, str, str, Outcome]]:
    """The labelled rows, each checked; the first bad one is refused in one line."""
    if isinstance(pairs, (str, os.PathLike)):
        path = Path(pairs)
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ConfigurationError(f"{path}: cannot read it ({exc.strerror or exc})") from None
        raw: list[tuple[str, Any]] = []
        for number, line in enumerate(lines, 1):
            if line.strip():
                try:
                    raw.append((f"{path}:{number}", json.loads(line)))
                except ValueError as exc:
                    raise ConfigurationError(f"{path}:{number}: not JSON ({exc})") from None
    else:
        raw = [(f"row {i}", row) for i, row in enumerate(pairs)]
    out = []
    for where, row in raw:
        if not isinstance(row, Mapping):
            raise ConfigurationError(f"{where}: a row is a JSON object, got {row!r:.60}")
        for field in ("question", "answer_a", "answer_b"):
            if not isinstance(row.get(field), str):
                raise ConfigurationError(f"{where}: {field!r} must be a string")
        human = _HUMAN.get(str(row.get("human", "")).strip().lower())
        if human is None:
            raise ConfigurationError(
                f"{where}: 'human' must be 'a', 'b' or 'tie', got {row.get('human')!r}"
            )
        out.append((row["question"], row["answer_a"], row["answer_b"], human))
    if not out:
        raise ConfigurationError("no labelled pairs to audit the judge on")
    return out
