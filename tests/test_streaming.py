"""Streamed datasets (``dataset.cache: stream``): real image folders and Parquet files in
tmp_path, split by row index, standardised in one pass, read a batch at a time by the trial;
what the driver ships to the trials holds no example."""

from __future__ import annotations

import pickle
import subprocess

import numpy as np
import pandas as pd
import pytest
import torch

from automl.components import ExampleReader
from automl.config import parse_experiment
from automl.data import prepare_data
from automl.errors import ConfigError
from automl.plugin_manager import load_plugins
from automl.search_data import StreamedSearchSplits, separate
from automl.stream_splits import StreamedSplits
from automl.trial.stream_inputs import StreamInputs
from tests.test_datasets import registry, splits_for  # noqa: F401 (a fixture)




def image_folder(root, per_class=20, side=20, classes=("blue", "red")):
    from PIL import Image

    rng = np.random.default_rng(0)
    colours = {"red": (200, 30, 30), "blue": (30, 30, 200), "green": (30, 200, 30)}
    for cls in classes:
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = np.clip(np.array(colours[cls]) + rng.normal(0, 20, (side, side, 3)), 0, 255)
            Image.fromarray(pixels.astype(np.uint8)).save(root / cls / f"{i:05d}.png")
    return root


def parquet(path, n=600, row_group=50, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    frame = pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2] * 100 + 50,
                          "colour": rng.choice(["red", "green", "blue"], n),
                          "target": np.where(x[:, 0] + x[:, 1] > 0, "yes", "no")})
    frame.to_parquet(path, row_group_size=row_group)
    return frame


IMAGES = "name: t\ndataset: {{name: image_folder, cache: {cache}, params: {{path: imgs, size: 8}}}}\n" \
         "architecture: cnn\n"
TABLE = "name: t\ndataset: {{name: csv, cache: {cache}, params: {{path: t.parquet, " \
        "target: target}}}}\narchitecture: mlp\n"


def test_streamed_image_folder_is_split_by_row_and_reads_what_load_reads(registry, tmp_path):
    image_folder(tmp_path / "imgs")
    memory = splits_for(registry, IMAGES.format(cache="memory"), tmp_path)
    streamed = splits_for(registry, IMAGES.format(cache="stream"), tmp_path)
    assert isinstance(streamed, StreamedSplits) and streamed.sizes() == memory.sizes()
    assert streamed.spec == memory.spec
    rows = np.concatenate([streamed.rows_train, streamed.rows_val, streamed.rows_test])
    assert sorted(rows) == list(range(40))  # a partition of the rows
    dataset = registry.create("dataset", "image_folder")
    loaded = dataset.load({"path": str(tmp_path / "imgs"), "size": 8, "grayscale": False})
    # the same rows the in-memory split takes, read from the files only now
    np.testing.assert_array_equal(np.sort(memory.y_test), np.sort(streamed.y_test))
    np.testing.assert_array_equal(streamed.reader.read(streamed.rows_val),
                                  loaded.x[streamed.rows_val])
    np.testing.assert_array_equal(streamed.y_train, loaded.y[streamed.rows_train])
    again = splits_for(registry, IMAGES.format(cache="stream"), tmp_path)  # fixed per seed
    np.testing.assert_array_equal(again.rows_test, streamed.rows_test)


def test_streamed_parquet_is_standardised_in_one_pass_like_in_memory(registry, tmp_path):
    frame = parquet(tmp_path / "t.parquet")
    memory = splits_for(registry, TABLE.format(cache="memory"), tmp_path)
    streamed = splits_for(registry, TABLE.format(cache="stream"), tmp_path)
    assert streamed.reader.chunk_rows == 50 and len(streamed.reader) == 600
    assert streamed.spec.input_shape == memory.spec.input_shape == (6,)  # 3 numeric + 3 one-hot
    assert set(streamed.fitted) == set(memory.fitted)
    for key, value in memory.fitted.items():
        np.testing.assert_allclose(streamed.fitted[key], value, rtol=1e-5, atol=1e-5)
    # a worker's read: rows across several row groups, standardised with the training fit
    inputs = StreamInputs(streamed.reader, streamed.rows_val, streamed.fitted)
    got = inputs[0:len(inputs)].numpy()
    labels = frame["target"].to_numpy()[streamed.rows_val]
    assert list(streamed.y_val) == [streamed.spec.class_names.index(v) for v in labels]
    # the same validation rows as in memory (there in split order, here in file order)
    np.testing.assert_allclose(np.sort(got, axis=0), np.sort(memory.x_val, axis=0), atol=1e-5)


@pytest.mark.parametrize("row_group", [50, 1])
def test_training_batches_cover_every_row_once_in_an_order_drawn_from_the_seed(tmp_path,
                                                                             registry,
                                                                             row_group):
    parquet(tmp_path / "t.parquet", n=300, row_group=row_group)
    splits = splits_for(registry, TABLE.format(cache="stream"), tmp_path)
    inputs = StreamInputs(splits.reader, splits.rows_train, splits.fitted)

    def epoch(seed, batch=32, workers=0):
        source = StreamInputs(splits.reader, splits.rows_train, splits.fitted, "cpu", workers)
        out = list(source.shuffled(batch, torch.Generator().manual_seed(seed)))
        return torch.cat([p for p, _ in out]).numpy(), torch.cat([x for _, x in out]).numpy()

    positions, x = epoch(0)
    assert len(positions) >= len(inputs) - 1 and len(set(positions)) == len(positions)
    np.testing.assert_allclose(x, inputs[0:len(inputs)].numpy()[positions], atol=1e-6)
    assert not (positions == np.sort(positions)).all()  # shuffled
    np.testing.assert_array_equal(epoch(0)[0], positions)  # the same seed, the same order
    assert not np.array_equal(epoch(1)[0], positions)
    np.testing.assert_array_equal(epoch(0, workers=1)[0], positions)  # decoded in a worker
    ordered = torch.cat(list(inputs.ordered(64))).numpy()
    np.testing.assert_allclose(ordered, inputs[0:len(inputs)].numpy())


def test_what_the_trials_receive_holds_no_example(registry, tmp_path):
    image_folder(tmp_path / "imgs", per_class=300, side=64)
    text = "name: t\ndataset: {name: image_folder, cache: stream, params: {path: imgs, " \
           "size: 64}}\narchitecture: cnn\n"
    data, labels = separate(splits_for(registry, text, tmp_path))
    assert isinstance(data, StreamedSearchSplits) and not hasattr(data, "y_test")
    examples_bytes = 600 * 3 * 64 * 64 * 4  # 29 MB of decoded pixels
    shipped = len(pickle.dumps(data))
    assert shipped < examples_bytes / 200, shipped  # file names, row indices, labels
    assert len(labels.read()) == data.sizes()["test"]  # the test labels stay on the driver
    memory = separate(splits_for(registry, text.replace("stream", "memory"), tmp_path))[0]
    assert len(pickle.dumps(memory)) > examples_bytes * 0.6  # today's in-memory path


def test_cache_auto_streams_above_the_limit_and_loads_below(registry, tmp_path):
    parquet(tmp_path / "t.parquet")
    assert not isinstance(splits_for(registry, TABLE.format(cache="auto"), tmp_path),
                          StreamedSplits)
    small_limit = TABLE.format(cache="auto").replace("cache: auto", "cache: auto, "
                                                     "cache_limit_mb: 0.001")
    assert isinstance(splits_for(registry, small_limit, tmp_path), StreamedSplits)


def test_what_cannot_stream_is_refused_with_the_field_named(registry, tmp_path):
    parquet(tmp_path / "t.parquet")
    pd.read_parquet(tmp_path / "t.parquet").to_csv(tmp_path / "t.csv", index=False)
    cases = [
        ("name: t\ndataset: {name: digits, cache: stream}\narchitecture: mlp\n",
         "dataset.cache", "cannot stream"),
        (TABLE.format(cache="stream").replace("t.parquet", "t.csv"), "dataset.cache",
         "only Parquet files stream"),
        (TABLE.format(cache="stream") + "validation: kfold\n", "validation", "k-fold"),
    ]
    for text, path, message in cases:
        with pytest.raises(ConfigError, match=message) as info:
            splits_for(registry, text, tmp_path)
        assert info.value.path == path, text
    frame = pd.read_parquet(tmp_path / "t.parquet")
    frame.loc[417, "b"] = np.nan
    frame.to_parquet(tmp_path / "t.parquet", row_group_size=50)
    with pytest.raises(ConfigError, match="row 418") as info:
        splits_for(registry, TABLE.format(cache="stream"), tmp_path)
    assert info.value.path == "dataset.params.path"


def test_a_self_fitting_architecture_is_refused_before_the_search(tmp_path, automl_cmd):
    parquet(tmp_path / "t.parquet")
    (tmp_path / "x.yaml").write_text(TABLE.format(cache="stream").replace("mlp", "hist_gbt"))
    done = subprocess.run([*automl_cmd, "run", "x.yaml"], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    assert done.returncode != 0 and "Traceback" not in done.stdout + done.stderr
    assert "hist_gbt" in done.stderr and "dataset.cache: memory" in done.stderr
    # Ray starts while the data loads; the refusal comes before any record is written
    assert "1 trial running" not in done.stdout and not (tmp_path / "automl.db").exists()


def test_the_search_hash_of_older_files_is_kept(registry):
    from automl.runner import search_hash

    text = "name: t\ndataset: digits\narchitecture: mlp\n"
    explicit = text.replace("dataset: digits", "dataset: {name: digits, cache: auto, "
                            "stream_workers: 2}")
    assert search_hash(parse_experiment(text)) == search_hash(parse_experiment(explicit))
    assert search_hash(parse_experiment(text)) != search_hash(
        parse_experiment(text.replace("dataset: digits", "dataset: {name: digits, "
                                      "cache: memory}")))


SEARCH = """
seed: 3
training: {epochs: 2, fine_tune_epochs: 0, lr: 0.01, batch_size: 32}
search: {num_trials: 2, sampler: random, early_stopping: none}
"""


@pytest.mark.slow
def test_run_export_and_predict_on_a_streamed_parquet_file(tmp_path, automl_cmd):
    import json

    frame = parquet(tmp_path / "t.parquet", n=800, row_group=100)
    (tmp_path / "x.yaml").write_text(
        "name: pq\ndataset: {name: csv, cache: stream, params: {path: t.parquet, "
        "target: target}}\narchitecture: {mlp: {depth: 1, width: 16}}\n" + SEARCH)

    def cli(*args):
        done = subprocess.run([*automl_cmd, *args], capture_output=True, text=True,
                              timeout=600, cwd=tmp_path)
        assert done.returncode == 0 and "Traceback" not in done.stderr, done.stdout + done.stderr
        return done.stdout

    assert "test/accuracy" in cli("run", "x.yaml")
    shown = json.loads(cli("show", "pq", "--json"))
    assert shown["experiment"]["status"] == "completed"
    assert shown["experiment"]["data_sizes"] == {"train": 480, "val": 160, "test": 160}
    cli("export", "pq", "--out", "export")
    cli("predict", "export", "t.parquet", "-o", "p.csv")
    predicted = pd.read_csv(tmp_path / "p.csv")["prediction"].astype(str).to_numpy()
    # the platform's own split of the rows: the test rows the final evaluation scored
    registry = load_plugins(autoload=False).registry
    splits = splits_for(registry, (tmp_path / "x.yaml").read_text(), tmp_path)
    rows = splits.rows_test
    accuracy = float((predicted[rows] == frame["target"].to_numpy()[rows]).mean())
    best = shown["final_evaluation"]["scored"][0]
    assert accuracy == pytest.approx(best["metrics"]["test/accuracy"], abs=1e-9)


@pytest.mark.slow
def test_run_on_a_streamed_image_folder_decoded_in_loader_workers(tmp_path, automl_cmd):
    import json

    image_folder(tmp_path / "imgs", per_class=40, side=12, classes=("blue", "green", "red"))
    (tmp_path / "x.yaml").write_text(
        "name: img\ndataset: {name: image_folder, cache: stream, stream_workers: 1, "
        "params: {path: imgs, size: 8}}\narchitecture: {cnn: {channels: 8, depth: 1}}\n"
        "augmentations: {shift: {}}\n" + SEARCH)
    done = subprocess.run([*automl_cmd, "run", "x.yaml"], capture_output=True, text=True,
                          timeout=600, cwd=tmp_path)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stdout + done.stderr
    shown = subprocess.run([*automl_cmd, "show", "img", "--json"], capture_output=True,
                           text=True, timeout=120, cwd=tmp_path)
    document = json.loads(shown.stdout)
    assert [t["status"] for t in document["trials"]] == ["completed", "completed"]
    assert document["final_evaluation"]["scored"][0]["metrics"]["test/accuracy"] > 0.9


class ArrayRows(ExampleReader):
    """A reader over an array in memory (what a plugin's reader returns, without files)."""

    def __init__(self, x):
        self.x = x

    def __len__(self):
        return len(self.x)

    def read(self, rows):
        return self.x[rows]


def test_the_one_pass_fit_merges_chunks_into_the_in_memory_fit():
    from automl.preprocessing import fit_tabular
    from automl.stream_splits import fit_streaming

    rng = np.random.default_rng(1)
    x = rng.normal(5, 3, size=(1000, 4)).astype(np.float32)
    x[:, 2] = rng.integers(-1, 6, size=1000)  # category codes, -1 missing
    x[:, 3] = 7.0  # constant: std 1
    rows = np.sort(rng.choice(1000, 700, replace=False))
    expected = fit_tabular(x[rows], [2])
    for per_read in (1, 7, 4096):
        got = fit_streaming(ArrayRows(x), rows, [2], rows_per_read=per_read)
        assert set(got) == set(expected)
        for key, value in expected.items():
            np.testing.assert_allclose(got[key], value, rtol=1e-5, atol=1e-5, err_msg=key)


def test_a_trial_trains_on_a_streamed_split_deterministically(registry, tmp_path):
    import dataclasses

    import optuna

    from automl.runner import prepare
    from automl.trial.context import TrialContext
    from automl.trial.trainable import train_and_evaluate

    parquet(tmp_path / "t.parquet", n=600, row_group=64)
    path = tmp_path / "x.yaml"
    path.write_text(TABLE.format(cache="stream").replace("architecture: mlp",
                                                         "architecture: {mlp: {depth: 1}}")
                    + "augmentations: {noise: {}}\ntraining: {epochs: 3, lr: 0.01}\n")
    prepared = prepare(path, db="sqlite://")
    data = separate(prepare_data(prepared.loaded.config, prepared.plugins.registry,
                                 prepared.loaded.base_dir))[0]
    context = TrialContext.for_experiment(
        prepared.loaded.config, [(o.metric, o.mode) for o in prepared.space.objectives],
        prepared.plugins.source, prepared.plugins.registry)
    context = dataclasses.replace(context, cpus=1, gpus=0, amp=False)
    trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0)).ask()
    constants = prepared.space.define(trial)
    params = {**trial.params, **constants}
    saved = {}

    def report(metrics, directory):
        if directory is not None:
            with np.load(directory / "predictions.npz") as predictions:
                saved.update({k: predictions[k] for k in predictions.files})

    first = train_and_evaluate(params, context, data, report)
    assert first["val/accuracy"] > 0.85
    np.testing.assert_array_equal(saved["val_y"], data.y_val)
    assert len(saved["test_proba"]) == len(data.rows_test)
    again = train_and_evaluate(params, context, data, lambda m, d: None)
    assert again["val/accuracy"] == first["val/accuracy"]
    assert again["val/log_loss"] == first["val/log_loss"]


def test_strategies_that_do_not_stream_and_distillation_are_refused(registry):
    from automl.stream_splits import check_streamable

    check_streamable(["mlp"], registry, ["standard"])  # the standard loop reads batches
    with pytest.raises(ConfigError, match="strategy 'federated'.*dataset.cache: memory") as info:
        check_streamable(["mlp"], registry, ["standard", "federated"])
    assert info.value.path == "strategy"
    with pytest.raises(ConfigError, match="distillation stage") as info:
        check_streamable(["mlp"], registry, [], distills=True)
    assert info.value.path == "distillation"


@pytest.mark.parametrize("labels", [["yes", "no", "maybe"], [3, -1, 10]])
def test_streamed_class_codes_are_the_in_memory_ones_read_batch_by_batch(tmp_path, labels,
                                                                         monkeypatch):
    from automl_plugins.datasets import parquet_stream
    from automl_plugins.datasets.tabular_file import encode_labels

    monkeypatch.setattr(parquet_stream, "PASS_ROWS", 64)  # several batches, classes spread
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"a": rng.normal(size=500),
                          "target": [labels[0]] * 100 + list(rng.choice(labels, 400))})
    frame.to_parquet(tmp_path / "t.parquet", row_group_size=90)
    streamed = parquet_stream.stream_parquet({"path": str(tmp_path / "t.parquet"),
                                              "target": "target"}, "classification")
    codes, names = encode_labels(frame["target"], "target")
    assert streamed.spec.class_names == names and streamed.targets.dtype == np.int64
    np.testing.assert_array_equal(streamed.targets, codes)
    frame["target"] = frame["target"].astype(object)
    frame.loc[321, "target"] = None  # a missing label in a later batch: its row in the file
    frame.to_parquet(tmp_path / "t.parquet", row_group_size=90)
    with pytest.raises(ConfigError, match="empty in data row 322"):
        parquet_stream.stream_parquet({"path": str(tmp_path / "t.parquet"),
                                       "target": "target"}, "classification")


def test_a_numeric_parquet_read_converts_in_numpy_what_the_pandas_path_encodes(tmp_path):
    from automl.preprocessing import Preprocessing
    from automl_plugins.datasets.parquet_stream import ParquetRows
    from automl_plugins.datasets.tabular_file import encode_table

    rng = np.random.default_rng(2)
    frame = pd.DataFrame({"f32": rng.normal(size=400).astype(np.float32),
                          "f64": rng.normal(size=400) * 1e3, "i64": rng.integers(-9, 9, 400),
                          "i8": rng.integers(0, 5, 400).astype(np.int8)})
    frame.to_parquet(tmp_path / "t.parquet", row_group_size=64)
    prep = Preprocessing("table", {"columns": list(frame.columns), "categories": {}})
    reader = ParquetRows(str(tmp_path / "t.parquet"), prep)
    rows = np.sort(rng.choice(400, 150, replace=False))
    got = reader.read(rows)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, encode_table(prep, frame.iloc[rows]))
    frame.loc[rows[7], "f64"] = np.inf  # not finite: the pandas path names the file's row
    frame.to_parquet(tmp_path / "t.parquet", row_group_size=64)
    message = f"column 'f64' is missing or infinite in row {rows[7] + 1}"
    with pytest.raises(ConfigError, match=message):
        ParquetRows(str(tmp_path / "t.parquet"), prep).read(rows)
    batches = StreamInputs(ParquetRows(str(tmp_path / "t.parquet"), prep), rows).shuffled(
        16, torch.Generator().manual_seed(0))
    with pytest.raises(ConfigError, match=message):  # raised in the read-ahead thread
        list(batches)
