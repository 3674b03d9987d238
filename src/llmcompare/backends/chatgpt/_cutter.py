"""Stop strings applied by the client to streamed text (shared by the chat and Responses paths)."""

from __future__ import annotations

from collections.abc import Sequence

from llmcompare.backends.chatgpt._endpoint import cut

__all__ = ["StopCutter"]


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
