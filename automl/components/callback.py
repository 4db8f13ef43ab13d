"""Callbacks: something that follows a run on the driver (experiment tracking, notifications).

A callback is switched on by naming it under ``callbacks:`` in the experiment file, with its
options; an unlisted callback is never created and costs nothing. The runner creates one instance
per run and hands it the driver's lifecycle hooks (see :mod:`automl.callbacks`). Its options are
declared in ``params`` like any component's, but with fixed values only: they are checked (name,
type, required, paths made absolute) before Ray starts and are never searched.

A callback must never cost a trial: the first exception a callback raises is reported once (a
:class:`~automl.events.RunWarning`) and the callback receives nothing more in that run; the trial
and the search go on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from automl.components.base import Component

if TYPE_CHECKING:
    from automl.lifecycle import ExperimentInfo, TrialInfo
    from automl.store import EvaluationRecord


class Callback(Component):
    """A callback plugin. Override the methods for the moments it follows; each is called on the
    driver, in the order things happen, from Ray Tune's loop (return quickly: a slow callback
    delays the recording of every trial).

    ``requires`` maps a module the callback imports to the requirement that installs it
    (``{"mlflow": "automl[mlflow]"}``): a callback listed in an experiment whose module is missing
    is refused before the run starts, with the install command. Import those modules inside the
    methods, not at the top of the plugin module.
    """

    requires: ClassVar[Mapping[str, str]] = {}

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        #: the experiment's options for this callback, declared defaults filled in
        self.options: dict[str, Any] = dict(options or {})

    def experiment_started(self, experiment: "ExperimentInfo") -> None:
        """The experiment record exists; no trial has started yet."""

    def trial_started(self, experiment: "ExperimentInfo", trial: "TrialInfo") -> None:
        """Ray Tune started a trial (``trial.params`` set, no metrics yet)."""

    def trial_epoch_reported(self, experiment: "ExperimentInfo", trial: "TrialInfo", epoch: int,
                             metrics: dict[str, float]) -> None:
        """A trial reported a training epoch (1-based ``epoch``; ``train/loss`` and the
        validation metrics of that epoch)."""

    def trial_finished(self, experiment: "ExperimentInfo", trial: "TrialInfo") -> None:
        """A trial ended (``trial.status``): its final metrics, error text and checkpoint."""

    def experiment_finished(self, experiment: "ExperimentInfo", status: str,
                            best: "TrialInfo | None",
                            evaluation: "EvaluationRecord | None") -> None:
        """The run ended (``completed`` or ``failed``; not called for an interrupted run)."""

    def close(self) -> None:
        """The run is over, however it ended (also after an interruption, when
        :meth:`experiment_finished` is not called): release files and connections."""
