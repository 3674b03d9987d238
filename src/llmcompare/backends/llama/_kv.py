"""The KV-cache layout of the ``llama`` backend's running batch.

Rows are left-padded to one width: a row's padding columns are masked out and its positions
count real tokens only, so padding never changes its answer. Newcomers are merged into the
running batch by left-padding both to the wider of the two; finished rows leave it, and columns
that every remaining row pads are cut away. The engine (``_engine.py``) runs the forward passes
over this layout.

Imports torch; loaded only when a model first generates.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch

from llmcompare.backends.llama._job import Job

__all__ = ["KVBatch", "Prefilled"]


class Prefilled(NamedTuple):
    """What the prefill of a group of newcomers hands to the running batch.

    Attributes:
        cache: Their transformers KV cache, one row each.
        mask: Their attention mask (1 for a real token, 0 for padding).
        last_pos: The position of each row's last prompt token, shape ``(rows, 1)``.
        logits: The logits of each row's next token.
        pads: Leading padding columns of each row.
        holes: Rows with padding after a shared prefix, which no cut removes.
    """

    cache: Any
    mask: torch.Tensor
    last_pos: torch.Tensor
    logits: torch.Tensor
    pads: list[int]
    holes: list[bool]


class KVBatch:
    """The running batch: its rows, their KV cache and what the next forward needs.

    Touched by the scheduler's worker thread only.
    """

    def __init__(self) -> None:
        self.rows: list[Job] = []
        self.cache: Any = None
        # The attention mask; None while no row has padding (transformers then needs none, and
        # does not check a mask for padding at every step: a host-device sync on a GPU).
        self.mask: torch.Tensor | None = None
        self.last_pos: torch.Tensor | None = None
        self.logits: torch.Tensor | None = None
        # Leading padding columns of each row: the columns every row pads are cut away.
        self.pads: list[int] = []
        # Rows with padding after a shared prefix, which no cut removes.
        self.holes: list[bool] = []

    def clear(self) -> None:
        """Empty the batch: no row, no cache."""
        self.rows, self.pads, self.holes = [], [], []
        self.cache = self.mask = self.last_pos = self.logits = None

    @property
    def width(self) -> int:
        """The cache's real width (0 when empty): rows with holes keep it after the longest left."""
        return int(self.cache.get_seq_length()) if self.rows else 0

    def merge(self, group: list[Job], new: Prefilled) -> None:
        """Make the prefilled newcomers the batch, or left-pad and append them to it."""
        if not self.rows:
            self.cache, self.last_pos, self.logits = new.cache, new.last_pos, new.logits
            self.rows, self.pads, self.holes = list(group), new.pads, new.holes
            self.mask = None if _dense(new.pads, new.holes) else new.mask
            return
        assert self.last_pos is not None
        assert self.logits is not None
        mask = new.mask
        mine_mask = self.mask
        if mine_mask is None:
            length = self.cache.get_seq_length()
            mine_mask = torch.ones((len(self.rows), length), dtype=torch.long, device=mask.device)
        width = max(mine_mask.shape[1], mask.shape[1])
        for mine, theirs in zip(self.cache.layers, new.cache.layers, strict=True):
            mine.keys = torch.cat([_pad(mine.keys, width), _pad(theirs.keys, width)])
            mine.values = torch.cat([_pad(mine.values, width), _pad(theirs.values, width)])
        self.pads = [p + width - mine_mask.shape[1] for p in self.pads] + [
            p + width - mask.shape[1] for p in new.pads
        ]
        self.holes += new.holes
        merged = torch.cat([_pad(mine_mask, width, -1), _pad(mask, width, -1)])
        self.mask = None if _dense(self.pads, self.holes) else merged
        self.last_pos = torch.cat([self.last_pos, new.last_pos])
        self.logits = torch.cat([self.logits, new.logits])
        self.rows.extend(group)

    def retire(
        self, keep: list[int], rows: int, tokens: torch.Tensor
    ) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor]:
        """Drop the rows not in ``keep`` from the cache and the mask; their padding columns too.

        Args:
            keep: The rows (of the ``rows`` that computed the last step) that stay.
            rows: How many rows computed the last step.
            tokens: Each of those rows' next input token.

        Returns:
            The attention mask (None: no padding), last positions and next input tokens of the
            rows kept.
        """
        mask, last_pos = self.mask, self.last_pos
        assert last_pos is not None
        if len(keep) == rows:
            return mask, last_pos, tokens
        # Finished rows leave the batch: later steps compute only live rows.
        index = torch.tensor(keep, device=tokens.device)
        self.cache.batch_select_indices(index)
        last_pos, tokens = last_pos[index], tokens[index]
        pads = [self.pads[r] for r in keep]
        self.holes = [self.holes[r] for r in keep]
        if mask is not None:
            mask = mask[index]
            cut = min(pads)
            if cut:
                # Columns that are padding in every row left: drop them from the cache.
                for layer in self.cache.layers:
                    layer.keys = layer.keys[..., cut:, :]
                    layer.values = layer.values[..., cut:, :]
                mask = mask[:, cut:]
                pads = [p - cut for p in pads]
            if _dense(pads, self.holes):
                mask = None
        self.pads = pads
        return mask, last_pos, tokens


def _dense(pads: list[int], holes: list[bool]) -> bool:
    """Whether no row has padding: the attention mask would be all ones."""
    return not any(pads) and not any(holes)


def _pad(tensor: torch.Tensor, width: int, dim: int = -2) -> torch.Tensor:
    """Left-pad ``tensor`` with zeros along ``dim`` to ``width``."""
    missing = width - tensor.shape[dim]
    if missing == 0:
        return tensor
    shape = list(tensor.shape)
    shape[dim] = missing
    return torch.cat([tensor.new_zeros(shape), tensor], dim=dim)
