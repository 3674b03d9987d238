"""The judges: :class:`PairwiseJudge`, :class:`PointwiseJudge` and :class:`JudgePanel`.

A judge is a model, a rubric and a way of asking. It builds each request (the question, the
reference when the item has one, the answer or the two answers) and reads each reply; sending
is the run's business (:mod:`llmcompare.judges._send`), so a judge's requests are cached,
retried, rate-limited, budgeted and resumed like the compared models' own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar, Literal, cast

from llmcompare.errors import ConfigurationError
from llmcompare.judges._prompts import (
    PAIRWISE_RUBRIC,
    POINTWISE_RUBRIC,
    grade_format,
    pairwise_format,
    pairwise_prompt,
    pointwise_prompt,
    question_text,
    read_grade,
    read_verdict,
)
from llmcompare.judges._types import JudgeInfo, Mode
from llmcompare.schema import ResponseFormat, check_formats
from llmcompare.types import Completion, Message, Request, Settings

if TYPE_CHECKING:
    from llmcompare.model import Model
    from llmcompare.prompts import PromptItem

__all__ = ["Judge", "JudgePanel", "PairwiseJudge", "PointwiseJudge", "Vote"]

Vote = Literal["majority", "mean"]
"""How a panel combines its judges' verdicts."""

_MAX_TOKENS = 1024


class _Base:
    """What both judges share: the model, the rubric, the name, structured output or not."""

    mode: ClassVar[Mode]

    def __init__(
        self,
        model: Model,
        rubric: str,
        name: str,
        max_tokens: int,
        structured: bool | None,
        settings: Settings | None,
    ) -> None:
        if settings and "response_format" in settings:
            raise ConfigurationError(
                "a judge sets its own response_format (its verdict's schema): leave it out of "
                "the judge's settings"
            )
        if not rubric.strip():
            raise ConfigurationError("a judge's rubric must not be empty")
        if not name.strip():
            raise ConfigurationError("a judge's name must not be empty")
        if max_tokens < 1:
            raise ConfigurationError(f"a judge's max_tokens must be 1 or more, got {max_tokens}")
        self.model = model
        self.rubric = rubric
        self.name = name
        self.max_tokens = max_tokens
        self.settings = cast("Settings", dict(settings or {}))
        self._structured = structured

    def _format(self) -> ResponseFormat:
        raise NotImplementedError

    @property
    def structured(self) -> bool:
        """Whether verdicts come as structured output: where the judge model supports it.

        Asked once of the model (its ``check_response_format``, which sends nothing); a model
        that refuses the schema is asked in plain text and its reply parsed.
        """
        if self._structured is None:
            probe = Request.of("probe", response_format=self._format())
            try:
                check_formats(self.model, [probe])
            except ConfigurationError:
                self._structured = False
            else:
                self._structured = True
        return self._structured

    def _request(self, messages: list[Message]) -> Request:
        # Greedy: a judge should give the same verdict for the same request.
        fmt = self._format() if self.structured else None
        return Request.of(
            messages, temperature=0.0, max_tokens=self.max_tokens, response_format=fmt
        )


class PairwiseJudge(_Base):
    """Show a judge the question and two answers, and ask which is better.

    With ``swap`` (the default) every pair is asked twice, the answers in both orders; a
    verdict that flips with the order is counted as a tie and marked inconsistent (MT-Bench's
    rule, Zheng et al. 2023), so a judge's preference for a position cannot pass for a
    preference for a model. The item's reference answer, when it has one, is shown too
    (reference-guided judging).

    Args:
        model: The judge model (any model; a strong one judges better).
        rubric: What the judge should value: the system message of every request (by default
            MT-Bench's pairwise prompt). The reply format is asked for after it, always.
        swap: Ask each pair in both orders.
        allow_tie: Let the judge answer "tie" (without it, a judge must pick one; swapping can
            still give a tie).
        name: The judge's name in the record (unique within a panel).
        max_tokens: The longest reply (reasoning included).
        structured: Ask for a JSON schema as ``response_format``: None (the default) where the
            model supports it, else a parsed plain-text reply.
        settings: Generation settings of the judge's requests, over its defaults (temperature
            0, ``max_tokens``); ``response_format`` is the judge's own.
    """

    mode: ClassVar[Mode] = "pairwise"

    def __init__(
        self,
        model: Model,
        *,
        rubric: str = PAIRWISE_RUBRIC,
        swap: bool = True,
        allow_tie: bool = True,
        name: str = "judge",
        max_tokens: int = _MAX_TOKENS,
        structured: bool | None = None,
        settings: Settings | None = None,
    ) -> None:
        super().__init__(model, rubric, name, max_tokens, structured, settings)
        self.swap = swap
        self.allow_tie = allow_tie

    def _format(self) -> ResponseFormat:
        return pairwise_format(self.allow_tie)

    @property
    def judges(self) -> tuple[Judge, ...]:
        """The judges that ask: this one (a panel's are its members)."""
        return (self,)

    def request(self, question: str, reference: str | None, first: str, second: str) -> Request:
        """The request that shows ``first`` as assistant A and ``second`` as assistant B."""
        messages = pairwise_prompt(
            self.rubric, question, reference, first, second, allow_tie=self.allow_tie
        )
        return self._request(messages)

    def item_request(self, item: PromptItem, first: str, second: str) -> Request:
        """:meth:`request` for a prompt item: its conversation and its reference."""
        return self.request(question_text(item.conversation()), item.reference, first, second)

    def read(self, completion: Completion) -> tuple[str | None, str, str | None]:
        """A reply as ``(verdict, reasoning, error)``: ``"A"``, ``"B"``, ``"tie"`` or None."""
        return read_verdict(completion, allow_tie=self.allow_tie)

    def info(self) -> JudgeInfo:
        """The judge as the record names it."""
        return JudgeInfo(
            name=self.name,
            model=self.model.id,
            mode="pairwise",
            rubric=self.rubric,
            swap=self.swap,
            allow_tie=self.allow_tie,
            structured=self.structured,
        )


class PointwiseJudge(_Base):
    """Ask a judge to grade each answer on its own, on a stated scale, with its reasoning.

    The score is the grade scaled to [0, 1]: ``(grade - low) / (high - low)``. In a comparison
    (``compare(judge=...)``) its requests go through the run like any other (cached, budgeted,
    resumed) and its grades are compared item by item between each pair of models. Called as
    a scorer, ``judge(completion, item)``, it asks at once and returns the score, or None when
    the reply holds no grade: :class:`llmcompare.scorers.Judge` is this class.

    Args:
        model: The judge model; it is called with temperature 0.
        rubric: What the judge should value (the criteria), the system message.
        scale: The lowest and the highest grade.
        name: The judge's name: the score's name as a scorer, the judge's in the record.
        max_tokens: The longest reply (reasoning included).
        structured: Ask for a JSON schema as ``response_format``: None (the default) where the
            model supports it, else a parsed plain-text reply.
        settings: Generation settings of the judge's requests, over its defaults (temperature
            0, ``max_tokens``); ``response_format`` is the judge's own.
    """

    mode: ClassVar[Mode] = "pointwise"

    def __init__(
        self,
        model: Model,
        *,
        rubric: str = POINTWISE_RUBRIC,
        scale: tuple[int, int] = (1, 10),
        name: str = "judge",
        max_tokens: int = _MAX_TOKENS,
        structured: bool | None = None,
        settings: Settings | None = None,
    ) -> None:
        super().__init__(model, rubric, name, max_tokens, structured, settings)
        low, high = scale
        if not low < high:
            raise ConfigurationError(f"a grading scale goes from low to high, got {scale!r}")
        self.scale = (int(low), int(high))

    def _format(self) -> ResponseFormat:
        return grade_format(self.scale)

    @property
    def judges(self) -> tuple[Judge, ...]:
        """The judges that ask: this one (a panel's are its members)."""
        return (self,)

    def request(self, question: str, reference: str | None, answer: str) -> Request:
        """The request that asks for ``answer``'s grade."""
        return self._request(pointwise_prompt(self.rubric, question, reference, answer, self.scale))

    def item_request(self, item: PromptItem, answer: str) -> Request:
        """:meth:`request` for a prompt item: its conversation and its reference."""
        return self.request(question_text(item.conversation()), item.reference, answer)

    def read(self, completion: Completion) -> tuple[float | None, str, str | None]:
        """A reply as ``(grade, reasoning, error)``; a grade off the scale is no grade."""
        return read_grade(completion, self.scale)

    def normalise(self, grade: float) -> float:
        """A grade on the judge's scale as a score in [0, 1]."""
        low, high = self.scale
        return (grade - low) / (high - low)

    def __call__(self, completion: Completion, item: PromptItem) -> float | None:
        """Grade one answer now, as a scorer: the score in [0, 1], None without a grade."""
        reply = self.model.generate(self.item_request(item, completion.text))
        grade, _, _ = self.read(reply)
        return None if grade is None else self.normalise(grade)

    def info(self) -> JudgeInfo:
        """The judge as the record names it."""
        return JudgeInfo(
            name=self.name,
            model=self.model.id,
            mode="pointwise",
            rubric=self.rubric,
            scale=self.scale,
            structured=self.structured,
        )


Judge = PairwiseJudge | PointwiseJudge
"""One judge, of either kind."""


class JudgePanel:
    """Several judges whose verdicts are combined by a vote; their agreement is reported.

    A panel of smaller judges, of different families, can match one large judge at a fraction
    of its cost, and no single judge's family preference decides (Verga et al. 2024,
    "Replacing Judges with Juries"). The record reports how far the judges agree beyond chance
    (Fleiss' kappa) beside the panel's verdicts.

    Votes: ``"majority"``: pairwise, the verdict most judges gave (a tie between two verdicts
    is a tie); pointwise, the median score. ``"mean"``: pairwise, the mean of the judges'
    verdicts scored 1 (a), 0.5 (tie) and 0 (b), above 0.5 for a and below for b; pointwise,
    the mean score. A judge that gave no verdict has no vote.

    Args:
        judges: Two or more judges of one kind (all pairwise or all pointwise), each with its
            own name.
        vote: ``"majority"`` or ``"mean"``.

    Raises:
        ConfigurationError: For fewer than two judges, judges of both kinds, a name given
            twice, or an unknown vote.
    """

    def __init__(self, judges: Sequence[Judge], *, vote: Vote = "majority") -> None:
        if len(judges) < 2:
            raise ConfigurationError("a panel needs two judges or more: use a single judge alone")
        modes = {j.mode for j in judges}
        if len(modes) > 1:
            raise ConfigurationError("a panel's judges must be all pairwise or all pointwise")
        names = [j.name for j in judges]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ConfigurationError(
                f"each judge of a panel needs its own name, and {twice} is given twice: "
                "pass name=... to each judge"
            )
        if vote not in ("majority", "mean"):
            raise ConfigurationError(f"vote must be 'majority' or 'mean', got {vote!r}")
        self.judges: tuple[Judge, ...] = tuple(judges)
        self.vote: Vote = vote
        self.mode: Mode = judges[0].mode

    @property
    def name(self) -> str:
        """The panel's judges' names, joined."""
        return "+".join(j.name for j in self.judges)
