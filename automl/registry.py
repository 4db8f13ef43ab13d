"""The component registry: one table per component kind, filled by the registration hooks.

The registry checks what it is given, refuses duplicate names, and records which plugin supplied
each component (pluggy cannot tell that from return values): the plugin manager calls each
registration hook through pluggy with one :class:`Registrar`, and each implementation receives it
bound to its own plugin (:meth:`Registrar.for_plugin`).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from automl.components import (
    Architecture, Augmentation, Callback, Component, Dataset, Ensembler, Metric, ParamDef, Pruner,
    Quantizer, Strategy, Task,
)
from automl.components.base import DATA_KINDS
from automl.errors import ConfigError, PluginError, did_you_mean, valid_names
from automl.params import PARAM_TYPES

#: component kind -> (base class, registration hook)
KINDS: dict[str, tuple[type[Component], str]] = {
    "dataset": (Dataset, "automl_register_datasets"),
    "architecture": (Architecture, "automl_register_architectures"),
    "augmentation": (Augmentation, "automl_register_augmentations"),
    "pruner": (Pruner, "automl_register_pruners"),
    "quantizer": (Quantizer, "automl_register_quantizers"),
    "ensembler": (Ensembler, "automl_register_ensemblers"),
    "metric": (Metric, "automl_register_metrics"),
    "task": (Task, "automl_register_tasks"),
    "callback": (Callback, "automl_register_callbacks"),
    "strategy": (Strategy, "automl_register_strategies"),
}

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
RESERVED_NAMES = {"none", "enabled"}


@dataclass(frozen=True)
class Registered:
    """One registered component and where it came from."""

    kind: str
    name: str
    cls: type[Component]
    plugin: str

    def create(self) -> Component:
        return self.cls()


class Registry:
    """All registered components, by kind and name."""

    def __init__(self, load_order: Sequence[str] = ()) -> None:
        self._items: dict[str, dict[str, Registered]] = {kind: {} for kind in KINDS}
        # pluggy calls the most recently loaded plugin first; a duplicate is blamed on the
        # plugin loaded later, whichever registered first
        self._rank = {name: index for index, name in enumerate(load_order)}

    def add(self, kind: str, cls: object, plugin: str) -> Registered:
        base, hook = KINDS[kind]
        where = f"plugin '{plugin}', hook {hook}"
        if not (inspect.isclass(cls) and issubclass(cls, base)):
            raise PluginError(f"{where}: registered {cls!r}, which is not a subclass of "
                              f"automl.components.{base.__name__}")
        name = getattr(cls, "name", None)
        if not isinstance(name, str) or not _NAME.match(name) or name in RESERVED_NAMES:
            raise PluginError(f"{where}: {cls.__name__}.name must be a lowercase identifier "
                              f"(letters, digits, _) other than {sorted(RESERVED_NAMES)}, "
                              f"got {name!r}")
        if inspect.isabstract(cls):
            missing = sorted(getattr(cls, "__abstractmethods__", ()))
            raise PluginError(f"{where}: {kind} '{name}' does not implement {missing}")
        _check_params(cls, where)
        for attr in ("data_kinds",):
            kinds = getattr(cls, attr, None)
            if kinds is not None and not set(kinds) <= set(DATA_KINDS):
                raise PluginError(f"{where}: {kind} '{name}' declares data_kinds {kinds!r}; "
                                  f"valid kinds are {list(DATA_KINDS)}")
        if kind == "metric":
            _check_metric(cls, f"{where}: metric '{name}'")
        if kind == "callback":
            _check_callback(cls, f"{where}: callback '{name}'")
        if kind in ("metric", "augmentation"):
            tasks = getattr(cls, "tasks", None)
            if tasks is not None and not (isinstance(tasks, tuple)
                                          and all(isinstance(t, str) for t in tasks)):
                raise PluginError(f"{where}: {kind} '{name}' declares tasks {tasks!r}; expected "
                                  "a tuple of task names or None (every task)")
        existing = self._items[kind].get(name)
        if existing is not None:
            first, later = sorted((existing.plugin, plugin), key=lambda p: self._rank.get(p, -1))
            raise PluginError(f"plugin '{later}', hook {hook}: {kind} '{name}' is already "
                              f"registered by plugin '{first}'")
        entry = Registered(kind, name, cls, plugin)
        self._items[kind][name] = entry
        return entry

    def get(self, kind: str, name: str, path: str | None = None) -> Registered:
        """Look a component up; an unknown name raises :class:`ConfigError` listing valid names."""
        table = self._items[kind]
        if name not in table:
            raise ConfigError(f"unknown {kind} '{name}'{did_you_mean(name, table)}; "
                              f"registered: {valid_names(table)}", path=path)
        return table[name]

    def names(self, kind: str) -> list[str]:
        return sorted(self._items[kind])

    def __iter__(self) -> Iterator[Registered]:
        for kind in KINDS:
            yield from (self._items[kind][n] for n in sorted(self._items[kind]))

    def create(self, kind: str, name: str) -> Component:
        return self.get(kind, name).create()

    def default(self, kind: str) -> Registered:
        """The one registered component of ``kind`` that declares ``default = True`` (the
        strategy of an experiment without ``strategy:``)."""
        declared = [e for e in self._items[kind].values() if getattr(e.cls, "default", False)]
        if len(declared) != 1:
            named = ", ".join(f"'{e.name}' (plugin '{e.plugin}')" for e in declared) or "none"
            raise PluginError(f"exactly one registered {kind} must declare default = True; "
                              f"declared: {named}")
        return declared[0]


def _check_metric(cls: type[Component], where: str) -> None:
    """What a metric declares for the core (see :class:`automl.components.Metric`)."""
    from automl.components.metric import AGGREGATES, RECORDED

    if getattr(cls, "direction", None) not in ("max", "min"):
        raise PluginError(f"{where} direction must be 'max' or 'min'")
    if getattr(cls, "recorded", None) not in RECORDED:
        raise PluginError(f"{where} recorded must be one of {list(RECORDED)}")
    if getattr(cls, "aggregate", None) not in AGGREGATES:
        raise PluginError(f"{where} aggregate must be one of {list(AGGREGATES)}")
    fact = getattr(cls, "fact", None)
    if fact is not None and not (isinstance(fact, str) and getattr(cls, "model_only", False)):
        raise PluginError(f"{where} fact must be None or, for a model-only metric, the name of "
                          "a training fact (a string)")
    if getattr(cls, "model_only", False) and getattr(cls, "tie_breaker", False):
        raise PluginError(f"{where} is model-only and cannot be the tie-breaker (it breaks ties "
                          "between predictions)")


def _check_callback(cls: type[Component], where: str) -> None:
    """A callback's options are fixed values, not search spaces; ``requires`` maps modules to
    the requirement that installs them."""
    from automl.params import Fixed

    for key, spec in getattr(cls, "params", {}).items():
        if isinstance(spec, ParamDef) and not isinstance(spec.default, Fixed):
            raise PluginError(f"{where} option '{key}' must have a Fixed default (callback "
                              "options are not searched)")
    requires = getattr(cls, "requires", None)
    if not (isinstance(requires, Mapping) and all(isinstance(k, str) and isinstance(v, str)
                                                  for k, v in requires.items())):
        raise PluginError(f"{where} requires must map module names to requirements, got "
                          f"{requires!r}")


def _check_params(cls: type[Component], where: str) -> None:
    params = getattr(cls, "params", {})
    if not isinstance(params, Mapping):
        raise PluginError(f"{where}: {cls.__name__}.params must be a mapping of name -> ParamDef")
    for key, spec in params.items():
        if not isinstance(spec, ParamDef) or not isinstance(spec.default, PARAM_TYPES):
            raise PluginError(f"{where}: {cls.__name__}.params['{key}'] must be a ParamDef whose "
                              "default is Fixed, FloatRange, IntRange or Choice")
        if key in RESERVED_NAMES:
            raise PluginError(f"{where}: {cls.__name__}.params may not be named '{key}'")


class Registrar:
    """What a registration hook receives: ``registrar.add(cls)`` registers one component.

    The hook is called with an unbound registrar (``plugin`` None); the plugin manager hands each
    implementation :meth:`for_plugin` of it, so every component is recorded with its plugin.
    """

    def __init__(self, registry: Registry, kind: str, plugin: str | None = None) -> None:
        self._registry = registry
        self.kind = kind
        self.plugin = plugin

    def for_plugin(self, plugin: str) -> "Registrar":
        """The same registrar, recording ``plugin`` as the supplier of what it adds."""
        return Registrar(self._registry, self.kind, plugin)

    def add(self, cls: type[Component]) -> None:
        if self.plugin is None:
            raise PluginError(f"{KINDS[self.kind][1]}: registrar.add() needs a registrar bound "
                              "to a plugin (call the hook through the automl plugin manager)")
        self._registry.add(self.kind, cls, self.plugin)
