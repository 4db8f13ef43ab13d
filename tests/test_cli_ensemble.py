"""`automl ensemble` scores with the DataSpec the run had (as its trials recorded it), not a
stand-in: real store rows, real checkpoint files, the command through its entry point."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from automl.cli.app import main
from automl.store import Store

SPEC = {"kind": "image", "input_shape": [1, 8, 8], "num_classes": 3,
        "class_names": ["zero", "one", "two"], "extra": {}}


def checkpoint(root: Path, number: int, rng: np.random.Generator) -> Path:
    path = root / "runs" / "e" / f"trial_{number}" / "checkpoint_000000"
    path.mkdir(parents=True)
    y = np.arange(60) % 3
    proba = {split: rng.dirichlet(np.ones(3), size=60).astype(np.float32)
             for split in ("val", "test")}
    np.savez(path / "predictions.npz", val_proba=proba["val"], val_y=y,
             test_proba=proba["test"], test_y=y)
    (path / "trial.json").write_text(json.dumps({"params": {}, "seed": number, "spec": SPEC}))
    return path


def test_ensemble_scores_with_the_runs_data_spec(tmp_path: Path, monkeypatch, capsys) -> None:
    db = f"sqlite:///{tmp_path / 'automl.db'}"
    rng = np.random.default_rng(0)
    store = Store(db)
    try:
        exp = store.create_experiment(
            name="e", seed=0, config={"name": "e"},
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
    with pytest.raises(SystemExit) as info:
        main()
    output = capsys.readouterr()
    assert info.value.code in (0, None), output.out + output.err
    store = Store(db, create=False)
    try:
        scores = store.experiment("e").ensemble.scores
    finally:
        store.close()
    assert scores["ensemble"]["test/sees_run_spec"] == 1.0
    assert scores["best_single"]["val_check/sees_run_spec"] == 1.0
