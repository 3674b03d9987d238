"""Value types shared by every backend: messages, requests, completions, usage and results.

All of them are pydantic v2 models that are frozen and refuse unknown fields, so a typo is an
error at the boundary rather than a silently ignored setting, and every value round-trips through
JSON (``model_dump_json`` / ``model_validate_json``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, TypeAlias, cast

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from typing_extensions import Self, TypedDict

from llmcompare.schema import ResponseFormat, response_format

__all__ = [
    "Chunk",
    "Completion",
    "EnergyMethod",
    "FinishReason",
    "GenerationSettings",
    "Message",
    "ModelInfo",
    "Prompt",
    "Request",
    "Result",
    "Role",
    "Sent",
    "Settings",
    "ShelfLife",
    "Usage",
]

Role: TypeAlias = Literal["system", "user", "assistant"]
"""Who speaks a message."""

FinishReason: TypeAlias = Literal["stop", "length", "content_filter", "error"]
"""Why generation ended: natural end or stop string, token limit, provider filter, or failure."""


def _valid_text(text: str) -> tuple[str, int]:
    r"""Text that encodes as UTF-8, and how many characters had to be replaced to get it.

    A JSON escape can carry half of a character (``"\ud83d"``): a gateway that splits an
    emoji's escape across two events leaves two lone UTF-16 surrogates in a Python string, and
    a lone one when the other half never comes. Adjacent halves are joined into their character;
    a half alone becomes U+FFFD. Anything else is kept as it is.
    """
    if text.isascii():
        return text, 0
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        pass
    else:
        return text, 0
    # UTF-16 with the halves written as they are: a high half followed by a low one decodes
    # as the pair's character, and each half alone decodes as U+FFFD.
    fixed = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return fixed, fixed.count("\ufffd") - text.count("\ufffd")


def _valid_texts(data: Any) -> Any:
    """A model's input with ``text`` and ``refusal`` made valid, replacements counted."""
    if type(data) is not dict:
        return data
    text = data.get("text")
    # The common case first, kept cheap: this runs for every chunk of every stream.
    if (text is None or (type(text) is str and text.isascii())) and data.get("refusal") is None:
        return data
    fixed: dict[str, Any] | None = None
    replaced = 0
    for name in ("text", "refusal"):
        value = data.get(name)
        if isinstance(value, str) and not value.isascii():
            valid, n = _valid_text(value)
            if valid is not value:
                fixed = fixed if fixed is not None else dict(data)
                fixed[name] = valid
                # The refusal is the text too (see Completion.refusal): count its halves once.
                if name == "text" or data.get("text") != value:
                    replaced += n
    if fixed is None:
        return data
    fixed["replaced_chars"] = int(fixed.get("replaced_chars") or 0) + replaced
    return fixed


# defer_build: each class builds its validator on first use instead of at import, which would
# otherwise be most of the time of `import llmcompare` (and load pydantic's plugin machinery).
_FROZEN = ConfigDict(frozen=True, extra="forbid", defer_build=True)


class Message(BaseModel):
    """One turn of a conversation.

    Attributes:
        role: ``"system"``, ``"user"`` or ``"assistant"``.
        content: The text of the turn.
    """

    model_config = _FROZEN

    role: Role
    content: str

    @field_validator("content")
    @classmethod
    def _valid_content(cls, value: str) -> str:
        # A prompt is input: the halves of a character are joined, but half a character alone
        # is refused before anything is sent (it cannot be written as UTF-8, nor keyed).
        valid, replaced = _valid_text(value)
        if replaced:
            raise ValueError(
                "holds half of a character (a lone UTF-16 surrogate, as a JSON escape such as "
                "\\ud83d cut from its other half leaves): fix the text"
            )
        return valid

    @classmethod
    def system(cls, content: str) -> Message:
        """Build a system message."""
        return cls(role="system", content=content)

    @classmethod
    def user(cls, content: str) -> Message:
        """Build a user message."""
        return cls(role="user", content=content)

    @classmethod
    def assistant(cls, content: str) -> Message:
        """Build an assistant message."""
        return cls(role="assistant", content=content)


class Settings(TypedDict, total=False):
    """Generation settings accepted as keyword arguments by every ``generate``-like call.

    Each key has the meaning of the :class:`Request` field of the same name.
    """

    max_tokens: int | None
    temperature: float | None
    top_p: float | None
    stop: Sequence[str]
    seed: int | None
    response_format: type[BaseModel] | dict[str, Any] | ResponseFormat | None


class GenerationSettings(BaseModel):
    """The generation settings alone, validated: what a config file or a request carries.

    Attributes:
        max_tokens: Upper bound on generated tokens.
        temperature: Sampling temperature in [0, 2]; 0 means greedy decoding.
        top_p: Nucleus sampling mass in (0, 1].
        stop: Strings that end generation; the text is cut before the first one found.
        seed: Seed for reproducible sampling where the backend supports it.
        response_format: Structured output: a pydantic model class or a JSON schema dict, kept
            as a :class:`~llmcompare.schema.ResponseFormat` (the schema normalised to the strict
            subset both backends enforce). The answer's ``parsed`` then holds the validated
            value; see :mod:`llmcompare.schema`.
    """

    model_config = _FROZEN

    # strict: a count is an int; True (a YAML "yes"), "5" or 5.0 is a mistake, not a count.
    max_tokens: Annotated[int, Field(gt=0, strict=True)] | None = None
    temperature: Annotated[float, Field(ge=0.0, le=2.0)] | None = None
    top_p: Annotated[float, Field(gt=0.0, le=1.0)] | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None
    response_format: ResponseFormat | None = None

    @field_validator("response_format", mode="before")
    @classmethod
    def _response_format(cls, value: Any) -> Any:
        # A schema outside the strict subset raises SchemaError (not a ValueError): the one-line
        # message naming the keyword reaches the caller as it is, before anything is sent.
        return None if value is None else response_format(value)

    @field_validator("stop", mode="before")
    @classmethod
    def _stop_as_tuple(cls, value: Any) -> Any:
        # A single string is a common slip; treat it as one stop string, not its characters.
        return (value,) if isinstance(value, str) else value

    @field_validator("stop")
    @classmethod
    def _stop_not_empty(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(s == "" for s in value):
            raise ValueError("stop strings must not be empty")
        return value

    def as_settings(self) -> Settings:
        """The settings given (only those), as keyword arguments for ``compare``."""
        # Field values, not a dump: a response_format keeps the pydantic class it came from.
        return cast("Settings", {k: getattr(self, k) for k in self.model_fields_set})


class Request(GenerationSettings):
    """A conversation plus the settings to generate the next assistant turn with.

    ``None`` for a setting means "the backend's default". Build one from any accepted prompt form
    with :meth:`Request.of`.

    Attributes:
        messages: The conversation, at least one message.
        max_tokens: Upper bound on generated tokens.
        temperature: Sampling temperature in [0, 2]; 0 means greedy decoding.
        top_p: Nucleus sampling mass in (0, 1].
        stop: Strings that end generation; the text is cut before the first one found.
        seed: Seed for reproducible sampling where the backend supports it.
        response_format: Structured output (see :class:`GenerationSettings`).
    """

    model_config = _FROZEN

    messages: Annotated[tuple[Message, ...], Field(min_length=1)]

    @classmethod
    def of(cls, prompt: Prompt, /, **settings: Any) -> Request:
        """Normalise any accepted prompt form plus keyword settings into one request.

        Args:
            prompt: A plain string (one user message), a sequence of :class:`Message` (or dicts
                with ``role`` and ``content``), or a :class:`Request`.
            **settings: Settings (see :class:`Settings`); they override those of a given request.

        Returns:
            The validated request.

        Raises:
            pydantic.ValidationError: When the prompt or a setting is invalid; the error names
                the field.
        """
        if isinstance(prompt, Request):
            if not settings:
                return prompt
            # Field values, not a dump: a response_format keeps the pydantic class it came from.
            fields = {k: getattr(prompt, k) for k in type(prompt).model_fields}
            return cls.model_validate({**fields, **settings})
        if isinstance(prompt, str):
            messages: Any = ({"role": "user", "content": prompt},)
        elif isinstance(prompt, (bytes, bytearray)):  # type: ignore[unreachable]
            # bytes are a Sequence too, and would otherwise become a list of ints.
            raise TypeError("prompt must be a str, a sequence of messages or a Request")
        else:
            messages = tuple(prompt)
        return cls.model_validate({"messages": messages, **settings})


Prompt: TypeAlias = str | Sequence[Message] | Request
"""Anything a model call accepts as its prompt; see :meth:`Request.of`."""


class Usage(BaseModel):
    """Token counts of one call, or a sum of calls.

    The buckets are inclusive, as providers report them: ``cache_read_tokens`` and
    ``cache_write_tokens`` are counted inside ``input_tokens`` and ``reasoning_tokens`` inside
    ``output_tokens``.

    Attributes:
        input_tokens: Prompt tokens, cached ones included.
        output_tokens: Generated tokens, reasoning ones included.
        cache_read_tokens: Prompt tokens served from the provider's cache.
        reasoning_tokens: Generated tokens spent on hidden reasoning.
        cache_write_tokens: Prompt tokens written to the provider's prompt cache (billed at a
            write rate from GPT-5.6 on; OpenAI's ``input_tokens_details.cache_write_tokens``).
        estimated: True when any count was estimated rather than reported or counted exactly
            (for example a stream that ended without a usage report).
        implausible: Why the counts the provider reported were not believed, when they could
            not be true for the request (negative, past ``max_tokens`` or the prompt's length):
            the counts are then an estimate, and the cost is ``"unpriced"`` with this reason.
    """

    model_config = _FROZEN

    input_tokens: Annotated[int, Field(ge=0)] = 0
    output_tokens: Annotated[int, Field(ge=0)] = 0
    cache_read_tokens: Annotated[int, Field(ge=0)] = 0
    reasoning_tokens: Annotated[int, Field(ge=0)] = 0
    estimated: bool = False
    cache_write_tokens: Annotated[int, Field(ge=0)] = 0
    implausible: str | None = None

    @model_validator(mode="after")
    def _inclusive(self) -> Self:
        if self.cache_read_tokens > self.input_tokens:
            raise ValueError(
                f"cache_read_tokens ({self.cache_read_tokens}) is counted inside input_tokens "
                f"({self.input_tokens}) and cannot exceed it"
            )
        if self.cache_read_tokens + self.cache_write_tokens > self.input_tokens:
            raise ValueError(
                f"cache_write_tokens ({self.cache_write_tokens}) and cache_read_tokens "
                f"({self.cache_read_tokens}) are parts of input_tokens ({self.input_tokens}) "
                "and together cannot exceed it"
            )
        if self.reasoning_tokens > self.output_tokens:
            raise ValueError(
                f"reasoning_tokens ({self.reasoning_tokens}) is counted inside output_tokens "
                f"({self.output_tokens}) and cannot exceed it"
            )
        return self

    @property
    def total_tokens(self) -> int:
        """Input plus output tokens."""
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        """Return a new usage with every bucket summed; estimated if either side was."""
        if not isinstance(other, Usage):
            return NotImplemented
        # model_construct skips re-validation: sums of valid inclusive buckets stay valid.
        return Usage.model_construct(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cache_read_tokens=self.cache_read_tokens + other.cache_read_tokens,
            reasoning_tokens=self.reasoning_tokens + other.reasoning_tokens,
            estimated=self.estimated or other.estimated,
            cache_write_tokens=self.cache_write_tokens + other.cache_write_tokens,
            implausible=self.implausible or other.implausible,
        )

    def __radd__(self, other: object) -> Usage:
        # Lets sum(usages) work with its default start of 0.
        if other == 0:
            return self
        return NotImplemented


EnergyMethod: TypeAlias = Literal["measured-rapl", "measured-nvml"]
"""How a completion's ``energy_j`` was measured: the CPU packages' RAPL counters, or the GPU's
NVML energy counter. A completion without a measurement has ``energy_j=None``, and its cost
estimates energy from the configured watts instead."""


class Sent(BaseModel):
    """The generation parameters as the provider actually received them.

    A comparison promises the same settings to every model; this is how each row shows what its
    model really got.

    Attributes:
        params: The parameters sent, under the provider's own names (messages left out), e.g.
            ``{"max_completion_tokens": 256, "seed": 1}``.
        notes: How they differ from the request's settings, and why: a setting the model does
            not accept, one sent under another name, one applied by llmcompare instead.
    """

    model_config = _FROZEN

    params: dict[str, Any] = Field(default_factory=dict)
    notes: tuple[str, ...] = ()


class Completion(BaseModel):
    """The answer of one model call and what it took to get it.

    Attributes:
        text: The generated text.
        finish_reason: Why generation ended.
        usage: Token counts.
        model: The llmcompare id of the model that answered (``"provider:name"``).
        response_model: The model name the provider reported, when it differs or is more precise.
        request_id: The provider's request id, for support tickets and logs.
        latency_s: Wall-clock seconds from the call to the full answer: what the caller waited,
            queueing, rate-limit waits and retries included.
        ttft_s: Seconds from the call to the first token: for streamed calls, and for each row
            of a local batch.
        queue_s: Seconds the request waited before its computation started (a local batch's
            later rows wait for earlier ones), when the backend knows.
        compute_s: Local compute seconds spent on this request (local backends), the basis of
            local cost accounting. In a batch, each step's time shared out among its rows.
        device: Where a local model ran (``"cpu"``, ``"cuda:0"``, ...).
        energy_j: Measured energy of this request in joules (its share of a batch's), when the
            machine lets it be measured; see ``energy_method``.
        energy_method: How ``energy_j`` was measured.
        sent: The parameters the provider received, and how they differ from the settings.
        attempts: How many attempts the call took (more than 1 after retries).
        retry_wait_s: Seconds spent waiting between attempts.
        batch_id: The provider batch (the OpenAI Batch API) that answered, when one did: then
            ``latency_s`` is the batch's turnaround (submission to results), not comparable
            with interactive latency, and the answer is costed at the batch tier.
        worker: The executor worker that ran a local model's request (``"ray-0"``, ...), when
            it did not run in this process; with ``compute_s`` and ``device`` it gives each
            worker's share.
        parsed: With a ``response_format``: the validated answer, the pydantic object for a
            model class (the JSON value for a dict schema). A saved record holds it as JSON; a
            live request's format re-derives the object (:func:`llmcompare.schema.attach`).
        parse_error: With a ``response_format``: why the answer does not validate (cut off by
            ``max_tokens``, say); None when it does.
        refusal: The model's refusal to answer in the format (OpenAI's ``message.refusal``):
            a result, not a parse error. ``text`` holds it too.
        api: The provider API that answered, when a backend has more than one (the chatgpt
            backend: ``"chat"`` for chat.completions, ``"responses"`` for the Responses API).
        service_tier: The processing tier that served the answer, as the provider reported
            it (OpenAI: ``"default"``, ``"flex"``, ``"priority"``, ...); it is priced at that tier.
        ttft_visible_s: Seconds from the call to the first VISIBLE token of a stream: after any
            hidden reasoning, which ``ttft_s`` (the first token of any kind) does not wait for.
        replaced_chars: Characters of the answer as received that are not text: lone halves
            of a UTF-16 surrogate pair (an escape cut in two with its other half lost), each
            replaced by U+FFFD. 0 when the answer arrived valid; halves that arrive together,
            even in two chunks of a stream, are joined into their character instead.
        unanswered_usd: Dollars charged for earlier attempts of this request that reached the
            provider and gave no answer (a timeout, a cut stream): the provider may bill them,
            so a :class:`~llmcompare.cost.CostTracker` counts each at its worst case, and so
            does this answer's cost. None when there were none.
        unanswered_tokens: The tokens those attempts were charged (their input bound and
            ``max_tokens``), a model without a price's too: a resumed run's ``max_tokens``
            budget counts them. None when there were none.
        measured_at: When the answer arrived (UTC), stamped by a comparison: the cache and the
            run folder keep it, so a rerun answered from them reports this measurement.
        measured_on: Where it was timed (the host name of the machine that sent it).
    """

    model_config = _FROZEN

    text: str
    finish_reason: FinishReason
    usage: Usage
    model: str
    response_model: str | None = None
    request_id: str | None = None
    latency_s: Annotated[float, Field(ge=0.0)] = 0.0
    ttft_s: Annotated[float, Field(ge=0.0)] | None = None
    queue_s: Annotated[float, Field(ge=0.0)] | None = None
    compute_s: Annotated[float, Field(ge=0.0)] | None = None
    device: str | None = None
    energy_j: Annotated[float, Field(ge=0.0)] | None = None
    energy_method: EnergyMethod | None = None
    sent: Sent | None = None
    attempts: Annotated[int, Field(ge=1)] = 1
    retry_wait_s: Annotated[float, Field(ge=0.0)] = 0.0
    batch_id: str | None = None
    worker: str | None = None
    parsed: Any = None
    parse_error: str | None = None
    refusal: str | None = None
    api: str | None = None
    service_tier: str | None = None
    ttft_visible_s: Annotated[float, Field(ge=0.0)] | None = None
    replaced_chars: Annotated[int, Field(ge=0)] = 0
    unanswered_usd: Annotated[Decimal, Field(ge=0)] | None = None
    unanswered_tokens: Annotated[int, Field(ge=0)] | None = None
    measured_at: datetime | None = None
    measured_on: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _valid(cls, data: Any) -> Any:
        # Text is made valid where it enters: every later write (a run folder line, the cache,
        # a report) can then encode it.
        return _valid_texts(data)


class Chunk(BaseModel):
    """One piece of a streamed answer.

    The last chunk of a stream carries ``finish_reason`` and, when known, ``usage``.

    Attributes:
        text: The text added by this chunk.
        finish_reason: Set on the last chunk.
        usage: Set on the last chunk when the backend knows it.
        request_id: The provider's request id, when known.
        response_model: The model name the provider reported, when known.
        refusal: Set on the last chunk when the model refused to answer in the format.
        thinking: The model has started generating but shows nothing yet (hidden reasoning
            began): the stream's first token, before its first visible one.
        service_tier: Set on the last chunk when the provider reported the tier that served it.
        replaced_chars: Characters of this chunk's text as received that are not text (lone
            surrogate halves), each replaced by U+FFFD; see :attr:`Completion.replaced_chars`.
    """

    model_config = _FROZEN

    text: str = ""
    finish_reason: FinishReason | None = None
    usage: Usage | None = None
    request_id: str | None = None
    response_model: str | None = None
    refusal: str | None = None
    thinking: bool = False
    service_tier: str | None = None
    replaced_chars: Annotated[int, Field(ge=0)] = 0

    @model_validator(mode="before")
    @classmethod
    def _valid(cls, data: Any) -> Any:
        return _valid_texts(data)


class ModelInfo(BaseModel):
    """Static facts about a model, known without loading it or calling it.

    Attributes:
        provider: The backend name (``"llama"``, ``"chatgpt"``, ...); the first part of the id.
        name: The model's name within the backend; the second part of the id.
        open_weights: Whether the weights are open (run it yourself) or only behind an API.
        context_window: Maximum tokens of prompt plus answer, when known.
        parameters: Number of parameters, when known.
        description: One line for listings.
    """

    model_config = _FROZEN

    provider: str = Field(min_length=1, pattern=r"^[^:\s]+$")
    name: str = Field(min_length=1)
    open_weights: bool
    context_window: Annotated[int, Field(gt=0)] | None = None
    parameters: Annotated[int, Field(gt=0)] | None = None
    description: str = ""

    @property
    def id(self) -> str:
        """The stable model id, ``"provider:name"``."""
        return f"{self.provider}:{self.name}"


@dataclass(frozen=True, slots=True)
class Result:
    """The outcome of one request in a batch: a completion or the error that stopped it.

    Attributes:
        index: Position of the request in the input.
        request: The request as sent.
        completion: The completion, when the request succeeded.
        error: The exception, when it failed.
    """

    index: int
    request: Request
    completion: Completion | None = None
    error: BaseException | None = None

    def __post_init__(self) -> None:
        if (self.completion is None) == (self.error is None):
            raise ValueError("a Result holds exactly one of completion and error")

    @property
    def ok(self) -> bool:
        """True when the request succeeded."""
        return self.completion is not None

    def unwrap(self) -> Completion:
        """Return the completion, or raise the stored error.

        Raises:
            BaseException: The error the request failed with.
        """
        if self.completion is None:
            assert self.error is not None
            raise self.error
        return self.completion


class ShelfLife(BaseModel):
    """Until when a model can be run again: the day its provider stops serving it.

    A comparison of a model past this date cannot be re-run as it was; the record and the
    report say so ("re-runnable until DATE").

    Attributes:
        until: The announced shutdown date.
        source: Where the date comes from (the provider's deprecations page with its check
            date, or the server's ``/v1/models`` entry).
    """

    model_config = _FROZEN

    until: date
    source: str

    def days_left(self, today: date) -> int:
        """Days from ``today`` to the shutdown (negative once it is past)."""
        return (self.until - today).days

    def line(self, label: str) -> str:
        """``"<label>: re-runnable until <date> (<source>)"``, for reports."""
        return f"{label}: re-runnable until {self.until.isoformat()} ({self.source})"
