"""Backend plugins: discovered through entry points, registered with pluggy.

A plugin is any importable object (usually a module) named by an entry point in the ``llmcompare``
group that implements the :func:`register_models` hook::

    # pyproject.toml of your package
    [project.entry-points.llmcompare]
    mybackend = "my_package.llmcompare_plugin"

    # my_package/llmcompare_plugin.py
    from llmcompare.plugins import hookimpl

    @hookimpl
    def register_models(register):
        register("mybackend", make_model, options=MyOptions, description="...")

The built-in backends (``fake``, ``llama``, ``chatgpt``) are registered the same way, through
llmcompare's own entry points. Factories must be cheap: no weights loaded and no network at
registration. Backends that call the network call :func:`check_network` first, so the
no-network switch of :mod:`llmcompare.testing` covers them. Each plugin loads on its own: one
that fails to import or raises in its hook becomes a :class:`PluginWarning` and an entry in
:func:`list_plugins`, and the others still load.

Environment:
    ``LLMCOMPARE_LOAD_PLUGINS``: comma-separated distribution names to load besides the built-ins;
        empty loads only the built-ins; unset loads everything installed.
    ``LLMCOMPARE_STRICT_PLUGINS=1``: re-raise plugin failures as :class:`PluginLoadError`
        (for plugin authors).
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import warnings
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import pluggy
from pydantic import BaseModel, ConfigDict

from llmcompare.backends._network import check_network
from llmcompare.errors import PluginLoadError, UnknownModelError, redact, user_stacklevel
from llmcompare.model import Model

if TYPE_CHECKING:
    # Imported where entry points are read, not here: it is a sizeable part of
    # `import llmcompare`, and the registry loads only on first use.
    import importlib.metadata

__all__ = [
    "ENTRY_POINT_GROUP",
    "ModelEntry",
    "ModelFactory",
    "ModelSpec",
    "NoOptions",
    "PluginInfo",
    "PluginWarning",
    "Register",
    "Registry",
    "check_network",
    "get_model",
    "hookimpl",
    "hookspec",
    "list_models",
    "list_plugins",
    "registry",
    "reset_registry",
    "spec_of",
]

ENTRY_POINT_GROUP = "llmcompare"
"""The entry-point group plugins declare themselves in."""

_PROJECT = "llmcompare"
hookspec = pluggy.HookspecMarker(_PROJECT)
"""Marks hook specifications (llmcompare's own use)."""
hookimpl = pluggy.HookimplMarker(_PROJECT)
"""Marks a plugin's hook implementations: decorate your ``register_models`` with it."""

_NAME = re.compile(r"^[a-z0-9][a-z0-9_.\-]*$")
_BUILTIN_DISTRIBUTION = "llmcompare"


class PluginWarning(UserWarning):
    """A plugin failed to load; the rest of the registry is still usable."""


class NoOptions(BaseModel):
    """Options model for backends that take no options: any option given is an error."""

    # defer_build: its validator is built on first use, not during `import llmcompare`.
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


ModelFactory = Callable[[str | None, Any], Model]
"""``factory(variant, options) -> Model``: ``variant`` is the part of the name after ``:`` (or
``None``), ``options`` an instance of the entry's options model. Must be cheap: no weights, no
network."""


class Register(Protocol):
    """The ``register`` callable a plugin's ``register_models`` hook receives."""

    def __call__(
        self,
        name: str,
        factory: ModelFactory,
        *,
        options: type[BaseModel] = NoOptions,
        aliases: Sequence[str] = (),
        description: str = "",
    ) -> None:
        """Register a model factory under ``name`` (and its aliases)."""
        ...


@dataclass(frozen=True)
class ModelSpec:
    """How a model was built by the registry: enough to build the same model in another process.

    Attributes:
        name: The registered name.
        variant: The part after ``:``, if any.
        options: The validated options.
    """

    name: str
    variant: str | None
    options: BaseModel

    def build(self) -> Model:
        """Build the model again (in this process) from the registry."""
        return registry().entry(self.name).factory(self.variant, self.options)


_SPECS: weakref.WeakKeyDictionary[Any, ModelSpec] = weakref.WeakKeyDictionary()


def spec_of(model: Model) -> ModelSpec | None:
    """How the registry built ``model`` (:func:`get_model`), or None for a model built by hand."""
    try:
        return _SPECS.get(model)
    except TypeError:  # not weak-referenceable or not hashable
        return None


@dataclass(frozen=True)
class ModelEntry:
    """A registered model family.

    Attributes:
        name: The name to ask for (``get_model("name[:variant]")``).
        factory: Builds the model from a variant and validated options.
        options: The pydantic model that validates keyword options (unknown ones are errors).
        aliases: Other names for the same entry.
        description: One line for listings.
        plugin: The entry point name of the plugin that registered it.
        distribution: The distribution that ships the plugin, when known.
    """

    name: str
    factory: ModelFactory
    options: type[BaseModel] = NoOptions
    aliases: tuple[str, ...] = ()
    description: str = ""
    plugin: str = "<local>"
    distribution: str | None = None

    def create(self, variant: str | None = None, /, **options: Any) -> Model:
        """Validate ``options`` and build a model.

        Raises:
            pydantic.ValidationError: When an option is unknown or invalid; it names the option.
        """
        validated = self.options.model_validate(options)
        model = self.factory(variant, validated)
        # Remembered so that another process (an executor's worker) can build the same model.
        with contextlib.suppress(TypeError):
            _SPECS[model] = ModelSpec(self.name, variant, validated)
        return model


@dataclass(frozen=True)
class PluginInfo:
    """What happened when one plugin was loaded.

    Attributes:
        name: The entry point name.
        distribution: The distribution that declares it.
        version: That distribution's version.
        models: Names the plugin registered.
        error: Why it failed to load, or ``None``.
        builtin: Whether it ships with llmcompare itself.
    """

    name: str
    distribution: str | None
    version: str | None
    models: tuple[str, ...] = ()
    error: str | None = None
    builtin: bool = False


class _Specs:
    """Hook specifications of llmcompare."""

    @hookspec
    def register_models(self, register: Register) -> None:
        """Register model factories by calling ``register(name, factory, ...)``.

        Args:
            register: See :class:`Register`.
        """


@dataclass
class Registry:
    """Model entries by name, and the record of the plugins that provided them.

    Most code uses the process-wide registry through :func:`get_model`; tests build their own with
    :func:`llmcompare.testing.isolated_registry`.
    """

    _entries: dict[str, ModelEntry] = field(default_factory=dict)
    _names: dict[str, str] = field(default_factory=dict)
    _plugins: list[PluginInfo] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def register(
        self,
        name: str,
        factory: ModelFactory,
        *,
        options: type[BaseModel] = NoOptions,
        aliases: Sequence[str] = (),
        description: str = "",
        plugin: str = "<local>",
        distribution: str | None = None,
    ) -> ModelEntry:
        """Register a model factory under ``name`` and ``aliases``.

        Raises:
            ValueError: When a name is malformed or already taken.
        """
        entry = ModelEntry(
            name=name,
            factory=factory,
            options=options,
            aliases=tuple(aliases),
            description=description,
            plugin=plugin,
            distribution=distribution,
        )
        self._add(entry)
        return entry

    def _add(self, entry: ModelEntry) -> None:
        names = (entry.name, *entry.aliases)
        for n in names:
            if not _NAME.match(n):
                raise ValueError(
                    f"invalid model name {n!r}: use lower-case letters, digits, '.', '_' or '-'"
                )
        if not (isinstance(entry.options, type) and issubclass(entry.options, BaseModel)):
            raise TypeError(f"options of {entry.name!r} must be a pydantic model class")
        with self._lock:
            for n in names:
                if n in self._names:
                    owner = self._entries[self._names[n]]
                    raise ValueError(f"model name {n!r} is already registered by {owner.plugin!r}")
            self._entries[entry.name] = entry
            for n in names:
                self._names[n] = entry.name

    def entry(self, name: str) -> ModelEntry:
        """Find the entry for a name or alias (without variant).

        Raises:
            UnknownModelError: When nothing is registered under it; lists close matches.
        """
        try:
            return self._entries[self._names[name]]
        except KeyError:
            raise UnknownModelError(name, self._names) from None

    def get_model(self, spec: str, /, **options: Any) -> Model:
        """Build a model from ``"name"`` or ``"name:variant"`` plus keyword options.

        Raises:
            UnknownModelError: When the name is not registered.
            pydantic.ValidationError: When an option is unknown or invalid.
        """
        name, _, variant = spec.strip().partition(":")
        return self.entry(name).create(variant or None, **options)

    def list_models(self) -> list[ModelEntry]:
        """All registered entries, sorted by name."""
        return sorted(self._entries.values(), key=lambda e: e.name)

    def list_plugins(self) -> list[PluginInfo]:
        """Every plugin seen at load time, loaded or failed, in load order."""
        return list(self._plugins)

    @classmethod
    def from_entry_points(
        cls, *, allow: Iterable[str] | None = None, strict: bool = False
    ) -> Registry:
        """Load every plugin in the ``llmcompare`` entry-point group.

        Args:
            allow: Distribution names to load besides the built-ins; ``None`` loads all.
            strict: Re-raise the first plugin failure instead of warning.

        Raises:
            PluginLoadError: In strict mode, when a plugin fails.
        """
        reg = cls()
        allowed = None if allow is None else {_normalise(d) for d in allow}
        pm = pluggy.PluginManager(_PROJECT)
        pm.add_hookspecs(_Specs)
        for ep in _entry_points():
            dist = ep.dist.name if ep.dist is not None else None
            version = ep.dist.version if ep.dist is not None else None
            builtin = dist is not None and _normalise(dist) == _BUILTIN_DISTRIBUTION
            if not builtin and allowed is not None and _normalise(dist or "") not in allowed:
                continue
            reg._load_one(pm, ep, dist, version, builtin, strict)
        return reg

    def _load_one(
        self,
        pm: pluggy.PluginManager,
        ep: importlib.metadata.EntryPoint,
        dist: str | None,
        version: str | None,
        builtin: bool,
        strict: bool,
    ) -> None:
        staged: list[ModelEntry] = []

        def register(
            name: str,
            factory: ModelFactory,
            *,
            options: type[BaseModel] = NoOptions,
            aliases: Sequence[str] = (),
            description: str = "",
        ) -> None:
            staged.append(
                ModelEntry(name, factory, options, tuple(aliases), description, ep.name, dist)
            )

        plugin_name = f"{dist or '?'}:{ep.name}"
        try:
            obj = ep.load()
            pm.register(obj, name=plugin_name)
            others = [p for n, p in pm.list_name_plugin() if n != plugin_name]
            pm.subset_hook_caller("register_models", remove_plugins=others)(register=register)
            # Commit only after the whole hook ran, so a plugin that fails halfway leaves nothing.
            added: list[ModelEntry] = []
            try:
                for entry in staged:
                    self._add(entry)
                    added.append(entry)
            except Exception:
                self._remove(added)
                raise
        except Exception as exc:
            if pm.get_plugin(plugin_name) is not None:
                pm.unregister(name=plugin_name)
            error = redact(f"{type(exc).__name__}: {exc}")
            self._plugins.append(PluginInfo(ep.name, dist, version, (), error, builtin))
            source = dist or "an unknown distribution"
            message = f"llmcompare plugin {ep.name!r} from {source} failed to load: {error}"
            if strict:
                raise PluginLoadError(message, plugin=ep.name, distribution=dist) from exc
            warnings.warn(message, PluginWarning, stacklevel=user_stacklevel())
            return
        self._plugins.append(
            PluginInfo(ep.name, dist, version, tuple(e.name for e in staged), None, builtin)
        )

    def _remove(self, entries: Iterable[ModelEntry]) -> None:
        with self._lock:
            for entry in entries:
                self._entries.pop(entry.name, None)
                for n in (entry.name, *entry.aliases):
                    self._names.pop(n, None)


def _normalise(distribution: str) -> str:
    # PEP 503 normalisation, so "My_Plugin" in the allowlist matches "my-plugin".
    return re.sub(r"[-_.]+", "-", distribution).lower()


def _entry_points() -> list[importlib.metadata.EntryPoint]:
    import importlib.metadata

    seen: set[tuple[str, str]] = set()
    out: list[importlib.metadata.EntryPoint] = []
    eps = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    # Built-ins first, so their names win over a third-party plugin that reuses one.
    for ep in sorted(eps, key=lambda e: e.dist is None or e.dist.name != _BUILTIN_DISTRIBUTION):
        key = (ep.dist.name if ep.dist is not None else "", ep.name)
        if key not in seen:  # the same distribution can be on sys.path twice
            seen.add(key)
            out.append(ep)
    return out


_registry: Registry | None = None
_registry_lock = threading.Lock()


def registry() -> Registry:
    """The process-wide registry, loaded from entry points on first use and kept."""
    global _registry
    reg = _registry
    if reg is None:
        with _registry_lock:
            reg = _registry
            if reg is None:
                env = os.environ.get("LLMCOMPARE_LOAD_PLUGINS")
                allow = None if env is None else [d.strip() for d in env.split(",") if d.strip()]
                strict = os.environ.get("LLMCOMPARE_STRICT_PLUGINS", "").strip() in ("1", "true")
                reg = _registry = Registry.from_entry_points(allow=allow, strict=strict)
    return reg


def reset_registry(new: Registry | None = None) -> Registry | None:
    """Replace the process-wide registry (``None``: reload from entry points on next use).

    Args:
        new: The registry to install, or ``None``.

    Returns:
        The registry that was installed before, so a caller can put it back.
    """
    global _registry
    with _registry_lock:
        old, _registry = _registry, new
    return old


def get_model(name: str, /, **options: Any) -> Model:
    """Build a model by name: ``"llama"``, ``"chatgpt:gpt-4o-mini"``, ``"fake"``...

    Args:
        name: A registered name or alias, optionally followed by ``:variant``.
        **options: Backend options, validated by the backend's options model.

    Returns:
        The model. Building it is cheap: weights load and clients connect on first use.

    Raises:
        UnknownModelError: When no plugin registered the name; the message suggests close ones.
        pydantic.ValidationError: When an option is unknown or invalid.
    """
    return registry().get_model(name, **options)


def list_models() -> list[ModelEntry]:
    """Every model entry registered by the loaded plugins, sorted by name."""
    return registry().list_models()


def list_plugins() -> list[PluginInfo]:
    """Every plugin found, with its distribution, version, models, or the error that stopped it."""
    return registry().list_plugins()
