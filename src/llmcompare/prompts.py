"""Prompt sets: the items a comparison runs, loaded from JSONL, CSV or YAML, or the built-in suite.

Each item has a prompt (a string) or messages, an optional reference answer, optional scorer names
for that item, and tags. Files are validated line by line: an error names the file and the line.

JSONL, one object per line::

    {"id": "capital", "prompt": "Capital of France?", "reference": "Paris", "scorers": ["contains"]}

An item may carry a JSON schema (``"schema": {...}``): the comparison then asks every model for
structured output against it (``response_format``), and the ``schema`` scorer checks answers.

CSV with a header row: ``id,prompt,reference,scorers,tags`` (``scorers`` and ``tags`` separated
by ``|``); UTF-8, with or without the byte order mark Excel writes. A row may leave out optional
trailing fields but never have more fields than the header. YAML (needs PyYAML): a list of
mappings with the JSONL fields.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from typing_extensions import Self

from llmcompare.errors import ConfigurationError, LLMCompareError
from llmcompare.schema import SchemaError, response_format
from llmcompare.types import Message

__all__ = [
    "PROMPT_FILE_SUFFIXES",
    "PromptFileError",
    "PromptItem",
    "builtin_suite",
    "load_prompts",
]


class PromptFileError(LLMCompareError):
    """A prompt file could not be read; the message names the file and the line.

    Attributes:
        path: The file.
        line: The 1-based line (or CSV row, or YAML item) at fault, when known.
    """

    def __init__(self, message: str, *, path: str, line: int | None = None) -> None:
        self.path = path
        self.line = line
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {message}")


class PromptItem(BaseModel):
    """One item of a prompt set.

    Attributes:
        id: A unique id within the set.
        prompt: The prompt as a single user message (give this or ``messages``).
        messages: The conversation to answer (give this or ``prompt``).
        reference: The expected answer, for scorers that compare against one.
        scorers: Scorer names for this item (see :func:`llmcompare.scorers.scorer_from_name`);
            ``None`` uses the comparison's scorers.
        tags: Free labels, for grouping in reports.
        json_schema: A JSON schema the answer must follow (``schema`` in prompt files): the
            comparison sends it as every model's ``response_format`` unless ``compare`` is given
            one (``response_format=None`` runs the item unconstrained).
        stub: Code the answer completes, for code scorers (a function's signature and
            docstring, as in HumanEval): an answer that gives only the function's body is run
            after it.
    """

    # populate_by_name: the field is json_schema in Python (a field named "schema" would shadow
    # BaseModel.schema) and "schema" in files.
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    id: str = Field(min_length=1)
    prompt: str | None = None
    messages: tuple[Message, ...] | None = None
    reference: str | None = None
    scorers: tuple[str, ...] | None = None
    tags: tuple[str, ...] = ()
    json_schema: dict[str, Any] | None = Field(default=None, alias="schema")
    stub: str | None = None

    @field_validator("json_schema")
    @classmethod
    def _strict_subset(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        # Refused at load time, with the file and line, rather than when the run starts.
        if value is not None:
            try:
                response_format(value)
            except SchemaError as exc:
                raise ValueError(str(exc)) from None
        return value

    @model_validator(mode="after")
    def _one_prompt(self) -> Self:
        if (self.prompt is None) == (self.messages is None):
            raise ValueError("give exactly one of 'prompt' and 'messages'")
        if self.messages is not None and not self.messages:
            raise ValueError("'messages' must not be empty")
        return self

    def conversation(self) -> tuple[Message, ...]:
        """The messages to send: ``messages``, or ``prompt`` as one user message."""
        if self.messages is not None:
            return self.messages
        assert self.prompt is not None
        return (Message.user(self.prompt),)

    @classmethod
    def of(cls, value: PromptItem | str | Mapping[str, Any], *, index: int) -> PromptItem:
        """Turn a string, a mapping or an item into an item; strings get the id ``item-<index>``."""
        if isinstance(value, PromptItem):
            return value
        if isinstance(value, str):
            return cls(id=f"item-{index + 1}", prompt=value)
        data = dict(value)
        data.setdefault("id", f"item-{index + 1}")
        return cls.model_validate(data)


def _check_unique(items: list[PromptItem], path: str) -> list[PromptItem]:
    seen: dict[str, int] = {}
    for n, item in enumerate(items, 1):
        if item.id in seen:
            raise PromptFileError(
                f"duplicate id {item.id!r} (first at item {seen[item.id]})", path=path, line=n
            )
        seen[item.id] = n
    if not items:
        raise PromptFileError("no prompts in the file", path=path)
    return items


def _validation_message(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        parts.append(f"{loc}: {err['msg']}" if loc else err["msg"])
    return "; ".join(parts)


def _from_rows(rows: Iterable[tuple[int, Any]], path: str) -> list[PromptItem]:
    items = []
    for index, (line, row) in enumerate(rows):
        if not isinstance(row, Mapping):
            raise PromptFileError("each item must be an object/mapping", path=path, line=line)
        try:
            items.append(PromptItem.of(row, index=index))
        except ValidationError as exc:
            raise PromptFileError(_validation_message(exc), path=path, line=line) from None
    return _check_unique(items, path)


# Python's parsers recurse: a value nested thousands deep exhausts the stack, and no prompt
# item is nested more than a few levels.
_TOO_DEEP = "nested too deeply: a value holds lists or objects thousands of levels deep"


def _jsonl_rows(text: str, path: str) -> Iterable[tuple[int, Any]]:
    for line_no, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            yield line_no, json.loads(line)
        except json.JSONDecodeError as exc:
            raise PromptFileError(f"invalid JSON: {exc.msg}", path=path, line=line_no) from None
        except RecursionError:
            raise PromptFileError(_TOO_DEEP, path=path, line=line_no) from None


def _csv_rows(text: str, path: str) -> Iterable[tuple[int, Any]]:
    reader = csv.DictReader(io.StringIO(text))
    header = list(reader.fieldnames or ())
    known = set(PromptItem.model_fields)
    unknown = set(header) - known
    if unknown:
        raise PromptFileError(
            f"unknown column(s) {sorted(unknown)}; use {sorted(known - {'messages'})}",
            path=path,
            line=1,
        )
    # A repeated column would silently keep only its last value (and spoil the field counts).
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise PromptFileError(f"repeated column(s) {repeated}", path=path, line=1)
    for index, row in enumerate(reader):
        # The header is line 1; DictReader counts physical lines read so far.
        line = reader.line_num
        # DictReader puts the fields beyond the header in a list under the key None.
        extra = row.pop(None, None)
        if extra is not None:
            raise PromptFileError(
                f"row has {len(header) + len(extra)} fields but the header has {len(header)} "
                "(quote a value that holds a comma)",
                path=path,
                line=line,
            )
        # DictReader gives None for the fields a short row lacks: they are left out, as empty
        # ones are, so a row may end before its optional columns.
        given = sum(1 for v in row.values() if v is not None)
        data: dict[str, Any] = {k: v for k, v in row.items() if v not in (None, "")}
        for key in ("scorers", "tags"):
            if key in data:
                data[key] = [s.strip() for s in data[key].split("|") if s.strip()]
        if given < len(header):
            try:
                PromptItem.of(data, index=index)
            except ValidationError as exc:
                # Say the row is short: that, more than the field named, is what to fix.
                raise PromptFileError(
                    f"row has {given} field{'' if given == 1 else 's'} but the header has "
                    f"{len(header)}: {_validation_message(exc)}",
                    path=path,
                    line=line,
                ) from None
        yield line, data


def _yaml_rows(text: str, path: str) -> Iterable[tuple[int, Any]]:
    try:
        import yaml
    except ImportError:
        raise ConfigurationError(
            f"{path}: reading YAML prompt files needs PyYAML: pip install 'llmcompare[report]'"
        ) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise PromptFileError(f"invalid YAML: {exc}", path=path, line=line) from None
    except RecursionError:
        raise PromptFileError(_TOO_DEEP, path=path) from None
    if isinstance(data, Mapping) and "prompts" in data:
        data = data["prompts"]
    if not isinstance(data, list):
        raise PromptFileError("expected a list of items (or a 'prompts:' list)", path=path)
    return enumerate(data, 1)


_READERS: dict[str, Callable[[str, str], Iterable[tuple[int, Any]]]] = {
    ".jsonl": _jsonl_rows,
    ".ndjson": _jsonl_rows,
    ".csv": _csv_rows,
    ".yaml": _yaml_rows,
    ".yml": _yaml_rows,
}

PROMPT_FILE_SUFFIXES = frozenset(_READERS)
"""File name endings :func:`load_prompts` reads."""


def load_prompts(path: str | Path) -> list[PromptItem]:
    """Load a prompt set from a ``.jsonl``, ``.csv`` or ``.yaml``/``.yml`` file.

    Args:
        path: The file.

    Returns:
        The items, in file order.

    Raises:
        PromptFileError: When the file is missing, malformed, or an item is invalid; the message
            names the line.
    """
    p = Path(path)
    name = str(path)
    try:
        # utf-8-sig drops the byte order mark Excel writes at the start of a CSV file.
        text = p.read_text(encoding="utf-8-sig" if p.suffix.lower() == ".csv" else "utf-8")
    except FileNotFoundError:
        raise PromptFileError("no such file", path=name) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PromptFileError(f"cannot read: {exc}", path=name) from None
    reader = _READERS.get(p.suffix.lower())
    if reader is None:
        raise PromptFileError("unknown format: use .jsonl, .csv, .yaml or .yml", path=name)
    return _from_rows(reader(text, name), name)


def builtin_suite() -> list[PromptItem]:
    """The small suite that ships with llmcompare: 20 items with references.

    Facts, arithmetic, following a format, JSON output and summarising, each with its scorers,
    so a comparison runs with no files at all.
    """
    text = resources.files("llmcompare").joinpath("data/suite.jsonl").read_text(encoding="utf-8")
    return _from_rows(_jsonl_rows(text, "<builtin suite>"), "<builtin suite>")
