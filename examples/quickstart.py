"""Quickstart: build a model by name, generate, stream, and batch.

Run: python examples/quickstart.py
"""

import llmcompare

model = llmcompare.get_model("fake", reply="The capital of France is Paris.")

completion = model.generate("What is the capital of France?", max_tokens=32)
print(f"{model.id}: {completion.text!r}")
print(f"  finish={completion.finish_reason} usage={completion.usage}")

with model.stream("And of Italy?") as stream:
    for chunk in stream:
        print(chunk.text, end="", flush=True)
print(f"\n  streamed usage: {stream.completion.usage}")

for result in model.generate_batch(["one", "two", "three"]):
    print(f"  batch[{result.index}] ok={result.ok} text={result.unwrap().text!r}")
