"""The standard strategy: mini-batch gradient descent on every training row, one optimizer."""

from __future__ import annotations

from typing import Any

import automl
from automl.components import Strategy, TrainingLoop, TrainingRun


class Standard(Strategy):
    name = "standard"
    description = ("mini-batch gradient descent over all training rows (the loop of an "
                   "experiment without strategy:)")
    default = True
    streams = True  # the Trainer reads batches from a streamed dataset's files
    data_parallel = True  # the Trainer trains on a rank's shard through DDP

    def start(self, params: dict[str, Any], run: TrainingRun) -> TrainingLoop:
        from automl.trial.training import GradientLoop, Trainer

        return GradientLoop(Trainer(run.model, run.x, run.y, run.task, run.spec, run.training,
                                    run.augmentations, run.device, run.generator,
                                    run.on_epoch_start, run.shard), run.param_groups)


@automl.hookimpl
def automl_register_strategies(registrar):
    registrar.add(Standard)
