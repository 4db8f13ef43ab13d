"""MLflow tracking: one MLflow run per experiment, one nested run per trial.

The parent run (named after the experiment) holds the experiment's setup as parameters, its
resolved config as the artifact ``experiment.json`` and, at the end, the final evaluation's test
metrics (``best/test/...``, ``ensemble/test/...``). Each trial's child run (tag
``mlflow.parentRunId``) holds the sampled parameters, every reported epoch's metrics with the
epoch as the step, the trial's final metrics (what the results database records) logged at the
last epoch's step after the epochs, so a run's summary value is the final one, and a completed
trial's checkpoint directory as the artifact ``checkpoint``.

Everything goes through :class:`mlflow.MlflowClient` with an explicit tracking URI: no global
active run, nothing shared with other MLflow users in the process. mlflow is imported only when
a run starts (``pip install 'automl[mlflow]'``, which installs mlflow-skinny).
"""

from __future__ import annotations

import time
from typing import Any

import automl
from automl.components import Callback, ParamDef
from automl.params import Fixed

#: trial status -> MLflow run status
RUN_STATUS = {"completed": "FINISHED", "early_stopped": "FINISHED", "failed": "FAILED"}
MAX_PARAM_VALUE = 6000  # MLflow's limit on a parameter value
MAX_TAG_VALUE = 5000


class MlflowTracking(Callback):
    name = "mlflow"
    description = ("MLflow tracking: a run per experiment, a nested run per trial (params, "
                   "per-epoch and final metrics, the checkpoint)")
    requires = {"mlflow": "automl[mlflow]"}
    params = {
        "tracking_uri": ParamDef(Fixed(None), str, "MLflow tracking URI (sqlite:///mlflow.db, "
                                 "http://host:5000); default: MLFLOW_TRACKING_URI, else MLflow's "
                                 "default"),
        "experiment_name": ParamDef(Fixed(None), str, "MLflow experiment to log into (created "
                                    "if missing); default: the automl experiment's name"),
        "log_checkpoint": ParamDef(Fixed(True), bool, "upload each completed trial's checkpoint "
                                   "directory as the artifact 'checkpoint'"),
    }

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        super().__init__(options)
        self._client: Any = None
        self._experiment_id = ""
        self._parent = ""
        self._runs: dict[int, str] = {}  # trial number -> run id
        self._last: dict[int, tuple[int, int]] = {}  # trial number -> (last step, timestamp)

    def experiment_started(self, experiment: Any) -> None:
        from mlflow import MlflowClient

        self._client = MlflowClient(tracking_uri=self.options.get("tracking_uri"))
        name = self.options.get("experiment_name") or experiment.name
        found = self._client.get_experiment_by_name(name)
        self._experiment_id = (found.experiment_id if found is not None
                               else self._client.create_experiment(name))
        config = experiment.config
        run = self._client.create_run(self._experiment_id, run_name=experiment.name, tags={
            "automl.experiment": experiment.name, "automl.db_url": experiment.db_url,
            "automl.artifacts_dir": experiment.artifacts_dir})
        self._parent = run.info.run_id
        search = config.get("search", {})
        self._log(self._parent, params={
            "dataset": config.get("dataset", {}).get("name"), "seed": config.get("seed"),
            "objectives": [o.get("metric") for o in config.get("objectives", [])],
            "sampler": search.get("sampler"), "early_stopping": search.get("early_stopping"),
            "num_trials": search.get("num_trials")})
        self._client.log_dict(self._parent, config, "experiment.json")

    def trial_started(self, experiment: Any, trial: Any) -> None:
        self._run_of(experiment, trial)

    def trial_epoch_reported(self, experiment: Any, trial: Any, epoch: int,
                             metrics: dict[str, float]) -> None:
        self._log(self._run_of(experiment, trial), metrics=metrics,
                  step=epoch, number=trial.number)

    def trial_finished(self, experiment: Any, trial: Any) -> None:
        run_id = self._run_of(experiment, trial)
        step = self._last.get(trial.number, (0, 0))[0]
        tags = {"automl.status": trial.status}
        if trial.error:
            tags["automl.error"] = trial.error[-MAX_TAG_VALUE:]
        self._log(run_id, metrics=trial.metrics, step=step, number=trial.number, tags=tags)
        if trial.checkpoint and self.options.get("log_checkpoint", True):
            self._client.log_artifacts(run_id, trial.checkpoint, "checkpoint")
        self._client.set_terminated(run_id, RUN_STATUS.get(trial.status, "KILLED"))
        del self._runs[trial.number]
        self._last.pop(trial.number, None)

    def experiment_finished(self, experiment: Any, status: str, best: Any,
                            evaluation: Any) -> None:
        metrics: dict[str, float] = {}
        tags = {"automl.status": status}
        if best is not None:
            tags["automl.best_trial"] = str(best.number)
            metrics.update({f"best/{k}": v for k, v in best.metrics.items()})
        for subject in (evaluation.subjects if evaluation is not None else []):
            prefix = "ensemble" if subject.subject == "ensemble" else f"trial_{subject.trial}"
            if "best" in subject.roles:
                prefix = "best"
            metrics.update({f"{prefix}/{k}": v for k, v in subject.metrics.items()})
        self._log(self._parent, metrics=metrics, tags=tags)
        self._client.set_terminated(self._parent, "FINISHED" if status == "completed"
                                    else "FAILED")
        self._parent = ""

    def close(self) -> None:
        """An interrupted run: its open runs end as KILLED."""
        if self._client is None:
            return
        for run_id in [*self._runs.values(), *([self._parent] if self._parent else [])]:
            self._client.set_terminated(run_id, "KILLED")
        self._runs.clear()
        self._parent = ""

    def _run_of(self, experiment: Any, trial: Any) -> str:
        """The trial's child run, created (with its params) the first time the trial is seen."""
        run_id = self._runs.get(trial.number)
        if run_id is None:
            run = self._client.create_run(
                self._experiment_id, run_name=f"{experiment.name} #{trial.number}", tags={
                    "mlflow.parentRunId": self._parent, "automl.experiment": experiment.name,
                    "automl.trial": str(trial.number), "automl.tune_trial_id": trial.trial_id})
            run_id = self._runs[trial.number] = run.info.run_id
            self._log(run_id, params=trial.params)
        return run_id

    def _log(self, run_id: str, *, params: dict[str, Any] | None = None,
             metrics: dict[str, float] | None = None, step: int = 0, number: int | None = None,
             tags: dict[str, str] | None = None) -> None:
        """One ``log_batch`` call. Timestamps of a trial's run only grow, so metrics logged after
        the epochs at the same step are the run's latest values."""
        from mlflow.entities import Metric, Param, RunTag

        now = int(time.time() * 1000)
        if number is not None:
            now = max(now, self._last.get(number, (0, 0))[1] + 1)
            self._last[number] = (step, now)
        self._client.log_batch(
            run_id,
            metrics=[Metric(k, float(v), now, step) for k, v in (metrics or {}).items()],
            params=[Param(k, str(v)[:MAX_PARAM_VALUE]) for k, v in (params or {}).items()],
            tags=[RunTag(k, v) for k, v in (tags or {}).items()])


@automl.hookimpl
def automl_register_callbacks(registrar):
    registrar.add(MlflowTracking)
