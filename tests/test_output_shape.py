"""An architecture whose model returns the wrong output shape is named with the expected and the
actual shape: before Ray starts (its first configuration) and in the trial, before training
(issue 10, item 10). Without the check every trial failed inside the loss with torch's
"multi-target not supported"."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from automl.config import load_experiment
from automl.data import prepare_data
from automl.errors import PluginError
from automl.plugin_manager import plugin_source, rebuild_plugins
from automl.space import build_space
from automl.trial.context import TrialContext
from automl.trial.trainable import train_and_evaluate
from tests.test_config_errors import assert_clean_failure, assert_nothing_written, run_main

# ``classes_off`` = 0 gives one logit per class; 9 gives a single output column.
PLUGIN = '''
import automl
from automl.components import Architecture, ParamDef
from automl.params import Choice


class OneColumn(Architecture):
    name = "one_column"
    params = {"classes_off": ParamDef(Choice((0, 9)), int, "outputs missing")}

    def build(self, params, spec):
        from torch import nn

        features = 1
        for size in spec.input_shape:
            features *= size
        return nn.Sequential(nn.Flatten(),
                             nn.Linear(features, spec.num_classes - params["classes_off"]))


@automl.hookimpl
def automl_register_architectures(registrar):
    registrar.add(OneColumn)
'''


def experiment(tmp_path: Path, classes_off: str) -> Path:
    folder = tmp_path / "exp"
    folder.mkdir()
    (folder / "one_column.py").write_text(textwrap.dedent(PLUGIN))
    path = folder / "exp.yaml"
    path.write_text(f"name: shape\ndataset: digits\nplugins: [one_column.py]\n"
                    f"architecture:\n  one_column: {{classes_off: {classes_off}}}\n"
                    "training: {epochs: 1, fine_tune_epochs: 0}\n"
                    "search: {num_trials: 2, early_stopping: none}\n")
    return path


def test_a_wrong_output_shape_stops_the_run_before_ray(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    experiment(tmp_path, "9")
    status, output = run_main(["run", "exp/exp.yaml", "--db", f"sqlite:///{tmp_path}/x.db",
                               "--artifacts", f"{tmp_path}/runs"], monkeypatch, capsys)
    assert_clean_failure(status, output, "plugin 'one_column', architecture 'one_column'",
                         "is shape (2, 1); expected (2, 10)")
    assert "multi-target" not in output
    assert_nothing_written(tmp_path)


def test_the_trial_checks_its_own_model_before_training(tmp_path):
    path = experiment(tmp_path, "[0, 9]")  # the first configuration is right: the run starts
    config = load_experiment(path).config
    source = plugin_source(config.plugins.load, path.parent, autoload=False)
    registry = rebuild_plugins(source).registry
    space = build_space(config, registry)
    from automl.search_data import separate

    data, _ = separate(prepare_data(config, registry))
    context = TrialContext.for_experiment(config, [("accuracy", "max")], source, registry)
    params = {"architecture": "one_column", "architecture.one_column.classes_off": 9,
              **{f"training.{k}": p.low if hasattr(p, "low") else getattr(
                  p, "value", getattr(p, "options", [None])[0])
                 for k, p in space.training.items()}}
    reports = []
    with pytest.raises(PluginError, match=r"plugin 'one_column', architecture 'one_column': "
                                          r"the model's output for a batch of 2 is shape "
                                          r"\(2, 1\); expected \(2, 10\)"):
        train_and_evaluate(params, context, data, lambda m, d: reports.append(m))
    assert reports == []  # not one epoch trained
