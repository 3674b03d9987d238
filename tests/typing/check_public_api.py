"""Type-checked, never run: the public API as users write it must satisfy mypy --strict and pyright.

``assert_type`` pins what each call returns, so a signature that widens to ``Any`` (a lost
annotation, an untyped decorator, a lazy name type checkers cannot see) fails the check. Only
public import paths appear here: they are the ones users write.
"""

# pyright: strict

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pandas as pd
from typing_extensions import assert_type

import llmcompare
from llmcompare import (
    Budget,
    Chunk,
    Comparison,
    Completion,
    CostTracker,
    Message,
    Model,
    ModelBase,
    ModelInfo,
    ModelWrapper,
    RateLimiter,
    Request,
    Result,
    RetryPolicy,
    Usage,
    agenerate_many,
    compare,
    generate_many,
    get_model,
    with_rate_limit,
    with_retry,
)
from llmcompare.backends.fake import FunctionModel, ScriptedModel
from llmcompare.config import CompareConfig, load_config
from llmcompare.cost import Cost, Totals, cost_of
from llmcompare.decision import BreakEven
from llmcompare.plugins import Register, hookimpl
from llmcompare.record import ModelSummary, Pairwise, Row
from llmcompare.report import write_report
from llmcompare.scorers import Contains
from llmcompare.testing import isolated_registry, no_network


class Echo(ModelBase):
    """A custom backend: one method is enough."""

    def __init__(self) -> None:
        super().__init__(ModelInfo(provider="echo", name="v1", open_weights=True))

    def _generate(self, request: Request) -> Completion:
        return Completion(
            text=request.messages[-1].content, finish_reason="stop", usage=Usage(), model=self.id
        )

    def _stream(self, request: Request) -> Iterator[Chunk]:
        yield Chunk(text=request.messages[-1].content, finish_reason="stop", usage=Usage())


@hookimpl
def register_models(register: Register) -> None:
    register("echo", lambda variant, options: Echo(), aliases=["e"], description="echo")


def use(model: Model) -> str:
    completion: Completion = model.generate("hi", max_tokens=5, temperature=0.0, stop=["\n"])
    completion = model.generate([Message.system("s"), Message.user("u")], seed=1)
    completion = model.generate(Request.of("x"), top_p=0.5)
    results: list[Result] = model.generate_batch(["a", "b"], max_tokens=3)
    usage: Usage = sum((r.unwrap().usage for r in results if r.ok), Usage())
    with model.stream("hi") as stream:
        text = "".join(chunk.text for chunk in stream)
    assert stream.completion.ttft_s is not None
    return completion.text + text + str(usage.total_tokens)


async def use_async(model: Model) -> str:
    completion = await model.agenerate("hi")
    async with model.astream("hi") as stream:
        async for chunk in stream:
            print(chunk.text)
    return completion.text + stream.completion.text


def main() -> None:
    use(Echo())
    use(ScriptedModel(["a"], default="b"))
    use(FunctionModel(lambda request: "x"))
    asyncio.run(use_async(llmcompare.get_model("fake")))
    with isolated_registry() as reg, no_network():
        reg.register("echo", lambda variant, options: Echo())
        use(llmcompare.get_model("echo"))


# -- the harness: wrappers, many requests, cost, compare, the record, the report -----------------


class Counting(ModelWrapper[int]):
    """A wrapper of one's own: the ticket type flows from ``_before`` to the other hooks."""

    def __init__(self, inner: Model) -> None:
        super().__init__(inner)
        self.sent = 0

    def _before(self, request: Request) -> int:
        self.sent += 1
        return self.sent

    def _after(self, request: Request, completion: Completion, ticket: int) -> Completion:
        assert_type(ticket, int)
        return completion


def wrappers(model: Model) -> Model:
    assert_type(get_model("fake", reply="Paris."), Model)
    assert_type(llmcompare.get_model("fake"), Model)
    retried = with_retry(model, RetryPolicy(attempts=3))
    assert_type(retried, Model)
    limited = with_rate_limit(retried, rpm=60, tpm=10_000)
    assert_type(limited, Model)
    assert_type(with_rate_limit(model, limiter=RateLimiter(rpm=60)), Model)
    counting = Counting(limited)
    assert_type(counting.inner, Model)
    assert_type(counting.generate("hi"), Completion)
    return counting


def many(model: Model) -> list[Result]:
    results = generate_many(model, ["a", Request.of("b")], concurrency=4, max_tokens=8)
    assert_type(results, list[Result])
    assert_type(results[0].unwrap(), Completion)
    assert_type(asyncio.run(agenerate_many(model, ["a"], concurrency=2)), list[Result])
    return results


def cost(model: Model) -> Decimal:
    tracker = CostTracker(budget=Budget(max_usd=Decimal("0.50"), max_requests=100))
    tracked = tracker.wrap(model)
    assert_type(tracked, Model)
    completion = tracked.generate("hi")
    assert_type(cost_of(completion), Cost)
    assert_type(tracker.total, Totals)
    assert_type(tracker.by_model, dict[str, Totals])
    assert_type(tracker.remaining_usd, Decimal | None)
    assert_type(tracker.summary(), str)
    return tracker.spent_usd


def harness(tmp: Path) -> Comparison:
    result = compare(
        {"local": "fake", "api": get_model("fake", reply="42")},
        ["What is 6 x 7?", {"id": "q", "prompt": "Say yes", "reference": "yes"}],
        scorers=[Contains()],
        samples=2,
        budget=Budget(max_requests=10),
        progress=False,
        max_tokens=16,
        temperature=0.0,
    )
    assert_type(result, Comparison)
    assert_type(llmcompare.compare(["fake"], None), Comparison)
    assert_type(result.summaries, tuple[ModelSummary, ...])
    assert_type(result.row("q", "local"), Row)
    assert_type(result.difference("local", "api"), Pairwise)
    assert_type(result.break_even("local", "api"), BreakEven)
    assert_type(result.failed, int)
    assert_type(result.to_pandas(), pd.DataFrame)
    assert_type(result.rescore([Contains()], replace=True), Comparison)
    assert_type(result.save(tmp / "comparison.json"), Path)
    assert_type(Comparison.load(tmp / "comparison.json"), Comparison)
    assert_type(write_report(result, tmp, formats=("json", "html")), list[Path])
    assert_type(load_config(tmp / "compare.toml"), CompareConfig)
    return result
