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
    Settings,
    Usage,
)

__all__ = [
    "AsyncStream",
    "BackendError",
    "BudgetExceeded",
    "Chunk",
    "Completion",
    "ConfigurationError",
    "FinishReason",
    "LLMCompareError",
    "Message",
    "Model",
    "ModelBase",
    "ModelInfo",
    "PluginLoadError",
    "Prompt",
    "ProviderHTTPError",
    "RateLimitError",
    "Request",
    "Result",
    "Role",
    "Settings",
    "Stream",
    "UnknownModelError",
    "Usage",
    "__version__",
    "get_model",
    "list_models",
    "list_plugins",
]
