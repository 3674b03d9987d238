"""Few-row matrix products on a CPU: computed either way, measured once per machine and kept.

The real model's use of them (its greedy answers against transformers' own products) is in
test_llama.py; here, small ``nn.Linear`` stacks, against float64 products computed by hand.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")

from llmcompare.backends.llama._products import (  # noqa: E402 - after the import check
    CANDIDATE_ROWS,
    FewRowsLinear,
    choose,
    few_rows,
    install,
)

FILE = Path("llama") / "few-row-products.json"


def _stack() -> Any:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(48, 96, bias=False), torch.nn.Linear(96, 40), torch.nn.Linear(40, 48)
    )


@pytest.mark.parametrize("rows", [1, 2, 3, 5, 9])
def test_every_row_count_gives_the_product_whichever_way_it_is_computed(rows: int) -> None:
    stack = _stack()
    weights = [m.weight.detach().clone() for m in stack]
    assert install(stack, frozenset({1, 2, 3})) == 3
    assert all(type(m) is FewRowsLinear for m in stack)
    x = torch.randn(rows, 1, 48)
    with torch.inference_mode():
        got = stack(x)
    # By hand, in float64: the three products, the two biases.
    want = x.double()
    for m, w in zip(stack, weights, strict=True):
        want = want @ w.double().T + (0 if m.bias is None else m.bias.double())
    assert got.shape == (rows, 1, 48)
    assert torch.allclose(got.double(), want, rtol=1e-4, atol=1e-5)


def test_the_chosen_row_counts_take_the_transposed_way_and_the_others_the_plain_one() -> None:
    stack = _stack()
    first = stack[1]
    install(stack, frozenset({2}))
    w, b = first.weight.detach(), first.bias.detach()
    with torch.inference_mode():
        for rows in (1, 2, 3):
            x = torch.randn(rows, 96)
            transposed = (w @ x.T).T + b
            plain = torch.nn.functional.linear(x, w, b)
            # Bit for bit: the way taken is the one chosen for this row count.
            assert torch.equal(first(x), transposed if rows == 2 else plain)


def test_rows_are_chosen_where_the_transposed_way_takes_at_most_90_percent() -> None:
    plain = {1: 1.0, 2: 2.0, 3: 3.0, 4: 4.0}
    transposed = {1: 0.5, 2: 1.8, 3: 2.71, 4: 5.0, 9: 0.1}
    # 2: exactly 90%; 3: 90.3%; 9 was not measured the plain way.
    assert choose(plain, transposed) == frozenset({1, 2})


def test_the_choice_is_measured_once_and_read_back_by_every_later_load(tmp_path: Path) -> None:
    first = few_rows(_stack(), tmp_path)
    assert first <= set(CANDIDATE_ROWS)
    record = json.loads((tmp_path / FILE).read_text())
    (key, rows), *more = record.items()
    assert not more
    assert rows == sorted(first)
    assert f"torch {torch.__version__} | {torch.get_num_threads()} threads | float32" in key
    # A later load takes what the file says (here edited by hand), without measuring again.
    record[key] = [3, 7]
    (tmp_path / FILE).write_text(json.dumps(record))
    assert few_rows(_stack(), tmp_path) == frozenset({3, 7})
    # Other shapes are another entry; the first one is kept.
    few_rows(torch.nn.Sequential(torch.nn.Linear(8, 8)), tmp_path)
    kept = json.loads((tmp_path / FILE).read_text())
    assert len(kept) == 2
    assert kept[key] == [3, 7]


def test_a_damaged_record_is_measured_again_and_rewritten(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / FILE).parent.mkdir(parents=True)
    (tmp_path / FILE).write_text("{not json")
    with caplog.at_level(logging.WARNING, logger="llmcompare.llama"):
        rows = few_rows(_stack(), tmp_path)
    assert "unreadable" in caplog.text
    assert sorted(rows) == next(iter(json.loads((tmp_path / FILE).read_text()).values()))


def test_an_unwritable_cache_only_means_measuring_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")  # a file where the cache directory should be
    with caplog.at_level(logging.WARNING, logger="llmcompare.llama"):
        assert few_rows(_stack(), blocker) <= set(CANDIDATE_ROWS)
    assert "could not save" in caplog.text


def test_a_model_without_plain_linear_layers_is_left_alone(tmp_path: Path) -> None:
    # A subclass (a quantized layer, say) computes its product its own way.
    quantized = type("Quantized", (torch.nn.Linear,), {})
    model = torch.nn.Sequential(quantized(4, 4))
    assert few_rows(model, tmp_path) == frozenset()
    assert install(model, frozenset({1})) == 0
    assert type(model[0]) is quantized
    assert not (tmp_path / FILE).exists()


def test_measuring_leaves_the_processs_random_state_as_it_was(tmp_path: Path) -> None:
    stack = _stack()
    torch.manual_seed(5)
    few_rows(stack, tmp_path)
    after = torch.rand(4)
    torch.manual_seed(5)
    assert torch.equal(after, torch.rand(4))


def test_a_process_measuring_is_waited_for_and_its_choice_taken(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from llmcompare.runs import exclusive

    (tmp_path / FILE).parent.mkdir(parents=True)
    got: list[frozenset[int]] = []
    with caplog.at_level(logging.INFO, logger="llmcompare.llama"):
        # This test plays the other process: it holds the lock while "measuring".
        with exclusive(tmp_path / FILE.with_suffix(".lock"), 0):
            waiter = threading.Thread(target=lambda: got.append(few_rows(_stack(), tmp_path)))
            waiter.start()
            waiter.join(0.5)  # it cannot finish while the lock is held
            assert waiter.is_alive()
            few_rows(_stack(), tmp_path / "elsewhere")  # for the key of these shapes here
            (key,) = json.loads((tmp_path / "elsewhere" / FILE).read_text())
            (tmp_path / FILE).write_text(json.dumps({key: [3, 7]}))
        waiter.join()
    assert got == [frozenset({3, 7})]
    assert caplog.text.count("measured") == 1  # elsewhere, by this test


def test_in_bfloat16_a_bias_is_rounded_once_as_nn_linear_rounds_it() -> None:
    torch.manual_seed(0)
    layer = torch.nn.Linear(576, 192).to(torch.bfloat16)
    with torch.no_grad():  # values of the size whose rounding shows
        layer.weight.copy_(torch.randn(192, 576))
        layer.bias.copy_(torch.randn(192))
    plain = torch.nn.Linear(576, 192).to(torch.bfloat16)
    plain.load_state_dict(layer.state_dict())
    install(torch.nn.Sequential(layer), frozenset(range(1, 9)))
    worst = {"transposed": 0.0, "plain": 0.0}
    with torch.inference_mode():
        for rows in range(1, 9):
            x = torch.randn(rows, 576).to(torch.bfloat16)
            exact = x.double() @ layer.weight.double().T + layer.bias.double()
            for name, m in (("transposed", layer), ("plain", plain)):
                error = (m(x).double() - exact).abs().max().item()
                worst[name] = max(worst[name], error)
    # Rounded to bfloat16 before the bias was added, the error was 1.65x nn.Linear's.
    assert worst["transposed"] <= 1.1 * worst["plain"]
