"""The ensemble stage: weights from validation predictions only, honest test scoring."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

import automl.ensemble.predictions as predictions_module
from automl.config.models import EnsembleConfig
from automl.ensemble import resolve_settings, run_ensemble_stage
from automl.ensemble.predictions import CandidatePredictions
from automl.errors import ConfigError, PluginError
from automl.plugin_manager import load_plugins
from automl.space import ObjectiveSpec
from automl.store import ExperimentRecord, TrialRecord

REGISTRY = load_plugins(autoload=False).registry
OBJECTIVES = [ObjectiveSpec("accuracy", "max")]


def accuracy(y, proba):
    return float(np.mean(proba.argmax(1) == y))


def specialists(n=200, classes=10, seed=0):
    """Model A is right on classes 0-4 and guesses on 5-9; model B the reverse."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    a = np.full((n, classes), 0.02)
    b = np.full((n, classes), 0.02)
    low = y < classes // 2
    a[low, y[low]] = 0.8
    b[~low, y[~low]] = 0.8
    a[~low, rng.integers(0, classes, (~low).sum())] += 0.3  # confidently wrong-ish elsewhere
    b[low, rng.integers(0, classes, low.sum())] += 0.3
    return [a / a.sum(1, keepdims=True), b / b.sum(1, keepdims=True)], y


@pytest.mark.parametrize("name", ["greedy", "weighted"])
def test_complementary_specialists_beat_both(name):
    probas, y = specialists()
    weights = np.asarray(REGISTRY.create("ensembler", name).fit(
        probas, y, accuracy, {"iterations": 20} if name == "greedy" else {"trials": 60}, 0))
    assert np.isclose(weights.sum(), 1.0) and (weights >= 0).all()
    blended = np.tensordot(weights, np.stack(probas), axes=1)
    assert accuracy(y, blended) > max(accuracy(y, p) for p in probas) + 0.2
    assert weights.min() > 0.2  # both members are used


def write_trial(directory: Path, number: int, val, val_y, test, test_y, metric) -> TrialRecord:
    path = directory / f"trial_{number}"
    path.mkdir()
    np.savez(path / "predictions.npz", val_proba=val, val_y=val_y, test_proba=test, test_y=test_y)
    return TrialRecord(number=number, status="completed", params={"architecture": "mlp"},
                       metrics={"val/accuracy": metric, "model/params": 100.0 * (number + 1),
                                "model/nonzero_params": 50.0 * (number + 1)},
                       checkpoint=str(path))


def experiment(tmp_path: Path, seed=0) -> ExperimentRecord:
    (val_a, val_b), val_y = specialists(200, seed=seed)
    (test_a, test_b), test_y = specialists(200, seed=seed + 1)
    rng = np.random.default_rng(5)
    noise = rng.dirichlet(np.ones(10), size=200)  # a useless third candidate
    trials = [write_trial(tmp_path, 0, val_a, val_y, test_a, test_y, accuracy(val_y, val_a)),
              write_trial(tmp_path, 1, val_b, val_y, test_b, test_y, accuracy(val_y, val_b)),
              write_trial(tmp_path, 2, noise, val_y, noise, test_y, accuracy(val_y, noise))]
    trials.append(TrialRecord(number=3, status="early_stopped", params={}, metrics={}))
    return ExperimentRecord(
        name="e", status="completed", seed=seed, config={}, objectives=[
            {"metric": "accuracy", "mode": "max"}], plugins={}, automl_version="0",
        artifacts_dir=str(tmp_path), created_at=datetime.now(), finished_at=None, error=None,
        trials=trials)


def settings(**overrides):
    return resolve_settings(EnsembleConfig(**overrides), OBJECTIVES, REGISTRY)


def test_stage_scores_ensemble_and_best_single_on_test(tmp_path):
    outcome = run_ensemble_stage(experiment(tmp_path), REGISTRY, settings())
    record = outcome.record
    assert record is not None and record.note is None
    assert sorted(outcome.candidates) == [0, 1, 2]  # the early-stopped trial has no predictions
    assert np.isclose(sum(record.weights), 1.0)
    assert set(record.members) == {0, 1}  # the useless candidate gets no weight
    ens, single = record.scores["ensemble"], record.scores["best_single"]
    assert ens["test/accuracy"] > single["test/accuracy"] + 0.2
    assert ens["val_check/accuracy"] > single["val_check/accuracy"]
    assert ens["nonzero_params"] == 50 + 100  # the ensemble's size is its members' sum


def test_test_split_is_never_read_while_fitting(tmp_path, monkeypatch):
    events = []
    real_read = predictions_module.read_split

    def spy_read(checkpoint, split):
        events.append(("read", split))
        return real_read(checkpoint, split)

    monkeypatch.setattr(predictions_module, "read_split", spy_read)
    greedy = REGISTRY.get("ensembler", "greedy").cls
    real_fit = greedy.fit

    def spy_fit(self, *args, **kwargs):
        events.append(("fit", "start"))
        try:
            return real_fit(self, *args, **kwargs)
        finally:
            events.append(("fit", "end"))

    monkeypatch.setattr(greedy, "fit", spy_fit)
    run_ensemble_stage(experiment(tmp_path), REGISTRY, settings())
    fit_end = events.index(("fit", "end"))
    assert ("read", "test") not in events[:fit_end]
    assert events[:fit_end].count(("read", "val")) == 3
    assert events[fit_end + 1:].count(("read", "test")) == 3

    candidate = CandidatePredictions.load(0, str(tmp_path / "trial_0"))
    with pytest.raises(PermissionError, match="sealed"):
        candidate.test(None)


def test_guard_falls_back_to_the_best_single_trial(tmp_path, monkeypatch):
    greedy = REGISTRY.get("ensembler", "greedy").cls
    # an ensembler that overfits badly: all weight on the useless candidate
    monkeypatch.setattr(greedy, "fit", lambda self, probas, *a: np.array([0.0, 0.0, 1.0]))
    record = run_ensemble_stage(experiment(tmp_path), REGISTRY, settings()).record
    assert record.note and "guard" in record.note
    assert record.members == [record.best_single] and record.weights == [1.0]
    assert record.scores["ensemble"]["test/accuracy"] == \
        record.scores["best_single"]["test/accuracy"]


def test_invalid_weights_name_the_plugin(tmp_path, monkeypatch):
    greedy = REGISTRY.get("ensembler", "greedy").cls
    monkeypatch.setattr(greedy, "fit", lambda self, probas, *a: np.array([-1.0, 2.0, 0.0]))
    with pytest.raises(PluginError, match="ensembler 'greedy': fit\\(\\) returned invalid"):
        run_ensemble_stage(experiment(tmp_path), REGISTRY, settings())


def test_settings_are_validated():
    with pytest.raises(ConfigError, match="unknown ensembler 'gredy'.*did you mean 'greedy'"):
        settings(ensembler="gredy")
    with pytest.raises(ConfigError, match="ensemble.params.iteration.*did you mean 'iterations'"):
        settings(params={"iteration": 3})
    with pytest.raises(ConfigError, match="depends only on the model"):
        settings(metric="params")
    assert settings(metric="log_loss").mode == "min"


def test_diversity_filter_and_too_few_candidates(tmp_path):
    record = experiment(tmp_path)
    outcome = run_ensemble_stage(record, REGISTRY, settings(diversity=0.05))
    assert outcome.record is None and "diversity" in outcome.skipped
    record.trials = record.trials[:1]
    assert run_ensemble_stage(record, REGISTRY, settings()).record is None
