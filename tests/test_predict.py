"""Raw inputs for prediction: what a file must hold, and one clear error for each way it does not.

Fast tests on the reading and checking layers (:mod:`automl.raw_inputs`, the datasets' ``encode``,
:mod:`automl.preprocessing`) and on loading something that is not a current automl export; the
whole path through a real export is in tests/test_predict_raw.py.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import automl
from automl.errors import ConfigError
from automl.export import FORMAT_VERSION
from automl.preprocessing import Preprocessing, fit_standardisation, load, save, standardise
from automl.raw_inputs import open_input
from automl_plugins.datasets.image_folder import ImageFolder
from automl_plugins.datasets.sklearn_datasets import BreastCancer, Digits
from automl_plugins.datasets.tabular_file import TabularFile

TABLE = Preprocessing("table", {"columns": ["a", "b"], "label_column": "y"})
TEXTS = Preprocessing("texts", {"text_column": "text", "label_column": "label",
                                "max_length": 8})


def csv(tmp_path, frame, name="in.csv"):
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def rows(source, batch_size=2):
    return list(source.batches(batch_size))


def test_a_table_is_read_in_batches_with_its_id_column(tmp_path):
    frame = pd.DataFrame({"id": ["r1", "r2", "r3"], "b": [1.0, 2.0, 3.0], "a": [4, 5, 6],
                          "y": ["x", "y", "x"]})
    source = open_input(csv(tmp_path, frame), TABLE)
    assert source.id_name == "id" and source.total == 3
    batches = rows(source)
    assert [b.ids for b in batches] == [["r1", "r2"], ["r3"]]
    assert [b.first for b in batches] == [1, 3]
    assert list(batches[1].raw.index) == [3]  # data rows counted from 1
    x = TabularFile().encode(TABLE, batches[0].raw)
    np.testing.assert_array_equal(x, np.array([[4, 1], [5, 2]], dtype=np.float32))

    frame.to_parquet(tmp_path / "in.parquet")
    parquet = open_input(tmp_path / "in.parquet", TABLE, id_column="id")
    assert parquet.total == 3 and [b.ids for b in rows(parquet)] == [["r1", "r2"], ["r3"]]


@pytest.mark.parametrize("frame, id_column, message", [
    (pd.DataFrame({"a": [1]}), None, r"in.csv: missing column\(s\) \['b'\]; the model needs the "
                                     r"columns \['a', 'b'\]"),
    (pd.DataFrame({"a": [1], "b": [2], "c": [3]}), None,
     r"in.csv: extra column\(s\) \['c'\] the model was not trained on"),
    (pd.DataFrame({"a": [1], "b": [2], "key": [3]}), "row_id", r"no id column 'row_id'"),
    (pd.DataFrame({"a": [], "b": []}), None, r"in.csv has a header but no data rows"),
])
def test_table_column_errors_name_the_file_and_the_columns(tmp_path, frame, id_column, message):
    with pytest.raises(ConfigError, match=message):
        open_input(csv(tmp_path, frame), TABLE, id_column)


def test_a_named_id_column_is_not_an_extra_column(tmp_path):
    source = open_input(csv(tmp_path, pd.DataFrame({"a": [1], "b": [2], "key": [7]})), TABLE,
                        id_column="key")
    assert source.id_name == "key" and rows(source)[0].ids == [7]


def test_wrong_dtype_and_missing_values_name_the_column_and_the_row(tmp_path):
    frame = pd.DataFrame({"a": ["1", "2", "x"], "b": [1.0, 2.0, 3.0]})
    batch = rows(open_input(csv(tmp_path, frame), TABLE), batch_size=10)[0]
    with pytest.raises(ConfigError, match=r"column 'a' must be numeric, found 'x' .* in row 3"):
        TabularFile().encode(TABLE, batch.raw)
    frame = pd.DataFrame({"a": [1.0, None], "b": [1.0, 2.0]})
    batch = rows(open_input(csv(tmp_path, frame), TABLE), batch_size=10)[0]
    with pytest.raises(ConfigError, match=r"column 'a' is missing or infinite in row 2"):
        TabularFile().encode(TABLE, batch.raw)
    with pytest.raises(ConfigError, match=r"column 'a' must be numeric, found True"):
        TabularFile().encode(TABLE, pd.DataFrame({"a": [True], "b": [1.0]}))


def test_empty_unreadable_and_misplaced_inputs(tmp_path):
    (tmp_path / "empty.csv").write_bytes(b"")
    with pytest.raises(ConfigError, match=r"empty.csv is empty"):
        open_input(tmp_path / "empty.csv", TABLE)
    with pytest.raises(ConfigError, match=r"no such file or folder: .*nope.csv"):
        open_input(tmp_path / "nope.csv", TABLE)
    with pytest.raises(ConfigError, match=r"is a folder; this model predicts from a CSV or "
                                          r"Parquet file \(the columns \['a', 'b'\]\)"):
        open_input(tmp_path, TABLE)
    (tmp_path / "bad.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(ConfigError, match=r"cannot read .*bad.parquet"):
        open_input(tmp_path / "bad.parquet", TABLE)
    images = Preprocessing("images", {"size": 8, "mode": "L"})
    with pytest.raises(ConfigError, match=r"is not a folder; this model predicts from a folder"):
        open_input(tmp_path / "empty.csv", images)
    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "notes.txt").write_text("not an image")
    with pytest.raises(ConfigError, match=r"imgs holds no image files"):
        open_input(tmp_path / "imgs", images)


def test_image_inputs_are_found_recursively_and_encoded_like_training(tmp_path):
    from PIL import Image

    for name in ("b/2.png", "a/1.png", "0.jpg"):
        path = tmp_path / "imgs" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((10, 12, 3), 200, dtype=np.uint8)).save(path)
    prep = ImageFolder().preprocessing({"size": 8, "grayscale": True}, None)
    source = open_input(tmp_path / "imgs", prep)
    assert source.id_name == "file" and source.total == 3
    batch = rows(source, batch_size=5)[0]
    assert batch.ids == ["0.jpg", "a/1.png", "b/2.png"]
    x = ImageFolder().encode(prep, batch.raw)
    assert x.shape == (3, 1, 8, 8) and x.dtype == np.float32
    (tmp_path / "imgs" / "a" / "1.png").write_bytes(b"broken")
    with pytest.raises(ConfigError, match=r"cannot read image .*1.png"):
        ImageFolder().encode(prep, batch.raw)


def test_text_inputs_need_the_text_column(tmp_path):
    frame = pd.DataFrame({"id": [1, 2], "text": ["hello", None], "label": ["a", "b"]})
    batch = rows(open_input(csv(tmp_path, frame), TEXTS))[0]
    assert batch.raw == ["hello", ""] and batch.ids == [1, 2]
    with pytest.raises(ConfigError, match=r"missing column\(s\) \['text'\]; the model needs a "
                                          r"text column 'text'"):
        open_input(csv(tmp_path, frame.rename(columns={"text": "body"})), TEXTS)


def test_sklearn_tables_encode_raw_rows_like_load_does():
    import sklearn.datasets

    params: dict = {}
    for dataset, loader in ((BreastCancer(), "load_breast_cancer"), (Digits(), "load_digits")):
        loaded = dataset.load(params)
        prep = dataset.preprocessing(params, loaded.spec)
        frame = getattr(sklearn.datasets, loader)(as_frame=True).frame
        encoded = dataset.encode(prep, frame.sample(frac=1.0, axis=1, random_state=0))
        np.testing.assert_array_equal(encoded, loaded.x)  # bit for bit
        assert encoded.dtype == loaded.x.dtype


def test_preprocessing_saves_arrays_without_pickle_and_keeps_files_inside(tmp_path):
    x = np.random.default_rng(0).normal(5, 2, (50, 3)).astype(np.float32)
    fitted = fit_standardisation(x)
    (tmp_path / "tok").mkdir()
    (tmp_path / "tok" / "vocab.txt").write_text("a\nb\n")
    prep = Preprocessing("texts", {"text_column": "t"}, fitted, {"tokenizer": str(tmp_path / "tok")})
    out = tmp_path / "export"
    out.mkdir()
    record = save(prep, out)
    assert json.loads(json.dumps(record)) == record
    back = load(record, out, "model.json")
    np.testing.assert_array_equal(standardise(x, back.arrays), standardise(x, fitted))
    assert (out / "preprocessing" / "tokenizer" / "vocab.txt").is_file()
    assert back.files["tokenizer"] == str((out / "preprocessing" / "tokenizer").resolve())
    with pytest.raises(ConfigError, match="outside the export directory"):
        load({**record, "files": {"tokenizer": "../tok"}}, out, "model.json")
    np.savez(out / "preprocessing.npz", standardise_mean=np.array([object()], dtype=object),
             standardise_std=np.ones(3))
    with pytest.raises(ConfigError, match="cannot read .*preprocessing.npz"):
        load(record, out, "model.json")  # an object array is never unpickled
    with pytest.raises(ValueError, match="input must be one of"):
        Preprocessing("audio")


def test_each_task_decides_what_a_prediction_reports():
    from automl.components import DataSpec
    from automl.plugin_manager import build_plugins, plugin_source
    from automl.prediction_output import TaskOutput

    registry = build_plugins(plugin_source([])).registry
    proba = np.array([[0.9, 0.1], [0.2, 0.8]], dtype=np.float32)
    classes = TaskOutput(registry.create("task", "classification"),
                         DataSpec("tabular", (3,), 2, ("cat", "dog")))
    assert list(classes.table(proba)) == ["prediction", "proba_cat", "proba_dog"]
    assert list(classes.labels(proba)) == ["cat", "dog"]
    labels = TaskOutput(registry.create("task", "multilabel"),
                        DataSpec("tabular", (3,), 0, task="multilabel", target_names=("a", "b")))
    assert list(labels.table(proba)) == ["a", "b", "proba_a", "proba_b"]
    assert labels.labels(proba).tolist() == [[1, 0], [0, 1]]
    values = TaskOutput(registry.create("task", "regression"),
                        DataSpec("tabular", (3,), 0, task="regression", target_names=("price",)))
    assert list(values.table(proba[:, :1])) == ["price"]
    assert values.labels(proba[:, :1]).tolist() == pytest.approx([0.9, 0.2])


def test_not_an_export_and_a_newer_export_are_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"is not an automl model export \(no model.json\)"):
        automl.load_model(tmp_path)
    with pytest.raises(ConfigError, match=r"no such export"):
        automl.load_model(tmp_path / "missing")
    (tmp_path / "rows.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ConfigError, match=r"rows.csv is a file, not an automl model export"):
        automl.load_model(tmp_path / "rows.csv")
    (tmp_path / "model.json").write_text('{"format": "something-else"}')
    with pytest.raises(ConfigError, match=r"is not an automl model manifest"):
        automl.load_model(tmp_path)
    (tmp_path / "model.json").write_text(json.dumps({
        "format": "automl-model", "format_version": FORMAT_VERSION + 1,
        "automl_version": "9.0.0"}))
    with pytest.raises(ConfigError, match=r"written by a newer automl \(9.0.0, format version "
                                          rf"{FORMAT_VERSION + 1}\).*upgrade automl"):
        automl.load_model(tmp_path)


def test_predict_cli_errors_without_a_traceback(tmp_path, automl_cmd):
    import subprocess

    (tmp_path / "model.json").write_text(json.dumps({
        "format": "automl-model", "format_version": FORMAT_VERSION + 1}))
    (tmp_path / "in.csv").write_text("a,b\n1,2\n")
    done = subprocess.run([*automl_cmd, "predict", str(tmp_path), str(tmp_path / "in.csv"),
                           "-o", str(tmp_path / "out.csv")], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and "newer automl" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "out.csv").exists()
