"""The public API is what ``__all__`` says: sorted, complete, importable and documented.

The checks iterate over every public module of the package (found by walking it, skipping
``_private`` ones), so a module or a name added later is checked without touching this file.
"""

from __future__ import annotations
import __future__

import importlib
import inspect
import pkgutil
import re
import types
import typing
from typing import Any

import pytest

import llmcompare

# Modules whose __all__ is documented as public API: walking the package must find them all.
DOCUMENTED = (
    "llmcompare",
    "llmcompare.model",
    "llmcompare.types",
    "llmcompare.errors",
    "llmcompare.plugins",
    "llmcompare.testing",
    "llmcompare.batch",
    "llmcompare.retry",
    "llmcompare.cost",
    "llmcompare.comparison",
    "llmcompare.prompts",
    "llmcompare.scorers",
    "llmcompare.schema",
    "llmcompare.report",
    "llmcompare.backends.fake",
)


def _public_modules() -> list[str]:
    names = ["llmcompare"]
    for info in pkgutil.walk_packages(llmcompare.__path__, "llmcompare."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.append(info.name)
    return sorted(names)


PUBLIC_MODULES = _public_modules()


def _exports(name: str) -> tuple[types.ModuleType, list[str]]:
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    # A public module without __all__ has no stated API: that is a failure, not a skip.
    assert exported is not None, f"{name} has no __all__"
    return module, list(exported)


def ruff_sort_key(name: str) -> tuple[int, tuple[str | int, ...]]:
    """The order of ruff's RUF022 ("isort-style"): SCREAMING_CASE, then CamelCase, then the rest.

    Within each group names sort naturally: a run of digits compares as a number ("v2" < "v10").
    """
    if len(name) > 1 and name.isupper():
        group = 0
    elif name[:1].isupper():
        group = 1
    else:
        group = 2
    parts = re.split(r"(\d+)", name)  # text at even places, digits at odd ones
    return group, tuple(int(p) if i % 2 else p for i, p in enumerate(parts))


def _is_typing_leftover(name: str, value: object) -> bool:
    """`from typing import Any` or `from __future__ import annotations` in a module's namespace."""
    return any(getattr(source, name, object()) is value for source in (typing, __future__))


def test_walking_the_package_finds_the_documented_modules() -> None:
    assert set(DOCUMENTED) <= set(PUBLIC_MODULES)


def test_the_sort_key_is_ruffs() -> None:
    names = ["version", "Model", "DEFAULT_MODEL", "v10", "ModelBase", "v2", "__version__", "X"]
    assert sorted(names, key=ruff_sort_key) == [
        "DEFAULT_MODEL",
        "Model",
        "ModelBase",
        "X",  # one letter: a class, not a constant
        "__version__",
        "v2",
        "v10",
        "version",
    ]


# -- the package itself --------------------------------------------------------------------------


def test_package_all_is_sorted_without_duplicates() -> None:
    exported = list(llmcompare.__all__)
    assert len(set(exported)) == len(exported), "duplicates in llmcompare.__all__"
    assert exported == sorted(exported, key=ruff_sort_key)


def test_every_name_in_package_all_resolves() -> None:
    for name in llmcompare.__all__:
        assert getattr(llmcompare, name, None) is not None, f"llmcompare.{name} does not resolve"


def test_lazy_names_are_exactly_the_exported_names_not_imported_eagerly() -> None:
    lazy: dict[str, str] = llmcompare._LAZY  # type: ignore[attr-defined]
    # A lazy name, once used, is cached in the module's namespace: leave those out.
    eager = set(vars(llmcompare)) - set(lazy)
    assert set(lazy) <= set(llmcompare.__all__), "a lazy name missing from __all__"
    assert not set(lazy) & eager, "a lazy name also imported eagerly"
    not_defined = set(llmcompare.__all__) - eager - set(lazy)
    assert not not_defined, f"in __all__ but neither imported nor lazy: {sorted(not_defined)}"
    for name, module in lazy.items():
        assert getattr(llmcompare, name) is getattr(importlib.import_module(module), name)


def test_every_public_attribute_of_the_package_is_exported() -> None:
    public: dict[str, Any] = {
        name: value
        for name, value in vars(llmcompare).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)  # submodules, once imported
        and not _is_typing_leftover(name, value)
    }
    missing = sorted(set(public) - set(llmcompare.__all__))
    assert not missing, f"public but not in llmcompare.__all__: {missing}"


# -- every public module ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_module_all_is_sorted_without_duplicates(name: str) -> None:
    _, exported = _exports(name)
    assert len(set(exported)) == len(exported), f"duplicates in {name}.__all__"
    assert exported == sorted(exported, key=ruff_sort_key), f"{name}.__all__ is not sorted"


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_module_all_names_exist_and_are_documented(name: str) -> None:
    module, exported = _exports(name)
    missing = [n for n in exported if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ names what it lacks: {missing}"
    # Classes and functions need their own docstring (a class does not inherit __doc__);
    # constants and type aliases are documented where they are defined.
    undocumented = [
        n
        for n in exported
        if (inspect.isclass(obj := getattr(module, n)) or inspect.isroutine(obj))
        and not (obj.__doc__ or "").strip()
    ]
    assert not undocumented, f"no docstring in {name}: {undocumented}"
