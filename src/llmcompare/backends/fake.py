"""Deterministic test doubles for testing code that uses llmcompare: no weights, no network.

- :class:`ScriptedModel` answers from a queue of replies (strings, completions, exceptions or
  functions), records every request it got, and can report scripted usage and take scripted time.
- :class:`FunctionModel` answers by calling a function (sync or async) with the request.

Both honour ``max_tokens`` (cut to that many words, finish_reason ``"length"``) and ``stop``
strings, and stream word by word, so code under test sees the same shapes as from a real backend.
Registered as ``get_model("fake")`` (echoes the last user message) and
``get_model("fake", reply="...")`` (always that reply).
"""

from __future__ import annotations

import asyncio
import inspect
import re
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from typing import Any, TypeAlias

from pydantic import BaseModel, ConfigDict, Field

from llmcompare.errors import LLMCompareError
from llmcompare.model import ModelBase, _run_coroutine_sync
from llmcompare.plugins import Register, hookimpl
from llmcompare.types import Chunk, Completion, FinishReason, ModelInfo, Request, Usage

__all__ = ["FakeOptions", "FunctionModel", "Reply", "ScriptedModel", "register_models"]

Reply: TypeAlias = str | Completion | BaseException | Callable[[Request], str | Completion]
"""One scripted step: a reply text, a full completion, an exception to raise, or a function."""

UsageFn: TypeAlias = Callable[[Request, str], Usage]

_WORD = re.compile(r"\S+\s*|\s+")


def word_usage(request: Request, text: str) -> Usage:
    """Count whitespace-separated words as tokens: deterministic and dependency-free."""
    prompt_words = sum(len(m.content.split()) for m in request.messages)
    return Usage(input_tokens=prompt_words, output_tokens=len(text.split()))


def _shape(text: str, request: Request) -> tuple[str, FinishReason]:
    """Apply stop strings and max_tokens (in words) the way a real backend would."""
    finish: FinishReason = "stop"
    cut = min((i for i in (text.find(s) for s in request.stop) if i >= 0), default=-1)
    if cut >= 0:
        text = text[:cut]
    if request.max_tokens is not None:
        words = _WORD.findall(text)
        if sum(1 for w in words if w.strip()) > request.max_tokens:
            kept: list[str] = []
            n = 0
            for w in words:
                if w.strip():
                    if n == request.max_tokens:
                        break
                    n += 1
                kept.append(w)
            text, finish = "".join(kept).rstrip(), "length"
    return text, finish


class _FakeBase(ModelBase):
    """Shared behaviour: turning a reply into a completion and streaming it word by word."""

    def __init__(
        self,
        name: str,
        *,
        usage: Usage | UsageFn | None,
        latency_s: float | Sequence[float],
        open_weights: bool,
        context_window: int | None,
    ) -> None:
        super().__init__(
            ModelInfo(
                provider="fake",
                name=name,
                open_weights=open_weights,
                context_window=context_window,
                description="deterministic test double",
            )
        )
        self._usage = usage
        self._latencies = [latency_s] if isinstance(latency_s, (int, float)) else list(latency_s)
        self._calls = 0
        self._lock = threading.Lock()
        self.history: list[Request] = []
        """Every request received, in arrival order."""
        self._streamed: dict[int, Completion] = {}

    def _next_latency(self, request: Request) -> float:
        with self._lock:
            self.history.append(request)
            delay = self._latencies[self._calls % len(self._latencies)] if self._latencies else 0.0
            self._calls += 1
        return float(delay)

    def _complete(self, request: Request, reply: str | Completion) -> Completion:
        if isinstance(reply, Completion):
            return reply
        text, finish = _shape(reply, request)
        if self._usage is None:
            usage = word_usage(request, text)
        elif isinstance(self._usage, Usage):
            usage = self._usage
        else:
            usage = self._usage(request, text)
        return Completion(text=text, finish_reason=finish, usage=usage, model=self.id)

    def _stream(self, request: Request) -> Iterator[Chunk]:
        completion = self._generate(request)
        self._keep(request, completion)
        yield from _word_chunks(completion)

    async def _astream(self, request: Request) -> AsyncIterator[Chunk]:
        completion = await self._agenerate(request)
        self._keep(request, completion)
        for chunk in _word_chunks(completion):
            yield chunk

    def cache_identity(self) -> dict[str, Any] | None:
        """None: a test double is never cached (two objects with one id answer differently)."""
        return None

    def _keep(self, request: Request, completion: Completion) -> None:
        # A scripted completion's facts (compute time, device, what was sent) are not in the
        # chunks: kept here until the stream's completion is built.
        with self._lock:
            self._streamed[id(request)] = completion
            while len(self._streamed) > 1024:
                self._streamed.pop(next(iter(self._streamed)))

    def _finalize_stream(self, completion: Completion, request: Request) -> Completion:
        with self._lock:
            scripted = self._streamed.pop(id(request), None)
        if scripted is None:
            return completion
        return completion.model_copy(
            update={
                name: getattr(scripted, name)
                for name in ("compute_s", "device", "energy_j", "energy_method", "sent", "queue_s")
            }
        )


def _word_chunks(completion: Completion) -> Iterator[Chunk]:
    words = _WORD.findall(completion.text)
    for w in words:
        yield Chunk(text=w)
    yield Chunk(
        finish_reason=completion.finish_reason,
        usage=completion.usage,
        request_id=completion.request_id,
        response_model=completion.response_model,
        replaced_chars=completion.replaced_chars,
    )


class ScriptedModel(_FakeBase):
    """A model that answers from a script, in order, and records what it was asked.

    Example:
        >>> from llmcompare.backends.fake import ScriptedModel
        >>> m = ScriptedModel(["Paris.", "Rome."])
        >>> m.generate("Capital of France?").text
        'Paris.'
        >>> len(m.history)
        1

    Args:
        replies: The script. Each step is a reply text, a :class:`~llmcompare.Completion`, an
            exception instance (raised for that call), or a function of the request returning
            text or a completion.
        default: What to answer once the script is used up; without it, an exhausted script
            raises :class:`~llmcompare.LLMCompareError`.
        name: The model name (the id is ``"fake:<name>"``).
        usage: A fixed :class:`~llmcompare.Usage`, or ``fn(request, text) -> Usage``; by default
            words are counted as tokens.
        latency_s: Seconds each call takes (really sleeps); a sequence is used in turn, cycling.
        open_weights: What :attr:`info` reports, to stand in for either kind of model.
        context_window: What :attr:`info` reports.
    """

    def __init__(
        self,
        replies: Iterable[Reply] = (),
        *,
        default: Reply | None = None,
        name: str = "scripted",
        usage: Usage | UsageFn | None = None,
        latency_s: float | Sequence[float] = 0.0,
        open_weights: bool = False,
        context_window: int | None = None,
    ) -> None:
        super().__init__(
            name,
            usage=usage,
            latency_s=latency_s,
            open_weights=open_weights,
            context_window=context_window,
        )
        self._script: deque[Reply] = deque(replies)
        self._default = default

    def add(self, *replies: Reply) -> None:
        """Append steps to the script."""
        with self._lock:
            self._script.extend(replies)

    @property
    def remaining(self) -> int:
        """How many scripted steps are left."""
        return len(self._script)

    def _step(self, request: Request) -> str | Completion:
        with self._lock:
            step = self._script.popleft() if self._script else self._default
        if step is None:
            raise LLMCompareError(
                f"{self.id}: the script is used up after {len(self.history) - 1} requests; "
                "add replies or pass default="
            )
        if isinstance(step, BaseException):
            raise step
        if callable(step):
            return step(request)
        return step

    def _generate(self, request: Request) -> Completion:
        delay = self._next_latency(request)
        if delay:
            time.sleep(delay)
        return self._complete(request, self._step(request))

    async def _agenerate(self, request: Request) -> Completion:
        delay = self._next_latency(request)
        if delay:
            await asyncio.sleep(delay)
        return self._complete(request, self._step(request))


class FunctionModel(_FakeBase):
    """A model that answers by calling ``fn(request)``, sync or async.

    The function runs on the caller's thread or event loop: keep it quick, or give it latency
    with ``latency_s``.

    Args:
        fn: Returns the reply text or a full completion; may be an ``async def``.
        name: The model name (the id is ``"fake:<name>"``).
        usage: As for :class:`ScriptedModel`.
        latency_s: As for :class:`ScriptedModel`.
        open_weights: What :attr:`info` reports.
        context_window: What :attr:`info` reports.
    """

    def __init__(
        self,
        fn: Callable[[Request], str | Completion | Awaitable[str | Completion]],
        *,
        name: str = "function",
        usage: Usage | UsageFn | None = None,
        latency_s: float | Sequence[float] = 0.0,
        open_weights: bool = False,
        context_window: int | None = None,
    ) -> None:
        super().__init__(
            name,
            usage=usage,
            latency_s=latency_s,
            open_weights=open_weights,
            context_window=context_window,
        )
        self._fn = fn
        self._is_async = inspect.iscoroutinefunction(fn)

    async def _call_async(self, request: Request) -> str | Completion:
        out = self._fn(request)
        return await out if inspect.isawaitable(out) else out

    def _generate(self, request: Request) -> Completion:
        delay = self._next_latency(request)
        if delay:
            time.sleep(delay)
        if self._is_async:
            reply = _run_coroutine_sync(lambda: self._call_async(request))
        else:
            out = self._fn(request)
            if inspect.isawaitable(out):
                raise TypeError("FunctionModel: fn returned an awaitable; declare it async def")
            reply = out
        return self._complete(request, reply)

    async def _agenerate(self, request: Request) -> Completion:
        delay = self._next_latency(request)
        if delay:
            await asyncio.sleep(delay)
        return self._complete(request, await self._call_async(request))


class FakeOptions(BaseModel):
    """Options of ``get_model("fake", ...)``.

    Attributes:
        reply: Always answer this; by default the model echoes the last user message.
        latency_s: Seconds each call takes.
        open_weights: What the model's info reports.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    reply: str | None = None
    latency_s: float = Field(default=0.0, ge=0.0)
    open_weights: bool = False


def _echo(request: Request) -> str:
    users = [m.content for m in request.messages if m.role == "user"]
    return users[-1] if users else request.messages[-1].content


def _make(variant: str | None, options: FakeOptions) -> FunctionModel:
    reply = options.reply
    fn: Callable[[Request], str] = _echo if reply is None else (lambda _request: reply)
    return FunctionModel(
        fn,
        name=variant or ("echo" if reply is None else "reply"),
        latency_s=options.latency_s,
        open_weights=options.open_weights,
    )


@hookimpl
def register_models(register: Register) -> None:
    """Register the ``fake`` model family (plugin hook)."""
    register(
        "fake",
        _make,
        options=FakeOptions,
        description="deterministic test double: echoes the prompt, or answers `reply`",
    )
