"""A comparison written down: models, prompts, scorers and limits in a TOML (or YAML) file.

``llmcompare compare -c compare.toml`` runs one. :func:`load_config` reads and validates the file:
every key is checked (an unknown or misspelled one is refused), each model's backend options are
checked by that backend, and every error names the file, the key and its line::

    compare.toml:9: models[1].optionz: unknown key; did you mean 'options'?

:meth:`CompareConfig.build` then turns the config into a :class:`ComparePlan`, the typed
arguments of :func:`llmcompare.comparison.compare`, without sending anything; its
:meth:`~ComparePlan.run` runs it::

    config = load_config("compare.toml")
    with config.build() as plan:
        result = plan.run()

API keys never live in the file: each model names, with ``api_key_env``, the environment variable
that holds ITS key, and the variable is read when the config is built. The key then goes to the
backend only: no ``repr``, error message or :meth:`CompareConfig.public_dict` holds it.

TOML is read with the standard library (``tomllib``; ``tomli`` on Python 3.10), YAML with PyYAML
when it is installed (the ``report`` extra).

The parts, each in its own private module: the problems and their messages (``_problems``), the
schema (``_schema``), the plan (``_plan``), the command-line models (``_flags``), the judge
(``_judge``: a ``[judge]`` table, or ``--judge`` flags) and the files with the line of each key
(``_files``).
"""

from llmcompare.config._files import CONFIG_FILE_SUFFIXES, load_config
from llmcompare.config._flags import judge_from_flags, models_from_flags
from llmcompare.config._judge import build_judge
from llmcompare.config._plan import ComparePlan
from llmcompare.config._problems import ConfigFileError, Problem
from llmcompare.config._schema import CompareConfig, ExecutorConfig, JudgeConfig, ModelConfig

__all__ = [
    "CONFIG_FILE_SUFFIXES",
    "CompareConfig",
    "ComparePlan",
    "ConfigFileError",
    "ExecutorConfig",
    "JudgeConfig",
    "ModelConfig",
    "Problem",
    "build_judge",
    "judge_from_flags",
    "load_config",
    "models_from_flags",
]
