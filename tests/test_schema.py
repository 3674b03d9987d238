"""The one schema normaliser, response_format on requests and records, and the JSON scorers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import jsonschema
import pydantic
import pytest

from llmcompare import Completion, Request, Usage, compare
from llmcompare.backends.fake import ScriptedModel
from llmcompare.prompts import PromptFileError, PromptItem, builtin_suite, load_prompts
from llmcompare.runs import request_key
from llmcompare.schema import SchemaError, normalise, response_format
from llmcompare.scorers import scorer_from_name


class Node(pydantic.BaseModel):
    """A recursive model: $defs and $ref, which strict mode supports."""

    label: Literal["a", "b"]
    children: list[Node] = []
    weight: float | None = None


def _strict_everywhere(schema: Any) -> None:
    """Every object of a schema lists all its properties as required and is closed."""
    if isinstance(schema, dict):
        if schema.get("type") == "object":
            assert schema["additionalProperties"] is False
            assert schema["required"] == list(schema["properties"])
        for value in schema.values():
            _strict_everywhere(value)
    elif isinstance(schema, list):
        for value in schema:
            _strict_everywhere(value)


def test_a_pydantic_schema_becomes_strict_and_keeps_its_meaning() -> None:
    original = Node.model_json_schema()
    strict = normalise(original)
    _strict_everywhere(strict)
    assert "title" not in json.dumps(strict)
    answer = {
        "label": "a",
        "children": [{"label": "b", "children": [], "weight": None}],
        "weight": 1,
    }
    # Valid against the strict schema, and so against the original too (it only narrows).
    jsonschema.validate(answer, strict)
    jsonschema.validate(answer, original)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"label": "a"}, strict)  # children and weight are now required
    assert normalise(strict) == strict  # normalising twice changes nothing


# OpenAI's structured-outputs guide ("Recursive schemas are supported"): "#" is root recursion.
ROOT_RECURSIVE = {
    "type": "object",
    "properties": {
        "label": {"type": "string"},
        "children": {"type": "array", "items": {"$ref": "#"}},
        "parent": {
            "anyOf": [{"$ref": "#", "description": "dropped: a bare $ref"}, {"type": "null"}]
        },
    },
}
# The same linked list under "definitions", the draft-07 name of "$defs" (pydantic v1 wrote it).
DEFINITIONS = {
    "definitions": {
        "node": {
            "type": "object",
            "properties": {
                "value": {"type": "integer"},
                "next": {"anyOf": [{"$ref": "#/definitions/node"}, {"type": "null"}]},
            },
        }
    },
    "$ref": "#/definitions/node",
}


@pytest.mark.parametrize("schema", [ROOT_RECURSIVE, DEFINITIONS], ids=["root-ref", "definitions"])
def test_recursive_schemas_strict_mode_supports_are_accepted(schema: dict[str, Any]) -> None:
    strict = normalise(schema)
    _strict_everywhere(strict)
    assert normalise(strict) == strict
    deep = (
        {"label": "a", "children": [{"label": "b", "children": [], "parent": None}], "parent": None}
        if schema is ROOT_RECURSIVE
        else {"value": 1, "next": {"value": 2, "next": None}}
    )
    # jsonschema follows the references itself: a deep answer validates against both schemas,
    # a wrong type three levels down fails the strict one.
    jsonschema.validate(deep, strict)
    jsonschema.validate(deep, schema)
    wrong = json.loads(json.dumps(deep).replace('"b"', "7").replace(": 2,", ': "2",'))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(wrong, strict)
    # And the llama side's grammar engine compiles it.
    llguidance = pytest.importorskip("llguidance")
    grammar = llguidance.LLMatcher.grammar_from_json_schema(strict)
    assert llguidance.LLMatcher.validate_grammar(grammar) == ""


def test_a_described_recursive_reference_stays_a_bare_ref() -> None:
    class Tree(pydantic.BaseModel):
        value: int
        kids: list[Tree] = pydantic.Field(description="the subtrees")
        up: Tree | None = pydantic.Field(None, description="the parent")

    strict = normalise(Tree.model_json_schema())
    _strict_everywhere(strict)
    text = json.dumps(strict)
    assert '"$ref": "#/$defs/Tree"' in text
    answer = {"value": 1, "kids": [{"value": 2, "kids": [], "up": None}], "up": None}
    jsonschema.validate(answer, strict)
    assert Tree.model_validate(answer).kids[0].value == 2
    with pytest.raises(SchemaError, match="points to itself"):
        normalise({"$ref": "#"})
    with pytest.raises(SchemaError, match=r"recursive \$ref '#' cannot carry \['minItems'\]"):
        normalise({"type": "object", "properties": {"a": {"$ref": "#", "minItems": 1}}})


@pytest.mark.parametrize(
    ("schema", "keyword"),
    [
        ({"type": "object", "properties": {"s": {"type": "string", "maxLength": 9}}}, "maxLength"),
        ({"type": "object", "properties": {"s": {"not": {"type": "string"}}}}, "not"),
        ({"type": "object", "patternProperties": {"^x": {"type": "string"}}}, "patternProperties"),
        ({"type": "object", "properties": {"n": {"type": "integer"}}, "if": {}}, "if"),
        ({"type": "object", "properties": {"a": {"allOf": [{}, {}]}}}, "allOf"),
        ({"type": "object", "properties": {"t": {"type": "string", "format": "zip"}}}, "zip"),
        (
            {"type": "object", "properties": {"a": {"type": "array", "uniqueItems": True}}},
            "uniqueItems",
        ),
        ({"type": "object", "properties": {"a": {"$ref": "http://x/y"}}}, "not local"),
        ({"type": "array", "items": {"type": "string"}}, "root of the schema must be an object"),
    ],
)
def test_what_strict_mode_cannot_express_is_refused_naming_it(
    schema: dict[str, Any], keyword: str
) -> None:
    with pytest.raises(SchemaError, match=keyword) as info:
        normalise(schema)
    assert "\n" not in str(info.value)


def test_a_request_carries_the_format_into_its_record_and_cache_key() -> None:
    request = Request.of("Who?", response_format=Node)
    assert request.response_format is not None
    assert request.response_format.model is Node
    saved = request.model_dump(mode="json")
    assert saved["response_format"]["json_schema"] == normalise(Node.model_json_schema())
    # Read back from JSON: the same request, so the same cache key.
    loaded = Request.model_validate_json(json.dumps(saved))
    assert loaded == request
    key = request_key({"id": "m"}, request)
    assert request_key({"id": "m"}, loaded) == key
    assert request_key({"id": "m"}, Request.of("Who?")) != key
    other = Request.of("Who?", response_format={"type": "object", "properties": {}})
    assert request_key({"id": "m"}, other) != key
    # Settings on top of a request keep the class it came from.
    assert Request.of(request, max_tokens=5).response_format.model is Node  # type: ignore[union-attr]


def test_a_completion_with_parsed_round_trips_as_json() -> None:
    request = Request.of("Who?", response_format=Node)
    model = ScriptedModel(['{"label": "b", "children": [], "weight": 2.5}'])
    got = model.generate(request)
    assert got.parsed == Node(label="b", weight=2.5)
    back = Completion.model_validate_json(got.model_dump_json())
    assert back.parsed == {"label": "b", "children": [], "weight": 2.5}  # saved as JSON
    from llmcompare.schema import attach

    assert attach(back, request).parsed == got.parsed  # the live format re-derives the object


def _answer(text: str, **fields: Any) -> Completion:
    return Completion(text=text, finish_reason="stop", usage=Usage(), model="fake:x", **fields)


def test_schema_and_json_fields_scorers() -> None:
    person, numbers = (i for i in builtin_suite() if i.json_schema is not None)
    schema, fields = scorer_from_name("schema"), scorer_from_name("json_fields")
    assert schema(_answer('{"name": "Ada", "age": 36}'), person) is True
    assert schema(_answer('{"name": "Ada", "age": "36"}'), person) is False
    assert schema(_answer('{"name": "Ada"'), person) is False
    assert schema(_answer("No.", refusal="No."), person) is False
    assert schema(_answer("x"), PromptItem(id="p", prompt="p")) is None
    assert fields(_answer('{"name": "ada", "age": 36.0}'), person) == 1.0
    assert fields(_answer('{"name": "Bob", "age": 36, "extra": 1}'), person) == 0.5
    assert fields(_answer("[1, 2, 3]"), numbers) == 0.0
    assert fields(_answer('{"numbers": [1, 2, 3]}'), numbers) == 1.0
    with pytest.raises(Exception, match="JSON object"):
        fields.check(PromptItem(id="p", prompt="p", reference="Paris"))  # type: ignore[attr-defined]


def test_an_items_schema_is_its_response_format_unless_the_call_gives_one() -> None:
    person = next(i for i in builtin_suite() if i.id == "json-person")
    model = ScriptedModel(default='{"name": "Ada", "age": 36}')
    constrained = compare([model], [person], progress=False)
    free = compare([model], [person], progress=False, response_format=None)
    assert model.history[0].response_format == response_format(person.json_schema)
    assert model.history[1].response_format is None
    assert constrained.rows[0].completion is not None
    assert constrained.rows[0].completion.parsed == {"name": "Ada", "age": 36}
    assert free.rows[0].scores == {"schema": 1.0, "json_fields": 1.0}


def test_a_prompt_file_schema_outside_the_subset_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    good = {"id": "a", "prompt": "p", "schema": {"type": "object", "properties": {}}}
    bad = {"id": "b", "prompt": "p", "schema": {"type": "object", "minProperties": 1}}
    path.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    with pytest.raises(PromptFileError, match=r"p.jsonl:2: .*minProperties"):
        load_prompts(path)


def _object(**properties: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties}


def _nested(levels: int) -> dict[str, Any]:
    """An object whose innermost property sits ``levels`` schemas below the root."""
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(levels):
        schema = _object(x=schema)
    return schema


# issue 22, item 18: OpenAI's published strict-mode limits are checked before anything is sent.
@pytest.mark.parametrize(
    ("schema", "limit", "path"),
    [
        # The review's case: 1,000 values of 52 characters (52,000 characters in one enum).
        (
            _object(c={"type": "string", "enum": [f"{i:04d}" + "x" * 48 for i in range(1000)]}),
            "15,000 characters",
            "/properties/c",
        ),
        # 1,001 enum values over three properties, each enum small.
        (
            _object(
                **{
                    p: {"type": "string", "enum": [f"{p}{i}" for i in range(n)]}
                    for p, n in (("a", 400), ("b", 400), ("c", 201))
                }
            ),
            "1,000 enum values",
            "/properties/c",
        ),
        # 250 values (no per-enum cap) of 500 characters: 125,000 characters in all.
        (
            _object(e={"type": "string", "enum": [f"{i:03d}" + "y" * 497 for i in range(250)]}),
            "120,000 characters",
            "/properties/e",
        ),
        # 5,001 properties, split over a definition and the root.
        (
            {
                "$defs": {"D": _object(**{f"d{i}": {"type": "integer"} for i in range(2500)})},
                **_object(
                    d={"$ref": "#/$defs/D"}, **{f"r{i}": {"type": "integer"} for i in range(2501)}
                ),
            },
            "5,000 properties",
            "/properties",
        ),
        # A -> B -> A: a cycle of definitions, not the recursion strict mode allows.
        (
            {
                "$defs": {
                    "A": _object(b={"anyOf": [{"$ref": "#/$defs/B"}, {"type": "null"}]}),
                    "B": _object(a={"anyOf": [{"$ref": "#/$defs/A"}, {"type": "null"}]}),
                },
                **_object(a={"$ref": "#/$defs/A"}),
            },
            "#/$defs/A -> #/$defs/B -> #/$defs/A",
            "/$defs/",
        ),
        # 11 levels in place, and 11 levels through references that are each shallow.
        (_object(top=_nested(10)), "10 levels", "/properties/top" + "/properties/x" * 10),
        (
            {
                "$defs": {
                    "L1": _object(x=_nested(6)),
                    "L2": _object(x=_nested(2), y={"$ref": "#/$defs/L1"}),
                },
                **_object(a=_object(b=_object(c={"$ref": "#/$defs/L2"}))),
            },
            "10 levels",
            "/properties/a/properties/b/properties/c",
        ),
    ],
    ids=[
        "enum-chars",
        "enum-values",
        "string-size",
        "properties",
        "ref-cycle",
        "depth",
        "depth-through-refs",
    ],
)
def test_a_schema_past_openais_strict_limits_is_refused_naming_the_limit_and_where(
    schema: dict[str, Any], limit: str, path: str
) -> None:
    with pytest.raises(SchemaError) as info:
        normalise(schema)
    message = str(info.value)
    assert "\n" not in message
    assert limit in message
    assert f" at {path}" in message
    # Nothing is sent: the request itself cannot be built.
    model = ScriptedModel(default="{}")
    with pytest.raises(SchemaError):
        model.generate("hi", response_format=schema)
    assert model.history == []


# issue 22, item 18
def test_schemas_at_openais_strict_limits_are_accepted() -> None:
    at_limits = _object(
        c={"type": "string", "enum": [f"{i:03d}" + "x" * 57 for i in range(250)]},
        d={"type": "string", "enum": [f"{i:03d}" + "x" * 12 for i in range(750)]},
        deep=_nested(9),
    )
    assert sum(len(v) for v in at_limits["properties"]["d"]["enum"]) == 11_250
    normalise(at_limits)
    # Self-recursion of one definition and recursion to the root stay accepted (see above).
    normalise(DEFINITIONS)
    normalise(ROOT_RECURSIVE)
