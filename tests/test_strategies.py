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
from tests.conftest import optional_module

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


# --------------------------------------------------------------------------------------------
# configuration: what a strategy does not apply to is refused naming the field
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("yaml, path, message", [
    ("objectives: [accuracy, {metric: epsilon, mode: min}]\n", "strategy",
     "metric 'epsilon' reads the training fact 'epsilon', which strategy 'standard' does not "
     "record (the default); choose among strategies that do: dp_sgd"),
    ("record: [epsilon]\nstrategy: [dp_sgd, federated]\n", "strategy.federated",
     "which strategy 'federated' does not record"),
    ("strategy: dp_sgd\nvalidation: kfold\n", "strategy.dp_sgd",
     "strategy 'dp_sgd' does not apply to k-fold validation"),
    ("strategy: {federated: {clients: 2.5}}\n", "strategy.federated.clients", "int"),
    ("strategy: [standard, dp_sgd]\npruning: [none, magnitude]\n", "strategy.dp_sgd",
     "strategy 'dp_sgd' does not fine-tune pruned models"),
])
def test_what_a_strategy_cannot_do_is_a_config_error(yaml, path, message):
    with pytest.raises(ConfigError) as info:
        _space("name: t\ndataset: wine\narchitecture: mlp\n" + yaml)
    assert info.value.path == path and message in str(info.value)


def test_a_self_fitting_architecture_refuses_another_strategy():
    with pytest.raises(ConfigError, match="architecture 'hist_gbt' trains itself"):
        _space("name: t\ndataset: wine\narchitecture: [mlp, hist_gbt]\nstrategy: federated\n")


def test_an_epsilon_budget_is_a_constraint_of_private_trials():
    space = _space("name: t\ndataset: wine\narchitecture: mlp\nstrategy: dp_sgd\n"
                   "objectives: [accuracy, {metric: epsilon, mode: min}]\n"
                   "constraints: {epsilon: {max: 3}}\n")
    assert [o.key for o in space.objectives] == ["val/accuracy", "model/epsilon"]
    assert [(c.key, c.max) for c in space.constraints] == [("model/epsilon", 3.0)]


# --------------------------------------------------------------------------------------------
# federated: client shares and the proximal term
# --------------------------------------------------------------------------------------------


def test_iid_shares_are_equal_and_cover_every_row_once():
    import numpy as np

    from automl_plugins.strategies.federated import client_rows

    shares = client_rows(np.arange(100) % 4, 100, 7, "iid", 1.0, np.random.default_rng(0))
    assert sorted(np.concatenate(shares).tolist()) == list(range(100))
    assert {len(s) for s in shares} <= {14, 15}


def test_dirichlet_shares_skew_the_classes_as_alpha_falls():
    import numpy as np

    from automl_plugins.strategies.federated import client_rows

    labels = np.arange(1000) % 10

    def classes_per_client(alpha: float) -> float:
        shares = client_rows(labels, 1000, 10, "dirichlet", alpha, np.random.default_rng(1))
        assert sorted(np.concatenate(shares).tolist()) == list(range(1000))
        # classes holding 90% of a client's rows
        counts = [np.sort(np.bincount(labels[s], minlength=10))[::-1] for s in shares if len(s)]
        return float(np.mean([np.searchsorted(np.cumsum(c) / c.sum(), 0.9) + 1
                              for c in counts]))

    assert classes_per_client(0.1) <= 3 < 8 <= classes_per_client(100.0)


def test_fedprox_keeps_clients_near_the_global_model():
    """With a large mu the round moves the global weights less than FedAvg does."""
    import torch

    from automl.testing.conformance import StrategyConformance as Kit
    from automl_plugins.strategies.federated import Federated

    task = REGISTRY.create("task", "classification")
    moved = {}
    for mu in (0.0, 5.0):
        run = Kit._run(task, seed=1)
        start = [p.detach().clone() for p in run.model.parameters()]
        loop = Federated().start({"clients": 4, "split": "iid", "alpha": 1.0,
                                  "client_fraction": 1.0, "local_epochs": 3, "mu": mu}, run)
        loop.epoch()
        moved[mu] = sum(float((p.detach() - s).norm()) for p, s in zip(loop.model.parameters(), start))
    assert moved[5.0] < 0.8 * moved[0.0]


# --------------------------------------------------------------------------------------------
# trials: federated and private training inside train_and_evaluate
# --------------------------------------------------------------------------------------------


def _trial(dataset: str, yaml: str, epochs: int = 2, objectives: str = "[accuracy]"):
    from benchmarks.strategies import run_trial

    return run_trial(dataset, yaml, epochs, seed=0, objectives=objectives)


def test_a_private_trial_records_the_epsilon_it_was_asked_to_spend():
    optional_module("opacus")
    metrics = _trial("breast_cancer", "{dp_sgd: {target_epsilon: 3.0, max_grad_norm: 1.0}}",
                     objectives="[accuracy, epsilon]")
    assert 2.9 <= metrics["model/epsilon"] <= 3.0
    assert metrics["test/accuracy"] > 0.75


def test_a_federated_trial_learns_digits():
    metrics = _trial("digits", "{federated: {clients: 5, client_fraction: 1.0, local_epochs: "
                               "2, mu: 0.01, split: dirichlet, alpha: 0.5}}", epochs=3)
    assert metrics["test/accuracy"] > 0.5


def test_batch_norm_is_refused_with_the_reason():
    optional_module("opacus")
    import optuna

    from automl.data import prepare_data
    from automl.config.loader import parse_experiment
    from automl.plugin_manager import plugin_source
    from automl.search_data import separate
    from automl.space import build_space
    from automl.trial.context import TrialContext
    from automl.trial.trainable import NotTrainableError, train_and_evaluate

    config = parse_experiment("name: t\ndataset: digits\narchitecture: {cnn: {channels: 8, "
                              "depth: 1}}\nstrategy: dp_sgd\ntraining: {epochs: 1}\n")
    space = build_space(config, REGISTRY)
    context = TrialContext.for_experiment(config, [("accuracy", "max")],
                                          plugin_source([], autoload=False), REGISTRY)
    trial = optuna.create_study().ask()
    constants = space.define(trial)
    params = {**trial.params, **constants}
    data = separate(prepare_data(config, REGISTRY))[0]
    with pytest.raises(NotTrainableError, match=r"strategy 'dp_sgd' cannot train architecture "
                                                r"'cnn': Opacus .*BatchNorm"):
        train_and_evaluate(params, context, data, lambda m, d: None)


# --------------------------------------------------------------------------------------------
# end to end: a privacy budget, as a user runs it
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_private_search_end_to_end(in_tmp, automl_cmd):
    """`automl run` of a DP-SGD search with accuracy and epsilon as objectives under an epsilon
    budget: every trial records the epsilon it spent, the Pareto front holds only trials within
    the budget, and the best trial's saved model predicts."""
    import json
    import subprocess

    optional_module("opacus")
    (in_tmp / "private.yaml").write_text(
        "name: private\nseed: 1\ndataset: breast_cancer\n"
        "objectives: [accuracy, {metric: epsilon, mode: min}]\n"
        "constraints: {epsilon: {max: 3}}\n"
        "architecture: {mlp: {depth: 1, width: 32, dropout: 0.0}}\n"
        "strategy: {dp_sgd: {noise_multiplier: [0.6, 2.0], max_grad_norm: 1.0}}\n"
        "training: {epochs: 3, lr: 0.005, batch_size: 64, optimizer: adam}\n"
        "search: {num_trials: 4, max_concurrent: 2, sampler: random, early_stopping: none}\n"
        "ensemble: false\n")
    run = subprocess.run([*automl_cmd, "run", "private.yaml"], capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Traceback" not in run.stdout + run.stderr
    show = subprocess.run([*automl_cmd, "show", "private", "--json"], capture_output=True,
                          text=True, timeout=120)
    document = json.loads(show.stdout)
    trials = {t["number"]: t for t in document["trials"]}
    assert len(trials) == 4 and all(t["status"] == "completed" for t in trials.values())
    spent = {n: t["metrics"]["model/epsilon"] for n, t in trials.items()}
    noise = {n: t["params"]["strategy.dp_sgd.noise_multiplier"] for n, t in trials.items()}
    # more noise, less privacy spent: the accountant's order
    assert all(spent[a] > spent[b] for a in spent for b in spent if noise[a] < noise[b])
    assert document["pareto_front"]
    assert all(spent[n] <= 3 for n in document["pareto_front"])
    best = document["best"]
    assert best["metrics"]["model/epsilon"] <= 3


def test_rounds_per_epoch_runs_that_many_rounds():
    """Two rounds an epoch move the model as two one-round epochs do (same draws, same order)."""
    import torch

    from automl.testing.conformance import StrategyConformance as Kit
    from automl_plugins.strategies.federated import Federated

    task = REGISTRY.create("task", "classification")
    params = {"clients": 3, "split": "iid", "alpha": 1.0, "client_fraction": 0.7,
              "local_epochs": 1, "mu": 0.0}
    twice = Federated().start({**params, "rounds_per_epoch": 2}, Kit._run(task, seed=2))
    twice.epoch()
    once = Federated().start({**params, "rounds_per_epoch": 1}, Kit._run(task, seed=2))
    once.epoch()
    once.epoch()
    assert all(torch.equal(a, b) for a, b in zip(twice.model.state_dict().values(),
                                                 once.model.state_dict().values()))
