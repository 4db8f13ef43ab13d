"""MLflow tracking: one MLflow run per experiment, one nested run per trial.

The parent run (named after the experiment) holds the experiment's setup as parameters, its
resolved config as the artifact ``experiment.json`` and, at the end, the best trial's metrics and
the final evaluation's test metrics (``best/...``, ``ensemble/test/...``). Each trial's child run
(tag ``mlflow.parentRunId``) holds the sampled parameters, every reported epoch's metrics with the
epoch as the step, the trial's final metrics (what the results database records) logged at the
last epoch's step after the epochs, so a run's value of a metric is the final one, and a completed
trial's checkpoint directory as the artifact ``checkpoint``.

Everything goes through :class:`mlflow.MlflowClient` with an explicit tracking URI: no global
active run, nothing shared with other MLflow users in the process. Only the experiment's start
talks to MLflow on the driver's thread (so an unreachable tracking server is reported at once);
everything after it runs, in order, on one background thread, so an epoch costs Ray Tune's loop
a queue put instead of a store round trip (5-90 ms on SQLite, more over HTTP); epochs that
arrive while the thread is busy are logged together in one call. A failure on that
thread is raised at the callback's next call (or when the run closes), which reports it once;
what was still queued is dropped. mlflow is imported only when a run starts
(``pip install 'automl[mlflow]'``, which installs mlflow-skinny).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import automl
from automl.components import Callback, ParamDef
from automl.params import Fixed

#: trial status -> MLflow run status
RUN_STATUS = {"completed": "FINISHED", "early_stopped": "FINISHED", "failed": "FAILED"}
MAX_PARAM_VALUE = 6000  # MLflow's limit on a parameter value
MAX_TAG_VALUE = 5000
MAX_METRICS_PER_BATCH = 1000  # MLflow's limit for one log_batch


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
        self._parent = ""  # the parent run while it is open
        self._parent_of_trials = ""
        self._worker: ThreadPoolExecutor | None = None
        self._failure: Exception | None = None  # set on the worker thread
        # driver thread: trial number -> (last step, last timestamp in ms)
        self._last: dict[int, tuple[int, int]] = {}
        # worker thread: trial number -> run id
        self._runs: dict[int, str] = {}
        # both threads, under the lock: epochs not yet logged, trials with a flush queued
        self._lock = threading.Lock()
        self._epochs: dict[int, list[tuple[tuple[int, int], dict[str, float]]]] = {}
        self._flushing: set[int] = set()

    # -- driver thread ------------------------------------------------------------------------

    def experiment_started(self, experiment: Any) -> None:
        from mlflow import MlflowClient

        uri = _absolute_sqlite(self.options.get("tracking_uri"))
        self._client = MlflowClient(tracking_uri=uri)
        name = self.options.get("experiment_name") or experiment.name
        found = self._client.get_experiment_by_name(name)
        self._experiment_id = (found.experiment_id if found is not None
                               else self._client.create_experiment(name))
        config = experiment.config
        run = self._client.create_run(self._experiment_id, run_name=experiment.name, tags={
            "automl.experiment": experiment.name, "automl.db_url": experiment.db_url,
            "automl.artifacts_dir": experiment.artifacts_dir})
        self._parent = self._parent_of_trials = run.info.run_id
        search = config.get("search", {})
        self._log(self._parent, self._stamp(None, 0), params={
            "dataset": config.get("dataset", {}).get("name"), "seed": config.get("seed"),
            "objectives": [o.get("metric") for o in config.get("objectives", [])],
            "sampler": search.get("sampler"), "early_stopping": search.get("early_stopping"),
            "num_trials": search.get("num_trials")})
        self._client.log_dict(self._parent, config, "experiment.json")
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="automl-mlflow")

    def trial_started(self, experiment: Any, trial: Any) -> None:
        self._submit(self._run_of, experiment.name, trial)

    def trial_epoch_reported(self, experiment: Any, trial: Any, epoch: int,
                             metrics: dict[str, float]) -> None:
        stamp = self._stamp(trial.number, epoch)
        with self._lock:
            self._epochs.setdefault(trial.number, []).append((stamp, dict(metrics)))
            if trial.number in self._flushing:
                return  # the flush already queued for this trial takes these too
            self._flushing.add(trial.number)
        self._submit(self._flush_epochs, experiment.name, trial)

    def trial_finished(self, experiment: Any, trial: Any) -> None:
        stamp = self._stamp(trial.number, self._last.get(trial.number, (0, 0))[0])
        del self._last[trial.number]
        self._submit(self._finish, experiment.name, trial, stamp)

    def experiment_finished(self, experiment: Any, status: str, best: Any,
                            evaluation: Any) -> None:
        metrics: dict[str, float] = {}
        tags = {"automl.status": status}
        if best is not None:
            tags["automl.best_trial"] = str(best.number)
            metrics.update({f"best/{k}": v for k, v in best.metrics.items()})
        for subject in (evaluation.subjects if evaluation is not None else []):
            prefix = ("best" if "best" in subject.roles else "ensemble"
                      if subject.subject == "ensemble" else f"trial_{subject.trial}")
            metrics.update({f"{prefix}/{k}": v for k, v in subject.metrics.items()})
        parent, self._parent = self._parent, ""
        self._submit(self._end_parent, parent, self._stamp(None, 0), metrics, tags,
                     "FINISHED" if status == "completed" else "FAILED")

    def close(self) -> None:
        """Wait for what is queued; runs still open (an interrupted run) end as KILLED."""
        if self._worker is None:
            return
        if self._parent:
            self._submit(self._end_parent, self._parent, self._stamp(None, 0), {}, {}, "KILLED")
            self._parent = ""
        self._submit(self._kill_open_runs)
        worker, self._worker = self._worker, None
        worker.shutdown(wait=True)
        self._raise_failure()

    def _stamp(self, number: int | None, step: int) -> tuple[int, int]:
        """(step, timestamp in ms) taken now; a trial's timestamps only grow, so what is logged
        after its epochs at the same step is its latest value."""
        now = int(time.time() * 1000)
        if number is not None:
            now = max(now, self._last.get(number, (0, 0))[1] + 1)
            self._last[number] = (step, now)
        return step, now

    def _submit(self, work: Callable[..., None], *args: Any) -> None:
        self._raise_failure()
        if self._worker is None:
            raise RuntimeError("MLflow tracking was not started (the experiment start failed)")
        self._worker.submit(self._guarded, work, args)

    def _raise_failure(self) -> None:
        if self._failure is not None:
            failure, self._failure = self._failure, None
            raise failure

    # -- worker thread ------------------------------------------------------------------------

    def _guarded(self, work: Callable[..., None], args: tuple[Any, ...]) -> None:
        if self._failure is None:
            try:
                work(*args)
            except Exception as exc:  # noqa: BLE001 - handed to the driver by _raise_failure
                self._failure = exc

    def _run_of(self, experiment: str, trial: Any) -> str:
        """The trial's child run, created (with its params) the first time the trial is seen."""
        run_id = self._runs.get(trial.number)
        if run_id is None:
            run = self._client.create_run(
                self._experiment_id, run_name=f"{experiment} #{trial.number}", tags={
                    "mlflow.parentRunId": self._parent_of_trials,
                    "automl.experiment": experiment, "automl.trial": str(trial.number),
                    "automl.tune_trial_id": trial.trial_id})
            run_id = self._runs[trial.number] = run.info.run_id
            self._log(run_id, (0, 0), params=trial.params)
        return run_id

    def _flush_epochs(self, experiment: str, trial: Any) -> None:
        """Log every epoch queued for the trial so far in one ``log_batch``: when MLflow is
        slower than the epochs arrive, they are batched instead of piling up."""
        from mlflow.entities import Metric

        with self._lock:
            epochs = self._epochs.pop(trial.number, [])
            self._flushing.discard(trial.number)
        metrics = [Metric(k, float(v), now, step) for (step, now), values in epochs
                   for k, v in values.items()]
        run_id = self._run_of(experiment, trial)
        for start in range(0, len(metrics), MAX_METRICS_PER_BATCH):
            self._client.log_batch(run_id, metrics=metrics[start:start + MAX_METRICS_PER_BATCH])

    def _finish(self, experiment: str, trial: Any, stamp: tuple[int, int]) -> None:
        self._flush_epochs(experiment, trial)
        run_id = self._run_of(experiment, trial)
        tags = {"automl.status": trial.status}
        if trial.error:
            tags["automl.error"] = trial.error[-MAX_TAG_VALUE:]
        self._log(run_id, stamp, metrics=trial.metrics, tags=tags)
        if trial.checkpoint and self.options.get("log_checkpoint", True):
            self._client.log_artifacts(run_id, trial.checkpoint, "checkpoint")
        self._client.set_terminated(run_id, RUN_STATUS.get(trial.status, "KILLED"))
        del self._runs[trial.number]

    def _end_parent(self, parent: str, stamp: tuple[int, int], metrics: dict[str, float],
                    tags: dict[str, str], status: str) -> None:
        self._log(parent, stamp, metrics=metrics, tags=tags)
        self._client.set_terminated(parent, status)

    def _kill_open_runs(self) -> None:
        for run_id in self._runs.values():
            self._client.set_terminated(run_id, "KILLED")
        self._runs.clear()

    def _log(self, run_id: str, stamp: tuple[int, int], *,
             params: dict[str, Any] | None = None, metrics: dict[str, float] | None = None,
             tags: dict[str, str] | None = None) -> None:
        from mlflow.entities import Metric, Param, RunTag

        step, now = stamp
        self._client.log_batch(
            run_id,
            metrics=[Metric(k, float(v), now, step) for k, v in (metrics or {}).items()],
            params=[Param(k, str(v)[:MAX_PARAM_VALUE]) for k, v in (params or {}).items()],
            tags=[RunTag(k, v) for k, v in (tags or {}).items()])


def _absolute_sqlite(uri: str | None) -> str | None:
    """``sqlite:///rel.db`` with the path made absolute against the working directory, as MLflow
    reads it: MLflow caches its store per URI, so a relative one would keep writing to the first
    directory's file in a process that runs experiments from several directories."""
    prefix = "sqlite:///"
    if uri is None or not uri.startswith(prefix) or uri.startswith(prefix + "/") \
            or uri[len(prefix):] in ("", ":memory:"):
        return uri
    return prefix + str(Path(uri[len(prefix):]).resolve())


@automl.hookimpl
def automl_register_callbacks(registrar):
    registrar.add(MlflowTracking)
