"""Judging a comparison's answers: the judge sent through the same run as the models.

The judge's requests use the run's sending settings (each judge's own limits from
``compare``'s ``limits=``, by its name), its cost tracker (so one budget covers models and
judge), its response cache and its run folder (``judgments.jsonl`` beside ``answers.jsonl``);
its cost is kept in the record's ``judging``, apart from the models'.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from llmcompare.errors import ConfigurationError
from llmcompare.judges import Judge, JudgePanel, Judging, PairwiseJudge, PointwiseJudge
from llmcompare.judges import judge_answers as _judge_answers

if TYPE_CHECKING:
    from llmcompare.comparison._inputs import Inputs
    from llmcompare.comparison._plan import ModelRun
    from llmcompare.comparison._run import Sending
    from llmcompare.cost import LocalHardware
    from llmcompare.runs import ResponseCache, RunFolder

__all__ = ["check_judge", "judge_runs"]


def check_judge(judge: object, models: int) -> tuple[str, ...]:
    """Refuse, before anything is sent, a judge that cannot judge this run.

    Returns:
        The names of the judges that ask (a panel's members), by which ``limits=`` names
        them; none without a judge.

    Raises:
        ConfigurationError: For something that is not a judge, or a pairwise judge of one model.
    """
    if judge is None:
        return ()
    if not isinstance(judge, (PairwiseJudge, PointwiseJudge, JudgePanel)):
        raise ConfigurationError(
            f"judge must be a PairwiseJudge, a PointwiseJudge or a JudgePanel, got {judge!r:.80}"
        )
    if judge.mode == "pairwise" and models < 2:
        raise ConfigurationError("a pairwise judge needs two models or more to compare")
    return tuple(j.name for j in judge.judges)


def judge_runs(
    judge: Judge | JudgePanel,
    runs: Sequence[ModelRun],
    inputs: Inputs,
    sending: Sending,
    folder: RunFolder | None,
    store: ResponseCache | None,
    hardware: LocalHardware | None,
) -> Judging:
    """Judge every answer the models gave, through the run's own machinery."""
    names = {j.name for j in judge.judges}
    answers = {
        (p.item_id, run.label, p.sample): p.result.completion
        for run in runs
        for p in run.requests
        if p.result is not None and p.result.completion is not None
    }
    return _judge_answers(
        judge,
        inputs.items,
        answers,
        [r.label for r in runs],
        tracker=sending.tracker,
        cache=store,
        out=None if folder is None else folder.path,
        concurrency=sending.concurrency,
        retry=sending.retry,
        rpm=sending.rpm,
        tpm=sending.tpm,
        limits={name: own for name, own in sending.limits.items() if name in names},
        progress=sending.progress,
        refresh=sending.refresh,
        hardware=hardware,
        confidence=inputs.confidence,
        seed=inputs.stats_seed,
    )
