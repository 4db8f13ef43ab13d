"""Where a trial's time goes: seconds per phase, reported with its final metrics as
``time/<phase>_s`` (``automl show`` lists them with the model facts; the overhead benchmark adds
them up). The phases of a hold-out trial: ``setup`` (plugins, tensors, the model), ``train``
(epochs and fine-tuning), ``epoch_eval`` (per-epoch validation scores and reports), ``prune``,
``quantize``, ``final_eval`` (final predictions and metrics, latency included) and ``artifacts``
(the checkpoint files); ``trial`` is the whole. What Ray Tune spends around the trial (placing
it, persisting the checkpoint, the driver's callbacks) is not part of it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager


class PhaseTimer:
    """Seconds per named phase, added up over repeated entries."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        tick = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - tick)

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds

    def as_metrics(self) -> dict[str, float]:
        return {f"time/{name}_s": value for name, value in self.seconds.items()}
