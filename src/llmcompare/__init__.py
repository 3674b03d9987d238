"""llmcompare: compare open models you run yourself with closed ones behind an API.

One :class:`Model` protocol for every backend (sync, async, streaming, batch), backends found as
plugins (built in: ``llama`` on transformers, ``chatgpt`` on the openai SDK, ``fake`` for tests),
and helpers to batch, retry, account for cost and compare.

Example:
    >>> import llmcompare
    >>> model = llmcompare.get_model("fake", reply="Paris.")
    >>> model.generate("What is the capital of France?").text
    'Paris.'

Importing this package is light: torch, transformers and openai load only when a backend needs them.
"""

from typing import TYPE_CHECKING, Any

from llmcompare._version import __version__
from llmcompare.errors import (
    BackendError,
    BudgetExceeded,
    ConfigurationError,
    LLMCompareError,
    PluginLoadError,
    ProviderHTTPError,
    RateLimitError,
    UnknownModelError,
)
from llmcompare.model import AsyncStream, Model, ModelBase, Stream
from llmcompare.plugins import get_model, list_models, list_plugins
from llmcompare.types import (
    Chunk,
    Completion,
    FinishReason,
    Message,
    ModelInfo,
    Prompt,
    Request,
    Result,
    Role,
    Sent,
    Settings,
    Usage,
)

if TYPE_CHECKING:
    from llmcompare.batch import agenerate_many, generate_many
    from llmcompare.comparison import compare
    from llmcompare.cost import Budget, CostTracker, cost_of
    from llmcompare.ratelimit import RateLimiter, with_rate_limit
    from llmcompare.record import Comparison
    from llmcompare.retry import RetryPolicy, with_retry
    from llmcompare.wrapper import ModelWrapper

# The helpers and the runner load on first use: `import llmcompare` stays light for code that
# only calls a model (tenacity, the price table and the comparison machinery wait until needed).
_LAZY = {
    "agenerate_many": "llmcompare.batch",
    "generate_many": "llmcompare.batch",
    "Comparison": "llmcompare.record",
    "compare": "llmcompare.comparison",
    "Budget": "llmcompare.cost",
    "CostTracker": "llmcompare.cost",
    "cost_of": "llmcompare.cost",
    "ModelWrapper": "llmcompare.wrapper",
    "RateLimiter": "llmcompare.ratelimit",
    "with_rate_limit": "llmcompare.ratelimit",
    "RetryPolicy": "llmcompare.retry",
    "with_retry": "llmcompare.retry",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'llmcompare' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


__all__ = [
    "AsyncStream",
    "BackendError",
    "Budget",
    "BudgetExceeded",
    "Chunk",
    "Comparison",
    "Completion",
    "ConfigurationError",
    "CostTracker",
    "FinishReason",
    "LLMCompareError",
    "Message",
    "Model",
    "ModelBase",
    "ModelInfo",
    "ModelWrapper",
    "PluginLoadError",
    "Prompt",
    "ProviderHTTPError",
    "RateLimitError",
    "RateLimiter",
    "Request",
    "Result",
    "RetryPolicy",
    "Role",
    "Sent",
    "Settings",
    "Stream",
    "UnknownModelError",
    "Usage",
    "__version__",
    "agenerate_many",
    "compare",
    "cost_of",
    "generate_many",
    "get_model",
    "list_models",
    "list_plugins",
    "with_rate_limit",
    "with_retry",
]
