"""A charge as the run files write it: what a failed attempt that may be billed was charged.

A run folder's ``answers.jsonl``, a judge's ``judgments.jsonl`` and a results file write it on a
failure line: ``charged_usd`` (a decimal string; absent for a model without a price) and
``charged_tokens`` (an int; absent in lines written before tokens were kept). A resumed run
counts each such line once towards its budget.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal, InvalidOperation

from llmcompare.types import Completion

__all__ = ["add_charge", "read_charge", "sum_charges"]


def read_charge(usd: object, tokens: object) -> tuple[Decimal | None, int] | None:
    """A charge as a line writes it (dollars a decimal string, or none; tokens an int).

    None when there is none, or it is damaged: a charge never read is simply not counted.
    """
    if usd is None and not tokens:
        return None
    try:
        dollars = None if usd is None else Decimal(str(usd))
        count = int(tokens or 0)  # type: ignore[call-overload]
    except (ValueError, TypeError, InvalidOperation):
        return None
    if (dollars is not None and (not dollars.is_finite() or dollars < 0)) or count < 0:
        return None
    return dollars, count


def sum_charges(charges: Iterable[tuple[Decimal | None, int]]) -> tuple[Decimal | None, int]:
    """Charges (dollars or None when unpriced, tokens) summed; dollars None when none had any."""
    dollars: Decimal | None = None
    tokens = 0
    for usd, count in charges:
        if usd is not None:
            dollars = usd if dollars is None else dollars + usd
        tokens += count
    return dollars, tokens


def add_charge(completion: Completion, usd: Decimal | None, tokens: int) -> Completion:
    """The answer with earlier attempts' charge added to its ``unanswered_usd`` and ``_tokens``."""
    update: dict[str, object] = {}
    if usd is not None:
        update["unanswered_usd"] = (completion.unanswered_usd or 0) + usd
    if tokens:
        update["unanswered_tokens"] = (completion.unanswered_tokens or 0) + tokens
    return completion.model_copy(update=update) if update else completion
