"""What the results database records about an experiment's config and plugins, and reading it
back without trusting it blindly.

When a run starts, the runner records:

* the **resolved config** (:func:`resolved_config`): the validated experiment with every relative
  path (plugin files, dataset and component path parameters) made absolute against the
  experiment file's directory, so ``rerun``, ``export`` and ``ensemble`` never depend on the
  current directory;
* the **plugins** (:func:`plugins_record`): modules, plugin files with the sha256 of each, blocked
  names, and every loaded plugin's origin, distribution, version and source digest.

Reading it back (:func:`recorded_plugin_source`), a plugin file named by the database is executed
only when its content still has the recorded sha256: on a shared database, write access to the
database must not become a way to run code. A file that changed since the run, or a record
without a digest, is refused with the file and the digests named.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

from automl.errors import ConfigError, PluginError, StoreError

if TYPE_CHECKING:
    from automl.config import Experiment
    from automl.plugin_manager import Plugins, PluginSource
    from automl.registry import Registry
    from automl.store import ExperimentRecord

#: config section -> registry kind of the components it names
COMPONENT_SECTIONS = {"architecture": "architecture", "augmentations": "augmentation",
                      "pruning": "pruner", "quantization": "quantizer", "callbacks": "callback"}


def resolved_config(config: "Experiment", registry: "Registry", base_dir: Path) -> dict[str, Any]:
    """``config`` as JSON with relative paths made absolute against ``base_dir``.

    Resolved: plugin files under ``plugins``, and parameters a component declares with
    ``is_path=True`` (dataset parameters, architecture, augmentation and pruner overrides, and
    callback options).
    ``package:NAME/...`` values and URIs stay as written: they do not depend on a directory.
    A password in ``storage.db`` is masked: the live URL stays in the driver's memory.
    """
    from automl.store import safe_url

    document = config.model_dump(mode="json", by_alias=True)  # search.warm_start.from
    if document["storage"].get("db"):
        document["storage"]["db"] = safe_url(document["storage"]["db"])
    plugins = document["plugins"]
    load = plugins if isinstance(plugins, list) else plugins["load"]
    load[:] = [_absolute(e, base_dir) if _is_file_entry(e) else e for e in load]
    dataset = registry.get("dataset", config.dataset.name, path="dataset.name")
    _resolve_params(document["dataset"]["params"], dataset.cls.params, base_dir)
    for section, kind in COMPONENT_SECTIONS.items():
        for name, overrides in document[section].items():
            try:
                entry = registry.get(kind, name)
            except ConfigError:
                continue
            _resolve_params(overrides, entry.cls.params, base_dir)
    return document


def _is_file_entry(entry: str) -> bool:
    return entry.endswith(".py") or "/" in entry or "\\" in entry


def _absolute(value: Any, base_dir: Path) -> Any:
    if not isinstance(value, str) or value.startswith("package:") or "://" in value:
        return value
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else (base_dir / path).resolve())


def _resolve_params(values: dict[str, Any], declared: Any, base_dir: Path) -> None:
    for key, value in values.items():
        spec = declared.get(key)
        if spec is None or not spec.is_path:
            continue
        values[key] = [_absolute(v, base_dir) for v in value] if isinstance(value, list) \
            else _absolute(value, base_dir)


def plugins_record(plugins: "Plugins") -> dict[str, Any]:
    """The ``plugins`` column of an experiment: what was loaded, with digests."""
    source = plugins.source
    return {"versions": plugins.versions(),
            "modules": list(source.modules),
            "files": [f.path for f in source.files],
            "digests": {f.path: f.sha256 for f in source.files},
            "blocked": list(source.blocked),
            "loaded": [dataclasses.asdict(p) for p in plugins.loaded]}


def recorded_config(exp: "ExperimentRecord") -> "Experiment":
    """The experiment's recorded config as a validated :class:`~automl.config.Experiment`.

    Experiments recorded since the config is recorded resolved hold absolute paths; in older
    records relative paths resolve against the current directory.
    """
    from pydantic import ValidationError

    from automl.config import Experiment

    try:
        return Experiment.model_validate(exp.config)
    except ValidationError as exc:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": str(exc)}
        where = ".".join(str(p) for p in first["loc"])
        raise StoreError(f"experiment '{exp.name}': the recorded config no longer validates "
                         f"({where}: {first['msg']}); was it recorded by another automl "
                         f"version ({exp.automl_version})?") from None


def recorded_plugin_source(exp: "ExperimentRecord") -> "PluginSource":
    """The plugins ``exp`` ran with, each plugin file checked against its recorded sha256.

    Raises:
        PluginError: a plugin file is missing, has no recorded digest, or its content changed
            since the run (both digests named); nothing of it has been executed.
    """
    from automl.plugin_manager import (
        PluginSource, autoload_enabled, blocked_by_env, read_plugin_file,
    )

    record = exp.plugins or {}
    digests = record.get("digests") or {}
    files = []
    for path in record.get("files", []):
        where = f"experiment '{exp.name}'"
        expected = digests.get(path)
        if not expected:
            raise PluginError(f"{where} names plugin file {path} without a recorded sha256 "
                              "(recorded by an older automl); automl does not run a plugin file "
                              "named by the database without a digest to check it against")
        local = read_plugin_file(Path(path), where)
        if local.sha256 != expected:
            raise PluginError(f"{where}: plugin file {path} has changed since the run (sha256 "
                              f"{local.sha256} now, {expected} recorded); automl does not run it")
        files.append(local)
    blocked = dict.fromkeys([*record.get("blocked", []), *blocked_by_env()])
    return PluginSource(tuple(record.get("modules", [])), tuple(files), autoload_enabled(),
                        tuple(blocked))


def recorded_plugins(exp: "ExperimentRecord") -> "Plugins":
    """A fresh plugin manager for the experiment's recorded (and checked) plugins."""
    from automl.plugin_manager import build_plugins

    return build_plugins(recorded_plugin_source(exp))
