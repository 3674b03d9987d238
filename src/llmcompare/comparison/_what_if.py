"""Price before you pay: the run's items priced at another model's table prices, nothing sent.

Input tokens are counted exactly with the model's tokenizer offline (tiktoken's encoding for an
OpenAI model, with the chat framing OpenAI bills); output tokens are estimated from the run's
measured answers to each item, re-tokenized with the same tokenizer.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING

from llmcompare.cost import get_price
from llmcompare.errors import ConfigurationError
from llmcompare.record import WhatIf

if TYPE_CHECKING:
    from llmcompare.comparison._plan import ModelRun

__all__ = ["check_what_if", "price_what_if"]


def check_what_if(models: Sequence[str]) -> tuple[str, ...]:
    """The models to price, each an OpenAI model with a table price (else refused up front)."""
    out = []
    for model in models:
        if not model.startswith("chatgpt:"):
            raise ConfigurationError(
                f"--what-if {model}: only chatgpt: models can be priced offline (their "
                "tokenizer is tiktoken's), such as chatgpt:gpt-5.4-mini"
            )
        if get_price(model) is None:
            raise ConfigurationError(f"--what-if {model}: no table price for it to be priced at")
        out.append(model)
    return tuple(out)


def price_what_if(runs: Sequence[ModelRun], models: Sequence[str]) -> tuple[WhatIf, ...]:
    """Each model's estimated tokens and dollars over the requests of the run's first model."""
    # The chatgpt backend's offline counter: a function-level import keeps openai-side code
    # (tiktoken) out of a comparison that prices nothing.
    from llmcompare.backends.chatgpt import count_text_tokens, count_tokens

    if not runs:
        return ()
    answers: dict[tuple[str, int], list[str]] = {}
    for run in runs:
        for p in run.requests:
            c = None if p.result is None else p.result.completion
            if c is not None:
                answers.setdefault((p.item_id, p.sample), []).append(c.text)
    out = []
    for model in models:
        price = get_price(model)
        assert price is not None  # checked before the run
        requests = runs[0].requests
        tokens_in = sum(count_tokens(model, p.request) for p in requests)
        tokens_out = 0.0
        for p in requests:
            texts = answers.get((p.item_id, p.sample), [])
            if texts:
                tokens_out += sum(count_text_tokens(model, t) for t in texts) / len(texts)
        out_n = round(tokens_out)
        usd = (tokens_in * price.input + out_n * price.output) / Decimal(1_000_000)
        out.append(
            WhatIf(
                model=model,
                requests=len(requests),
                input_tokens=tokens_in,
                output_tokens=out_n,
                usd=usd,
                price_date=price.as_of,
                price_source=price.source,
            )
        )
    return tuple(out)
