"""What a judge is asked, and how its reply is read.

The prompts follow MT-Bench's judge prompts (Zheng et al. 2023, FastChat ``llm_judge``): the
question, the reference answer when the item has one (reference-guided grading), the answer or
the two answers between ``[The Start of ...]`` / ``[The End of ...]`` markers, and an instruction
to reason first and give the verdict last. The verdict comes back as a JSON object with the
reasoning and the verdict, enforced as structured output (``response_format``) where the judge
model supports it. Otherwise, or when a structured reply was cut short, the reply is read by a
parse that accepts the usual forms (a JSON object, MT-Bench's ``[[A]]`` / ``[[5]]``, ``verdict:
B``, ``Grade: 7/10``, a bare verdict) and otherwise says plainly that it found none.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from llmcompare.judges._types import Said
from llmcompare.schema import ResponseFormat, response_format
from llmcompare.types import Completion, Message

__all__ = [
    "PAIRWISE_RUBRIC",
    "POINTWISE_RUBRIC",
    "grade_format",
    "pairwise_format",
    "pairwise_prompt",
    "pointwise_prompt",
    "question_text",
    "read_grade",
    "read_verdict",
]

PAIRWISE_RUBRIC = (
    "Please act as an impartial judge and evaluate the quality of the responses provided by two "
    "AI assistants to the user question displayed below. Choose the assistant that follows the "
    "user's instructions and answers the user's question better. Consider factors such as "
    "helpfulness, relevance, accuracy, depth, creativity and level of detail. Begin your "
    "evaluation by comparing the two responses and give a short explanation. Avoid any position "
    "biases and ensure that the order in which the responses were presented does not influence "
    "your decision. Do not allow the length of the responses to influence your evaluation. Do "
    "not favor certain names of the assistants. Be as objective as possible."
)
"""The default pairwise rubric: MT-Bench's pairwise judge prompt (``pair-v2``)."""

POINTWISE_RUBRIC = (
    "You are grading an answer to a question. Judge correctness first, then whether it follows "
    "the instructions in the question, then clarity."
)
"""The default pointwise rubric (the one :class:`llmcompare.scorers.Judge` always used)."""

_REFERENCE_NOTE = (
    "A reference answer is given: judge correctness against it first, and point out any mistake "
    "in an answer."
)


def question_text(conversation: Sequence[Message]) -> str:
    """The question as the judge sees it: the prompt alone, or the conversation turn by turn."""
    if len(conversation) == 1 and conversation[0].role == "user":
        return conversation[0].content
    return "\n".join(f"{m.role}: {m.content}" for m in conversation)


def _block(title: str, text: str) -> str:
    return f"[The Start of {title}]\n{text}\n[The End of {title}]"


def pairwise_prompt(
    rubric: str,
    question: str,
    reference: str | None,
    first: str,
    second: str,
    *,
    allow_tie: bool,
) -> list[Message]:
    """The two messages of a pairwise request: the rubric, then the question and both answers."""
    parts = [f"[User Question]\n{question}"]
    if reference is not None:
        parts.append(_block("Reference Answer", reference))
    parts.append(_block("Assistant A's Answer", first))
    parts.append(_block("Assistant B's Answer", second))
    choices = (
        '"A" if assistant A\'s answer is better, "B" if assistant B\'s answer is better, "tie" '
        "if neither is better"
        if allow_tie
        else '"A" if assistant A\'s answer is better, else "B": you must choose one'
    )
    parts.append(
        'Reply with a JSON object {"reasoning": "...", "verdict": "..."}: first your reasoning, '
        f"then your verdict: {choices}."
    )
    system = rubric if reference is None else f"{rubric} {_REFERENCE_NOTE}"
    return [Message.system(system), Message.user("\n\n".join(parts))]


def pointwise_prompt(
    rubric: str, question: str, reference: str | None, answer: str, scale: tuple[int, int]
) -> list[Message]:
    """The two messages of a pointwise request: the rubric, then the question and the answer."""
    low, high = scale
    given = f"\nReference answer: {reference}" if reference is not None else ""
    text = (
        f"Question:\n{question}{given}\n\nAnswer to grade:\n{answer}\n\n"
        f"Grade the answer from {low} (worst) to {high} (best). Reply with a JSON object "
        '{"reasoning": "...", "grade": N}: first your reasoning, then the grade, a whole number.'
    )
    system = rubric if reference is None else f"{rubric} {_REFERENCE_NOTE}"
    return [Message.system(system), Message.user(text)]


def pairwise_format(allow_tie: bool) -> ResponseFormat:
    """The verdict's JSON schema: the reasoning, then the verdict."""
    verdicts = ["A", "B", "tie"] if allow_tie else ["A", "B"]
    return response_format(
        {
            "title": "pairwise_verdict",
            "type": "object",
            "properties": {
                "reasoning": {"type": "string"},
                "verdict": {"type": "string", "enum": verdicts},
            },
            "required": ["reasoning", "verdict"],
            "additionalProperties": False,
        }
    )


def grade_format(scale: tuple[int, int]) -> ResponseFormat:
    """The grade's JSON schema: the reasoning, then a whole number on the scale."""
    low, high = scale
    return response_format(
        {
            "title": "pointwise_grade",
            "type": "object",
            "properties": {
                "reasoning": {"type": "string"},
                "grade": {"type": "integer", "minimum": low, "maximum": high},
            },
            "required": ["reasoning", "grade"],
            "additionalProperties": False,
        }
    )


# MT-Bench's judges write [[C]] for a tie.
_VERDICTS: dict[str, Said] = {"a": "A", "b": "B", "c": "tie", "tie": "tie"}
_BRACKETED = re.compile(r"\[\[\s*(A|B|C|tie)\s*\]\]", re.IGNORECASE)
_NAMED = re.compile(r"\bverdict\W{0,4}(A|B|tie)\b", re.IGNORECASE)
_BARE = re.compile(r"\W*(A|B|tie)\W*", re.IGNORECASE)
_GRADE_BRACKETED = re.compile(r"\[\[\s*(\d+(?:\.\d+)?)\s*\]\]")
_GRADE_NAMED = re.compile(r"\b(?:grade|rating|score)\W{0,4}(\d+(?:\.\d+)?)", re.IGNORECASE)
_GRADE_BARE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(?:/\s*\d+)?\s*\.?\s*")


def _object(completion: Completion) -> dict[str, Any] | None:
    """The reply's JSON object: the validated structured output, else one found in the text."""
    if isinstance(completion.parsed, dict):
        return completion.parsed
    text = completion.text
    fenced = re.search(r"```(?:json)?\s*(.*?)```", text, re.DOTALL)
    decoder = json.JSONDecoder()
    for candidate in [fenced.group(1)] if fenced else [text]:
        for start in (i for i, ch in enumerate(candidate) if ch == "{"):
            try:
                value, _ = decoder.raw_decode(candidate[start:])
            except json.JSONDecodeError:
                continue
            if isinstance(value, dict):
                return value
    return None


def _no_verdict(completion: Completion, what: str) -> str:
    if completion.refusal is not None:
        return f"the judge refused: {_clip(completion.refusal)}"
    why = f" ({completion.parse_error})" if completion.parse_error else ""
    cut = " (cut short by max_tokens)" if completion.finish_reason == "length" else ""
    return f"no {what} in the judge's reply{why}{cut}: {_clip(completion.text)!r}"


def _clip(text: str, width: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def read_verdict(completion: Completion, *, allow_tie: bool) -> tuple[Said | None, str, str | None]:
    """A pairwise reply as ``(verdict, reasoning, error)``; verdict ``"A"``, ``"B"`` or ``"tie"``.

    Example:
        >>> from llmcompare.types import Completion, Usage
        >>> def reply(text: str) -> Completion:
        ...     return Completion(text=text, finish_reason="stop", usage=Usage(), model="x:y")
        >>> read_verdict(reply('{"reasoning": "B is right.", "verdict": "B"}'), allow_tie=True)
        ('B', 'B is right.', None)
        >>> read_verdict(reply("A is wordier; both correct. [[C]]"), allow_tie=True)[0]
        'tie'
        >>> read_verdict(reply("I cannot tell."), allow_tie=True)[2]
        "no verdict in the judge's reply: 'I cannot tell.'"
    """
    found = _object(completion)
    reasoning = completion.text
    raw: object = None
    if found is not None:
        reasoning = str(found.get("reasoning", reasoning))
        raw = found.get("verdict")
    if not isinstance(raw, str) and completion.refusal is None:
        text = completion.text
        match = _BRACKETED.search(text) or _NAMED.search(text) or _BARE.fullmatch(text)
        raw = match.group(1) if match else None
    verdict = _VERDICTS.get(raw.strip().lower()) if isinstance(raw, str) else None
    if verdict is None or (verdict == "tie" and not allow_tie):
        return None, reasoning, _no_verdict(completion, "verdict")
    return verdict, reasoning, None


def read_grade(
    completion: Completion, scale: tuple[int, int]
) -> tuple[float | None, str, str | None]:
    """A pointwise reply as ``(grade, reasoning, error)``; a grade off the scale is no grade.

    Example:
        >>> from llmcompare.types import Completion, Usage
        >>> def reply(text: str) -> Completion:
        ...     return Completion(text=text, finish_reason="stop", usage=Usage(), model="x:y")
        >>> read_grade(reply('{"reasoning": "Right.", "grade": 9}'), (1, 10))
        (9.0, 'Right.', None)
        >>> read_grade(reply("Grade: 10/10"), (1, 10))[0], read_grade(reply("8"), (1, 10))[0]
        (10.0, 8.0)
    """
    found = _object(completion)
    reasoning = completion.text
    grade: float | None = None
    if found is not None:
        reasoning = str(found.get("reasoning", reasoning))
        raw = found.get("grade")
        if isinstance(raw, (int, float)) and not isinstance(raw, bool):
            grade = float(raw)
    if grade is None and completion.refusal is None:
        text = completion.text
        match = (
            _GRADE_BRACKETED.search(text)
            or _GRADE_NAMED.search(text)
            or _GRADE_BARE.fullmatch(text)
        )
        grade = float(match.group(1)) if match else None
    low, high = scale
    if grade is None or not low <= grade <= high:
        return None, reasoning, _no_verdict(completion, f"grade from {low} to {high}")
    return grade, reasoning, None
