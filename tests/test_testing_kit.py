"""The pytest plugin that plugin authors get: the `automl_project` fixture (entry point pytest11)."""

from __future__ import annotations

import os

import pytest

SOURCE = """
from automl.components import Architecture, ParamDef
from automl.params import IntRange

class Linear(Architecture):
    name = "linear_probe"
    description = "a single linear layer"
    params = {"bias": ParamDef(IntRange(0, 1), int, "1 adds a bias")}

    def build(self, params, spec):
        import math
        from torch import nn
        return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(spec.input_shape),
                                                     spec.num_classes, bias=bool(params["bias"])))

def automl_register_architectures(registrar):
    registrar.add(Linear)
"""


def test_fixture_isolates_and_validates(automl_project):
    assert os.environ["AUTOML_DISABLE_PLUGIN_AUTOLOAD"] == "1"
    assert os.getcwd() == str(automl_project.root)
    automl_project.write_plugin("probe.py", SOURCE)
    automl_project.write_experiment("""
        name: kit
        plugins: [probe.py]
        dataset: digits
        architecture: linear_probe
    """)
    prepared = automl_project.validate()
    assert dict(prepared.space.rows())["architecture.linear_probe.bias"] == "int [0, 1]"
    assert prepared.plugins.registry.get("architecture", "linear_probe").plugin == "probe"


@pytest.mark.slow
def test_fixture_runs_an_experiment_in_process(automl_project):
    automl_project.write_plugin("probe.py", SOURCE)
    automl_project.write_experiment("""
        name: kit-run
        plugins: [probe.py]
        dataset: digits
        architecture: linear_probe
        training: {epochs: 2, fine_tune_epochs: 0}
        search: {num_trials: 2, early_stopping: none}
    """)
    result = automl_project.run()
    assert result.status == "completed"
    assert [t.status for t in result.trials] == ["completed", "completed"]
    assert (automl_project.root / "automl.db").exists()
