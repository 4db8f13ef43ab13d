"""automl export / automl rerun: a trained model leaves the experiment as a reloadable directory,
and a recorded trial trains again, without Ray, to the same metrics. One real search per module."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import yaml

import automl
from automl.cli.app import main
from automl.config import load_experiment
from automl.data import prepare_data
from automl.errors import StoreError
from automl.export import export_model, load_model, predict_proba, select_trial, trial_spec
from automl.plugin_manager import load_plugins
from automl.store import Store
from automl.trial.artifacts import read_predictions

pytestmark = pytest.mark.slow

NAME = "exporting"
EXPERIMENT = f"""
name: {NAME}
seed: 1
dataset: digits
architecture: {{mlp: {{depth: 1, width: 32}}, cnn: {{channels: 8, depth: 1}}}}
pruning: {{structured: {{ratio: 0.5, scope: layer}}}}
training: {{epochs: 2, fine_tune_epochs: 1, lr: 0.01}}
search: {{num_trials: 3, sampler: random, early_stopping: none}}
"""

RELOAD = """
import sys
import numpy as np
import torch
from automl.export import load_model, predict_proba

model_dir, inputs, output = sys.argv[1:]
x = np.load(inputs)["x"]
model = load_model(model_dir)
with torch.no_grad():
    logits = model(torch.as_tensor(x)).numpy()
np.savez(output, logits=logits, proba=predict_proba(model_dir, x), training=model.training,
         params=sum(p.numel() for p in model.parameters()))
"""


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    path = root / "exp.yaml"
    path.write_text(EXPERIMENT)
    db = f"sqlite:///{root / 'automl.db'}"
    result = automl.run(str(path), db=db, artifacts=str(root / "runs"))
    assert result.status == "completed"
    store = Store(db, create=False)
    try:
        record = store.experiment(NAME)
    finally:
        store.close()
    assert all(t.status == "completed" for t in record.trials)
    data = prepare_data(load_experiment(path).config, load_plugins(autoload=False).registry)
    return SimpleNamespace(root=root, db=db, record=record, data=data)


def cli(monkeypatch, *args: str) -> int:
    """``automl ARGS`` through the console-script entry point, in this process."""
    monkeypatch.setattr(sys, "argv", ["automl", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    return exit_info.value.code


def test_best_trial_exports_and_reloads_in_a_fresh_process(finished, tmp_path, monkeypatch,
                                                           capsys):
    out = tmp_path / "best"
    assert cli(monkeypatch, "export", NAME, "--db", finished.db, "--out", str(out)) == 0
    best = select_trial(finished.record, "best")
    assert f"exported trial #{best.number} of '{NAME}'" in capsys.readouterr().out

    assert sorted(p.name for p in out.iterdir()) == ["experiment.yaml", "model.json", "model.pt"]
    manifest = json.loads((out / "model.json").read_text())
    assert manifest["type"] == "trial" and manifest["output"] == "logits"
    assert manifest["trial"] == best.number and manifest["metrics"] == best.metrics
    assert manifest["architecture"] == best.params["architecture"]
    assert manifest["pruner"] == "structured"
    assert manifest["experiment"]["name"] == NAME and manifest["experiment"]["seed"] == 1
    assert manifest["automl_version"] == automl.__version__
    assert manifest["plugins"]["modules"] == [] and manifest["plugins"]["files"] == []
    spec = finished.data.spec
    assert manifest["spec"] == {"kind": spec.kind, "input_shape": list(spec.input_shape),
                                "num_classes": spec.num_classes,
                                "class_names": list(spec.class_names), "extra": spec.extra,
                                "task": "classification", "target_names": [],
                                "output_size": spec.num_classes}
    assert yaml.safe_load((out / "experiment.yaml").read_text()) == finished.record.config
    assert str(finished.root / "runs") not in (out / "model.json").read_text()

    # A fresh interpreter somewhere else: no database, no experiment, only the export.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    np.savez(tmp_path / "x.npz", x=finished.data.x_test)
    done = subprocess.run([sys.executable, "-c", RELOAD, str(out), str(tmp_path / "x.npz"),
                           str(tmp_path / "y.npz")], cwd=elsewhere, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    got = np.load(tmp_path / "y.npz")
    stored = read_predictions(best.checkpoint)
    assert "test_y" not in stored  # trials keep no test labels
    assert len(stored["test_proba"]) == len(finished.data.y_test)
    np.testing.assert_allclose(got["proba"], stored["test_proba"], atol=1e-5)
    logits = got["logits"]
    softmax = np.exp(logits - logits.max(1, keepdims=True))
    np.testing.assert_allclose(softmax / softmax.sum(1, keepdims=True), got["proba"], atol=1e-6)
    assert not got["training"]
    assert got["params"] == best.metrics["model/params"]  # the pruned (smaller) shapes loaded


def blend(record, members, weights):
    probas = [read_predictions(select_trial(record, n).checkpoint)["test_proba"] for n in members]
    weights = np.asarray(weights, dtype=np.float64) / np.sum(weights)
    return np.tensordot(weights, np.stack(probas).astype(np.float64), axes=1)


def test_ensemble_exports_every_member_and_blends_their_probabilities(finished, tmp_path):
    import torch

    record = finished.record
    stored = record.ensemble
    assert stored is not None
    out = export_model(record, tmp_path / "ensemble", ensemble=True)
    manifest = json.loads((out / "model.json").read_text())
    assert manifest["type"] == "ensemble" and manifest["output"] == "probabilities"
    assert [m["trial"] for m in manifest["members"]] == stored.members
    assert manifest["weights"] == pytest.approx(stored.weights)
    for number in stored.members:
        assert (out / "members" / str(number) / "model.pt").is_file()
    model = load_model(out)
    with torch.no_grad():
        proba = model(torch.as_tensor(finished.data.x_test)).numpy()
    np.testing.assert_allclose(proba, blend(record, stored.members, stored.weights), atol=1e-5)

    # Every trial, hand-weighted: the stored ensemble may have fallen back to one member.
    members = [t.number for t in record.trials]
    weights = [5.0, 3.0, 2.0][:len(members)]
    out = export_model(record, tmp_path / "blend", ensemble=True, members=members,
                       weights=weights)
    assert json.loads((out / "model.json").read_text())["weights"] == pytest.approx(
        [w / sum(weights) for w in weights])
    proba = predict_proba(out, finished.data.x_test)
    np.testing.assert_allclose(proba, blend(record, members, weights), atol=1e-5)
    np.testing.assert_allclose(proba.sum(1), 1.0, atol=1e-5)


def test_rerun_reproduces_the_recorded_metrics(finished, automl_cmd):
    trial = finished.record.trials[-1]
    done = subprocess.run([*automl_cmd, "rerun", NAME, "--trial", str(trial.number), "--db",
                           finished.db], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "epoch 1/2" in done.stdout and "epoch 2/2" in done.stdout
    assert f"seed {trial.seed}" in done.stdout
    assert "largest difference 0" in done.stdout
    assert "reproduced: every compared metric matches" in done.stdout
    assert "differs" not in done.stdout
    for key in ("val/accuracy", "model/nonzero_params"):
        assert key in done.stdout
    assert "test/accuracy" not in done.stdout  # trials record no test metric


def test_a_checkpoint_without_a_recorded_spec_gets_it_from_the_dataset(finished, tmp_path):
    trial = finished.record.trials[0]
    copy = tmp_path / "old"
    shutil.copytree(trial.checkpoint, copy)
    record = json.loads((copy / "trial.json").read_text())
    assert "spec" in record
    del record["spec"]
    (copy / "trial.json").write_text(json.dumps(record))
    registry = load_plugins(autoload=False).registry
    assert trial_spec(finished.record, copy, registry) == finished.data.spec
    assert trial_spec(finished.record, Path(trial.checkpoint), registry) == finished.data.spec


def test_trials_without_a_final_model_are_refused(finished, tmp_path):
    record = finished.record
    first = record.trials[0]
    stopped = dataclasses.replace(record, trials=[dataclasses.replace(first, status="early_stopped",
                                                                      checkpoint=None)])
    with pytest.raises(StoreError, match=r"trial 0 of experiment 'exporting' is early_stopped"):
        export_model(stopped, tmp_path / "a", trial=0)
    with pytest.raises(StoreError, match="has no completed trial"):
        export_model(stopped, tmp_path / "a")
    lost = dataclasses.replace(record, trials=[dataclasses.replace(first, checkpoint=None)])
    with pytest.raises(StoreError, match="trial 0 of experiment 'exporting' has no checkpoint"):
        export_model(lost, tmp_path / "a", trial=0)
    none = dataclasses.replace(record, ensembles=[])
    with pytest.raises(StoreError, match=r"has no ensemble \(run: automl ensemble exporting\)"):
        export_model(none, tmp_path / "a", ensemble=True)
    assert not (tmp_path / "a").exists()


@pytest.mark.parametrize("args, message", [
    (["export", NAME, "--trial", "99", "--out", "{tmp}/x"],
     "experiment 'exporting' has no trial 99 (trials 0..2)"),
    (["export", NAME, "--out", "{tmp}/full"], "exists and is not empty"),
    (["export", "nope", "--out", "{tmp}/x"], "no experiment named 'nope'"),
    (["export", NAME, "--trial", "first", "--out", "{tmp}/x"],
     "--trial must be 'best', 'distilled' or a trial number, got 'first'"),
    (["export", NAME, "--ensemble", "--trial", "1", "--out", "{tmp}/x"],
     "--trial and --ensemble exclude each other"),
    (["rerun", NAME, "--trial", "99"], "experiment 'exporting' has no trial 99"),
    (["rerun", "nope", "--trial", "0"], "no experiment named 'nope'"),
])
def test_clear_errors_without_a_traceback(finished, tmp_path, monkeypatch, capsys, args,
                                          message):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    code = cli(monkeypatch, *[a.replace("{tmp}", str(tmp_path)) for a in args], "--db",
               finished.db)
    captured = capsys.readouterr()
    assert code == 2
    assert captured.err.startswith("error: ") and message in captured.err, captured.err
    assert "Traceback" not in captured.err + captured.out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full"]  # nothing half-written
    assert (tmp_path / "full" / "keep.txt").read_text() == "mine"


def test_rerun_exits_1_when_the_metrics_differ(finished, tmp_path, monkeypatch, capsys):
    import sqlite3

    copy = tmp_path / "tampered.db"
    source = sqlite3.connect(finished.db[len("sqlite:///"):])
    with sqlite3.connect(copy) as connection:
        source.backup(connection)  # reads through the write-ahead log, unlike a file copy
    source.close()
    trial = finished.record.trials[0]
    with sqlite3.connect(copy) as connection:
        metrics = {**trial.metrics, "val/accuracy": trial.metrics["val/accuracy"] + 0.01}
        connection.execute("UPDATE automl_trials SET metrics = ? WHERE number = ?",
                           (json.dumps(metrics), trial.number))
    code = cli(monkeypatch, "rerun", NAME, "--trial", str(trial.number), "--db",
               f"sqlite:///{copy}")
    out = capsys.readouterr().out
    assert code == 1
    assert "not reproduced: val/accuracy (tolerance 1e-06)" in out
    assert "largest difference 0" in out  # the predictions themselves did reproduce
