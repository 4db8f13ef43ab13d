"""The picklable description of an experiment that every trial receives."""

from __future__ import annotations

from dataclasses import dataclass

from automl.plugin_manager import PluginSource


@dataclass(frozen=True)
class TrialContext:
    """Sent to Ray workers with the data; never carries live plugin managers or DB handles."""

    experiment: str
    seed: int
    plugins: PluginSource
    objectives: tuple[tuple[str, str], ...]  # (metric, mode)
    metrics: tuple[str, ...]  # every metric recorded (objectives first)
    epochs: int
    fine_tune_epochs: int
    fine_tune_lr_factor: float
    amp: bool
    eval_batch_size: int
    cpus: float
    gpus: float

    @property
    def first_objective_key(self) -> str:
        return f"val/{self.objectives[0][0]}"
