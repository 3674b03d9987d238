"""Settings as an axis: each model run once per value of a swept setting, as its own column.

``sweep = { reasoning_effort = ["low", "high"] }`` in a config (``-S reasoning_effort=low,high``
on the command line) turns ``chatgpt:gpt-5.4-mini`` into two models of the run,
``chatgpt:gpt-5.4-mini[reasoning_effort=low]`` and ``...[reasoning_effort=high]``, each sent
its value as it is. A key is a generation setting (``temperature``, ``max_tokens``, ...: every
model takes it) or a backend option (``reasoning_effort``, ``service_tier``, ...: the models
whose backend takes it are swept, the others run once as they are). Two keys sweep every
combination.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from llmcompare.config._problems import ConfigFileError, Problem, _message
from llmcompare.types import GenerationSettings

if TYPE_CHECKING:
    from llmcompare.config._schema import ModelConfig

__all__ = ["parse_sweep_flag", "swept_models"]


def _shown(value: Any) -> str:
    """A value as a column label shows it: text as is, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value)


def _takes(model: ModelConfig, key: str) -> bool:
    """Whether the backend of ``model`` has an option ``key``."""
    from llmcompare.errors import UnknownModelError
    from llmcompare.plugins import registry

    try:
        entry = registry().entry(model.name.strip().partition(":")[0])
    except UnknownModelError:
        return False  # reported by the config's check, at the model's line
    return key in entry.options.model_fields


def swept_models(
    models: Sequence[ModelConfig], sweep: Mapping[str, Sequence[Any]], path: str | None
) -> list[ModelConfig]:
    """The models with every swept key expanded, each combination a labelled model of its own.

    Args:
        models: The config's models.
        sweep: Each swept key and its values, in order.
        path: The config file, for messages.

    Returns:
        The models, each swept one replaced by its variants (labels ``<model>[key=value]``).

    Raises:
        ConfigFileError: For a key no model takes, or a value a setting refuses.
    """
    if not sweep:
        return list(models)
    settings_keys = set(GenerationSettings.model_fields)
    used: set[str] = set()
    out: list[ModelConfig] = []
    for model in models:
        keys = [k for k in sweep if k in settings_keys or _takes(model, k)]
        if not keys:
            out.append(model)
            continue
        used.update(keys)
        for combo in itertools.product(*[[(k, v) for v in sweep[k]] for k in keys]):
            suffix = ",".join(f"{k}={_shown(v)}" for k, v in combo)
            settings = model.settings.as_settings()
            options = dict(model.options)
            for key, value in combo:
                if key in settings_keys:
                    settings[key] = value  # type: ignore[literal-required]
                else:
                    options[key] = value
            try:
                checked = GenerationSettings.model_validate(settings)
            except ValidationError as exc:
                where = f"sweep {suffix}"
                raise ConfigFileError(
                    path, [Problem(None, _message(e, None), where=where) for e in exc.errors()]
                ) from None
            # model_copy: the label is generated ('=' inside its brackets), and the model keeps
            # its place in the file for messages about it.
            out.append(
                model.model_copy(
                    update={
                        "label": f"{model.shown}[{suffix}]",
                        "settings": checked,
                        "options": options,
                    }
                )
            )
    unused = [k for k in sweep if k not in used]
    if unused:
        raise ConfigFileError(
            path,
            [
                Problem(
                    f"sweep.{k}",
                    f"{k!r} is neither a generation setting nor an option of any model's backend",
                )
                for k in unused
            ],
        )
    return out


def parse_sweep_flag(flag: str) -> tuple[str, list[Any]]:
    """``-S KEY=V1,V2`` as ``(KEY, [V1, V2])``, each value JSON when it parses, else text.

    Raises:
        ConfigFileError: For a flag without ``=``, a key or values.
    """
    key, sep, text = flag.partition("=")
    values = [v.strip() for v in text.split(",")] if sep else []
    if not sep or not key.strip() or not all(values):
        raise ConfigFileError(
            None,
            [
                Problem(
                    None, "a sweep is KEY=V1,V2 (-S reasoning_effort=low,high)", where=f"-S {flag}"
                )
            ],
        )
    parsed: list[Any] = []
    for value in values:
        try:
            parsed.append(json.loads(value))
        except ValueError:
            parsed.append(value)
    return key.strip(), parsed
