"""The SDK calls of both APIs: one answer, or a stream of events read as chunks; sync and async.

chat.completions and the Responses API differ in the resource called (``client.chat.completions``,
``client.responses``) and in how their answers and events are read; the calls themselves, the
network switch and the one error mapping around every SDK call are the same, and live here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from llmcompare.types import Chunk

if TYPE_CHECKING:
    from llmcompare.backends.chatgpt._endpoint import Endpoint

__all__ = ["EventMapper", "Resource", "acreate", "astream", "create", "stream"]

Resource = Callable[[Any], Any]
"""The SDK resource a call goes to, from a client: ``lambda c: c.chat.completions``."""


class EventMapper(Protocol):
    """Reads one stream's events: a chunk for each that shows something, then the last one."""

    def feed(self, event: Any) -> Chunk | None:
        """The chunk of one event, or None when it shows nothing."""

    def end(self) -> Chunk:
        """The last chunk (finish reason, usage), once the events are read."""


def create(endpoint: Endpoint, resource: Resource, params: Mapping[str, Any]) -> Any:
    """One answer from ``resource``, synchronously, inside the error mapping."""
    endpoint.check_network()
    client = endpoint.client()
    with endpoint.errors:
        return resource(client).create(**params)


async def acreate(endpoint: Endpoint, resource: Resource, params: Mapping[str, Any]) -> Any:
    """One answer from ``resource``, asynchronously, inside the error mapping."""
    endpoint.check_network()
    client = await endpoint.aclient()
    with endpoint.errors:
        return await resource(client).create(**params)


def stream(
    endpoint: Endpoint,
    resource: Resource,
    params: Callable[[], Mapping[str, Any]],
    mapper: Callable[[str | None], EventMapper],
) -> Iterator[Chunk]:
    """A streamed answer as chunks; ``mapper`` gets the response's request id.

    Nothing happens until the first chunk is asked for: ``params`` builds the request body
    then (a body that cannot be sent raises there, as the network switch does).
    """
    endpoint.check_network()
    client = endpoint.client()
    body = params()
    with endpoint.errors:
        events = resource(client).create(**body)
    try:
        reader = mapper(events.response.headers.get("x-request-id"))
        with endpoint.errors:
            for event in events:
                chunk = reader.feed(event)
                if chunk is not None:
                    yield chunk
        yield reader.end()
    finally:
        events.close()


async def astream(
    endpoint: Endpoint,
    resource: Resource,
    params: Callable[[], Mapping[str, Any]],
    mapper: Callable[[str | None], EventMapper],
) -> AsyncIterator[Chunk]:
    """A streamed answer as chunks, asynchronously; as :func:`stream`."""
    endpoint.check_network()
    client = await endpoint.aclient()
    body = params()
    with endpoint.errors:
        events = await resource(client).create(**body)
    try:
        reader = mapper(events.response.headers.get("x-request-id"))
        with endpoint.errors:
            async for event in events:
                chunk = reader.feed(event)
                if chunk is not None:
                    yield chunk
        yield reader.end()
    finally:
        await events.close()
