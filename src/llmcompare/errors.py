"""The exception tree of llmcompare.

Every error the library raises on purpose derives from :class:`LLMCompareError`, so callers
can catch one class. Backend failures carry the model id and say whether retrying could help; the
SDK's own exception stays reachable as ``__cause__``. No message or repr ever holds a secret:
header values that carry credentials are dropped, and :func:`redact` masks key-shaped strings,
credentials written into URLs and every secret a backend registered (:func:`register_secret`).
"""

from __future__ import annotations

import os
import re
import sys
import threading
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from types import FrameType

__all__ = [
    "BackendError",
    "BudgetExceeded",
    "ConfigurationError",
    "LLMCompareError",
    "PluginLoadError",
    "ProviderHTTPError",
    "RateLimitError",
    "UnknownModelError",
    "redact",
    "register_secret",
    "user_stacklevel",
]

# Header names whose values are credentials or session state; they never leave an error object.
_SECRET_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "api-key",
        "x-api-key",
        "openai-api-key",
        "cookie",
        "set-cookie",
        "openai-organization",
        "openai-project",
    }
)

# Key-shaped tokens: OpenAI-style "sk-..." keys, bearer tokens and HTTP basic credentials.
# Masking them in every message is cheap insurance against a provider echoing them back.
_SECRET_PATTERN = re.compile(
    r"(sk-[A-Za-z0-9_\-]{6,}|Bearer\s+[A-Za-z0-9_\-\.=]{6,}|Basic\s+[A-Za-z0-9+/=]{6,})"
)
# "user:password@" written into a URL ("http://alice:s3cret@host/v1").
_URL_USERINFO = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.\-]*://)[^/\s@]+@")

_MIN_SECRET = 8
"""Registered values shorter than this are not masked: they would mask ordinary words."""

_registered: tuple[str, ...] = ()
_registered_lock = threading.Lock()


def register_secret(value: str) -> None:
    """Mask ``value`` in every message :func:`redact` handles from now on, in this process.

    For credentials with no recognisable shape, which only the code holding them knows to be
    secret: a header value (Azure's ``api-key``), a password or query value written into a
    URL. Backends register theirs when they are built; llmcompare's errors, and the log records
    of the SDKs they use, then never show them. Values shorter than 8 characters are ignored.

    Args:
        value: The secret.
    """
    global _registered
    if len(value) < _MIN_SECRET:
        return
    with _registered_lock:
        if value not in _registered:
            # Longest first: a secret that contains another is masked whole.
            _registered = tuple(sorted((*_registered, value), key=len, reverse=True))


def redact(text: str) -> str:
    """Mask anything in ``text`` that looks like a credential, or was registered as one.

    Args:
        text: Any message that may have come from a provider or the user's configuration.

    Returns:
        The text with each key-shaped token, basic credential, ``user:password@`` of a URL and
        registered secret (see :func:`register_secret`) replaced by ``"[REDACTED]"``.
    """
    for secret in _registered:
        if secret in text:
            text = text.replace(secret, "[REDACTED]")
    text = _SECRET_PATTERN.sub("[REDACTED]", text)
    return _URL_USERINFO.sub(r"\1[REDACTED]@", text)


_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep
_STDLIB = os.path.dirname(os.path.abspath(os.__file__)) + os.sep
# The machinery between a user's call and the code that warns: an event loop, a thread pool.
_PLUMBING = tuple(_STDLIB + name for name in ("asyncio" + os.sep, "concurrent" + os.sep))
_PLUMBING += (_STDLIB + "threading.py",)


def user_stacklevel() -> int:
    """The ``stacklevel`` for :func:`warnings.warn` that points at the user's own call.

    Frames of llmcompare and of the machinery it runs requests on (asyncio's event loop,
    thread pools) are skipped, so a warning shows the caller's line (``compare(...)`` in the
    user's script), not ``cost/_tracker.py`` or ``asyncio/events.py``. Where no frame is the
    user's (a worker thread), the warning is attributed to ``sys``. Plugins may use it too::

        warnings.warn("...", MyWarning, stacklevel=user_stacklevel())

    Returns:
        The level, counted from the function that calls this one (1: that function).
    """
    frame: FrameType | None = sys._getframe(1)
    level = 1
    while frame is not None and frame.f_code.co_filename.startswith((_PACKAGE, *_PLUMBING)):
        frame = frame.f_back
        level += 1
    return level


class LLMCompareError(Exception):
    """Base class of every error llmcompare raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(redact(message))

    @property
    def message(self) -> str:
        """The human-readable message (already redacted)."""
        return str(self.args[0]) if self.args else ""


class ConfigurationError(LLMCompareError):
    """Something the user must set up is missing or wrong; the message says how to fix it."""


class UnknownModelError(LLMCompareError, LookupError):
    """No registered model matches the requested name.

    Attributes:
        name: The name that was asked for.
        suggestions: Registered names close to it, best first.
    """

    def __init__(self, name: str, known: Iterable[str]) -> None:
        import difflib

        known_list = sorted(set(known))
        self.name = name
        self.suggestions: tuple[str, ...] = tuple(
            difflib.get_close_matches(name, known_list, n=3, cutoff=0.5)
        )
        if self.suggestions:
            hint = "did you mean " + " or ".join(repr(s) for s in self.suggestions) + "?"
        elif known_list:
            hint = "known models: " + ", ".join(known_list)
        else:
            hint = "no models are registered (is a backend plugin installed?)"
        super().__init__(f"unknown model {name!r}: {hint}")

    def __str__(self) -> str:
        # LookupError's KeyError-like quoting does not apply: show the message as written.
        return self.message


class PluginLoadError(LLMCompareError):
    """A backend plugin failed to import or to register its models.

    Attributes:
        plugin: The entry point name of the plugin.
        distribution: The distribution (package) that declares it, when known.
    """

    def __init__(self, message: str, *, plugin: str, distribution: str | None = None) -> None:
        self.plugin = plugin
        self.distribution = distribution
        super().__init__(message)


class BudgetExceeded(LLMCompareError):
    """A request was refused before it was sent because it could exceed a budget."""


class BackendError(LLMCompareError):
    """A model backend failed to produce a completion.

    Attributes:
        model_id: The llmcompare id of the model that failed (``"provider:name"``).
        retryable: Whether sending the same request again may succeed (timeouts, resets, 429, 5xx).
        maybe_billed: Whether the request reached the provider before it failed, so that the
            provider may bill it: a timeout while waiting for the answer, a connection or a
            stream cut after the request was sent. A refusal (an HTTP error status) or a
            connection that never opened is not billed.
        charged_usd: Dollars a :class:`~llmcompare.cost.CostTracker` counted for the request
            because it may be billed (its worst case), summed over its attempts; None when
            nothing was charged, or the model has no price.
        charged_tokens: The tokens counted for it (towards ``max_tokens``), summed over its
            attempts: a model without a price is charged these alone (``charged_usd`` None).
    """

    # Class defaults: an error rebuilt from another version's pickle has them too.
    maybe_billed: bool = False
    charged_usd: Decimal | None = None
    charged_tokens: int | None = None

    def __init__(
        self, message: str, *, model_id: str, retryable: bool = False, maybe_billed: bool = False
    ) -> None:
        self.model_id = model_id
        self.retryable = retryable
        self.maybe_billed = maybe_billed
        super().__init__(f"{model_id}: {message}")

    def __reduce__(self) -> tuple[object, ...]:
        # Keyword-only constructors do not survive the default pickling (used by multiprocessing).
        return (_rebuild, (type(self), self.__dict__, self.args))


class ProviderHTTPError(BackendError):
    """The provider answered with an HTTP error status.

    Attributes:
        status: The HTTP status code.
        headers: Response headers, names lower-cased, credential headers removed.
        retry_after: Seconds the provider asked the client to wait, when it said so.
    """

    def __init__(
        self,
        message: str,
        *,
        model_id: str,
        status: int,
        headers: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
        retry_after: float | None = None,
        retryable: bool | None = None,
    ) -> None:
        self.status = status
        items = headers.items() if isinstance(headers, Mapping) else (headers or ())
        self.headers: dict[str, str] = {
            k.lower(): redact(v) for k, v in items if k.lower() not in _SECRET_HEADERS
        }
        self.retry_after = retry_after
        if retryable is None:
            retryable = status in (408, 409, 429) or status >= 500
        super().__init__(f"HTTP {status}: {message}", model_id=model_id, retryable=retryable)


class RateLimitError(ProviderHTTPError):
    """The provider refused the request for exceeding a rate limit or quota (HTTP 429)."""


def _rebuild(
    cls: type[BackendError], state: dict[str, object], args: tuple[object, ...]
) -> BackendError:
    err = Exception.__new__(cls)
    err.args = args
    err.__dict__.update(state)
    return err
