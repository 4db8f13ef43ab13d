"""The ensemble stage: weights from validation predictions only; its test score comes from the
final evaluation."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from automl.components import DataSpec
from automl.config.models import EnsembleConfig
from automl.ensemble import resolve_settings, run_ensemble_stage
from automl.evaluate import evaluate
from automl.errors import ConfigError, PluginError
from automl.plugin_manager import load_plugins
from automl.space import ObjectiveSpec
from automl.search_data import TestLabels
from automl.store import ExperimentRecord, TrialRecord

REGISTRY = load_plugins(autoload=False).registry
OBJECTIVES = [ObjectiveSpec("accuracy", "max")]
SPEC = DataSpec("tabular", (0,), 10)


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


def write_trial(directory: Path, number: int, val, val_y, test, metric) -> TrialRecord:
    """A checkpoint as a trial writes it: validation predictions with labels, test predictions
    without (``test=None``: no test array at all)."""
    path = directory / f"trial_{number}"
    path.mkdir(parents=True)
    arrays = {"val_proba": val, "val_y": val_y}
    if test is not None:
        arrays["test_proba"] = test
    np.savez(path / "predictions.npz", **arrays)
    return TrialRecord(number=number, status="completed", params={"architecture": "mlp"},
                       metrics={"val/accuracy": metric, "model/params": 100.0 * (number + 1),
                                "model/nonzero_params": 50.0 * (number + 1)},
                       checkpoint=str(path))


def experiment(tmp_path: Path, seed=0, with_test=True) -> ExperimentRecord:
    (val_a, val_b), val_y = specialists(200, seed=seed)
    (test_a, test_b), _ = held_out(seed)
    rng = np.random.default_rng(5)
    noise = rng.dirichlet(np.ones(10), size=200)  # a useless third candidate
    tests = (test_a, test_b, noise) if with_test else (None, None, None)
    trials = [write_trial(tmp_path, 0, val_a, val_y, tests[0], accuracy(val_y, val_a)),
              write_trial(tmp_path, 1, val_b, val_y, tests[1], accuracy(val_y, val_b)),
              write_trial(tmp_path, 2, noise, val_y, tests[2], accuracy(val_y, noise))]
    trials.append(TrialRecord(number=3, status="early_stopped", params={}, metrics={}))
    return ExperimentRecord(
        name="e", status="completed", seed=seed, config={}, objectives=[
            {"metric": "accuracy", "mode": "max"}], plugins={}, automl_version="0",
        artifacts_dir=str(tmp_path), created_at=datetime.now(), finished_at=None, error=None,
        trials=trials)


def held_out(seed=0):
    return specialists(200, seed=seed + 1)


def settings(**overrides):
    return resolve_settings(EnsembleConfig(**overrides), OBJECTIVES, REGISTRY)


def test_stage_fits_on_validation_and_the_final_evaluation_scores_it_on_test(tmp_path):
    exp = experiment(tmp_path)
    outcome = run_ensemble_stage(exp, REGISTRY, settings())
    record = outcome.record
    assert record is not None and record.note is None
    assert sorted(outcome.candidates) == [0, 1, 2]  # the early-stopped trial has no predictions
    assert np.isclose(sum(record.weights), 1.0)
    assert set(record.members) == {0, 1}  # the useless candidate gets no weight
    ens, single = record.scores["ensemble"], record.scores["best_single"]
    assert not any(k.startswith("test/") for k in [*ens, *single])  # no test score here
    assert ens["val_check/accuracy"] > single["val_check/accuracy"]
    assert ens["nonzero_params"] == 50 + 100  # the ensemble's size is its members' sum

    record.id = 7
    exp.ensembles = [record]
    _, y_test = held_out()
    scored = evaluate(exp, REGISTRY, TestLabels(y_test), SPEC)
    assert [(s.subject, s.trial, s.ensemble_id, s.roles) for s in scored] == [
        ("trial", record.best_single, None, ["best"]), ("ensemble", None, 7, ["ensemble"])]
    best, ensemble = scored
    assert ensemble.metrics["test/accuracy"] > best.metrics["test/accuracy"] + 0.2
    (test_a, test_b), _ = held_out()
    blend = np.tensordot(np.asarray(record.weights), np.stack(
        [(test_a, test_b)[n] for n in record.members]), axes=1)
    assert ensemble.metrics["test/accuracy"] == accuracy(y_test, blend)  # exactly


def test_the_stage_reads_no_test_array(tmp_path):
    """Checkpoints without any test array: the stage fits and scores all the same, so nothing
    it does can depend on the test split."""
    with_test = run_ensemble_stage(experiment(tmp_path / "a", with_test=True), REGISTRY,
                                   settings()).record
    without = run_ensemble_stage(experiment(tmp_path / "b", with_test=False), REGISTRY,
                                 settings()).record
    assert (with_test.members, with_test.weights, with_test.scores) == \
        (without.members, without.weights, without.scores)


def test_guard_falls_back_to_the_best_single_trial(tmp_path, monkeypatch):
    greedy = REGISTRY.get("ensembler", "greedy").cls
    # an ensembler that overfits badly: all weight on the useless candidate
    monkeypatch.setattr(greedy, "fit", lambda self, probas, *a: np.array([0.0, 0.0, 1.0]))
    record = run_ensemble_stage(experiment(tmp_path), REGISTRY, settings()).record
    assert record.note and "guard" in record.note
    assert record.members == [record.best_single] and record.weights == [1.0]
    assert record.scores["ensemble"]["val_check/accuracy"] == \
        record.scores["best_single"]["val_check/accuracy"]


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
