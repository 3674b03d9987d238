"""Everything that touches the openai SDK: building clients and translating its exceptions.

This is the only module of the backend that imports ``openai`` at module level; the rest of the
package imports it on first use, so ``import llmcompare`` and ``get_model("chatgpt")`` stay cheap.

No credential the backend holds (the key, header values, what ``base_url`` carries) leaves it:
provider text is cleaned of them, the SDK's exception chained as ``__cause__`` is scrubbed, and
the SDK's and httpx's log records are redacted (:func:`llmcompare.errors.redact`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any

from llmcompare.errors import (
    BackendError,
    LLMCompareError,
    ProviderHTTPError,
    RateLimitError,
    redact,
)
from llmcompare.retry._after import parse_retry_after

try:
    import httpx
    import openai
except ImportError as exc:
    # The openai SDK is an optional extra: name the fix, not just the missing module.
    raise ImportError(
        f'the chatgpt backend needs the openai SDK: pip install "llmcompare[openai]" ({exc})',
        name=exc.name,
    ) from exc

__all__ = [
    "ERRORS",
    "SDKErrors",
    "clean",
    "make_async_client",
    "make_sync_client",
    "map_error",
    "mask",
    "scrub",
]

ERRORS: tuple[type[BaseException], ...] = (openai.OpenAIError, json.JSONDecodeError)
"""Exceptions a call can raise that :func:`map_error` turns into llmcompare errors."""

_MESSAGE_LIMIT = 500


def _client_kwargs(
    *,
    api_key: str,
    base_url: str | None,
    organization: str | None,
    project: str | None,
    timeout: float | None,
    headers: Mapping[str, str],
) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "api_key": api_key,
        "base_url": base_url,
        "organization": organization,
        "project": project,
        # Retries happen once, in llmcompare.retry, where they are counted and bounded; the SDK
        # retrying underneath would multiply attempts and hide the wait from our accounting.
        "max_retries": 0,
        "default_headers": dict(headers) or None,
    }
    if timeout is not None:
        kwargs["timeout"] = timeout
    return kwargs


def make_sync_client(**settings: Any) -> openai.OpenAI:
    """Build the synchronous client of one model (keyword arguments as in ``_client_kwargs``)."""
    _redact_sdk_logs()
    return openai.OpenAI(**_client_kwargs(**settings))


def make_async_client(**settings: Any) -> openai.AsyncOpenAI:
    """Build the asynchronous client of one model (keyword arguments as in ``_client_kwargs``)."""
    _redact_sdk_logs()
    return openai.AsyncOpenAI(**_client_kwargs(**settings))


def mask(text: str, secrets: Sequence[str]) -> str:
    """``text`` with each of the backend's secrets, and anything credential-shaped, masked."""
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, "[REDACTED]")
    return redact(text)


def clean(text: str, secrets: Sequence[str]) -> str:
    """Trim a provider message and mask the backend's secrets, should the provider echo them."""
    text = mask(" ".join(text.split()), secrets)
    if len(text) > _MESSAGE_LIMIT:
        text = text[:_MESSAGE_LIMIT] + "..."
    return text


def _masked(value: Any, secrets: Sequence[str]) -> Any:
    if isinstance(value, str):
        return mask(value, secrets)
    if isinstance(value, Mapping):
        return {k: _masked(v, secrets) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_masked(v, secrets) for v in value)
    return value


def scrub(exc: BaseException, secrets: Sequence[str]) -> None:
    """Mask the secrets in an exception and everything chained to it, in place.

    The SDK's exception is kept as the ``__cause__`` of ours (its type and status are useful),
    but its text repeats what the server said, which may echo a credential, and httpx's errors
    name the URL, ``user:password@`` included: every ``traceback`` would print them.

    Args:
        exc: The exception the SDK raised.
        secrets: The backend's secrets.
    """
    todo: list[BaseException | None] = [exc]
    seen: set[int] = set()
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        e.args = tuple(_masked(a, secrets) for a in e.args)
        if isinstance(e, openai.APIError):
            e.message = mask(e.message, secrets)
            e.body = _masked(e.body, secrets)
        todo += [e.__cause__, e.__context__]


class _Redacting(logging.Filter):
    """Masks credentials in the records of the SDK's and httpx's loggers (URLs, echoed text)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record is the logging module's to report
            return True
        masked = redact(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


_FILTER = _Redacting()
# The SDK's loggers and those of its HTTP stack, by prefix: openai 3.x ships its own copies of
# httpx and httpcore, whose loggers are "httpx2" and "httpcore2.http11", say.
_LOGGERS = ("openai", "httpx", "httpcore")


def _redact_sdk_logs() -> None:
    """Put the redacting filter on every logger of the SDK and its HTTP stack (idempotent).

    A logger's filters see only the records logged to that logger itself, so each one that
    exists is given the filter (run with each client built: later imports may add loggers).
    """
    names = [
        name
        for name, logger in list(logging.root.manager.loggerDict.items())
        if name.split(".")[0].startswith(_LOGGERS) and isinstance(logger, logging.Logger)
    ]
    for name in {*_LOGGERS, *names}:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


def _detail(exc: openai.APIError, secrets: Sequence[str]) -> str:
    """The provider's own explanation: ``error.message`` of the body, else the raw body text."""
    body = exc.body
    if isinstance(body, Mapping):
        # OpenAI writes {"error": {"message": ...}} (the SDK unwraps "error"); FastAPI-based
        # servers such as transformers serve write {"detail": ...}.
        for key in ("message", "detail"):
            message = body.get(key)
            if isinstance(message, str) and message:
                return clean(message, secrets)
        return clean(json.dumps(body, default=str), secrets)
    if isinstance(body, str) and body:
        return clean(body, secrets)
    return clean(exc.message, secrets)


def _status_error(
    exc: openai.APIStatusError,
    *,
    model_id: str,
    model: str,
    base_url: str,
    secrets: Sequence[str],
) -> ProviderHTTPError:
    status = exc.status_code
    headers = {k.lower(): clean(v, secrets) for k, v in exc.response.headers.items()}
    detail = _detail(exc, secrets)
    retry_after = parse_retry_after(headers)
    common: dict[str, Any] = {"model_id": model_id, "status": status, "headers": headers}
    if status == 429:
        # "insufficient_quota" is also a 429, but no amount of waiting fixes an empty balance.
        quota = exc.code == "insufficient_quota" or exc.type == "insufficient_quota"
        hint = "out of quota: check billing" if quota else "rate limited"
        wait = "" if retry_after is None else f" (retry after {retry_after:.3g}s)"
        return RateLimitError(
            f"{hint}{wait}: {detail}", retry_after=retry_after, retryable=not quota, **common
        )
    if status == 401:
        return ProviderHTTPError(
            "authentication failed: check the API key (the api_key option or OPENAI_API_KEY) "
            f"for {base_url}: {detail}",
            retryable=False,
            **common,
        )
    if status == 403:
        return ProviderHTTPError(
            f"permission denied: check that the API key, organization and project may use "
            f"{model!r} at {base_url}: {detail}",
            retryable=False,
            **common,
        )
    if status == 404:
        return ProviderHTTPError(
            f"not found: check the model name {model!r} and base_url {base_url}: {detail}",
            retryable=False,
            **common,
        )
    if status in (400, 413, 422):
        return ProviderHTTPError(f"request rejected: {detail}", retryable=False, **common)
    # 408, 409 and 5xx are transient by nature; ProviderHTTPError decides from the status.
    return ProviderHTTPError(detail, retry_after=retry_after, **common)


def _never_sent(exc: BaseException) -> bool:
    """Whether a connection error happened before the request could reach the server."""
    cause = exc.__cause__ or exc.__context__
    # No connection was ever opened: nothing reached the server, nothing can be billed.
    return isinstance(cause, (httpx.ConnectError, httpx.ConnectTimeout))


def map_error(
    exc: BaseException,
    *,
    model_id: str,
    model: str,
    base_url: str,
    secrets: Sequence[str],
    timeout: float | None,
) -> LLMCompareError:
    """Translate an SDK or decoding exception into the llmcompare error tree.

    An error after the request reached the server (a timeout waiting for the answer, a
    connection or stream cut, an answer that cannot be read) is marked ``maybe_billed``: the
    provider may bill it. An HTTP error status, or a connection that never opened, is not.

    Args:
        exc: What the SDK raised.
        model_id: The llmcompare id, for the message.
        model: The OpenAI model name, for hints.
        base_url: Where the request went, for hints.
        secrets: The backend's credentials, removed from any provider text that echoes them.
        timeout: The configured timeout, for the timeout message.

    Returns:
        The error to raise (``raise mapped from exc`` keeps the SDK's exception as the cause).
    """
    if isinstance(exc, openai.APIStatusError):
        return _status_error(
            exc, model_id=model_id, model=model, base_url=base_url, secrets=secrets
        )
    if isinstance(exc, openai.APITimeoutError):
        limit = "the SDK default" if timeout is None else f"{timeout:g}s"
        return BackendError(
            f"request to {base_url} timed out (timeout: {limit}); raise the timeout option "
            "for slow models",
            model_id=model_id,
            retryable=True,
            maybe_billed=not _never_sent(exc),
        )
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc.__context__
        why = f"{type(cause).__name__}: {clean(str(cause), secrets)}" if cause else exc.message
        return BackendError(
            f"connection to {base_url} failed: {why}",
            model_id=model_id,
            retryable=True,
            maybe_billed=not _never_sent(exc),
        )
    if isinstance(exc, openai.APIResponseValidationError):
        return BackendError(
            f"unexpected response from {base_url}: {_detail(exc, secrets)}",
            model_id=model_id,
            retryable=False,
            maybe_billed=True,
        )
    if isinstance(exc, openai.APIError):
        # An error event inside a 200 stream: the server failed after it started answering.
        transient = exc.type not in ("invalid_request_error",)
        return BackendError(
            f"the server reported an error while answering: {_detail(exc, secrets)}",
            model_id=model_id,
            retryable=transient,
            maybe_billed=True,
        )
    if isinstance(exc, json.JSONDecodeError):
        return BackendError(
            f"the response from {base_url} is not valid JSON: {exc.msg}",
            model_id=model_id,
            retryable=False,
            maybe_billed=True,
        )
    return BackendError(
        f"{type(exc).__name__}: {clean(str(exc), secrets)}", model_id=model_id, retryable=False
    )


class SDKErrors:
    """Turns what the SDK raises inside its ``with`` block into an llmcompare error.

    One per model, built once and entered around every SDK call (``with errors: ...``): the
    error mapping lives here only. Other exceptions pass through unchanged.

    Args:
        model_id: The llmcompare id, for the message.
        model: The OpenAI model name, for hints.
        base_url: Where requests go, for hints.
        secrets: The backend's credentials (key, header values, what ``base_url`` carries):
            masked in the mapped error and in the SDK's exception chained to it.
        timeout: The configured timeout, for the timeout message.
    """

    __slots__ = ("_context", "_secrets")

    def __init__(
        self,
        *,
        model_id: str,
        model: str,
        base_url: str,
        secrets: Sequence[str],
        timeout: float | None,
    ) -> None:
        self._secrets = tuple(secrets)
        self._context: dict[str, Any] = {
            "model_id": model_id,
            "model": model,
            "base_url": base_url,
            "secrets": self._secrets,
            "timeout": timeout,
        }

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if isinstance(exc, ERRORS):
            mapped = map_error(exc, **self._context)
            # `from exc` keeps the SDK's exception as the cause, scrubbed: tracebacks print it.
            scrub(exc, self._secrets)
            raise mapped from exc
