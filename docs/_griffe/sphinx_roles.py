"""A griffe extension for the API reference: Sphinx roles in docstrings become mkdocs links.

llmcompare's docstrings are Google style but name other objects with Sphinx roles
(``:class:`~llmcompare.Completion```), which read well in code and in ``help()``. mkdocstrings
does not understand roles, so this extension rewrites each one before rendering: into a
cross-reference when the target is rendered in the reference (so the link works and
``mkdocs build --strict`` stays quiet), into inline code otherwise. Two more reST habits are
adapted: ``text::`` before a literal block loses its second colon, and an ``Example:`` section is
read as ``Examples:`` so its doctests render as code.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any

from griffe import (
    Alias,
    AliasResolutionError,
    CyclicAliasError,
    Extension,
    GriffeLoader,
    Module,
    NameResolutionError,
    Object,
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


class SphinxRoles(Extension):
    """Rewrite Sphinx roles in docstrings into mkdocstrings cross-references or inline code.

    Args:
        modules: The modules the reference renders; links go only to objects inside them.
        private: Names starting with ``_`` that the reference renders anyway (the backend hooks
            of ``ModelBase``), so links to them are safe.
    """

    def __init__(self, modules: Sequence[str] = (), private: Sequence[str] = ()) -> None:
        super().__init__()
        self._modules = tuple(modules)
        self._private = frozenset(private)

    def on_package(self, *, pkg: Module, loader: GriffeLoader, **kwargs: Any) -> None:
        """Rewrite the docstrings of a package once griffe has loaded all of it."""
        for obj in _walk(pkg):
            if obj.docstring is not None:
                obj.docstring.value = self._rewrite(obj, loader, obj.docstring.value)

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
        """The canonical path of a rendered object that ``name`` means in ``scope``, or None."""
        head, _, rest = name.partition(".")
        try:
            path = scope.resolve(head)
        except NameResolutionError:
            # Not in scope: a fully qualified name is tried as it is.
            path = head
        if rest:
            path = f"{path}.{rest}"
        try:
            obj = loader.modules_collection[path]
            if isinstance(obj, Alias):
                obj = obj.final_target
        except _LOOKUP_ERRORS:
            return None
        canonical: str = obj.path
        # Objects without a docstring of their own (fields described only in their class's
        # "Attributes:" section, say) get no heading, so there is nothing to link to.
        if obj.docstring is None or not obj.docstring.value.strip():
            return None
        if not any(canonical == m or canonical.startswith(m + ".") for m in self._modules):
            return None
        parts = canonical.split(".")
        if any(p.startswith("_") and p not in self._private for p in parts):
            return None
        return canonical


def _walk(obj: Object) -> Iterator[Object]:
    yield obj
    for member in obj.members.values():
        if not isinstance(member, Alias):
            yield from _walk(member)
