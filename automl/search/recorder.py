"""The Ray Tune callback through which the driver, and only the driver, writes the store."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ray.tune import Callback

from automl.errors import PluginError
from automl.lifecycle import ExperimentInfo, TrialInfo
from automl.plugin_manager import Plugins
from automl.search.disk import says_disk_full
from automl.store import Store, TrialRecord, TrialStatus
from automl.trial.trainable import FINAL_KEY

#: what a trial reports and the store records (never a test metric: see automl.evaluate)
METRIC_PREFIXES = ("val/", "train/", "model/", "time/")
HISTORY_KEYS = ("epoch", "train/loss")
#: how often, at most, running trials' new epochs are written to the store (one transaction for
#: every trial with news); a trial's last epochs are written with its final row
FLUSH_INTERVAL_S = 1.0


#: Tune's statuses of a trial that has yet to finish (``Trial.PENDING`` etc.)
LIVE_STATUSES = frozenset({"PENDING", "RUNNING", "PAUSED"})


class StoreRecorder(Callback):
    """Records trial starts, per-epoch history and final results; calls lifecycle hooks.

    A running trial's epochs reach the store as they are reported, in batches: at most every
    ``flush_interval_s`` one transaction writes the history of every running trial that reported
    since the last write (:meth:`Store.record_history`), so ``automl show`` sees running trials
    with their curves so far. The finished row carries the whole history; a later batch never
    touches a finished row.
    """

    def __init__(self, store: Store, experiment_id: int, experiment: ExperimentInfo,
                 plugins: Plugins, first_number: int = 0,
                 reuse: dict[int, dict[str, Any]] | None = None,
                 after_finish: Callable[[], Any] | None = None,
                 flush_interval_s: float = FLUSH_INTERVAL_S, kind: str = "search") -> None:
        """``kind`` is what the trials' rows record (``distilled``: the distillation stage's
        students). ``reuse`` maps the numbers of interrupted trials to their parameters: a new
        trial with
        the same parameters takes over that row (``--resume``). ``after_finish`` runs after each
        finished trial's row is written (the runner writes the Optuna study's finished trials
        there, so the store is always the first to know)."""
        self.store = store
        self.experiment_id = experiment_id
        self.experiment = experiment
        self.plugins = plugins
        self._numbers: dict[str, int] = {}  # trials with a row in the store
        self._reserved: dict[str, int] = {}  # every trial given a number (on creation)
        self._history: dict[str, list[dict[str, Any]]] = {}
        self._next = first_number
        self._lock = threading.Lock()
        self._reuse = {_params_key(params): number for number, params in (reuse or {}).items()}
        self.finished: list[TrialRecord] = []
        self.hook_error: PluginError | None = None
        self.disk_full = False  # a trial failed for want of disk space: stop the search
        self._after_finish = after_finish
        self.flush_interval_s = flush_interval_s
        self.kind = kind
        self._unwritten: set[str] = set()  # trial ids whose history has epochs not in the store
        self._flushed_at = time.monotonic()

    def __getstate__(self) -> dict[str, Any]:
        # Ray pickles the run config into the experiment directory; live handles stay behind.
        state = self.__dict__.copy()
        state.update(store=None, plugins=None, _lock=None, _after_finish=None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def _hook(self, name: str, **kwargs: Any) -> None:
        """Call a lifecycle hook; a failing plugin stops the search (see
        :class:`automl.search.stopper.StopSearch`) instead of surfacing as an error inside Ray
        Tune's loop."""
        if self.hook_error is not None:
            return
        try:
            self.plugins.call(name, **kwargs)
        except PluginError as exc:
            self.hook_error = exc

    def number_of(self, trial: Any) -> int | None:
        return self._numbers.get(trial.trial_id)

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        if trial.trial_id in self._numbers:  # restarted after a failure: same row
            return
        # Numbers follow the order Tune created the trials in (the searcher's order; ``trials``
        # lists them so), not the order their actors happen to start in: with several trials
        # at a time the same seed then gives each configuration the same number.
        for earlier in trials:
            if earlier.trial_id == trial.trial_id:
                break
            if earlier.status in LIVE_STATUSES:  # not a finished trial restored on resume
                self._number_for(earlier)
        self._start(trial)

    def _number_for(self, trial: Any) -> int:
        """The trial's number: kept once given; an interrupted trial's own when the same
        parameters come back on resume; else the next."""
        with self._lock:
            number = self._reserved.get(trial.trial_id)
            if number is None:
                number = self._reuse.pop(_params_key(trial.config), None)
                if number is None:
                    number = self._next
                    self._next += 1
                self._reserved[trial.trial_id] = number
        return number

    def _start(self, trial: Any) -> int:
        """Give the trial its row (``running``) under its number; call the started hook."""
        number = self._number_for(trial)
        self._numbers[trial.trial_id] = number
        self._history[trial.trial_id] = []
        params = dict(trial.config)
        self.store.start_trial(self.experiment_id, number, trial.trial_id, params, self.kind)
        self._hook("automl_trial_started", experiment=self.experiment,
                   trial=TrialInfo(number, trial.trial_id, TrialStatus.RUNNING, params))
        return number

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict,
                        **info: Any) -> None:
        if FINAL_KEY in result:
            return
        entry = {k: v for k, v in result.items()
                 if k in HISTORY_KEYS or (k.startswith(METRIC_PREFIXES) and _is_number(v))}
        history = self._history.setdefault(trial.trial_id, [])
        history.append(entry)
        self._unwritten.add(trial.trial_id)
        self.flush(due_only=True)
        number = self._numbers.get(trial.trial_id)
        if number is not None:
            self._hook("automl_trial_epoch_reported", experiment=self.experiment,
                       trial=TrialInfo(number, trial.trial_id, TrialStatus.RUNNING,
                                       dict(trial.config)),
                       epoch=int(entry.get("epoch", len(history))),
                       metrics={k: float(v) for k, v in entry.items()
                                if k != "epoch" and _is_number(v)})

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        # Tune's loop turns often: epochs that waited for the interval go out without a new one.
        if self._unwritten:
            self.flush(due_only=True)

    def flush(self, due_only: bool = False) -> int:
        """Write the unwritten epochs of running trials (with ``due_only``: only when the last
        write is ``flush_interval_s`` old). Returns the number of trials written."""
        if not self._unwritten or self.store is None or (
                due_only and time.monotonic() - self._flushed_at < self.flush_interval_s):
            return 0
        histories = {self._numbers[tid]: list(self._history[tid]) for tid in self._unwritten
                     if tid in self._numbers}
        self._unwritten.clear()
        self._flushed_at = time.monotonic()
        return self.store.record_history(self.experiment_id, histories)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        result = trial.last_result or {}
        status = TrialStatus.COMPLETED if result.get(FINAL_KEY) else TrialStatus.EARLY_STOPPED
        done = status == TrialStatus.COMPLETED and trial.checkpoint
        checkpoint = trial.checkpoint.path if done else None
        self._finish(trial, status, result, checkpoint, None)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        error = _error_text(trial)
        if says_disk_full(error):
            self.disk_full = True
        self._finish(trial, TrialStatus.FAILED, trial.last_result or {}, None, error)

    def _finish(self, trial: Any, status: TrialStatus, result: dict, checkpoint: str | None,
                error: str | None) -> None:
        number = self._numbers.get(trial.trial_id)
        if number is None:
            # It failed before Tune reported its start (its node died while it was placed, say):
            # it still gets its row, as it has a trial in the Optuna study.
            number = self._start(trial)
        metrics = {k: float(v) for k, v in result.items()
                   if k.startswith(METRIC_PREFIXES) and _is_number(v)}
        history = self._history.get(trial.trial_id, [])
        self._unwritten.discard(trial.trial_id)  # the final row carries every epoch
        self.store.finish_trial(
            self.experiment_id, number, status=status, metrics=metrics, history=history,
            seed=result.get("seed"), node=result.get("node"), device=result.get("device"),
            checkpoint=checkpoint, error=error, node_id=result.get("node_id"))
        if self._after_finish is not None:
            self._after_finish()
        record = TrialRecord(number=number, status=status, params=dict(trial.config),
                             metrics=metrics, history=history, checkpoint=checkpoint,
                             error=error, node=result.get("node"),
                             node_id=result.get("node_id"), tune_trial_id=trial.trial_id)
        self.finished.append(record)
        self._hook("automl_trial_finished", experiment=self.experiment,
                   trial=TrialInfo(number, trial.trial_id, status, dict(trial.config),
                                   metrics, error, checkpoint))


def _params_key(params: dict[str, Any]) -> str:
    import json

    return json.dumps(params, sort_keys=True, default=str)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _error_text(trial: Any) -> str:
    """The trial's traceback as Ray recorded it, without terminal colour codes."""
    try:
        path = getattr(trial, "error_file", None)
        if path and Path(path).is_file():
            text = _ANSI.sub("", Path(path).read_text(errors="replace")).strip()
            if text:
                return text[-20_000:]
        error = getattr(trial, "get_error", lambda: None)()
    except Exception as exc:  # noqa: BLE001 - a truncated or unreadable error file (full disk)
        return f"trial failed; its error file could not be read: {type(exc).__name__}: {exc}"
    return str(error) if error else "trial failed (no error text was recorded by Ray)"
