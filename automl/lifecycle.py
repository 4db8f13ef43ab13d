"""Plain records handed to lifecycle hooks; they never expose live database or Ray objects."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ExperimentInfo:
    """The experiment a lifecycle hook is called for. A database password is masked (``***``)
    in ``db_url`` and in ``config["storage"]["db"]``: hooks may log what they get, and Ray Tune
    pickles the callback that holds this record into the experiment directory."""

    name: str
    config: dict[str, Any]
    db_url: str
    artifacts_dir: str


@dataclass
class TrialInfo:
    """A trial as hooks see it. ``metrics`` holds validation (``val/``), model (``model/``) and,
    per epoch, training (``train/``) values: never a test metric (the test split is scored only
    by the final evaluation, which ``automl_experiment_finished`` receives)."""

    number: int
    trial_id: str
    status: str
    params: dict[str, Any]
    metrics: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    #: the trial's checkpoint directory (model, predictions) once it completed; else None
    checkpoint: str | None = None
