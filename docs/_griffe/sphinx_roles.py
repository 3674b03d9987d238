"""A griffe extension for the API reference: Sphinx roles in docstrings become mkdocs links.

llmcompare's docstrings are Google style but name other objects with Sphinx roles
(``:class:`~llmcompare.Completion```), which read well in code and in ``help()``. mkdocstrings
does not understand roles, so this extension rewrites each one before rendering: into a
cross-reference when the target is rendered in the reference (so the link works and
``mkdocs build --strict`` stays quiet), into inline code otherwise. Two more reST habits are
adapted: ``text::`` before a literal block loses its second colon, and an ``Example:`` section is
read as ``Examples:`` so its doctests render as code.

What the reference renders is read from the API page itself (its ``::: module`` directives and
their options), so a module added there is linked to at once: no second list to keep in step.
A public module (no ``_`` in its path, a non-empty ``__all__``) that the page leaves out is a
warning, so ``mkdocs build --strict`` fails until the page renders it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from griffe import (
    Alias,
    AliasResolutionError,
    CyclicAliasError,
    Extension,
    GriffeLoader,
    Module,
    NameResolutionError,
    Object,
    logger,
)

# What looking a path up in griffe's tree may raise when the path leads nowhere.
_LOOKUP_ERRORS = (KeyError, ValueError, AliasResolutionError, CyclicAliasError)

# :class:`Name`, :meth:`~pkg.Cls.method`, :data:`NAME`, ... (the role name is not needed).
_ROLE = re.compile(r":(?:class|meth|func|attr|data|obj|exc|mod|const|py:\w+):`(~?)([\w.]+)`")
# reST's "text::" that introduces a literal block; Markdown shows the indented block as code.
_LITERAL_INTRO = re.compile(r"(?<=\S)::$", re.MULTILINE)
# Napoleon reads "Example:" like "Examples:", griffe only the plural: without it, doctest output
# such as "[True, True]" would be read as Markdown (a broken link, under --strict an error).
_EXAMPLE_HEADING = re.compile(r"^([ \t]*)Example:[ \t]*$", re.MULTILINE)
# A mkdocstrings directive, "::: llmcompare.types", with the indented YAML options after it.
_DIRECTIVE = re.compile(r"^::: *([\w.]+)[ \t]*\n((?:[ \t]+\S.*\n?|[ \t]*\n)*)", re.MULTILINE)
# A filter that lets one private name through: "^_generate$".
_PRIVATE_FILTER = re.compile(r"^\^(_\w+)\$$")


@dataclass(frozen=True)
class Rendered:
    """A module the API page renders.

    Attributes:
        members: Whether its members are rendered too (``members: false`` renders the module's
            own docstring only).
        private: Private names its filters render anyway (the backend hooks of ``ModelBase``).
    """

    members: bool
    private: frozenset[str]


def rendered_modules(page: str) -> dict[str, Rendered]:
    """The modules a page renders with ``::: module`` directives, and how (from their options)."""
    found: dict[str, Rendered] = {}
    for match in _DIRECTIVE.finditer(page):
        block = yaml.safe_load(match.group(2)) if match.group(2).strip() else None
        options: Mapping[str, Any] = (block or {}).get("options") or {}
        filters = [_PRIVATE_FILTER.match(f) for f in options.get("filters", ())]
        private = frozenset(m.group(1) for m in filters if m)
        found[match.group(1)] = Rendered(options.get("members", True) is not False, private)
    return found


class SphinxRoles(Extension):
    """Rewrite Sphinx roles in docstrings into mkdocstrings cross-references or inline code.

    Args:
        api_page: The page of ``::: module`` directives (relative to where mkdocs runs); links go
            only to objects it renders.
    """

    def __init__(self, api_page: str = "docs/reference/api.md") -> None:
        super().__init__()
        self._rendered = rendered_modules(Path(api_page).read_text(encoding="utf-8"))
        if not self._rendered:
            raise ValueError(f"{api_page} renders no module: no '::: module' directive found")

    def on_package(self, *, pkg: Module, loader: GriffeLoader, **kwargs: Any) -> None:
        """Rewrite the docstrings of a package once griffe has loaded all of it."""
        for obj in _walk(pkg):
            if obj.docstring is not None:
                obj.docstring.value = self._rewrite(obj, loader, obj.docstring.value)
            if obj.is_module and obj.path not in self._rendered and _is_public_module(obj):
                logger.warning("%s is public but the API page does not render it", obj.path)

    def _rewrite(self, scope: Object, loader: GriffeLoader, text: str) -> str:
        text = _ROLE.sub(lambda m: self._render(scope, loader, m.group(2), bool(m.group(1))), text)
        text = _EXAMPLE_HEADING.sub(r"\1Examples:", text)
        return _LITERAL_INTRO.sub(":", text)

    def _render(self, scope: Object, loader: GriffeLoader, name: str, short: bool) -> str:
        shown = name.rsplit(".", 1)[-1] if short else name
        target = self._target(scope, loader, name)
        if target is None:
            return f"`{shown}`"
        return f"[`{shown}`][{target}]"

    def _target(self, scope: Object, loader: GriffeLoader, name: str) -> str | None:
        """The rendered path of the object that ``name`` means in ``scope``, or None."""
        head, _, rest = name.partition(".")
        try:
            path = scope.resolve(head)
        except NameResolutionError:
            # An attribute a class inherits (ScriptedModel's `info`, from ModelBase); otherwise
            # a fully qualified name, tried as it is.
            inherited = scope.all_members.get(head) if scope.is_class else None
            path = inherited.path if isinstance(inherited, Alias) else head
        if rest:
            path = f"{path}.{rest}"
        try:
            obj = loader.modules_collection[path]
            if isinstance(obj, Alias):
                obj = obj.final_target
        except _LOOKUP_ERRORS:
            return None
        # Objects without a docstring of their own (fields described only in their class's
        # "Attributes:" section, say) get no heading: the link goes to the class that has one.
        while obj.docstring is None or not obj.docstring.value.strip():
            if obj.parent is None or obj.parent.is_module:
                return None
            obj = obj.parent
        return self._rendered_path(obj, loader)

    def _rendered_path(self, obj: Object, loader: GriffeLoader) -> str | None:
        """Where the API page renders ``obj``, or None.

        That is where it is defined, or where a rendered module re-exports it:
        ``llmcompare.cost.CostTracker``, defined in ``llmcompare.cost._tracker``.
        """
        if self._renders(obj.path):
            return str(obj.path)
        # The module-level object that holds obj (obj itself, or the class of a method).
        top, inside = obj, []
        while top.parent is not None and not top.parent.is_module:
            inside.insert(0, top.name)
            top = top.parent
        for module in self._rendered:
            try:
                member = loader.modules_collection[module].members.get(top.name)
                same = isinstance(member, Alias) and member.final_target.path == top.path
            except _LOOKUP_ERRORS:
                continue
            path = ".".join([module, top.name, *inside])
            if same and member.is_exported and self._renders(path):
                return path
        return None

    def _renders(self, path: str) -> bool:
        """Whether the API page renders the object at ``path`` (so it has an anchor)."""
        holders = [m for m in self._rendered if path == m or path.startswith(m + ".")]
        if not holders:
            return False
        module = max(holders, key=len)  # the innermost: llmcompare.backends.llama, not llmcompare
        how = self._rendered[module]
        if path == module:
            return True
        inside = path[len(module) + 1 :].split(".")
        return how.members and not any(p.startswith("_") and p not in how.private for p in inside)


def _is_public_module(module: Object) -> bool:
    """A module users import: no private part in its path, and something in its ``__all__``."""
    exports = module.exports if isinstance(module, Module) else None
    return bool(exports) and not any(p.startswith("_") for p in module.path.split("."))


def _walk(obj: Object) -> Iterator[Object]:
    yield obj
    for member in obj.members.values():
        if not isinstance(member, Alias):
            yield from _walk(member)
