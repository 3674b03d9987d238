"""What a report shows of a judged run: per pair, the ranking, the biases, the judging cost.

Read from the record's ``judging`` alone (the verdicts and each pair's figures), like every
other part of the report's view model; the terminal report and the HTML page both use it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from llmcompare.errors import LLMCompareError

if TYPE_CHECKING:
    from llmcompare.judges import Judging, PairFigures, Ranking
    from llmcompare.record import Comparison

__all__ = ["JudgingView", "grid_verdicts", "judging_lines", "judging_view"]


@dataclass(frozen=True)
class JudgingView:
    """The judged part of a report.

    Attributes:
        judged_by: Who judged, and how, in one line.
        pairs: Each pair's figures, in run order.
        agreement: A panel's agreement line, or None.
        ranking: The Bradley-Terry ranking (3 or more models), or None.
        cost: The judging cost line (``judging: $0.42, 310k tokens ...``).
        judging: The record's judging itself (verdicts, for the answers grid).
    """

    judged_by: str
    pairs: tuple[PairFigures, ...]
    agreement: str | None
    ranking: Ranking | None
    cost: str
    judging: Judging


def judging_view(comparison: Comparison) -> JudgingView | None:
    """The judged part of the report, or None for a run that was not judged."""
    judging = comparison.judging
    if judging is None:
        return None
    first = judging.judges[0] if judging.judges else None
    how = ""
    if first is not None and judging.mode == "pairwise":
        how = ", both orders" if first.swap else ", one order"
    elif first is not None and first.scale is not None:
        how = f", grades {first.scale[0]}-{first.scale[1]}"
    names = ", ".join(
        f"{j.name} ({j.model})" if j.name != j.model else j.name for j in judging.judges
    )
    panel = f" (a panel, {judging.vote} vote)" if judging.vote else ""
    agreement = None
    if judging.vote is not None:
        kappa = "undefined" if judging.agreement is None else f"{judging.agreement:.2f}"
        agreement = (
            f"the judges' agreement beyond chance (Fleiss' kappa): {kappa} over "
            f"{judging.agreement_n} verdicts"
        )
    ranked = None
    if len(comparison.run.models) >= 3:
        try:
            ranked = comparison.ranking()
        except LLMCompareError:
            ranked = None
    return JudgingView(
        judged_by=f"judged by {names}{panel}: {judging.mode}{how}",
        pairs=judging.pairs,
        agreement=agreement,
        ranking=ranked,
        cost=judging.cost_line(),
        judging=judging,
    )


def judging_lines(comparison: Comparison) -> list[str]:
    """The judged part as plain lines, as the terminal report prints it.

    One line per pair (``llama vs gpt: 31 wins, 52 losses, 17 ties (9 inconsistent); win rate
    0.40 [0.31, 0.50], p = 0.03``), the bias figures, a panel's agreement, the ranking for three
    or more models, and the judging cost on its own line. Empty for a run that was not judged.
    """
    found = judging_view(comparison)
    if found is None:
        return []
    lines = [found.judged_by]
    lines += [p.line() for p in found.pairs]
    lines += [f"  {p.bias_line()}" for p in found.pairs]
    if found.agreement is not None:
        lines.append(found.agreement)
    if found.ranking is not None:
        bt = found.ranking.bradley_terry
        lines.append(f"ranking (Bradley-Terry, {bt.scale}; {bt.confidence:.0%} intervals):")
        lines += [f"  {line}" for line in bt.lines()]
    lines.append(found.cost)
    return lines


def grid_verdicts(judging: Judging, models: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """Each item's verdicts as data for the page's answers grid (models as column indexes).

    A verdict: ``a``/``b`` the two models' columns, ``w`` the winner (``"a"``, ``"b"``,
    ``"tie"`` or None), ``i`` 1 when inconsistent, ``sm`` the sample, ``c`` its requests (judge,
    the column shown first, what it said or its grade, its reasoning, its error).
    """
    col = {m: i for i, m in enumerate(models)}
    grades = {(g.item_id, g.model, g.sample): g for g in judging.grades}
    out: dict[str, list[dict[str, Any]]] = {}
    for v in judging.verdicts:
        if v.model_a not in col or v.model_b not in col:
            continue
        calls = list(v.calls)
        for model in (v.model_a, v.model_b):
            found = grades.get((v.item_id, model, v.sample))
            if found is not None:
                calls += [c.model_copy(update={"first": model}) for c in found.calls]
        out.setdefault(v.item_id, []).append(
            {
                "a": col[v.model_a],
                "b": col[v.model_b],
                "w": v.winner,
                "i": 1 if v.inconsistent else 0,
                "sm": v.sample,
                "c": [
                    {
                        "j": c.judge,
                        "f": None if c.first is None else col.get(c.first),
                        "d": c.said,
                        "g": c.grade,
                        "r": c.reasoning,
                        "e": c.error,
                    }
                    for c in calls
                ],
            }
        )
    return out
