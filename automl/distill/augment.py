"""Synthetic inputs for the students' transfer set (``distillation.augment``).

A student learns the teacher's function best where it sees the teacher's answers, and the
training split alone shows it few points: Bucila et al. 2006 (MUNGE) and Fakoor et al. 2020
(AutoGluon's augmented distillation) add synthetic rows near the training data, which the
teacher labels. This module makes those rows from the training *inputs* only (no label, no
validation or test row is read); :mod:`automl.distill.stage` has the teacher predict them, as it
predicts the training inputs.

* ``munge``: MUNGE as AutoGluon's ``munge_augment`` does it for numeric features: synthetic row
  ``k`` starts from training row ``i = k mod n``; each feature, with probability ``p`` (0.5), is
  replaced by the value of ``i``'s nearest neighbour (euclidean, on standardised features) plus
  Gaussian noise of standard deviation ``|x_i - x_neighbour| / s`` (``s`` = 1).
* ``mixup``: ``lam * x_i + (1 - lam) * x_j`` with ``j`` a random training row and
  ``lam ~ Beta(0.4, 0.4)`` folded to ``max(lam, 1 - lam)`` (Zhang et al. 2018's mixing, on inputs
  only: the teacher gives the label).

Both act on the flattened example (image pixels alike) and keep the input dtype; token ids
(``text`` data) cannot be perturbed, and :func:`check_augmentable` refuses them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from automl.errors import ConfigError

METHODS = ("none", "munge", "mixup")
#: MUNGE's swap probability and noise divisor (AutoGluon's defaults)
MUNGE_P, MUNGE_S = 0.5, 1.0
#: mixup's Beta(a, a) parameter
MIXUP_ALPHA = 0.4


def synthetic_count(rows: int, size: float) -> int:
    """How many synthetic rows ``size`` (a multiple of the training rows) gives."""
    return int(round(rows * size))


def check_augmentable(method: str, x: Any, kind: str) -> None:
    """Refuse inputs the method cannot perturb (token ids), naming the YAML field."""
    if method == "none":
        return
    if not isinstance(x, np.ndarray):
        raise ConfigError(f"'{method}' needs the training inputs in memory; this dataset "
                          "streams them; use method: none", path="distillation.augment.method")
    if kind == "text" or not np.issubdtype(x.dtype, np.floating):
        raise ConfigError(f"'{method}' makes synthetic rows by moving feature values, which "
                          f"{kind} inputs ({x.dtype} values) do not allow; use method: none",
                          path="distillation.augment.method")
    if len(x) < 2:
        raise ConfigError(f"'{method}' needs at least 2 training rows, the training split has "
                          f"{len(x)}", path="distillation.augment.method")


def synthetic_inputs(method: str, x: np.ndarray, size: float, seed: int) -> np.ndarray:
    """``synthetic_count(len(x), size)`` synthetic rows made from ``x`` (deterministic for a
    seed); an empty array for ``none``."""
    if method == "none":
        return x[:0].copy()
    if method not in METHODS:
        raise ValueError(f"unknown augmentation method {method!r}")
    rng = np.random.default_rng(seed)
    flat = x.reshape(len(x), -1).astype(np.float64)
    count = synthetic_count(len(x), size)
    make = _munge if method == "munge" else _mixup
    out = make(flat, count, rng)
    return out.astype(x.dtype).reshape((count, *x.shape[1:]))


def _munge(x: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    from sklearn.neighbors import NearestNeighbors

    scale = x.std(axis=0)
    scaled = (x - x.mean(axis=0)) / np.where(scale > 0, scale, 1.0)
    # the nearest other row: the second of two neighbours (the first is the row itself, or an
    # identical copy, which is as good)
    neighbours = NearestNeighbors(n_neighbors=2).fit(scaled).kneighbors(
        scaled, return_distance=False)[:, 1]
    start = np.arange(count) % len(x)
    base, near = x[start], x[neighbours[start]]
    swap = rng.random(base.shape) < MUNGE_P
    moved = near + rng.normal(size=base.shape) * np.abs(base - near) / MUNGE_S
    return np.where(swap, moved, base)


def _mixup(x: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    start = np.arange(count) % len(x)
    other = rng.integers(0, len(x), size=count)
    lam = rng.beta(MIXUP_ALPHA, MIXUP_ALPHA, size=count)
    lam = np.maximum(lam, 1 - lam)[:, None]
    return lam * x[start] + (1 - lam) * x[other]
