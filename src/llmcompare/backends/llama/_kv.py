"""The KV-cache layout of the ``llama`` backend's running batch: one preallocated slab.

Every layer's keys and values live in one buffer of shape ``(slots, kv heads, columns, head
dim)``, allocated when a batch starts and reallocated only when a newcomer needs more room (then
with room to spare, so rarely). All rows share one write column, ``end``: a decoding step writes
each row's new key and value in place there, and attention reads the view ``[:rows, :,
start:end + 1]``. Nothing is concatenated per step (transformers' ``DynamicCache``, which
``model.generate`` uses, copies the whole cache at every step).

Rows are right-aligned at ``end``: a shorter row's columns before its first token are masked out,
and positions count real tokens only, so padding never changes an answer. A batch that starts
fresh is prefilled straight into its slab, its rows' own tokens packed into sequences without
padding where that pays (:func:`packed_inputs`, :func:`packing_pays`). Newcomers are prefilled
on their own (``_engine.py``) and copied into free slots: a copy the size of their prompts, not
of the batch. A finished row's slot is taken by the last live row (one row's KV copied), so the
live rows are always the first ``rows`` slots and no step computes a finished row. Columns that
every live row starts after are skipped by moving ``start``: no copy.

A model whose cache is not plain growing layers (sliding windows) keeps the cache of its
prefill instead, and newcomers wait for the batch to end (the scheduler checks
``Engine.mergeable``).

Imports torch and transformers; loaded only when a model first generates.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from transformers.cache_utils import Cache, DynamicLayer

from llmcompare.backends.llama._job import Job

__all__ = [
    "PACKABLE",
    "PACK_TOKENS",
    "KVBatch",
    "KVShape",
    "Packing",
    "Prefilled",
    "SlabLayer",
    "attention_mask",
    "packed_inputs",
    "packing_pays",
    "packs",
]


class Prefilled(NamedTuple):
    """What the prefill of a group of newcomers hands to the running batch.

    Attributes:
        cache: Their transformers KV cache, one row each.
        mask: Their attention mask (1 for a real token, 0 for padding).
        last_pos: The position of each row's last prompt token, shape ``(rows, 1)``.
        logits: The logits of each row's next token.
        pads: Leading padding columns of each row.
        holes: Rows with padding after a shared prefix (inside the row, not leading).
    """

    cache: Any
    mask: torch.Tensor
    last_pos: torch.Tensor
    logits: torch.Tensor
    pads: list[int]
    holes: list[bool]


class KVShape(NamedTuple):
    """A model's KV cache per layer, as its first prefill showed it.

    Attributes:
        layers: Layers with a KV cache.
        heads: Key/value heads per layer.
        head_dim: Values per head.
        like: An empty tensor of the cache's dtype and device.
    """

    layers: int
    heads: int
    head_dim: int
    like: torch.Tensor


class Packing(NamedTuple):
    """One packed prefill: the rows' own tokens as one sequence, each written to its row's slot.

    Into a fresh slab, whose columns count from 0: columns here are the slab's own.

    Attributes:
        slots: Each packed token's row, ``(tokens,)``.
        columns: Each packed token's column in its row, ``(tokens,)``.
        prefix: Columns, from the slab's start, of the prefix every row holds already.
        end: The column after every row's last token (rows are right-aligned there).
        first: The first packed row's slot (the packed rows are consecutive).
        rows: The rows the slab's view holds after this forward (the packed ones and those
            before them).
    """

    slots: torch.Tensor
    columns: torch.Tensor
    prefix: int
    end: int
    first: int
    rows: int


class _Columns:
    """Where a slab's live columns start, shared by its layers (each layer keeps its own end)."""

    __slots__ = ("start",)

    def __init__(self, start: int) -> None:
        self.start = start


class _Plan(NamedTuple):
    """A slab about to replace the batch's: its size, its live columns' shift, start and end."""

    rows: int
    cols: int
    shift: int
    end: int
    columns: _Columns
    layers: list[SlabLayer]


class SlabLayer(DynamicLayer):  # type: ignore[no-untyped-call]
    """One layer's keys and values in the slab; transformers' attention calls :meth:`update`.

    A ``DynamicLayer`` to transformers (full attention, no fixed maximum), whose storage is the
    preallocated buffers ``slab_keys`` and ``slab_values``.
    """

    def __init__(
        self, columns: _Columns, keys: torch.Tensor, values: torch.Tensor, end: int
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.columns = columns
        self.slab_keys = keys
        self.slab_values = values
        # The column after the last one written: every layer's is the same between forwards.
        self.end = end
        self.device = keys.device
        self.is_initialized = True
        # Set for the one forward of a packed prefill (Engine.prefill), None otherwise.
        self.packing: Packing | None = None

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Write the new tokens' keys and values at the end column; return the live view."""
        if self.packing is not None:
            return self._write_packed(key_states, value_states, self.packing)
        rows, width = key_states.shape[0], key_states.shape[-2]
        start, end = self.columns.start, self.end
        self.slab_keys[:rows, :, end : end + width].copy_(key_states)
        self.slab_values[:rows, :, end : end + width].copy_(value_states)
        self.end = end + width
        self.keys = self.slab_keys[:rows, :, start : self.end]
        self.values = self.slab_values[:rows, :, start : self.end]
        return self.keys, self.values

    def _write_packed(
        self, key_states: torch.Tensor, value_states: torch.Tensor, packing: Packing
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Write each packed token's key and value to its row's slot and column.

        Returns the keys and values the packed tokens attend over: the shared prefix (row 0's
        copy), then the packed tokens themselves, as one sequence; the mask of
        :func:`packed_inputs` keeps each token to the prefix and its own row.
        """
        rows, own = slice(packing.first, packing.rows), slice(packing.prefix, packing.end)
        for slab, states in ((self.slab_keys, key_states), (self.slab_values, value_states)):
            # A shorter row's columns before its tokens are masked out, and zeroed: a masked
            # column still enters attention's arithmetic (weight 0), and 0 x NaN would be NaN.
            slab[rows, :, own].zero_()
            # (tokens, heads, dim): the layout indexing by (slot, :, column) selects.
            slab[packing.slots, :, packing.columns] = states[0].transpose(0, 1)
        keys = torch.cat([self.slab_keys[:1, :, : packing.prefix], key_states], dim=2)
        values = torch.cat([self.slab_values[:1, :, : packing.prefix], value_states], dim=2)
        self.end = packing.end
        self.keys = self.slab_keys[: packing.rows, :, : self.end]
        self.values = self.slab_values[: packing.rows, :, : self.end]
        return keys, values

    def get_seq_length(self) -> int:
        """Columns the cache holds before this forward's tokens."""
        return self.end - self.columns.start

    def batch_repeat_interleave(self, repeats: int) -> None:
        """Copy row 0's columns to the next ``repeats - 1`` rows (a prefix they all share)."""
        live = slice(self.columns.start, self.end)
        self.slab_keys[1:repeats, :, live] = self.slab_keys[:1, :, live]
        self.slab_values[1:repeats, :, live] = self.slab_values[:1, :, live]


class KVBatch:
    """The running batch: its rows, their KV cache and what the next forward needs.

    Touched by the scheduler's worker thread only.

    Args:
        max_rows: The most rows the batch may hold (the engine's ``max_batch_size``).
        max_tokens: The most token slots (rows x columns) a grown slab may reserve
            (``max_batch_tokens``); an exact fit is always allowed.
        attention: The model's attention implementation (``config._attn_implementation``),
            which decides the form of the mask handed to it.
    """

    def __init__(self, max_rows: int, max_tokens: int, attention: str = "sdpa") -> None:
        self.max_rows = max_rows
        self.max_tokens = max_tokens
        self.attention = attention
        self.rows: list[Job] = []
        # The cache the forward passes take: a slab's Cache of SlabLayers, or (a model that
        # cannot be merged) its prefill's own cache.
        self.cache: Any = None
        self.last_pos: torch.Tensor | None = None
        self.logits: torch.Tensor | None = None
        self._columns = _Columns(0)
        self._layers: list[SlabLayer] = []
        # Which columns of each slot hold a real token; the slab's attention mask.
        self._valid: torch.Tensor | None = None
        # Without a slab: the 2-D attention mask (None: no padding).
        self._mask: torch.Tensor | None = None
        # Each row's first real column (absolute), and whether it has padding after it.
        self._first: list[int] = []
        self._holes: list[bool] = []

    def clear(self) -> None:
        """Empty the batch: no row, no cache."""
        self.rows, self._first, self._holes, self._layers = [], [], [], []
        self.cache = self.last_pos = self.logits = self._valid = self._mask = None
        self._columns = _Columns(0)

    @property
    def width(self) -> int:
        """The cache's live width in columns (0 when empty)."""
        if not self.rows:
            return 0
        if self._layers:
            return self._end - self._columns.start
        return int(self.cache.get_seq_length())

    @property
    def _end(self) -> int:
        """The column after the last one written (0 without a slab)."""
        return self._layers[0].end if self._layers else 0

    @property
    def slots(self) -> tuple[int, int]:
        """The slab's allocated (rows, columns); ``(0, 0)`` without one."""
        if not self._layers:
            return 0, 0
        shape = self._layers[0].slab_keys.shape
        return int(shape[0]), int(shape[2])

    # -- newcomers ----------------------------------------------------------------------------

    def start(self, group: list[Job], shape: KVShape | None) -> Any:
        """A slab for ``group``'s prefill to fill in place.

        For a batch that starts with them, an exact fit: the longest prompt plus the most new
        tokens any of them may take; :meth:`merge` takes it as the batch's without a copy, and
        no second cache the size of theirs exists meanwhile. For newcomers to a running batch,
        their prompts' size: :meth:`merge` copies their rows in. Either way the prefill can run
        packed, without padding (``_engine.py``).

        Returns:
            A transformers cache, or None (the layers' shape is not known yet): the prefill
            makes its own cache, which :meth:`merge` copies in.
        """
        if shape is None:
            return None
        rows = len(group)
        cols = max(len(j.prompt) for j in group)
        if not self.rows:
            cols += max(j.max_new for j in group)
        like = shape.like
        size = (rows, shape.heads, cols, shape.head_dim)
        columns = _Columns(0)
        layers = [
            SlabLayer(columns, like.new_empty(size), like.new_empty(size), 0)
            for _ in range(shape.layers)
        ]
        return Cache(layers=list(layers))

    def merge(self, group: list[Job], new: Prefilled, *, slab: bool = True) -> None:
        """Add the prefilled newcomers to the batch (they become it when it is empty).

        Args:
            group: Their jobs, in the prefill's row order.
            new: Their prefill.
            slab: Whether the model's cache can live in a slab (plain full-attention layers);
                when not, the batch must be empty and keeps the prefill's cache.
        """
        if not slab:
            assert not self.rows, "a cache that cannot be merged takes no newcomers"
            self.cache, self.last_pos, self.logits = new.cache, new.last_pos, new.logits
            self.rows = list(group)
            self._mask = None if not any(new.pads) and not any(new.holes) else new.mask
            return
        if not self.rows and isinstance(new.cache.layers[0], SlabLayer):
            self._adopt(group, new)  # prefilled in place: nothing to copy
            return
        old = len(self.rows)
        width = int(new.mask.shape[1])
        # Decoding steps still to come: each row writes at most one column per token it adds.
        ahead = max(j.max_new - len(j.out) for j in [*self.rows, *group])
        cols, end = self._columns, self._end
        rows_cap, cols_cap = self.slots
        plan = None
        if old + len(group) > rows_cap or end < width or end + ahead > cols_cap:
            plan = self._plan(old + len(group), width, ahead)
            cols, end = plan.columns, plan.end
        valid = self._valid
        assert valid is not None
        start = min(cols.start, end - width) if old else end - width
        # Columns newly in view that no row here wrote: the old rows' before the old start, the
        # newcomers' before their prompts. They are masked out, and zeroed: a masked column
        # still enters attention's arithmetic (weight 0), and 0 x NaN would be NaN.
        unwritten = [(slice(0, old), slice(start, cols.start))]
        unwritten.append((slice(old, old + len(group)), slice(start, end - width)))
        valid[:old, start : cols.start] = False
        cols.start = start
        rows = slice(old, old + len(group))
        place = slice(end - width, end)
        for index, theirs in enumerate(new.cache.layers):
            layer = self._move(index, plan, theirs.keys) if plan else self._layers[index]
            for who, where in unwritten:
                layer.slab_keys[who, :, where].zero_()
                layer.slab_values[who, :, where].zero_()
            layer.slab_keys[rows, :, place].copy_(theirs.keys)
            layer.slab_values[rows, :, place].copy_(theirs.values)
            # Its rows are in the slab: the prefill's copy goes now, layer by layer, so the
            # two never both hold the whole cache (the peak memory stays the slab's).
            theirs.keys = theirs.values = None
            if isinstance(theirs, SlabLayer):
                theirs.slab_keys = theirs.slab_values = layer.slab_keys.new_empty(0)
        if plan:
            self._layers = plan.layers
            self.cache = Cache(layers=list(plan.layers))
            self._columns = plan.columns
        valid[rows, start:end] = False
        valid[rows, place] = new.mask.bool()
        self._first += [end - width + pad for pad in new.pads]
        self._holes += new.holes
        if old:
            assert self.last_pos is not None
            assert self.logits is not None
            self.last_pos = torch.cat([self.last_pos, new.last_pos])
            self.logits = torch.cat([self.logits, new.logits])
        else:
            self.last_pos, self.logits = new.last_pos, new.logits
        self.rows.extend(group)

    def _adopt(self, group: list[Job], new: Prefilled) -> None:
        """Make the slab the newcomers were prefilled into (:meth:`start`) the batch's."""
        layers = list(new.cache.layers)
        rows, _, cols, _ = layers[0].slab_keys.shape
        width = int(new.mask.shape[1])
        self._layers, self.cache, self._columns = layers, new.cache, layers[0].columns
        self._valid = torch.zeros((rows, cols), dtype=torch.bool, device=new.mask.device)
        self._valid[:, :width] = new.mask.bool()
        self._first, self._holes = list(new.pads), list(new.holes)
        self.last_pos, self.logits, self.rows = new.last_pos, new.logits, list(group)

    def _plan(self, rows: int, width: int, ahead: int) -> _Plan:
        """A new slab's size for ``rows`` rows; its mask made, the live rows' moved into it.

        The live columns move to the left edge, with room for a newcomer ``width`` wide and
        ``ahead`` more steps. A batch that starts fresh gets an exact fit (one
        ``generate_batch`` never reallocates); a running batch that grows gets room to spare,
        within ``max_tokens``, so joins rarely reallocate. The layers are made one by one by
        :meth:`_move` as the newcomers are copied in.
        """
        old_rows = len(self.rows)
        cols, end = self._columns, self._end
        live = end - cols.start if old_rows else 0
        span = max(live, width)
        new_rows, new_cols = rows, span + ahead
        if old_rows:
            grown = (min(self.max_rows, max(rows, 2 * self.slots[0])), new_cols + new_cols // 2)
            if grown[0] * grown[1] <= self.max_tokens:
                new_rows, new_cols = grown
        # The old rows keep their right alignment: their last column lands at ``span``.
        shift = span - end
        device = self._valid.device if self._valid is not None else None
        valid = torch.zeros((new_rows, new_cols), dtype=torch.bool, device=device)
        if old_rows:
            assert self._valid is not None
            valid[:old_rows, cols.start + shift : span] = self._valid[:old_rows, cols.start : end]
            self._first = [f + shift for f in self._first]
        self._valid = valid
        return _Plan(new_rows, new_cols, shift, span, _Columns(span - live), [])

    def _move(self, index: int, plan: _Plan, like: torch.Tensor) -> SlabLayer:
        """Layer ``index`` of the planned slab, the live rows' keys and values moved into it."""
        shape = (plan.rows, like.shape[1], plan.cols, like.shape[3])
        # Left unwritten (its pages are touched only as columns are written, as a growing cache's
        # would be): every column is written, or zeroed by ``merge``, before it enters the view.
        keys, values = like.new_empty(shape), like.new_empty(shape)
        old_rows = len(self.rows)
        if old_rows:
            cols = self._columns
            mine = self._layers[index]
            src = slice(cols.start, mine.end)
            dst = slice(cols.start + plan.shift, mine.end + plan.shift)
            keys[:old_rows, :, dst].copy_(mine.slab_keys[:old_rows, :, src])
            values[:old_rows, :, dst].copy_(mine.slab_values[:old_rows, :, src])
            # The old layer's buffers go as soon as they are moved.
            mine.slab_keys = mine.slab_values = like.new_zeros(0)
        layer = SlabLayer(plan.columns, keys, values, plan.end)
        plan.layers.append(layer)
        return layer

    # -- a step -------------------------------------------------------------------------------

    def next_inputs(
        self, keep: list[int], rows: int, tokens: torch.Tensor
    ) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor]:
        """Retire the rows not in ``keep``; the next forward's attention mask, positions and ids.

        Args:
            keep: The rows (of the ``rows`` that computed the last step) that stay, ascending.
            rows: How many rows computed the last step (``self.rows`` still lists them).
            tokens: Each of those rows' next input token, on the device.

        Returns:
            The attention mask (None: no padding; in the form the attention takes, see
            :meth:`_mask_of`, with a slab; 2-D without),
            each kept row's position for its new token ``(rows, 1)``, and the tokens ``(rows,
            1)``. ``self.rows`` lists the kept rows, in their new order, afterwards.
        """
        assert self.last_pos is not None
        last_pos = self.last_pos
        if len(keep) < rows:
            jobs = self.rows
            # The kept rows from here on: a failure below fails these, not the rows that left.
            self.rows = [jobs[r] for r in keep]
            order = self._retire(keep, rows)
            self.rows = [jobs[r] for r in order]
            index = _indices(order, tokens.device)
            last_pos, tokens = last_pos[index], tokens[index]
        last_pos = last_pos + 1
        self.last_pos = last_pos
        count = len(keep)
        if not self._layers:
            if self._mask is not None:
                self._mask = torch.cat([self._mask, self._mask.new_ones((count, 1))], dim=1)
            return self._mask, last_pos, tokens.reshape(-1, 1)
        cols, end = self._columns, self._end
        valid = self._valid
        assert valid is not None
        valid[:count, end] = True
        if not any(self._holes) and all(f == cols.start for f in self._first):
            return None, last_pos, tokens.reshape(-1, 1)
        return (
            self._mask_of(valid[:count, cols.start : end + 1]),
            last_pos,
            tokens.reshape(-1, 1),
        )

    def _mask_of(self, valid: torch.Tensor) -> torch.Tensor:
        """The attention mask of one decoding step, in the form the attention takes it.

        SDPA and eager attention get it ready (4-D, one query): transformers would otherwise
        rebuild it from a 2-D mask at every step. Others (flash attention, which unpads) get the
        2-D mask transformers expects.
        """
        if self.attention in PACKABLE:
            dtype = self._layers[0].slab_keys.dtype
            return attention_mask(valid[:, None, :], self.attention, dtype)
        return valid.long()

    def _retire(self, keep: list[int], rows: int) -> list[int]:
        """Drop the rows not in ``keep``; the kept rows' old indices in their new order."""
        if not self._layers:
            assert self.last_pos is not None
            index = _indices(keep, self.last_pos.device)
            self.cache.batch_select_indices(index)
            if self._mask is not None:
                self._mask = self._mask[index]
            return keep
        count = len(keep)
        # Slots below ``count`` left empty are taken by kept rows from above it.
        gaps = sorted(set(range(count)) - set(keep))
        movers = [r for r in keep if r >= count]
        order = list(range(count))
        for gap, mover in zip(gaps, movers, strict=True):
            order[gap] = mover
        if gaps:
            live = slice(self._columns.start, self._end)
            assert self._valid is not None
            dst = _indices(gaps, self._valid.device)
            src = _indices(movers, self._valid.device)
            for layer in self._layers:
                layer.slab_keys[dst, :, live] = layer.slab_keys[src, :, live]
                layer.slab_values[dst, :, live] = layer.slab_values[src, :, live]
            assert self._valid is not None
            self._valid[dst, live] = self._valid[src, live]
        self._first = [self._first[r] for r in order]
        self._holes = [self._holes[r] for r in order]
        # Columns before every kept row's first token leave the view (no copy).
        self._columns.start = min(self._first)
        return order


# Attention implementations that take a ready 4-D mask: a packed prefill needs one.
PACKABLE = ("sdpa", "eager")


def attention_mask(allowed: torch.Tensor, attention: str, dtype: torch.dtype) -> torch.Tensor:
    """A 4-D attention mask ``(rows, 1, queries, keys)`` from ``allowed`` ``(rows, queries, keys)``.

    SDPA takes it as booleans (True: attend); eager attention adds it to the scores (0 or the
    dtype's minimum). Handed to transformers ready, it is used as it is.
    """
    if attention == "sdpa":
        return allowed[:, None]
    blocked = torch.zeros(allowed.shape, dtype=dtype, device=allowed.device)
    blocked.masked_fill_(~allowed, torch.finfo(dtype).min)
    return blocked[:, None]


def packed_inputs(
    tails: list[list[int]],
    first: int,
    prefix: int,
    end: int,
    attention: str,
    dtype: torch.dtype,
    device: torch.device,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, Packing]:
    """The inputs of one packed prefill: some rows' own tokens in one sequence, no padding.

    A batch's prompts differ in length; prefilled as a padded batch, each row computes up to the
    longest one's tokens. Packed, the forward computes each real token once: each attends to
    the shared ``prefix`` (already in the slab) and to its own row's earlier tokens, and its key
    and value go straight to its row's slot, right-aligned at ``end`` like a padded prefill's.

    Args:
        tails: The rows' own tokens (after the prefix), rows ``first``, ``first + 1``, ...
        first: The slot of the first of these rows.
        prefix: Columns of the prefix every row already holds.
        end: The column after every row's last token, the batch's longest row's.
        attention: The model's attention implementation (the mask's form).
        dtype: The KV cache's dtype (an additive mask's).
        device: Where the model runs.

    Returns:
        The token ids ``(1, tokens)``, their positions ``(1, tokens)``, the attention mask
        ``(1, 1, tokens, prefix + tokens)``, each row's last token's index in the sequence
        (whose logits start its answer), and the :class:`Packing` for the slab's layers.
    """
    lengths = torch.tensor([len(t) for t in tails])
    total = int(lengths.sum())
    rows = torch.repeat_interleave(torch.arange(len(tails)), lengths)
    ends = lengths.cumsum(0)
    # Each token's offset within its row.
    offset = torch.arange(total) - (ends - lengths)[rows]
    columns = end - lengths[rows] + offset
    index = torch.arange(total)
    own = (rows[:, None] == rows[None, :]) & (index[None, :] <= index[:, None])
    allowed = torch.cat([torch.ones((total, prefix), dtype=torch.bool), own], dim=1)
    ids = torch.tensor([[token for tail in tails for token in tail]], dtype=torch.long)
    slots = (first + rows).to(device)
    packing = Packing(slots, columns.to(device), prefix, end, first, first + len(tails))
    return (
        ids.to(device),
        (prefix + offset).unsqueeze(0).to(device),
        attention_mask(allowed[None].to(device), attention, dtype),
        (ends - 1).to(device),
        packing,
    )


# The cost of a prefill forward, in the time of one token's matrix products (measured on a
# CPU, one thread, SmolLM2-135M in float32): reading the weights once costs about 48 tokens,
# one query attending to one key about 1/3000 of a token.
_WEIGHTS_COST = 48.0
_KEY_COST = 1 / 3000
# A packed prefill's sequences hold at most this many tokens: each pack reads the weights again
# while its attention grows with the square of its length (all of it is computed, most of it
# masked); about sqrt(48 x 3000) tokens balances the two.
PACK_TOKENS = 384


def packs(lengths: list[int], budget: int = PACK_TOKENS) -> list[slice]:
    """Consecutive rows grouped into packs of at most ``budget`` tokens (a longer row: alone).

    A packed forward's attention spans all of its tokens (the mask keeps each to its own row),
    so its cost grows with the square of the pack's length: packs are kept short.
    """
    out: list[slice] = []
    start, size = 0, 0
    for row, n in enumerate(lengths):
        if size and size + n > budget:
            out.append(slice(start, row))
            start, size = row, 0
        size += n
    out.append(slice(start, len(lengths)))
    return out


def packing_pays(tails: list[int], prefix: int) -> bool:
    """Whether rows of ``tails`` tokens after a shared ``prefix`` prefill faster packed.

    Padded, every row computes the longest row's tokens in one forward; packed, each real token
    once, in :func:`packs` that each read the weights again and attend across the whole pack.
    """
    padded = _prefill_cost([max(tails)] * len(tails), prefix)
    packed = sum(_prefill_cost([sum(tails[pack])], prefix) for pack in packs(tails))
    return packed < padded


def _prefill_cost(rows: list[int], prefix: int) -> float:
    """One prefill forward's cost over ``rows`` of that many tokens each, after ``prefix``."""
    tokens = sum(rows)
    keys = prefix + max(rows)
    return _WEIGHTS_COST + tokens + tokens * keys * _KEY_COST


def _indices(values: list[int], device: torch.device) -> torch.Tensor:
    """Row indices on the device, without making the host wait for the device.

    A copy from ordinary host memory to a GPU blocks the host until the GPU reaches it; from
    pinned memory, asynchronously, it is queued behind the step like any kernel.
    """
    if device.type != "cuda":
        return torch.tensor(values, device=device)
    return torch.tensor(values, pin_memory=True).to(device, non_blocking=True)
