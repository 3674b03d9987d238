"""The token counts a server reports, checked against the request before anything is priced.

A server's usage decides what a row costs, so a count that cannot be true for the request (a
negative one, output past ``max_tokens``, input longer than any tokenizer makes of the prompt)
is not believed: the row keeps the answer, with llmcompare's own estimate of the counts and the
reason in ``Usage.implausible``, and its cost is ``"unpriced"`` with that reason (never a charge
of millions for a server that reported 10^15 tokens).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from llmcompare.cost import input_token_bound
from llmcompare.types import Request, Usage

if TYPE_CHECKING:
    from openai.types import CompletionUsage
    from openai.types.responses import ResponseUsage

__all__ = ["Api", "implausible", "usage_of"]

SLACK_TOKENS = 16
"""Output tokens a server may count past ``max_tokens`` (an end-of-text token, a stop string)."""

PROMPT_OVERHEAD = 1024
"""Input tokens a server may add around the prompt (a chat template's default system prompt,
the instructions that come with a response format)."""

MOST_TOKENS = 2_000_000
"""More tokens than any model reads or writes in one request: the ceiling of a count that
nothing else bounds (no ``max_tokens``, a model whose context window is unknown)."""

Api = Literal["chat", "responses"]
"""Which API reported the usage: their objects name the same counts differently."""

_WIRE: dict[Api, dict[str, tuple[str | None, str]]] = {
    "chat": {
        "input": (None, "prompt_tokens"),
        "output": (None, "completion_tokens"),
        "cached": ("prompt_tokens_details", "cached_tokens"),
        "written": ("prompt_tokens_details", "cache_write_tokens"),
        "reasoning": ("completion_tokens_details", "reasoning_tokens"),
    },
    "responses": {
        "input": (None, "input_tokens"),
        "output": (None, "output_tokens"),
        "cached": ("input_tokens_details", "cached_tokens"),
        "written": ("input_tokens_details", "cache_write_tokens"),
        "reasoning": ("output_tokens_details", "reasoning_tokens"),
    },
}
"""Where each count lives in each API's usage object: (details object or None, field)."""


def _count(value: object) -> int | None:
    """A reported count as an int, or None when it is not a whole number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _raw(u: object, holder: str | None, name: str) -> object:
    # getattr: the SDK builds objects without validation, so a compatible server (or an older
    # recording) that leaves a field out gives an object without that attribute (a missing
    # count is 0).
    owner = u if holder is None else getattr(u, holder, None)
    return (getattr(owner, name, 0) or 0) if owner is not None else 0


def _reported(u: object, api: Api) -> dict[str, int | None]:
    return {key: _count(_raw(u, *where)) for key, where in _WIRE[api].items()}


def usage_of(u: CompletionUsage | ResponseUsage, api: Api = "chat") -> Usage:
    """The provider's token counts as a :class:`~llmcompare.Usage` (see :func:`implausible`).

    Args:
        u: The usage object of the response.
        api: The API that reported it.
    """
    counts = _reported(u, api)
    inp = counts["input"] or 0
    out = counts["output"] or 0
    cached = min(counts["cached"] or 0, inp)
    # Clamp: a compatible server that reports more cached than prompt tokens must not turn a
    # good answer into a validation error.
    return Usage(
        input_tokens=inp,
        output_tokens=out,
        cache_read_tokens=cached,
        reasoning_tokens=min(counts["reasoning"] or 0, out),
        cache_write_tokens=min(counts["written"] or 0, inp - cached),
    )


def implausible(
    u: CompletionUsage | ResponseUsage,
    request: Request,
    *,
    context_window: int | None,
    reasoning_apart: bool,
    api: Api = "chat",
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
        api: The API that reported it (the message names its own fields).
    """
    wire = _WIRE[api]
    counts = _reported(u, api)
    for key, value in counts.items():
        if value is None or value < 0:
            name = wire[key][1]
            return (
                f"implausible usage reported: {name}={_raw(u, *wire[key])!r} is not a token count"
            )
    names = {key: where[1] for key, where in wire.items()}
    ceiling = min(context_window or MOST_TOKENS, MOST_TOKENS)
    prompt = input_token_bound(request) + PROMPT_OVERHEAD
    if request.response_format is not None:
        prompt += len(request.response_format.canonical().encode("utf-8"))
    inp, out = counts["input"] or 0, counts["output"] or 0
    if inp > prompt:
        return (
            f"implausible usage reported: {names['input']}={inp} for a prompt of at most "
            f"{prompt} tokens"
        )
    reasoning = counts["reasoning"] or 0
    if reasoning > ceiling:
        return f"implausible usage reported: reasoning_tokens={reasoning} past {ceiling} tokens"
    if request.max_tokens is None:
        if out > ceiling:
            return f"implausible usage reported: {names['output']}={out} past {ceiling} tokens"
        return None
    allowed = request.max_tokens + SLACK_TOKENS + (reasoning if reasoning_apart else 0)
    if out > allowed:
        apart = f" + {reasoning} reasoning" if reasoning_apart and reasoning else ""
        return (
            f"implausible usage reported: {names['output']}={out} for max_tokens="
            f"{request.max_tokens} (at most {allowed}: {SLACK_TOKENS} tokens of slack{apart})"
        )
    return None
