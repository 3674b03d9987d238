"""The terminal report: the summary table, a sample of the answers, the notes (rich)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from llmcompare.report._judging import judging_lines
from llmcompare.report._sweeps import SWEEP_HEADER, operating_sentence, sweep_table
from llmcompare.report._tables import view

if TYPE_CHECKING:
    from rich.console import Console

    from llmcompare.record import Comparison, Row

__all__ = ["print_report", "print_sweeps", "terminal_console"]


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _answer_cell(row: Row, answer_width: int) -> str:
    """One model's answer to one item as rich markup: the answer and its scores, or the error."""
    from rich.markup import escape

    if row.completion is None:
        assert row.error is not None
        message = escape(_clip(row.error.message, 40))
        return f"[red]{row.error.type}[/red]: {message}"
    scores = " ".join(f"{k}={'-' if v is None else f'{v:.2f}'}" for k, v in row.scores.items())
    return escape(_clip(row.completion.text, answer_width)) + (
        f"\n[dim]{escape(scores)}[/dim]" if scores else ""
    )


# The break-even sentences stand out; what one API key cannot serve is a warning.
_DECISION_MARKS = (("break-even:", "bold"), ("rate limits:", "yellow"))


def terminal_console() -> Console:
    """The rich console the library prints on (stdout): text as given, no emoji codes.

    Rich reads ``:name:`` as an emoji code, which ``rich.markup.escape`` leaves as it is: a
    model id before a colon (``"chatgpt:x: ..."``) printed as ``"chatgpt❌ ..."``.
    """
    from rich.console import Console

    return Console(emoji=False)


SAMPLE_ITEMS = 10
"""How many items' answers the terminal report shows by default: a sample, not 5,000 rows."""


def print_report(
    comparison: Comparison,
    console: Console | None = None,
    *,
    answer_width: int = 60,
    items: int | None = SAMPLE_ITEMS,
    full_answers: str | None = None,
) -> None:
    """Print the aggregate table, a sample of the answers side by side, and the notes.

    Args:
        comparison: The record to show.
        console: A rich console, used as it is; by default one on stdout that prints emoji
            codes (``:x:``) as typed.
        answer_width: Characters of each answer to show.
        items: How many items' answers to show (the first ones); ``None`` shows every item.
        full_answers: Where every answer is, said under a sample (``"every answer is in
            run/comparison.csv"``); by default how to print them all.
    """
    from rich.markup import escape
    from rich.table import Table

    console = console or terminal_console()
    tables = view(comparison)
    table = Table(title="Models", title_justify="left")
    for i, col in enumerate(tables.header.strings()):
        # Escaped: a label may hold brackets ("...[reasoning_effort=low]" of a sweep).
        table.add_column(escape(col), justify="left" if i == 0 else "right", overflow="fold")
    for row in tables.summary:
        table.add_row(*(escape(cell) for cell in row.strings()))
    console.print(table)

    answers = Table(title="Answers", title_justify="left", show_lines=True)
    answers.add_column("item")
    for model in comparison.run.models:
        answers.add_column(escape(model))
    shown = comparison.items if items is None else comparison.items[: max(items, 0)]
    for item in shown:
        answers.add_row(
            escape(item.id),
            *(
                _answer_cell(comparison.row(item.id, model), answer_width)
                for model in comparison.run.models
            ),
        )
    console.print(answers)
    if len(shown) < len(comparison.items):
        where = full_answers or "print_report(..., items=None) prints every one"
        line = f"{len(shown)} of {len(comparison.items)} items shown; {where}"
        console.print(f"[dim]{escape(line)}[/dim]")
    for note in tables.notes:
        style = "yellow" if note.kind == "warning" else "dim"
        console.print(f"[{style}]{escape(note.line)}[/{style}]")
    for line in judging_lines(comparison):
        console.print(escape(line))
    print_sweeps(comparison, console)
    # The decision: the break-even sentence first, then the figures, each basis named.
    for said in tables.decision_lines:
        mark = next((m for p, m in _DECISION_MARKS if said.startswith(p)), None)
        console.print(f"[{mark}]{escape(said)}[/{mark}]" if mark else escape(said))
    console.print(f"[dim]{escape(tables.stamp)}[/dim]")


def print_sweeps(comparison: Comparison, console: Console) -> None:
    """Each load sweep as a table (one row per level) and the operating point its target picks."""
    from rich.markup import escape
    from rich.table import Table

    for sweep in comparison.sweeps:
        table = Table(title=f"Load sweep: {escape(sweep.model)}", title_justify="left")
        for i, col in enumerate(SWEEP_HEADER):
            mark = i == len(SWEEP_HEADER) - 1  # "<- operating point", kept on one line
            table.add_column(col, justify="left" if mark else "right", no_wrap=mark)
        for row in sweep_table(sweep):
            table.add_row(*(escape(cell) for cell in row))
        console.print(table)
        console.print(escape(operating_sentence(sweep)))
