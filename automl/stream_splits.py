"""A streamed dataset's fixed splits: row indices and targets on the driver, inputs in the files.

:func:`split_streamed` splits a :class:`~automl.components.Streamed` by row index (from the
experiment seed, as the task splits in-memory data: the split never depends on reading an input)
and, for tabular inputs, fits the standardisation on the training rows in one streaming pass
(:func:`fit_streaming`: per-feature running mean and variance, the categorical codes seen).
The driver holds per row one index and one target, never an input.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from dataclasses import dataclass, field, replace

import numpy as np

from automl.components import DataSpec, DataSplits, ExampleReader, Streamed
from automl.preprocessing import (
    MEAN, NUMERIC, ONEHOT_CODES, ONEHOT_COLUMNS, ONEHOT_SIZES, STD, standardise,
)

#: rows read at once by the fitting pass and by prediction when the reader has no larger chunks
READ_ROWS = 4096


@dataclass
class StreamedSplits:
    """The :class:`~automl.components.DataSplits` of a streamed dataset: rows, not inputs."""

    reader: ExampleReader
    rows_train: np.ndarray
    y_train: np.ndarray
    rows_val: np.ndarray
    y_val: np.ndarray
    rows_test: np.ndarray
    y_test: np.ndarray
    spec: DataSpec
    fitted: dict[str, np.ndarray] = field(default_factory=dict)
    workers: int = 0  # DataLoader processes decoding batches in a trial

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.y_train), "val": len(self.y_val), "test": len(self.y_test)}

    def test_sample(self, rows: int) -> DataSplits:
        """The first ``rows`` rows of the test split read into memory (standardised as the
        trials saw them) as a :class:`DataSplits` with empty training and validation splits:
        what an export checks its converted model on."""
        picked = self.rows_test[:rows]
        x = self.reader.read(picked)
        x = standardise(x, self.fitted) if self.fitted else x
        empty_x, empty_y = x[:0], self.y_test[:0]
        return DataSplits(empty_x, empty_y, empty_x, empty_y, x, self.y_test[:rows], self.spec,
                          self.fitted)


def split_streamed(streamed: Streamed, task: Any, val: float, test: float, seed: int
                   ) -> StreamedSplits:
    """Split by row index as ``task.split`` says, each split's rows sorted (read in file order)."""
    y = streamed.targets
    parts = [np.sort(np.asarray(rows, dtype=np.int64))
             for rows in task.split(y, streamed.spec, val, test, seed)]  # type: ignore[attr-defined]
    return StreamedSplits(streamed.reader, parts[0], y[parts[0]], parts[1], y[parts[1]],
                          parts[2], y[parts[2]], streamed.spec)


def chunks(reader: ExampleReader, rows: np.ndarray, size: int = READ_ROWS
           ) -> Iterator[np.ndarray]:
    """The inputs of ``rows`` (sorted), read ``max(size, reader.chunk_rows)`` rows at a time."""
    step = max(size, int(reader.chunk_rows))
    for start in range(0, len(rows), step):
        yield reader.read(rows[start:start + step])


def fit_streaming(reader: ExampleReader, rows: np.ndarray, categorical: list[int],
                  rows_per_read: int = READ_ROWS) -> dict[str, np.ndarray]:
    """What :func:`automl.preprocessing.fit_tabular` fits, in one pass over ``rows``: the
    numeric features' mean and (population) std merged chunk by chunk in float64 (Chan et al.),
    and the codes each categorical feature holds. Same keys and meaning; the values equal the
    in-memory fit's up to float rounding."""
    count, mean, m2 = 0, None, None
    codes: list[set[float]] = [set() for _ in categorical]
    numeric: np.ndarray | None = None
    for x in chunks(reader, rows, rows_per_read):
        if numeric is None:
            numeric = np.asarray([i for i in range(x.shape[1]) if i not in categorical],
                                 dtype=np.int64)
        values = x[:, numeric].astype(np.float64)
        n = len(values)
        chunk_mean = values.mean(axis=0)
        chunk_m2 = ((values - chunk_mean) ** 2).sum(axis=0)
        if mean is None:
            count, mean, m2 = n, chunk_mean, chunk_m2
        else:
            delta = chunk_mean - mean
            total = count + n
            mean = mean + delta * n / total
            m2 = m2 + chunk_m2 + delta ** 2 * count * n / total
            count = total
        for seen, column in zip(codes, categorical):
            seen.update(np.unique(x[:, column][x[:, column] >= 0]).tolist())
    assert mean is not None and m2 is not None and numeric is not None, "no training rows"
    std = np.sqrt(m2 / count)
    std[std == 0] = 1.0
    fitted = {MEAN: mean[None, :].astype(np.float32), STD: std[None, :].astype(np.float32)}
    if not categorical:
        return fitted
    kept = [np.asarray(sorted(c), dtype=np.float32) for c in codes]
    return {**fitted, NUMERIC: numeric,
            ONEHOT_COLUMNS: np.asarray(categorical, dtype=np.int64),
            ONEHOT_CODES: np.concatenate(kept) if kept else np.empty(0, np.float32),
            ONEHOT_SIZES: np.asarray([len(c) for c in kept], dtype=np.int64)}


def standardise_streamed(splits: StreamedSplits, categorical: list[int]) -> StreamedSplits:
    """Fit the tabular standardisation on the training rows (one pass); the workers apply it to
    every batch they read. The spec's input shape becomes the standardised width."""
    fitted = {**splits.fitted, **fit_streaming(splits.reader, splits.rows_train, categorical)}
    width = standardise(splits.reader.read(splits.rows_train[:1]), fitted).shape[1:]
    spec = splits.spec
    if tuple(width) != tuple(spec.input_shape):
        spec = replace(spec, input_shape=tuple(width))
    return replace(splits, fitted=fitted, spec=spec)


def check_streamable(architectures: Any, registry: Any, strategies: Any = (),
                     distills: bool = False) -> None:
    """Refuse, before the search, an architecture that fits itself on arrays in memory
    (``trains_itself``), a training strategy that does not declare ``streams`` and the
    distillation stage (its teacher predicts the whole training split at once): a streamed
    dataset's inputs are only read a batch at a time."""
    from automl.errors import ConfigError

    for name in strategies:
        entry = registry.get("strategy", name)
        if not getattr(entry.cls, "streams", False):
            raise ConfigError(f"strategy '{name}' (plugin '{entry.plugin}') does not train on a "
                              "streamed dataset; remove it or set dataset.cache: memory",
                              path="strategy")
    if distills:
        raise ConfigError("the distillation stage needs the training split in memory (its "
                          "teacher predicts every training row); set dataset.cache: memory",
                          path="distillation")

    for name in architectures:
        entry = registry.get("architecture", name)
        if getattr(entry.cls, "trains_itself", False):
            raise ConfigError(f"architecture '{name}' (plugin '{entry.plugin}') fits itself on "
                              "the whole training split in memory and cannot train on a streamed "
                              "dataset; remove it or set dataset.cache: memory",
                              path="architectures")
