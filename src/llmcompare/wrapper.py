""":class:`ModelWrapper`: the one base for a model that wraps another one.

Retrying (:func:`~llmcompare.with_retry`), rate limiting (:func:`~llmcompare.with_rate_limit`)
and cost tracking (:meth:`~llmcompare.CostTracker.wrap`) are each a few hooks on this base, and
so is a wrapper of your own. The base forwards every call path of the :class:`~llmcompare.Model`
protocol (``generate``, ``agenerate``, ``stream``, ``astream``, ``generate_batch``, ``warm_up``,
``close``, ``aclose``) to the wrapped model, and runs the hooks a wrapper overrides around each
request:

- :meth:`~ModelWrapper._before` / :meth:`~ModelWrapper._abefore`: before a request is sent (to
  wait, or to refuse it by raising); returns a *ticket* that the other hooks of the same request
  receive.
- :meth:`~ModelWrapper._around` / :meth:`~ModelWrapper._aaround` /
  :meth:`~ModelWrapper._around_batch`: around the call to the inner model (to call it again, as
  retrying does).
- :meth:`~ModelWrapper._after`: with the completion, which it may replace.
- :meth:`~ModelWrapper._failed`: with the error (or ``GeneratorExit`` for a stream closed before
  its end).

Every path gets streaming, batching and timing right without further code. Latency is what the
caller waited: a wrapped completion's ``latency_s`` (and ``ttft_s``) count from the call to the
wrapper, so the waits of a rate limit and the attempts of a retry are included.

Example:
    >>> from llmcompare import Completion, Request
    >>> from llmcompare.backends.fake import ScriptedModel
    >>> from llmcompare.wrapper import ModelWrapper
    >>> class Logged(ModelWrapper):
    ...     def _before(self, request: Request) -> None:
    ...         print("sending", request.messages[-1].content)
    >>> model = Logged(ScriptedModel(default="one two three"))
    >>> [chunk.text for chunk in model.stream("hi")]
    sending hi
    ['one ', 'two ', 'three', '']
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from typing import Any, Generic, TypeVar

from typing_extensions import TypeVar as DefaultTypeVar
from typing_extensions import Unpack

from llmcompare.model import AsyncStream, Model, ModelBase, Stream, _refuse_bare_string
from llmcompare.schema import ResponseFormat, check_formats
from llmcompare.types import Chunk, Completion, Prompt, Request, Result, Settings, ShelfLife

__all__ = ["ModelWrapper"]

_T = TypeVar("_T")
TicketT = DefaultTypeVar("TicketT", default=None)
"""What a wrapper's :meth:`ModelWrapper._before` hands to its other hooks (None by default)."""

Outputs = list[Completion | Exception]
"""One entry per request, in order: its completion or its error."""


class ModelWrapper(ModelBase, Generic[TicketT]):
    """A model that wraps another one: every call is forwarded, with the subclass's hooks around.

    Override any of the hooks; each has a default that does nothing. The wrapper keeps the inner
    model's id, info and capability facts (:attr:`~llmcompare.ModelBase.native_batching`,
    :attr:`~llmcompare.ModelBase.native_streaming`).

    When each hook runs, by call path:

    - ``generate``: ``_before``, then ``_around`` the inner ``generate``, then ``_after`` (or
      ``_failed``). ``agenerate`` is the same with ``_abefore`` and ``_aaround``.
    - ``stream``: ``_before`` at the stream's first read (nothing happens before: a stream that
      is never read runs no hook); ``_around`` the opening of the inner stream up to its first
      chunk; ``_after`` when it ends, ``_failed`` when it fails or is closed early. ``astream`` is
      the same with ``_abefore`` and ``_aaround``.
    - ``generate_batch``: ``_before_batch`` (by default ``_before`` for each request; a request
      whose ``_before`` raises gets that error as its result and is not sent), ``_around_batch``
      around the inner ``generate_batch`` of the others, then ``_after`` or ``_failed`` for each.

    ``_before`` may block (sync paths) or await (``_abefore``) to hold a request back; the wait
    counts in the request's latency.

    Args:
        inner: The model to wrap.
    """

    label = "wrapped"
    """Shown in ``repr``: ``<label <inner model>>``."""

    def __init__(self, inner: Model) -> None:
        super().__init__(inner.info)
        self._inner = inner
        # Instance attributes shadow ModelBase's class-level facts: they are the inner model's.
        self.native_batching = isinstance(inner, ModelBase) and inner.native_batching
        self.native_streaming = isinstance(inner, ModelBase) and inner.native_streaming
        self.continuous_batching = isinstance(inner, ModelBase) and inner.continuous_batching

    @property
    def inner(self) -> Model:
        """The wrapped model."""
        return self._inner

    def __repr__(self) -> str:
        return f"<{self.label} {self._inner!r}>"

    def check_response_format(self, fmt: ResponseFormat) -> None:
        """The inner model's answer: a wrapper enforces no format of its own."""
        hook = getattr(self._inner, "check_response_format", None)
        if hook is not None:
            hook(fmt)

    # -- hooks ---------------------------------------------------------------------------------

    def _before(self, request: Request) -> TicketT:
        """Run before a request is sent (sync paths); raise to refuse it, block to delay it.

        Returns:
            A ticket handed to this request's other hooks.
        """
        return None  # type: ignore[return-value]  # TicketT defaults to None

    async def _abefore(self, request: Request) -> TicketT:
        """Run before a request is sent (async paths); the default calls :meth:`_before`."""
        return self._before(request)

    def _before_batch(self, requests: Sequence[Request]) -> list[TicketT | Exception]:
        """Run before a batch is sent: a ticket per request, or the error that refuses it.

        The default calls :meth:`_before` for each request. Override it when ``_before`` may
        wait for another request to finish: the rows of a batch are all admitted before any is
        sent, so one row cannot wait for another.
        """
        out: list[TicketT | Exception] = []
        for request in requests:
            try:
                out.append(self._before(request))
            except Exception as exc:  # noqa: BLE001 - refused: this request's result is the error
                out.append(exc)
        return out

    def _around(self, ticket: TicketT, call: Callable[[], _T]) -> _T:
        """Run the call to the inner model (sync paths); the default calls it once."""
        return call()

    async def _aaround(self, ticket: TicketT, call: Callable[[], Awaitable[_T]]) -> _T:
        """Run the call to the inner model (async paths); the default awaits it once."""
        return await call()

    def _around_batch(
        self,
        requests: Sequence[Request],
        tickets: Sequence[TicketT],
        call: Callable[[Sequence[Request]], Outputs],
    ) -> Outputs:
        """Run the inner ``generate_batch`` for the admitted requests; the default calls it once.

        ``call`` takes any subset of ``requests`` (as a retry round does) and returns one entry
        per request it was given. A completion's ``latency_s`` counts from the moment this hook
        started.
        """
        return call(requests)

    def _after(self, request: Request, completion: Completion, ticket: TicketT) -> Completion:
        """Run when a request has succeeded; returns the completion the caller gets."""
        return completion

    def _failed(self, request: Request, error: BaseException, ticket: TicketT) -> None:
        """Run when a request has failed, was cancelled, or its stream was closed early."""

    # -- the protocol, forwarded ---------------------------------------------------------------

    def _generate(self, request: Request) -> Completion:
        return self.generate(request)

    async def _agenerate(self, request: Request) -> Completion:
        return await self.agenerate(request)

    def generate(self, prompt: Prompt, /, **settings: Unpack[Settings]) -> Completion:
        """Generate one answer through the inner model; see :meth:`Model.generate`."""
        request = _request(prompt, settings)
        start = time.perf_counter()
        ticket = self._before(request)
        try:
            completion = self._around(ticket, lambda: self._inner.generate(request))
        except BaseException as exc:
            self._failed(request, exc, ticket)
            raise
        return self._after(request, _waited(completion, start), ticket)

    async def agenerate(self, prompt: Prompt, /, **settings: Unpack[Settings]) -> Completion:
        """Generate one answer asynchronously through the inner model."""
        request = _request(prompt, settings)
        start = time.perf_counter()
        ticket = await self._abefore(request)
        try:
            completion = await self._aaround(ticket, lambda: self._inner.agenerate(request))
        except BaseException as exc:
            self._failed(request, exc, ticket)
            raise
        return self._after(request, _waited(completion, start), ticket)

    def stream(self, prompt: Prompt, /, **settings: Unpack[Settings]) -> Stream:
        """Stream one answer through the inner model; see :class:`~llmcompare.Stream`."""
        flow: _Flow[TicketT] = _Flow(self, _request(prompt, settings))
        return Stream(self, flow.chunks(), finish=flow.finish, abandon=flow.abandon)

    def astream(self, prompt: Prompt, /, **settings: Unpack[Settings]) -> AsyncStream:
        """Stream one answer asynchronously through the inner model."""
        flow: _Flow[TicketT] = _Flow(self, _request(prompt, settings))
        return AsyncStream(self, flow.achunks(), finish=flow.finish, abandon=flow.abandon)

    def _generate_batch(self, requests: Sequence[Request]) -> Outputs:
        return self._batch(requests, time.perf_counter())

    def generate_batch(
        self, prompts: Sequence[Prompt], /, **settings: Unpack[Settings]
    ) -> list[Result]:
        """Answer many prompts through the inner model's ``generate_batch``; one result each."""
        _refuse_bare_string(prompts, "generate_batch")
        requests = [_request(p, settings) for p in prompts]
        check_formats(self, requests)
        outs = self._batch(requests, time.perf_counter()) if requests else []
        return [
            Result(i, r, error=o) if isinstance(o, Exception) else Result(i, r, completion=o)
            for i, (r, o) in enumerate(zip(requests, outs, strict=True))
        ]

    def _batch(self, requests: Sequence[Request], start: float) -> Outputs:
        outs: list[Completion | Exception | None] = [None] * len(requests)
        admitted: list[tuple[int, TicketT]] = []
        for i, ticket in enumerate(self._before_batch(requests)):
            if isinstance(ticket, Exception):
                outs[i] = ticket
            else:
                admitted.append((i, ticket))
        if admitted:
            sent = [requests[i] for i, _ in admitted]
            tickets = [t for _, t in admitted]
            offset = time.perf_counter() - start
            try:
                got = self._around_batch(sent, tickets, self._inner_batch)
            except BaseException as exc:
                for request, ticket in zip(sent, tickets, strict=True):
                    self._failed(request, exc, ticket)
                raise
            for (i, ticket), request, out in zip(admitted, sent, got, strict=True):
                if isinstance(out, Completion):
                    outs[i] = self._after(request, _shifted(out, offset), ticket)
                else:
                    self._failed(request, out, ticket)
                    outs[i] = out
        return [o for o in outs if o is not None]

    def _inner_batch(self, requests: Sequence[Request]) -> Outputs:
        return _outputs(self._inner.generate_batch(requests))

    def cache_identity(self) -> dict[str, Any] | None:
        """The inner model's identity: retrying, rate limiting or counting never changes answers.

        A wrapper whose hooks do change answers (rewriting the prompt, say) overrides this and
        adds what it changes.
        """
        inner = self._inner
        return inner.cache_identity() if isinstance(inner, ModelBase) else {"id": inner.id}

    def shelf_life(self) -> ShelfLife | None:
        """The inner model's shelf life: a wrapper does not change when it shuts down."""
        inner = self._inner
        return inner.shelf_life() if isinstance(inner, ModelBase) else None

    def warm_up(self) -> None:
        """Warm up the inner model (load its weights, say)."""
        self._inner.warm_up()

    def close(self) -> None:
        """Close the inner model."""
        self._inner.close()

    async def aclose(self) -> None:
        """Close the inner model asynchronously."""
        await self._inner.aclose()


class _Flow(Generic[TicketT]):
    """One wrapped stream: admits the request at the first read, settles it exactly once.

    Nothing happens before the caller reads: a stream created and dropped, or closed unread,
    never ran its before hook, so no hook runs for it at all.
    """

    __slots__ = ("admitted", "inner", "request", "settled", "ticket", "wrapper")

    def __init__(self, wrapper: ModelWrapper[TicketT], request: Request) -> None:
        self.wrapper = wrapper
        self.request = request
        self.ticket: TicketT | None = None
        self.admitted = False
        self.inner: Stream | AsyncStream | None = None
        self.settled = False

    def _admit(self, ticket: TicketT) -> TicketT:
        self.ticket = ticket
        self.admitted = True
        return ticket

    def fail(self, error: BaseException) -> None:
        if self.admitted and not self.settled:
            self.settled = True
            self.wrapper._failed(self.request, error, self.ticket)  # type: ignore[arg-type]

    def abandon(self) -> None:
        self.fail(GeneratorExit())

    def finish(self, built: Completion) -> Completion:
        # The inner stream's completion carries the backend's facts (compute time, attempts);
        # the timings are this stream's, which started when the caller first read it (the before
        # hook's waits included).
        assert self.inner is not None
        completion = self.inner.completion.model_copy(
            update={
                "latency_s": built.latency_s,
                "ttft_s": built.ttft_s,
                "ttft_visible_s": built.ttft_visible_s,
            }
        )
        self.settled = True
        return self.wrapper._after(self.request, completion, self.ticket)  # type: ignore[arg-type]

    def _open(self) -> tuple[Stream, Chunk | None]:
        stream = self.wrapper.inner.stream(self.request)
        try:
            return stream, next(stream)
        except StopIteration:
            return stream, None
        except BaseException:
            stream.close()
            raise

    async def _aopen(self) -> tuple[AsyncStream, Chunk | None]:
        stream = self.wrapper.inner.astream(self.request)
        try:
            return stream, await stream.__anext__()
        except StopAsyncIteration:
            return stream, None
        except BaseException:
            await stream.aclose()
            raise

    # The two generators below differ only in `await`: the rules live in the methods above.

    def chunks(self) -> Iterator[Chunk]:
        ticket = self._admit(self.wrapper._before(self.request))
        try:
            stream, first = self.wrapper._around(ticket, self._open)
        except BaseException as exc:
            self.fail(exc)
            raise
        self.inner = stream
        try:
            if first is not None:
                yield first
                yield from stream
        except BaseException as exc:  # GeneratorExit too: closed before its end
            stream.close()
            self.fail(exc)
            raise

    async def achunks(self) -> AsyncIterator[Chunk]:
        ticket = self._admit(await self.wrapper._abefore(self.request))
        try:
            stream, first = await self.wrapper._aaround(ticket, self._aopen)
        except BaseException as exc:
            self.fail(exc)
            raise
        self.inner = stream
        try:
            if first is not None:
                yield first
                async for chunk in stream:
                    yield chunk
        except BaseException as exc:
            await stream.aclose()
            self.fail(exc)
            raise


def _outputs(results: Sequence[Result]) -> Outputs:
    """The completions and errors of a batch's results, in order.

    ``KeyboardInterrupt`` and its kind are not results: they are raised, so they stop the program.
    """
    out: Outputs = []
    for r in results:
        if r.completion is not None:
            out.append(r.completion)
        elif isinstance(r.error, Exception):
            out.append(r.error)
        else:
            assert r.error is not None
            raise r.error
    return out


def _request(prompt: Prompt, settings: Settings) -> Request:
    # A Request handed down by an outer wrapper is validated already: no second validation.
    if settings or not isinstance(prompt, Request):
        return Request.of(prompt, **settings)
    return prompt


def _shifted(completion: Completion, shift: float) -> Completion:
    """Move a completion's timings later by ``shift`` seconds (time spent before its call)."""
    if shift <= 0.0:
        return completion
    ttft, visible = completion.ttft_s, completion.ttft_visible_s
    return completion.model_copy(
        update={
            "latency_s": completion.latency_s + shift,
            "ttft_s": None if ttft is None else ttft + shift,
            "ttft_visible_s": None if visible is None else visible + shift,
        }
    )


def _waited(completion: Completion, start: float) -> Completion:
    """The completion with its latency counted from ``start``: what this call's caller waited."""
    return _shifted(completion, time.perf_counter() - start - completion.latency_s)
