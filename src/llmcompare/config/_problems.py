"""What is wrong in a config, and where: :class:`Problem`, :class:`ConfigFileError` and their text.

Every part of :mod:`llmcompare.config` reports through these, so each message reads the same:
``FILE:LINE: KEY: what is wrong`` (``-m NAME: KEY: ...`` for a flag).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from llmcompare.errors import ConfigurationError

_Loc = tuple[str | int, ...]
"""A key's place in the document: ``("models", 1, "options")``."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a config, where it is and what is wrong.

    Attributes:
        key: The key path (``models[1].options.base_url``), or ``None`` for the whole file.
        message: What is wrong and, where it can tell, how to fix it.
        line: The 1-based line of the key in the file, when known.
        column: The 1-based column, when known (syntax errors).
        where: Where the key came from when not from the file (``"-m vllm"``).
    """

    key: str | None
    message: str
    line: int | None = None
    column: int | None = None
    where: str | None = None


class ConfigFileError(ConfigurationError):
    """A config that cannot run: one line per problem, each naming the file, the line and the key.

    Attributes:
        path: The config file (``None`` for a config given on the command line only).
        problems: What is wrong, in file order.
    """

    def __init__(self, path: str | None, problems: Sequence[Problem]) -> None:
        self.path = path
        self.problems = tuple(problems)
        super().__init__("\n".join(_describe(path, p) for p in self.problems))


def _describe(path: str | None, problem: Problem) -> str:
    if problem.where is not None:
        where = problem.where
    elif path is None:
        where = "config"
    else:
        where = path
        if problem.line is not None:
            where += f":{problem.line}"
            if problem.column is not None:
                where += f":{problem.column}"
    key = f"{problem.key}: " if problem.key else ""
    return f"{where}: {key}{problem.message}"


def _dotted(loc: Sequence[str | int]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


def _order(problem: Problem) -> tuple[int, str]:
    return (problem.line or 0, problem.key or "")


@dataclass(frozen=True)
class _Source:
    """A config file and the line of each key in it."""

    path: str
    lines: Mapping[_Loc, int]

    def line_of(self, loc: Sequence[str | int]) -> int | None:
        """The line of the longest prefix of ``loc`` found in the file."""
        parts = tuple(loc)
        while parts:
            if parts in self.lines:
                return self.lines[parts]
            parts = parts[:-1]
        return None


_NOT_A_NUMBER = "a boolean (true/false, yes/no, on/off) is not a number: write the number"


def _no_bool(value: Any) -> Any:
    """Refuse a boolean where a number goes (a pydantic before-validator): ``samples: yes``."""
    # Python's bool is an int, and pydantic turns True into 1 for an int or a float field.
    if isinstance(value, bool):
        raise ValueError(_NOT_A_NUMBER)
    return value


def _message(err: Any, allowed: Sequence[str] | None) -> str:
    kind = err["type"]
    if kind in ("int_type", "float_type") and isinstance(err.get("input"), bool):
        return _NOT_A_NUMBER
    if kind == "extra_forbidden":
        loc = err["loc"]
        key = str(loc[-1]) if loc else ""
        if not allowed:
            return "unknown key"
        close = difflib.get_close_matches(key, list(allowed), n=1, cutoff=0.6)
        if close:
            return f"unknown key; did you mean {close[0]!r}?"
        return "unknown key; the keys here are " + ", ".join(allowed)
    if kind == "missing":
        return "required, and missing"
    # Only pydantic's message: its input value could be a secret (an option, a header).
    msg = str(err["msg"])
    return msg.removeprefix("Value error, ")
