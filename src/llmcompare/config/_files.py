"""Reading config files: :func:`load_config`, TOML and YAML, and the line of every key in them."""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from llmcompare.config._problems import (
    ConfigFileError,
    Problem,
    _dotted,
    _Loc,
    _order,
    _Source,
)
from llmcompare.config._schema import CompareConfig, _problems
from llmcompare.prompts import _TOO_DEEP

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 only
    # mypy checks this branch (python_version = 3.10) where tomli may not be installed.
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

CONFIG_FILE_SUFFIXES = frozenset({".toml", ".yaml", ".yml"})
"""The file names :func:`load_config` reads: TOML, or YAML when PyYAML is installed."""


def load_config(path: str | Path) -> CompareConfig:
    """Read and validate a comparison config file (``.toml``, or ``.yaml``/``.yml``).

    Every key is checked against the schema (an unknown one is an error, with the closest known
    key suggested) and each model's options against its backend; models are not built and
    environment variables not read (that is :meth:`CompareConfig.build`).

    Args:
        path: The file.

    Returns:
        The config; its relative paths are relative to the file's folder.

    Raises:
        ConfigFileError: For a missing or malformed file or any invalid key: one line per
            problem, ``FILE:LINE: KEY: what is wrong``.
    """
    name = str(path)
    p = Path(path)
    try:
        # utf-8-sig: a byte order mark (Windows editors write one) is not part of the document.
        text = p.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigFileError(name, [Problem(None, "no such file")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigFileError(name, [Problem(None, f"cannot read: {exc}")]) from None
    suffix = p.suffix.lower()
    if suffix not in CONFIG_FILE_SUFFIXES:
        raise ConfigFileError(name, [Problem(None, "unknown format: use .toml, .yaml or .yml")])
    data, lines = _read_toml(text, name) if suffix == ".toml" else _read_yaml(text, name)
    if not isinstance(data, Mapping):
        raise ConfigFileError(name, [Problem(None, "expected a mapping of keys at the top level")])
    source = _Source(name, lines)
    try:
        config = CompareConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigFileError(name, sorted(_problems(exc, source), key=_order)) from None
    config._base = p.parent.absolute()
    config._source = source
    for i, model in enumerate(config.models):
        model._index = i
    config.check()
    return config


_TOML_AT = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")


def _read_toml(text: str, name: str) -> tuple[Any, dict[_Loc, int]]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        # Python 3.14 gives the place as attributes; earlier ones only in the message.
        line, column = getattr(exc, "lineno", None), getattr(exc, "colno", None)
        at = _TOML_AT.search(message)
        if at is not None:
            line, column = int(at[1]), int(at[2])
            message = message[: at.start()]
        raise ConfigFileError(
            name, [Problem(None, f"invalid TOML: {message}", line=line, column=column)]
        ) from None
    except RecursionError:
        raise ConfigFileError(name, [Problem(None, f"invalid TOML: {_TOO_DEEP}")]) from None
    return data, _TomlLines(text).scan()


def _read_yaml(text: str, name: str) -> tuple[Any, dict[_Loc, int]]:
    try:
        import yaml
    except ImportError:
        raise ConfigFileError(
            name,
            [
                Problem(
                    None,
                    "reading YAML config files needs PyYAML: pip install 'llmcompare[report]' "
                    "(or write the config in TOML)",
                )
            ],
        ) from None
    try:
        data = yaml.safe_load(text)
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigFileError(
            name, [Problem(None, f"invalid YAML: {problem}", line=line)]
        ) from None
    except RecursionError:
        raise ConfigFileError(name, [Problem(None, f"invalid YAML: {_TOO_DEEP}")]) from None
    lines: dict[_Loc, int] = {}
    twice: list[Problem] = []

    def walk(node: yaml.Node, loc: _Loc) -> None:
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, int] = {}
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode):
                    sub = (*loc, str(key.value))
                    line = key.start_mark.line + 1
                    if str(key.value) in seen:
                        # YAML keeps the last one silently: the run would use a value its
                        # author may not have seen.
                        first = seen[str(key.value)]
                        message = f"given twice (first at line {first}): keep one"
                        twice.append(Problem(_dotted(sub), message, line=line))
                    seen.setdefault(str(key.value), line)
                    lines.setdefault(sub, line)
                    walk(value, sub)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                sub = (*loc, i)
                lines.setdefault(sub, item.start_mark.line + 1)
                walk(item, sub)

    if root is not None:
        walk(root, ())
    if twice:
        raise ConfigFileError(name, twice)
    return data, lines


class _ScanError(Exception):
    """The scanner met something it does not follow: it keeps the lines found so far."""


class _TomlLines:
    """The line of every key of a TOML document that tomllib has already accepted.

    A small scanner of TOML's structure (tables, arrays of tables, dotted keys, inline tables,
    arrays, strings and comments), not a parser: the values are skipped, only where each key
    and array item starts is kept, as ``{("models", 1, "options"): 12}``. Best effort: where it
    loses track it stops, and the keys after that have no line.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.line = 1
        self.lines: dict[_Loc, int] = {}
        self.arrays: dict[_Loc, int] = {}

    def scan(self) -> dict[_Loc, int]:
        table: _Loc = ()
        try:
            while True:
                self.skip(newlines=True)
                if self.pos >= len(self.text):
                    break
                start = self.pos
                table = self.header() if self.peek() == "[" else self.key_value(table)
                if self.pos == start:
                    break
        except (_ScanError, IndexError, RecursionError):
            pass
        return self.lines

    # -- characters ---------------------------------------------------------------------------

    def peek(self, ahead: int = 0) -> str:
        i = self.pos + ahead
        return self.text[i] if i < len(self.text) else ""

    def advance(self, n: int = 1) -> None:
        chunk = self.text[self.pos : self.pos + n]
        self.line += chunk.count("\n")
        self.pos += len(chunk)

    def skip(self, *, newlines: bool) -> None:
        while self.pos < len(self.text):
            c = self.peek()
            if c in " \t" or (newlines and c in "\r\n"):
                self.advance()
            elif c == "#":
                end = self.text.find("\n", self.pos)
                self.advance((len(self.text) if end < 0 else end) - self.pos)
            else:
                return

    def expect(self, char: str) -> None:
        if self.peek() != char:
            raise _ScanError(char)
        self.advance()

    def note(self, loc: _Loc, line: int) -> None:
        self.lines.setdefault(loc, line)

    # -- structure ----------------------------------------------------------------------------

    def header(self) -> _Loc:
        line = self.line
        self.expect("[")
        is_array = self.peek() == "["
        if is_array:
            self.advance()
        parts = self.key()
        self.skip(newlines=False)
        self.expect("]")
        if is_array:
            self.expect("]")
        resolved: list[str | int] = []
        for j, part in enumerate(parts):
            resolved.append(part)
            loc = tuple(resolved)
            self.note(loc, line)
            if is_array and j == len(parts) - 1:
                n = self.arrays.get(loc, 0)
                self.arrays[loc] = n + 1
                resolved.append(n)
                self.note(tuple(resolved), line)
            elif loc in self.arrays:
                resolved.append(self.arrays[loc] - 1)  # [a.b] after [[a]]: the last a
        return tuple(resolved)

    def key_value(self, table: _Loc) -> _Loc:
        self.assignment(table)
        return table

    def assignment(self, base: _Loc) -> None:
        """``key = value`` under ``base``: the line of each part of a dotted key, then its value."""
        line = self.line
        parts = self.key()
        for j in range(1, len(parts) + 1):
            self.note((*base, *parts[:j]), line)
        self.skip(newlines=False)
        self.expect("=")
        self.skip(newlines=False)
        self.value((*base, *parts))

    def key(self) -> list[str]:
        parts: list[str] = []
        while True:
            self.skip(newlines=False)
            c = self.peek()
            if c in ('"', "'"):
                parts.append(self.string())
            else:
                start = self.pos
                while self.peek() and (self.peek().isalnum() or self.peek() in "_-"):
                    self.advance()
                if self.pos == start:
                    raise _ScanError("key")
                parts.append(self.text[start : self.pos])
            self.skip(newlines=False)
            if self.peek() != ".":
                return parts
            self.advance()

    def value(self, loc: _Loc) -> None:
        c = self.peek()
        if c in ('"', "'"):
            self.string()
        elif c == "[":
            self.array(loc)
        elif c == "{":
            self.inline_table(loc)
        else:
            start = self.pos
            while self.peek() and self.peek() not in ",]}\r\n#":
                self.advance()
            if self.pos == start:
                raise _ScanError("value")

    def string(self) -> str:
        quote = self.peek()
        basic = quote == '"'
        if self.text.startswith(quote * 3, self.pos):
            self.advance(3)
            start = self.pos
            while self.pos < len(self.text):
                if basic and self.peek() == "\\":
                    self.advance(2)
                elif self.text.startswith(quote * 3, self.pos):
                    run = 3
                    while run < 5 and self.peek(run) == quote:
                        run += 1
                    content = self.text[start : self.pos + run - 3]
                    self.advance(run)
                    return content
                else:
                    self.advance()
            raise _ScanError("string")
        self.advance()
        start = self.pos
        while self.pos < len(self.text):
            c = self.peek()
            if basic and c == "\\":
                self.advance(2)
            elif c == quote:
                content = self.text[start : self.pos]
                self.advance()
                return content
            elif c == "\n":
                break
            else:
                self.advance()
        raise _ScanError("string")

    def array(self, loc: _Loc) -> None:
        self.expect("[")
        index = 0
        while True:
            self.skip(newlines=True)
            if self.peek() == "]":
                self.advance()
                return
            self.note((*loc, index), self.line)
            self.value((*loc, index))
            self.skip(newlines=True)
            if self.peek() == ",":
                self.advance()
                index += 1
            elif self.peek() != "]":
                raise _ScanError("array")

    def inline_table(self, loc: _Loc) -> None:
        self.expect("{")
        while True:
            self.skip(newlines=True)
            if self.peek() == "}":
                self.advance()
                return
            self.assignment(loc)
            self.skip(newlines=True)
            if self.peek() == ",":
                self.advance()
            elif self.peek() != "}":
                raise _ScanError("inline table")
