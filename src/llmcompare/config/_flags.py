"""Models from the command line: ``-m [LABEL=]NAME`` and the ``-O KEY=VALUE`` after each."""

from __future__ import annotations

import json
import os
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from llmcompare.config._problems import ConfigFileError, Problem
from llmcompare.config._schema import CompareConfig, JudgeConfig, ModelConfig, _problems
from llmcompare.errors import ConfigurationError
from llmcompare.prompts import _TOO_DEEP

_MODEL_FIELDS = ("api_key_env", "rpm", "tpm", "hosted")


def _option_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def models_from_flags(
    flags: Sequence[tuple[str, str]], config: CompareConfig | None = None
) -> list[ModelConfig]:
    """The models of ``-m`` and ``-O`` flags, given in command-line order.

    ``-m NAME`` is a model (known by its id); ``-m LABEL=NAME`` gives it a label, needed when
    two models have the same name. With a config file, ``-m LABEL`` naming one of its models
    (by label, else by the name of one without a label) takes that model as the file
    describes it. ``-O KEY=VALUE`` applies to the ``-m``
    before it: a backend option (``base_url``, ``timeout``, ``device``, ...; ``options.KEY``
    says so explicitly), or one of the model's own keys: ``api_key_env``, ``rpm``, ``tpm``,
    ``hosted`` (a machine preset such as ``h100``, or its figures as JSON; ``hosted.gpu=0``
    and the like set one field of it), ``settings.NAME``. A value is read as JSON when it
    parses (``30``, ``true``, ``null``, ``"text"``, ``[...]``), else as text.

    Args:
        flags: ``("-m", value)`` and ``("-O", value)`` pairs, in the order given.
        config: The config file's models, for ``-m LABEL``.

    Returns:
        The models, in order.

    Raises:
        ConfigFileError: For an ``-O`` without ``=``, before any ``-m``, or with a bad value; one
            line naming the flag.
    """
    file_models: dict[str, ModelConfig] = {}
    for m in config.models if config else ():
        file_models.setdefault(m.shown, m)
    specs: list[tuple[str, dict[str, Any], ModelConfig | None]] = []
    for flag, value in flags:
        if flag == "-m":
            label, sep, name = value.partition("=")
            if not sep and value in file_models:
                chosen = file_models[value]
                specs.append((value, chosen.model_dump(exclude_unset=True), chosen))
            else:
                specs.append((value, {"name": name} if sep else {"name": value}, None))
                if sep:
                    specs[-1][1]["label"] = label
            continue
        key, sep, text = value.partition("=")
        key = key.strip()
        if not sep or not key:
            _flag_error(f"-O {value}", "an option is KEY=VALUE, such as -O base_url=http://...")
        if not specs:
            _flag_error(f"-O {value}", "an option applies to the -m before it: give -m first")
        shown, data, _ = specs[-1]
        specs[-1] = (shown, data, None)  # changed on the command line: no longer the file's
        try:
            parsed = _option_value(text)
        except RecursionError:
            _flag_error(f"-O {key}=...", _TOO_DEEP)
        head, dot, rest = key.partition(".")
        if key in ("label", "name"):
            _flag_error(f"-O {value}", "give a label as -m LABEL=NAME")
        elif key == "hosted" or (head == "hosted" and dot):
            data["hosted"] = _hosted_flag(data.get("hosted"), rest if dot else None, parsed)
        elif key in _MODEL_FIELDS:
            data[key] = parsed
        elif head == "settings" and dot:
            data["settings"] = {**data.get("settings", {}), rest: parsed}
        else:
            option = rest if head == "options" and dot else key
            data["options"] = {**data.get("options", {}), option: parsed}
    out = []
    for shown, data, unchanged in specs:
        if unchanged is not None:
            out.append(unchanged)
            continue
        try:
            out.append(ModelConfig.model_validate(data))
        except ValidationError as exc:
            raise ConfigFileError(None, _problems(exc, None, f"-m {shown}")) from None
    return out


def _hosted_flag(current: Any, field: str | None, value: Any) -> Any:
    """``-O hosted=h100`` and ``-O hosted.gpu=0`` (any order) as one ``hosted`` value.

    A machine named after fields were given keeps them (``{"preset": "h100", "gpu": 0}``).
    """
    if field is None:
        if isinstance(current, dict) and isinstance(value, str):
            return {**current, "preset": value}
        return value
    base = {"preset": current} if isinstance(current, str) else dict(current or {})
    return {**base, field: value}


def _flag_error(where: str, message: str) -> typing.NoReturn:
    raise ConfigFileError(None, [Problem(None, message, where=where)])


def judge_from_flags(
    names: Sequence[str],
    mode: str | None,
    rubric_file: str | os.PathLike[str] | None,
    base: JudgeConfig | None,
) -> JudgeConfig | None:
    """The judge the flags ask for, over the file's (None: no judge, or the file's stands).

    Args:
        names: ``--judge`` values (``NAME`` or ``LABEL=NAME``): they replace the file's judge
            models; two or more are a panel.
        mode: ``--judge-mode``.
        rubric_file: ``--judge-rubric`` (relative to the working folder).
        base: The file's ``[judge]``, if any.

    Raises:
        ConfigurationError: For ``--judge-mode`` or ``--judge-rubric`` without a judge.
    """
    if not names and mode is None and rubric_file is None:
        return None
    if not names and base is None:
        raise ConfigurationError(
            "--judge-mode and --judge-rubric need a judge: give --judge NAME (or a [judge] "
            "table in the config file)"
        )
    data = base.model_dump(exclude_unset=True) if base is not None else {}
    if names:
        data["models"] = list(names)
    if mode is not None:
        data["mode"] = mode
    if rubric_file is not None:
        data.pop("rubric", None)
        data["rubric_file"] = str(Path(rubric_file).absolute())
    return JudgeConfig.model_validate(data)
