"""What the search may see of the data, and the test labels it may not.

:func:`separate` splits a :class:`~automl.components.DataSplits` in two: a :class:`SearchSplits`
(training and validation examples with their labels, the test *inputs* without labels) that
goes to every trial worker, and a :class:`TestLabels` that the runner hands to the final
evaluation (:mod:`automl.evaluate`) only, after the search and the ensemble stage have returned.
A trial can predict on the test inputs (the ensemble and the final evaluation need those
predictions) but has no test label to score them with; its checkpoint holds none either.

A streamed dataset (:mod:`automl.stream_splits`) separates the same way into a
:class:`StreamedSearchSplits`: the input reader, each row's split, the training and validation
targets, no test targets (the reader reads inputs only).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from automl.components import DataSplits, DataSpec, ExampleReader, RawInputs
from automl.stream_splits import StreamedSplits


@dataclass(frozen=True, slots=True)
class SearchSplits:
    """The data a trial receives: no test labels (the class has no slot for them)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    spec: DataSpec
    #: raw training and validation inputs, for raw augmentations (datasets that keep them)
    raw: RawInputs | None = None

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.y_train), "val": len(self.y_val), "test": len(self.x_test)}


@dataclass(frozen=True, slots=True)
class StreamedSearchSplits:
    """A streamed dataset's :class:`SearchSplits`: rows to read, no inputs, no test labels.

    Shipped compactly, since it grows with the rows: one split code per row (0 train, 1
    validation, 2 test; each split's rows in file order) and the training and validation targets
    in the smallest integer type that holds them; the properties give them back as the trial uses
    them (int64 row indices, targets in their own dtype).
    """

    reader: ExampleReader
    split: np.ndarray  # uint8 per row
    compact_y_train: np.ndarray
    compact_y_val: np.ndarray
    target_dtype: str
    spec: DataSpec
    fitted: dict[str, np.ndarray]  # standardisation the workers apply to every batch read
    workers: int = 0

    @property
    def raw(self) -> None:
        """No raw inputs: a streamed dataset keeps none (raw augmentations are refused)."""
        return None

    @property
    def rows_train(self) -> np.ndarray:
        return np.flatnonzero(self.split == TRAIN).astype(np.int64)

    @property
    def rows_val(self) -> np.ndarray:
        return np.flatnonzero(self.split == VAL).astype(np.int64)

    @property
    def rows_test(self) -> np.ndarray:
        return np.flatnonzero(self.split == TEST).astype(np.int64)

    @property
    def y_train(self) -> np.ndarray:
        return self.compact_y_train.astype(self.target_dtype)

    @property
    def y_val(self) -> np.ndarray:
        return self.compact_y_val.astype(self.target_dtype)

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.compact_y_train), "val": len(self.compact_y_val),
                "test": int((self.split == TEST).sum())}

    @property
    def x_train(self) -> Any:
        """The training inputs as a lazily read sequence (a slice reads those rows)."""
        from automl.trial.stream_inputs import StreamInputs

        return StreamInputs(self.reader, self.rows_train, self.fitted)


TRAIN, VAL, TEST = 0, 1, 2


def _compact(y: np.ndarray) -> np.ndarray:
    """Integer targets in the smallest integer type holding them (others as they are)."""
    if not np.issubdtype(y.dtype, np.integer) or not len(y):
        return y
    return y.astype(np.promote_types(np.min_scalar_type(int(y.min())),
                                     np.min_scalar_type(int(y.max()))))


@dataclass(frozen=True, slots=True)
class TestLabels:
    """The test split's labels, for the final evaluation."""

    __test__ = False  # not a pytest test class

    y: np.ndarray

    def read(self) -> np.ndarray:
        """The labels (the one place they are read: :mod:`automl.evaluate`)."""
        return self.y


def separate(data: DataSplits | StreamedSplits
             ) -> tuple[SearchSplits | StreamedSearchSplits, TestLabels]:
    """The search's view of ``data`` and, apart from it, the test labels."""
    if isinstance(data, StreamedSplits):
        split = np.full(len(data.reader), 255, dtype=np.uint8)  # 255: in no split
        for code, rows in ((TRAIN, data.rows_train), (VAL, data.rows_val), (TEST, data.rows_test)):
            split[rows] = code
        return (StreamedSearchSplits(data.reader, split, _compact(data.y_train),
                                     _compact(data.y_val), data.y_train.dtype.str, data.spec,
                                     data.fitted, data.workers), TestLabels(data.y_test))
    return (SearchSplits(data.x_train, data.y_train, data.x_val, data.y_val, data.x_test,
                         data.spec, data.raw), TestLabels(data.y_test))
