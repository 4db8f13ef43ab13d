"""Warm starts (``search.warm_start``): configurations and observations of earlier experiments,
mapped onto a new search space by the parameters' names."""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path

import optuna
import pytest

import automl
from automl.config import parse_experiment
from automl.plugin_manager import load_plugins
from automl.search.warm_start import WARM_START_ATTR, replay_params
from automl.space import build_space
from automl.store import Store
from automl.study import optuna_storage, study_name
from tests.conftest import write_experiment

SPACE = """
name: new
dataset: digits
architecture:
  mlp: {depth: {low: 1, high: 2}, width: {low: 32, high: 128}}
augmentations: [noise]
pruning: [magnitude, none]
"""


@pytest.fixture(scope="module")
def space():
    config = parse_experiment(textwrap.dedent(SPACE))
    return build_space(config, load_plugins(autoload=False).registry)


def sampled(space, seed=0):
    """One full configuration of ``space`` as a trial records it (sampled and constant values)."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    trial = study.ask()
    constants = space.define(trial)
    return {**trial.params, **constants}


def test_a_configuration_of_the_same_space_replays_exactly(space):
    for seed in range(10):
        params = sampled(space, seed)
        replay = replay_params(space, params)
        assert replay.exact(params), (params, replay)
        assert {k: replay.params[k] for k in params} == params


def test_values_the_space_cannot_hold_are_named_and_not_exact(space):
    params = sampled(space, 1)
    params["architecture"] = "mlp"
    params["architecture.mlp.width"] = 512  # outside [32, 128]
    params["architecture.cnn.channels"] = 16  # an architecture this space lacks
    replay = replay_params(space, params)
    assert replay.not_held == {"architecture.mlp.width"}
    assert not replay.exact(params)
    # the rest is carried: the depth is the recorded one
    assert replay.params["architecture.mlp.depth"] == params["architecture.mlp.depth"]


def test_a_disabled_augmentation_the_space_lacks_still_matches(space):
    params = sampled(space, 2)
    assert replay_params(space, {**params, "augmentation.cutout.enabled": False}).exact(
        {**params, "augmentation.cutout.enabled": False})
    assert not replay_params(space, {**params, "augmentation.cutout.enabled": True}).exact(
        {**params, "augmentation.cutout.enabled": True})


def test_a_missing_value_or_other_constant_is_not_exact(space):
    params = sampled(space, 3)
    del params["training.lr"]
    replay = replay_params(space, params)
    assert replay.missing == {"training.lr"} and not replay.exact(params)
    params = sampled(space, 3)
    params["training.momentum"] = 0.5  # a constant (0.9) of this space
    assert not replay_params(space, params).exact(params)


def test_a_bool_is_not_held_by_a_numeric_range(space):
    params = sampled(space, 4)
    params["architecture.mlp.depth"] = True
    assert "architecture.mlp.depth" in replay_params(space, params).not_held


SOURCE = """
name: {name}
seed: {seed}
dataset: {{name: breast_cancer, split: {{val: 0.25, test: 0.25}}}}
objectives: [{{metric: accuracy, mode: max}}]
architecture:
  mlp: {{depth: {{low: 1, high: 2}}, width: {width}}}
augmentations: {augmentations}
training: {{epochs: 3, batch_size: 64}}
search: {{num_trials: {trials}, max_concurrent: 2, early_stopping: none, startup_trials: 2{extra}}}
ensemble: false
"""


def experiment(name, *, seed=0, width="{low: 8, high: 64, log: true}", augmentations="[noise]",
               trials=6, extra=""):
    return textwrap.dedent(SOURCE.format(name=name, seed=seed, width=width, trials=trials,
                                         augmentations=augmentations, extra=extra))


@pytest.mark.slow
def test_a_new_search_runs_the_best_configurations_first_and_starts_from_the_observations(
        in_tmp: Path, automl_cmd: list[str]) -> None:
    source = write_experiment(in_tmp, experiment("source"), "source.yaml")
    first = automl.run(source)
    assert len(first.trials) == 6
    ranked = sorted((t for t in first.trials if t.status == "completed"),
                    key=lambda t: (-t.metrics["val/accuracy"], t.number))

    # A narrower width range: the sources' widths above 32 cannot be held; no augmentation.
    warm = write_experiment(in_tmp, experiment(
        "warm", seed=1, width="{low: 8, high: 32}", augmentations="[]", trials=4,
        extra=", warm_start: {from: [source], top_k: 2}"), "warm.yaml")
    out = subprocess.run([*automl_cmd, "run", str(warm)], capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "warm start from source: 2 best configuration(s) run first" in out.stdout

    store = Store("sqlite:///automl.db")
    trials = sorted(store.experiment("warm").trials, key=lambda t: t.number)
    assert len(trials) == 4  # the budget counts the queued configurations, not the observations
    # the queued ones ran first (two at a time: Tune may start either of them first)
    first_two = {trial.params["training.lr"]: trial for trial in trials[:2]}
    for best in ranked[:2]:
        trial = first_two[best.params["training.lr"]]
        width = best.params["architecture.mlp.width"]
        for key in ("training.weight_decay", "architecture.mlp.depth"):
            assert trial.params[key] == best.params[key]
        if width <= 32:
            assert trial.params["architecture.mlp.width"] == width
    # observations: the sources' trials without augmentation and with a width the space holds
    holdable = [t for t in first.trials
                if t.params["architecture.mlp.width"] <= 32
                and not t.params["augmentation.noise.enabled"]]
    study = optuna.load_study(study_name=study_name("warm"),
                              storage=optuna_storage("sqlite:///automl.db"))
    carried = [t for t in study.trials if WARM_START_ATTR in t.user_attrs]
    assert sorted(t.user_attrs[WARM_START_ATTR] for t in carried) == sorted(
        f"source#{t.number}" for t in holdable)
    for trial in carried:
        number = int(trial.user_attrs[WARM_START_ATTR].split("#")[1])
        assert trial.value == pytest.approx(
            next(t for t in first.trials if t.number == number).metrics["val/accuracy"])
    assert len([t for t in study.trials if WARM_START_ATTR not in t.user_attrs]) == 4
    expected = "observations" if holdable else "none of its finished trials"
    assert expected in out.stdout
    # the recorded configuration keeps the YAML's spelling
    assert store.experiment("warm").config["search"]["warm_start"]["from"] == ["source"]


@pytest.mark.slow
def test_an_unknown_source_is_refused_before_anything_runs(in_tmp: Path,
                                                           automl_cmd: list[str]) -> None:
    source = write_experiment(in_tmp, experiment("source", trials=1), "source.yaml")
    automl.run(source)
    bad = write_experiment(in_tmp, experiment(
        "warm", extra=", warm_start: {from: [sourse]}"), "warm.yaml")
    out = subprocess.run([*automl_cmd, "run", str(bad)], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode != 0
    text = out.stdout + out.stderr
    assert "search.warm_start.from[0]" in text and "did you mean 'source'" in text, text
    assert "Traceback" not in text
    assert "warm" not in [e.name for e in Store("sqlite:///automl.db").experiments()]


def test_warm_start_fields_are_validated() -> None:
    from automl.errors import ConfigError

    base = experiment("x")
    with pytest.raises(ConfigError, match=r"search.warm_start.from"):
        parse_experiment(base.replace("startup_trials: 2",
                                      "startup_trials: 2, warm_start: {from: []}"))
    with pytest.raises(ConfigError, match=r"search.warm_start.*top_k"):
        parse_experiment(base.replace("startup_trials: 2",
                                      "startup_trials: 2, warm_start: {from: [a], top_k: -1}"))
    with pytest.raises(ConfigError, match=r"search.warm_start"):
        parse_experiment(base.replace("startup_trials: 2",
                                      "startup_trials: 2, warm_start: {form: [a]}"))
    config = parse_experiment(base.replace("startup_trials: 2",
                                           "startup_trials: 2, warm_start: {from: [a, b]}"))
    assert config.search.warm_start.from_ == ["a", "b"]
    assert json.loads(config.model_dump_json(by_alias=True))["search"]["warm_start"]["from"] == [
        "a", "b"]
