"""The trial's quantization step: after pruning and fine-tuning, before the final scores.

The plan's quantizer (``quantization:`` in the experiment) turns the final float model into the
model the trial scores, measures and saves. A model the quantizer cannot handle keeps float32 and
the trial records why (``not_applied`` in ``trial.json``); the search goes on. A k-fold trial
quantizes each of its models (every fold model, and the refitted one), each calibrated on its own
training rows, all or none (:func:`quantize_models`).

The model-only metrics (size, latency) of the final model are measured where it will run
(:func:`measure_device`): the quantizer's device when one was applied (``cuda`` for half
precision, ``cpu`` for torch's int8 kernels), else the CPU, as for every float model.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from automl.components import NotQuantizable
from automl.errors import PluginError

if TYPE_CHECKING:
    import torch
    from torch import nn


@dataclass
class Quantized:
    """The trial's final model after the quantization step."""

    model: "nn.Module"
    quantizer: str | None = None  # the quantizer applied; None: float32
    skipped: str | None = None  # why the planned quantizer was not applied
    device: str | None = None  # where the quantized model runs (``cpu`` for int8)


def quantize_model(registry: Any, plan: Any, model: "nn.Module", x_train: "torch.Tensor",
                   batch_size: int) -> Quantized:
    """Apply ``plan.quantizer`` to ``model`` (eval mode), calibrating on training batches of
    ``batch_size`` rows in their stored order."""
    if plan.quantizer is None:
        return Quantized(model)
    entry = registry.get("quantizer", plan.quantizer)
    quantizer = entry.create()
    where = f"plugin '{entry.plugin}', quantizer '{entry.name}'"
    model = model.eval()
    try:
        reason = quantizer.check(model)
    except Exception as exc:  # noqa: BLE001
        raise PluginError(f"{where}: check() raised {type(exc).__name__}: {exc}") from exc
    if reason:
        return Quantized(model, None, f"quantizer '{entry.name}': {reason}")
    try:
        with quiet_torch_ao():
            quantized = quantizer.quantize(model, dict(plan.quantizer_params),
                                           _batches(x_train, batch_size))
    except NotQuantizable as exc:
        return Quantized(model, None, f"quantizer '{entry.name}': {exc}")
    except Exception as exc:  # noqa: BLE001
        raise PluginError(f"{where}: quantize() raised {type(exc).__name__}: {exc}") from exc
    return Quantized(quantized.eval(), entry.name, None, quantizer.device)


def quantize_models(registry: Any, plan: Any, models: "list[nn.Module]",
                    calibration: "list[torch.Tensor]", batch_size: int) -> list[Quantized]:
    """:func:`quantize_model` for each of a k-fold trial's models, each calibrated on its own
    training rows (``calibration[i]``). All or none: when the quantizer cannot handle one of
    them, every model keeps float32 and each result carries that first reason, so the fold
    models of one trial are always alike."""
    done: list[Quantized] = []
    for model, rows in zip(models, calibration, strict=True):
        result = quantize_model(registry, plan, model, rows, batch_size)
        if result.skipped:
            return [Quantized(m, None, result.skipped) for m in models]
        done.append(result)
    return done


def measure_device(quantized: Quantized) -> str:
    """Where the final model's model-only metrics (latency, size) are measured: the device the
    applied quantizer's model runs on, else the CPU (float models are timed on the CPU, whatever
    device trained them)."""
    return (quantized.device or "cpu") if quantized.quantizer else "cpu"


def quantization_facts(plan: Any, quantized: Quantized, measured_on: str) -> dict[str, float]:
    """What a trial with a quantization step records beside its metrics: ``model/quantized``
    (1: applied; 0: the quantizer could not handle the model, see ``not_applied``) and
    ``model/on_cuda`` (1: the final model, and its latency, on CUDA; 0: on the CPU). A trial
    without one records neither (its float model is measured on the CPU)."""
    if plan.quantizer is None:
        return {}
    return {"model/quantized": 1.0 if quantized.quantizer else 0.0,
            "model/on_cuda": 1.0 if measured_on == "cuda" else 0.0}


def rebuild_quantized(registry: Any, name: str, params: dict[str, Any], model: "nn.Module",
                      example: "torch.Tensor") -> "nn.Module":
    """The quantized structure of a float ``model`` for a saved quantized ``state_dict``."""
    entry = registry.get("quantizer", name)
    try:
        with quiet_torch_ao():
            return entry.create().rebuild(model.eval(), dict(params), example).eval()
    except Exception as exc:  # noqa: BLE001
        raise PluginError(f"plugin '{entry.plugin}', quantizer '{entry.name}': rebuild() raised "
                          f"{type(exc).__name__}: {exc}") from exc


@contextlib.contextmanager
def quiet_torch_ao() -> Iterator[None]:
    """torch.ao's quantization warns on every use (observer arguments, quantized tensor
    creation, storage types: deprecations for a later PyTorch); none is the user's to act on."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


def example_input(spec: Any) -> "torch.Tensor":
    """One example of ``spec``'s inputs for rebuilding a quantized structure (its values do not
    matter: the saved state replaces what they calibrate): zeros, token ids for text."""
    import torch

    dtype = torch.int64 if spec.kind == "text" else torch.float32
    return torch.zeros((1, *spec.input_shape), dtype=dtype)


def _batches(x: "torch.Tensor", batch_size: int) -> Iterator["torch.Tensor"]:
    for start in range(0, len(x), max(1, batch_size)):
        yield x[start:start + batch_size].cpu()
