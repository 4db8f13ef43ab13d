"""Training strategies: the plugin kind, the standard loop, the docs' example strategy."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import pytest

from automl.errors import ConfigError
from automl.plugin_manager import load_plugins
from automl.testing import StrategyConformance

DOCS = Path(__file__).resolve().parents[1] / "docs"
REGISTRY = load_plugins(autoload=False).registry


def _docs_example() -> dict:
    """The example of the strategy hook's section, as a module (its classes pickle)."""
    name = "docs_strategy_example"
    if name not in sys.modules:
        text = (DOCS / "plugins.md").read_text()
        section = text.split("### `automl_register_strategies(registrar)`")[1]
        code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
        module = types.ModuleType(name)
        exec(compile(code, "docs/plugins.md", "exec"), module.__dict__)  # noqa: S102 - our docs
        sys.modules[name] = module
    return vars(sys.modules[name])


class TestDocsExample(StrategyConformance):
    @pytest.fixture
    def component(self):
        return _docs_example()["Decayed"]


def test_the_docs_example_decays_the_learning_rate():
    from automl.testing.conformance import StrategyConformance as Kit
    from automl.plugin_manager import plugin_source, rebuild_plugins

    task = rebuild_plugins(plugin_source([], autoload=False)).registry.create(
        "task", "classification")
    loop = _docs_example()["Decayed"]().start({"factor": 0.5}, Kit._run(task))
    loop.epoch()
    loop.epoch()
    assert loop.optimizer.param_groups[0]["lr"] == pytest.approx(1e-2 * 0.25)


def test_the_default_strategy_is_declared_once():
    assert REGISTRY.default("strategy").name == "standard"


def _space(yaml: str):
    from automl.config.loader import parse_experiment
    from automl.space import build_space

    return build_space(parse_experiment(yaml), REGISTRY)


def test_no_strategy_section_samples_nothing_more():
    import optuna

    without = _space("name: t\ndataset: wine\narchitecture: mlp\n")
    with_one = _space("name: t\ndataset: wine\narchitecture: mlp\nstrategy: standard\n")
    assert not without.strategies and "strategy" not in dict(without.rows())
    trial = optuna.create_study().ask()
    without.define(trial)
    assert not any(k.startswith("strategy") for k in trial.params)
    assert dict(with_one.rows())["strategy"]


def test_an_unknown_strategy_is_named():
    with pytest.raises(ConfigError, match=r"strategy\.standrd.*unknown strategy 'standrd'.*"
                                          r"did you mean 'standard'"):
        _space("name: t\ndataset: wine\narchitecture: mlp\nstrategy: standrd\n")
