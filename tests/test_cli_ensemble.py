"""`automl ensemble` scores with the DataSpec the run had (as its trials recorded it), not a
stand-in, and adds a final evaluation on the test split (earlier ones kept): real store rows, real
checkpoint files, test labels prepared from the recorded config, the command through its entry
point."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from automl.cli.app import main
from automl.config import parse_experiment
from automl.data import prepare_data
from automl.plugin_manager import load_plugins
from automl.store import Store

SPEC = {"kind": "image", "input_shape": [1, 8, 8], "num_classes": 3,
        "class_names": ["zero", "one", "two"], "extra": {}}


#: the recorded config: digits (its test labels are what the final evaluation prepares)
CONFIG = parse_experiment("name: e\ndataset: digits\narchitecture: cnn\n")
TEST_ROWS = len(prepare_data(CONFIG, load_plugins(autoload=False).registry).y_test)


def checkpoint(root: Path, number: int, rng: np.random.Generator) -> Path:
    """A trial's checkpoint as trials write them: no test labels."""
    path = root / "runs" / "e" / f"trial_{number}" / "checkpoint_000000"
    path.mkdir(parents=True)
    y = np.arange(60) % 3
    np.savez(path / "predictions.npz", val_proba=rng.dirichlet(np.ones(3), size=60),
             val_y=y, test_proba=rng.dirichlet(np.ones(3), size=TEST_ROWS).astype(np.float32))
    (path / "trial.json").write_text(json.dumps({"params": {}, "seed": number, "spec": SPEC}))
    return path


def test_ensemble_scores_with_the_runs_data_spec(tmp_path: Path, monkeypatch, capsys) -> None:
    db = f"sqlite:///{tmp_path / 'automl.db'}"
    rng = np.random.default_rng(0)
    store = Store(db)
    try:
        exp = store.create_experiment(
            name="e", seed=0, config=CONFIG.model_dump(mode="json"),
            objectives=[{"metric": "accuracy", "mode": "max"}],
            plugins={"modules": ["tests.plugin_spec_metric"], "files": []},
            automl_version="test", artifacts_dir=str(tmp_path / "runs"))
        for number in range(3):
            store.start_trial(exp, number, f"t{number}", {"architecture": "cnn"})
            store.finish_trial(exp, number, status="completed",
                               metrics={"val/accuracy": 0.5 + number / 10},
                               history=[], seed=number, node="n", device="cpu",
                               checkpoint=str(checkpoint(tmp_path, number, rng)), error=None)
    finally:
        store.close()
    monkeypatch.setattr(sys, "argv", ["automl", "ensemble", "e", "--db", db,
                                      "--metric", "sees_run_spec"])
    for _ in range(2):  # each re-fit adds its own evaluation
        with pytest.raises(SystemExit) as info:
            main()
        output = capsys.readouterr()
        assert info.value.code in (0, None), output.out + output.err
        assert "final evaluation" in output.out and "(test split, scored once" in output.out
    store = Store(db, create=False)
    try:
        exp = store.experiment("e")
    finally:
        store.close()
    assert exp.ensemble.scores["best_single"]["val_check/sees_run_spec"] == 1.0
    assert [e.number for e in exp.evaluations] == [1, 2]
    assert exp.evaluations[0].created_at <= exp.evaluations[1].created_at
    for evaluation, ensemble in zip(exp.evaluations, exp.ensembles):
        scored = evaluation.ensemble()
        assert scored.ensemble_id == ensemble.id
        assert scored.metrics["test/sees_run_spec"] == 1.0  # with the run's DataSpec
        assert evaluation.best().trial == 2 and "test/accuracy" in evaluation.best().metrics


def test_a_dataset_that_no_longer_loads_stores_nothing(tmp_path: Path, monkeypatch,
                                                       capsys) -> None:
    """The test labels are prepared after the fit and before anything is stored: an ensemble is
    never stored without its evaluation."""
    table = tmp_path / "table.csv"
    rng = np.random.default_rng(1)
    table.write_text("a,b,label\n" + "".join(f"{rng.normal():.4f},{rng.normal():.4f},{i % 3}\n"
                                                for i in range(300)))
    config = parse_experiment(f"name: e\ndataset: {{name: csv, params: {{path: {table}, "
                              "label_column: label}}\narchitecture: mlp\n")
    rows = len(prepare_data(config, load_plugins(autoload=False).registry).y_test)
    db = f"sqlite:///{tmp_path / 'automl.db'}"
    with Store(db) as store:
        exp = store.create_experiment(
            name="e", seed=0, config=config.model_dump(mode="json"),
            objectives=[{"metric": "accuracy", "mode": "max"}], plugins={},
            automl_version="test", artifacts_dir=str(tmp_path / "runs"))
        for number in range(3):
            path = tmp_path / "runs" / f"trial_{number}"
            path.mkdir(parents=True)
            np.savez(path / "predictions.npz", val_proba=rng.dirichlet(np.ones(3), size=60),
                     val_y=np.arange(60) % 3, test_proba=rng.dirichlet(np.ones(3), size=rows))
            (path / "trial.json").write_text(json.dumps({"params": {}, "seed": number, "spec": {
                "kind": "tabular", "input_shape": [2], "num_classes": 3,
                "class_names": ["0", "1", "2"], "extra": {}}}))
            store.start_trial(exp, number, f"t{number}", {"architecture": "mlp"})
            store.finish_trial(exp, number, status="completed",
                               metrics={"val/accuracy": 0.5 + number / 10}, history=[],
                               seed=number, node="n", device="cpu", checkpoint=str(path),
                               error=None)
    table.unlink()
    monkeypatch.setattr(sys, "argv", ["automl", "ensemble", "e", "--db", db])
    with pytest.raises(SystemExit) as info:
        main()
    output = capsys.readouterr()
    assert info.value.code == 2, output.out + output.err
    assert f"no such file: {table}" in output.err and "Traceback" not in output.err
    with Store(db, create=False) as store:
        exp = store.experiment("e")
    assert exp.ensembles == [] and exp.evaluations == []
