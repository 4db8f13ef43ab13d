"""Tasks as plugins: regression end to end, targets checked per task, metrics and augmentations
that declare their tasks, and architectures that build the output size the task asks for."""

from __future__ import annotations

import json
import subprocess
import textwrap

import numpy as np
import pandas as pd
import pytest
import torch

from automl.components import EvalContext
from automl.config import parse_experiment
from automl.data import prepare_data
from automl.errors import ConfigError, PluginError
from automl.plugin_manager import plugin_source, rebuild_plugins
from automl.runner import prepare
from automl.trial.context import TrialContext
from automl.trial.trainable import train_and_evaluate
from tests.conftest import REPO, write_experiment

SOURCE = plugin_source([], autoload=False)
REGISTRY = rebuild_plugins(SOURCE).registry

MLP = {"architecture": "mlp", "architecture.mlp.depth": 1, "architecture.mlp.width": 32,
       "architecture.mlp.dropout": 0.0, "architecture.mlp.activation": "relu",
       "training.lr": 0.01, "training.batch_size": 32, "training.optimizer": "adam",
       "training.weight_decay": 1e-5, "training.momentum": 0.9, "training.label_smoothing": 0.0}


def regression_csv(tmp_path, rows: int = 120, seed: int = 0):
    """A table whose two targets are known functions of the three features."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 3))
    frame = pd.DataFrame(x, columns=["a", "b", "c"])
    frame["price"] = 1000 + 200 * x[:, 0] - 50 * x[:, 1] + rng.normal(0, 5, rows)
    frame["weight"] = 3 * x[:, 2] + 0.1 * rng.normal(size=rows)
    path = tmp_path / "houses.csv"
    frame.to_csv(path, index=False)
    return path, frame


def context(name: str, metrics: tuple[str, ...], objective=("rmse", "min"), epochs: int = 20
            ) -> TrialContext:
    return TrialContext(experiment=name, seed=0, plugins=SOURCE, objectives=(objective,),
                        metrics=metrics, epochs=epochs, fine_tune_epochs=0,
                        fine_tune_lr_factor=0.1, amp=False, eval_batch_size=256, cpus=1, gpus=0)


def test_diabetes_is_a_regression_dataset_split_the_same_way_for_a_seed():
    config = parse_experiment("name: d\ndataset: diabetes\narchitecture: mlp\n")
    a = prepare_data(config, REGISTRY)
    b = prepare_data(config, REGISTRY)
    assert a.spec.task == "regression" and a.spec.output_size == 1
    assert a.sizes() == {"train": 264, "val": 89, "test": 89}
    np.testing.assert_array_equal(a.y_test, b.y_test)
    # targets stay in their units; the scaling is fitted on the training split only
    scaling = a.spec.extra["target_scaling"]
    assert scaling["mean"][0] == pytest.approx(float(np.mean(a.y_train)), rel=1e-6)
    assert scaling["std"][0] == pytest.approx(float(np.std(a.y_train)), rel=1e-6)
    # every split spans the target's range (binned stratification)
    assert min(a.y_val) < 80 and max(a.y_val) > 250


def test_regression_scaling_round_trips():
    task = REGISTRY.create("task", "regression")
    config = parse_experiment("name: d\ndataset: diabetes\narchitecture: mlp\n")
    spec = prepare_data(config, REGISTRY).spec
    y = torch.tensor([25.0, 151.0, 346.0])
    standardised = task.training_targets(y, spec)
    assert abs(float(standardised.mean())) < 2 and standardised.shape == (3, 1)
    np.testing.assert_allclose(task.predict(standardised, spec).numpy()[:, 0], y.numpy(),
                               rtol=1e-5)



def final(document: dict, role: str) -> dict:
    """The test metrics ``show --json``'s final evaluation holds for the ``best`` trial or the
    ``ensemble`` (trials and ensemble records hold validation scores only)."""
    return next(s["metrics"] for s in document["final_evaluation"]["scored"] if role in s["roles"])


def run_trial(params, ctx, data, names):
    """One real trial on the search's data (no test labels), then its stored test predictions
    scored as the final evaluation scores them; returns the trial's metrics with those."""
    from automl.evaluate.stage import score
    from automl.search_data import separate
    from automl.trial.artifacts import read_predictions

    stored = []
    final = train_and_evaluate(params, ctx, separate(data)[0],
                               lambda m, d: stored.append(read_predictions(d)) if d else None)
    assert not any(k.startswith("test/") for k in final)  # trials score validation only
    test = score(REGISTRY, names, data.y_test, stored[-1]["test_proba"].astype(np.float64),
                 data.spec)
    return {**final, **test}, stored[-1]

def test_a_regression_trial_predicts_in_the_targets_units(tmp_path):
    path, frame = regression_csv(tmp_path)
    config = parse_experiment(textwrap.dedent(f"""
        name: houses
        dataset: {{name: csv, params: {{path: {path}, target: [price, weight], task: regression}}}}
        architecture: mlp
        """))
    data = prepare_data(config, REGISTRY)
    assert data.y_train.shape[1] == 2 and data.spec.output_size == 2
    assert data.spec.target_names == ("price", "weight")
    final, predictions = run_trial(MLP, context("houses", ("rmse", "mae", "r2", "params")), data,
                                   ["rmse", "r2"])
    assert {"val/rmse", "val/mae", "val/r2", "test/rmse", "test/r2", "model/params"} <= set(final)
    assert "val/accuracy" not in final and "val/log_loss" not in final
    assert final["test/r2"] > 0.8  # a linear signal, learned
    # rmse in the targets' units (price spread 200, weight spread 3): not a standardised error
    assert 1 < final["test/rmse"] < 100
    # the stored predictions are un-standardised
    test_pred = predictions["test_proba"]
    assert test_pred.shape == (len(data.y_test), 2)
    assert abs(test_pred[:, 0].mean() - frame["price"].mean()) < 50
    assert abs(test_pred[:, 1].std() - frame["weight"].std()) < 1.5


@pytest.mark.parametrize("yaml_text, expected", [
    ("dataset: diabetes\nobjectives: [accuracy]",
     "objectives[0].metric: metric 'accuracy' applies to ['classification'] targets, but the "
     "dataset's task is 'regression'"),
    ("dataset: diabetes\nrecord: [log_loss]", "record[0]: metric 'log_loss' applies to"),
    ("dataset: wine\nobjectives: [rmse]",
     "metric 'rmse' applies to ['regression'] targets, but the dataset's task is "
     "'classification'"),
    ("dataset: {name: csv, params: {path: x.csv, target: y, task: regresion}}",
     "dataset.params.task: unknown task 'regresion' (did you mean 'regression'?)"),
    ("dataset: wine\nobjectives: [hamming_loss]",
     "metric 'hamming_loss' applies to ['multilabel'] targets, but the dataset's task is "
     "'classification'"),
    ("dataset: diabetes\nensemble: {metric: accuracy}",
     "ensemble.metric: metric 'accuracy' applies to ['classification'] targets, but the "
     "dataset's task is 'regression'"),
])
def test_a_metric_of_another_task_is_a_config_error(tmp_path, yaml_text, expected):
    path = write_experiment(tmp_path, f"name: t\n{yaml_text}\narchitecture: mlp\n")
    with pytest.raises(ConfigError) as info:
        prepare(path, db="sqlite://")
    assert expected in str(info.value)


def test_the_default_objective_is_the_tasks(tmp_path):
    path = write_experiment(tmp_path, "name: t\ndataset: diabetes\narchitecture: mlp\n")
    space = prepare(path, db="sqlite://").space
    assert [(o.metric, o.mode) for o in space.objectives] == [("rmse", "min")]
    assert space.task == "regression" and space.tie_breakers == []
    assert set(space.recorded) == {"rmse", "mae", "r2", "params", "nonzero_params"}


AUGMENTATION_PLUGIN = '''
from automl.components import Augmentation


class LabelFlip(Augmentation):
    name = "label_flip"
    description = "swaps one-hot targets of two examples"
    tasks = ("classification",)

    def apply(self, x, y, params, generator):
        return x, y.flip(0)


def automl_register_augmentations(registrar):
    registrar.add(LabelFlip)
'''


def test_an_augmentation_of_another_task_is_a_config_error(tmp_path):
    (tmp_path / "flip.py").write_text(AUGMENTATION_PLUGIN)
    path = write_experiment(tmp_path, "name: t\nplugins: [flip.py]\ndataset: diabetes\n"
                                      "architecture: mlp\naugmentations: [label_flip]\n")
    with pytest.raises(ConfigError) as info:
        prepare(path, db="sqlite://")
    assert ("augmentations.label_flip: augmentation 'label_flip' applies to ['classification'] "
            "targets, but the dataset's task is 'regression'") in str(info.value)


LEGACY_PLUGIN = '''
from automl.components import Architecture


class Logits(Architecture):
    name = "logits"
    description = "written against the older contract: one logit per class"

    def build(self, params, spec):
        from torch import nn
        return nn.Sequential(nn.Flatten(), nn.Linear(spec.input_shape[0], spec.num_classes))


def automl_register_architectures(registrar):
    registrar.add(Logits)
'''


def test_an_architecture_written_for_class_logits(tmp_path):
    """Works unchanged for classification; for regression, the message says what to change."""
    from automl.trial.output_shape import check_output_shape

    (tmp_path / "logits.py").write_text(LEGACY_PLUGIN)
    registry = rebuild_plugins(plugin_source([str(tmp_path / "logits.py")], tmp_path,
                                             autoload=False)).registry
    for dataset, fits in (("wine", True), ("diabetes", False)):
        config = parse_experiment(f"name: t\ndataset: {dataset}\narchitecture: mlp\n")
        data = prepare_data(config, registry)
        model = registry.create("architecture", "logits").build({}, data.spec)
        batch = torch.as_tensor(data.x_train[:2])
        if fits:
            check_output_shape(model, batch, data.spec, "logits")
            continue
        with pytest.raises(PluginError) as info:
            check_output_shape(model, batch, data.spec, "plugin 'logits'")
        assert ("expected (2, 1) (1 outputs per example for the 'regression' task); the model "
                "builds spec.num_classes outputs (the contract for classification only): build "
                "spec.output_size outputs instead") in str(info.value)


def test_invalid_regression_targets_name_the_column_and_row(tmp_path):
    path, frame = regression_csv(tmp_path)
    frame.loc[6, "weight"] = np.nan
    frame.to_csv(path, index=False)
    config = parse_experiment(
        f"name: t\ndataset: {{name: csv, params: {{path: {path}, target: [price, weight], "
        "task: regression}}\narchitecture: mlp\n")
    with pytest.raises(ConfigError) as info:
        prepare_data(config, REGISTRY)
    assert "regression target 'weight' is missing or infinite in row 7" in str(info.value)
    frame["weight"] = "heavy"
    frame.to_csv(path, index=False)
    with pytest.raises(ConfigError) as info:
        prepare_data(config, REGISTRY)
    assert "target column(s) ['weight'] are not numeric" in str(info.value)


@pytest.mark.slow
def test_diabetes_regression_end_to_end(in_tmp, automl_cmd):
    """`automl run` on a regression experiment, then show, export and the export's predictions."""
    write_experiment(in_tmp, textwrap.dedent("""
        name: diabetes_small
        seed: 0
        dataset: diabetes
        architecture: {mlp: {depth: 1, width: {low: 16, high: 64}}}
        augmentations: {mixup: {}}
        training: {epochs: 8, fine_tune_epochs: 0, lr: 0.01}
        search: {num_trials: 4, sampler: random, early_stopping: none, max_concurrent: 2}
        """))
    run = subprocess.run([*automl_cmd, "run", "exp.yaml"], capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Traceback" not in run.stdout + run.stderr
    show = subprocess.run([*automl_cmd, "show", "diabetes_small", "--json"], capture_output=True,
                          text=True, timeout=120)
    document = json.loads(show.stdout)
    completed = [t for t in document["trials"] if t["status"] == "completed"]
    assert len(completed) == 4
    best = document["best"]
    # the best trial has the lowest validation rmse (mode min, the task's default objective)
    assert best["metrics"]["val/rmse"] == min(t["metrics"]["val/rmse"] for t in completed)
    assert 40 < final(document, "best")["test/rmse"] < 80 and final(document, "best")["test/r2"] > 0.2
    assert "val_check/rmse" in document["ensemble"]["scores"]["ensemble"]
    assert {"test/rmse", "test/r2"} <= set(final(document, "ensemble"))
    table = subprocess.run([*automl_cmd, "show", "diabetes_small"], capture_output=True,
                           text=True, timeout=120)
    assert table.returncode == 0 and "val/rmse" in table.stdout and "accuracy" not in table.stdout

    from automl.export import predict_proba

    config = parse_experiment("name: d\ndataset: diabetes\narchitecture: mlp\n")
    data = prepare_data(config, REGISTRY)
    for index, (args, key) in enumerate((
            (["--trial", str(best["number"])], final(document, "best")["test/rmse"]),
            (["--ensemble"], final(document, "ensemble")["test/rmse"]))):
        out = in_tmp / f"model{index}"
        export = subprocess.run([*automl_cmd, "export", "diabetes_small", *args, "--out",
                                 str(out)], capture_output=True, text=True, timeout=300)
        assert export.returncode == 0, export.stdout + export.stderr
        predicted = predict_proba(out, data.x_test)[:, 0]
        assert predicted.mean() > 100  # disease progression units, not standardised
        rmse = float(np.sqrt(np.mean((predicted - data.y_test) ** 2)))
        assert rmse == pytest.approx(key, rel=1e-4)  # un-standardised, as the trial scored it


def test_example_experiment_validates():
    prepared = prepare(REPO / "experiments" / "diabetes_regression.yaml", db="sqlite://")
    assert prepared.space.task == "regression"


def multilabel_csv(tmp_path, rows: int = 300):
    """scikit-learn's generated multi-label data written as a user's CSV file."""
    from sklearn.datasets import make_multilabel_classification

    x, y = make_multilabel_classification(n_samples=rows, n_features=8, n_classes=4,
                                          n_labels=2, random_state=0)
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(8)])
    labels = ["red", "green", "blue", "grey"]
    for j, name in enumerate(labels):
        frame[name] = y[:, j]
    path = tmp_path / "tags.csv"
    frame.to_csv(path, index=False)
    return path, frame, labels


def multilabel_config(path, labels, extra: str = ""):
    return parse_experiment(
        f"name: tags\ndataset: {{name: csv, params: {{path: {path}, target: {labels}, "
        f"task: multilabel}}}}\narchitecture: mlp\n{extra}")


def test_a_multilabel_trial_learns_every_label(tmp_path):
    path, frame, labels = multilabel_csv(tmp_path)
    data = prepare_data(multilabel_config(path, labels), REGISTRY)
    assert data.spec.task == "multilabel" and data.spec.output_size == 4
    assert data.y_train.shape[1] == 4
    metrics = ("f1_micro", "subset_accuracy", "hamming_loss", "f1_macro", "roc_auc")
    final, _ = run_trial(MLP, context("tags", metrics, ("f1_micro", "max")), data,
                         ["roc_auc", "f1_micro", "hamming_loss", "subset_accuracy"])
    assert final["test/roc_auc"] > 0.75 and final["test/f1_micro"] > 0.6
    assert 0 <= final["test/hamming_loss"] < 0.3
    assert final["test/subset_accuracy"] <= final["test/f1_micro"]


def test_multilabel_metrics_on_known_predictions():
    from automl.components import DataSpec

    spec = DataSpec("tabular", (2,), 0, task="multilabel", target_names=("a", "b", "c"),
                    output_size=3)
    y = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 1]])
    proba = np.array([[0.9, 0.2, 0.7], [0.1, 0.8, 0.6], [0.8, 0.3, 0.1], [0.2, 0.1, 0.9]])
    ctx = EvalContext(y, proba, None, spec, "val")

    def value(name):
        return REGISTRY.create("metric", name).compute(ctx)

    assert value("subset_accuracy") == 0.5       # rows 2 and 3 have one wrong label each
    assert value("hamming_loss") == 2 / 12
    assert value("f1_micro") == pytest.approx(2 * 5 / (2 * 5 + 1 + 1))  # tp 5, fp 1, fn 1
    assert value("f1_macro") == pytest.approx(np.mean([1.0, 2 / 3, 0.8]))
    assert value("roc_auc") == pytest.approx(np.mean([1.0, 1.0, 1.0]))


def test_invalid_multilabel_targets_name_the_label_and_row(tmp_path):
    path, frame, labels = multilabel_csv(tmp_path)
    frame.loc[11, "blue"] = 2
    frame.to_csv(path, index=False)
    with pytest.raises(ConfigError) as info:
        prepare_data(multilabel_config(path, labels), REGISTRY)
    assert "label 'blue' must be 0 or 1; row 12 has 2" in str(info.value)


@pytest.mark.slow
def test_multilabel_end_to_end(tmp_path, automl_cmd, monkeypatch):
    """`automl run` on generated multi-label data: best trial, ensemble and export agree."""
    monkeypatch.chdir(tmp_path)
    path, frame, labels = multilabel_csv(tmp_path)
    write_experiment(tmp_path, textwrap.dedent(f"""
        name: tags
        seed: 0
        dataset: {{name: csv, params: {{path: tags.csv, target: {labels}, task: multilabel}}}}
        architecture: {{mlp: {{depth: 1, width: {{low: 16, high: 64}}}}}}
        augmentations: {{mixup: {{}}}}
        training: {{epochs: 10, fine_tune_epochs: 0, lr: 0.01}}
        search: {{num_trials: 4, sampler: random, early_stopping: none, max_concurrent: 2}}
        """))
    run = subprocess.run([*automl_cmd, "run", "exp.yaml"], capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    document = json.loads(subprocess.run([*automl_cmd, "show", "tags", "--json"],
                                         capture_output=True, text=True, timeout=120).stdout)
    completed = [t for t in document["trials"] if t["status"] == "completed"]
    best = document["best"]
    assert best["metrics"]["val/f1_micro"] == max(t["metrics"]["val/f1_micro"] for t in completed)
    assert {"test/f1_micro", "test/subset_accuracy", "test/hamming_loss"} <= \
        set(final(document, "best"))
    assert "val_check/f1_micro" in document["ensemble"]["scores"]["ensemble"]
    scores = final(document, "ensemble")
    assert {"test/f1_micro", "test/hamming_loss"} <= set(scores)

    from automl.export import predict_proba

    data = prepare_data(multilabel_config(path, labels), REGISTRY)
    out = tmp_path / "model"
    export = subprocess.run([*automl_cmd, "export", "tags", "--ensemble", "--out", str(out)],
                            capture_output=True, text=True, timeout=300)
    assert export.returncode == 0, export.stdout + export.stderr
    proba = predict_proba(out, data.x_test)
    assert proba.shape == (len(data.y_test), 4) and proba.min() >= 0 and proba.max() <= 1
    f1 = REGISTRY.create("metric", "f1_micro").compute(
        EvalContext(data.y_test, proba, None, data.spec, "test"))
    assert f1 == pytest.approx(scores["test/f1_micro"], abs=1e-6)


def test_multilabel_example_experiment_validates():
    prepared = prepare(REPO / "experiments" / "multilabel_tags.yaml", db="sqlite://")
    assert prepared.space.task == "multilabel"


WINE_TARGETS = ("dataset: {name: wine, params: {targets: {kind: {column: target, task: "
                "classification}, alcohol: {column: alcohol, task: regression}}}}\n")


def test_multitask_data_holds_each_target_with_its_task():
    config = parse_experiment(f"name: mt\n{WINE_TARGETS}architecture: mlp\n")
    data = prepare_data(config, REGISTRY)
    assert data.spec.task == "multitask" and data.spec.output_size == 3 + 1
    assert "alcohol" not in data.spec.extra["feature_columns"] and data.x_train.shape[1] == 12
    kind, alcohol = data.spec.extra["targets"]
    assert kind["task"] == "classification" and kind["spec"]["num_classes"] == 3
    assert alcohol["spec"]["extra"]["target_scaling"]["mean"][0] == pytest.approx(
        float(data.y_train[:, 1].mean()), rel=1e-5)
    # the split is the classification split of the class column (stratified)
    single = prepare_data(parse_experiment("name: s\ndataset: wine\narchitecture: mlp\n"),
                          REGISTRY)
    np.testing.assert_array_equal(data.y_test[:, 0].astype(int), single.y_test)


@pytest.mark.parametrize("weighting", ["fixed", "uncertainty"])
def test_a_multitask_trial_learns_both_targets(weighting, tmp_path):
    path = write_experiment(tmp_path, f"name: mt\n{WINE_TARGETS}architecture: mlp\n"
                                      "objectives: [kind/accuracy, alcohol/rmse]\n")
    prepared = prepare(path, db="sqlite://")
    config = prepared.loaded.config
    data = prepare_data(config, REGISTRY)
    ctx = TrialContext.for_experiment(config, [(o.metric, o.mode)
                                               for o in prepared.space.objectives],
                                      SOURCE, REGISTRY)
    ctx = __import__("dataclasses").replace(ctx, epochs=30, fine_tune_epochs=0)
    assert set(ctx.metrics) == {"kind/accuracy", "alcohol/rmse", "kind/log_loss",
                                "alcohol/mae", "alcohol/r2", "params", "nonzero_params"}
    params = {**MLP, "training.lr": 0.005, "multitask.weighting": weighting}
    if weighting == "fixed":
        params.update({"multitask.weight.kind": 1.0, "multitask.weight.alcohol": 2.0})
    final, _ = run_trial(params, ctx, data, ["kind/accuracy", "alcohol/rmse"])
    assert final["test/kind/accuracy"] > 0.85
    assert final["test/alcohol/rmse"] < 0.75  # the alcohol column's spread is 0.81
    assert "test/accuracy" not in final and "model/params" in final


@pytest.mark.parametrize("yaml_text, expected", [
    ("objectives: [accuracy]", "objectives[0].metric: the dataset has several targets (kind, "
                               "alcohol); name the target a metric is scored on, e.g. "
                               "'kind/accuracy'"),
    ("objectives: [kind/rmse]", "metric 'rmse' applies to ['regression'] targets, but target "
                                "'kind''s task is 'classification'"),
    ("objectives: [colour/accuracy]", "'colour/accuracy' names target 'colour', but the dataset "
                                      "has targets kind, alcohol"),
    ("multitask: {weighting: learned}", "multitask.weighting: weighting 'learned' is not one of "
                                        "['fixed', 'uncertainty']"),
    ("multitask: {weights: {price: 2.0}}", "multitask.weights.price: unknown target 'price'"),
])
def test_multitask_config_errors(tmp_path, yaml_text, expected):
    path = write_experiment(tmp_path, f"name: mt\n{WINE_TARGETS}architecture: mlp\n{yaml_text}\n")
    with pytest.raises(ConfigError) as info:
        prepare(path, db="sqlite://")
    assert expected in str(info.value)


def test_multitask_loss_settings_on_a_single_target_dataset_are_an_error(tmp_path):
    path = write_experiment(tmp_path, "name: t\ndataset: wine\narchitecture: mlp\n"
                                      "multitask: {weighting: fixed}\n")
    with pytest.raises(ConfigError) as info:
        prepare(path, db="sqlite://")
    assert "multitask: the dataset has one target (task 'classification')" in str(info.value)


@pytest.mark.slow
def test_multitask_end_to_end(in_tmp, automl_cmd):
    """`automl run` with two targets: per-target metrics, ensemble per head, export."""
    write_experiment(in_tmp, textwrap.dedent(f"""
        name: mt
        seed: 0
        {WINE_TARGETS.strip()}
        objectives: [kind/accuracy, alcohol/rmse]
        architecture: {{mlp: {{depth: 1, width: {{low: 16, high: 64}}}}}}
        training: {{epochs: 15, fine_tune_epochs: 0, lr: 0.005}}
        search: {{num_trials: 4, sampler: random, early_stopping: none, max_concurrent: 2}}
        """))
    run = subprocess.run([*automl_cmd, "run", "exp.yaml"], capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    document = json.loads(subprocess.run([*automl_cmd, "show", "mt", "--json"],
                                         capture_output=True, text=True, timeout=120).stdout)
    completed = [t for t in document["trials"] if t["status"] == "completed"]
    assert len(completed) == 4
    assert {t["params"]["multitask.weighting"] for t in completed} <= {"fixed", "uncertainty"}
    scores = final(document, "ensemble")
    assert {"test/kind/accuracy", "test/alcohol/rmse", "test/kind/log_loss"} <= set(scores)

    from automl.export import predict_proba

    data = prepare_data(parse_experiment(f"name: mt\n{WINE_TARGETS}architecture: mlp\n"),
                        REGISTRY)
    best = document["best"]
    out = in_tmp / "model"
    export = subprocess.run([*automl_cmd, "export", "mt", "--trial", str(best["number"]),
                             "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert export.returncode == 0, export.stdout + export.stderr
    predicted = predict_proba(out, data.x_test)
    assert predicted.shape == (len(data.y_test), 4)  # 3 class probabilities, then alcohol
    np.testing.assert_allclose(predicted[:, :3].sum(axis=1), 1.0, rtol=1e-5)
    rmse = float(np.sqrt(np.mean((predicted[:, 3] - data.y_test[:, 1]) ** 2)))
    assert rmse == pytest.approx(final(document, "best")["test/alcohol/rmse"], rel=1e-4)


def test_multitask_example_experiment_validates():
    prepared = prepare(REPO / "experiments" / "wine_multitask.yaml", db="sqlite://")
    assert prepared.space.task == "multitask"
    assert [o.key for o in prepared.space.objectives] == ["val/kind/accuracy",
                                                          "val/alcohol/rmse"]
