"""Building the plugin manager: built-ins, then entry points, then what the experiment lists.

Load order:

1. built-in plugins (:data:`BUILTIN_PLUGINS`), imported by module name exactly like a user's;
2. installed packages that declare an entry point in the ``automl`` group, unless the environment
   variable ``AUTOML_DISABLE_PLUGIN_AUTOLOAD`` is set to a non-empty value;
3. modules (``my_pkg.my_plugin``) and files (``plugins/my_arch.py``, relative to the experiment
   file) listed under ``plugins:`` in the experiment.

A plugin named in ``AUTOML_BLOCK_PLUGINS`` (comma-separated) or in the experiment's
``plugins: {block: [...]}`` is not loaded at all (pluggy's ``set_blocked``).

Hooks are called through pluggy (``manager.hook.<name>(...)``), so ``tryfirst``/``trylast``,
wrappers (``wrapper=True``) and ``firstresult`` hookspecs behave as pluggy documents. Two things
are added at registration, by wrapping each hook implementation's function:

* an exception raised by an implementation becomes a :class:`~automl.errors.PluginError`
  ``plugin 'NAME', hook HOOK: Type: message`` (pluggy itself does not name the plugin);
* a registration hook receives a :class:`~automl.registry.Registrar` bound to its own plugin, so
  the registry records which plugin supplied each component.

There is no global manager. :func:`load_plugins` builds a fresh one; Ray workers get the picklable
:class:`PluginSource`, which records every plugin the driver loaded (origin, distribution, version
and the sha256 of its source file), and :func:`rebuild_plugins` refuses to build another set.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib
import importlib.metadata
import inspect
import os
import sys
import threading
import types
from collections.abc import Callable, Iterable, Sequence
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
BLOCK_ENV = "AUTOML_BLOCK_PLUGINS"
LOCAL_MODULE_PREFIX = "automl_local_plugins"

BUILTIN_PLUGINS: tuple[str, ...] = (
    "automl_plugins.datasets.sklearn_datasets",
    "automl_plugins.datasets.synthetic",
    "automl_plugins.datasets.tabular_file",
    "automl_plugins.datasets.image_folder",
    "automl_plugins.datasets.text_csv",
    "automl_plugins.architectures.mlp",
    "automl_plugins.architectures.linear",
    "automl_plugins.architectures.hist_gbt",
    "automl_plugins.architectures.cnn",
    "automl_plugins.architectures.resnet",
    "automl_plugins.architectures.transformer",
    "automl_plugins.architectures.backbone",
    "automl_plugins.augmentations.shift",
    "automl_plugins.augmentations.noise",
    "automl_plugins.augmentations.rotation",
    "automl_plugins.augmentations.cutout",
    "automl_plugins.augmentations.mixup",
    "automl_plugins.augmentations.feature_dropout",
    "automl_plugins.augmentations.token_dropout",
    "automl_plugins.augmentations.eda",
    "automl_plugins.augmentations.back_translation",
    "automl_plugins.pruners.magnitude",
    "automl_plugins.pruners.structured",
    "automl_plugins.quantizers.dynamic_int8",
    "automl_plugins.quantizers.static_int8",
    "automl_plugins.strategies.standard",
    "automl_plugins.strategies.federated",
    "automl_plugins.strategies.dp_sgd",
    "automl_plugins.quantizers.fp16",
    "automl_plugins.ensemblers.greedy",
    "automl_plugins.ensemblers.weighted",
    "automl_plugins.metrics.classification",
    "automl_plugins.metrics.model_size",
    "automl_plugins.metrics.latency",
    "automl_plugins.metrics.regression",
    "automl_plugins.metrics.multilabel",
    "automl_plugins.metrics.privacy",
    "automl_plugins.tasks.classification",
    "automl_plugins.tasks.regression",
    "automl_plugins.tasks.multilabel",
    "automl_plugins.callbacks.mlflow",
    "automl_plugins.callbacks.tensorboard",
)


class _Manager(pluggy.PluginManager):
    """Treats every ``automl_*`` function a plugin module defines as a hook implementation, marked
    or not; one it imported from another module is not its own and is skipped (it registers once,
    with the module that defines it)."""

    def parse_hookimpl_opts(self, plugin: Any, name: str) -> Any:
        method = getattr(plugin, name, None)
        if isinstance(plugin, types.ModuleType) and callable(method) \
                and getattr(method, "__module__", plugin.__name__) != plugin.__name__:
            return None
        opts = super().parse_hookimpl_opts(plugin, name)
        if opts is None and name.startswith(f"{PROJECT}_"):
            if callable(method) and not isinstance(method, type):
                return {}
        return opts


@dataclass(frozen=True)
class LocalFile:
    """A plugin file as read on the driver: its absolute path, source text and sha256."""

    path: str
    source: str
    sha256: str = ""


@dataclass(frozen=True)
class LoadedPlugin:
    """One plugin a manager loaded, as recorded for workers and in the results database."""

    name: str
    origin: str  # builtin | entrypoint | experiment
    version: str | None
    target: str = ""  # module name, entry point value (module:attr) or file path
    distribution: str | None = None
    sha256: str | None = None  # of the plugin's source file

    def describe(self) -> str:
        dist = f"{self.distribution} {self.version}" if self.distribution else \
            f"version {self.version or '-'}"
        return f"{self.origin} plugin '{self.name}' ({self.target}; {dist}; " \
               f"sha256 {self.sha256 or '-'})"


@dataclass(frozen=True)
class PluginSource:
    """Everything needed to rebuild the same manager in another process (picklable).

    ``loaded`` is None until a manager has been built from the source; the source a built manager
    holds lists every plugin it loaded, and a rebuild from it must load exactly those.
    """

    modules: tuple[str, ...] = ()
    files: tuple[LocalFile, ...] = ()
    autoload: bool = True
    blocked: tuple[str, ...] = ()
    loaded: tuple[LoadedPlugin, ...] | None = None


@dataclass
class Plugins:
    """A built plugin manager with its filled registry."""

    manager: pluggy.PluginManager
    registry: Registry
    source: PluginSource
    loaded: list[LoadedPlugin] = field(default_factory=list)

    def call(self, hook: str, **kwargs: Any) -> Any:
        """Call ``hook`` through pluggy (``manager.hook.<hook>(**kwargs)``).

        Returns what pluggy returns: the list of non-None results, or for a ``firstresult`` hook
        the first non-None result. A failing implementation raises
        :class:`~automl.errors.PluginError` naming the plugin and the hook.
        """
        return getattr(self.manager.hook, hook)(**kwargs)

    def versions(self) -> dict[str, str | None]:
        return {p.name: p.version for p in self.loaded}


def autoload_enabled() -> bool:
    return not os.environ.get(DISABLE_AUTOLOAD_ENV)


def blocked_by_env() -> tuple[str, ...]:
    """The plugin names in ``AUTOML_BLOCK_PLUGINS`` (comma-separated)."""
    return tuple(n.strip() for n in os.environ.get(BLOCK_ENV, "").split(",") if n.strip())


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_plugin_file(path: Path, where: str) -> LocalFile:
    """Read a plugin file (bytes, so the digest is the file's), naming ``where`` on failure."""
    try:
        data = path.read_bytes()
        source = data.decode("utf-8")
    except OSError as exc:
        raise PluginError(f"{where}: cannot read plugin file {path}: "
                          f"{exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise PluginError(f"{where}: plugin file {path} is not UTF-8 text ({exc})") from None
    return LocalFile(str(path), source, sha256_of(data))


def plugin_source(entries: Sequence[str], base_dir: Path | None = None,
                  autoload: bool | None = None, blocked: Sequence[str] = ()) -> PluginSource:
    """Resolve the experiment's ``plugins:`` list into a :class:`PluginSource`.

    An entry that ends in ``.py`` or contains a path separator is a file, relative to
    ``base_dir``; anything else is an importable module name. ``blocked`` (the experiment's
    ``plugins.block``) and the names in ``AUTOML_BLOCK_PLUGINS`` are not loaded; a name that is
    no plugin's raises :class:`~automl.errors.PluginError` with the nearest name.
    """
    modules: list[str] = []
    files: list[LocalFile] = []
    for index, entry in enumerate(entries):
        if entry.endswith(".py") or "/" in entry or os.sep in entry:
            path = Path(entry).expanduser()
            if not path.is_absolute():
                path = (base_dir or Path.cwd()) / path
            path = path.resolve()
            try:
                files.append(read_plugin_file(path, f"plugins[{index}]"))
            except PluginError as exc:  # keep the entry as the user wrote it in the message
                raise PluginError(str(exc).replace(f"plugin file {path}",
                                                   f"plugin file '{entry}' ({path})")) from None
        else:
            modules.append(entry)
    autoload = autoload_enabled() if autoload is None else autoload
    block = _check_blocked([(f"plugins.block[{i}]", n) for i, n in enumerate(blocked)]
                           + [(BLOCK_ENV, n) for n in blocked_by_env()], modules, files)
    return PluginSource(tuple(modules), tuple(files), autoload, block)


def _check_blocked(names: list[tuple[str, str]], modules: Sequence[str],
                   files: Sequence[LocalFile]) -> tuple[str, ...]:
    if not names:
        return ()
    known = [*BUILTIN_PLUGINS, *(ep.name for ep in _entry_points()), *modules,
             *(Path(f.path).stem for f in files)]
    for where, name in names:
        if name not in known:
            suggestion = did_you_mean(name, known) or _by_last_part(name, known)
            raise PluginError(f"{where}: cannot block '{name}': no plugin has that name"
                              f"{suggestion}; plugins are named as `automl plugins` lists them")
    return tuple(dict.fromkeys(name for _, name in names))


def _by_last_part(name: str, known: Iterable[str]) -> str:
    matches = [k for k in known if k.rsplit(".", 1)[-1] == name]
    return f" (did you mean '{matches[0]}'?)" if len(matches) == 1 else ""


def load_plugins(entries: Sequence[str] = (), base_dir: Path | None = None,
                 autoload: bool | None = None, blocked: Sequence[str] = ()) -> Plugins:
    """Build a fresh plugin manager: built-ins, entry points, then ``entries``."""
    return build_plugins(plugin_source(entries, base_dir, autoload, blocked))


def build_plugins(source: PluginSource,
                  specs: Sequence[types.ModuleType] = (hookspecs,)) -> Plugins:
    """Build a manager from ``source``; with ``source.loaded`` set, refuse another plugin set.

    Args:
        source: what to load (see :func:`plugin_source`).
        specs: the hookspec modules (automl's own; an extension or a test may add its own).

    Returns:
        the manager, its filled registry, and ``source`` with ``loaded`` filled in.
    """
    manager = _Manager(PROJECT)
    for spec in specs:
        manager.add_hookspecs(spec)
    for name in source.blocked:
        manager.set_blocked(name)
    if source.loaded is not None:
        _check_entry_points(source)
    loaded: list[LoadedPlugin] = []

    for module_name in BUILTIN_PLUGINS:
        if manager.is_blocked(module_name):
            continue
        module = _import_module(module_name)
        _register(manager, module, module_name)
        loaded.append(LoadedPlugin(module_name, "builtin", _version_of("automl"), module_name,
                                   "automl", _file_digest(module)))

    if source.autoload:
        for ep in _entry_points():
            if manager.is_blocked(ep.name):
                continue  # not even imported, as pytest does for -p no:NAME
            try:
                plugin = ep.load()
            except Exception as exc:  # noqa: BLE001
                raise PluginError(f"Error importing plugin '{ep.name}' (entry point {ep.value}): "
                                  f"{type(exc).__name__}: {exc}") from exc
            _register(manager, plugin, ep.name)
            dist = ep.dist.metadata["Name"] if ep.dist is not None else None
            version = ep.dist.version if ep.dist is not None else None
            loaded.append(LoadedPlugin(ep.name, "entrypoint", version, ep.value, dist,
                                       _file_digest(inspect.getmodule(plugin) or plugin)))

    for module_name in source.modules:
        if manager.is_blocked(module_name):
            continue
        module = _import_module(module_name)
        _register(manager, module, module_name)
        top = module_name.split(".")[0]
        version = _version_of(top)
        loaded.append(LoadedPlugin(module_name, "experiment", version, module_name,
                                   top if version else None, _file_digest(module)))
    for local in source.files:
        name = Path(local.path).stem
        if manager.is_blocked(name):
            continue
        digest = sha256_of(local.source.encode("utf-8"))
        if local.sha256 and local.sha256 != digest:
            raise PluginError(f"plugin file {local.path}: its source does not match the recorded "
                              f"sha256 ({digest} != {local.sha256})")
        _register(manager, _exec_file(local), name)
        loaded.append(LoadedPlugin(name, "experiment", None, local.path, None, digest))

    _check_pending(manager)
    if source.loaded is not None:
        _check_same_set(source.loaded, loaded)
    plugins = Plugins(manager, Registry([p.name for p in loaded]),
                      dataclasses.replace(source, loaded=tuple(loaded)), loaded)
    for kind, (_, hook) in KINDS.items():
        getattr(manager.hook, hook)(registrar=Registrar(plugins.registry, kind))
    return plugins


_cache: dict[PluginSource, Plugins] = {}
_cache_lock = threading.Lock()


def rebuild_plugins(source: PluginSource) -> Plugins:
    """The manager for ``source`` in this process, built once (used inside Ray workers).

    Raises:
        PluginError: ``source`` records the plugins the driver loaded and this process would
            load another set (an entry point missing, extra or of another version, a plugin
            source file with another digest), naming each difference.
    """
    with _cache_lock:
        if source not in _cache:  # frozen and hashable: the source itself is the key
            _cache[source] = build_plugins(source)
        return _cache[source]


def _entry_points() -> list[importlib.metadata.EntryPoint]:
    seen: dict[str, importlib.metadata.EntryPoint] = {}
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        seen.setdefault(ep.name, ep)  # a distribution found twice on sys.path counts once
    return list(seen.values())


def _check_entry_points(source: PluginSource) -> None:
    """Before importing anything: the installed entry points are the ones the driver loaded."""
    recorded = {p.name: p for p in source.loaded or () if p.origin == "entrypoint"}
    here = {ep.name: ep for ep in _entry_points() if ep.name not in source.blocked} \
        if source.autoload else {}
    differences = []
    for name in sorted(set(recorded) | set(here)):
        if name not in here:
            differences.append(f"entry point '{name}' ({recorded[name].distribution} "
                               f"{recorded[name].version}) is not installed here")
        elif name not in recorded:
            ep = here[name]
            differences.append(f"entry point '{name}' ({_dist_text(ep)}) is installed here but "
                               "was not loaded by the driver")
        else:
            ep, rec = here[name], recorded[name]
            dist = ep.dist.metadata["Name"] if ep.dist is not None else None
            version = ep.dist.version if ep.dist is not None else None
            if (dist, version, ep.value) != (rec.distribution, rec.version, rec.target):
                differences.append(f"entry point '{name}' is {_dist_text(ep)} here but "
                                   f"{rec.distribution} {rec.version} ({rec.target}) on the driver")
    _refuse(differences)


def _dist_text(ep: importlib.metadata.EntryPoint) -> str:
    if ep.dist is None:
        return ep.value
    return f"{ep.dist.metadata['Name']} {ep.dist.version} ({ep.value})"


def _check_same_set(recorded: Sequence[LoadedPlugin], loaded: Sequence[LoadedPlugin]) -> None:
    before = {p.name: p for p in recorded}
    now = {p.name: p for p in loaded}
    differences = []
    for name in [*before, *(n for n in now if n not in before)]:
        if name not in now:
            differences.append(f"{before[name].describe()} was not loaded here")
        elif name not in before:
            differences.append(f"{now[name].describe()} was not loaded by the driver")
        elif before[name] != now[name]:
            differences.append(f"{before[name].origin} plugin '{name}' differs: "
                               f"{_changes(before[name], now[name])}")
    _refuse(differences)


def _changes(before: LoadedPlugin, now: LoadedPlugin) -> str:
    return "; ".join(f"{f.name} {getattr(now, f.name)} here, {getattr(before, f.name)} on the "
                     "driver" for f in dataclasses.fields(LoadedPlugin)
                     if getattr(now, f.name) != getattr(before, f.name))


def _refuse(differences: list[str]) -> None:
    if differences:
        raise PluginError("this process would load other plugins than the driver did, so trials "
                          "could not be trusted to run the same code: " + "; ".join(differences)
                          + " (install the same plugin versions on every node)")


def _check_pending(manager: pluggy.PluginManager) -> None:
    """An ``automl_*`` function that matches no hookspec is a typo, not something to ignore:
    pluggy's own ``check_pending``, reported with the plugin's name and the nearest hook."""
    try:
        manager.check_pending()
    except pluggy.PluginValidationError as exc:
        name = manager.get_name(exc.plugin) or repr(exc.plugin)
        known = [h for h in vars(manager.hook) if getattr(manager.hook, h).has_spec()]
        unknown = [c.name for c in manager.get_hookcallers(exc.plugin) or () if not c.has_spec()]
        hook = unknown[0] if unknown else "?"
        raise PluginError(f"plugin '{name}': unknown hook '{hook}'"
                          f"{did_you_mean(hook, known)}") from None


def _register(manager: pluggy.PluginManager, plugin: object, name: str) -> None:
    if manager.is_registered(plugin) or manager.has_plugin(name):
        raise PluginError(f"plugin '{name}' is loaded twice")
    try:
        manager.register(plugin, name=name)
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"plugin '{name}': {exc}") from None
    for caller in manager.get_hookcallers(plugin) or ():
        for impl in caller.get_hookimpls():
            if impl.plugin is plugin:
                impl.function = _named(impl.function, name, caller.name,
                                       wrapper=impl.wrapper or impl.hookwrapper)


def _named(function: Callable[..., Any], plugin: str, hook: str, wrapper: bool
           ) -> Callable[..., Any]:
    """``function`` as pluggy will call it: registrars bound to ``plugin``, and any exception
    other than automl's own re-raised as ``plugin 'NAME', hook HOOK: Type: message``."""

    def failure(exc: Exception) -> PluginError:
        return PluginError(f"plugin '{plugin}', hook {hook}: {type(exc).__name__}: {exc}")

    def bind(args: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple(a.for_plugin(plugin) if isinstance(a, Registrar) else a for a in args)

    if wrapper:  # a generator: pluggy drives it with next/send/throw, so delegate with yield from
        @functools.wraps(function)
        def wrapped_generator(*args: Any) -> Any:
            try:
                return (yield from function(*bind(args)))
            except AutomlError:  # automl's own, or an inner plugin's failure, already named
                raise
            except Exception as exc:  # noqa: BLE001
                raise failure(exc) from exc
        return wrapped_generator

    @functools.wraps(function)
    def wrapped(*args: Any) -> Any:
        try:
            return function(*bind(args))
        except AutomlError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise failure(exc) from exc
    return wrapped


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


def _file_digest(plugin: object) -> str | None:
    """sha256 of the source file a plugin module was imported from (None without one)."""
    path = getattr(plugin, "__file__", None)
    if not path:
        return None
    try:
        return sha256_of(Path(path).read_bytes())
    except OSError:
        return None


def _version_of(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None
