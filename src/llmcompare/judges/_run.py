"""Judging a run's answers: every request planned, sent through the run, read into verdicts.

:func:`judge_answers` is what ``compare(judge=...)``, :meth:`Comparison.rejudge
<llmcompare.record.Comparison.rejudge>` and ``llmcompare rejudge`` call; it takes the answers
as plain values, so it works on answers from anywhere.
"""

from __future__ import annotations

import itertools
import os
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from llmcompare.cost import Cost, LocalHardware, cost_of
from llmcompare.cost._cost import unanswered_cost
from llmcompare.errors import ConfigurationError
from llmcompare.judges._figures import pair_figures, vote_of
from llmcompare.judges._judge import Judge, JudgePanel, PairwiseJudge, PointwiseJudge, Vote
from llmcompare.judges._send import Reply, Sending, ask
from llmcompare.judges._store import JudgmentsFile
from llmcompare.judges._types import Call, Grade, Judging, Outcome, PairVerdict
from llmcompare.ratelimit import RateLimits, check_limits
from llmcompare.retry import DEFAULT_POLICY, RetryPolicy
from llmcompare.runs import add_charge
from llmcompare.stats import fleiss_kappa
from llmcompare.types import Completion, Request, Usage

if TYPE_CHECKING:
    from llmcompare.cost import CostTracker
    from llmcompare.prompts import PromptItem
    from llmcompare.runs import ResponseCache

__all__ = ["Answers", "call_of", "judge_answers", "members", "panel_vote"]

Answers = Mapping[tuple[str, str, int], Completion]
"""The answers to judge, by (item id, model label, sample)."""

_POINTS: dict[Outcome, float] = {"a": 1.0, "tie": 0.5, "b": 0.0}


def members(judge: Judge | JudgePanel) -> tuple[Judge, ...]:
    """The judges that ask: a panel's, or the one judge."""
    return judge.judges


def judge_answers(
    judge: Judge | JudgePanel,
    items: Sequence[PromptItem],
    answers: Answers,
    models: Sequence[str],
    *,
    tracker: CostTracker | None = None,
    cache: ResponseCache | None = None,
    out: str | os.PathLike[str] | None = None,
    concurrency: int = 8,
    retry: RetryPolicy | None = DEFAULT_POLICY,
    rpm: float | None = None,
    tpm: float | None = None,
    limits: Mapping[str, RateLimits] | None = None,
    progress: bool | None = None,
    refresh: bool = False,
    hardware: LocalHardware | None = None,
    confidence: float = 0.95,
    seed: int = 0,
) -> Judging:
    """Judge every item's answers: each pair of models (pairwise), or each answer (pointwise).

    Requests go through the run machinery (see :mod:`llmcompare.judges`): with ``out`` each
    reply is written to ``judgments.jsonl`` there as it arrives and read back on the next call;
    with ``cache`` replies are shared across runs; ``tracker`` counts the judge's cost against
    the run's budget (a request whose worst case does not fit is refused, not sent).

    Args:
        judge: A judge or a panel.
        items: The items (their prompts and references).
        answers: The answers, by (item id, model label, sample); a missing answer (a failed
            request) is not judged.
        models: The models' labels, in run order: pairs are ``(models[i], models[j])``, i < j.
        tracker: The run's cost tracker (and budget).
        cache: The response cache, or None.
        out: The run folder for ``judgments.jsonl``, or None.
        concurrency: Requests in flight per judge model.
        retry: The retry policy; None retries nothing.
        rpm: Requests per minute, at most, per judge model without limits of its own.
        tpm: Tokens per minute, at most, per judge model without limits of its own.
        limits: Each judge's own limits, by its ``name``: they replace ``rpm`` and ``tpm``
            for that judge (``RateLimits()``: none at all), as ``compare``'s ``limits=`` do
            for its models.
        progress: Show a progress bar; None: when stderr is a terminal.
        refresh: Ask again even when the cache has the reply.
        hardware: The cost basis of a local judge model.
        confidence: The level of the win rates' intervals.
        seed: Seeds their bootstraps.

    Returns:
        The verdicts (and grades), each pair's figures, the panel's agreement, the judges' cost.

    Raises:
        ConfigurationError: For a pairwise judge with fewer than two models, ``limits`` naming
            no judge of it or not a :class:`~llmcompare.ratelimit.RateLimits`, or a judge model
            that refuses its requests' setup (nothing was sent).
    """
    if judge.mode == "pairwise" and len(models) < 2:
        raise ConfigurationError("a pairwise judge needs two models or more to compare")
    names = [j.name for j in members(judge)]
    own = check_limits(
        limits,
        names,
        lambda unknown: f"limits name judges that are not judging: {unknown}; the judges: {names}",
    )
    store = JudgmentsFile(out) if out is not None else None
    sending = Sending(
        tracker, cache, store, concurrency, retry, rpm, tpm, own, progress=progress, refresh=refresh
    )
    run = _Run(items, answers, list(models), hardware)
    vote = judge.vote if isinstance(judge, JudgePanel) else None
    if judge.mode == "pairwise":
        verdicts = run.pairwise(members(judge), vote or "majority", sending)
        grades: tuple[Grade, ...] = ()
    else:
        grades = run.pointwise(members(judge), vote or "mean", sending)
        verdicts = run.from_grades(grades)
    calls = [c for v in verdicts for c in v.calls] + [c for g in grades for c in g.calls]
    agreement, agreed = _agreement(judge, verdicts, grades)
    return Judging(
        mode=judge.mode,
        judges=tuple(j.info() for j in members(judge)),
        vote=vote,
        verdicts=verdicts,
        grades=grades,
        pairs=tuple(
            pair_figures(verdicts, a, b, run.lengths, confidence=confidence, seed=seed)
            for a, b in itertools.combinations(models, 2)
        ),
        agreement=agreement,
        agreement_n=agreed,
        requests=sum(1 for c in calls if not c.repeat),
        cached=sum(1 for c in calls if c.cached and not c.repeat),
        failed=sum(1 for c in calls if c.error is not None and not c.repeat),
        usage=sum((c.usage for c in calls), Usage()),
        cost=sum((c.cost for c in calls if c.cost is not None), Cost()),
        confidence=confidence,
    )


def call_of(
    judge: Judge, reply: Reply, hardware: LocalHardware | None, first: str | None = None
) -> Call:
    """One request's record: the verdict or grade read from the reply, or why there is none.

    Its cost holds what failed attempts were charged as maybe billed (``reply.charged_usd``),
    an estimate, as a compared model's row does: the record's judging cost is then what the
    budget counted.
    """
    completion, charged = reply.completion, reply.charged_usd
    if completion is None:
        cost = None if charged is None or reply.repeat else unanswered_cost(charged)
        return Call(
            judge=judge.name, first=first, error=reply.error, cost=cost, repeat=reply.repeat
        )
    if isinstance(judge, PairwiseJudge):
        said, reasoning, error = judge.read(completion)
        grade = None
    else:
        grade, reasoning, error = judge.read(completion)
        said = None
    # Earlier attempts' charges (``reply.charged_usd``) are part of what it cost.
    charged_too = add_charge(completion, reply.charged_usd, reply.charged_tokens)
    # A repeat was sent once: its tokens and cost are on the first call of it.
    repeat = reply.repeat
    return Call(
        judge=judge.name,
        first=first,
        said=said,
        grade=grade,
        reasoning=reasoning,
        error=error,
        cached=reply.cached,
        usage=Usage() if repeat else completion.usage,
        cost=None if repeat else cost_of(charged_too, hardware=hardware),
        repeat=repeat,
    )


def panel_vote(votes: Sequence[Outcome | None], vote: Vote) -> Outcome | None:
    """A panel's verdict from its judges' (see :class:`~llmcompare.judges.JudgePanel`)."""
    cast = [v for v in votes if v is not None]
    if not cast:
        return None
    if vote == "mean":
        mean = sum(_POINTS[v] for v in cast) / len(cast)
        return "a" if mean > 0.5 else "b" if mean < 0.5 else "tie"
    counts = {o: cast.count(o) for o in ("a", "b", "tie")}
    top = max(counts.values())
    leaders: list[Outcome] = [o for o in ("a", "b", "tie") if counts[o] == top]
    return leaders[0] if len(leaders) == 1 else "tie"


@dataclass(frozen=True)
class _Task:
    item: PromptItem
    sample: int
    model_a: str
    model_b: str


class _Run:
    """One judging: the answers, the pairs to judge, and each answer's length."""

    def __init__(
        self,
        items: Sequence[PromptItem],
        answers: Answers,
        models: list[str],
        hardware: LocalHardware | None,
    ) -> None:
        self.items = items
        self.answers = answers
        self.models = models
        self.hardware = hardware
        self.samples = sorted({s for (_, _, s) in answers}) or [0]
        self.lengths = {key: len(c.text) for key, c in answers.items()}

    def _answer(self, item: PromptItem, model: str, sample: int) -> str | None:
        found = self.answers.get((item.id, model, sample))
        return None if found is None else found.text

    def _text(self, item: PromptItem, model: str, sample: int) -> str:
        """An answer known to be there (its task was planned because it is)."""
        return self.answers[(item.id, model, sample)].text

    def pairwise(
        self, judges: Sequence[Judge], vote: Vote, sending: Sending
    ) -> tuple[PairVerdict, ...]:
        tasks = [
            _Task(item, s, a, b)
            for item in self.items
            for s in self.samples
            for a, b in itertools.combinations(self.models, 2)
            if self._answer(item, a, s) is not None and self._answer(item, b, s) is not None
        ]
        per_judge: list[list[list[Call]]] = []
        for judge in judges:
            assert isinstance(judge, PairwiseJudge)
            asked: list[tuple[Request, int]] = []
            firsts: list[str] = []
            for t in tasks:
                orders = [(t.model_a, t.model_b), (t.model_b, t.model_a)][: 2 if judge.swap else 1]
                for first, second in orders:
                    shown = (
                        self._text(t.item, first, t.sample),
                        self._text(t.item, second, t.sample),
                    )
                    asked.append((judge.item_request(t.item, *shown), 0))
                    firsts.append(first)
            replies = iter(zip(ask(judge.model, judge.name, asked, sending), firsts, strict=True))
            per_judge.append(
                [
                    [
                        call_of(judge, r, self.hardware, f)
                        for r, f in itertools.islice(replies, 2 if judge.swap else 1)
                    ]
                    for _ in tasks
                ]
            )
        out = []
        for i, t in enumerate(tasks):
            calls = [c for judge_calls in per_judge for c in judge_calls[i]]
            votes = {}
            inconsistent = False
            for judge, judge_calls in zip(judges, per_judge, strict=True):
                votes[judge.name], flipped = vote_of(judge_calls[i], t.model_a)
                inconsistent = inconsistent or flipped
            out.append(
                PairVerdict(
                    item_id=t.item.id,
                    sample=t.sample,
                    model_a=t.model_a,
                    model_b=t.model_b,
                    winner=panel_vote(list(votes.values()), vote),
                    inconsistent=inconsistent,
                    votes=votes,
                    calls=tuple(calls),
                )
            )
        return tuple(out)

    def pointwise(self, judges: Sequence[Judge], vote: Vote, sending: Sending) -> tuple[Grade, ...]:
        graded = [
            (item, model, s)
            for item in self.items
            for s in self.samples
            for model in self.models
            if self._answer(item, model, s) is not None
        ]
        per_judge: list[list[Call]] = []
        for judge in judges:
            assert isinstance(judge, PointwiseJudge)
            asked = [
                (judge.item_request(item, self._answer(item, m, s) or ""), 0)
                for item, m, s in graded
            ]
            replies = ask(judge.model, judge.name, asked, sending)
            per_judge.append([call_of(judge, r, self.hardware) for r in replies])
        out = []
        for i, (item, model, s) in enumerate(graded):
            calls = [judge_calls[i] for judge_calls in per_judge]
            scores = [
                j.normalise(c.grade)
                for j, c in zip(judges, calls, strict=True)
                if c.grade is not None and isinstance(j, PointwiseJudge)
            ]
            if not scores:
                score = None
            elif vote == "mean":
                score = sum(scores) / len(scores)
            else:
                score = float(statistics.median(scores))
            out.append(
                Grade(
                    item_id=item.id,
                    sample=s,
                    model=model,
                    score=score,
                    grades={c.judge: c.grade for c in calls},
                    calls=tuple(calls),
                )
            )
        return tuple(out)

    def from_grades(self, grades: Sequence[Grade]) -> tuple[PairVerdict, ...]:
        """Pointwise: each pair's verdict per item is the higher score (equal: a tie)."""
        by = {(g.item_id, g.model, g.sample): g for g in grades}
        out = []
        for item in self.items:
            for s in self.samples:
                for a, b in itertools.combinations(self.models, 2):
                    ga, gb = by.get((item.id, a, s)), by.get((item.id, b, s))
                    if ga is None or gb is None:
                        continue
                    votes = {
                        name: _higher(ga.grades[name], gb.grades.get(name)) for name in ga.grades
                    }
                    out.append(
                        PairVerdict(
                            item_id=item.id,
                            sample=s,
                            model_a=a,
                            model_b=b,
                            winner=_higher(ga.score, gb.score),
                            votes=votes,
                        )
                    )
        return tuple(out)


def _higher(a: float | None, b: float | None) -> Outcome | None:
    if a is None or b is None:
        return None
    return "a" if a > b else "b" if a < b else "tie"


def _agreement(
    judge: Judge | JudgePanel, verdicts: Sequence[PairVerdict], grades: Sequence[Grade]
) -> tuple[float | None, int]:
    """A panel's Fleiss' kappa over what every judge rated; (None, 0) for one judge."""
    if not isinstance(judge, JudgePanel):
        return None, 0
    names = [j.name for j in judge.judges]
    rows: list[list[object]]
    if judge.mode == "pairwise":
        rows = [[v.votes.get(n) for n in names] for v in verdicts]
    else:
        rows = [[g.grades.get(n) for n in names] for g in grades]
    complete = [r for r in rows if all(x is not None for x in r)]
    if not complete:
        return None, 0
    return fleiss_kappa(complete), len(complete)
