"""One trial outside Ray: reproducible from its parameters and the experiment seed."""

from __future__ import annotations

import pytest

from automl.config import parse_experiment
from automl.data import prepare_data
from automl.plugin_manager import plugin_source, rebuild_plugins
from automl.search_data import separate
from automl.trial.context import TrialContext
from automl.trial.seeding import derive_seed
from automl.trial.trainable import FINAL_KEY, train_and_evaluate

CONFIG = {
    "architecture": "cnn", "architecture.cnn.channels": 8, "architecture.cnn.depth": 1,
    "architecture.cnn.kernel": 3, "architecture.cnn.dropout": 0.1,
    "augmentation.shift.enabled": True, "augmentation.shift.max_shift": 1,
    "augmentation.shift.p": 0.5, "augmentation.noise.enabled": True,
    "augmentation.noise.std": 0.05, "pruning": "magnitude", "pruning.magnitude.ratio": 0.3,
    "training.lr": 0.005, "training.batch_size": 64, "training.optimizer": "adam",
    "training.weight_decay": 1e-5, "training.momentum": 0.9, "training.label_smoothing": 0.0,
}


@pytest.fixture(scope="module")
def setup():
    source = plugin_source([], autoload=False)
    config = parse_experiment("name: t\ndataset: digits\narchitecture: cnn\nseed: 5\n")
    data, _ = separate(prepare_data(config, rebuild_plugins(source).registry))
    context = TrialContext(experiment="t", seed=5, plugins=source,
                           objectives=(("accuracy", "max"),),
                           metrics=("accuracy", "params", "nonzero_params"), epochs=2,
                           fine_tune_epochs=1, fine_tune_lr_factor=0.1, amp=False,
                           eval_batch_size=256, cpus=1, gpus=0)
    return context, data


def run(setup, config):
    context, data = setup
    reports = []
    final = train_and_evaluate(config, context, data,
                               lambda metrics, directory: reports.append((metrics, directory)))
    return final, reports


def test_a_rerun_reproduces_the_trial(setup):
    first, reports = run(setup, CONFIG)
    second, _ = run(setup, CONFIG)
    assert first == second
    assert [m["epoch"] for m, _ in reports] == [1, 2, 2]
    assert reports[-1][0][FINAL_KEY] == 1 and reports[-1][1] is not None
    assert all(d is None for _, d in reports[:-1])
    assert {"val/accuracy", "model/params", "model/nonzero_params"} <= set(first)
    assert not any(k.startswith("test/") for k in first)  # scored on validation only
    assert first["model/nonzero_params"] < first["model/params"]
    # a model-only metric is recorded once, not per split
    assert not {"val/params", "test/params", "val/nonzero_params"} & set(first)


def test_seed_depends_on_parameters_and_experiment_seed():
    assert derive_seed(0, CONFIG) == derive_seed(0, dict(reversed(list(CONFIG.items()))))
    assert derive_seed(0, CONFIG) != derive_seed(1, CONFIG)
    assert derive_seed(0, CONFIG) != derive_seed(0, {**CONFIG, "training.lr": 0.004})
    assert 0 <= derive_seed(0, CONFIG) < 2**31


def test_a_trial_refuses_data_that_carries_test_labels(setup):
    context, data = setup
    full = prepare_data(parse_experiment("name: t\ndataset: digits\narchitecture: cnn\nseed: 5\n"),
                        rebuild_plugins(context.plugins).registry)
    with pytest.raises(TypeError, match="SearchSplits"):
        train_and_evaluate(CONFIG, context, full, lambda m, d: None)
    assert not hasattr(data, "y_test")
    with pytest.raises(AttributeError):
        object.__setattr__(data, "y_test", full.y_test)  # no slot for them


def test_the_final_report_says_where_the_trials_time_went(setup):
    _, reports = run(setup, CONFIG)
    final = reports[-1][0]
    phases = {k: v for k, v in final.items() if k.startswith("time/")}
    assert set(phases) == {f"time/{p}_s" for p in ("setup", "train", "epoch_eval", "prune",
                                                   "quantize", "final_eval", "artifacts",
                                                   "trial")}
    assert all(v >= 0 for v in phases.values())
    assert phases["time/train_s"] == pytest.approx(final["train_s"])
    parts = sum(v for k, v in phases.items() if k != "time/trial_s")
    assert parts <= phases["time/trial_s"] + 1e-6  # the phases do not overlap
    assert parts > 0.5 * phases["time/trial_s"]  # and they cover most of the trial
