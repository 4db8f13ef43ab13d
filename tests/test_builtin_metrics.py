"""Built-in metrics: classification scores against hand-computed values, CPU latency (its
contract, never its speed: benchmarks measure timings) and what each metric declares."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import f1_score, roc_auc_score
from torch import nn

from automl.components import DataSpec, EvalContext
from automl.errors import PluginError
from automl.plugin_manager import BUILTIN_PLUGINS, load_plugins
from automl.trial.evaluation import score

LATENCY = "automl_plugins.metrics.latency"


@pytest.fixture(scope="module")
def registry():
    return load_plugins([m for m in (LATENCY,) if m not in BUILTIN_PLUGINS],
                        autoload=False).registry


def ctx(y_true, proba, num_classes=None, model=None, kind="tabular", shape=(4,), split="val"):
    proba = np.asarray(proba, dtype=np.float32)
    spec = DataSpec(kind, shape, num_classes or proba.shape[1])
    return EvalContext(np.asarray(y_true), proba, model, spec, split)


def predicting(labels, num_classes):
    """Confident probabilities whose argmax is ``labels``."""
    proba = np.full((len(labels), num_classes), 0.1 / (num_classes - 1))
    proba[np.arange(len(labels)), labels] = 0.9
    return proba


def compute(registry, name, context):
    return registry.create("metric", name).compute(context)


@pytest.mark.parametrize("name, direction", [
    ("accuracy", "max"), ("balanced_accuracy", "max"), ("f1_macro", "max"), ("roc_auc", "max"),
    ("log_loss", "min"), ("latency_ms", "min"), ("latency64_ms", "min"),
])
def test_registered_with_direction(registry, name, direction):
    entry = registry.get("metric", name)
    assert entry.cls.direction == direction
    assert entry.cls.model_only == name.startswith("latency")
    assert entry.cls.description


# What the core learns from the declarations (it names no built-in metric itself).
DECLARED = {  # name: (model_only, recorded, aggregate, tie_breaker)
    "accuracy": (False, "always", "predictions", False),
    "log_loss": (False, "always", "predictions", True),
    "balanced_accuracy": (False, "on_request", "predictions", False),
    "f1_macro": (False, "on_request", "predictions", False),
    "roc_auc": (False, "on_request", "predictions", False),
    "params": (True, "always", "sum", False),
    "nonzero_params": (True, "always", "sum", False),
    "latency_ms": (True, "on_request", "sum", False),
    "latency64_ms": (True, "on_request", "sum", False),
}


@pytest.mark.parametrize("name", list(DECLARED))
def test_declarations(registry, name):
    cls = registry.get("metric", name).cls
    assert (cls.model_only, cls.recorded, cls.aggregate, cls.tie_breaker) == DECLARED[name]


# --- balanced accuracy -------------------------------------------------------------------------

def test_balanced_accuracy_hand_computed(registry):
    # recall of class 0 = 2/3, of class 1 = 1
    value = compute(registry, "balanced_accuracy", ctx([0, 0, 0, 1], predicting([0, 0, 1, 1], 2)))
    assert value == pytest.approx(5 / 6)


def test_balanced_accuracy_with_a_class_missing_from_the_split(registry):
    # class 2 has no example: it has no recall and is left out; predicting it still costs
    value = compute(registry, "balanced_accuracy", ctx([0, 0, 0, 1], predicting([0, 0, 1, 1], 3)))
    assert value == pytest.approx(5 / 6)
    value = compute(registry, "balanced_accuracy", ctx([0, 0, 0, 1], predicting([0, 2, 2, 1], 3)))
    assert value == pytest.approx((1 / 3 + 1) / 2)


# --- F1 ----------------------------------------------------------------------------------------

def test_f1_macro_hand_computed_and_matches_sklearn(registry):
    y_true, y_pred = [0, 0, 1, 1], [0, 1, 1, 1]
    value = compute(registry, "f1_macro", ctx(y_true, predicting(y_pred, 2)))
    assert value == pytest.approx((2 / 3 + 0.8) / 2)  # class 0: P=1 R=1/2; class 1: P=2/3 R=1
    rng = np.random.default_rng(0)
    y_true, y_pred = rng.integers(0, 4, 50), rng.integers(0, 4, 50)
    assert compute(registry, "f1_macro", ctx(y_true, predicting(y_pred, 4))) == pytest.approx(
        f1_score(y_true, y_pred, average="macro"))


def test_f1_macro_with_a_class_missing_from_the_split(registry):
    # class 2 neither occurs nor is predicted: a perfect model still scores 1
    assert compute(registry, "f1_macro", ctx([0, 1, 1], predicting([0, 1, 1], 3))) == 1.0
    # predicting the absent class is a false positive: its F1 is 0 and it counts
    value = compute(registry, "f1_macro", ctx([0, 0, 1, 1], predicting([0, 2, 1, 1], 3)))
    assert value == pytest.approx((2 / 3 + 1 + 0) / 3)


# --- log loss ----------------------------------------------------------------------------------

def test_log_loss_hand_computed(registry):
    proba = [[0.8, 0.2], [0.3, 0.7], [0.6, 0.4]]
    expected = -(math.log(0.8) + math.log(0.7) + math.log(0.4)) / 3
    assert compute(registry, "log_loss", ctx([0, 1, 1], proba)) == pytest.approx(expected, 1e-6)


def test_log_loss_clips_zero_probabilities_and_handles_a_missing_class(registry):
    value = compute(registry, "log_loss", ctx([0, 1], [[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]]))
    assert math.isfinite(value)
    assert value == pytest.approx(-math.log(1e-15) / 2, rel=1e-3)
    value = compute(registry, "log_loss", ctx([0, 0], [[0.5, 0.25, 0.25], [0.5, 0.5, 0.0]]))
    assert value == pytest.approx(math.log(2), rel=1e-6)


# --- ROC AUC -----------------------------------------------------------------------------------

def test_roc_auc_binary_uses_the_positive_class_column(registry):
    p1 = np.array([0.1, 0.4, 0.35, 0.8])  # positives 0.35 and 0.8 beat 3 of 4 negatives pairs
    value = compute(registry, "roc_auc", ctx([0, 0, 1, 1], np.stack([1 - p1, p1], axis=1)))
    assert value == pytest.approx(0.75)


MULTI_PROBA = [[0.7, 0.2, 0.1], [0.4, 0.5, 0.1], [0.2, 0.6, 0.2],
               [0.5, 0.3, 0.2], [0.1, 0.1, 0.8], [0.3, 0.3, 0.4]]
MULTI_Y = [0, 0, 1, 1, 2, 2]


def test_roc_auc_multiclass_is_one_vs_rest_macro(registry):
    # one-vs-rest pairs won (ties count half): class 0: 7/8, class 1: 6.5/8, class 2: 8/8
    value = compute(registry, "roc_auc", ctx(MULTI_Y, MULTI_PROBA))
    assert value == pytest.approx((7 + 6.5 + 8) / 24)
    assert value == pytest.approx(roc_auc_score(MULTI_Y, MULTI_PROBA, multi_class="ovr"))


def test_roc_auc_multiclass_with_a_class_missing_from_the_split(registry):
    # only classes 0 and 1 occur (class 2 has no one-vs-rest AUC and is left out):
    # class 0 scores 0.7, 0.4 vs 0.2, 0.5 -> 3/4; class 1 scores 0.6, 0.3 vs 0.2, 0.5 -> 3/4
    value = compute(registry, "roc_auc", ctx(MULTI_Y[:4], MULTI_PROBA[:4]))
    assert value == pytest.approx(3 / 4)
    value = compute(registry, "roc_auc", ctx([0, 0, 2, 2], MULTI_PROBA[:2] + MULTI_PROBA[4:]))
    assert value == pytest.approx((4 / 4 + 4 / 4) / 2)  # 0.7, 0.4 vs 0.1, 0.3; 0.8, 0.4 vs 0.1, 0.1


def test_roc_auc_with_one_class_is_a_clear_error(registry):
    metric = registry.get("metric", "roc_auc")
    with pytest.raises(ValueError, match="at least two classes"):
        metric.create().compute(ctx([1, 1, 1], MULTI_PROBA[:3]))
    with pytest.raises(PluginError, match="metric 'roc_auc'.*at least two classes"):
        score([("roc_auc", metric.create(), metric.plugin)], np.array([0, 0]),
              np.array([[0.6, 0.4], [0.3, 0.7]]), None, DataSpec("tabular", (4,), 2), "test")


def test_scores_through_the_evaluation_path_with_all_classes_absent_but_two(registry):
    names = ["accuracy", "balanced_accuracy", "f1_macro", "log_loss", "roc_auc"]
    metrics = [(n, registry.create("metric", n), registry.get("metric", n).plugin) for n in names]
    y = np.array([0, 3, 3, 0])
    proba = predicting(np.array([0, 3, 1, 0]), 5).astype(np.float32)
    out = score(metrics, y, proba, None, DataSpec("tabular", (4,), 5), "val")
    assert set(out) == {f"val/{n}" for n in names}
    assert all(math.isfinite(v) for v in out.values())
    assert out["val/accuracy"] == 0.75 and out["val/balanced_accuracy"] == 0.75


# --- latency -----------------------------------------------------------------------------------

def mlp(width: int, depth: int, features: int = 64) -> nn.Module:
    layers: list[nn.Module] = []
    for _ in range(depth):
        layers += [nn.Linear(features, width), nn.ReLU()]
        features = width
    return nn.Sequential(*layers, nn.Linear(features, 3))


@pytest.mark.parametrize("name", ["latency_ms", "latency64_ms"])
def test_latency_is_a_positive_time_and_restores_the_thread_count(registry, name):
    threads = torch.get_num_threads()
    for model in (mlp(8, 1).eval(), mlp(256, 2).eval()):
        value = compute(registry, name, ctx([0], [[1, 0, 0]], model=model, shape=(64,)))
        assert value > 0 and math.isfinite(value)
    assert torch.get_num_threads() == threads


def test_latency_on_images_and_text_and_training_mode_restored(registry):
    cnn = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Flatten(),
                        nn.Linear(4 * 6 * 6, 10))
    cnn.train()
    value = compute(registry, "latency_ms", ctx([0], [[1.0] + [0.0] * 9], model=cnn,
                                                 kind="image", shape=(1, 8, 8)))
    assert value > 0 and cnn.training and cnn[1].training
    text = nn.Sequential(nn.Embedding(200, 8, padding_idx=0), nn.Flatten(), nn.Linear(8 * 16, 2))
    value = compute(registry, "latency64_ms", ctx([0], [[1.0, 0.0]], model=text.eval(),
                                                   kind="text", shape=(16,)))
    assert value > 0 and not text.training
