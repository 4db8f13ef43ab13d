"""What a trial records follows what each metric declares and what the experiment asks for;
the core names no built-in metric (issue 11)."""

from __future__ import annotations

import pytest

from automl.config import load_experiment, parse_experiment
from automl.errors import ConfigError
from automl.plugin_manager import load_plugins, plugin_source
from automl.runner import search_hash
from automl.space import build_space
from automl.trial.context import TrialContext
from tests.conftest import REPO

BASE = """
name: m
dataset: digits
architecture: {mlp: {width: 64}}
"""


@pytest.fixture(scope="module")
def registry():
    return load_plugins(autoload=False).registry


def recorded(registry, text: str) -> tuple[str, ...]:
    config = parse_experiment(BASE + text)
    space = build_space(config, registry)
    context = TrialContext.for_experiment(
        config, [(o.metric, o.mode) for o in space.objectives], plugin_source([], autoload=False),
        registry)
    assert list(context.metrics) == space.recorded
    return context.metrics


def test_latency_is_measured_only_when_asked_for(registry):
    default = recorded(registry, "")
    assert default == ("accuracy", "log_loss", "nonzero_params", "params")
    assert "latency_ms" in recorded(registry, "record: [latency_ms]")
    asked = recorded(registry, "objectives: [accuracy, {metric: latency64_ms, mode: min}]")
    assert asked[:2] == ("accuracy", "latency64_ms") and "latency_ms" not in asked
    assert recorded(registry, "record: f1_macro")[:2] == ("accuracy", "f1_macro")


def test_an_unknown_recorded_metric_names_the_field(registry):
    config = parse_experiment(BASE + "record: [accuracy, latncy_ms]")
    with pytest.raises(ConfigError, match=r"record\[1\].*unknown metric 'latncy_ms'.*latency_ms"):
        build_space(config, registry)
    with pytest.raises(ConfigError, match="record repeats a metric"):
        parse_experiment(BASE + "record: [params, params]")


def test_a_user_metric_declares_itself_recorded_always(tmp_path):
    plugin = tmp_path / "always_metric.py"
    plugin.write_text(
        "import automl\n"
        "from automl.components import Metric\n\n"
        "class Zero(Metric):\n"
        "    name = 'zero'\n"
        "    recorded = 'always'\n"
        "    def compute(self, ctx):\n"
        "        return 0.0\n\n"
        "@automl.hookimpl\n"
        "def automl_register_metrics(registrar):\n"
        "    registrar.add(Zero)\n")
    registry = load_plugins([str(plugin)], autoload=False).registry
    assert "zero" in recorded(registry, "")


def test_two_tie_breakers_are_refused_naming_both(tmp_path):
    from automl.errors import PluginError

    plugin = tmp_path / "tie_metric.py"
    plugin.write_text(
        "import automl\n"
        "from automl.components import Metric\n\n"
        "class Brier(Metric):\n"
        "    name = 'brier'\n"
        "    direction = 'min'\n"
        "    tie_breaker = True\n"
        "    def compute(self, ctx):\n"
        "        return 0.0\n\n"
        "@automl.hookimpl\n"
        "def automl_register_metrics(registrar):\n"
        "    registrar.add(Brier)\n")
    registry = load_plugins([str(plugin)], autoload=False).registry
    with pytest.raises(PluginError, match="'brier'.*'log_loss'|'log_loss'.*'brier'"):
        build_space(parse_experiment(BASE), registry)


#: search hashes of shipped experiments as the code before the ``record:`` field computed them:
#: databases hold these, and ``--resume`` refuses a changed hash.
SHIPPED_HASHES = {
    "quickstart": "f1cc0ddfae8d23c512f75bc0869e23e60f83ecb91297b7e6df7a0a7e65af2d38",
    "digits_resnet_structured":
        "3dbb2126bc81238b877deb1f9fc5259167f261a9f8876ff78012ecf67dfc51ad",
    "wine": "a8d54f1e4dd7f8f8d4da662035e8bb68dececf0c270c234cbf20e327abc41002",
}


@pytest.mark.parametrize("name", list(SHIPPED_HASHES))
def test_shipped_experiments_keep_their_search_hash(name):
    config = load_experiment(REPO / "experiments" / f"{name}.yaml").config
    assert search_hash(config) == SHIPPED_HASHES[name]
    recording = config.model_copy(update={"record": ["latency_ms"]})
    assert search_hash(recording) != SHIPPED_HASHES[name]


@pytest.mark.parametrize("declared, message", [
    ("recorded = 'sometimes'", "metric 'odd' recorded must be one of"),
    ("aggregate = 'mean'", "metric 'odd' aggregate must be one of"),
    ("model_only = True\n    aggregate = 'sum'\n    tie_breaker = True",
     "metric 'odd' is model-only and cannot be the tie-breaker"),
])
def test_registration_refuses_a_bad_declaration_naming_the_plugin(tmp_path, declared, message):
    from automl.errors import PluginError

    plugin = tmp_path / "odd_metric.py"
    plugin.write_text(
        "import automl\n"
        "from automl.components import Metric\n\n"
        "class Odd(Metric):\n"
        "    name = 'odd'\n"
        f"    {declared}\n"
        "    def compute(self, ctx):\n"
        "        return 0.0\n\n"
        "@automl.hookimpl\n"
        "def automl_register_metrics(registrar):\n"
        "    registrar.add(Odd)\n")
    with pytest.raises(PluginError, match=f"plugin 'odd_metric'.*{message}"):
        load_plugins([str(plugin)], autoload=False)
