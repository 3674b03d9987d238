"""Numbers as a reader reads them: no scientific notation, thousands separated.

Every figure the terminal report, the HTML page and the decision show goes through these, so
``1.98e-05`` reads ``0.0000198`` and ``6.74602E-7`` reads ``0.000000675`` everywhere.

- :func:`plain`: a number to three significant figures (whole numbers from 1,000 up).
- :func:`usd`: dollars the same way, with their sign.
- :func:`per_thousand`: dollars (or watt-hours) per 1,000 of something.
"""

from __future__ import annotations

import math
from decimal import Decimal

__all__ = ["per_thousand", "plain", "usd"]


def plain(value: float | Decimal, sig: int = 3) -> str:
    """``value`` to ``sig`` significant figures in plain decimals, never in exponent notation.

    >>> [plain(x) for x in (1.98e-05, 6.74602e-07, 1234567.8, 0, 12.345, 2.5)]
    ['0.0000198', '0.000000675', '1,234,568', '0', '12.3', '2.5']
    """
    x = float(value)
    if not math.isfinite(x):
        return str(x)
    if x == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(x)))
    if magnitude >= sig - 1:
        return f"{x:,.0f}"
    decimals = sig - 1 - magnitude
    text = f"{x:,.{decimals}f}"
    # Trailing zeros say nothing here ("2.50" is "2.5"), and "0.0000198" keeps its digits.
    return text.rstrip("0").rstrip(".") if "." in text else text


def usd(value: float | Decimal, sig: int = 3) -> str:
    """Dollars in plain decimals: ``usd(1.98e-05)`` is ``"$0.0000198"``, ``usd(-2)`` ``"-$2"``."""
    x = float(value)
    return ("-" if x < 0 else "") + "$" + plain(abs(x), sig)


def per_thousand(value: float | Decimal) -> float:
    """A figure per one of something as the figure per 1,000 (the unit the decision shows)."""
    return float(value) * 1000
