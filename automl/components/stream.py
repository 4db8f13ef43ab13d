"""A dataset too large for memory: its inputs read on demand, by row, where they are used.

A dataset plugin that can stream implements :meth:`automl.components.Dataset.stream` and returns
a :class:`Streamed`: every row's target (small: one label or a few values per example, read on
the driver, which splits them), the :class:`DataSpec`, and an :class:`ExampleReader`, the
picklable object a trial worker gets, which reads the *inputs* of given rows (decodes image files,
reads Parquet row groups). The driver never holds the inputs and nothing the size of the dataset
passes through Ray's object store: the reader holds file names or a path, not examples.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from automl.components.dataset import DataSpec


class ExampleReader(ABC):
    """Reads a dataset's inputs by row index (rows ``0 .. len(self) - 1``).

    It is pickled to every trial worker, so it must hold references (paths, file names), not
    examples, and open its files lazily in the process that reads. It reads inputs only: the
    targets stay with the driver, so a worker cannot read the test split's labels through it.
    """

    #: how many consecutive rows are read together at no extra cost (1: any row is as cheap as
    #: any other, e.g. one file per example; a Parquet file: its row groups' size). automl shuffles
    #: the training rows by blocks of this many rows and reads a block at a time.
    chunk_rows: int = 1

    @abstractmethod
    def __len__(self) -> int:
        """The number of rows (examples)."""

    @abstractmethod
    def read(self, rows: np.ndarray) -> np.ndarray:
        """The model inputs of ``rows`` (sorted ascending, int64), in that order, exactly as the
        dataset's ``encode`` makes them from raw inputs (N x ... float32, or int64 token ids).
        Raise :class:`automl.errors.ConfigError` naming the file or row for unusable input."""


@dataclass
class Streamed:
    """What :meth:`automl.components.Dataset.stream` returns.

    Args:
        reader: reads the inputs of any rows (shipped to the trial workers).
        targets: every row's target, in row order (int64 class indices, or float32 values).
        spec: the data spec, as :meth:`~automl.components.Dataset.load` would make it.
    """

    reader: ExampleReader
    targets: np.ndarray
    spec: DataSpec
