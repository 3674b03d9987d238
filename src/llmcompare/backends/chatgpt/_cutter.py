"""A stream's text as it arrives, whichever API streams it (chat.completions or Responses).

Stop strings the model did not take are applied here, to text that may split one across chunks;
the first chunk carries the request id and the model name.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from llmcompare.backends.chatgpt._endpoint import cut
from llmcompare.types import Chunk, Request

if TYPE_CHECKING:
    from llmcompare.backends.chatgpt._endpoint import Endpoint

__all__ = ["StopCutter", "StreamText"]


class StopCutter:
    """Applies stop strings to streamed text that may split a stop string across chunks."""

    __slots__ = ("_buf", "_hold", "_stops", "stopped")

    def __init__(self, stops: Sequence[str]) -> None:
        self._stops = stops
        self._hold = max(len(s) for s in stops) - 1  # a longer tail cannot start a stop string
        self._buf = ""
        self.stopped = False

    def feed(self, text: str) -> str:
        """The part of ``text`` that is safe to show: no stop string can start in it."""
        if self.stopped:
            return ""
        self._buf += text
        out, found = cut(self._buf, self._stops)
        if found:
            self._buf = ""
            self.stopped = True
            return out
        keep = len(self._buf) - self._hold
        if keep <= 0:
            return ""
        out, self._buf = self._buf[:keep], self._buf[keep:]
        return out

    def flush(self) -> str:
        """The text held back, at the end of a stream that met no stop string."""
        out, self._buf = self._buf, ""
        return out


class StreamText:
    """What a stream's event mapper keeps of its text, whichever API: the base of both mappers.

    Args:
        endpoint: The model's endpoint.
        request: The request streamed.
        request_id: The response's request id.
        stops: Stop strings llmcompare applies itself.
    """

    __slots__ = (
        "_cutter",
        "_endpoint",
        "_half",
        "_parts",
        "_refusal",
        "_request",
        "_request_id",
        "_response_model",
        "_sent_ids",
    )

    def __init__(
        self, endpoint: Endpoint, request: Request, request_id: str | None, stops: Sequence[str]
    ) -> None:
        self._endpoint = endpoint
        self._request = request
        self._request_id = request_id
        self._cutter = StopCutter(stops) if stops else None
        self._parts: list[str] = []
        self._refusal: list[str] = []
        self._response_model: str | None = None
        self._sent_ids = False
        self._half = ""  # a high surrogate that ended the last event: its low half comes next

    def shown(self, text: str, *, thinking: bool = False) -> Chunk | None:
        """The chunk of new text (after stop strings), or None when nothing shows yet.

        ``thinking`` makes a chunk without text: hidden reasoning began.
        """
        if self._cutter is not None:
            text = self._cutter.feed(text)
        text = self._join_halves(text)
        if not text and not thinking:
            return None
        if text:
            self._parts.append(text)
        # Validated construction, not model_construct: pydantic-core builds a small model about
        # three times faster than model_construct's Python code, and this runs once per chunk.
        if self._sent_ids:
            return Chunk(text=text, thinking=thinking)
        self._sent_ids = True
        return Chunk(
            text=text,
            thinking=thinking,
            request_id=self._request_id,
            response_model=self._response_model,
        )

    def _join_halves(self, text: str) -> str:
        # A gateway may split an emoji's JSON escape across two events ("\ud83d", "\ude00"):
        # a high half that ends an event waits for the next one, so the pair is joined.
        if self._half:
            text, self._half = self._half + text, ""
        if text and "\ud800" <= text[-1] <= "\udbff":
            text, self._half = text[:-1], text[-1]
        return text

    def rest(self) -> tuple[str, bool]:
        """At the end: the text held back, and whether a stop string ended the answer."""
        cutter = self._cutter
        stopped = cutter is not None and cutter.stopped
        tail = cutter.flush() if cutter is not None and not stopped else ""
        # A half still waiting has lost its pair: the chunk replaces it and says so.
        tail, self._half = self._half + tail, ""
        if tail:
            self._parts.append(tail)
        return tail, stopped
