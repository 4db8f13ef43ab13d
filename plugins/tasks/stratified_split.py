"""scikit-learn's stratified ``train_test_split`` in numpy arrays, for millions of rows.

:func:`train_test_positions` returns exactly what
``train_test_split(np.arange(n), test_size=..., random_state=seed, stratify=groups)`` returns
(the same rows, in the same order, from the same random draws), which the tasks have always
split with. scikit-learn's ``StratifiedShuffleSplit`` gathers each class's rows into a Python
list (about 40 bytes and a microsecond a row: 2.5 GB and over a minute for 34M rows); here they
stay in numpy arrays (8 bytes a row). A split scikit-learn would refuse (too few rows of a class,
sizes out of range) is left to scikit-learn, which raises its own error.
"""

from __future__ import annotations

from math import ceil

import numpy as np


def train_test_positions(n: int, test_size: float, seed: int, groups: np.ndarray | None = None
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Train and test positions of ``n`` rows, each of ``groups`` (one value per row) keeping
    its proportion in both; without groups, a plain shuffled split (scikit-learn's own)."""
    fast = groups is not None and groups.ndim == 1 and 0 < test_size < 1 and n > 0
    if fast:
        assert groups is not None
        n_test = ceil(test_size * n)
        n_train = n - n_test
        classes, codes, counts = _class_codes(groups)
        fast = counts.min() >= 2 and min(n_train, n_test) >= len(classes)
    if not fast:
        from sklearn.model_selection import train_test_split

        train, test = train_test_split(np.arange(n), test_size=test_size, random_state=seed,
                                       stratify=groups)
        return train, test
    from sklearn.utils import check_random_state
    from sklearn.utils.extmath import _approximate_mode

    # StratifiedShuffleSplit._iter_indices, draw for draw (scikit-learn 1.9)
    order = np.argsort(codes, kind="stable")
    del codes
    class_rows = np.split(order, np.cumsum(counts)[:-1])
    del order
    rng = check_random_state(seed)
    n_i = _approximate_mode(counts, n_train, rng)
    t_i = _approximate_mode(counts - n_i, n_test, rng)
    train_parts, test_parts = [], []
    for i in range(len(classes)):
        shuffled = class_rows[i].take(rng.permutation(counts[i]), mode="clip")
        train_parts.append(shuffled[:n_i[i]])
        test_parts.append(shuffled[n_i[i]:n_i[i] + t_i[i]].copy())  # frees ``shuffled`` later
    del class_rows, shuffled
    train = np.concatenate(train_parts)
    del train_parts
    test = np.concatenate(test_parts)
    rng.shuffle(train)  # in place: rng.permutation(a) is a shuffled copy, the same draws
    rng.shuffle(test)
    return train, test


def _class_codes(groups: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What ``np.unique(groups, return_inverse=True, return_counts=True)`` returns, the inverse
    in the smallest unsigned type (a stable argsort of it is then a radix sort); small integer
    groups are counted instead of sorted."""
    if groups.dtype.kind == "i" or (groups.dtype.kind == "u" and groups.dtype.itemsize < 8):
        low, high = int(groups.min()), int(groups.max())
        if high - low < 2 ** 16:
            shifted = groups - low if low else groups
            present = np.bincount(shifted, minlength=high - low + 1)
            keep = np.flatnonzero(present)
            remap = np.zeros(len(present), dtype=np.min_scalar_type(len(keep)))
            remap[keep] = np.arange(len(keep))
            return keep + low, remap[shifted], present[keep]
    classes, inverse, counts = np.unique(groups, return_inverse=True, return_counts=True)
    return classes, inverse.astype(np.min_scalar_type(len(classes))), counts
