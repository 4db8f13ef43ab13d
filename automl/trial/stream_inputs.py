"""The inputs a trial iterates over: tensors on the device, or a streamed split read in batches.

In-memory data arrives as arrays and becomes tensors on the device (as always). A streamed
dataset arrives as an :class:`~automl.components.ExampleReader` and row indices; a
:class:`StreamInputs` reads its batches in the worker through a torch ``DataLoader`` (with
``dataset.stream_workers`` decoding processes), applies what automl fitted on the training split
(tabular standardisation) per batch, and moves each batch to the device. The training loop
(:class:`~automl.trial.training.Trainer`) and :func:`~automl.trial.training.predict` take either.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from automl.components import ExampleReader
from automl.preprocessing import standardise
from automl.stream_splits import READ_ROWS


class StreamInputs:
    """One split's inputs, read on demand: ``len()``, a slice (``x[:8]``, rows in split order)
    as a tensor, ``to(device)``, shuffled training batches and in-order prediction batches."""

    def __init__(self, reader: ExampleReader, rows: np.ndarray,
                 fitted: dict[str, np.ndarray] | None = None, device: Any = "cpu",
                 workers: int = 0) -> None:
        self.reader = reader
        self.rows = np.asarray(rows, dtype=np.int64)
        self.fitted = fitted or {}
        self.device = torch.device(device)
        self.workers = int(workers)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: slice) -> torch.Tensor:
        if not isinstance(index, slice):
            raise TypeError("a streamed split is read by slices (x[start:stop])")
        return self._tensor(_read(self.reader, self.fitted, self.rows[index]))

    def to(self, device: Any) -> "StreamInputs":
        return StreamInputs(self.reader, self.rows, self.fitted, device, self.workers)

    def shuffled(self, batch_size: int, generator: torch.Generator
                 ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """``(positions, inputs)`` mini-batches over the split in an order drawn from
        ``generator``: any order when the reader reads single rows cheaply, else blocks of
        ``reader.chunk_rows`` rows in random order, shuffled within each read. A last batch of
        one row is skipped (it breaks batch norm)."""
        n = len(self.rows)
        chunk = max(1, int(self.reader.chunk_rows))
        if chunk == 1:
            order = _permutation(n, generator)
            units = [np.sort(order[s:s + batch_size]) for s in range(0, n, batch_size)]
            units = [u for u in units if len(u) >= 2 or n == 1]
            for positions, x in self._loader(units):
                yield self._tensor(positions), self._tensor(x)
            return
        blocks = self.rows // chunk
        starts = np.flatnonzero(np.r_[True, blocks[1:] != blocks[:-1]])
        ends = np.r_[starts[1:], n]
        per_read = max(1, -(-max(READ_ROWS, batch_size) // chunk))
        picked = _permutation(len(starts), generator)
        units = [np.sort(np.concatenate([np.arange(starts[b], ends[b]) for b in
                                         picked[s:s + per_read]]))
                 for s in range(0, len(picked), per_read)]
        for positions, x in self._loader(units):
            mix = _permutation(len(positions), generator)
            for s in range(0, len(mix), batch_size):
                idx = mix[s:s + batch_size]
                if len(idx) < 2 and n > 1:
                    continue
                yield self._tensor(positions[idx]), self._tensor(x[idx])

    def ordered(self, batch_size: int) -> Iterator[torch.Tensor]:
        """The split's inputs in row order, ``batch_size`` rows at a time (for predicting)."""
        n = len(self.rows)
        step = max(batch_size, int(self.reader.chunk_rows), READ_ROWS)
        units = [np.arange(s, min(s + step, n)) for s in range(0, n, step)]
        for _, x in self._loader(units):
            for s in range(0, len(x), batch_size):
                yield self._tensor(x[s:s + batch_size])

    def _loader(self, units: list[np.ndarray]) -> Any:
        """The units read in order: by ``workers`` loader processes, or (none) one read ahead
        in a thread of this process, so that the next read overlaps this one's training."""
        from torch.utils.data import DataLoader

        loader = DataLoader(_Reads(self.reader, self.fitted, self.rows, units), batch_size=None,
                            shuffle=False, num_workers=self.workers, collate_fn=_as_is)
        return loader if self.workers else _read_ahead(iter(loader))

    def _tensor(self, values: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(values).to(self.device)


class _Reads:
    """A map-style torch dataset: item ``i`` reads the ``i``-th unit of positions (in a
    DataLoader worker process when there are workers)."""

    def __init__(self, reader: ExampleReader, fitted: dict[str, np.ndarray], rows: np.ndarray,
                 units: list[np.ndarray]) -> None:
        self.reader, self.fitted, self.rows, self.units = reader, fitted, rows, units

    def __len__(self) -> int:
        return len(self.units)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        positions = self.units[i]
        return positions, _read(self.reader, self.fitted, self.rows[positions])


def _read_ahead(items: Iterator[Any]) -> Iterator[Any]:
    """``items`` in order, the next one read in a thread while the caller uses this one (file
    reads, decompression and decoding release the GIL)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1, thread_name_prefix="automl-read-ahead") as pool:
        pending = pool.submit(next, items, _END)
        while (item := pending.result()) is not _END:
            pending = pool.submit(next, items, _END)
            yield item


_END = object()


def _as_is(item: Any) -> Any:
    return item  # numpy stays numpy (the default would make tensors in the worker)


def _read(reader: ExampleReader, fitted: dict[str, np.ndarray], rows: np.ndarray) -> np.ndarray:
    x = reader.read(rows)
    return standardise(x, fitted) if fitted else x


def _permutation(n: int, generator: torch.Generator) -> np.ndarray:
    return torch.randperm(n, generator=generator, device=generator.device).cpu().numpy()


def trial_inputs(data: Any, device: Any) -> tuple[Any, Any, Any]:
    """The train, validation and test inputs of a trial's data on ``device``: tensors, or
    :class:`StreamInputs` for a streamed dataset."""
    from automl.search_data import StreamedSearchSplits

    if isinstance(data, StreamedSearchSplits):
        return tuple(StreamInputs(data.reader, rows, data.fitted, device, data.workers)  # type: ignore[return-value]
                     for rows in (data.rows_train, data.rows_val, data.rows_test))
    return tuple(torch.as_tensor(x).to(device)  # type: ignore[return-value]
                 for x in (data.x_train, data.x_val, data.x_test))
