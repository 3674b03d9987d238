"""Helpers for testing code that uses llmcompare.

- :func:`isolated_registry`: a fresh model registry for one test, with only the models you
  register (and, if asked, the built-ins), restored afterwards.
- :func:`no_network`: makes every real backend refuse calls to anything but this machine.

The test doubles themselves live in :mod:`llmcompare.backends.fake`
(:class:`~llmcompare.backends.fake.ScriptedModel`,
:class:`~llmcompare.backends.fake.FunctionModel`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from llmcompare import _network
from llmcompare.plugins import Registry, reset_registry

__all__ = ["isolated_registry", "no_network"]


@contextmanager
def isolated_registry(*, builtins: bool = False) -> Iterator[Registry]:
    """Swap in a fresh process-wide registry for the duration of a ``with`` block.

    Example:
        >>> from llmcompare import get_model
        >>> from llmcompare.backends.fake import ScriptedModel
        >>> from llmcompare.testing import isolated_registry
        >>> with isolated_registry() as reg:
        ...     _ = reg.register("mine", lambda variant, options: ScriptedModel(["hi"]))
        ...     get_model("mine").generate("hello").text
        'hi'

    Args:
        builtins: Also load llmcompare's own plugins (fake, llama, chatgpt), none of the
            third-party ones.

    Yields:
        The new registry: call ``register(name, factory, ...)`` on it.
    """
    fresh = Registry.from_entry_points(allow=()) if builtins else Registry()
    previous = reset_registry(fresh)
    try:
        yield fresh
    finally:
        reset_registry(previous)


@contextmanager
def no_network() -> Iterator[None]:
    """Make real backends refuse network calls beyond this machine inside the block.

    Loopback addresses stay allowed, so tests can use local OpenAI-compatible servers. The same
    switch is on for a whole process when ``LLMCOMPARE_NO_NETWORK=1`` is set. A refused call
    raises :class:`~llmcompare.ConfigurationError` before anything is sent.
    """
    _network.block(+1)
    try:
        yield
    finally:
        _network.block(-1)
