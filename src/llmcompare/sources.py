r"""Prompt sources beyond files: datasets, DataFrames, the Hugging Face Hub and the named suites.

:func:`load_source` turns any of these into prompt items:

* a ``datasets.Dataset``, or a ``DatasetDict`` and a split;
* a pandas ``DataFrame``;
* a hub id ``"hf:NAME[:CONFIG[:SPLIT]]"`` (``"hf:openai/gsm8k:main:test"``), which needs the
  network; ``hf:NAME::SPLIT`` leaves the config out;
* a folder written by ``Dataset.save_to_disk`` / ``DatasetDict.save_to_disk``;
* a JSONL or CSV file whose rows have other keys than the item's fields (a GSM8K download:
  ``question``, ``answer``), read with a field mapping;
* a suite name: ``"builtin"`` (the 20 built-in items) or ``"humaneval"``
  (:func:`llmcompare.humaneval.humaneval_suite`).

A :class:`FieldMap` says which column is which field of the item: ``prompt`` (or a
``template`` such as ``"Question: {question}\\nAnswer:"`` filled from each row), ``reference``,
``id``, ``system`` (a system message put first) and ``tags``. Without one, the columns named
like the item's fields are used (``prompt``, ``reference``, ``id``, ...), so a dataset holding
a prompt file's rows gives the same items as the file.

``datasets`` and ``pandas`` are optional (``pip install 'llmcompare[datasets]'``) and imported
only when a source needs them.
"""

from __future__ import annotations

import math
import os
import string
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from llmcompare.errors import ConfigurationError
from llmcompare.prompts import PromptFileError, PromptItem, _check_unique, _validation_message
from llmcompare.types import Message

__all__ = ["SUITES", "FieldMap", "is_source", "load_source"]

SUITES = ("builtin", "humaneval")
"""The named suites :func:`load_source` knows."""

_INSTALL = "pip install 'llmcompare[datasets]'"


class FieldMap(BaseModel):
    """Which column of a dataset holds which field of a prompt item.

    Attributes:
        prompt: The column holding the prompt.
        template: A prompt built from each row with :meth:`str.format` (``"Question:
            {question}"``); instead of ``prompt``.
        reference: The column holding the reference answer.
        id: The column holding a unique id (else ``item-1``, ``item-2``, ...).
        system: The column holding a system message to put first.
        tags: The column holding tags (a list, or text separated by ``|``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    prompt: str | None = None
    template: str | None = None
    reference: str | None = None
    id: str | None = None
    system: str | None = None
    tags: str | None = None

    @field_validator("template")
    @classmethod
    def _plain_fields(cls, value: str | None) -> str | None:
        if value is not None:
            _template_fields(value)
        return value


def _is_dataset(value: object) -> bool:
    datasets = sys.modules.get("datasets")
    return datasets is not None and isinstance(value, (datasets.Dataset, datasets.DatasetDict))


def _is_dataframe(value: object) -> bool:
    pandas = sys.modules.get("pandas")
    return pandas is not None and isinstance(value, pandas.DataFrame)


def is_source(value: object) -> bool:
    """Whether :func:`load_source` reads ``value`` (and :func:`load_prompts` does not).

    True for a dataset, a DataFrame, a hub id, a suite name or a saved dataset's folder.
    """
    if isinstance(value, (str, Path)):
        text = str(value)
        return text.startswith("hf:") or text in SUITES or Path(text).is_dir()
    return _is_dataset(value) or _is_dataframe(value)


def load_source(
    source: Any,
    *,
    fields: FieldMap | Mapping[str, str] | None = None,
    split: str | None = None,
    limit: int | None = None,
) -> list[PromptItem]:
    """Load prompt items from a dataset, a DataFrame, a hub id, a saved dataset or a suite.

    Args:
        source: See the module docstring.
        fields: Which column is which field; None uses the columns named like the fields.
        split: The split of a ``DatasetDict`` (or of a hub id without one); not needed when
            there is only one.
        limit: Only the first ``limit`` items.

    Returns:
        The items, in the source's order.

    Raises:
        ConfigurationError: A missing optional package (names the install command), a hub
            that cannot be reached (one line saying so), an unknown split, or a field mapping
            that names a column the source lacks (names the column and lists the columns).
        PromptFileError: A row that does not make a valid item (names the row).
    """
    mapping = fields if isinstance(fields, FieldMap) else _field_map(fields or {})
    if limit is not None and limit < 1:
        raise ConfigurationError(f"limit must be at least 1, got {limit}")
    name = _name(source)
    if isinstance(source, (str, Path)) and str(source) in SUITES:
        if fields:
            raise ConfigurationError(f"the {source} suite has its own fields: leave fields out")
        return _suite(str(source), limit)
    if isinstance(source, (str, Path)) and Path(source).suffix.lower() in _ROW_FILES:
        rows_read = _file_rows(Path(source))
        found = list(dict.fromkeys(k for row in rows_read for k in row))
        return _items(rows_read, found, mapping, name, limit)
    data = _open(source, split)
    if _is_dataframe(data):
        columns = [str(c) for c in data.columns]
        rows: Iterable[Mapping[str, Any]] = data.to_dict("records")
    else:
        columns = list(data.column_names)
        rows = data
    return _items(rows, columns, mapping, name, limit)


def _field_map(fields: Mapping[str, str]) -> FieldMap:
    try:
        return FieldMap.model_validate(fields)
    except ValidationError as exc:
        raise ConfigurationError(
            "; ".join(
                f"fields.{'.'.join(map(str, e['loc']))}: {e['msg'].removeprefix('Value error, ')}"
                for e in exc.errors()
            )
        ) from None


_ROW_FILES = (".jsonl", ".ndjson", ".csv")


def _file_rows(path: Path) -> list[dict[str, Any]]:
    """A JSONL or CSV file's rows as they are (no item fields expected)."""
    import csv
    import io

    from llmcompare.prompts import _jsonl_rows

    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise PromptFileError(f"cannot read: {exc}", path=str(path)) from None
    if path.suffix.lower() == ".csv":
        return [dict(row) for row in csv.DictReader(io.StringIO(text))]
    rows = []
    for line, row in _jsonl_rows(text, str(path)):
        if not isinstance(row, dict):
            raise PromptFileError("each line must be a JSON object", path=str(path), line=line)
        rows.append(row)
    return rows


def _suite(name: str, limit: int | None) -> list[PromptItem]:
    if name == "humaneval":
        from llmcompare.humaneval import humaneval_suite

        return humaneval_suite(limit=limit)
    from llmcompare.prompts import builtin_suite

    return builtin_suite()[:limit]


def _name(source: object) -> str:
    if isinstance(source, (str, Path)):
        return str(source)
    return f"<{type(source).__name__}>"


def _import_datasets(why: str) -> Any:
    try:
        import datasets
    except ImportError:
        raise ConfigurationError(f"{why} needs the datasets package: {_INSTALL}") from None
    return datasets


def _open(source: Any, split: str | None) -> Any:
    """The Dataset or DataFrame to read rows from."""
    if _is_dataframe(source):
        return source
    if isinstance(source, (str, Path)) and str(source).startswith("hf:"):
        source, split = _from_hub(str(source), split)
    elif isinstance(source, (str, Path)):
        datasets = _import_datasets(f"reading the saved dataset {source}")
        try:
            source = datasets.load_from_disk(str(source))
        except (FileNotFoundError, ValueError, OSError) as exc:
            raise ConfigurationError(f"{source}: not a saved dataset ({exc})") from None
    if not _is_dataset(source):
        raise ConfigurationError(
            f"cannot read prompts from a {type(source).__name__}: give a datasets.Dataset, a "
            "DatasetDict and a split, a pandas DataFrame, a hub id hf:NAME[:CONFIG[:SPLIT]] or "
            "a saved dataset's folder"
        )
    datasets = sys.modules["datasets"]
    if isinstance(source, datasets.DatasetDict):
        splits = list(source)
        if split is None and len(splits) == 1:
            split = splits[0]
        if split is None or split not in source:
            raise ConfigurationError(
                f"{'no split given' if split is None else f'no split {split!r}'}: choose one of "
                f"{splits}"
            )
        return source[split]
    if split is not None and str(source.split) != split:
        raise ConfigurationError(f"the dataset is the {source.split!r} split, not {split!r}")
    return source


def _offline() -> bool:
    return any(
        os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on")
        for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
    )


def _from_hub(spec: str, split: str | None) -> tuple[Any, str | None]:
    parts = spec[len("hf:") :].split(":")
    if not parts[0] or len(parts) > 3:
        raise ConfigurationError(f"{spec!r}: a hub id is hf:NAME[:CONFIG[:SPLIT]]")
    name, config, in_spec = parts[0], (parts[1:2] or [""])[0] or None, (parts[2:3] or [""])[0]
    split = in_spec or split
    datasets = _import_datasets(f"{spec}: loading from the Hugging Face Hub")
    try:
        return datasets.load_dataset(name, config, split=split), split
    except Exception as exc:  # noqa: BLE001 - every failure becomes one line that says what to do
        cause = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if _offline() or _network_error(exc):
            why = "HF_HUB_OFFLINE is set" if _offline() else "no network"
            raise ConfigurationError(
                f"{spec}: the Hugging Face Hub cannot be reached ({why}) and the dataset is not "
                "in the local cache; download it where there is a network and pass the folder "
                "of Dataset.save_to_disk instead"
            ) from None
        raise ConfigurationError(f"{spec}: cannot load it: {type(exc).__name__}: {cause}") from None


def _network_error(exc: BaseException) -> bool:
    """Whether a failure (or its causes) is a connection that could not be made."""
    seen: BaseException | None = exc
    while seen is not None:
        kind = type(seen).__name__
        if isinstance(seen, (ConnectionError, TimeoutError)) or any(
            word in kind for word in ("Connect", "Timeout", "Offline", "NetworkError")
        ):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _template_fields(template: str) -> list[str]:
    """The columns a template names; ValueError for bad syntax or a field that is not a column.

    A template formats columns only: ``{question}``, with a format spec if wanted
    (``{question:.200}``). Attribute and index access, conversions and nested fields would let a
    template reach into the objects behind a value (``{question.__class__.__mro__}``).
    """
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"template {template!r}: {_brace_problem(template) or exc}") from None
    names = []
    for _, field, spec, conversion in parsed:
        if field is None:
            continue
        if (
            not field
            or field.isdigit()
            or any(c in field for c in ".[]")
            or conversion
            or (spec and "{" in spec)
        ):
            shown = field + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "")
            raise ValueError(
                f"template {template!r}: {{{shown}}} is not a column: a template names columns "
                "only, as {question} (no attributes, indexes, conversions or nested fields)"
            )
        names.append(field)
    return names


def _brace_problem(template: str) -> str | None:
    """Where a template's braces go wrong, and the fix; None if they balance."""
    i = 0
    while i < len(template):
        if template.startswith(("{{", "}}"), i):
            i += 2
        elif template[i] == "{":
            depth, j = 1, i + 1
            while j < len(template) and depth:
                depth += {"{": 1, "}": -1}.get(template[j], 0)
                j += 1
            if depth:
                return (
                    f"the '{{' at position {i} is never closed: end the field with '}}', or "
                    "write '{{' for a literal '{'"
                )
            i = j
        elif template[i] == "}":
            return f"the '}}' at position {i} closes no field: write '}}}}' for a literal '}}'"
        else:
            i += 1
    return None


def _items(
    rows: Iterable[Mapping[str, Any]],
    columns: list[str],
    fields: FieldMap,
    name: str,
    limit: int | None,
) -> list[PromptItem]:
    if fields.prompt is not None and fields.template is not None:
        raise ConfigurationError("give a prompt column or a template, not both")
    chosen = fields.model_dump(exclude_none=True)
    if fields.prompt is None and fields.template is None:
        if "prompt" not in columns:
            raise ConfigurationError(
                f"{name}: no 'prompt' column: map one (prompt=COLUMN) or give a template; its "
                f"columns: {columns}"
            )
        chosen["prompt"] = "prompt"
    if not fields.model_fields_set:
        # No mapping: the columns named like the item's fields, as in a prompt file.
        for key in ("reference", "id", "system", "tags", "scorers", "stub"):
            if key in columns:
                chosen[key] = key
    wanted = [(k, v) for k, v in chosen.items() if k != "template"]
    wanted += [("template", f) for f in _template_fields(fields.template or "")]
    for key, column in wanted:
        if column not in columns:
            raise ConfigurationError(
                f"{name}: the {key} field names {column!r}, which is not a column; its columns: "
                f"{columns}"
            )
    items = []
    for index, row in enumerate(rows):
        if limit is not None and index >= limit:
            break
        data = _item_data(row, chosen, fields.template)
        data.setdefault("id", f"item-{index + 1}")
        try:
            items.append(PromptItem.model_validate(data))
        except ValidationError as exc:
            raise PromptFileError(_validation_message(exc), path=name, line=index + 1) from None
    return _check_unique(items, name)


def _value(row: Mapping[str, Any], column: str) -> Any:
    value = row[column]
    # pandas marks a missing cell as NaN.
    return None if isinstance(value, float) and math.isnan(value) else value


def _item_data(
    row: Mapping[str, Any], chosen: Mapping[str, str], template: str | None
) -> dict[str, Any]:
    data: dict[str, Any] = {}
    prompt = template.format_map(row) if template is not None else _value(row, chosen["prompt"])
    for key, column in chosen.items():
        if key in ("prompt", "template", "system"):
            continue
        value = _value(row, column)
        if value is None:
            continue
        if key in ("tags", "scorers"):
            value = [s.strip() for s in value.split("|")] if isinstance(value, str) else value
            data[key] = [str(v) for v in value if str(v)]
        else:
            data[key] = str(value)
    system = _value(row, chosen["system"]) if "system" in chosen else None
    if system is not None:
        data["messages"] = [Message.system(str(system)), Message.user(str(prompt))]
    else:
        data["prompt"] = None if prompt is None else str(prompt)
    return data
