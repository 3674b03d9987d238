"""Structured output: one JSON schema, normalised once, enforced by every backend.

:class:`ResponseFormat` is what a request carries as ``response_format``: a name and the schema in
the strict subset of JSON Schema that OpenAI's structured outputs accept (every property required,
``additionalProperties: false`` on every object, supported keywords only). Both backends receive
that one normalised schema — ChatGPT sends it as ``{"type": "json_schema", ..., "strict": true}``,
the Llama backend compiles it into a token mask — so a comparison asks both for exactly the same.

:func:`normalise` refuses, before anything is sent, a schema the strict subset cannot express,
with a one-line :class:`SchemaError` naming the keyword. Making an optional property required and
dropping annotations (``title``, ``default``, ``examples``) only narrows what is accepted, so an
answer valid against the normalised schema is valid against the original one too.

The rules followed are those of OpenAI's structured-outputs guide ("Supported schemas"): types
string, number, integer, boolean, object, array, null, with ``enum``, ``const``, ``anyOf``,
``$defs`` (or ``definitions``) with ``$ref``, and ``"$ref": "#"`` for recursion to the root
("Recursive schemas are supported"); strings take ``pattern`` and ``format`` (date-time, time,
date, duration, email, hostname, ipv4, ipv6, uuid); numbers ``minimum``, ``maximum``,
``exclusiveMinimum``, ``exclusiveMaximum``, ``multipleOf``; arrays ``items``, ``minItems``,
``maxItems``; the root is an object. Its published limits are checked too (see ``_MAX_DEPTH``):
nesting (also through ``$ref``), properties, enum values and string size; and a ``$ref`` cycle
through two or more definitions is refused (recursion to ``"#"`` or of one definition to itself
is what strict mode supports).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, PrivateAttr, ValidationError
from typing_extensions import Self

from llmcompare.errors import ConfigurationError

__all__ = [
    "ResponseFormat",
    "SchemaError",
    "attach",
    "check_formats",
    "normalise",
    "parse_json",
    "response_format",
]

# OpenAI's strict-mode limits, from the structured-outputs guide, "Supported schemas"
# (https://platform.openai.com/docs/guides/structured-outputs#supported-schemas): "A schema may
# have up to 5000 object properties total, with up to 10 levels of nesting"; "the total string
# length of all property names, definition names, enum values, and const values cannot exceed
# 120,000 characters"; "A schema may have up to 1000 enum values across all enum properties";
# "For a single enum property with string values, the total string length of all enum values
# cannot exceed 15,000 characters when there are more than 250 enum values". Checked here, so a
# schema past them fails before anything is sent, for every backend alike.
_MAX_DEPTH = 10
_MAX_PROPERTIES = 5000
_MAX_STRING_SIZE = 120_000
_MAX_ENUM_VALUES = 1000
_MAX_ENUM_CHARS = 15_000
_ENUM_CHARS_FROM = 250

_TYPES = frozenset({"string", "number", "integer", "boolean", "object", "array", "null"})
_FORMATS = frozenset(
    {"date-time", "time", "date", "duration", "email", "hostname", "ipv4", "ipv6", "uuid"}
)
# Annotations only: they constrain nothing, so dropping them keeps the schema's meaning.
_ANNOTATIONS = frozenset(
    {"title", "default", "examples", "$schema", "$id", "$comment", "deprecated", "readOnly"}
)
_KEYWORDS: dict[str, frozenset[str]] = {
    "any": frozenset(
        {"type", "description", "enum", "const", "anyOf", "$ref", "$defs", "definitions"}
    ),
    "string": frozenset({"pattern", "format"}),
    "number": frozenset(
        {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"}
    ),
    "object": frozenset({"properties", "required", "additionalProperties"}),
    "array": frozenset({"items", "minItems", "maxItems"}),
}
_KEYWORDS["integer"] = _KEYWORDS["number"]
_NAME = re.compile(r"[^A-Za-z0-9_-]+")


class SchemaError(ConfigurationError):
    """A schema that OpenAI's strict structured outputs cannot express; the message names why."""


def _fail(path: str, why: str) -> SchemaError:
    return SchemaError(f"response_format: {why} at {path or '/'}")


def _within(total: int, most: int, what: str, path: str) -> None:
    """Refuse a schema whose running ``total`` of ``what`` passed OpenAI's limit ``most``."""
    if total > most:
        raise _fail(
            path, f"more than {most:,} {what} in all are unsupported (OpenAI's strict-mode limit)"
        )


class _Ref(NamedTuple):
    """A ``$ref`` met on the walk: in which part (the root ``#`` or a definition), to where."""

    owner: str
    target: str
    depth: int
    path: str
    bare: bool  # kept as a $ref in the output (not inlined): its target's depth adds to its own


class _Normaliser:
    def __init__(self, root: Mapping[str, Any]) -> None:
        self.root = root
        self.properties = 0
        self.enum_values = 0
        self.string_size = 0
        # The references being inlined, outermost first: one met again is a recursion. The
        # root is always being walked, so "#" is a recursion wherever it appears.
        self.inlining: list[str] = ["#"]
        # The part being walked ("#", or "#/$defs/<name>"), how deep each part goes, and
        # every reference: checked once the walk is done, for cycles and nesting through refs.
        self.owner = "#"
        self.deepest: dict[str, int] = {}
        self.refs: list[_Ref] = []

    def resolve(self, ref: str, path: str) -> Mapping[str, Any]:
        if ref == "#":  # recursion to the root, as OpenAI's strict mode allows
            return self.root
        if not ref.startswith("#/"):
            raise _fail(
                path, f"$ref {ref!r} is not local (only '#' and '#/...' references are supported)"
            )
        node: Any = self.root
        for raw in ref[2:].split("/"):
            part = raw.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, Mapping) or part not in node:
                raise _fail(path, f"$ref {ref!r} points nowhere")
            node = node[part]
        if not isinstance(node, Mapping):
            raise _fail(path, f"$ref {ref!r} is not a schema")
        return node

    def strings(self, size: int, path: str) -> None:
        """Count characters of names, enum and const values against the schema's total."""
        self.string_size += size
        _within(
            self.string_size,
            _MAX_STRING_SIZE,
            "characters of property names, definition names, enum and const values",
            path,
        )

    def enum(self, values: Any, path: str) -> None:
        """Count an enum against OpenAI's limits on enum values."""
        if not isinstance(values, list):
            return
        self.enum_values += len(values)
        _within(self.enum_values, _MAX_ENUM_VALUES, "enum values", path)
        chars = sum(len(v) for v in values if isinstance(v, str))
        if len(values) > _ENUM_CHARS_FROM and chars > _MAX_ENUM_CHARS:
            raise _fail(
                path,
                f"an enum of more than {_ENUM_CHARS_FROM} values may hold at most "
                f"{_MAX_ENUM_CHARS:,} characters, this one {chars:,} (OpenAI's strict-mode limit)",
            )
        self.strings(chars, path)

    def definitions(self, key: str, value: Any, sub: str) -> dict[str, Any]:
        """Walk the definitions, each as its own part (a reference's target)."""
        defs = dict(value)
        self.strings(sum(len(n) for n in defs), sub)
        out: dict[str, Any] = {}
        for name, schema in defs.items():
            self.owner = f"#/{key}/" + name.replace("~", "~0").replace("/", "~1")
            try:
                out[name] = self.node(schema, f"{sub}/{name}", 1)
            finally:
                self.owner = "#"
        return out

    def keyword(self, out: dict[str, Any], key: str, value: Any, path: str, depth: int) -> None:
        sub = f"{path}/{key}"
        if key == "$ref":
            self.resolve(str(value), path)
            self.refs.append(_Ref(self.owner, str(value), depth, path, bare=True))
            out[key] = value
        elif key in ("$defs", "definitions"):
            # "definitions" is the older name (draft-07, pydantic v1); OpenAI accepts both.
            if depth:
                raise _fail(path, f"{key} is supported at the root only")
            out[key] = self.definitions(key, value, sub)
        elif key == "anyOf":
            if not isinstance(value, list) or not value:
                raise _fail(path, "anyOf must be a non-empty list")
            out[key] = [self.node(s, f"{sub}/{i}", depth + 1) for i, s in enumerate(value)]
        elif key == "items":
            out[key] = self.node(value, sub, depth + 1)
        elif key == "properties":
            props = dict(value)
            self.properties += len(props)
            _within(self.properties, _MAX_PROPERTIES, "properties", sub)
            self.strings(sum(len(n) for n in props), sub)
            out[key] = {n: self.node(s, f"{sub}/{n}", depth + 1) for n, s in props.items()}
        elif key == "additionalProperties":
            if value is not False:
                raise _fail(
                    path, "keyword 'additionalProperties' must be false (open maps are unsupported)"
                )
        elif key == "format" and value not in _FORMATS:
            raise _fail(path, f"format {value!r} is unsupported")
        else:
            if key == "enum":
                self.enum(value, path)
            elif key == "const" and isinstance(value, str):
                self.strings(len(value), path)
            out[key] = copy.deepcopy(value)

    def node(self, schema: Any, path: str, depth: int) -> dict[str, Any]:
        if not isinstance(schema, Mapping):
            raise _fail(path, "a schema must be a JSON object (true/false schemas are unsupported)")
        if depth > _MAX_DEPTH:
            raise _fail(path, f"nesting deeper than {_MAX_DEPTH} levels is unsupported")
        self.deepest[self.owner] = max(self.deepest.get(self.owner, 0), depth)
        schema = {k: v for k, v in schema.items() if k not in _ANNOTATIONS}
        all_of = schema.pop("allOf", None)
        if all_of is not None:
            # pydantic wraps a described $ref in a one-element allOf; more is an intersection.
            if not isinstance(all_of, list) or len(all_of) != 1:
                raise _fail(path, "allOf is unsupported (only a single-element allOf is inlined)")
            schema = {**all_of[0], **schema}
            return self.node(schema, path, depth)
        ref = schema.get("$ref")
        if ref is not None and len(schema) > 1:
            return self.inline(str(ref), schema, path, depth)
        names = self.types(schema, path)
        out: dict[str, Any] = {}
        for key, value in schema.items():
            if key != "required":  # rebuilt below: every property is required
                self.keyword(out, key, value, path, depth)
        if "object" in names:
            out.setdefault("properties", {})
            out["required"] = list(out["properties"])
            out["additionalProperties"] = False
        return out

    def inline(self, ref: str, schema: dict[str, Any], path: str, depth: int) -> dict[str, Any]:
        """A ``$ref`` beside other keywords: inlined, the local keywords winning."""
        target = self.resolve(ref, path)
        recursive = ref in self.inlining
        self.refs.append(_Ref(self.owner, ref, depth, path, bare=recursive))
        if recursive:
            # A recursive reference cannot be inlined (it would never end): it stays a bare
            # $ref, as strict mode wants, which only a description may be dropped for.
            rest = sorted(set(schema) - {"$ref", "description"})
            if rest:
                raise _fail(path, f"the recursive $ref {ref!r} cannot carry {rest}")
            return {"$ref": ref}
        merged = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
        self.inlining.append(ref)
        try:
            return self.node(merged, path, depth)
        finally:
            self.inlining.pop()

    def part(self, ref: str) -> str | None:
        """The definition a reference points into (``"#/$defs/A"``), or None for the root."""
        for owner in self.deepest:
            if owner != "#" and (ref == owner or ref.startswith(owner + "/")):
                return owner
        return None

    def check_references(self) -> None:
        """Refuse cycles through two or more definitions, and nesting too deep through refs.

        Recursion to the root (``"#"``) and of one definition to itself is what strict mode
        supports; it is not followed for depth (it is unbounded by design).
        """
        edges: dict[str, list[_Ref]] = {}
        for ref in self.refs:
            target = self.part(ref.target)
            if target is not None and target != ref.owner:
                edges.setdefault(ref.owner, []).append(ref._replace(target=target))
        done: set[str] = set()

        def visit(owner: str, trail: list[str]) -> None:
            for ref in edges.get(owner, ()):
                if ref.target in trail:
                    cycle = [*trail[trail.index(ref.target) :], ref.target]
                    raise _fail(
                        ref.path,
                        f"the $ref cycle {' -> '.join(cycle)} is unsupported (only '#' and a "
                        "definition that refers to itself may recurse)",
                    )
                if ref.target not in done:
                    visit(ref.target, [*trail, ref.target])
            done.add(owner)

        for owner in list(edges):
            if owner != "#" and owner not in done:
                visit(owner, [owner])
        reach: dict[str, int] = {}

        def below(owner: str) -> int:
            # How many levels a part goes below its own top (a definition is walked from 1).
            if owner not in reach:
                top = 0 if owner == "#" else 1
                levels = self.deepest.get(owner, top) - top
                for ref in edges.get(owner, ()):
                    if ref.bare:
                        levels = max(levels, ref.depth - top + below(ref.target))
                reach[owner] = levels
            return reach[owner]

        for ref in (r for refs in edges.values() for r in refs if r.bare):
            if ref.depth + below(ref.target) > _MAX_DEPTH:
                raise _fail(
                    ref.path,
                    f"nesting deeper than {_MAX_DEPTH} levels is unsupported "
                    f"(through $ref {ref.target!r})",
                )

    def types(self, schema: dict[str, Any], path: str) -> list[str]:
        """The node's type names (``object`` added when it has properties), its keywords checked."""
        types = schema.get("type")
        names = [types] if isinstance(types, str) else list(types or [])
        for name in names:
            if name not in _TYPES:
                raise _fail(path, f"type {name!r} is unsupported")
        allowed = set(_KEYWORDS["any"])
        if "properties" in schema or "object" in names:
            names.append("object")
        for name in names:
            allowed |= _KEYWORDS.get(name, frozenset())
        for key in schema:
            if key not in allowed:
                raise _fail(path, f"keyword {key!r} is unsupported")
        if not names and not {"enum", "const", "anyOf", "$ref"} & set(schema):
            raise _fail(path, "a schema without 'type' (any value) is unsupported")
        return names


def normalise(schema: Mapping[str, Any]) -> dict[str, Any]:
    """Turn a JSON schema into the strict subset OpenAI's structured outputs accept.

    Args:
        schema: A JSON schema whose root is an object (a pydantic ``model_json_schema()``, say).

    Returns:
        A new schema: every object lists all its properties as required and has
        ``additionalProperties: false``; annotations are dropped; ``$ref`` beside other keywords
        and single-element ``allOf`` are inlined.

    Raises:
        SchemaError: When the schema uses something the strict subset cannot express; the
            message names the keyword and where it is.

    Example:
        >>> normalise({"type": "object", "properties": {"n": {"type": "integer"}}})
        {'type': 'object', 'properties': {'n': {'type': 'integer'}}, 'required': ['n'], \
'additionalProperties': False}
    """
    if not isinstance(schema, Mapping):
        raise SchemaError("response_format: the schema must be a JSON object (a dict)")
    walker = _Normaliser(schema)
    root = dict(schema)
    defs = {k: root[k] for k in ("$defs", "definitions") if k in root}
    if "$ref" in root and set(root) - {"$ref", *defs} <= _ANNOTATIONS:
        # A root that only points into its definitions (pydantic's recursive models) becomes
        # what it points to; the definitions stay, for the references inside.
        ref = str(root["$ref"])
        if ref == "#":
            raise SchemaError("response_format: the root's $ref '#' points to itself")
        walker.inlining.append(ref)
        root = {**walker.resolve(ref, ""), **{k: v for k, v in defs.items() if v}}
    out = walker.node(root, "", 0)
    walker.check_references()
    if out.get("type") != "object":
        raise SchemaError(
            "response_format: the root of the schema must be an object (type 'object'), "
            f"not {out.get('type') or 'anyOf/enum'}"
        )
    return out


def parse_json(text: str) -> Any:
    """Parse an answer that should be one JSON value, also when wrapped in a Markdown fence.

    Unlike a search for the first JSON value anywhere in the text, this never picks an inner
    object out of a cut-off answer.

    Raises:
        ValueError: When the text is not one JSON value.
    """
    body = text.strip()
    fenced = re.fullmatch(r"```[A-Za-z]*\s*(.*?)\s*```", body, re.DOTALL)
    if fenced:
        body = fenced.group(1)
    try:
        return json.loads(body)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc.msg} at character {exc.pos}") from None


class ResponseFormat(BaseModel):
    """The structured-output constraint of a request: a name and a normalised JSON schema.

    Build one with :func:`response_format` (requests do it for you from a pydantic model class
    or a JSON schema dict). It is saved with a request as ``{"name", "json_schema"}``; the
    pydantic class it came from, when any, stays with the live object only.

    Attributes:
        name: The schema's name as sent to OpenAI (letters, digits, ``_`` and ``-``).
        json_schema: The normalised strict schema both backends enforce.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    json_schema: dict[str, Any]
    _model: type[BaseModel] | None = PrivateAttr(default=None)

    def __hash__(self) -> int:
        # The schema is a dict: hash its canonical text, so requests stay hashable.
        return hash((self.name, self.canonical()))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ResponseFormat):
            return NotImplemented
        return self.name == other.name and self.json_schema == other.json_schema

    @property
    def model(self) -> type[BaseModel] | None:
        """The pydantic class answers are validated into, when the format came from one."""
        return self._model

    def canonical(self) -> str:
        """The schema as canonical JSON text (sorted keys): one text per schema."""
        return json.dumps(self.json_schema, sort_keys=True, separators=(",", ":"))

    def openai(self) -> dict[str, Any]:
        """The ``response_format`` parameter of OpenAI's chat completions, strict."""
        return {
            "type": "json_schema",
            "json_schema": {"name": self.name, "schema": self.json_schema, "strict": True},
        }

    def parse(self, text: str) -> tuple[Any, str | None]:
        """Parse and validate an answer.

        Returns:
            ``(parsed, None)`` when it validates — the pydantic object for a model class, else
            the JSON value — or ``(None, why)`` when it does not.
        """
        try:
            value = parse_json(text)
        except ValueError as exc:
            return None, str(exc)
        if self._model is not None:
            try:
                return self._model.model_validate(value), None
            except ValidationError as exc:
                return None, _one_line(exc)
        import jsonschema  # imported on first use: most runs never validate a dict schema

        error = jsonschema.exceptions.best_match(
            jsonschema.Draft202012Validator(self.json_schema).iter_errors(value)
        )
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path)
            return None, f"does not match the schema at /{where}: {error.message}"
        return value, None


def _one_line(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:3]:
        loc = ".".join(str(p) for p in err["loc"])
        parts.append(f"{loc}: {err['msg']}" if loc else err["msg"])
    more = exc.error_count() - len(parts)
    return "does not validate: " + "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def _name(raw: object) -> str:
    name = _NAME.sub("_", str(raw or "")).strip("_")[:64]
    return name or "response"


def response_format(value: Any) -> ResponseFormat:
    """Turn what a user gives as ``response_format`` into a :class:`ResponseFormat`.

    Args:
        value: A pydantic model class, a JSON schema dict, OpenAI's own
            ``{"type": "json_schema", "json_schema": {"name", "schema", ...}}`` form, a saved
            ``{"name", "json_schema"}`` record, or a :class:`ResponseFormat`.

    Raises:
        SchemaError: When the schema is outside the strict subset (see :func:`normalise`).
        TypeError: For anything else.
    """
    if isinstance(value, ResponseFormat):
        return value
    if isinstance(value, type) and issubclass(value, BaseModel):
        fmt = ResponseFormat(
            name=_name(value.__name__), json_schema=normalise(value.model_json_schema())
        )
        fmt._model = value
        return fmt
    if isinstance(value, Mapping):
        if set(value) == {"name", "json_schema"} and isinstance(value["json_schema"], Mapping):
            # A saved record: normalising again is a no-op for a schema that was normalised.
            return ResponseFormat(
                name=_name(value["name"]), json_schema=normalise(value["json_schema"])
            )
        if value.get("type") == "json_schema" and isinstance(value.get("json_schema"), Mapping):
            inner = value["json_schema"]
            return ResponseFormat(
                name=_name(inner.get("name")), json_schema=normalise(inner.get("schema") or {})
            )
        return ResponseFormat(name=_name(value.get("title")), json_schema=normalise(value))
    raise TypeError(
        "response_format must be a pydantic model class or a JSON schema dict, "
        f"not {type(value).__name__}"
    )


class _Asked(Protocol):
    """What :func:`attach` and :func:`check_formats` read of a request: its format.

    A structural type, so this module never imports :mod:`llmcompare.types` (which imports it).
    """

    @property
    def response_format(self) -> ResponseFormat | None:
        """The request's format, if any."""
        ...


class _Answer(Protocol):
    """What :func:`attach` reads of a :class:`~llmcompare.Completion` and fills in."""

    @property
    def text(self) -> str:
        """The answer's text."""
        ...

    @property
    def refusal(self) -> str | None:
        """The model's refusal, if it refused."""
        ...

    @property
    def parsed(self) -> Any:
        """The parsed answer, once parsed."""
        ...

    @property
    def parse_error(self) -> str | None:
        """Why the answer did not parse, once parsed."""
        ...

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy with the fields in ``update`` replaced."""
        ...


_AnswerT = TypeVar("_AnswerT", bound=_Answer)


def attach(completion: _AnswerT, request: _Asked) -> _AnswerT:
    """Fill in a completion's ``parsed`` and ``parse_error`` from its request's format.

    Every call path of :class:`~llmcompare.ModelBase` does this, so a backend only produces
    text. A refusal is left as it is: it is an answer, not a parse error. An answer read back
    from a record or the cache gets the pydantic object again from the live request's format.

    Args:
        completion: The answer (a :class:`~llmcompare.Completion`).
        request: The request it answers (a :class:`~llmcompare.Request`).

    Returns:
        The completion, with ``parsed`` / ``parse_error`` set when the request has a
        ``response_format``; unchanged otherwise.
    """
    fmt = request.response_format
    if fmt is None or completion.refusal is not None:
        return completion
    done = completion.parsed is not None and (
        isinstance(completion.parsed, fmt.model) if fmt.model is not None else True
    )
    if done or (completion.parse_error is not None and completion.parsed is None):
        return completion
    parsed, error = fmt.parse(completion.text)
    return completion.model_copy(update={"parsed": parsed, "parse_error": error})


def check_formats(model: object, requests: Iterable[_Asked]) -> None:
    """Ask a model, before anything is sent, whether it can enforce each response format.

    Each distinct ``response_format`` of the requests goes once to the model's
    ``check_response_format`` hook (see :meth:`~llmcompare.ModelBase.check_response_format`),
    which refuses a setup that cannot run: a ChatGPT model without structured outputs, a
    missing llguidance. ``compare``, ``generate_many`` and ``generate_batch`` call it, so such a
    setup fails the whole call at once instead of row by row after others were paid for. A
    model without the hook is not asked.

    Args:
        model: Any model.
        requests: The requests (:class:`~llmcompare.Request`) about to be sent.

    Raises:
        ConfigurationError: The model's refusal: one line naming the model and the fix.
    """
    hook = getattr(model, "check_response_format", None)
    if hook is None:
        return
    seen: set[int] = set()
    asked: list[ResponseFormat] = []
    for request in requests:
        fmt = request.response_format
        # Requests built from one setting share one format object: most are skipped by id.
        if fmt is None or id(fmt) in seen:
            continue
        seen.add(id(fmt))
        if fmt not in asked:
            asked.append(fmt)
            hook(fmt)
