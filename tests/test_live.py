"""Live results: running trials' epochs in the store (batched writes, on SQLite and PostgreSQL),
the state behind ``automl run``'s live display, the lease that tells ``show --watch`` a run is
gone, and the dashboard's refusal without its extra. The end-to-end runs are in
tests/test_live_cli.py."""

from __future__ import annotations

import math
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from automl.events import (
    RunStarted, TrialFinished, TrialReported, TrialStarted, TrialsRunning,
)
from automl.lifecycle import ExperimentInfo
from automl.plugin_manager import load_plugins
from automl.search.recorder import StoreRecorder
from automl.store import Store, TrialStatus
from automl.store.lease import is_live
from tests.postgres import db_url, postgres_db, postgres_server  # noqa: F401
from tests.test_recorder import tune_trial


def new_experiment(store: Store, name: str = "e") -> int:
    return store.create_experiment(name=name, seed=0, config={}, objectives=[], plugins={},
                                   automl_version="0", artifacts_dir="/tmp/runs")


def histories(store: Store, name: str = "e") -> dict[int, tuple[str, list]]:
    return {t.number: (t.status, t.history) for t in store.experiment(name).trials}


def test_record_history_replaces_running_trials_histories_and_leaves_finished_ones(db_url):
    with Store(db_url) as store:
        exp = new_experiment(store)
        for number in (0, 1, 2):
            store.start_trial(exp, number, f"t{number}", {"x": number})
        first = [{"epoch": 1, "val/accuracy": 0.5, "train/loss": 0.5}]
        assert store.record_history(exp, {0: first, 1: first}) == 2
        assert histories(store)[0] == ("running", first)
        # the same epochs written again are stored once: each write replaces the list
        both = first + [{"epoch": 2, "val/accuracy": 0.75, "train/loss": 0.25}]
        assert store.record_history(exp, {0: both}) == 1
        assert store.record_history(exp, {0: both}) == 1
        store.finish_trial(exp, 1, status=TrialStatus.COMPLETED, metrics={"val/accuracy": 0.9},
                           history=both, seed=1, node=None, device=None, checkpoint=None,
                           error=None)
        # a late batch never touches a finished row, nor a trial that has no row
        assert store.record_history(exp, {1: first, 7: first}) == 0
        assert store.record_history(exp, {}) == 0
        assert store.record_history(exp, {2: [{"epoch": 1, "train/loss": float("nan")}]}) == 1
        got = histories(store)
        assert got[0] == ("running", both)
        assert got[1] == ("completed", both)
        assert got[2][0] == "running" and math.isnan(got[2][1][0]["train/loss"])  # a diverged loss
        # --resume: an interrupted trial restarts with an empty history
        assert sorted(store.interrupt_running(exp)) == [0, 2]
        assert store.record_history(exp, {0: both}) == 0
        store.start_trial(exp, 0, "t0-again", {"x": 0})
        assert histories(store)[0] == ("running", [])


def recorder_on(tmp_path: Path, interval: float) -> StoreRecorder:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    store = Store(url)
    exp = new_experiment(store)
    return StoreRecorder(store, exp, ExperimentInfo("e", {}, url, str(tmp_path)),
                         load_plugins(autoload=False), flush_interval_s=interval)


def epoch(n: int) -> dict:
    return {"epoch": n, "train/loss": 1.0 / n, "val/accuracy": 0.5 + n / 100,
            "node": "here", "training_iteration": n}


def test_the_recorder_writes_epochs_in_batches_and_the_final_row_carries_them_all(tmp_path):
    recorder = recorder_on(tmp_path, interval=3600)  # nothing is due until flushed by hand
    a, b = tune_trial("a0001", {"x": 1}), tune_trial("a0002", {"x": 2})
    recorder.on_trial_start(0, [a], a)
    recorder.on_trial_start(0, [a, b], b)
    recorder.on_trial_result(0, [a, b], a, epoch(1))
    recorder.on_trial_result(0, [a, b], b, epoch(1))
    recorder.on_step_end(0, [a, b])
    assert histories(recorder.store) == {0: ("running", []), 1: ("running", [])}
    assert recorder.flush() == 2  # one transaction for both trials
    expected = {k: v for k, v in epoch(1).items() if k in ("epoch", "train/loss", "val/accuracy")}
    assert histories(recorder.store)[0] == ("running", [expected])
    assert recorder.flush() == 0  # nothing new
    recorder.on_trial_result(0, [a, b], a, epoch(2))
    recorder.on_trial_complete(0, [a, b], a)  # the unwritten epoch goes with the final row
    assert recorder.flush() == 0
    assert [h["epoch"] for h in histories(recorder.store)[0][1]] == [1, 2]
    assert histories(recorder.store)[0][0] == "early_stopped"
    assert recorder.finished[0].history == histories(recorder.store)[0][1]
    recorder.store.close()


class Clock:
    """The recorder's clock, moved by the test (a loaded machine cannot miss an interval)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


def test_with_a_short_interval_each_epoch_reaches_the_store_as_reported(tmp_path, monkeypatch):
    import automl.search.recorder as recorder_module

    clock = Clock()
    monkeypatch.setattr(recorder_module, "time", clock)
    recorder = recorder_on(tmp_path, interval=0.05)
    a = tune_trial("a0001", {"x": 1})
    recorder.on_trial_start(0, [a], a)
    recorder.on_trial_result(0, [a], a, epoch(1))
    clock.now += 0.1
    recorder.on_trial_result(0, [a], a, epoch(2))  # due: written with this epoch
    assert [h["epoch"] for h in histories(recorder.store)[0][1]] == [1, 2]
    clock.now += 0.01
    recorder.on_trial_result(0, [a], a, epoch(3))  # not due yet
    assert len(histories(recorder.store)[0][1]) == 2
    clock.now += 0.1
    recorder.on_step_end(0, [a])  # Tune's loop turned: the waiting epoch goes out
    assert len(histories(recorder.store)[0][1]) == 3
    recorder.store.close()


def test_run_progress_counts_times_and_best_from_events():
    from automl.cli.live_progress import RunProgress

    progress = RunProgress()
    progress.update(RunStarted("e", 4, 1, "tpe", "none", "sqlite://", None))
    assert progress.summary().startswith("0/4 done, 0 running, 0 failed")
    assert progress.eta_s() is None
    progress.update(TrialsRunning(1, 4, 0.0))
    progress.update(TrialStarted(0, "mlp", 1, 0, 4, 0.0))
    progress.update(TrialStarted(1, "cnn", 2, 0, 4, 0.0))
    progress.update(TrialReported(0, 3, {"val/accuracy": 0.8}, 1.0))
    assert progress.running[0].epoch == 3 and progress.running[1].epoch is None
    progress.update(TrialFinished(0, "completed", "mlp", {"val/accuracy": 0.9}, None, (0.9, 0),
                                  1, 4, 1, 0, 10.0))
    progress.update(TrialFinished(1, "failed", "cnn", {}, "RuntimeError: boom", (0.9, 0),
                                  2, 4, 0, 1, 20.0))
    text = progress.summary()
    assert text.startswith("2/4 done, 0 running, 1 failed · elapsed 0:20")
    assert "best val/accuracy 0.9 (#0)" in text
    # two trials in 20 s, two to go: about 20 s left
    assert progress.eta_s() == pytest.approx(20.0, abs=1.0)
    timed = RunProgress()
    timed.update(RunStarted("e", 100, 1, "tpe", "none", "sqlite://", 30.0))
    timed.update(TrialFinished(0, "completed", "mlp", {"val/accuracy": 0.9}, None, (0.9, 0),
                               1, 100, 0, 0, 10.0))
    # 99 trials at 10 s each would take long; the time budget ends the search in 20 s
    assert timed.eta_s() == pytest.approx(20.0, abs=1.0)
    assert "of 0:30" in timed.summary()


def test_a_lease_is_live_while_held_and_not_once_released_or_its_holder_died(tmp_path):
    from automl.store.schema import LeaseRow

    with Store(f"sqlite:///{tmp_path / 'l.db'}") as store:
        assert not is_live(store, "e")
        with store.lease("e", timeout_s=60):
            assert is_live(store, "e")
            assert not is_live(store, "e", timeout_s=-1)  # heartbeat older than the timeout
        assert not is_live(store, "e")
        dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True)
        with store._write() as session:
            now = __import__("automl.store.store", fromlist=["now"]).now()
            session.add(LeaseRow(name="killed", token="t", host=socket.gethostname(),
                                 pid=int(dead.stdout), started_at=now, heartbeat_at=now))
        assert not is_live(store, "killed")  # its process on this host is gone


def test_dashboard_without_its_extra_names_the_extra(tmp_path, automl_cmd):
    script = ("import sys; sys.modules['optuna_dashboard'] = None; "
              "from automl.cli.app import main; sys.argv = ['automl', 'dashboard', 'x']; main()")
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 1
    assert ("automl dashboard needs optuna-dashboard, the 'dashboard' extra: pip install "
            "'automl[dashboard]'") in done.stderr
    assert "Traceback" not in done.stderr


def test_watch_does_not_combine_with_json(tmp_path, automl_cmd):
    done = subprocess.run([*automl_cmd, "show", "x", "--watch", "--json"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "200"})
    assert done.returncode == 2
    assert "--watch draws the experiment on the terminal; it does not combine with --json" \
        in done.stderr
