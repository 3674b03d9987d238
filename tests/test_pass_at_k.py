"""pass@k in a comparison's summaries against the Codex paper's formula, computed here."""

from __future__ import annotations

import itertools
import math

import pytest

from llmcompare import compare
from llmcompare.backends.fake import FunctionModel
from llmcompare.errors import ConfigurationError
from llmcompare.prompts import PromptItem
from llmcompare.report import summary_table_rows
from llmcompare.types import Completion, Request

# Item i's answer passes on samples 0 .. PASSES[i] - 1 (sample s is sent with seed s).
PASSES = {"a": 0, "b": 1, "c": 2, "d": 5, "e": 3}
N = 5


class PassFail:
    """A pass/fail code scorer: the answer says PASS or FAIL."""

    name = "unit"
    pass_at_k = True

    def __call__(self, completion: Completion, item: PromptItem) -> bool:
        return completion.text == "PASS"


def answer(request: Request) -> str:
    item = request.messages[-1].content
    assert request.seed is not None
    return "PASS" if request.seed < PASSES[item] else "FAIL"


def codex(n: int, c: int, k: int) -> float:
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def by_enumeration(n: int, c: int, k: int) -> float:
    # The probability that k samples drawn from n, c of them correct, hold a correct one.
    draws = list(itertools.combinations(range(n), k))
    return sum(any(i < c for i in d) for d in draws) / len(draws)


def test_pass_at_k_is_the_unbiased_estimator_averaged_over_items() -> None:
    items = [PromptItem(id=i, prompt=i) for i in PASSES]
    model = FunctionModel(answer, name="coder")
    result = compare(
        [model],
        items,
        scorers=[PassFail()],
        samples=N,
        pass_at=(1, 2, 5),
        temperature=0.8,
        progress=False,
        cache=False,
    )
    assert result.run.pass_at == (1, 2, 5)
    found = {p.k: p for p in result.summaries[0].pass_at_k}
    assert sorted(found) == [1, 2, 5]
    for k in (1, 2, 5):
        expected = sum(codex(N, c, k) for c in PASSES.values()) / len(PASSES)
        assert found[k].value == pytest.approx(expected)
        assert found[k].value == pytest.approx(
            sum(by_enumeration(N, c, k) for c in PASSES.values()) / len(PASSES)
        )
        low, high = found[k].ci
        assert low <= found[k].value <= high
        assert found[k].n_items == 5
        assert found[k].samples == N
    # Hand-computed: pass@2 of item b (n=5, c=1) is 1 - C(4,2)/C(5,2) = 1 - 6/10.
    assert codex(5, 1, 2) == pytest.approx(0.4)
    # pass@1 is the mean score.
    assert found[1].value == pytest.approx(result.summaries[0].mean_scores["unit"])
    labels = [r[0] for r in summary_table_rows(result)]
    assert "  unit pass@5 [95% CI]" in labels


def test_pass_at_k_beyond_the_samples_is_refused_before_sending() -> None:
    sent: list[Request] = []
    model = FunctionModel(lambda r: sent.append(r) or "PASS", name="coder")
    with pytest.raises(ConfigurationError, match="pass_at"):
        compare([model], ["x"], scorers=[PassFail()], samples=2, pass_at=(5,), progress=False)
    assert not sent


def test_by_default_pass_at_1_and_pass_at_samples() -> None:
    items = [PromptItem(id=i, prompt=i) for i in PASSES]
    result = compare(
        [FunctionModel(answer, name="coder")],
        items,
        scorers=[PassFail()],
        samples=N,
        temperature=0.8,
        progress=False,
        cache=False,
    )
    assert [p.k for p in result.summaries[0].pass_at_k] == [1, N]


def test_pass_at_k_above_1_at_temperature_0_is_refused_before_sending() -> None:
    # Greedy samples are one answer repeated: pass@5 would be pass@1 under another name.
    sent: list[Request] = []
    model = FunctionModel(lambda r: sent.append(r) or "PASS", name="coder")
    with pytest.raises(ConfigurationError, match="set a temperature") as caught:
        compare([model], ["x"], scorers=[PassFail()], samples=5, pass_at=(1, 5), progress=False)
    assert "\n" not in str(caught.value)
    assert not sent
    # A model given a temperature of its own samples; only the greedy one is named.
    with pytest.raises(ConfigurationError, match=r"\(greedy\)"):
        compare(
            {"greedy": model, "warm": FunctionModel(lambda r: "PASS")},
            ["x"],
            scorers=[PassFail()],
            samples=5,
            pass_at=(5,),
            overrides={"warm": {"temperature": 0.8}},
            progress=False,
        )
    assert not sent
    # By default at temperature 0, only pass@1 is reported.
    items = [PromptItem(id=i, prompt=i) for i in PASSES]
    result = compare(
        [FunctionModel(answer, name="coder")],
        items,
        scorers=[PassFail()],
        samples=N,
        progress=False,
        cache=False,
    )
    assert [p.k for p in result.summaries[0].pass_at_k] == [1]
