"""A latency target for requests in flight: ``"ttft_p95<=1,latency_p95<=10"``.

- :class:`Slo`: upper bounds, in seconds, on some of a load level's figures.
- :func:`parse_slo`: the target from its text (``--slo``, config ``slo``).
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict

from llmcompare.errors import ConfigurationError

__all__ = ["SLO_METRICS", "Slo", "parse_slo"]

SLO_METRICS = ("latency_p50_s", "latency_p95_s", "ttft_p50_s", "ttft_p95_s", "tpot_s")
"""The figures a latency target may bound (``latency_p95`` is read as ``latency_p95_s``)."""


class Slo(BaseModel):
    """A latency target: upper bounds on some of a level's figures, in seconds.

    Attributes:
        bounds: Each bounded figure (one of :data:`SLO_METRICS`) and its bound.
        text: The target as the user wrote it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    bounds: dict[str, float]
    text: str


def parse_slo(text: str) -> Slo:
    """A latency target from ``"ttft_p95<=1,latency_p95<=10"`` (seconds; ``_s`` optional).

    Raises:
        ConfigurationError: For a bound that is not ``NAME<=SECONDS`` of a known figure.
    """
    bounds: dict[str, float] = {}
    for part in (p.strip() for p in text.split(",")):
        found = re.fullmatch(r"([a-z0-9_]+)\s*<=\s*([0-9]*\.?[0-9]+)", part)
        name = "" if found is None else found[1]
        metric = name if name.endswith("_s") else f"{name}_s"
        if found is None or metric not in SLO_METRICS:
            raise ConfigurationError(
                f"--slo {part!r}: give NAME<=SECONDS, NAME one of "
                f"{[m.removesuffix('_s') for m in SLO_METRICS]} (e.g. ttft_p95<=1,latency_p95<=10)"
            )
        bounds[metric] = float(found[2])
    return Slo(bounds=bounds, text=text)
