"""Shelf life: until when each model of a comparison is served, warned about before sending.

A comparison of a model its provider shuts down cannot be re-run as it was. Each model says
when (:meth:`llmcompare.ModelBase.shelf_life`); a model past its date, or within
:data:`WARN_DAYS` of it, is warned about before the first request, and the record keeps every
known date so that the report can say "re-runnable until DATE".
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from datetime import date

from llmcompare.model import Model
from llmcompare.types import ShelfLife

__all__ = ["WARN_DAYS", "ShelfLifeWarning", "shelf_lives"]

WARN_DAYS = 30
"""A model this many days or fewer from its shutdown is warned about."""


class ShelfLifeWarning(UserWarning):
    """A model of a comparison is shut down, or will be within :data:`WARN_DAYS` days."""


def shelf_lives(models: Mapping[str, Model], today: date) -> dict[str, ShelfLife]:
    """Every model's known shutdown date, warning about those past or near it.

    Args:
        models: The models by label.
        today: The day to count from (the caller's clock).

    Returns:
        The shelf life of each model that has a known shutdown date, by label.
    """
    lives: dict[str, ShelfLife] = {}
    for label, model in models.items():
        ask = getattr(model, "shelf_life", None)  # third-party models may lack it
        life = ask() if callable(ask) else None
        if not isinstance(life, ShelfLife):
            continue
        lives[label] = life
        left = life.days_left(today)
        until = life.until.isoformat()
        if left < 0:
            message = (
                f"{label} was shut down on {until}, {-left} days ago ({life.source}): its requests "
                "will likely fail, and this comparison cannot be re-run"
            )
        elif left <= WARN_DAYS:
            message = (
                f"{label} shuts down on {until}, in {left} days ({life.source}): this "
                "comparison can be re-run only until then"
            )
        else:
            continue
        warnings.warn(message, ShelfLifeWarning, stacklevel=3)
    return lives
