"""K-fold validation (``validation: {kfold: ...}``) and the linear architecture.

Unit tests: the fold assignment (stratified, seeded, disjoint, covering), out-of-fold averaging,
config errors with their field paths. A trial trained directly (``train_and_evaluate``) checks
what a k-fold trial reports and keeps. The slow end-to-end test runs a real search with k-fold
validation, the ensemble stage and the final evaluation, then ``automl export`` and
``automl predict`` on the result, as a user would.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from automl.validation import assign_folds, out_of_fold

TINY_KFOLD = """\
name: {name}
seed: 5
dataset: breast_cancer
validation: {{kfold: {{folds: 3, repeats: {repeats}, final: {final}}}}}
architecture: {{linear: {{}}, mlp: {{depth: 1, width: 16}}}}
training: {{epochs: 3, fine_tune_epochs: 0, lr: 0.01}}
search: {{num_trials: {trials}, sampler: random, early_stopping: none, max_concurrent: 2}}
"""


# ---- fold assignment ----------------------------------------------------------------------------

def test_folds_are_disjoint_covering_and_seeded():
    y = np.repeat([0, 1, 2], [30, 50, 20])
    pairs = assign_folds(len(y), 5, 2, seed=3, stratify=y)
    assert len(pairs) == 10
    for repeat in (pairs[:5], pairs[5:]):
        held = np.concatenate([h for _, h in repeat])
        assert sorted(held) == list(range(len(y)))  # every row held out exactly once
        for fit, h in repeat:
            assert not set(fit) & set(h) and len(fit) + len(h) == len(y)
    # stratified: each held-out fold has the classes' proportions (20 rows: 6, 10, 4)
    for _, held in pairs:
        assert np.bincount(y[held]).tolist() == [6, 10, 4]
    same = assign_folds(len(y), 5, 2, seed=3, stratify=y)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(pairs, same))
    other = assign_folds(len(y), 5, 2, seed=4, stratify=y)
    assert not all(np.array_equal(a[1], b[1]) for a, b in zip(pairs, other))
    assert not np.array_equal(pairs[0][1], pairs[5][1])  # repetitions shuffle anew


def test_small_groups_fall_back_to_plain_folds():
    y = np.array([0] * 20 + [1] * 2)  # class 1 cannot be in each of 5 folds
    pairs = assign_folds(len(y), 5, 1, seed=0, stratify=y)
    assert sorted(np.concatenate([h for _, h in pairs])) == list(range(22))
    with pytest.raises(ValueError, match="at least 5 rows"):
        assign_folds(3, 5, 1, seed=0)


def test_out_of_fold_averages_repetitions():
    pairs = assign_folds(6, 2, 2, seed=1)
    predictions = [np.full((len(h), 1), float(i)) for i, (_, h) in enumerate(pairs)]
    oof = out_of_fold(predictions, pairs, 6)
    expected = np.zeros(6)
    for i, (_, held) in enumerate(pairs):
        expected[held] += i / 2
    assert np.allclose(oof[:, 0], expected)


# ---- config -------------------------------------------------------------------------------------

@pytest.mark.parametrize("validation, expected", [
    ("{kfold: {folds: 1}}", ["exp.yaml:4: validation.kfold.folds:", "greater than or equal to 2"]),
    ("{kfold: {fold: 3}}", ["exp.yaml:4: validation.kfold.fold: unknown field"]),
    ("{kfold: {final: best}}", ["validation.kfold.final:", "'folds' or 'refit'"]),
    ("crossval", ["exp.yaml:4: validation:", "'holdout', 'kfold'"]),
])
def test_bad_validation_is_reported_with_its_field_path(tmp_path, monkeypatch, capsys,
                                                        validation, expected):
    from tests.test_config_errors import BASE, assert_clean_failure, run_main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "exp.yaml").write_text(BASE + f"validation: {validation}\n")
    status, output = run_main(["validate", "exp.yaml"], monkeypatch, capsys)
    assert_clean_failure(status, output, *expected)


def test_holdout_keeps_the_search_hash(tmp_path):
    from automl.config import load_experiment
    from automl.runner import search_hash

    base = "name: x\ndataset: wine\narchitecture: mlp\n"
    plain, holdout, kfold = (tmp_path / "a.yaml", tmp_path / "b.yaml", tmp_path / "c.yaml")
    plain.write_text(base)
    holdout.write_text(base + "validation: holdout\n")
    kfold.write_text(base + "validation: kfold\n")
    hashes = [search_hash(load_experiment(p).config) for p in (plain, holdout, kfold)]
    assert hashes[0] == hashes[1] != hashes[2]
    assert load_experiment(kfold).config.validation.kfold.folds == 5


# ---- one k-fold trial ---------------------------------------------------------------------------

def run_one_trial(tmp_path, text: str, params: dict):
    """Train one configuration of the experiment ``text`` as a trial worker would; returns the
    search data, the trial context, every report, the saved artifacts and the final metrics."""
    from automl.data import prepare_data
    from automl.runner import prepare
    from automl.search_data import separate
    from automl.trial.artifacts import TRIAL_FILE, read_predictions
    from automl.trial.context import TrialContext
    from automl.trial.trainable import FINAL_KEY, train_and_evaluate

    path = tmp_path / "experiment.yaml"
    path.write_text(text)
    prepared = prepare(path, db="sqlite://")
    config, registry = prepared.loaded.config, prepared.plugins.registry
    data = separate(prepare_data(config, registry))[0]
    context = dataclasses.replace(TrialContext.for_experiment(
        config, [("accuracy", "max")], prepared.plugins.source, registry), cpus=1)
    reports, saved = [], {}

    def report(metrics, directory):
        reports.append(metrics)
        if directory is not None:
            saved.update(read_predictions(directory),
                         record=json.loads((directory / TRIAL_FILE).read_text()))

    final_metrics = train_and_evaluate(params, context, data, report)
    assert reports[-1][FINAL_KEY] == 1
    return data, context, reports, saved, final_metrics


TRAINING = {"training.lr": 0.01, "training.batch_size": 32, "training.optimizer": "adam",
            "training.weight_decay": 1e-4, "training.momentum": 0.9,
            "training.label_smoothing": 0.0}


def _trial(tmp_path, final: str, repeats: int = 1, architecture: str = "mlp"):
    params = {"architecture": architecture, **TRAINING,
              **({"architecture.mlp.depth": 1, "architecture.mlp.width": 16,
                  "architecture.mlp.dropout": 0.0, "architecture.mlp.activation": "relu"}
                 if architecture == "mlp" else {})}
    return run_one_trial(tmp_path, TINY_KFOLD.format(name="kf", repeats=repeats, final=final,
                                                     trials=1), params)


def test_kfold_trial_reports_fold_means_and_keeps_out_of_fold_predictions(tmp_path):
    data, context, reports, saved, final = _trial(tmp_path, "folds")
    epochs = [r for r in reports if "automl/final" not in r]
    assert [r["epoch"] for r in epochs] == [1, 2, 3]
    assert all(0 <= r["val/accuracy"] <= 1 for r in epochs)
    y_all = np.concatenate([data.y_train, data.y_val])
    # out-of-fold predictions over every train and validation row, with their targets
    assert saved["val_proba"].shape == (len(y_all), 2)
    assert np.array_equal(saved["val_y"], y_all)
    assert np.allclose(saved["val_proba"].sum(axis=1), 1, atol=1e-5)
    assert saved["test_proba"].shape == (len(data.x_test), 2)
    # the reported accuracy is the mean of the folds' accuracies, measured on the held-out rows
    pairs = assign_folds(len(y_all), 3, 1, context.seed, y_all)  # classes stratify
    per_fold = [np.mean(saved["val_proba"][h].argmax(1) == y_all[h]) for _, h in pairs]
    assert final["val/accuracy"] == pytest.approx(np.mean(per_fold))
    assert epochs[-1]["val/accuracy"] == pytest.approx(final["val/accuracy"])  # no fine-tuning
    assert saved["record"]["folds"] == 3
    # the fold ensemble counts every fold model's parameters: 3 x (30*16+16 + 16*2+2)
    assert final["model/params"] == 3 * 530


def test_refit_trial_keeps_one_model(tmp_path):
    _, _, reports, saved, final = _trial(tmp_path, "refit", repeats=2, architecture="linear")
    assert "folds" not in saved["record"]
    assert saved["record"]["validation"]["kfold"] == {"folds": 3, "repeats": 2, "final": "refit"}
    assert final["model/params"] == 30 * 2 + 2  # one linear layer: logistic regression


# ---- quantized k-fold trials ---------------------------------------------------------------------

def _quantized_trial(tmp_path, final: str, architecture: str, quantizer: str):
    """One k-fold trial with ``quantizer``; returns the data, the context, the final metrics, the
    saved record and a copy of the checkpoint directory."""
    import shutil

    from automl.trial.trainable import train_and_evaluate
    from automl.data import prepare_data
    from automl.runner import prepare
    from automl.search_data import separate
    from automl.trial.context import TrialContext

    path = tmp_path / "experiment.yaml"
    path.write_text(TINY_KFOLD.format(name="kq", repeats=1, final=final, trials=1)
                    + f"quantization: [{quantizer}, none]\n")
    prepared = prepare(path, db="sqlite://")
    config, registry = prepared.loaded.config, prepared.plugins.registry
    data = separate(prepare_data(config, registry))[0]
    context = dataclasses.replace(TrialContext.for_experiment(
        config, [("accuracy", "max")], prepared.plugins.source, registry), cpus=1)
    params = {"architecture": architecture, **TRAINING, "quantization": quantizer,
              **({"architecture.mlp.depth": 1, "architecture.mlp.width": 16,
                  "architecture.mlp.dropout": 0.0, "architecture.mlp.activation": "relu"}
                 if architecture == "mlp" else {}),
              **({"quantization.static_int8.calibration_batches": 2}
                 if quantizer == "static_int8" else {})}
    kept = tmp_path / "checkpoint"

    def report(metrics, directory):
        if directory is not None:
            shutil.copytree(directory, kept)

    final_metrics = train_and_evaluate(params, context, data, report)
    record = json.loads((kept / "trial.json").read_text())
    return data, context, final_metrics, record, kept, registry


def test_a_quantized_kfold_trial_scores_and_keeps_its_quantized_fold_models(tmp_path):
    """Each fold model is quantized (static int8, calibrated on its fold's rows); the
    out-of-fold predictions, the fold-mean accuracy and the test predictions are the quantized
    models', and the checkpoint rebuilds them exactly (as exports and the ensemble stage do)."""
    import torch

    from automl.export import build_model
    from automl.trial.artifacts import QUANTIZED_FILE, read_predictions

    data, context, final, record, kept, registry = _quantized_trial(tmp_path, "folds", "mlp",
                                                                    "static_int8")
    assert final["model/quantized"] == 1.0 and final["model/on_cuda"] == 0.0
    assert "not_applied" not in record and record["folds"] == 3
    assert final["model/saved_bytes"] == (kept / QUANTIZED_FILE).stat().st_size
    spec = data.spec
    entry = {"architecture": "mlp", "architecture_params": record["plan"]["architecture_params"],
             "params": record["params"], "folds": 3, "quantizer": "static_int8",
             "quantizer_params": {"calibration_batches": 2}}
    model = build_model(registry, entry, spec, kept / "model.pt").eval()
    # torch.ao.nn.quantized's int8 Linear in each fold model
    assert sum(type(m).__module__.startswith("torch.ao.nn.quantized") and
               type(m).__name__ == "Linear" for m in model.modules()) == 3
    saved = read_predictions(kept)
    task = registry.create("task", "classification")
    y_all = np.concatenate([data.y_train, data.y_val])
    x_all = torch.as_tensor(np.concatenate([data.x_train, data.x_val]))
    pairs = assign_folds(len(y_all), 3, 1, context.seed, y_all)
    with torch.no_grad():
        for member, (_, held) in zip(model.members, pairs):
            proba = task.predict(member(x_all[held]), spec).numpy()
            assert np.allclose(proba, saved["val_proba"][held], atol=1e-6)
        assert np.allclose(model(torch.as_tensor(data.x_test)).numpy(), saved["test_proba"],
                           atol=1e-6)
    per_fold = [np.mean(saved["val_proba"][h].argmax(1) == y_all[h]) for _, h in pairs]
    assert final["val/accuracy"] == pytest.approx(np.mean(per_fold))


def test_a_refit_trial_quantizes_its_refitted_model(tmp_path):
    import torch

    from automl.export import build_model
    from automl.trial.artifacts import read_predictions

    data, _, final, record, kept, registry = _quantized_trial(tmp_path, "refit", "linear",
                                                              "dynamic_int8")
    assert final["model/quantized"] == 1.0 and "folds" not in record
    entry = {"architecture": "linear", "architecture_params": {}, "params": record["params"],
             "quantizer": "dynamic_int8", "quantizer_params": {}}
    model = build_model(registry, entry, data.spec, kept / "model.pt").eval()
    task = registry.create("task", "classification")
    with torch.no_grad():
        proba = task.predict(model(torch.as_tensor(data.x_test)), data.spec).numpy()
    assert np.allclose(proba, read_predictions(kept)["test_proba"], atol=1e-6)


def test_a_kfold_model_the_quantizer_cannot_handle_stays_float_with_the_reason(tmp_path):
    from automl.trial.artifacts import QUANTIZED_FILE

    """fp16 on a CPU trial: every fold model keeps float32, the trial records why."""
    _, _, final, record, kept, _ = _quantized_trial(tmp_path, "folds", "mlp", "fp16")
    assert final["model/quantized"] == 0.0 and final["model/on_cuda"] == 0.0
    assert record["not_applied"] == [
        "quantizer 'fp16': half precision needs a CUDA device; this trial's model is on the cpu "
        "(float16 on the CPU is slower than float32)"]
    assert not (kept / QUANTIZED_FILE).exists()


# ---- a real search, ensemble, final evaluation, export and predict ------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("final", ["folds", "refit"])
def test_kfold_search_ensembles_evaluates_exports_and_predicts(tmp_path, automl_cmd, final):
    import automl
    from automl.store import Store
    from sklearn.datasets import load_breast_cancer

    from automl.trial.artifacts import read_predictions
    from tests.test_predict_raw import predict_cli, test_indices

    path = tmp_path / "kf.yaml"
    path.write_text(TINY_KFOLD.format(name=f"kf-{final}", repeats=1, final=final, trials=3))
    db = f"sqlite:///{tmp_path / 'automl.db'}"
    result = automl.run(str(path), db=db, artifacts=str(tmp_path / "runs"))
    assert result.status == "completed"
    with Store(db, create=False) as store:
        record = store.experiment(f"kf-{final}")
    done = [t for t in record.trials if t.status == "completed"]
    assert len(done) == 3
    for trial in done:  # one history row per epoch, each with the fold-mean accuracy
        assert [h["epoch"] for h in trial.history if "val/accuracy" in h][-3:] == [1, 2, 3]
        predictions = read_predictions(trial.checkpoint)
        assert predictions["val_proba"].shape == (455, 2)  # out of fold: 569 - 114 test rows
    # the ensemble stage fitted on the out-of-fold predictions and its guard scored the check part
    assert record.ensemble is not None
    assert set(record.ensemble.scores["ensemble"]) >= {"val_check/accuracy"}
    evaluation = record.evaluation
    assert evaluation is not None and evaluation.best() is not None
    best_test = evaluation.best().metrics["test/accuracy"]
    assert 0.8 <= best_test <= 1.0

    # export the best trial and predict the raw test rows in a fresh process
    out = tmp_path / "model"
    exported = subprocess.run([*automl_cmd, "export", f"kf-{final}", "--out", str(out),
                               "--db", db], capture_output=True, text=True, timeout=300,
                              cwd=tmp_path)
    assert exported.returncode == 0, exported.stdout + exported.stderr
    manifest = json.loads((out / "model.json").read_text())
    if final == "folds":  # the trial's model is its three fold models, averaged
        assert manifest["folds"] == 3 and manifest["output"] == "probabilities"
    else:
        assert "folds" not in manifest and manifest["output"] == "logits"
    frame = load_breast_cancer(as_frame=True).frame
    rows = test_indices(len(frame), frame["target"].to_numpy(), seed=5)
    frame.iloc[rows].to_csv(tmp_path / "rows.csv", index=False)
    got = predict_cli(automl_cmd, out, tmp_path / "rows.csv", tmp_path / "pred.csv",
                      cwd=tmp_path)
    truth = np.asarray(manifest["class_names"])[frame["target"].to_numpy()[rows]]
    assert float((got["prediction"].astype(str).to_numpy() == truth).mean()) == best_test
    # the ensemble exports too: members that are fold ensembles or refitted models
    out_ensemble = tmp_path / "ensemble"
    exported = subprocess.run([*automl_cmd, "export", f"kf-{final}", "--out", str(out_ensemble),
                               "--ensemble", "--db", db], capture_output=True, text=True,
                              timeout=300, cwd=tmp_path)
    assert exported.returncode == 0, exported.stdout + exported.stderr
    manifest = json.loads((out_ensemble / "model.json").read_text())
    got = predict_cli(automl_cmd, out_ensemble, tmp_path / "rows.csv", tmp_path / "pred2.csv",
                      cwd=tmp_path)
    assert float((got["prediction"].astype(str).to_numpy() == truth).mean()) == \
        evaluation.ensemble().metrics["test/accuracy"]


@pytest.mark.slow
def test_a_quantized_kfold_search_exports_the_quantized_fold_ensemble(tmp_path, automl_cmd):
    """``automl run`` with k-fold validation and a quantization step: quantized trials record
    the quantized fold models' metrics, and their export is the quantized fold ensemble, which
    reloads from weights-only files and predicts the trial's test predictions."""
    import torch

    from automl.export import load_model, trained_model
    from automl.data import prepare_data
    from automl.runner import prepare
    from automl.search_data import separate
    from automl.store import Store
    from automl.trial.artifacts import MODEL_FILE, QUANTIZED_FILE, TRIAL_FILE, read_predictions

    path = tmp_path / "kq.yaml"
    path.write_text("""\
name: kq
seed: 3
dataset: wine
validation: {kfold: {folds: 3}}
architecture: {mlp: {depth: 1, width: 32}}
quantization: {none: {}, dynamic_int8: {}}
training: {epochs: 2, fine_tune_epochs: 0, lr: 0.01}
search: {num_trials: 2, sampler: random, early_stopping: none, max_concurrent: 2}
ensemble: false
""")
    db = f"sqlite:///{tmp_path / 'automl.db'}"
    ran = subprocess.run([*automl_cmd, "run", str(path), "--db", db], capture_output=True,
                         text=True, timeout=300, cwd=tmp_path)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    with Store(db, create=False) as store:
        record = store.experiment("kq")
    done = [t for t in record.trials if t.status == "completed"]
    assert len(done) == 2
    quantized = [t for t in done if t.params["quantization"] == "dynamic_int8"]
    assert len(quantized) == 1, "the seed gives a quantized trial and a float one"
    for trial in done:
        checkpoint = Path(trial.checkpoint)
        if trial.params["quantization"] == "none":
            assert "model/quantized" not in trial.metrics
            assert not (checkpoint / QUANTIZED_FILE).exists()
            continue
        assert trial.metrics["model/quantized"] == 1.0 and trial.metrics["model/on_cuda"] == 0.0
        assert trial.metrics["model/saved_bytes"] == (checkpoint / QUANTIZED_FILE).stat().st_size
        assert json.loads((checkpoint / TRIAL_FILE).read_text())["folds"] == 3
    trial = quantized[0]
    out = tmp_path / "model"
    exported = subprocess.run([*automl_cmd, "export", "kq", "--trial", str(trial.number),
                               "--out", str(out), "--db", db], capture_output=True, text=True,
                              timeout=300, cwd=tmp_path)
    assert exported.returncode == 0, exported.stdout + exported.stderr
    assert "max abs prediction difference from the eager model 0" in exported.stdout
    manifest = json.loads((out / "model.json").read_text())
    assert manifest["folds"] == 3 and manifest["quantizer"] == "dynamic_int8"
    for name in (MODEL_FILE, QUANTIZED_FILE):  # plain tensors: loadable without unpickling code
        torch.load(out / name, weights_only=True)
    model = load_model(out)
    assert sum("quantized" in type(m).__module__ for m in model.modules()) >= 3  # per fold
    prepared = prepare(path, db="sqlite://")
    data = separate(prepare_data(prepared.loaded.config, prepared.plugins.registry))[0]
    # as the export, so the rebuild a distillation teacher makes from the checkpoint
    teacher, probabilities = trained_model(record, trial, prepared.plugins.registry, data.spec)
    expected = read_predictions(trial.checkpoint)["test_proba"]
    with torch.no_grad():
        for module in (model, teacher):
            got = module(torch.as_tensor(data.x_test)).numpy()
            assert np.allclose(got, expected, atol=1e-6)
    assert probabilities  # a fold ensemble returns the task's predictions


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
