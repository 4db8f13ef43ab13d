"""Inference latency of the final model at batch size 1 and 64: on one CPU thread, or on the CUDA
device a half-precision model runs on (the trial records which: ``model/on_cuda``)."""

from __future__ import annotations

import copy
import itertools
import statistics
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

import automl
from automl.components import DataSpec, EvalContext, Metric

if TYPE_CHECKING:
    import torch
    from torch import nn

WARMUP_RUNS = 3
MIN_RUNS = 3
MAX_RUNS = 50
#: Rough time spent on one measurement, in seconds; big models get the minimum number of runs.
TIME_BUDGET_S = 0.2


def example_batch(spec: DataSpec, batch_size: int) -> "torch.Tensor":
    """A fixed input batch of ``spec.input_shape``: float32 values, or int64 token ids for text
    (ones, with the second half of each sequence padding)."""
    import torch

    shape = (batch_size, *spec.input_shape)
    if spec.kind == "text":
        ids = torch.ones(shape, dtype=torch.int64)
        ids[:, max(1, shape[1] // 2):] = 0
        return ids
    return torch.randn(shape, generator=torch.Generator().manual_seed(0), dtype=torch.float32)


def timing_device(model: "nn.Module") -> str:
    """Where ``model`` is timed: ``cuda`` when its parameters or buffers are on a CUDA device
    (a half-precision model the trial deploys there), else ``cpu``."""
    tensors = itertools.chain(model.parameters(), model.buffers())
    return "cuda" if any(t.device.type == "cuda" for t in tensors) else "cpu"


def measure_latency_ms(model: "nn.Module", spec: DataSpec, batch_size: int) -> float:
    """Median wall time in milliseconds of one forward pass where the model is: on the CPU with a
    single thread, or on its CUDA device (synchronised before and after each timed call, so the
    time covers the kernels, not their launch). The trial passes its final model on the device
    it runs on (:func:`automl.trial.quantization.measure_device`).

    Training/eval mode and torch's thread count are restored afterwards.
    """
    import torch

    on_cuda = timing_device(model) == "cuda"
    if not on_cuda and any(p.device.type != "cpu" for p in model.parameters()):
        model = copy.deepcopy(model).cpu()
    x = example_batch(spec, batch_size)
    if on_cuda:  # not exercised in this project's CI (no GPU): see docs/experiment-yaml.md
        x = x.to(next(t.device for t in itertools.chain(model.parameters(), model.buffers())
                      if t.device.type == "cuda"))
    sync = torch.cuda.synchronize if on_cuda else None
    modes = [(m, m.training) for m in model.modules()]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model.eval()
        with torch.inference_mode():
            warmup = [_time_once(model, x, sync)]  # the first call is the slowest: not timed
            while len(warmup) < WARMUP_RUNS and sum(warmup) < TIME_BUDGET_S / 4:
                warmup.append(_time_once(model, x, sync))
            per_run = max(warmup[-1], 1e-9)
            runs = int(min(MAX_RUNS, max(MIN_RUNS, 0.75 * TIME_BUDGET_S / per_run)))
            timings = [_time_once(model, x, sync) for _ in range(runs)]
    finally:
        torch.set_num_threads(threads)
        for module, training in modes:
            module.training = training
    return statistics.median(timings) * 1000.0


def median_forward_ms(model: "nn.Module", x: "torch.Tensor", repeats: int,
                      warmup: int = WARMUP_RUNS) -> float:
    """Median milliseconds of ``repeats`` forward passes of ``x`` after ``warmup`` untimed ones,
    as it runs now (mode, device and threads are the caller's)."""
    import torch

    with torch.inference_mode():
        for _ in range(warmup):
            model(x)
        timings = [_time_once(model, x) for _ in range(repeats)]
    return statistics.median(timings) * 1000.0


def _time_once(model: "nn.Module", x: "torch.Tensor",
               sync: "Callable[[], None] | None" = None) -> float:
    """Seconds of one forward pass; ``sync`` (``torch.cuda.synchronize``) waits for the device's
    queued work before the clock starts and for the pass's kernels before it stops."""
    if sync is not None:
        sync()
    start = time.perf_counter()
    model(x)
    if sync is not None:
        sync()
    return time.perf_counter() - start


class _Latency(Metric):
    direction = "min"
    model_only = True
    deterministic = False
    recorded = "on_request"  # a measurement takes about 0.2 s: only when asked for
    aggregate = "sum"  # an ensemble runs every member
    batch_size: ClassVar[int]

    def compute(self, ctx: EvalContext) -> float:
        if ctx.model is None:
            raise ValueError("latency needs the model, but none was given")
        return measure_latency_ms(ctx.model, ctx.spec, self.batch_size)


class Latency(_Latency):
    name = "latency_ms"
    description = ("median inference time of one example (batch 1) where the final model runs: "
                   "one CPU thread, or CUDA for fp16, in ms")
    batch_size = 1


class Latency64(_Latency):
    name = "latency64_ms"
    description = ("median inference time of a batch of 64 where the final model runs: one CPU "
                   "thread, or CUDA for fp16, in ms")
    batch_size = 64


@automl.hookimpl
def automl_register_metrics(registrar):
    registrar.add(Latency)
    registrar.add(Latency64)
