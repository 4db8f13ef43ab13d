"""The ``hist_gbt`` architecture: gradient-boosted trees that train themselves.

Unit tests: the torch module computes scikit-learn's raw predictions exactly (binary, multiclass,
regression, missing values), and a saved ``state_dict`` loads into a freshly built (empty) model.
A trial with trees reports per epoch, records what it did not apply (augmentations, pruning)
instead of failing. The slow test runs a real search with trees and a linear model, then exports
the best trial natively, as TorchScript and as ONNX, each checked against the final evaluation.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pytest


@pytest.mark.parametrize("loader, kind, outputs", [
    ("load_breast_cancer", "classifier", 2), ("load_wine", "classifier", 3),
    ("load_diabetes", "regressor", 1)])
def test_tree_module_reproduces_sklearn(loader, kind, outputs):
    import sklearn.datasets
    import torch
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    from automl_plugins.architectures.tree_module import TreeEnsemble, from_sklearn

    x, y = getattr(sklearn.datasets, loader)(return_X_y=True)
    x = x.astype(np.float32)
    x[::7, 3] = np.nan  # missing values follow the side training sent them to
    cls = HistGradientBoostingClassifier if kind == "classifier" else HistGradientBoostingRegressor
    fitted = cls(max_iter=25, early_stopping=False, random_state=0).fit(x, y)
    module = from_sklearn(fitted, outputs)
    raw = module(torch.as_tensor(x)).double().numpy()
    if kind == "classifier":
        np.testing.assert_allclose(torch.softmax(torch.as_tensor(raw), 1).numpy(),
                                   fitted.predict_proba(x), atol=1e-6)
    else:
        np.testing.assert_allclose(raw[:, 0], fitted.predict(x), rtol=1e-6)
    buffer = io.BytesIO()
    torch.save(module.state_dict(), buffer)
    buffer.seek(0)
    fresh = TreeEnsemble(outputs)  # what the architecture builds: no trees yet
    assert fresh(torch.as_tensor(x[:3])).shape == (3, outputs)
    fresh.load_state_dict(torch.load(buffer, weights_only=True))
    assert torch.equal(fresh(torch.as_tensor(x)), module(torch.as_tensor(x)))


def test_tree_trial_reports_epochs_and_records_what_it_did_not_apply(tmp_path):
    from tests.test_kfold import TRAINING, run_one_trial

    params = {"architecture": "hist_gbt", "architecture.hist_gbt.iterations": 40,
              "architecture.hist_gbt.learning_rate": 0.1,
              "architecture.hist_gbt.max_leaf_nodes": 8,
              "architecture.hist_gbt.min_samples_leaf": 5,
              "architecture.hist_gbt.l2_regularization": 1e-3,
              "augmentation.noise.enabled": True, "augmentation.noise.std": 0.1,
              "pruning": "magnitude", "pruning.magnitude.ratio": 0.5, **TRAINING}
    data, _, reports, saved, final = run_one_trial(
        tmp_path, "name: trees\ndataset: wine\narchitecture: hist_gbt\n"
        "augmentations: {noise: {}}\npruning: {magnitude: {ratio: 0.5}}\n"
        "training: {epochs: 4, fine_tune_epochs: 2}\n", params)
    assert [r["epoch"] for r in reports[:-1]] == [1, 2, 3, 4]
    losses = [r["train/loss"] for r in reports[:-1]]
    assert losses == sorted(losses, reverse=True)  # more boosting rounds every epoch
    assert final["val/accuracy"] >= 0.8
    # the trees are kept whole: nothing was pruned away
    assert final["model/nonzero_params"] > 0
    assert final["model/params"] == final["model/params_before_pruning"]
    assert saved["record"]["not_applied"] == ["augmentation 'noise'",
                                              "pruner 'magnitude' (and fine-tuning)"]
    assert saved["test_proba"].shape == (len(data.x_test), 3)


@pytest.mark.slow
def test_tree_search_exports_in_every_format(tmp_path):
    import automl
    from automl.export import export_model
    from automl.store import Store
    from tests.conftest import optional_module

    path = tmp_path / "trees.yaml"
    path.write_text("name: trees\nseed: 2\ndataset: breast_cancer\n"
                    "architecture: {hist_gbt: {iterations: 30}, linear: {}}\n"
                    "validation: {kfold: {folds: 3}}\n"
                    "training: {epochs: 3, fine_tune_epochs: 0, lr: 0.01}\n"
                    "search: {num_trials: 4, sampler: random, early_stopping: none}\n")
    db = f"sqlite:///{tmp_path / 'automl.db'}"
    assert automl.run(str(path), db=db, artifacts=str(tmp_path / "runs")).status == "completed"
    with Store(db, create=False) as store:
        record = store.experiment("trees")
    trees = [t for t in record.trials if t.params["architecture"] == "hist_gbt"
             and t.status == "completed"]
    assert trees, "the random sampler picked no tree trial"
    formats = ["native", "torchscript"]
    try:
        optional_module("onnxruntime")
        formats.append("onnx")
    except pytest.skip.Exception:
        pass
    for form in formats:
        out = export_model(record, tmp_path / form, trial=trees[0].number, format=form)
        manifest = json.loads((out / "model.json").read_text())
        assert manifest["check"]["max_abs_proba_diff"] <= 1e-4
        assert manifest["architecture"] == "hist_gbt" and manifest["folds"] == 3
        predicted = automl.load_model(out).predict_proba(
            _raw_test_rows(record.seed)).argmax(1)
        assert predicted.tolist() == _eager_test_proba(trees[0]).argmax(1).tolist()


def _raw_test_rows(seed: int):
    from sklearn.datasets import load_breast_cancer

    from tests.test_predict_raw import test_indices

    frame = load_breast_cancer(as_frame=True).frame
    return frame.iloc[test_indices(len(frame), frame["target"].to_numpy(), seed=seed)].drop(
        columns=["target"])


def _eager_test_proba(trial):
    from automl.trial.artifacts import read_predictions

    return read_predictions(trial.checkpoint)["test_proba"]
