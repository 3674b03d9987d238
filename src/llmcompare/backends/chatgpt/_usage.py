"""The token counts a server reports, checked against the request before anything is priced.

A server's usage decides what a row costs, so a count that cannot be true for the request (a
negative one, output past ``max_tokens``, input longer than any tokenizer makes of the prompt)
is not believed: the row keeps the answer, with llmcompare's own estimate of the counts and the
reason in ``Usage.implausible``, and its cost is ``"unpriced"`` with that reason (never a charge
of millions for a server that reported 10^15 tokens).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from llmcompare.cost import input_token_bound
from llmcompare.types import Request, Usage

if TYPE_CHECKING:
    from openai.types import CompletionUsage

__all__ = ["implausible", "usage_of"]

SLACK_TOKENS = 16
"""Output tokens a server may count past ``max_tokens`` (an end-of-text token, a stop string)."""

PROMPT_OVERHEAD = 1024
"""Input tokens a server may add around the prompt (a chat template's default system prompt,
the instructions that come with a response format)."""

MOST_TOKENS = 2_000_000
"""More tokens than any model reads or writes in one request: the ceiling of a count that
nothing else bounds (no ``max_tokens``, a model whose context window is unknown)."""

_FIELDS = ("prompt_tokens", "completion_tokens")
_DETAILS = (
    ("prompt_tokens_details", "cached_tokens"),
    ("completion_tokens_details", "reasoning_tokens"),
)


def _count(value: object) -> int | None:
    """A reported count as an int, or None when it is not a whole number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _reported(u: CompletionUsage) -> dict[str, int | None]:
    # getattr: the SDK builds objects without validation, so a compatible server that leaves a
    # field out gives an object without that attribute (a missing count is 0).
    counts = {name: _count(getattr(u, name, 0) or 0) for name in _FIELDS}
    for holder, name in _DETAILS:
        details = getattr(u, holder, None)
        counts[name] = _count(getattr(details, name, 0) or 0) if details is not None else 0
    return counts


def usage_of(u: CompletionUsage) -> Usage:
    """The provider's token counts as a :class:`~llmcompare.Usage` (see :func:`implausible`)."""
    counts = _reported(u)
    inp = counts["prompt_tokens"] or 0
    out = counts["completion_tokens"] or 0
    # Clamp: a compatible server that reports more cached than prompt tokens must not turn a
    # good answer into a validation error.
    return Usage(
        input_tokens=inp,
        output_tokens=out,
        cache_read_tokens=min(counts["cached_tokens"] or 0, inp),
        reasoning_tokens=min(counts["reasoning_tokens"] or 0, out),
    )


def implausible(
    u: CompletionUsage,
    request: Request,
    *,
    context_window: int | None,
    reasoning_apart: bool,
) -> str | None:
    """Why the reported usage cannot be true for ``request``, or None when it can.

    Input tokens are at most :func:`~llmcompare.cost.input_token_bound` of the prompt (a
    byte-level tokenizer makes no more tokens than bytes) plus the format's schema and
    :data:`PROMPT_OVERHEAD`. Output tokens are at most ``max_tokens`` plus
    :data:`SLACK_TOKENS`, plus the reasoning tokens the server reports beside them when the
    limit was sent as ``max_tokens`` (which some compatible servers apply to the visible answer
    only; ``max_completion_tokens`` counts reasoning by definition); without ``max_tokens``, at
    most the context window. No count is negative or fractional.

    Args:
        u: The usage object of the response.
        request: The request it answers.
        context_window: The model's context window, when known.
        reasoning_apart: Whether the server may count reasoning outside ``max_tokens``.
    """
    counts = _reported(u)
    for name, value in counts.items():
        if value is None or value < 0:
            shown = getattr(u, name, None)
            if shown is None:
                holder = next(h for h, n in _DETAILS if n == name)
                shown = getattr(getattr(u, holder, None), name, None)
            return f"implausible usage reported: {name}={shown!r} is not a token count"
    ceiling = min(context_window or MOST_TOKENS, MOST_TOKENS)
    prompt = input_token_bound(request) + PROMPT_OVERHEAD
    if request.response_format is not None:
        prompt += len(request.response_format.canonical().encode("utf-8"))
    inp, out = counts["prompt_tokens"] or 0, counts["completion_tokens"] or 0
    if inp > prompt:
        return (
            f"implausible usage reported: prompt_tokens={inp} for a prompt of at most "
            f"{prompt} tokens"
        )
    reasoning = counts["reasoning_tokens"] or 0
    if reasoning > ceiling:
        return f"implausible usage reported: reasoning_tokens={reasoning} past {ceiling} tokens"
    if request.max_tokens is None:
        if out > ceiling:
            return f"implausible usage reported: completion_tokens={out} past {ceiling} tokens"
        return None
    allowed = request.max_tokens + SLACK_TOKENS + (reasoning if reasoning_apart else 0)
    if out > allowed:
        apart = f" + {reasoning} reasoning" if reasoning_apart and reasoning else ""
        return (
            f"implausible usage reported: completion_tokens={out} for max_tokens="
            f"{request.max_tokens} (at most {allowed}: {SLACK_TOKENS} tokens of slack{apart})"
        )
    return None
