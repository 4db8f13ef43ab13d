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
PREDICTIONS_FILE = "predictions.npz"
TRIAL_FILE = "trial.json"


def write_trial_artifacts(directory: Path, model: Any, predictions: dict[str, np.ndarray],
                          record: dict[str, Any]) -> None:
    import torch

    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    torch.save(state, directory / MODEL_FILE)
    np.savez_compressed(directory / PREDICTIONS_FILE, **predictions)
    (directory / TRIAL_FILE).write_text(json.dumps(record, indent=2, sort_keys=True, default=str))


def read_predictions(directory: str | Path) -> dict[str, np.ndarray]:
    with np.load(Path(directory) / PREDICTIONS_FILE, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def read_state_dict(directory: str | Path) -> dict[str, Any]:
    import torch

    return torch.load(Path(directory) / MODEL_FILE, map_location="cpu", weights_only=True)
