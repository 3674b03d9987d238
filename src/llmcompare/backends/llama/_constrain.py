"""Constrained decoding for the ``llama`` backend: a JSON schema as a per-row token mask.

llguidance (the grammar engine behind OpenAI's own structured outputs) compiles the request's
normalised schema once per engine and schema; each constrained row of a batch gets its own
matcher, as the engine's per-row ``constraint`` hook (see ``_job.Job``). Before a step
samples, a constrained row's logits lose the tokens its grammar does not allow next; after
sampling, its matcher advances by the chosen token; the row is done when the grammar accepts and
allows nothing more. Rows without a schema have no constraint, and cost nothing.

Imports torch and llguidance; loaded only when a request with ``response_format`` reaches the
engine.
"""

from __future__ import annotations

import threading
from collections.abc import Collection
from typing import Any

import torch

from llmcompare.errors import BackendError, ConfigurationError
from llmcompare.schema import ResponseFormat

__all__ = ["Grammars", "RowConstraint", "check"]

INSTALL = 'pip install "llmcompare[structured]"'

# One JSON layout for every row: ", " and ": " as json.dumps writes them, and no free
# whitespace, which a small model could otherwise repeat until max_tokens.
_LAYOUT = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}


def _import(model_id: str) -> Any:
    try:
        import llguidance
        import llguidance.hf
    except ImportError as exc:
        raise ConfigurationError(
            f"{model_id}: response_format on the llama backend needs llguidance: {INSTALL} ({exc})"
        ) from exc
    return llguidance


def _one_line(text: str) -> str:
    # llguidance's messages span lines (a regex error draws a caret under the pattern).
    return " ".join(text.split())


def check(model_id: str, fmt: ResponseFormat, grammars: Grammars | None) -> None:
    """Refuse, before anything runs, a format this backend cannot enforce.

    With the engine loaded (``grammars`` given) the schema is compiled for its tokenizer, and
    kept: its rows then compile nothing. Before the weights load, llguidance checks the grammar
    alone, which needs no tokenizer, so a check never loads a model.

    Args:
        model_id: For the message.
        fmt: The request's normalised format.
        grammars: The loaded engine's compiler, or None.

    Raises:
        ConfigurationError: When llguidance is missing (the message gives the install command)
            or cannot compile the schema.
    """
    llg = _import(model_id)
    if grammars is not None:
        try:
            grammars.template(fmt)
        except BackendError as exc:
            raise ConfigurationError(str(exc)) from None
        return
    grammar = llg.LLMatcher.grammar_from_json_schema(fmt.json_schema, defaults=_LAYOUT)
    failed, messages = llg.LLMatcher.validate_grammar_with_warnings(grammar)
    if failed:
        raise ConfigurationError(
            f"{model_id}: llguidance cannot compile the schema {fmt.name!r}: "
            f"{_one_line(messages[0] if messages else 'unknown error')}"
        )


class RowConstraint:
    """One row's grammar state: what it may generate next, advanced token by token.

    It is the engine's per-row ``constraint`` hook: ``mask``, ``advance`` and ``done``.

    Args:
        matcher: A fresh llguidance ``LLMatcher`` for the row's schema.
        grammars: The compiler it came from (mask width and bit layout).
    """

    __slots__ = ("_bitmask", "_grammars", "matcher")

    def __init__(self, matcher: Any, grammars: Grammars) -> None:
        self.matcher = matcher
        self._grammars = grammars
        # int32 words of 32 token bits each, as llguidance writes them; contiguous, on the CPU.
        self._bitmask = torch.empty(grammars.words, dtype=torch.int32)

    def mask(self, logits: torch.Tensor) -> torch.Tensor:
        """Set to -inf, in place, the row's logits its grammar forbids next; return them."""
        bitmask = self._bitmask
        self.matcher.unsafe_compute_mask_ptr(bitmask.data_ptr(), bitmask.numel() * 4)
        # Unpacked with plain tensor ops rather than llguidance.torch's apply helper: importing
        # that module torch.compile's a kernel (all of inductor loads), and compiling costs
        # seconds and a C++ compiler on a CPU.
        bits = ((bitmask.unsqueeze(-1) >> self._grammars.shifts) & 1).reshape(-1)
        width = logits.shape[-1]
        if bits.shape[0] < width:  # logits wider than the mask: the extra ids are never allowed
            bits = torch.nn.functional.pad(bits, (0, width - bits.shape[0]))
        allowed = bits[:width].to(device=logits.device, dtype=torch.bool)
        return logits.masked_fill_(~allowed, float("-inf"))

    def advance(self, token: int) -> None:
        """Consume the sampled token.

        Raises:
            BackendError: When the grammar refuses it, which only a bug can cause: the token
                was chosen under this row's mask.
        """
        if not self.matcher.consume_token(token):
            raise BackendError(
                f"the JSON grammar refused token {token}: {self.matcher.get_error()}",
                model_id=self._grammars.model_id,
            )

    @property
    def done(self) -> bool:
        """True when the answer is complete: the grammar accepts it and allows nothing more."""
        return bool(self.matcher.is_stopped())


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
        # The mask covers the logits' width and the tokenizer's vocabulary, whichever is wider.
        self.n_vocab = max(vocab_size, len(tokenizer))
        self.words = (self.n_vocab + 31) // 32
        self.shifts = torch.arange(32, dtype=torch.int32)

    def _lltokenizer(self, llg: Any) -> Any:
        if self._tokenizer is None:
            # Ids the tokenizer lacks (padding of the logits) are never allowed.
            try:
                self._tokenizer = llg.hf.from_tokenizer(
                    self._hf, n_vocab=self.n_vocab, eos_token=self._eos or None
                )
            except ValueError as exc:  # a slow (Python) tokenizer: llguidance needs a fast one
                raise BackendError(
                    f"response_format needs a fast tokenizer: {exc}", model_id=self.model_id
                ) from exc
        return self._tokenizer

    def template(self, fmt: ResponseFormat) -> Any:
        """The matcher compiled for ``fmt`` and this tokenizer, once per schema.

        Raises:
            ConfigurationError: When llguidance is not installed (the message gives the command).
            BackendError: When llguidance cannot compile the schema.
        """
        llg = _import(self.model_id)
        key = fmt.canonical()
        with self._lock:
            template = self._templates.get(key)
            if template is None:
                grammar = llg.LLMatcher.grammar_from_json_schema(fmt.json_schema, defaults=_LAYOUT)
                template = llg.LLMatcher(self._lltokenizer(llg), grammar, log_level=0)
                if template.is_error():
                    raise BackendError(
                        f"llguidance cannot compile the schema {fmt.name!r}: "
                        f"{_one_line(template.get_error())}",
                        model_id=self.model_id,
                    )
                self._templates[key] = template
            return template

    def row(self, fmt: ResponseFormat) -> RowConstraint:
        """A fresh constraint for one row answering ``fmt``.

        Raises:
            ConfigurationError: When llguidance is not installed (the message gives the command).
            BackendError: When llguidance cannot compile the schema.
        """
        # A copy of the compiled template: no grammar compilation per row.
        return RowConstraint(self.template(fmt).deep_copy(), self)
