"""A loopback OpenAI-compatible server with the Batch API, for tests (stdlib only).

:class:`BatchServer` is :class:`~helpers.openai_server.OpenAIServer` (chat completions, scripted
behaviours, recorded requests) plus ``/v1/files`` (upload, metadata, content) and
``/v1/batches`` (create, retrieve, cancel) with the Batch API's state machine. Each
``GET /v1/batches/{id}`` moves a batch one step on::

    validating -> in_progress -> finalizing -> completed
                            \\-> expired          (plan "expire": only the first N lines answered)
    validating -> failed                          (a line that does not validate)
    cancelling -> cancelled                       (after POST .../cancel: partial output kept)

Each line of a batch takes the next scripted :class:`~helpers.openai_server.Behaviour`, as an
interactive request would: an ``error(...)`` behaviour puts that line in the error file (HTTP status
and error body, as the real service does), anything else answers it in the output file. Validation
refuses a file whose ``custom_id`` repeats, whose line is not ``POST`` to the batch's endpoint, or
whose body has no ``model`` and ``messages``.

In a test::

    with BatchServer() as server:
        server.plan_batches("expire", answered=2)   # the next batch created expires after 2 lines
        ...
        server.batch_creates  # how many batches were created
        server.counts_seen    # every request_counts the server reported, in order
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal

from helpers.openai_server import Behaviour, OpenAIServer, responses_body

__all__ = ["BatchServer", "StoredBatch"]

Plan = Literal["complete", "expire", "hold"]


@dataclass
class StoredBatch:
    """One batch on the server.

    Attributes:
        id: Its id.
        input_file_id: The uploaded input file.
        endpoint: The endpoint its lines call.
        lines: The parsed input lines.
        plan: ``"complete"``, ``"expire"`` (after ``answered`` lines) or ``"hold"`` (stays
            in_progress until :meth:`BatchServer.release`).
        answered: For ``"expire"``: how many lines are answered before it expires.
        status: The Batch API status.
        output: Output file lines so far.
        errors: Error file lines so far.
        validation: Validation errors (the batch then fails).
    """

    id: str
    input_file_id: str
    endpoint: str
    lines: list[dict[str, Any]]
    plan: Plan = "complete"
    answered: int = 0
    status: str = "validating"
    output: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    validation: list[dict[str, Any]] = field(default_factory=list)
    created_at: int = field(default_factory=lambda: int(time.time()))
    output_file_id: str | None = None
    error_file_id: str | None = None


class BatchServer(OpenAIServer):
    """An :class:`~helpers.openai_server.OpenAIServer` that also serves the Files and Batch APIs."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.files: dict[str, tuple[str, bytes]] = {}  # id -> (purpose, content)
        self.batches: dict[str, StoredBatch] = {}
        self.counts_seen: list[dict[str, int]] = []
        self._plans: deque[tuple[Plan, int]] = deque()
        self._failures = 0  # GETs still to answer 503 (fail_next)
        self._ids = itertools.count(1)
        # Its own lock: the base class's guards the behaviour queue, which lines also read.
        self._batch_lock = threading.Lock()

    # -- scripting --------------------------------------------------------------------------------

    def plan_batches(self, *plans: Plan, answered: int = 0) -> None:
        """Queue what the next created batches do (default, when the queue is empty: complete)."""
        with self._batch_lock:
            self._plans.extend((p, answered) for p in plans)

    def release(self) -> None:
        """Let every held batch go on to completion."""
        with self._batch_lock:
            for batch in self.batches.values():
                if batch.plan == "hold":
                    batch.plan = "complete"

    def fail_next(self, count: int) -> None:
        """Answer the next ``count`` GETs of files and batches with a transient 503."""
        with self._batch_lock:
            self._failures = count

    @property
    def batch_creates(self) -> int:
        """How many batches were created."""
        return len(self.batches)

    @property
    def uploads(self) -> list[bytes]:
        """The content of every file uploaded with purpose ``batch``, in order."""
        return [data for purpose, data in self.files.values() if purpose == "batch"]

    # -- HTTP -------------------------------------------------------------------------------------

    async def _dispatch(
        self,
        method: str,
        target: str,
        headers: dict[str, str],
        raw: bytes,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> bool:
        path = target.split("?", 1)[0].rstrip("/")
        if "/files" not in path and "/batches" not in path:
            return await super()._dispatch(method, target, headers, raw, reader, writer)
        if self.record:
            from helpers.openai_server import RecordedRequest

            with self._lock:
                self._requests.append(RecordedRequest(method, target, headers, None, raw))
        parts = path.split("/")
        tail = parts[parts.index("v1") + 1 :] if "v1" in parts else parts[1:]
        status, payload = self._route(method, tail, headers, raw)
        if isinstance(payload, bytes):
            data, kind = payload, "application/octet-stream"
        else:
            data, kind = json.dumps(payload).encode(), "application/json"
        writer.write(self._head(status, {"x-request-id": "req_files"}, len(data), kind) + data)
        await writer.drain()
        return True

    def _route(
        self, method: str, tail: list[str], headers: dict[str, str], raw: bytes
    ) -> tuple[int, Any]:
        with self._batch_lock:
            if method == "GET" and self._failures > 0:
                self._failures -= 1
                return 503, _error("the server is overloaded; try again")
            if tail == ["files"] and method == "POST":
                return self._upload(headers, raw)
            if len(tail) >= 2 and tail[0] == "files" and method == "GET":
                found = self.files.get(tail[1])
                if found is None:
                    return _not_found(f"no file {tail[1]}")
                if tail[2:] == ["content"]:
                    return 200, found[1]
                return 200, self._file_object(tail[1])
            if tail == ["batches"] and method == "POST":
                return self._create(json.loads(raw or b"{}"))
            if tail == ["batches"] and method == "GET":  # newest first, as the real list is
                data = [self._batch_object(b) for b in reversed(self.batches.values())]
                return 200, {"object": "list", "data": data, "has_more": False}
            if len(tail) >= 2 and tail[0] == "batches":
                batch = self.batches.get(tail[1])
                if batch is None:
                    return _not_found(f"no batch {tail[1]}")
                if tail[2:] == ["cancel"] and method == "POST":
                    if batch.status in ("validating", "in_progress", "finalizing"):
                        batch.status = "cancelling"
                    return 200, self._batch_object(batch)
                if method == "GET":
                    self._step(batch)
                    return 200, self._batch_object(batch)
        return _not_found(f"no route {method} /{'/'.join(tail)}")

    # -- files ------------------------------------------------------------------------------------

    def _upload(self, headers: dict[str, str], raw: bytes) -> tuple[int, Any]:
        fields = _multipart(headers.get("content-type", ""), raw)
        if "file" not in fields or "purpose" not in fields:
            return 400, _error("multipart body needs 'file' and 'purpose'")
        file_id = f"file-{next(self._ids)}"
        self.files[file_id] = (fields["purpose"].decode(), fields["file"])
        return 200, self._file_object(file_id)

    def _file_object(self, file_id: str) -> dict[str, Any]:
        purpose, data = self.files[file_id]
        return {
            "id": file_id,
            "object": "file",
            "bytes": len(data),
            "created_at": int(time.time()),
            "filename": f"{file_id}.jsonl",
            "purpose": purpose,
            "status": "processed",
        }

    def _store(self, lines: list[dict[str, Any]]) -> str | None:
        if not lines:
            return None
        file_id = f"file-{next(self._ids)}"
        data = b"".join(json.dumps(line).encode() + b"\n" for line in lines)
        self.files[file_id] = ("batch_output", data)
        return file_id

    # -- batches ----------------------------------------------------------------------------------

    def _create(self, body: dict[str, Any]) -> tuple[int, Any]:
        file_id = body.get("input_file_id")
        if file_id not in self.files:
            return 400, _error(f"input file {file_id!r} not found")
        if body.get("completion_window") != "24h":
            return 400, _error("completion_window must be '24h'")
        lines = [json.loads(x) for x in self.files[file_id][1].splitlines() if x.strip()]
        plan, answered = self._plans.popleft() if self._plans else ("complete", 0)
        batch = StoredBatch(
            id=f"batch_{next(self._ids)}",
            input_file_id=file_id,
            endpoint=str(body.get("endpoint")),
            lines=lines,
            plan=plan,
            answered=answered,
        )
        self.batches[batch.id] = batch
        return 200, self._batch_object(batch)

    def _validate(self, batch: StoredBatch) -> None:
        seen: set[str] = set()
        # A Responses API batch's bodies carry "input" where chat bodies carry "messages".
        needed = "input" if batch.endpoint.endswith("/responses") else "messages"
        for number, line in enumerate(batch.lines, 1):
            custom_id = line.get("custom_id")
            body = line.get("body")
            problem = None
            if not isinstance(custom_id, str) or custom_id in seen:
                problem = ("duplicate_custom_id", f"custom_id {custom_id!r} is not unique")
            elif line.get("method") != "POST" or line.get("url") != batch.endpoint:
                problem = ("invalid_url", f"line must POST to {batch.endpoint}")
            elif not isinstance(body, dict) or "model" not in body or needed not in body:
                problem = ("invalid_body", f"body needs 'model' and '{needed}'")
            if problem is not None:
                code, message = problem
                batch.validation.append(
                    {"code": code, "message": message, "line": number, "param": None}
                )
            seen.add(str(custom_id))

    def _answer(self, batch: StoredBatch, line: dict[str, Any]) -> None:
        behaviour: Behaviour = self._next_behaviour()
        request_id = f"req_b{next(self._ids)}"
        custom_id = line["custom_id"]
        if behaviour.kind == "error":
            err = {
                "message": behaviour.message,
                "type": behaviour.error_type,
                "param": None,
                "code": behaviour.error_code,
            }
            batch.errors.append(
                {
                    "id": f"batch_req_{request_id}",
                    "custom_id": custom_id,
                    "response": {
                        "status_code": behaviour.status,
                        "request_id": request_id,
                        "body": {"error": err},
                    },
                    "error": None,
                }
            )
            return
        if batch.endpoint.endswith("/responses"):
            answer = responses_body(self, behaviour, line["body"], request_id)
            batch.output.append(
                {
                    "id": f"batch_req_{request_id}",
                    "custom_id": custom_id,
                    "response": {"status_code": 200, "request_id": request_id, "body": answer},
                    "error": None,
                }
            )
            return
        pieces, finish, usage, model = self._plan(behaviour, line["body"])
        body: dict[str, Any] = {
            "id": f"chatcmpl-{request_id}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "".join(pieces), "refusal": None},
                    "logprobs": None,
                    "finish_reason": finish,
                }
            ],
        }
        if usage is not None:
            body["usage"] = usage
        batch.output.append(
            {
                "id": f"batch_req_{request_id}",
                "custom_id": custom_id,
                "response": {"status_code": 200, "request_id": request_id, "body": body},
                "error": None,
            }
        )

    def _step(self, batch: StoredBatch) -> None:
        """Move a batch one state on (called on each retrieve)."""
        status = batch.status
        if status == "validating":
            self._validate(batch)
            batch.status = "failed" if batch.validation else "in_progress"
        elif status == "in_progress":
            if batch.plan == "hold":
                return
            limit = batch.answered if batch.plan == "expire" else len(batch.lines)
            for line in batch.lines[:limit]:
                self._answer(batch, line)
            if batch.plan == "expire":
                for line in batch.lines[limit:]:
                    batch.errors.append(
                        {
                            "id": f"batch_req_x{next(self._ids)}",
                            "custom_id": line["custom_id"],
                            "response": None,
                            "error": {
                                "code": "batch_expired",
                                "message": "This request could not be executed before the "
                                "completion window expired.",
                            },
                        }
                    )
                self._finish(batch, "expired")
            else:
                batch.status = "finalizing"
        elif status == "finalizing":
            self._finish(batch, "completed")
        elif status == "cancelling":
            self._finish(batch, "cancelled")

    def _finish(self, batch: StoredBatch, status: str) -> None:
        batch.output_file_id = self._store(batch.output)
        batch.error_file_id = self._store(batch.errors)
        batch.status = status

    def _batch_object(self, batch: StoredBatch) -> dict[str, Any]:
        done = batch.status in ("finalizing", "completed", "expired", "cancelled")
        failed_lines = sum(1 for e in batch.errors if e.get("error") is None)
        counts = {
            "total": len(batch.lines) if batch.status != "validating" else 0,
            "completed": len(batch.output) if done else 0,
            "failed": (failed_lines if batch.status != "expired" else len(batch.errors))
            if done
            else 0,
        }
        self.counts_seen.append(dict(counts))
        obj: dict[str, Any] = {
            "id": batch.id,
            "object": "batch",
            "endpoint": batch.endpoint,
            "input_file_id": batch.input_file_id,
            "completion_window": "24h",
            "status": batch.status,
            "created_at": batch.created_at,
            "output_file_id": batch.output_file_id,
            "error_file_id": batch.error_file_id,
            "request_counts": counts,
            "metadata": None,
        }
        if batch.validation:
            obj["errors"] = {"object": "list", "data": batch.validation}
        return obj


def _error(message: str) -> dict[str, Any]:
    return {
        "error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}
    }


def _not_found(message: str) -> tuple[int, Any]:
    return 404, _error(message)


def _multipart(content_type: str, raw: bytes) -> dict[str, bytes]:
    """The fields of a multipart/form-data body, by name (what the SDK's upload sends)."""
    marker = "boundary="
    if marker not in content_type:
        return {}
    boundary = (
        content_type.split(marker, 1)[1].split(";", maxsplit=1)[0].strip().strip('"').encode()
    )
    fields: dict[str, bytes] = {}
    for part in raw.split(b"--" + boundary):
        head, sep, body = part.partition(b"\r\n\r\n")
        if not sep:
            continue
        for header in head.decode("latin-1").split("\r\n"):
            if header.lower().startswith("content-disposition") and 'name="' in header:
                name = header.split('name="', 1)[1].split('"', 1)[0]
                fields[name] = body.removesuffix(b"\r\n")
    return fields
