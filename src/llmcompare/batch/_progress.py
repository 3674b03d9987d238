"""The progress bar of :func:`~llmcompare.batch.generate_many`: tqdm, else one status line."""

from __future__ import annotations

import importlib
import sys
import time
from typing import Any

__all__ = ["Progress"]


class Progress:
    """tqdm when installed, else one plain status line on stderr; nothing when disabled."""

    def __init__(self, total: int, initial: int, enabled: bool | None, label: str) -> None:
        if enabled is None:
            stream = sys.stderr  # None under pythonw
            enabled = stream is not None and stream.isatty()
        self.enabled = enabled
        self.total = total
        self.done = initial
        self.failed = 0
        self.label = label
        self._bar: Any = None
        self._last = 0.0
        if not enabled:
            return
        try:
            # tqdm is optional (and untyped): look it up at run time only.
            tqdm = importlib.import_module("tqdm").tqdm
        except ImportError:
            self._write()
        else:
            self._bar = tqdm(total=total, initial=initial, desc=label, unit="req", file=sys.stderr)

    def update(self, ok: bool) -> None:
        """Count one finished request (``ok``: it succeeded)."""
        if not self.enabled:
            return
        self.done += 1
        if not ok:
            self.failed += 1
        if self._bar is not None:
            self._bar.update(1)
            if not ok:
                self._bar.set_postfix(failed=self.failed, refresh=False)
        else:
            now = time.monotonic()
            if now - self._last >= 0.2 or self.done == self.total:
                self._last = now
                self._write()

    def _write(self) -> None:
        sys.stderr.write(f"\r{self.label}: {self.done}/{self.total} done, {self.failed} failed")
        sys.stderr.flush()

    def close(self) -> None:
        """End the bar, leaving its last state on screen."""
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.close()
        else:
            self._write()
            sys.stderr.write("\n")
            sys.stderr.flush()
