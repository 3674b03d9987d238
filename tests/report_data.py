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
