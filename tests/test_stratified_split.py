"""The tasks' train/validation/test split in numpy arrays is scikit-learn's ``train_test_split``
row for row: the same rows in the same splits, in the same order, for every seed (a split made
before the change stays the split after it), and the same error where scikit-learn refuses."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.model_selection import train_test_split

from automl_plugins.tasks.classification import stratified_indices
from automl_plugins.tasks.stratified_split import train_test_positions


def sklearn_indices(y, val, test, seed, stratify_by):
    """The tasks' split as it was written before: scikit-learn, twice."""
    rest, test_idx = train_test_split(np.arange(len(y)), test_size=test, random_state=seed,
                                      stratify=stratify_by)
    rest_stratify = stratify_by[rest] if stratify_by is not None else None
    train_idx, val_idx = train_test_split(rest, test_size=val / (1 - test),
                                          random_state=seed + 1, stratify=rest_stratify)
    return train_idx, val_idx, test_idx


def labels(n, classes, dtype, seed=0):
    y = np.random.default_rng(seed).integers(0, classes, n)
    y[:3 * classes] = np.repeat(np.arange(classes), 3)  # every class at least 3 times
    return y.astype(dtype)


@pytest.mark.parametrize("n,classes", [(30, 2), (101, 3), (1000, 7), (5000, 60)])
@pytest.mark.parametrize("dtype", [np.int64, np.int8, np.uint16])
def test_the_split_is_scikit_learns_row_for_row(n, classes, dtype):
    y = labels(n, classes, dtype, seed=n)
    for seed in (0, 7):
        for val, test in ((0.15, 0.15), (0.1, 0.25), (0.3, 0.05)):
            want = sklearn_indices(y, val, test, seed, y)
            got = stratified_indices(y, val, test, seed, stratify_by=y)
            for w, g in zip(want, got):
                assert g.dtype == w.dtype
                np.testing.assert_array_equal(g, w)


def test_imbalanced_shifted_and_string_groups_and_no_groups_split_alike():
    rng = np.random.default_rng(3)
    skewed = rng.permutation(np.r_[np.zeros(900, int), np.ones(3, int), np.full(60, 7)])
    strings = np.array(["b", "a", "c"] * 40)
    for groups in (skewed, skewed - 5, strings, None):
        y = groups if groups is not None else np.zeros(120)
        for seed in range(3):
            want = sklearn_indices(y, 0.2, 0.2, seed, groups)
            got = stratified_indices(y, 0.2, 0.2, seed, stratify_by=groups)
            for w, g in zip(want, got):
                np.testing.assert_array_equal(g, w)


def test_what_scikit_learn_refuses_is_refused_with_its_message():
    y = labels(12, 4, np.int64)
    with pytest.raises(ValueError) as want:
        train_test_split(np.arange(12), test_size=0.1, random_state=0, stratify=y)
    with pytest.raises(ValueError) as got:
        train_test_positions(12, 0.1, 0, y)
    assert str(got.value) == str(want.value)
    lonely = np.r_[np.zeros(20, int), 1]
    with pytest.raises(ValueError, match="only 1 member"):
        train_test_positions(21, 0.2, 0, lonely)
