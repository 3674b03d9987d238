"""Judges: which answer is better, asked of a model, with the biases handled and reported.

Most prompts a team cares about have no reference answer. A judge model then says which of two
answers is better (:class:`PairwiseJudge`) or grades each answer on a scale
(:class:`PointwiseJudge`; :class:`llmcompare.scorers.Judge` is this class). Judges are biased:
they prefer a position, the longer answer, their own family. So:

- a pairwise judge asks each pair in both orders (``swap=True``, the default) and counts a
  verdict that flips with the order as a tie, marked inconsistent (MT-Bench's rule);
- each pair of models gets its wins, ties, losses, win rate with its interval, the exact sign
  test, and the bias figures: the share of verdicts that flipped, how often the answer shown
  first was picked, how often the longer answer won (:class:`PairFigures`);
- :class:`JudgePanel` combines several judges by vote and reports their agreement (Fleiss'
  kappa);
- :func:`audit` measures a judge against people's labels (agreement with and without ties,
  Cohen's kappa with its interval, position and self-consistency): do it on 50-100 of your own
  labelled pairs before trusting a judge.

A judge is a client of the run machinery, never a side channel: :func:`judge_answers` (what
``compare(judge=...)`` and ``Comparison.rejudge`` call) sends its requests through
:func:`~llmcompare.batch.generate_many` with the run's concurrency, retry, rate limits and
budget, reads replies back from the run folder's ``judgments.jsonl`` and the response cache
first, and keeps the judge's dollars and tokens apart from the compared models'.

:func:`bradley_terry` ranks three or more models from battles (Bradley-Terry by maximum
likelihood, bootstrap intervals over items, on an Elo-like scale); :func:`ranking` does it for
a judged run's verdicts, with the win-rate matrix.

Example:
    >>> from llmcompare.backends.fake import ScriptedModel
    >>> from llmcompare.judges import PairwiseJudge, judge_answers
    >>> from llmcompare.prompts import PromptItem
    >>> from llmcompare.types import Completion, Usage
    >>> def answer(text: str) -> Completion:
    ...     return Completion(text=text, finish_reason="stop", usage=Usage(), model="fake:x")
    >>> says_a = '{"reasoning": "A is better.", "verdict": "A"}'
    >>> first = ScriptedModel(default=says_a, name="gpt-4o-mini")
    >>> judged = judge_answers(
    ...     PairwiseJudge(first),
    ...     [PromptItem(id="q", prompt="Capital of France?")],
    ...     {("q", "x", 0): answer("Paris."), ("q", "y", 0): answer("Lyon.")},
    ...     ["x", "y"],
    ...     progress=False,
    ... )
    >>> v = judged.verdicts[0]  # it always picks the answer shown first: both orders disagree
    >>> v.winner, v.inconsistent, judged.pairs[0].position_bias
    ('tie', True, 1.0)
"""

from __future__ import annotations

from llmcompare.judges._audit import JudgeAudit, audit
from llmcompare.judges._judge import Judge, JudgePanel, PairwiseJudge, PointwiseJudge, Vote
from llmcompare.judges._prompts import PAIRWISE_RUBRIC, POINTWISE_RUBRIC
from llmcompare.judges._ranking import (
    ELO_BASE,
    ELO_PER_LOG_ODDS,
    BradleyTerry,
    Ranking,
    bradley_terry,
    ranking,
)
from llmcompare.judges._run import Answers, judge_answers
from llmcompare.judges._store import JUDGMENTS_FILE
from llmcompare.judges._types import (
    Call,
    Grade,
    JudgeInfo,
    Judging,
    Mode,
    Outcome,
    PairFigures,
    PairVerdict,
)

__all__ = [
    "ELO_BASE",
    "ELO_PER_LOG_ODDS",
    "JUDGMENTS_FILE",
    "PAIRWISE_RUBRIC",
    "POINTWISE_RUBRIC",
    "Answers",
    "BradleyTerry",
    "Call",
    "Grade",
    "Judge",
    "JudgeAudit",
    "JudgeInfo",
    "JudgePanel",
    "Judging",
    "Mode",
    "Outcome",
    "PairFigures",
    "PairVerdict",
    "PairwiseJudge",
    "PointwiseJudge",
    "Ranking",
    "Vote",
    "audit",
    "bradley_terry",
    "judge_answers",
    "ranking",
]
