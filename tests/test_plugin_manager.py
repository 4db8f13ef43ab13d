"""Plugin discovery, registration checks and error reporting."""

from __future__ import annotations

import pickle
import sys
import textwrap
from pathlib import Path

import pytest

from automl.errors import PluginError
from automl.plugin_manager import (
    BUILTIN_PLUGINS, DISABLE_AUTOLOAD_ENV, build_plugins, load_plugins, plugin_source,
    rebuild_plugins,
)

ARCH_PLUGIN = """
from automl.components import Architecture, ParamDef
from automl.params import IntRange

class Tiny(Architecture):
    name = "tiny"
    params = {"width": ParamDef(IntRange(4, 8), int, "hidden units")}

    def build(self, params, spec):
        from torch import nn
        import math
        return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(spec.input_shape), params["width"]),
                             nn.ReLU(), nn.Linear(params["width"], spec.num_classes))

def automl_register_architectures(registrar):   # no marker needed: the automl_ prefix is enough
    registrar.add(Tiny)
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_builtins_are_registered_by_their_module():
    plugins = load_plugins(autoload=False)
    by_name = {(e.kind, e.name): e.plugin for e in plugins.registry}
    assert by_name[("dataset", "digits")] == "automl_plugins.datasets.sklearn_datasets"
    assert by_name[("architecture", "cnn")] == "automl_plugins.architectures.cnn"
    assert by_name[("pruner", "magnitude")] == "automl_plugins.pruners.magnitude"
    assert [p.name for p in plugins.loaded if p.origin == "builtin"] == list(BUILTIN_PLUGINS)


def test_local_file_plugin_relative_to_experiment(tmp_path):
    write(tmp_path, "my_arch.py", ARCH_PLUGIN)
    plugins = load_plugins(["my_arch.py"], base_dir=tmp_path, autoload=False)
    entry = plugins.registry.get("architecture", "tiny")
    assert entry.plugin == "my_arch"
    assert ("my_arch", "experiment") in [(p.name, p.origin) for p in plugins.loaded]


def test_source_pickles_and_rebuilds_the_same_registry(tmp_path):
    write(tmp_path, "my_arch.py", ARCH_PLUGIN)
    source = plugin_source(["my_arch.py"], base_dir=tmp_path, autoload=False)
    (tmp_path / "my_arch.py").unlink()  # a worker needs no copy of the file
    clone = pickle.loads(pickle.dumps(source))
    rebuilt = rebuild_plugins(clone)
    assert rebuilt is rebuild_plugins(clone)  # built once per process
    assert [(e.kind, e.name, e.plugin) for e in rebuilt.registry] == \
        [(e.kind, e.name, e.plugin) for e in build_plugins(source).registry]


@pytest.mark.parametrize("text, message", [
    ("raise RuntimeError('boom')", "Error importing plugin 'bad' \\(.*bad.py\\): RuntimeError: boom"),
    ("import not_a_module_anywhere", "Error importing plugin 'bad' .*: ModuleNotFoundError"),
    ("def automl_register_architecture(registrar): pass",
     "plugin 'bad': unknown hook 'automl_register_architecture' \\(did you mean "
     "'automl_register_architectures'\\?\\)"),
    ("def automl_register_architectures(registrar):\n    raise ValueError('nope')",
     "plugin 'bad', hook automl_register_architectures: ValueError: nope"),
    ("def automl_register_architectures(registrar):\n    registrar.add(object)",
     "plugin 'bad', hook automl_register_architectures: registered .* not a subclass"),
    ("from automl.components import Architecture\n"
     "class A(Architecture):\n    name = 'a'\n"
     "def automl_register_architectures(registrar):\n    registrar.add(A)",
     "does not implement \\['build'\\]"),
    ("from automl.components import Metric\n"
     "class M(Metric):\n    name = 'Bad Name'\n    def compute(self, ctx): return 0.0\n"
     "def automl_register_metrics(registrar):\n    registrar.add(M)",
     "must be a lowercase identifier"),
])
def test_broken_plugins_are_named(tmp_path, text, message):
    write(tmp_path, "bad.py", text)
    with pytest.raises(PluginError, match=message):
        load_plugins(["bad.py"], base_dir=tmp_path, autoload=False)


def test_duplicate_names_are_refused_naming_both_plugins(tmp_path):
    write(tmp_path, "dup.py", """
        from automl.components import Architecture
        class Mlp(Architecture):
            name = "mlp"
            def build(self, params, spec): ...
        def automl_register_architectures(registrar):
            registrar.add(Mlp)
    """)
    with pytest.raises(PluginError, match="plugin 'dup'.*'mlp' is already registered by plugin "
                                          "'automl_plugins.architectures.mlp'"):
        load_plugins(["dup.py"], base_dir=tmp_path, autoload=False)


def test_missing_plugin_module_and_file(tmp_path):
    with pytest.raises(PluginError, match="Error importing plugin 'no_such_plugin_mod'"):
        load_plugins(["no_such_plugin_mod"], autoload=False)
    with pytest.raises(PluginError, match="cannot read plugin file .*missing.py"):
        load_plugins(["missing.py"], base_dir=tmp_path, autoload=False)


def test_lifecycle_hook_failure_names_the_plugin(tmp_path):
    write(tmp_path, "hooks.py", """
        def automl_trial_started(experiment, trial):
            raise KeyError("x")
    """)
    plugins = load_plugins(["hooks.py"], base_dir=tmp_path, autoload=False)
    with pytest.raises(PluginError, match="plugin 'hooks', hook automl_trial_started: KeyError"):
        plugins.call("automl_trial_started", experiment=None, trial=None)


EP_VERSION = "1.2.3"


def make_site(root: Path, version: str = EP_VERSION, source: str = ARCH_PLUGIN,
              extra: bool = False) -> Path:
    """A directory with a real installed distribution (dist-info) declaring `automl` entry
    points: ``tiny`` = module ep_plugin, and with ``extra`` a second one."""
    root.mkdir(parents=True)
    write(root, "ep_plugin.py", source)
    info = root / f"automl_ep_plugin-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: automl-ep-plugin\n"
                                   f"Version: {version}\n")
    points = "[automl]\ntiny = ep_plugin\n"
    if extra:
        write(root, "ep_extra.py", "")
        points += "extra = ep_extra\n"
    (info / "entry_points.txt").write_text(points)
    return root


@pytest.fixture
def installed_entry_point(tmp_path, monkeypatch):
    """A real installed distribution on sys.path declaring an `automl` entry point."""
    monkeypatch.syspath_prepend(str(make_site(tmp_path / "site")))
    yield
    sys.modules.pop("ep_plugin", None)


def test_entry_point_plugins_autoload_and_can_be_disabled(installed_entry_point, monkeypatch):
    monkeypatch.delenv(DISABLE_AUTOLOAD_ENV, raising=False)
    plugins = load_plugins()
    assert plugins.registry.get("architecture", "tiny").plugin == "tiny"
    assert ("tiny", "entrypoint", "1.2.3") in [(p.name, p.origin, p.version)
                                                for p in plugins.loaded]
    monkeypatch.setenv(DISABLE_AUTOLOAD_ENV, "1")
    assert "tiny" not in load_plugins().registry.names("architecture")
