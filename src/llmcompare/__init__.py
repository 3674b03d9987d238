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

The layers of the package; a module imports only from its own layer and the layers above it
(``tests/test_layers.py`` reads this list and holds every import to it):

0. types, errors, schema, _version: values and the exception tree, no heavy imports
1. model, wrapper: the Model protocol, ModelBase and the one wrapper base
2. retry, ratelimit, cost, energy, stats, runs: helpers, each usable alone
3. plugins, backends: the registry and the built-in backends
4. batch, executors: running many requests
5. config, prompts, sources, scorers, judges, sandbox, humaneval: what a comparison is made of
6. comparison, record, decision, report: run, record, decide, render
7. cli, testing, __main__: the command line and the test helpers for users
"""

from typing import TYPE_CHECKING, Any

# The public names are the `name as name` imports below (the form type checkers read as a
# re-export), each written once: __all__ and the lazy table are read from these lines.
from llmcompare._version import __version__ as __version__
from llmcompare.errors import BackendError as BackendError
from llmcompare.errors import BudgetExceeded as BudgetExceeded
from llmcompare.errors import ConfigurationError as ConfigurationError
from llmcompare.errors import LLMCompareError as LLMCompareError
from llmcompare.errors import PluginLoadError as PluginLoadError
from llmcompare.errors import ProviderHTTPError as ProviderHTTPError
from llmcompare.errors import RateLimitError as RateLimitError
from llmcompare.errors import UnknownModelError as UnknownModelError
from llmcompare.model import AsyncStream as AsyncStream
from llmcompare.model import Model as Model
from llmcompare.model import ModelBase as ModelBase
from llmcompare.model import Stream as Stream
from llmcompare.plugins import get_model as get_model
from llmcompare.plugins import list_models as list_models
from llmcompare.plugins import list_plugins as list_plugins
from llmcompare.types import Chunk as Chunk
from llmcompare.types import Completion as Completion
from llmcompare.types import FinishReason as FinishReason
from llmcompare.types import Message as Message
from llmcompare.types import ModelInfo as ModelInfo
from llmcompare.types import Prompt as Prompt
from llmcompare.types import Request as Request
from llmcompare.types import Result as Result
from llmcompare.types import Role as Role
from llmcompare.types import Sent as Sent
from llmcompare.types import Settings as Settings
from llmcompare.types import Usage as Usage

if TYPE_CHECKING:
    # These load on first use (__getattr__): `import llmcompare` stays light for code that only
    # calls a model (tenacity, the price table and the comparison machinery wait until needed).
    from llmcompare.batch import agenerate_many as agenerate_many
    from llmcompare.batch import generate_many as generate_many
    from llmcompare.comparison import compare as compare
    from llmcompare.cost import Budget as Budget
    from llmcompare.cost import CostTracker as CostTracker
    from llmcompare.cost import cost_of as cost_of
    from llmcompare.ratelimit import RateLimiter as RateLimiter
    from llmcompare.ratelimit import with_rate_limit as with_rate_limit
    from llmcompare.record import Comparison as Comparison
    from llmcompare.retry import RetryPolicy as RetryPolicy
    from llmcompare.retry import with_retry as with_retry
    from llmcompare.wrapper import ModelWrapper as ModelWrapper


def _read_imports() -> dict[str, str]:
    """The lazy table (name -> module), read once from the imports above; sets ``__all__`` too."""
    table: dict[str, str] | None = globals().get("_LAZY")
    if table is not None:
        return table
    # Read on first use, not at import: parsing costs a few milliseconds that `import llmcompare`
    # should not pay. linecache asks the module's loader, so a zipped install works too.
    import ast
    import linecache

    source = "".join(linecache.getlines(__file__, globals()))
    if not source:
        raise ImportError(f"llmcompare's lazy names need its source, which is missing: {__file__}")
    table, eager = {}, []
    for node in ast.parse(source).body:
        lazy = isinstance(node, ast.If)  # the `if TYPE_CHECKING:` block
        for statement in node.body if isinstance(node, ast.If) else [node]:
            if not isinstance(statement, ast.ImportFrom):
                continue
            # Only `name as name` re-exports are public; `from typing import ...` is not.
            for alias in statement.names:
                if alias.asname is None:
                    continue
                if lazy:
                    table[alias.asname] = str(statement.module)
                else:
                    eager.append(alias.asname)
    # Plain string order is ruff's RUF022 order for these names: classes, then the rest.
    globals().update(_LAZY=table, __all__=sorted([*eager, *table]))
    return table


def __getattr__(name: str) -> Any:
    if name.startswith("__") and name != "__all__":
        # Probes such as __wrapped__ or __path__ never name a lazy attribute.
        raise AttributeError(f"module 'llmcompare' has no attribute {name!r}")
    table = _read_imports()
    if name in ("_LAZY", "__all__"):
        return globals()[name]
    module = table.get(name)
    if module is None:
        raise AttributeError(f"module 'llmcompare' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_read_imports()})
