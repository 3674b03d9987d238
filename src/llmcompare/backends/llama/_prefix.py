"""The prefix cache of the ``llama`` backend: the KV of prompt prefixes kept across requests.

A prompt is cut into blocks of :data:`BLOCK` tokens; each block's KV (every layer's keys and
values for those positions, one row) is kept under a key that chains the hashes of every block
before it, as vLLM's automatic prefix caching does, so a block is found only after the very same
tokens. A later prompt that starts with cached blocks reuses their KV and computes only the rest:
a few-shot prefix repeated on every item of an evaluation is computed once.

Memory is bounded in tokens; the least recently used blocks go first. A lookup touches the blocks
it found from the last to the first, so a prefix's first blocks are always more recent than its
later ones and eviction cuts prefixes from their end, never leaving a block nobody can reach
before its followers.

Imports torch; loaded only when a model first generates.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import torch

__all__ = ["BLOCK", "PrefixCache"]

BLOCK = 16
"""Tokens per cached block: a prefix is reused in whole blocks."""

# One block's KV: (keys, values) per layer, each of shape (1, heads, BLOCK, head dim).
_Block = list[tuple[torch.Tensor, torch.Tensor]]


class PrefixCache:
    """Block-hashed KV of prompt prefixes, bounded in tokens, least recently used evicted first.

    Touched by the scheduler's worker thread only (the engine's prefill); its counters are read
    from other threads as plain integers.

    Args:
        capacity: Most tokens kept (rounded down to whole blocks); 0 keeps none.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity // BLOCK
        self._blocks: OrderedDict[int, _Block] = OrderedDict()
        self.lookups = 0
        self.hits = 0
        self.tokens_reused = 0
        self.evicted = 0

    @property
    def tokens(self) -> int:
        """Tokens whose KV is held now."""
        return len(self._blocks) * BLOCK

    def clear(self) -> None:
        """Drop every block (the counters stay)."""
        self._blocks.clear()

    def match(self, prompt: Sequence[int], limit: int, rows: int = 1) -> tuple[int, _Block | None]:
        """The longest cached prefix of ``prompt[:limit]``, counted as a lookup for ``rows`` rows.

        Returns:
            How many tokens it covers (a multiple of :data:`BLOCK`) and their KV, per layer
            ``(keys, values)`` of shape ``(1, heads, tokens, head dim)``; ``(0, None)`` when
            nothing is cached.
        """
        self.lookups += 1
        found: list[tuple[int, _Block]] = []
        for key in _keys(prompt, limit):
            block = self._blocks.get(key)
            if block is None:
                break
            found.append((key, block))
        if not found:
            return 0, None
        for key, _ in reversed(found):
            self._blocks.move_to_end(key)
        tokens = len(found) * BLOCK
        self.hits += 1
        self.tokens_reused += tokens * rows
        layers = [
            (
                torch.cat([b[layer][0] for _, b in found], dim=-2),
                torch.cat([b[layer][1] for _, b in found], dim=-2),
            )
            for layer in range(len(found[0][1]))
        ]
        return tokens, layers

    def store(self, prompt: Sequence[int], end: int, layers: Sequence[Any]) -> None:
        """Keep the whole blocks of ``prompt[:end]``, read from the cache ``layers``.

        Args:
            prompt: The row's prompt tokens.
            end: Tokens whose KV ``layers`` holds, row 0, positions ``0..end``.
            layers: A transformers cache's layers (``.keys`` and ``.values``).
        """
        if not self.capacity:
            return
        # A prefix longer than the whole cache keeps its first blocks only.
        keys = _keys(prompt, end)[: self.capacity]
        # From the last block to the first: a prefix's first blocks end up the most recent, so
        # eviction cuts it from its end.
        for index in range(len(keys) - 1, -1, -1):
            key = keys[index]
            if key in self._blocks:
                self._blocks.move_to_end(key)
                continue
            lo, hi = index * BLOCK, (index + 1) * BLOCK
            # Copies: a view would keep the whole batch's cache alive.
            self._blocks[key] = [
                (layer.keys[:1, :, lo:hi].clone(), layer.values[:1, :, lo:hi].clone())
                for layer in layers
            ]
        while len(self._blocks) > self.capacity:
            self._blocks.popitem(last=False)
            self.evicted += 1


def _keys(prompt: Sequence[int], limit: int) -> list[int]:
    """The chained hash of each whole block of ``prompt[:limit]``."""
    keys: list[int] = []
    parent = 0
    for start in range(0, limit - BLOCK + 1, BLOCK):
        parent = hash((parent, tuple(prompt[start : start + BLOCK])))
        keys.append(parent)
    return keys
