"""`import llmcompare` stays light."""

import subprocess
import sys

HEAVY = ("torch", "transformers", "openai", "tiktoken", "httpx2")


def test_import_loads_no_heavy_dependency() -> None:
    code = (
        "import sys, llmcompare\n"
        "llmcompare.list_models()\n"  # discovering plugins must stay light too
        f"print([m for m in sys.modules if m.split('.')[0] in {HEAVY!r}])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "[]", out.stdout


def test_public_names_are_documented() -> None:
    import inspect

    import llmcompare

    for name in llmcompare.__all__:
        if name.startswith("__"):
            continue
        obj = getattr(llmcompare, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert inspect.getdoc(obj), f"{name} has no docstring"
