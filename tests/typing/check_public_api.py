"""Type-checked, never run: the public API as users write it must satisfy mypy --strict."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import llmcompare
from llmcompare import (
    Chunk,
    Completion,
    Message,
    Model,
    ModelBase,
    ModelInfo,
    Request,
    Result,
    Usage,
)
from llmcompare.backends.fake import FunctionModel, ScriptedModel
from llmcompare.plugins import Register, hookimpl
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
