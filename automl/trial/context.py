"""The picklable description of an experiment that every trial receives."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from automl.plugin_manager import PluginSource
from automl.validation import KFold


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
    augmentation_order: tuple[str, ...] = ()  # as listed in the experiment file
    #: metrics under a constraint: reported every epoch, like the objectives, so a trial stopped
    #: early still tells the sampler where it stood
    constrained: tuple[str, ...] = ()
    validation: KFold | None = None  # k-fold cross-validation; None: the validation split
    #: a distilled student (:mod:`automl.distill`): how its packed training labels unpack
    student: Any = None
    #: processes training each trial data-parallel (``resources.workers``; 1: this process)
    workers: int = 1

    @property
    def first_objective_key(self) -> str:
        return f"val/{self.objectives[0][0]}"

    @classmethod
    def for_experiment(cls, config: Any, objectives: Sequence[tuple[str, str]],
                       plugins: PluginSource, registry: Any) -> "TrialContext":
        """The context every trial of ``config`` gets (the run and ``automl rerun`` alike).

        The metrics recorded are the objectives, the experiment's ``record:`` and every metric
        of the dataset's task whose class declares it is recorded always (see :class:`automl.components.Metric`).
        """
        from automl.multitask import MULTITASK
        from automl.space import (
            ObjectiveSpec, constrained_metrics, constraint_specs, experiment_targets,
            experiment_task, recorded_metrics,
        )

        task = experiment_task(config, registry)
        targets = experiment_targets(config, registry) if task == MULTITASK else None
        constrained = constrained_metrics(constraint_specs(
            getattr(config, "constraints", {}), registry, task, targets or {}))
        metrics = recorded_metrics([ObjectiveSpec(m, mode) for m, mode in objectives],
                                   [*getattr(config, "record", ()), *constrained], registry,
                                   task, targets)
        training = config.training
        return cls(
            experiment=config.name, seed=config.seed, plugins=plugins,
            objectives=tuple(objectives), metrics=tuple(metrics), epochs=training.epochs,
            fine_tune_epochs=training.fine_tune_epochs,
            fine_tune_lr_factor=training.fine_tune_lr_factor, amp=training.amp,
            eval_batch_size=training.eval_batch_size, cpus=config.resources.cpu,
            gpus=config.resources.gpu, workers=config.resources.workers,
            augmentation_order=tuple(config.augmentations),
            constrained=tuple(constrained), validation=KFold.from_config(config))
