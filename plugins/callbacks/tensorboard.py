"""TensorBoard event files: one run directory per trial, ``<log_dir>/trial_<number>``.

Each reported epoch's metrics are scalars with the epoch as the step (``train/loss``,
``val/<metric>``); when the trial ends its final metrics (what the results database records,
after pruning and fine-tuning, with the ``model/`` facts) are written as ``final/<metric>`` at the
last epoch's step, and the writer is closed (which flushes it, and raises a write error that the
writer's background thread met). ``tensorboard --logdir <log_dir>`` shows the trials side by side.

Written with ``torch.utils.tensorboard.SummaryWriter``, which needs the tensorboard package
(``pip install 'automl[tensorboard]'``); imported only when a trial starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import automl
from automl.components import Callback, ParamDef
from automl.params import Fixed


class TensorBoardEvents(Callback):
    name = "tensorboard"
    description = "TensorBoard event files per trial: per-epoch and final metrics"
    requires = {"tensorboard": "automl[tensorboard]"}
    params = {
        "log_dir": ParamDef(Fixed(None), str, "directory of the trials' run directories "
                            "(relative to the experiment file); default: "
                            "<artifacts>/<experiment>/tensorboard", is_path=True),
        "flush_secs": ParamDef(Fixed(30), int, "how often a writer flushes to disk, seconds"),
    }

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        super().__init__(options)
        self._root: Path | None = None
        self._writers: dict[int, Any] = {}  # trial number -> SummaryWriter
        self._steps: dict[int, int] = {}  # trial number -> last epoch

    def experiment_started(self, experiment: Any) -> None:
        log_dir = self.options.get("log_dir")
        if log_dir is None:
            if "://" in experiment.artifacts_dir:
                raise ValueError(f"the artifacts location {experiment.artifacts_dir} is not a "
                                 "local directory; set callbacks.tensorboard.log_dir")
            log_dir = Path(experiment.artifacts_dir) / experiment.name / "tensorboard"
        self._root = Path(log_dir)
        self._root.mkdir(parents=True, exist_ok=True)

    def trial_started(self, experiment: Any, trial: Any) -> None:
        self._writer(trial.number)

    def trial_epoch_reported(self, experiment: Any, trial: Any, epoch: int,
                             metrics: dict[str, float]) -> None:
        writer = self._writer(trial.number)
        for key, value in metrics.items():
            writer.add_scalar(key, value, epoch)
        self._steps[trial.number] = epoch

    def trial_finished(self, experiment: Any, trial: Any) -> None:
        writer = self._writer(trial.number)
        step = self._steps.pop(trial.number, 0)
        for key, value in trial.metrics.items():
            writer.add_scalar(f"final/{key}", value, step)
        del self._writers[trial.number]
        writer.close()

    def close(self) -> None:
        writers, self._writers = list(self._writers.values()), {}
        for writer in writers:
            writer.close()

    def _writer(self, number: int) -> Any:
        writer = self._writers.get(number)
        if writer is None:
            from torch.utils.tensorboard import SummaryWriter

            if self._root is None:
                raise RuntimeError("a trial was reported before the experiment started")
            writer = SummaryWriter(str(self._root / f"trial_{number}"),
                                   flush_secs=int(self.options.get("flush_secs", 30)))
            self._writers[number] = writer
        return writer


@automl.hookimpl
def automl_register_callbacks(registrar):
    registrar.add(TensorBoardEvents)
