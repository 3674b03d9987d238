"""The OpenAI Batch API path of the chatgpt backend (option ``batch=True``).

A model built with ``batch=True`` answers ``generate_batch`` (and so ``generate_many`` and
``compare``) through the Batch API instead of one HTTP call per request:

1. Each distinct request becomes one JSONL line: ``custom_id`` is its
   :func:`~llmcompare.runs.request_key` (identical requests share one line and their answer is
   fanned back out, so a ``custom_id`` never repeats), ``body`` is exactly what the interactive
   path sends (the same ``Endpoint.params``).
2. Lines are split into files of at most :data:`MAX_REQUESTS_PER_FILE` requests and
   :data:`MAX_FILE_BYTES` bytes, each uploaded with ``files.create(purpose="batch")`` and run
   with ``batches.create(endpoint="/v1/chat/completions", completion_window="24h")``.
3. Each batch id is written to the batch journal (:mod:`llmcompare.runs._journal`) the moment
   the provider accepts it: a killed process resumes polling it instead of paying again. A
   batch's answers stay journaled (only requests it did not answer are released), so a process
   killed after reading them, before its caller recorded them, reads them again for free.
4. Batches are polled with a growing wait (``llmcompare.testing.no_wait`` skips the waits), with
   a progress line showing ``request_counts``; then the output and error files are read and
   joined on ``custom_id``. A transient polling error (429, 5xx, a dropped connection) is
   retried; Ctrl-C stops the polling at once and leaves the batches journaled.
5. An ``expired`` batch keeps its partial output; its missing requests go into a new batch
   (up to :data:`EXPIRED_ROUNDS` times), as do the requests of a batch whose output file is gone
   or unreadable. A ``cancelled`` one keeps its partial output and its missing requests fail with
   a :class:`BatchRequestError`; the next run submits only those.

Every completion carries ``batch_id``: its ``latency_s`` is the batch's turnaround (from its
submission, read from the journal for a resumed batch, to its results), not comparable with
interactive latency, and it is costed at the Batch API tier.
"""

from __future__ import annotations

import importlib
import io
import json
import logging
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from llmcompare.backends import _stop
from llmcompare.errors import BackendError, ProviderHTTPError
from llmcompare.types import Completion, Request

if TYPE_CHECKING:
    import openai

    from llmcompare.backends.chatgpt._endpoint import Endpoint
    from llmcompare.backends.chatgpt._responses import ResponsesApi

__all__ = [
    "ENDPOINT",
    "EXPIRED_ROUNDS",
    "MAX_FILE_BYTES",
    "MAX_REQUESTS_PER_FILE",
    "POLL_ATTEMPTS",
    "POLL_FIRST_S",
    "POLL_MAX_S",
    "BatchRequestError",
    "run_batch",
]

log = logging.getLogger("llmcompare.backends.chatgpt")

ENDPOINT = "/v1/chat/completions"
"""The endpoint every line of a batch calls (``/v1/responses`` with ``api="responses"``)."""

MAX_REQUESTS_PER_FILE = 50_000
"""The Batch API's limit of requests per input file."""

MAX_FILE_BYTES = 200 * 1024 * 1024
"""The Batch API's limit of bytes per input file."""

POLL_FIRST_S = 5.0
"""Seconds before the first status check; each later wait is 1.5 times longer..."""

POLL_MAX_S = 60.0
"""...up to this."""

EXPIRED_ROUNDS = 3
"""How many times the missing requests of an expired batch are submitted again in one call."""

POLL_ATTEMPTS = 6
"""Tries of one status check or file read that fails transiently (429, 5xx, connection)."""

_TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})


class BatchRequestError(BackendError):
    """A request of a Batch API batch got no answer (its line failed, or the batch ended first).

    Attributes:
        batch_id: The batch.
        code: The Batch API's error code (``"batch_expired"``, ``"batch_cancelled"``, ...),
            when it gave one.
    """

    def __init__(
        self, message: str, *, model_id: str, batch_id: str, code: str | None = None
    ) -> None:
        self.batch_id = batch_id
        self.code = code
        super().__init__(message, model_id=model_id)


def run_batch(
    endpoint: Endpoint, requests: Sequence[Request], responses: ResponsesApi | None = None
) -> list[Completion | Exception]:
    """Answer ``requests`` through the Batch API; one entry per request, in order.

    Args:
        endpoint: The chatgpt model's endpoint (its client, request building and answer
            mapping are used).
        requests: The requests.
        responses: The model's Responses API, when it uses it: the lines then call
            ``/v1/responses`` with its request bodies, and answers are read as Responses.

    Returns:
        A completion or the error of each request.

    Raises:
        LLMCompareError: When uploading, submitting or polling fails (nothing is lost: batches
            already submitted are in the journal and resumed by the next call).
    """
    from llmcompare.runs import request_key
    from llmcompare.runs._journal import BatchJournal, journal_fresh, journal_path

    start = time.perf_counter()
    identity = endpoint.identity()
    keys = [request_key(identity, r) for r in requests]
    unique: dict[str, Request] = dict(zip(keys, requests, strict=True))
    build = endpoint.params if responses is None else responses.params
    params = {k: build(r) for k, r in unique.items()}
    journal = BatchJournal(journal_path())
    run = _Run(endpoint, journal, unique, params, start, responses)
    try:
        if not journal_fresh():  # compare(refresh=True): new answers, not journaled ones
            run.resume()
        todo = [k for k in unique if k not in run.owner]
        for _ in range(EXPIRED_ROUNDS + 1):
            if todo:
                run.submit(todo)
            todo = run.wait()
            if not todo:
                break
    finally:
        run.bar.close()
    answers = run.answers
    for key in todo:  # expired in every round: given up on, for this call
        answers[key] = BatchRequestError(
            f"no answer after {EXPIRED_ROUNDS + 1} batches (expired, or output file lost); "
            "run again to resubmit it",
            model_id=endpoint.model_id,
            batch_id=run.last_batch.get(key, ""),
            code="batch_expired",
        )
    return [answers[k] for k in keys]


class _Run:
    """One call's batches: submitted or resumed, polled, and read back."""

    def __init__(
        self,
        endpoint: Endpoint,
        journal: Any,
        requests: Mapping[str, Request],
        params: Mapping[str, Mapping[str, Any]],
        start: float,
        responses: ResponsesApi | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.responses = responses
        self.url = ENDPOINT if responses is None else responses.url
        self.client: openai.OpenAI = endpoint.client()
        self.journal = journal
        self.requests = requests
        self.params = params
        self.start = start
        self.started: dict[str, float] = {}  # batch id -> its submission, on the perf clock
        self.token = _stop.token()
        self.owner: dict[str, str] = {}  # key -> batch id now answering it
        self.live: dict[str, Any] = {}  # batch id -> last Batch object seen (None: not yet)
        self.answers: dict[str, Completion | Exception] = {}
        self.last_batch: dict[str, str] = {}  # key -> the expired batch it was last in
        self.bar = _Bar(endpoint.model_id, len(requests))

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        endpoint = self.endpoint
        endpoint.check_network()
        with endpoint.errors:
            return fn(*args, **kwargs)

    def resume(self) -> None:
        self._adopt()
        for entry in self.journal.open_batches(self.requests):
            self.live[entry.batch] = None
            if entry.at is not None:
                # Turnaround from the journaled submission, maybe hours ago in another process.
                ago = max(0.0, time.time() - entry.at)
                self.started[entry.batch] = time.perf_counter() - ago
            for key in entry.keys:
                self.owner[key] = entry.batch

    def _adopt(self) -> None:
        """Journal the batches created for journaled uploads whose own line a kill prevented."""
        pending = self.journal.pending_uploads(self.requests)
        if not pending:
            return
        files = {file: keys for file, keys, _ in pending}
        since = min(at for _, _, at in pending) - 600  # the list is newest first: stop there
        for batch in self._poll(self.client.batches.list, limit=100):
            keys = files.pop(batch.input_file_id, None)
            if keys is not None:
                self.journal.submitted(batch.id, batch.input_file_id, keys)
            if not files or batch.created_at < since:
                return

    def submit(self, keys: Sequence[str]) -> None:
        for lines in _files(keys, self.params, self.url):
            data = b"".join(line for _, line in lines)
            upload = self._call(
                self.client.files.create,
                file=("llmcompare-batch.jsonl", io.BytesIO(data), "application/jsonl"),
                purpose="batch",
            )
            chunk = [k for k, _ in lines]
            # A kill between the batch's creation and its journal line must not pay twice: the
            # upload is journaled first, and the next run finds its batch by it.
            self.journal.uploaded(upload.id, chunk)
            batch = self._call(
                self.client.batches.create,
                input_file_id=upload.id,
                endpoint=self.url,
                completion_window="24h",
                metadata={"created_by": "llmcompare"},
            )
            # Journaled before anything else: from here on a kill costs nothing.
            self.journal.submitted(batch.id, upload.id, chunk)
            self.live[batch.id] = batch
            for key in chunk:
                self.owner[key] = batch.id

    def wait(self) -> list[str]:
        """Poll until every live batch has ended, read each; returns the keys to submit again."""
        wait = POLL_FIRST_S
        again: list[str] = []
        while self.live:
            for batch_id in list(self.live):
                try:
                    batch = self._poll(self.client.batches.retrieve, batch_id)
                except ProviderHTTPError as exc:
                    if exc.status != 404:
                        raise
                    # A journaled batch the provider no longer knows: submit its requests anew.
                    del self.live[batch_id]
                    gone = [k for k, b in self.owner.items() if b == batch_id]
                    self.journal.release(batch_id, gone)
                    for key in gone:
                        del self.owner[key]
                    again += gone
                    continue
                self.live[batch_id] = batch
                if batch.status in _TERMINAL:
                    del self.live[batch_id]
                    again += self._read(batch)
            self.bar.show(self._counts())
            if self.live:
                self._sleep(wait)
                wait = min(wait * 1.5, POLL_MAX_S)
        return again

    def _poll(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """``fn(*args)``, tried again on a transient error: a poll that fails loses nothing."""
        from llmcompare.retry import is_retryable

        wait = 1.0
        for attempt in range(POLL_ATTEMPTS):
            try:
                return self._call(fn, *args, **kwargs)
            except Exception as exc:
                if attempt == POLL_ATTEMPTS - 1 or not is_retryable(exc):
                    raise
            self._sleep(wait)
            wait = min(wait * 2, POLL_MAX_S)
        raise AssertionError("unreachable")  # pragma: no cover

    def _sleep(self, seconds: float) -> None:
        """Wait, in short slices: Ctrl-C (backends._stop) ends the wait within a slice."""
        from llmcompare import retry

        skip = retry._skip_wait(seconds)
        end = time.monotonic() + (0.0 if skip else seconds)
        while True:
            if _stop.requested(self.token):
                # The batches stay journaled: the next run resumes polling them.
                raise BackendError(
                    "stopped while polling batches; run again to resume them",
                    model_id=self.endpoint.model_id,
                )
            left = end - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, 0.2))

    def _counts(self) -> tuple[int, int, int, str]:
        done = sum(1 for a in self.answers.values() if isinstance(a, Completion))
        failed = len(self.answers) - done
        states = []
        for batch in self.live.values():
            counts = getattr(batch, "request_counts", None)
            if counts is not None:
                done += counts.completed
                failed += counts.failed
            states.append(getattr(batch, "status", "submitted"))
        return done, failed, len(self.requests), ", ".join(sorted(set(states)))

    def _content(self, file_id: str | None) -> Iterator[dict[str, Any]]:
        if not file_id:
            return
        data = self._poll(self.client.files.content, file_id).content
        for raw in data.splitlines():
            if raw.strip():
                yield json.loads(raw)

    def _read(self, batch: Any) -> list[str]:
        """Take a finished batch's answers; returns its keys to submit again (expired, lost)."""
        mine = {k for k, b in self.owner.items() if b == batch.id}
        lost: set[str] = set()
        try:
            lines = [*self._content(batch.output_file_id), *self._content(batch.error_file_id)]
        except (ProviderHTTPError, ValueError) as exc:
            if isinstance(exc, ProviderHTTPError) and exc.status != 404:
                raise
            # An output file the provider no longer has (404) or that does not parse: its
            # requests are submitted again rather than blocking every later run.
            log.warning("batch %s: output unreadable (%s); submitting again", batch.id, exc)
            self.journal.release(batch.id, mine)
            for gone in mine:
                del self.owner[gone]
                self.last_batch[gone] = batch.id
            return sorted(mine)
        for line in lines:
            key = line.get("custom_id")
            if key not in mine or key in self.answers:
                continue
            answer = self._answer(batch.id, key, line)
            self.answers[key] = answer
            if isinstance(answer, Exception):
                lost.add(key)
        missing = mine - set(self.answers)
        status = batch.status
        for key in missing:
            self.answers[key] = BatchRequestError(
                _why_missing(batch), model_id=self.endpoint.model_id, batch_id=batch.id, code=status
            )
        lost |= missing
        # Only the requests without an answer are released (a later call submits them again):
        # an answer is in memory only until the caller records it, and a kill there must not
        # pay for it twice, so the next call reads it from this batch again.
        self.journal.release(batch.id, [k for k in mine if isinstance(self.answers[k], Exception)])
        if status != "expired":
            return []
        again = [
            k
            for k in lost
            if isinstance(e := self.answers[k], BatchRequestError)
            and e.code in ("expired", "batch_expired")
        ]
        for key in again:
            del self.answers[key]
            del self.owner[key]
            self.last_batch[key] = batch.id
        return again

    def _answer(self, batch_id: str, key: str, line: Mapping[str, Any]) -> Completion | Exception:
        from openai.types.chat import ChatCompletion

        endpoint = self.endpoint
        model_id = endpoint.model_id
        response = line.get("response") or {}
        error = line.get("error")
        status = response.get("status_code")
        body = response.get("body")
        if error or not isinstance(status, int) or status >= 400 or not isinstance(body, dict):
            detail = (body or {}).get("error") if isinstance(body, dict) else None
            info = error or detail or {}
            message = endpoint.clean(str(info.get("message") or "no answer"))
            code = info.get("code")
            text = f"batch {batch_id}: request failed ({code or status}): {message}"
            if isinstance(status, int) and status >= 400:
                return ProviderHTTPError(text, model_id=model_id, status=status)
            return BatchRequestError(
                text, model_id=model_id, batch_id=batch_id, code=None if code is None else str(code)
            )
        request = self.requests[key]
        start = self.started.get(batch_id, self.start)
        try:
            if self.responses is not None:
                completion = self.responses.answer(body, response.get("request_id"), request, start)
            else:
                response_object = ChatCompletion.model_validate(body)
                # As the SDK does for interactive answers (openai._models.add_request_id).
                object.__setattr__(response_object, "_request_id", response.get("request_id"))
                completion = endpoint.completion(response_object, request, self.params[key], start)
        except BackendError as exc:
            return exc
        except ValueError as exc:  # pydantic's ValidationError: not a chat completion
            kind = "chat completion" if self.responses is None else "Response"
            return BackendError(
                f"batch {batch_id}: the answer is not a {kind} ({exc.__class__.__name__})",
                model_id=model_id,
            )
        return completion.model_copy(update={"batch_id": batch_id})


def _why_missing(batch: Any) -> str:
    status = batch.status
    if status == "failed":
        errors = getattr(getattr(batch, "errors", None), "data", None) or []
        found = "; ".join(
            f"{e.code or 'error'}" + (f" (line {e.line})" if e.line else "") + f": {e.message}"
            for e in errors
        )
        return f"batch {batch.id} failed validation: {found or 'no reason given'}"
    if status in ("expired", "cancelled"):
        return f"batch {batch.id} {status} before this request was answered"
    return f"batch {batch.id} ({status}) returned no result for this request"


def _files(
    keys: Sequence[str], params: Mapping[str, Mapping[str, Any]], url: str = ENDPOINT
) -> Iterator[list[tuple[str, bytes]]]:
    """Group the JSONL lines of ``keys`` into files within the request and size limits."""
    lines: list[tuple[str, bytes]] = []
    size = 0
    for key in keys:
        line = {"custom_id": key, "method": "POST", "url": url, "body": params[key]}
        data = (json.dumps(line, separators=(",", ":"), ensure_ascii=False) + "\n").encode()
        if lines and (len(lines) >= MAX_REQUESTS_PER_FILE or size + len(data) > MAX_FILE_BYTES):
            yield lines
            lines, size = [], 0
        lines.append((key, data))
        size += len(data)
    if lines:
        yield lines


class _Bar:
    """The progress line: requests completed and failed across the batches, and their states."""

    def __init__(self, label: str, total: int) -> None:
        stream = sys.stderr
        self.enabled = stream is not None and stream.isatty()
        self.label = label
        self._bar: Any = None
        if self.enabled:
            try:
                tqdm = importlib.import_module("tqdm").tqdm  # optional and untyped
            except ImportError:
                pass
            else:
                self._bar = tqdm(total=total, desc=f"{label} (batch)", unit="req", file=stream)

    def show(self, counts: tuple[int, int, int, str]) -> None:
        if not self.enabled:
            return
        done, failed, total, states = counts
        if self._bar is not None:
            self._bar.n = done + failed
            self._bar.set_postfix_str(f"failed={failed} {states}".strip())
        else:
            sys.stderr.write(
                f"\r{self.label} (batch): {done}/{total} done, {failed} failed {states}"
            )
            sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            if self._bar is not None:
                self._bar.close()
            else:
                sys.stderr.write("\n")
                sys.stderr.flush()
