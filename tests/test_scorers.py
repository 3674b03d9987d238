import pytest
from pydantic import BaseModel

from llmcompare import Completion, ConfigurationError, Usage
from llmcompare.backends.fake import ScriptedModel
from llmcompare.prompts import PromptItem
from llmcompare.scorers import (
    Contains,
    Exact,
    JsonValid,
    Judge,
    MaxLength,
    Numeric,
    Regex,
    normalise,
    scorer_from_name,
)


def answer(text: str) -> Completion:
    return Completion(text=text, finish_reason="stop", usage=Usage(), model="fake:x")


def item(reference: str | None = None) -> PromptItem:
    return PromptItem(id="i", prompt="q", reference=reference)


def test_normalise() -> None:
    assert normalise("  Yes.\n") == "yes"
    assert normalise('"Paris!"') == "paris"
    assert normalise("\uff21\uff22\uff23  def") == "abc def"


@pytest.mark.parametrize(
    ("scorer", "text", "reference", "expected"),
    [
        (Exact(), "Yes.", "yes", True),
        (Exact(), "Yes, it is.", "yes", False),
        (Exact(normalised=False), "Yes.", "yes", False),
        (Exact(), "anything", None, None),
        (Contains(), "The capital of France is Paris.", "paris", True),
        (Contains(), "I do not know.", "Paris", False),
        (Regex(), "HELLO", r"^\s*HELLO[.!]?\s*$", True),
        (Regex(r"\d{3}"), "call 911", None, True),
        (Numeric(), "17 + 25 = 42", "42", True),
        (Numeric(), "It costs 1,250.50 dollars", "1250.5", True),
        (Numeric(), "about 41", "42", False),
        (Numeric(), "no number here", "42", False),
        (MaxLength(max_words=3), "one two three", None, True),
        (MaxLength(max_words=3), "one two three four", None, False),
        (MaxLength(max_chars=5), "12345", None, True),
    ],
)
def test_builtin_scorers(
    scorer: object, text: str, reference: str | None, expected: object
) -> None:
    assert scorer(answer(text), item(reference)) == expected  # type: ignore[operator]


class Person(BaseModel):
    name: str
    age: int


def test_json_scorers() -> None:
    assert JsonValid()(answer('{"a": 1}'), item())
    assert JsonValid()(answer("Sure! ```json\n[1, 2, 3]\n``` done"), item())
    assert JsonValid()(answer('Here: {"name": "Ada", "age": 36} ok'), item())
    assert not JsonValid()(answer("{not json"), item())
    assert JsonValid(Person)(answer('{"name": "Ada", "age": 36}'), item())
    assert not JsonValid(Person)(answer('{"name": "Ada"}'), item())
    assert JsonValid(Person).name == "json:Person"


def test_judge_asks_the_model_and_parses_the_grade() -> None:
    grader = ScriptedModel(["8", "Grade: 10/10", "I cannot grade this"])
    judge = Judge(grader)
    q = item("Paris")
    assert judge(answer("Paris"), q) == pytest.approx(7 / 9)
    assert judge(answer("Paris"), q) == 1.0
    assert judge(answer("Paris"), q) is None
    sent = grader.history[0]
    assert sent.temperature == 0.0
    assert "Reference answer: Paris" in sent.messages[-1].content
    assert "Answer to grade:\nParis" in sent.messages[-1].content


def test_scorer_names() -> None:
    assert scorer_from_name("max_words:25").name == "max_words:25"  # type: ignore[attr-defined]
    assert isinstance(scorer_from_name("numeric"), Numeric)
    with pytest.raises(ConfigurationError, match="unknown scorer 'fuzzy'"):
        scorer_from_name("fuzzy")
    with pytest.raises(ConfigurationError):
        scorer_from_name("max_words:many")
