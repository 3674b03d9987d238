"""Scorers: how good an answer is, as a number in [0, 1].

A scorer is any callable ``scorer(completion, item) -> float | bool | None`` with a ``name``
attribute (or a ``__name__``): ``True``/``1.0`` is fully right, ``False``/``0.0`` fully wrong,
``None`` means "does not apply" (for example no reference answer) and is left out of averages.
A scorer may also have a ``check(item)`` method: :func:`~llmcompare.compare` calls it for every
item before any request is sent, so a reference the scorer cannot use (a broken regular
expression, a numeric reference without a number) is refused before the run is paid for.

Built in: :class:`Exact`, :class:`Contains`, :class:`Regex`, :class:`Numeric`, :class:`JsonValid`
(optionally against a pydantic model, or against each item's own schema), :class:`JsonFields`
(fields equal to a JSON reference), :class:`MaxLength`, and :class:`Judge`, which asks any
:class:`~llmcompare.Model` to grade the answer with a rubric (the pointwise judge of
:mod:`llmcompare.judges`, where pairwise judges and panels are too). Prompt files name scorers with
:func:`scorer_from_name` (``"exact"``, ``"contains"``, ``"regex"``, ``"numeric"``, ``"json"``,
``"schema"``, ``"json_fields"``, ``"max_words:25"``, ``"max_chars:200"``), and ``"unit_tests"``
(alias ``"pass"``), which runs the answer's code with the item's tests in a sandbox
(:class:`llmcompare.sandbox.UnitTests`), only when the user allows code execution.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from pydantic import BaseModel, ValidationError

from llmcompare.errors import ConfigurationError
from llmcompare.judges import POINTWISE_RUBRIC, PointwiseJudge
from llmcompare.schema import ResponseFormat, parse_json, response_format

if TYPE_CHECKING:
    from llmcompare.prompts import PromptItem
    from llmcompare.types import Completion

__all__ = [
    "Contains",
    "Exact",
    "JsonFields",
    "JsonValid",
    "Judge",
    "MaxLength",
    "Numeric",
    "Regex",
    "Scorer",
    "check_item",
    "normalise",
    "scorer_from_name",
    "scorer_name",
]


@runtime_checkable
class Scorer(Protocol):
    """The signature of a scorer: ``(completion, item) -> float | bool | None``."""

    def __call__(self, completion: Completion, item: PromptItem) -> float | bool | None:
        """Score one answer."""
        ...


def check_item(scorer: object, item: PromptItem) -> None:
    """Ask a scorer whether it can score an item, before anything is sent.

    Calls the scorer's ``check(item)`` when it has one; built-in scorers refuse references they
    cannot use.

    Raises:
        ConfigurationError: When the scorer cannot score the item; the message names both.
    """
    check = getattr(scorer, "check", None)
    if callable(check):
        check(item)


def scorer_name(scorer: object) -> str:
    """The name a scorer is reported under: its ``name`` attribute, else its ``__name__``."""
    name = getattr(scorer, "name", None) or getattr(scorer, "__name__", None)
    return str(name) if name else type(scorer).__name__


_PUNCT_EDGES = " \t\n\r\"'`.,;:!?()[]{}*_"


def normalise(text: str) -> str:
    """Lower-case, fold Unicode, collapse white space and trim punctuation at both ends."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(text.split()).strip(_PUNCT_EDGES)


class Exact:
    """1.0 when the answer equals the reference after :func:`normalise` (or exactly)."""

    def __init__(self, *, normalised: bool = True) -> None:
        self.name = "exact"
        self._normalised = normalised

    def __call__(self, completion: Completion, item: PromptItem) -> bool | None:
        """Compare the answer with the reference."""
        if item.reference is None:
            return None
        if self._normalised:
            return normalise(completion.text) == normalise(item.reference)
        return completion.text == item.reference


class Contains:
    """1.0 when the normalised reference appears in the normalised answer."""

    name = "contains"

    def check(self, item: PromptItem) -> None:
        """Refuse a reference that every answer contains (empty after normalising)."""
        if item.reference is not None and not normalise(item.reference):
            raise ConfigurationError(
                f"item {item.id!r}: the contains scorer needs a non-empty reference, got "
                f"{item.reference!r} (every answer would contain it)"
            )

    def __call__(self, completion: Completion, item: PromptItem) -> bool | None:
        """Look for the reference inside the answer."""
        if item.reference is None:
            return None
        return normalise(item.reference) in normalise(completion.text)


class Regex:
    """1.0 when a regular expression matches the answer.

    Args:
        pattern: The expression; by default the item's reference is the pattern.
    """

    def __init__(self, pattern: str | None = None) -> None:
        self.name = "regex"
        self._pattern = re.compile(pattern) if pattern is not None else None

    def check(self, item: PromptItem) -> None:
        """Refuse a reference that is not a regular expression, or one that matches anything."""
        if self._pattern is not None or item.reference is None:
            return
        try:
            compiled = re.compile(item.reference)
        except re.error as exc:
            raise ConfigurationError(
                f"item {item.id!r}: the regex reference {item.reference!r} does not compile: {exc}"
            ) from None
        if compiled.search("") is not None and compiled.pattern in ("", ".*", "^", "$"):
            raise ConfigurationError(
                f"item {item.id!r}: the regex reference {item.reference!r} matches every answer"
            )

    def __call__(self, completion: Completion, item: PromptItem) -> bool | None:
        """Search the answer."""
        pattern = self._pattern
        if pattern is None:
            if item.reference is None:
                return None
            pattern = re.compile(item.reference)
        return pattern.search(completion.text) is not None


_NUMBER = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?")


def _numbers(text: str) -> list[float]:
    return [float(m.group().replace(",", "")) for m in _NUMBER.finditer(text)]


class Numeric:
    """1.0 when the last number in the answer equals the reference within a tolerance.

    The last number is taken because answers often show their working ("17 + 25 = 42").

    Args:
        rel_tol: Relative tolerance.
        abs_tol: Absolute tolerance.
    """

    def __init__(self, *, rel_tol: float = 1e-6, abs_tol: float = 1e-9) -> None:
        self.name = "numeric"
        self._rel, self._abs = rel_tol, abs_tol

    def check(self, item: PromptItem) -> None:
        """Refuse a reference without a number."""
        if item.reference is not None and not _numbers(item.reference):
            raise ConfigurationError(
                f"item {item.id!r}: the numeric scorer's reference {item.reference!r} has no number"
            )

    def __call__(self, completion: Completion, item: PromptItem) -> bool | None:
        """Compare numbers."""
        if item.reference is None:
            return None
        self.check(item)
        expected = _numbers(item.reference)
        found = _numbers(completion.text)
        return bool(found) and math.isclose(
            found[-1], expected[-1], rel_tol=self._rel, abs_tol=self._abs
        )


def extract_json(text: str) -> Any:
    """Parse the first JSON value in ``text``, also inside a Markdown code fence.

    Raises:
        ValueError: When no JSON value can be parsed.
    """
    fenced = re.search(r"```(?:json)?\s*(.*?)```", text, re.DOTALL)
    candidates = [fenced.group(1)] if fenced else []
    candidates.append(text)
    decoder = json.JSONDecoder()
    for candidate in candidates:
        stripped = candidate.strip()
        for start, ch in enumerate(stripped):
            if ch in "[{":
                try:
                    value, _ = decoder.raw_decode(stripped[start:])
                except json.JSONDecodeError:
                    continue
                return value
    raise ValueError("no JSON value found")


class JsonValid:
    """1.0 when the answer holds valid JSON, and (if a schema applies) it validates.

    Three uses: ``JsonValid()`` (the ``"json"`` scorer) accepts any JSON value found in the
    answer, also inside a Markdown fence; ``JsonValid(Model)`` also validates it with a pydantic
    model; ``JsonValid(from_item=True)`` (the ``"schema"`` scorer) checks the answer against the
    item's own ``schema`` the way a ``response_format`` is checked (the whole answer must be the
    JSON value; a refusal scores 0) and does not score items without one.

    Args:
        schema: A pydantic model the JSON must validate against.
        from_item: Validate against each item's ``schema`` instead.
    """

    def __init__(self, schema: type[BaseModel] | None = None, *, from_item: bool = False) -> None:
        if from_item and schema is not None:
            raise ValueError("give a schema or from_item=True, not both")
        named = "json" if schema is None else f"json:{schema.__name__}"
        self.name = "schema" if from_item else named
        self._schema = schema
        self._from_item = from_item
        self._formats: dict[str, ResponseFormat] = {}

    def _format(self, schema: dict[str, Any]) -> ResponseFormat:
        key = json.dumps(schema, sort_keys=True)
        fmt = self._formats.get(key)
        if fmt is None:
            fmt = self._formats[key] = response_format(schema)
        return fmt

    def __call__(self, completion: Completion, item: PromptItem) -> bool | None:
        """Parse and validate."""
        if self._from_item:
            if item.json_schema is None:
                return None
            if completion.refusal is not None:
                return False
            return self._format(item.json_schema).parse(completion.text)[1] is None
        try:
            value = extract_json(completion.text)
        except ValueError:
            return False
        if self._schema is None:
            return True
        try:
            self._schema.model_validate(value)
        except ValidationError:
            return False
        return True


def _leaves(value: Any, prefix: str = "") -> dict[str, Any]:
    """A JSON object's fields by path (``owner.name``); arrays and scalars are leaves."""
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for key, sub in value.items():
            out.update(_leaves(sub, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


def _same(got: Any, want: Any) -> bool:
    if isinstance(want, str) and isinstance(got, str):
        return normalise(got) == normalise(want)
    if isinstance(want, bool) or isinstance(got, bool):
        return got is want
    if isinstance(want, (int, float)) and isinstance(got, (int, float)):
        return math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(want, list) and isinstance(got, list):
        return len(got) == len(want) and all(_same(g, w) for g, w in zip(got, want, strict=True))
    return bool(got == want)


class JsonFields:
    """The fraction of the reference's fields that the answer's JSON has, with equal values.

    The reference is a JSON object; nested objects count field by field (``owner.name``),
    arrays as one field each. Strings are compared after :func:`normalise`, numbers by value
    (``36`` equals ``36.0``). An answer that is not one JSON object scores 0.
    """

    name = "json_fields"

    def check(self, item: PromptItem) -> None:
        """Refuse a reference that is not a JSON object."""
        if item.reference is None:
            return
        try:
            value = parse_json(item.reference)
        except ValueError:
            value = None
        if not isinstance(value, dict) or not value:
            raise ConfigurationError(
                f"item {item.id!r}: the json_fields scorer needs a non-empty JSON object as its "
                f"reference, got {item.reference!r}"
            )

    def __call__(self, completion: Completion, item: PromptItem) -> float | None:
        """Compare field by field."""
        if item.reference is None:
            return None
        self.check(item)
        want = _leaves(parse_json(item.reference))
        parsed = completion.parsed
        if isinstance(parsed, BaseModel):
            parsed = parsed.model_dump(mode="json")
        if parsed is None:
            try:
                parsed = parse_json(completion.text)
            except ValueError:
                return 0.0
        if not isinstance(parsed, dict):
            return 0.0
        got = _leaves(parsed)
        return sum(1 for k, v in want.items() if k in got and _same(got[k], v)) / len(want)


class MaxLength:
    """1.0 when the answer is within a length limit in words or characters.

    Args:
        max_words: Most words allowed.
        max_chars: Most characters allowed.
    """

    def __init__(self, *, max_words: int | None = None, max_chars: int | None = None) -> None:
        if (max_words is None) == (max_chars is None):
            raise ValueError("give exactly one of max_words and max_chars")
        self._words, self._chars = max_words, max_chars
        self.name = f"max_words:{max_words}" if max_words is not None else f"max_chars:{max_chars}"

    def __call__(self, completion: Completion, item: PromptItem) -> bool:
        """Measure the answer."""
        if self._words is not None:
            return len(completion.text.split()) <= self._words
        assert self._chars is not None
        return len(completion.text.strip()) <= self._chars


DEFAULT_RUBRIC = POINTWISE_RUBRIC
"""The pointwise judge's default rubric (kept under its old name)."""

Judge = PointwiseJudge
"""The pointwise judge (:class:`llmcompare.judges.PointwiseJudge`), usable as a scorer.

``Judge(model, rubric=..., name="judge")`` grades each answer from 1 to 10 with its reasoning
(structured output where the model supports it); its score is ``(grade - 1) / 9``. Given as
``compare(judge=...)`` instead of a scorer, its requests are cached, budgeted and resumed.
"""


def scorer_from_name(spec: str, *, allow_code_execution: bool = False) -> Scorer:
    """Build a built-in scorer from its name in a prompt file.

    Args:
        spec: ``"exact"``, ``"contains"``, ``"regex"``, ``"numeric"``, ``"json"``,
            ``"schema"``, ``"json_fields"``, ``"max_words:N"``, ``"max_chars:N"`` or
            ``"unit_tests"`` (alias ``"pass"``).
        allow_code_execution: Let ``"unit_tests"`` run the models' code (off: it refuses every
            item before anything is sent).

    Raises:
        ConfigurationError: For an unknown name or a malformed limit.
    """
    name, _, arg = spec.strip().partition(":")
    simple: dict[str, type[Exact | Contains | Regex | Numeric | JsonValid]] = {
        "exact": Exact,
        "contains": Contains,
        "regex": Regex,
        "numeric": Numeric,
        "json": JsonValid,
    }
    if name in simple and not arg:
        return simple[name]()
    if name == "schema" and not arg:
        return JsonValid(from_item=True)
    if name == "json_fields" and not arg:
        return JsonFields()
    if name in ("max_words", "max_chars") and arg.isdigit():
        return MaxLength(**{name: int(arg)})
    if name in ("unit_tests", "pass") and not arg:
        from llmcompare.sandbox import UnitTests

        return UnitTests(allow_code_execution=allow_code_execution)
    known = [*simple, "schema", "json_fields", "max_words:N", "max_chars:N", "unit_tests"]
    raise ConfigurationError(f"unknown scorer {spec!r}; built-in scorers: {', '.join(known)}")
