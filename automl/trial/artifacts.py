"""What a finished trial leaves behind: weights, predictions and its plan.

Files in a trial checkpoint directory:

* ``model.pt`` — the final (pruned, finalised) ``state_dict``; load with ``weights_only=True``;
* ``predictions.npz`` — ``val_proba``, ``val_y``, ``test_proba`` (no test labels: only the
  final evaluation, :mod:`automl.evaluate`, reads those, from the data; checkpoints written
  before it also hold ``test_y``);
* ``trial.json`` — the sampled parameters, derived seed, final metrics, the structured plan and
  the data spec (kind, input shape, classes) needed to rebuild the model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

MODEL_FILE = "model.pt"
#: a quantized trial's final (quantized) ``state_dict``; ``model.pt`` then holds the float weights
#: it was quantized from, which rebuild its structure (see :mod:`automl.trial.quantization`)
QUANTIZED_FILE = "quantized.pt"
PREDICTIONS_FILE = "predictions.npz"
TRIAL_FILE = "trial.json"


def write_trial_artifacts(directory: Path, model: Any, predictions: dict[str, np.ndarray],
                          record: dict[str, Any], quantized: Any = None) -> None:
    import torch

    directory.mkdir(parents=True, exist_ok=True)
    torch.save(_cpu_state(model, with_metadata=False), directory / MODEL_FILE)
    if quantized is not None:
        torch.save(_cpu_state(quantized), directory / QUANTIZED_FILE)
    np.savez_compressed(directory / PREDICTIONS_FILE, **predictions)
    (directory / TRIAL_FILE).write_text(json.dumps(record, indent=2, sort_keys=True, default=str))


def _cpu_state(model: Any, with_metadata: bool = True) -> dict[str, Any]:
    """The ``state_dict`` on the CPU, with its per-module version metadata (a quantized layer
    reads its saved layout from it); a quantized layer's packed parameters stay as torch keeps
    them (they save and load with ``weights_only=True``). A float model's ``model.pt`` is saved
    without the metadata, as it always was (its size is the recorded ``saved_bytes``)."""
    from collections import OrderedDict

    import torch

    state = model.state_dict()
    cpu = {k: v.detach().cpu() if isinstance(v, torch.Tensor) else v for k, v in state.items()}
    metadata = getattr(state, "_metadata", None)
    if not with_metadata or metadata is None:
        return cpu
    ordered = OrderedDict(cpu)
    ordered._metadata = metadata  # type: ignore[attr-defined]
    return ordered


def read_predictions(directory: str | Path) -> dict[str, np.ndarray]:
    with np.load(Path(directory) / PREDICTIONS_FILE, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def read_state_dict(directory: str | Path) -> dict[str, Any]:
    import torch

    return torch.load(Path(directory) / MODEL_FILE, map_location="cpu", weights_only=True)
