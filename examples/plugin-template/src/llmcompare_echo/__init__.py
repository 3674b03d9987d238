"""A third-party llmcompare backend plugin: rule-based "echo" models.

Copy this package to start your own backend. It shows every part a real backend needs:

- an options model (pydantic, ``extra="forbid"``, so a misspelled option is an error),
- a model class built on :class:`llmcompare.ModelBase` that implements ``_generate`` and real
  streaming through ``_stream`` (the base class derives async calls and batching),
- exact usage, honoured settings (``max_tokens``, ``stop``) and a classified error,
- the ``register_models`` hook that llmcompare finds through the ``llmcompare`` entry point
  declared in ``pyproject.toml``.

The models answer the last user message with a fixed rule, one per variant:

- ``echo:repeat`` (the default) repeats it,
- ``echo:reverse`` reverses the order of its words,
- ``echo:shout`` repeats it in capitals.

A token is a whitespace-separated word, so usage is exact and easy to check. Sampling settings
(``temperature``, ``top_p``, ``seed``) do not apply to a rule and are ignored.

Example:
    >>> import llmcompare
    >>> llmcompare.get_model("echo:reverse").generate("one two three").text
    'three two one'
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from llmcompare import (
    BackendError,
    Chunk,
    Completion,
    ConfigurationError,
    FinishReason,
    ModelBase,
    ModelInfo,
    Request,
    Usage,
)
from llmcompare.plugins import Register, hookimpl
from pydantic import BaseModel, ConfigDict, Field

__all__ = ["DEFAULT_VARIANT", "TRANSFORMS", "EchoModel", "EchoOptions", "register_models"]


# --8<-- [start:options]
class EchoOptions(BaseModel):
    """Options of ``llmcompare.get_model("echo[:variant]", **options)``.

    Attributes:
        prefix: Text put before every answer; its words count as output tokens.
        context_window: The most prompt words the model accepts; a longer prompt fails with a
            :class:`~llmcompare.BackendError` that is not retryable.
        words_per_chunk: How many words each streamed chunk carries.
    """

    # extra="forbid": get_model("echo", prefx="...") must fail and name "prefx", not be ignored.
    model_config = ConfigDict(extra="forbid", frozen=True)

    prefix: str = ""
    context_window: int = Field(default=2048, gt=0)
    words_per_chunk: int = Field(default=1, ge=1)


# --8<-- [end:options]


def _reverse(text: str) -> str:
    return " ".join(reversed(text.split()))


TRANSFORMS: dict[str, Callable[[str], str]] = {
    "repeat": lambda text: text,
    "reverse": _reverse,
    "shout": str.upper,
}
"""The rule behind each variant: the last user message in, the answer out."""

DEFAULT_VARIANT = "repeat"
"""The variant ``get_model("echo")`` builds."""


# --8<-- [start:model]
class EchoModel(ModelBase):
    """A rule-based model: answers the last user message with the rule of its variant.

    Build it with ``llmcompare.get_model("echo:<variant>", **options)``.

    Args:
        variant: One of :data:`TRANSFORMS` (``"repeat"``, ``"reverse"``, ``"shout"``).
        options: Validated options; the defaults when omitted.

    Raises:
        ConfigurationError: When the variant is unknown; the message lists the known ones.
    """

    def __init__(self, variant: str = DEFAULT_VARIANT, options: EchoOptions | None = None) -> None:
        if variant not in TRANSFORMS:
            known = ", ".join(sorted(TRANSFORMS))
            raise ConfigurationError(f"echo: unknown variant {variant!r}; use one of: {known}")
        self._options = options or EchoOptions()
        self._transform = TRANSFORMS[variant]
        # ModelInfo gives the model its id, "echo:<variant>", and the facts listings show.
        super().__init__(
            ModelInfo(
                provider="echo",
                name=variant,
                open_weights=True,
                context_window=self._options.context_window,
                description=f"rule-based echo model ({variant})",
            )
        )

    def _answer(self, request: Request) -> tuple[list[str], FinishReason, Usage]:
        """Apply the rule and the request's settings; shared by the plain and streamed calls."""
        input_words = sum(len(m.content.split()) for m in request.messages)
        if input_words > self._options.context_window:
            # A classified error: retrying the same prompt cannot help, so retryable=False tells
            # llmcompare's retry helper not to try again.
            raise BackendError(
                f"the prompt has {input_words} words, more than the context window of "
                f"{self._options.context_window}; shorten it or raise context_window",
                model_id=self.id,
                retryable=False,
            )
        users = [m.content for m in request.messages if m.role == "user"]
        # A conversation without a user turn (only a system prompt, say) answers its last turn.
        prompt = users[-1] if users else request.messages[-1].content
        text = " ".join(filter(None, [self._options.prefix, self._transform(prompt)]))
        finish: FinishReason = "stop"
        # Stop strings: cut the text before the first one found, as real backends do.
        cuts = [i for i in (text.find(s) for s in request.stop) if i >= 0]
        if cuts:
            text = text[: min(cuts)]
        words = text.split()
        # max_tokens counts tokens, and a token here is a word.
        if request.max_tokens is not None and len(words) > request.max_tokens:
            words, finish = words[: request.max_tokens], "length"
        usage = Usage(input_tokens=input_words, output_tokens=len(words))
        return words, finish, usage

    def _generate(self, request: Request) -> Completion:
        words, finish, usage = self._answer(request)
        # latency_s is left at 0: the base class measures it around this call.
        return Completion(text=" ".join(words), finish_reason=finish, usage=usage, model=self.id)

    def _stream(self, request: Request) -> Iterator[Chunk]:
        words, finish, usage = self._answer(request)
        step = self._options.words_per_chunk
        for i in range(0, len(words), step):
            # The joined chunks must equal the non-streamed text: separators go between words.
            yield Chunk(text=(" " if i else "") + " ".join(words[i : i + step]))
        # The last chunk carries finish_reason and usage; Stream.completion is built from it.
        yield Chunk(finish_reason=finish, usage=usage)


# --8<-- [end:model]


# --8<-- [start:hook]
def _make(variant: str | None, options: EchoOptions) -> EchoModel:
    # Factories must be cheap: llmcompare may build models just to list or validate them.
    return EchoModel(variant or DEFAULT_VARIANT, options)


@hookimpl
def register_models(register: Register) -> None:
    """Register the ``echo`` model family (the llmcompare plugin hook)."""
    register(
        "echo",
        _make,
        options=EchoOptions,
        aliases=("parrot",),
        description="rule-based echo models: echo:repeat, echo:reverse, echo:shout",
    )


# --8<-- [end:hook]
