"""Constrained decoding for the ``llama`` backend: a JSON schema as a per-row token mask.

llguidance (the grammar engine behind OpenAI's own structured outputs) compiles the request's
normalised schema once per engine and schema; each constrained row of a batch gets its own
matcher. Before a step samples, every constrained row's logits lose the tokens its grammar
does not allow next; after sampling, its matcher advances by the chosen token. Rows without a
schema are never touched, and a batch with none pays nothing but one check per step.

Imports torch and llguidance; loaded only when a request with ``response_format`` reaches the
engine.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Sequence
from typing import Any, Protocol

import torch

from llmcompare.errors import BackendError, ConfigurationError
from llmcompare.schema import ResponseFormat

__all__ = ["Constrained", "Grammars", "RowConstraint", "mask_logits"]

INSTALL = 'pip install "llmcompare[structured]"'

# One JSON layout for every row: ", " and ": " as json.dumps writes them, and no free
# whitespace, which a small model could otherwise repeat until max_tokens.
_LAYOUT = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}


def _import() -> Any:
    try:
        import llguidance
        import llguidance.hf
    except ImportError as exc:
        raise ConfigurationError(
            f"response_format on the llama backend needs llguidance: {INSTALL} ({exc})"
        ) from exc
    return llguidance


class RowConstraint:
    """One row's grammar state: what it may generate next, advanced token by token.

    Args:
        matcher: A fresh llguidance ``LLMatcher`` for the row's schema.
        model_id: For errors.
    """

    __slots__ = ("matcher", "model_id")

    def __init__(self, matcher: Any, model_id: str) -> None:
        self.matcher = matcher
        self.model_id = model_id

    def advance(self, token: int) -> None:
        """Consume the sampled token.

        Raises:
            BackendError: When the grammar refuses it, which only a bug can cause: the token
                was chosen under this row's mask.
        """
        if not self.matcher.consume_token(token):
            raise BackendError(
                f"the JSON grammar refused token {token}: {self.matcher.get_error()}",
                model_id=self.model_id,
            )

    @property
    def finished(self) -> bool:
        """True when the answer is complete: the grammar accepts it and allows nothing more."""
        return bool(self.matcher.is_stopped())


class Constrained(Protocol):
    """What :func:`mask_logits` needs of a row: its constraint, or None."""

    constraint: RowConstraint | None


class Grammars:
    """An engine's grammar compiler: the llguidance tokenizer once, each schema once.

    Args:
        model_id: For errors.
        tokenizer: The model's Hugging Face (fast) tokenizer.
        vocab_size: The width of the model's logits, which may exceed the tokenizer's
            vocabulary (embedding matrices are often padded to a multiple of 64 or 128).
        eos_ids: Every token id that ends an answer; the grammar allows them once complete.
    """

    def __init__(
        self, model_id: str, tokenizer: Any, vocab_size: int, eos_ids: Collection[int]
    ) -> None:
        self.model_id = model_id
        self._hf = tokenizer
        self._eos = sorted(eos_ids)
        self.vocab_size = vocab_size
        self._lock = threading.Lock()
        self._tokenizer: Any = None
        self._templates: dict[str, Any] = {}
        self._bitmask: torch.Tensor | None = None
        self._executor: Any = None
        self._shifts = torch.arange(32, dtype=torch.int32)

    def _lltokenizer(self, llg: Any) -> Any:
        if self._tokenizer is None:
            # The mask is as wide as the logits: ids the tokenizer lacks are never allowed.
            n_vocab = max(self.vocab_size, len(self._hf))
            try:
                self._tokenizer = llg.hf.from_tokenizer(
                    self._hf, n_vocab=n_vocab, eos_token=self._eos or None
                )
            except ValueError as exc:  # a slow (Python) tokenizer: llguidance needs a fast one
                raise BackendError(
                    f"response_format needs a fast tokenizer: {exc}", model_id=self.model_id
                ) from exc
        return self._tokenizer

    def row(self, fmt: ResponseFormat) -> RowConstraint:
        """A fresh constraint for one row answering ``fmt``.

        Raises:
            ConfigurationError: When llguidance is not installed (the message gives the command).
            BackendError: When llguidance cannot compile the schema.
        """
        llg = _import()
        key = fmt.canonical()
        with self._lock:
            template = self._templates.get(key)
            if template is None:
                grammar = llg.LLMatcher.grammar_from_json_schema(fmt.json_schema, defaults=_LAYOUT)
                template = llg.LLMatcher(self._lltokenizer(llg), grammar, log_level=0)
                if template.is_error():
                    raise BackendError(
                        f"llguidance cannot compile the schema {fmt.name!r}: "
                        f"{template.get_error()}",
                        model_id=self.model_id,
                    )
                self._templates[key] = template
            # A copy of the compiled template: no grammar compilation per row.
            return RowConstraint(template.deep_copy(), self.model_id)

    def mask(self, logits: torch.Tensor, rows: Sequence[tuple[int, RowConstraint]]) -> None:
        """Set to -inf, in place, the logits each constrained row's grammar forbids next."""
        import llguidance

        words = (max(self.vocab_size, len(self._hf)) + 31) // 32
        bitmask = self._bitmask
        if bitmask is None or bitmask.shape[0] < len(rows) or bitmask.shape[1] != words:
            # int32 words of 32 token bits each, as llguidance writes them; contiguous, on the CPU.
            bitmask = self._bitmask = torch.full((max(len(rows), 16), words), -1, dtype=torch.int32)
        if self._executor is None:
            self._executor = llguidance.LLExecutor()
        # One call fills every row's mask, in parallel and without the GIL. (Not through
        # llguidance.torch: importing it torch.compile's a kernel, which loads all of inductor.)
        self._executor.unsafe_compute_mask_ptr(
            [(constraint.matcher, slot) for slot, (_, constraint) in enumerate(rows)],
            bitmask.data_ptr(),
            words * 4,
            bitmask.shape[0],
        )
        # Unpacked with plain tensor ops rather than llguidance's torch.compile'd apply helper:
        # compiling costs seconds (and a C++ compiler) on a CPU.
        width = logits.shape[-1]
        packed = bitmask[: len(rows)]
        bits = ((packed.unsqueeze(-1) >> self._shifts) & 1).reshape(len(rows), -1)
        if bits.shape[1] < width:
            bits = torch.nn.functional.pad(bits, (0, width - bits.shape[1]))
        allowed = bits[:, :width].to(device=logits.device, dtype=torch.bool)
        index = torch.tensor([r for r, _ in rows], device=logits.device)
        logits[index] = logits[index].masked_fill(~allowed, float("-inf"))


def mask_logits(
    grammars: Grammars | None, logits: torch.Tensor, jobs: Sequence[Constrained]
) -> None:
    """Mask the logits of a batch's constrained rows; unconstrained rows are left alone.

    Args:
        grammars: The engine's compiler (None until a constrained request arrives).
        logits: ``(rows, vocab)`` next-token logits of the batch.
        jobs: The batch's rows, in logits order; each has a ``constraint`` (or None).
    """
    if grammars is None:
        return
    rows = [(r, job.constraint) for r, job in enumerate(jobs) if job.constraint is not None]
    if rows:
        grammars.mask(logits, rows)
