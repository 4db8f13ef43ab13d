"""Hooks go through pluggy: ordering, wrappers, firstresult, one registration per function,
blocking plugins by name, and workers refusing to rebuild another plugin set than the driver's."""

from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from automl import hookspecs
from automl.config.models import Experiment
from automl.errors import PluginError
from automl.plugin_manager import DISABLE_AUTOLOAD_ENV, build_plugins, load_plugins, plugin_source
from tests.test_plugin_manager import (  # noqa: F401 - installed_entry_point is a fixture
    ARCH_PLUGIN, EP_VERSION, installed_entry_point, make_site, write,
)

HOOK = "automl_trial_started"
BLOCK_ENV = "AUTOML_BLOCK_PLUGINS"  # as documented


def appender(tag: str, marker: str = "") -> str:
    """A plugin whose automl_trial_started appends ``tag`` to the list passed as ``trial``."""
    return textwrap.dedent(f"""
        import automl

        {marker}
        def automl_trial_started(trial):
            trial.append({tag!r})
    """)


def test_tryfirst_trylast_and_load_order_are_pluggys(tmp_path):
    write(tmp_path, "last.py", appender("last", "@automl.hookimpl(trylast=True)"))
    write(tmp_path, "early.py", appender("early"))
    write(tmp_path, "late.py", appender("late"))
    write(tmp_path, "first.py", appender("first", "@automl.hookimpl(tryfirst=True)"))
    plugins = load_plugins(["last.py", "early.py", "late.py", "first.py"], base_dir=tmp_path,
                           autoload=False)
    calls: list[str] = []
    assert plugins.call(HOOK, experiment=None, trial=calls) == []  # all return None
    # tryfirst, then the most recently loaded first, then trylast
    assert calls == ["first", "late", "early", "last"]


WRAPPER = """
import automl
from automl.errors import PluginError

@automl.hookimpl(wrapper=True)
def automl_trial_started(trial):
    trial.append("before")
    try:
        result = yield
    except PluginError as exc:          # an inner plugin failed: named, original as __cause__
        trial.append(f"caught: {exc} ({type(exc.__cause__).__name__})")
        return []
    trial.append("after")
    return result
"""


def test_a_wrapper_runs_around_the_others_and_sees_named_failures(tmp_path):
    write(tmp_path, "inner.py", appender("inner"))
    write(tmp_path, "wrap.py", WRAPPER)
    plugins = load_plugins(["wrap.py", "inner.py"], base_dir=tmp_path, autoload=False)
    calls: list[str] = []
    plugins.call(HOOK, experiment=None, trial=calls)
    assert calls == ["before", "inner", "after"]

    write(tmp_path, "failing.py", "def automl_trial_started(trial):\n    raise KeyError('k')\n")
    plugins = load_plugins(["wrap.py", "failing.py"], base_dir=tmp_path, autoload=False)
    calls = []
    assert plugins.call(HOOK, experiment=None, trial=calls) == []
    assert calls == ["before", "caught: plugin 'failing', hook automl_trial_started: "
                                "KeyError: 'k' (KeyError)"]


def test_an_old_style_hookwrapper_gets_the_outcome(tmp_path):
    write(tmp_path, "inner.py", appender("inner"))
    write(tmp_path, "oldwrap.py", """
        import automl

        @automl.hookimpl(hookwrapper=True)
        def automl_trial_started(trial):
            outcome = yield
            trial.append(f"results: {outcome.get_result()}")
    """)
    plugins = load_plugins(["oldwrap.py", "inner.py"], base_dir=tmp_path, autoload=False)
    calls: list[str] = []
    plugins.call(HOOK, experiment=None, trial=calls)
    assert calls == ["inner", "results: []"]


def test_a_failing_wrapper_is_named(tmp_path):
    write(tmp_path, "inner.py", appender("inner"))
    write(tmp_path, "badwrap.py", """
        import automl

        @automl.hookimpl(wrapper=True)
        def automl_trial_started(trial):
            result = yield
            raise RuntimeError("after the others")
    """)
    plugins = load_plugins(["inner.py", "badwrap.py"], base_dir=tmp_path, autoload=False)
    calls: list[str] = []
    with pytest.raises(PluginError, match="^plugin 'badwrap', hook automl_trial_started: "
                                          "RuntimeError: after the others$"):
        plugins.call(HOOK, experiment=None, trial=calls)
    assert calls == ["inner"]


def test_a_registration_wrapper_registers_under_its_own_plugin(tmp_path):
    write(tmp_path, "tiny_arch.py", ARCH_PLUGIN.replace(
        "def automl_register_architectures(registrar):",
        "import automl\n\n@automl.hookimpl(wrapper=True)\n"
        "def automl_register_architectures(registrar):\n    result = yield"))
    write(tmp_path, "other.py", """
        from automl.components import Architecture

        class Other(Architecture):
            name = "other"
            def build(self, params, spec): ...

        def automl_register_architectures(registrar):
            registrar.add(Other)
    """)
    plugins = load_plugins(["tiny_arch.py", "other.py"], base_dir=tmp_path, autoload=False)
    assert plugins.registry.get("architecture", "tiny").plugin == "tiny_arch"
    assert plugins.registry.get("architecture", "other").plugin == "other"
    assert plugins.registry.get("architecture", "mlp").plugin == \
        "automl_plugins.architectures.mlp"


def test_firstresult_hooks_stop_at_the_first_answer(tmp_path, monkeypatch):
    """A hookspec declared firstresult (here an extension's own spec module) returns one value."""
    write(tmp_path, "pick_specs.py", """
        import pluggy

        hookspec = pluggy.HookspecMarker("automl")

        @hookspec(firstresult=True)
        def automl_pick(asked):
            '''The first plugin with an answer wins.'''
    """)
    for name, answer in [("none", None), ("two", "'two'"), ("three", "'three'")]:
        write(tmp_path, f"{name}.py", f"def automl_pick(asked):\n    asked.append({name!r})\n"
                                      f"    return {answer}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import pick_specs

    source = plugin_source(["two.py", "three.py", "none.py"], tmp_path, autoload=False)
    plugins = build_plugins(source, specs=(hookspecs, pick_specs))
    asked: list[str] = []
    assert plugins.call("automl_pick", asked=asked) == "three"
    assert asked == ["none", "three"]  # 'two' (loaded first, called last) never asked


def test_an_automl_function_imported_from_another_plugin_registers_once(tmp_path, monkeypatch):
    write(tmp_path, "metric_plugin.py", """
        from automl.components import Metric

        class Always(Metric):
            name = "always_one"
            def compute(self, ctx):
                return 1.0

        def automl_register_metrics(registrar):
            registrar.add(Always)
    """)
    write(tmp_path, "arch_plugin.py", ARCH_PLUGIN
          + "\nfrom metric_plugin import automl_register_metrics  # re-exported, not its own\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        plugins = load_plugins(["metric_plugin", "arch_plugin"], autoload=False)
        assert plugins.registry.get("metric", "always_one").plugin == "metric_plugin"
        assert plugins.registry.get("architecture", "tiny").plugin == "arch_plugin"
        impls = plugins.manager.hook.automl_register_metrics.get_hookimpls()
        assert [i.plugin_name for i in impls if i.plugin_name.endswith("_plugin")] == \
            ["metric_plugin"]
    finally:
        for name in ("metric_plugin", "arch_plugin"):
            sys.modules.pop(name, None)


def test_an_unknown_hook_is_found_by_pluggys_check_pending(tmp_path):
    write(tmp_path, "typo.py", "import automl\n\n@automl.hookimpl(tryfirst=True)\n"
                               "def automl_trial_finishd(trial):\n    pass\n")
    with pytest.raises(PluginError, match="^plugin 'typo': unknown hook 'automl_trial_finishd' "
                                          "\\(did you mean 'automl_trial_finished'\\?\\)$"):
        load_plugins(["typo.py"], base_dir=tmp_path, autoload=False)


# ---- blocking --------------------------------------------------------------------------------


def test_a_builtin_is_blocked_by_the_environment(monkeypatch):
    monkeypatch.setenv(BLOCK_ENV, "automl_plugins.metrics.latency, automl_plugins.pruners.structured")
    plugins = load_plugins(autoload=False)
    assert "latency_ms" not in plugins.registry.names("metric")
    assert "structured" not in plugins.registry.names("pruner")
    assert "magnitude" in plugins.registry.names("pruner")
    names = [p.name for p in plugins.loaded]
    assert "automl_plugins.metrics.latency" not in names
    assert plugins.source.blocked == ("automl_plugins.metrics.latency",
                                      "automl_plugins.pruners.structured")


def test_blocking_an_unknown_name_suggests_the_plugin(monkeypatch, tmp_path):
    monkeypatch.setenv(BLOCK_ENV, "latency")
    with pytest.raises(PluginError, match=f"^{BLOCK_ENV}: cannot block 'latency': no plugin has "
                                          "that name \\(did you mean "
                                          "'automl_plugins.metrics.latency'\\?\\)"):
        load_plugins(autoload=False)
    monkeypatch.delenv(BLOCK_ENV)
    with pytest.raises(PluginError, match="^plugins.block\\[1\\]: cannot block "
                                          "'automl_plugins.metrics.latncy'.*did you mean "
                                          "'automl_plugins.metrics.latency'"):
        load_plugins(autoload=False, blocked=["automl_plugins.metrics.latency",
                                              "automl_plugins.metrics.latncy"])


def test_the_experiment_blocks_plugins_and_the_list_form_stays_valid(tmp_path):
    from automl.runner import prepare

    write(tmp_path, "my_arch.py", ARCH_PLUGIN)
    path = write(tmp_path, "exp.yaml", """
        name: blocking
        plugins:
          load: [my_arch.py]
          block: [automl_plugins.architectures.cnn, automl_plugins.architectures.resnet]
        dataset: digits
        architecture: tiny
        ensemble: false
    """)
    prepared = prepare(path, db=f"sqlite:///{tmp_path / 'a.db'}")
    registry = prepared.plugins.registry
    assert "cnn" not in registry.names("architecture")
    assert registry.get("architecture", "tiny").plugin == "my_arch"
    assert prepared.plugins.source.blocked == ("automl_plugins.architectures.cnn",
                                               "automl_plugins.architectures.resnet")
    # the plain list is still the same config, dumped (and so hashed) exactly as before
    listed = Experiment.model_validate({"name": "x", "dataset": "digits", "architecture": "mlp",
                                        "plugins": ["my_arch.py"]})
    assert listed.plugins.load == ["my_arch.py"] and listed.plugins.block == []
    assert listed.model_dump(mode="json")["plugins"] == ["my_arch.py"]


def test_a_blocked_entry_point_is_not_imported(installed_entry_point, monkeypatch):
    monkeypatch.delenv(DISABLE_AUTOLOAD_ENV, raising=False)
    monkeypatch.setenv(BLOCK_ENV, "tiny")
    plugins = load_plugins()
    assert "tiny" not in plugins.registry.names("architecture")
    assert "ep_plugin" not in sys.modules


# ---- workers rebuild the driver's plugin set --------------------------------------------------

REBUILD = """
import pickle, sys
from automl.errors import PluginError
from automl.plugin_manager import rebuild_plugins
with open(sys.argv[1], "rb") as f:
    source = pickle.load(f)
try:
    plugins = rebuild_plugins(source)
except PluginError as exc:
    print("refused:", exc)
else:
    print("rebuilt:", plugins.registry.get("architecture", "tiny").plugin)
"""


def test_a_worker_refuses_another_plugin_set(installed_entry_point, tmp_path, monkeypatch):
    """The driver's source, rebuilt in other processes whose installed plugins differ."""
    import os

    monkeypatch.delenv(DISABLE_AUTOLOAD_ENV, raising=False)
    write(tmp_path, "local.py", "def automl_trial_started(trial):\n    pass\n")
    driver = load_plugins(["local.py"], base_dir=tmp_path)
    recorded = {p.name: p for p in driver.source.loaded}
    assert recorded["tiny"].distribution == "automl-ep-plugin"
    assert recorded["tiny"].version == EP_VERSION and recorded["tiny"].sha256
    assert recorded["local"].sha256 == driver.source.files[0].sha256
    (tmp_path / "source.pkl").write_bytes(pickle.dumps(driver.source))

    changed = ARCH_PLUGIN.replace("IntRange(4, 8)", "IntRange(4, 16)")
    worlds = {
        "same": tmp_path / "site",
        "newer": make_site(tmp_path / "newer", version="1.2.4"),
        "edited": make_site(tmp_path / "edited", source=changed),
        "extra": make_site(tmp_path / "extra", extra=True),
        "missing": tmp_path / "empty",
    }
    (tmp_path / "empty").mkdir()
    out = {}
    for world, site in worlds.items():
        env = {**os.environ, "PYTHONPATH": str(site)}
        env.pop(DISABLE_AUTOLOAD_ENV, None)
        env.pop(BLOCK_ENV, None)
        done = subprocess.run([sys.executable, "-c", REBUILD, str(tmp_path / "source.pkl")],
                              capture_output=True, text=True, env=env, timeout=120)
        assert done.returncode == 0, done.stderr
        out[world] = done.stdout.strip()
    assert out["same"] == "rebuilt: tiny"
    assert "entry point 'tiny' is automl-ep-plugin 1.2.4 (ep_plugin) here but automl-ep-plugin " \
           "1.2.3 (ep_plugin) on the driver" in out["newer"]
    assert out["edited"].startswith("refused:")
    assert f"entrypoint plugin 'tiny' differs: sha256 " in out["edited"]
    assert recorded["tiny"].sha256 + " on the driver" in out["edited"]
    assert "entry point 'extra' (automl-ep-plugin 1.2.3 (ep_extra)) is installed here but was " \
           "not loaded by the driver" in out["extra"]
    assert "entry point 'tiny' (automl-ep-plugin 1.2.3) is not installed here" in out["missing"]
