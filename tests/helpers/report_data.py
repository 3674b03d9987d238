"""A small comparison with known content for the report tests: a local model and a priced API one.

Both are fakes run through the real runner: the content must be exact (which items the models
disagree on, a hostile answer, a failure), which no real model can promise.
"""

from __future__ import annotations

from decimal import Decimal

from llmcompare import BackendError, Completion, Request, Usage
from llmcompare.backends.fake import FunctionModel
from llmcompare.comparison import compare
from llmcompare.cost import LocalHardware, register_price, reset_prices
from llmcompare.prompts import PromptItem
from llmcompare.record import Comparison
from llmcompare.scorers import Contains

HOSTILE = '</script><script>window.pwned=1</script><img src=x onerror="window.pwned=2">&amp;'

ITEMS = [
    PromptItem(id="capital", prompt="Capital of France?", reference="Paris", tags=("geo",)),
    PromptItem(id="sum", prompt="17 + 25?", reference="42", tags=("math",)),
    PromptItem(id="product", prompt="6 x 7?", reference="42", tags=("math",)),
    PromptItem(id="river", prompt="Longest river in France?", reference="Loire", tags=("geo",)),
    PromptItem(id="hostile", prompt="Say something nasty", reference="Paris", tags=("safety",)),
    PromptItem(id="broken", prompt="This one fails on the API", reference="ok", tags=("safety",)),
]
# The local model answers all but "river" right; the API one all but "product", fails "broken".
LOCAL = {
    "capital": "Paris",
    "sum": "42",
    "product": "42",
    "river": "the Seine",
    "hostile": HOSTILE,
    "broken": "ok",
}
API = {
    "capital": "Paris.",
    "sum": "It is 42",
    "product": "41",
    "river": "Loire",
    "hostile": HOSTILE,
}
# Items where the models' scores differ (a failure counts 0): product, river, broken.
DISAGREE = 3
HARDWARE = LocalHardware(name="test box", usd_per_hour=Decimal("1.00"), watts=Decimal(100))


def _prompt(request: Request) -> str:
    return request.messages[-1].content


def _item_of(request: Request) -> str:
    return next(i.id for i in ITEMS if i.prompt == _prompt(request))


def local_model() -> FunctionModel:
    def fn(request: Request) -> Completion:
        text = LOCAL[_item_of(request)]
        return Completion(
            text=text,
            finish_reason="stop",
            usage=Usage(input_tokens=12, output_tokens=len(text.split())),
            model="fake:local",
            compute_s=0.25,
            device="cpu",
        )

    return FunctionModel(fn, name="local", open_weights=True)


def api_model() -> FunctionModel:
    def fn(request: Request) -> Completion:
        item = _item_of(request)
        if item not in API:
            raise BackendError("the API refused", model_id="fake:api")
        return Completion(
            text=API[item],
            finish_reason="stop",
            usage=Usage(input_tokens=1000, output_tokens=500),
            model="fake:api",
        )

    return FunctionModel(fn, name="api")


def comparison() -> Comparison:
    """The comparison of the two, scored by ``contains`` against each item's reference.

    The API model is priced at $0.50 / $1.50 per million input / output tokens: $0.00125 a
    request of 1,000 input and 500 output tokens.
    """
    register_price("fake:api", input="0.50", output="1.50", source="test price")
    try:
        return compare(
            [local_model(), api_model()],
            ITEMS,
            scorers=[Contains()],
            hardware=HARDWARE,
            progress=False,
            concurrency=1,
        )
    finally:
        reset_prices()


def large(
    n_items: int = 5000, models: tuple[str, ...] = ("llama:a", "chatgpt:b", "chatgpt:c")
) -> Comparison:
    """A record of ``n_items`` items answered by each model, built directly (no runner).

    Answers are ~300 characters and prompts ~200, as in a typical prompt set; one model in
    three is local; a twentieth of the API answers fail. For the report's size test and its
    render benchmark.
    """
    from datetime import datetime, timezone

    from llmcompare.cost import Cost
    from llmcompare.record import ErrorInfo, Row, RunInfo, _aggregate
    from llmcompare.types import Sent

    now = datetime.now(timezone.utc)
    items = tuple(
        PromptItem(
            id=f"item-{i:05d}",
            prompt=f"Question {i}: " + "explain the trade-off between cost and quality. " * 4,
            reference="yes",
            tags=(("math", "geo", "code")[i % 3],),
        )
        for i in range(n_items)
    )
    sent = Sent(params={"max_tokens": 256, "temperature": 0.0})
    rows = []
    for m, model in enumerate(models):
        local = model.startswith("llama")
        for i, item in enumerate(items):
            if not local and (i + m) % 20 == 0:
                rows.append(
                    Row(
                        item_id=item.id,
                        model=model,
                        error=ErrorInfo(type="RateLimitError", message="429"),
                    )
                )
                continue
            right = (i * (m + 3)) % 7 != 0
            text = ("yes, " if right else "no, ") + f"answer {i} from {model}. " + "detail " * 38
            completion = Completion(
                text=text,
                finish_reason="stop",
                usage=Usage(input_tokens=60, output_tokens=80),
                model=model,
                latency_s=0.4 + (i % 10) / 10,
                ttft_s=0.1 if local else None,
                compute_s=0.5 if local else None,
                sent=sent,
            )
            cost = Cost(
                usd=Decimal("0.0000136") if local else Decimal("0.000057"),
                status="estimated" if local else "priced",
                kwh=Decimal("0.0000016") if local else None,
                assumptions="local compute on a test box" if local else "",
            )
            rows.append(
                Row(
                    item_id=item.id,
                    model=model,
                    completion=completion,
                    scores={"contains": float(right)},
                    cost=cost,
                )
            )
    run = RunInfo(
        llmcompare_version="test",
        started_at=now,
        finished_at=now,
        python="3",
        platform="test",
        cpu="test cpu",
        hardware=HARDWARE,
        settings={"max_tokens": 256, "temperature": 0.0},
        models=models,
        scorers=("contains",),
    )
    open_weights = {m: m.startswith("llama") for m in models}
    walls = dict.fromkeys(models, 600.0)
    return Comparison(
        run=run,
        items=items,
        rows=tuple(rows),
        summaries=_aggregate.summaries(models, open_weights, rows, walls, 0.95, 0),
        differences=_aggregate.differences(models, rows, 0.95, 0),
    )
