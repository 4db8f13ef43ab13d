"""The conditional search space built from an experiment and the registry."""

from __future__ import annotations

import optuna
import pytest

from automl.config import parse_experiment
from automl.errors import ConfigError
from automl.plugin_manager import load_plugins
from automl.space import TrialPlan, build_space

BASE = """
name: s
dataset: digits
architecture:
  mlp: {width: [64, 128]}
  cnn: {channels: 16}
augmentations: [shift, noise]
pruning: [magnitude, none]
"""


@pytest.fixture(scope="module")
def registry():
    return load_plugins(autoload=False).registry


def sample(space, n=60, seed=0):
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    out = []
    for _ in range(n):
        trial = study.ask()
        constants = space.define(trial)
        out.append({**trial.params, **constants})
        study.tell(trial, 0.0)
    return out


def test_architecture_params_exist_only_when_chosen(registry):
    space = build_space(parse_experiment(BASE), registry)
    configs = sample(space)
    assert {c["architecture"] for c in configs} == {"mlp", "cnn"}
    for config in configs:
        other = "cnn" if config["architecture"] == "mlp" else "mlp"
        assert not any(k.startswith(f"architecture.{other}.") for k in config)
        assert any(k.startswith(f"architecture.{config['architecture']}.") for k in config)
        if config["architecture"] == "cnn":
            assert config["architecture.cnn.channels"] == 16  # fixed by the YAML
        else:
            assert config["architecture.mlp.width"] in (64, 128)


def test_augmentation_strength_only_when_enabled_and_pruning_choice(registry):
    space = build_space(parse_experiment(BASE), registry)
    configs = sample(space)
    for config in configs:
        for aug, strength in (("shift", "max_shift"), ("noise", "std")):
            has_strength = f"augmentation.{aug}.{strength}" in config
            assert has_strength == config[f"augmentation.{aug}.enabled"]
        plan = TrialPlan.from_flat(config)
        assert [name for name, _ in plan.augmentations] == [
            a for a in ("shift", "noise") if config[f"augmentation.{a}.enabled"]]
        if config["pruning"] == "none":
            assert plan.pruner is None and not any(k.startswith("pruning.") for k in config)
        else:
            assert 0.0 <= plan.pruner_params["ratio"] <= 0.8
    assert {c["pruning"] for c in configs} == {"magnitude", "none"}


def test_fixed_augmentation_and_default_spaces(registry):
    text = BASE.replace("augmentations: [shift, noise]",
                        "augmentations: {noise: {enabled: true, std: 0.1}}")
    space = build_space(parse_experiment(text), registry)
    for config in sample(space, 10):
        assert config["augmentation.noise.enabled"] is True
        assert config["augmentation.noise.std"] == 0.1
    rows = dict(space.rows())
    assert rows["architecture.mlp.depth"] == "int [1, 3]"  # the component's declared default


def test_objective_mode_defaults_to_metric_direction(registry):
    text = BASE + "objectives: [accuracy, params]\n"
    space = build_space(parse_experiment(text), registry)
    assert [(o.key, o.mode) for o in space.objectives] == [("val/accuracy", "max"),
                                                           ("model/params", "min")]


@pytest.mark.parametrize("change, path, message", [
    (("mlp: {width: [64, 128]}", "mlpp: {}"), "architecture.mlpp", "did you mean 'mlp'"),
    (("mlp: {width: [64, 128]}", "mlp: {widht: 3}"), "architecture.mlp.widht",
     "did you mean 'width'"),
    (("mlp: {width: [64, 128]}", "mlp: {depth: 1.5}"), "architecture.mlp.depth", "expected int"),
    (("[shift, noise]", "[shfit]"), "augmentations.shfit", "did you mean 'shift'"),
    (("[magnitude, none]", "[magnitud]"), "pruning.magnitud", "did you mean 'magnitude'"),
    (("dataset: digits", "dataset: digit"), "dataset.name", "registered: breast_cancer"),
])
def test_errors_name_path_and_nearest_name(registry, change, path, message):
    text = BASE.replace(*change)
    with pytest.raises(ConfigError) as info:
        build_space(parse_experiment(text), registry)
    assert info.value.path == path
    assert message in str(info.value)


def test_image_only_component_on_tabular_data_is_rejected(registry):
    text = "name: t\ndataset: wine\narchitecture: mlp\naugmentations: [shift]\n"
    with pytest.raises(ConfigError, match="augmentation 'shift' works on .*image.* 'wine' is "
                                          "tabular"):
        build_space(parse_experiment(text), registry)
    text = "name: t\ndataset: wine\narchitecture: cnn\n"
    with pytest.raises(ConfigError, match="architecture 'cnn'"):
        build_space(parse_experiment(text), registry)


def test_augmentations_apply_in_the_files_order(registry):
    text = BASE.replace("augmentations: [shift, noise]",
                        "augmentations: {noise: {}, shift: {enabled: true, max_shift: 1, p: 1.0}}")
    space = build_space(parse_experiment(text), registry)
    for config in sample(space, 20):
        plan = TrialPlan.from_flat(config, ("noise", "shift"))
        names = [n for n, _ in plan.augmentations]
        assert names == [n for n in ("noise", "shift") if config[f"augmentation.{n}.enabled"]]
