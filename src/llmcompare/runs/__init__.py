"""Runs that survive, resume and never pay twice: run folders, the response cache, the request key.

:class:`RunFolder` is a comparison's folder, written as the run goes and resumed from (see
:func:`llmcompare.compare`'s ``out=``).

:func:`request_key` is the one identity of a request: a SHA-256 over the model's identity
(:func:`model_identity`), the request as sent and the sample index. :class:`ResponseCache` keeps
successful answers under that key in one SQLite file that every run and process shares; a run
folder names each answer's request by it, and the Batch API path uses it as ``custom_id``.

Example:
    >>> import pathlib, tempfile
    >>> from llmcompare import Request, get_model
    >>> from llmcompare.runs import ResponseCache, request_key
    >>> model = get_model("fake", reply="Paris.")
    >>> request = Request.of("What is the capital of France?")
    >>> # A real backend's model_identity(model); the fake backend is never cached itself.
    >>> key = request_key({"id": "chatgpt:gpt-4o-mini"}, request)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     with ResponseCache(pathlib.Path(tmp) / "responses.sqlite3") as cache:
    ...         if cache.get(key) is None:  # a miss: ask the model, keep its answer
    ...             stored = cache.put(key, model.generate(request), model=model.id)
    ...         cache.get(key).text
    'Paris.'
"""

from llmcompare.runs._cache import (
    CACHE_DIR_ENV,
    CACHE_FILE,
    CacheInfo,
    ResponseCache,
    default_cache_path,
    model_identity,
    request_key,
)
from llmcompare.runs._charges import add_charge, read_charge, sum_charges
from llmcompare.runs._folder import ANSWERS_FILE, RUN_FILE, Answer, RunFolder
from llmcompare.runs._lock import exclusive
from llmcompare.runs._whole import write_whole

__all__ = [
    "ANSWERS_FILE",
    "CACHE_DIR_ENV",
    "CACHE_FILE",
    "RUN_FILE",
    "Answer",
    "CacheInfo",
    "ResponseCache",
    "RunFolder",
    "add_charge",
    "default_cache_path",
    "exclusive",
    "model_identity",
    "read_charge",
    "request_key",
    "sum_charges",
    "write_whole",
]
