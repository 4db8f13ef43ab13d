"""Building the plugin manager: built-ins, then entry points, then what the experiment lists.

Load order:

1. built-in plugins (:data:`BUILTIN_PLUGINS`), imported by module name exactly like a user's;
2. installed packages that declare an entry point in the ``automl`` group, unless the environment
   variable ``AUTOML_DISABLE_PLUGIN_AUTOLOAD`` is set to a non-empty value;
3. modules (``my_pkg.my_plugin``) and files (``plugins/my_arch.py``, relative to the experiment
   file) listed under ``plugins:`` in the experiment.

There is no global manager. :func:`load_plugins` builds a fresh one; Ray workers get the picklable
:class:`PluginSource` and rebuild an identical manager with :func:`rebuild_plugins`.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import os
import sys
import threading
import types
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pluggy

from automl import hookspecs
from automl.errors import AutomlError, PluginError, did_you_mean
from automl.registry import KINDS, Registrar, Registry

PROJECT = "automl"
ENTRY_POINT_GROUP = "automl"
DISABLE_AUTOLOAD_ENV = "AUTOML_DISABLE_PLUGIN_AUTOLOAD"
LOCAL_MODULE_PREFIX = "automl_local_plugins"

BUILTIN_PLUGINS: tuple[str, ...] = (
    "automl_plugins.datasets.sklearn_datasets",
    "automl_plugins.datasets.tabular_file",
    "automl_plugins.datasets.image_folder",
    "automl_plugins.datasets.text_csv",
    "automl_plugins.architectures.mlp",
    "automl_plugins.architectures.cnn",
    "automl_plugins.architectures.resnet",
    "automl_plugins.architectures.transformer",
    "automl_plugins.augmentations.shift",
    "automl_plugins.augmentations.noise",
    "automl_plugins.augmentations.rotation",
    "automl_plugins.augmentations.cutout",
    "automl_plugins.augmentations.mixup",
    "automl_plugins.augmentations.feature_dropout",
    "automl_plugins.augmentations.token_dropout",
    "automl_plugins.pruners.magnitude",
    "automl_plugins.pruners.structured",
    "automl_plugins.ensemblers.greedy",
    "automl_plugins.ensemblers.weighted",
    "automl_plugins.metrics.classification",
    "automl_plugins.metrics.model_size",
    "automl_plugins.metrics.latency",
)


class _Manager(pluggy.PluginManager):
    """Treats every ``automl_*`` function of a plugin as a hook implementation, marked or not."""

    def parse_hookimpl_opts(self, plugin: Any, name: str) -> Any:
        opts = super().parse_hookimpl_opts(plugin, name)
        if opts is None and name.startswith(f"{PROJECT}_"):
            method = getattr(plugin, name, None)
            if callable(method) and not isinstance(method, type):
                return {}
        return opts


@dataclass(frozen=True)
class LocalFile:
    path: str
    source: str


@dataclass(frozen=True)
class PluginSource:
    """Everything needed to rebuild the same manager in another process (picklable)."""

    modules: tuple[str, ...] = ()
    files: tuple[LocalFile, ...] = ()
    autoload: bool = True


@dataclass(frozen=True)
class LoadedPlugin:
    name: str
    origin: str  # builtin | entrypoint | experiment
    version: str | None


@dataclass
class Plugins:
    """A built plugin manager with its filled registry."""

    manager: pluggy.PluginManager
    registry: Registry
    source: PluginSource
    loaded: list[LoadedPlugin] = field(default_factory=list)

    def call(self, hook: str, **kwargs: Any) -> list[Any]:
        """Call a hook, implementation by implementation, naming the plugin that fails."""
        caller = getattr(self.manager.hook, hook)
        results = []
        for impl in reversed(caller.get_hookimpls()):
            args = {name: kwargs[name] for name in impl.argnames}
            try:
                results.append(impl.function(**args))
            except AutomlError:
                raise
            except Exception as exc:  # noqa: BLE001 - re-raised with the plugin's name
                raise PluginError(f"plugin '{impl.plugin_name}', hook {hook}: "
                                  f"{type(exc).__name__}: {exc}") from exc
        return results

    def versions(self) -> dict[str, str | None]:
        return {p.name: p.version for p in self.loaded}


def autoload_enabled() -> bool:
    return not os.environ.get(DISABLE_AUTOLOAD_ENV)


def plugin_source(entries: Sequence[str], base_dir: Path | None = None,
                  autoload: bool | None = None) -> PluginSource:
    """Resolve the experiment's ``plugins:`` list into a :class:`PluginSource`.

    An entry that ends in ``.py`` or contains a path separator is a file, relative to
    ``base_dir``; anything else is an importable module name.
    """
    modules: list[str] = []
    files: list[LocalFile] = []
    for index, entry in enumerate(entries):
        if entry.endswith(".py") or "/" in entry or os.sep in entry:
            path = Path(entry).expanduser()
            if not path.is_absolute():
                path = (base_dir or Path.cwd()) / path
            try:
                source = path.read_text(encoding="utf-8")
            except OSError as exc:
                raise PluginError(f"plugins[{index}]: cannot read plugin file '{entry}' "
                                  f"({path.resolve()}): {exc.strerror or exc}") from None
            files.append(LocalFile(str(path.resolve()), source))
        else:
            modules.append(entry)
    return PluginSource(tuple(modules), tuple(files),
                        autoload_enabled() if autoload is None else autoload)


def load_plugins(entries: Sequence[str] = (), base_dir: Path | None = None,
                 autoload: bool | None = None) -> Plugins:
    """Build a fresh plugin manager: built-ins, entry points, then ``entries``."""
    return build_plugins(plugin_source(entries, base_dir, autoload))


def build_plugins(source: PluginSource) -> Plugins:
    manager = _Manager(PROJECT)
    manager.add_hookspecs(hookspecs)
    loaded: list[LoadedPlugin] = []

    for module_name in BUILTIN_PLUGINS:
        _register(manager, _import_module(module_name), module_name)
        loaded.append(LoadedPlugin(module_name, "builtin", _version_of("automl")))

    if source.autoload:
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            try:
                plugin = ep.load()
            except Exception as exc:  # noqa: BLE001
                raise PluginError(f"Error importing plugin '{ep.name}' (entry point {ep.value}): "
                                  f"{type(exc).__name__}: {exc}") from exc
            _register(manager, plugin, ep.name)
            version = ep.dist.version if ep.dist is not None else None
            loaded.append(LoadedPlugin(ep.name, "entrypoint", version))

    for module_name in source.modules:
        _register(manager, _import_module(module_name), module_name)
        loaded.append(LoadedPlugin(module_name, "experiment",
                                   _version_of(module_name.split(".")[0])))
    for local in source.files:
        name = Path(local.path).stem
        _register(manager, _exec_file(local), name)
        loaded.append(LoadedPlugin(name, "experiment", None))

    _check_unknown_hooks(manager)

    plugins = Plugins(manager, Registry(), source, loaded)
    for kind, (_, hook) in KINDS.items():
        for impl in getattr(manager.hook, hook).get_hookimpls():  # registration order
            registrar = Registrar(plugins.registry, kind, impl.plugin_name)
            try:
                impl.function(**{name: registrar for name in impl.argnames})
            except AutomlError:
                raise
            except Exception as exc:  # noqa: BLE001
                raise PluginError(f"plugin '{impl.plugin_name}', hook {hook}: "
                                  f"{type(exc).__name__}: {exc}") from exc
    return plugins


_cache: dict[PluginSource, Plugins] = {}
_cache_lock = threading.Lock()


def rebuild_plugins(source: PluginSource) -> Plugins:
    """The manager for ``source`` in this process, built once (used inside Ray workers)."""
    with _cache_lock:
        if source not in _cache:  # frozen and hashable: the source itself is the key
            _cache[source] = build_plugins(source)
        return _cache[source]


def _check_unknown_hooks(manager: pluggy.PluginManager) -> None:
    """An ``automl_*`` function that matches no hookspec is a typo, not something to ignore."""
    known = [name for name in dir(hookspecs) if name.startswith(f"{PROJECT}_")]
    for name, caller in sorted(vars(manager.hook).items()):
        if isinstance(caller, pluggy.HookCaller) and not caller.has_spec():
            for impl in caller.get_hookimpls():
                raise PluginError(f"plugin '{impl.plugin_name}': unknown hook '{name}'"
                                  f"{did_you_mean(name, known)}")


def _register(manager: pluggy.PluginManager, plugin: object, name: str) -> None:
    if manager.is_registered(plugin) or manager.has_plugin(name):
        raise PluginError(f"plugin '{name}' is loaded twice")
    try:
        manager.register(plugin, name=name)
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"plugin '{name}': {exc}") from None


def _import_module(name: str) -> types.ModuleType:
    try:
        return importlib.import_module(name)
    except Exception as exc:  # noqa: BLE001
        raise PluginError(f"Error importing plugin '{name}': {type(exc).__name__}: {exc}") from exc


def _exec_file(local: LocalFile) -> types.ModuleType:
    stem = Path(local.path).stem
    digest = hashlib.sha256(local.path.encode() + local.source.encode()).hexdigest()[:12]
    module_name = f"{LOCAL_MODULE_PREFIX}.{stem}_{digest}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    module = types.ModuleType(module_name)
    module.__file__ = local.path
    sys.modules[module_name] = module  # before exec: dataclasses and pickling look it up
    try:
        code = compile(local.source, local.path, "exec")
        exec(code, module.__dict__)  # noqa: S102 - the user's own plugin file, listed by them
    except Exception as exc:  # noqa: BLE001
        del sys.modules[module_name]
        raise PluginError(f"Error importing plugin '{stem}' ({local.path}): "
                          f"{type(exc).__name__}: {exc}") from exc
    return module


def _version_of(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None
