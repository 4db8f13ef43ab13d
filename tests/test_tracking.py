"""Callbacks and the built-in tracking plugins (MLflow, TensorBoard).

Read back with the backends' own readers: MLflow through ``MlflowClient`` on a real local SQLite
tracking store, TensorBoard through its ``EventAccumulator``. Failures are real ones (a tracking
server port nobody listens on, a log directory under a regular file, a callback that raises), and
never cost a trial.
"""

from __future__ import annotations

import os
import socket
import textwrap
from pathlib import Path

import pytest

import automl
from automl.callbacks import EnabledCallback, RunCallbacks
from automl.components import Callback, ParamDef
from automl.errors import PluginError
from automl.events import RunWarning
from automl.lifecycle import ExperimentInfo, TrialInfo
from automl.params import Fixed, FloatRange
from automl.plugin_manager import load_plugins
from automl.registry import Registry
from tests.conftest import unavailable
from tests.test_config_errors import assert_clean_failure, run_main

BASE = "name: tracked\ndataset: digits\narchitecture: mlp\n"  # lines 1-3


def need(module: str, extra: str) -> None:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        unavailable(f"{module} is not installed (pip install 'automl[{extra}]')")


def experiment_info(tmp: Path, name: str = "tracked") -> ExperimentInfo:
    config = {"name": name, "seed": 0, "dataset": {"name": "digits"},
              "objectives": [{"metric": "accuracy"}],
              "search": {"sampler": "random", "early_stopping": "none", "num_trials": 2}}
    return ExperimentInfo(name, config, f"sqlite:///{tmp}/automl.db", str(tmp / "runs"))


# ---- the callbacks: section is checked before anything runs ------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("callbacks: [mlfow]\n", ["exp.yaml:4: callbacks.mlfow:", "unknown callback 'mlfow'",
                              "did you mean 'mlflow'", "tensorboard"]),
    ("callbacks:\n  mlflow: {tracking_url: x}\n",
     ["exp.yaml:5: callbacks.mlflow.tracking_url:", "did you mean 'tracking_uri'",
      "valid options: tracking_uri, experiment_name, log_checkpoint"]),
    ("callbacks:\n  mlflow: {log_checkpoint: maybe}\n",
     ["callbacks.mlflow.log_checkpoint:", "expected bool, got 'maybe'"]),
    ("callbacks:\n  tensorboard: {flush_secs: 1.5}\n",
     ["callbacks.tensorboard.flush_secs:", "expected int"]),
    ("callbacks:\n  tensorboard: 3\n", ["callbacks.tensorboard", "dictionary"]),
])
def test_validate_reports_bad_callbacks(tmp_path, monkeypatch, capsys, text, expected):
    monkeypatch.chdir(tmp_path)
    Path("exp.yaml").write_text(BASE + text)
    status, output = run_main(["validate", "exp.yaml"], monkeypatch, capsys)
    assert_clean_failure(status, output, *expected)


USER_CALLBACKS = '''
from automl.components import Callback, ParamDef
from automl.params import Fixed

class Needy(Callback):
    name = "needy"
    requires = {"automl_no_such_module": "automl-no-such-package>=1"}

class Noted(Callback):
    name = "noted"
    params = {"path": ParamDef(Fixed(None), str, "where to write", required=True, is_path=True)}

def automl_register_callbacks(registrar):
    registrar.add(Needy)
    registrar.add(Noted)
'''


@pytest.mark.parametrize("text, expected", [
    ("callbacks: [needy]\n", ["exp.yaml:5: callbacks.needy:", "needs the Python package "
                              "'automl_no_such_module'",
                              "pip install 'automl-no-such-package>=1'"]),
    ("callbacks: [noted]\n", ["callbacks.noted.path:", "required option 'path' is not set"]),
])
def test_a_user_callback_is_checked_like_the_built_ins(tmp_path, monkeypatch, capsys, text,
                                                       expected):
    monkeypatch.chdir(tmp_path)
    Path("mine.py").write_text(USER_CALLBACKS)
    Path("exp.yaml").write_text(BASE + "plugins: [mine.py]\n" + text)
    status, output = run_main(["validate", "exp.yaml"], monkeypatch, capsys)
    assert_clean_failure(status, output, *expected)


def test_callback_options_resolve_paths_and_fill_defaults(tmp_path):
    from automl.callbacks import resolve_callbacks

    plugins = load_plugins()
    enabled = resolve_callbacks({"tensorboard": {"log_dir": "tb"}, "mlflow": {}},
                                plugins.registry, tmp_path)
    assert enabled == [
        EnabledCallback("tensorboard", "automl_plugins.callbacks.tensorboard",
                        {"log_dir": str(tmp_path / "tb"), "flush_secs": 30}),
        EnabledCallback("mlflow", "automl_plugins.callbacks.mlflow",
                        {"tracking_uri": None, "experiment_name": None, "log_checkpoint": True})]


def test_a_searched_callback_option_is_refused_at_registration():
    class Searched(Callback):
        name = "searched"
        params = {"rate": ParamDef(FloatRange(0.0, 1.0), float)}

    with pytest.raises(PluginError, match="option 'rate' must have a Fixed default"):
        Registry().add("callback", Searched, "mine")


# ---- failure policy: reported once, the callback switched off, the others go on ----------------

class Counting(Callback):
    """Records what it receives; raises at the epoch named in its options."""

    name = "counting"
    params = {"fail_at": ParamDef(Fixed(None), int)}

    def __init__(self, options=None):
        super().__init__(options)
        self.seen: list[str] = []
        self.closed = False

    def trial_started(self, experiment, trial):
        self.seen.append(f"start {trial.number}")

    def trial_epoch_reported(self, experiment, trial, epoch, metrics):
        if epoch == self.options.get("fail_at"):
            raise OSError(28, "No space left on device")
        self.seen.append(f"epoch {trial.number}.{epoch}")

    def trial_finished(self, experiment, trial):
        self.seen.append(f"finish {trial.number}")

    def close(self):
        self.closed = True


class Other(Counting):
    name = "other"


def test_a_failing_callback_is_reported_once_and_switched_off(tmp_path):
    registry = Registry()
    registry.add("callback", Counting, "mine")
    registry.add("callback", Other, "theirs")
    events = []
    callbacks = RunCallbacks([EnabledCallback("counting", "mine", {"fail_at": 2}),
                              EnabledCallback("other", "theirs", {})], registry, events.append)
    failing, other = (c for _, c in callbacks._active)  # noqa: SLF001 - the instances made
    info = experiment_info(tmp_path)
    for number in (0, 1):
        trial = TrialInfo(number, f"t{number}", "running", {"lr": 0.1})
        callbacks.automl_trial_started(experiment=info, trial=trial)
        for epoch in (1, 2, 3):
            callbacks.automl_trial_epoch_reported(experiment=info, trial=trial, epoch=epoch,
                                                  metrics={"val/accuracy": 0.5})
        callbacks.automl_trial_finished(experiment=info, trial=trial)
    callbacks.close()

    assert [type(e) for e in events] == [RunWarning]
    message = events[0].message
    assert "callback 'counting' (plugin 'mine') failed at epoch 2 of trial 0" in message
    assert "OSError: [Errno 28] No space left on device" in message
    assert "trials and the search go on" in message
    assert failing.seen == ["start 0", "epoch 0.1"] and failing.closed
    assert other.seen == ["start 0", "epoch 0.1", "epoch 0.2", "epoch 0.3", "finish 0",
                          "start 1", "epoch 1.1", "epoch 1.2", "epoch 1.3", "finish 1"]
    assert other.closed and callbacks.active == []


# ---- the built-ins driven directly (fast) ---------------------------------------------------

def drive(callback: Callback, info: ExperimentInfo, checkpoint: Path | None) -> None:
    """Two trials of three epochs, as the recorder reports them; trial 1 fails at epoch 2."""
    callback.experiment_started(info)
    for number in (0, 1):
        trial = TrialInfo(number, f"t{number}", "running", {"architecture": "mlp", "lr": 0.01})
        callback.trial_started(info, trial)
        for epoch in (1, 2, 3) if number == 0 else (1, 2):
            callback.trial_epoch_reported(info, trial, epoch, {
                "train/loss": 1.0 / epoch, "val/accuracy": 0.5 + 0.1 * epoch + 0.01 * number})
        done = TrialInfo(number, f"t{number}", "completed" if number == 0 else "failed",
                         trial.params, {"val/accuracy": 0.9, "model/params": 1234.0}
                         if number == 0 else {}, None if number == 0 else "RuntimeError: boom",
                         str(checkpoint) if number == 0 and checkpoint else None)
        callback.trial_finished(info, done)
    callback.experiment_finished(info, "completed", None, None)
    callback.close()


def test_tensorboard_writes_scalars_per_trial(tmp_path):
    need("tensorboard", "tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from automl_plugins.callbacks.tensorboard import TensorBoardEvents

    drive(TensorBoardEvents({"log_dir": str(tmp_path / "tb"), "flush_secs": 30}),
          experiment_info(tmp_path), None)
    assert sorted(p.name for p in (tmp_path / "tb").iterdir()) == ["trial_0", "trial_1"]
    first = EventAccumulator(str(tmp_path / "tb" / "trial_0")).Reload()
    assert [(s.step, round(s.value, 4)) for s in first.Scalars("val/accuracy")] == \
        [(1, 0.6), (2, 0.7), (3, 0.8)]
    assert [s.step for s in first.Scalars("train/loss")] == [1, 2, 3]
    assert [(s.step, s.value) for s in first.Scalars("final/model/params")] == [(3, 1234.0)]
    second = EventAccumulator(str(tmp_path / "tb" / "trial_1")).Reload()
    assert [s.step for s in second.Scalars("val/accuracy")] == [1, 2]


def test_mlflow_logs_nested_runs(tmp_path, monkeypatch):
    need("mlflow", "mlflow")
    from mlflow import MlflowClient

    from automl_plugins.callbacks.mlflow import MlflowTracking

    monkeypatch.chdir(tmp_path)  # MLflow's default artifact root is ./mlruns
    checkpoint = tmp_path / "ckpt"
    checkpoint.mkdir()
    (checkpoint / "model.pt").write_bytes(b"weights")
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    drive(MlflowTracking({"tracking_uri": uri, "experiment_name": "mine",
                          "log_checkpoint": True}), experiment_info(tmp_path), checkpoint)

    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("mine").experiment_id])
    parent = next(r for r in runs if r.info.run_name == "tracked")
    assert parent.info.status == "FINISHED" and parent.data.params["seed"] == "0"
    children = {r.data.tags["automl.trial"]: r for r in runs if r is not parent}
    assert set(children) == {"0", "1"}
    assert all(r.data.tags["mlflow.parentRunId"] == parent.info.run_id
               for r in children.values())
    ok, failed = children["0"], children["1"]
    assert ok.data.params == {"architecture": "mlp", "lr": "0.01"}
    history = client.get_metric_history(ok.info.run_id, "val/accuracy")
    assert [(m.step, round(m.value, 4)) for m in history] == [(1, 0.6), (2, 0.7), (3, 0.8),
                                                               (3, 0.9)]
    assert ok.data.metrics["val/accuracy"] == 0.9  # the final value is the run's value
    assert ok.info.status == "FINISHED" and ok.data.tags["automl.status"] == "completed"
    assert [a.path for a in client.list_artifacts(ok.info.run_id, "checkpoint")] == \
        ["checkpoint/model.pt"]
    assert failed.info.status == "FAILED" and failed.data.tags["automl.error"] == \
        "RuntimeError: boom"
    assert client.list_artifacts(failed.info.run_id) == []


# ---- real runs ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ray_local():
    import ray

    from automl.ray_session import start_embedded_ray

    start_embedded_ray(2)
    yield
    ray.shutdown()


def write(tmp: Path, body: str) -> Path:
    path = tmp / "exp.yaml"
    path.write_text(textwrap.dedent(body))
    return path


@pytest.mark.slow
def test_a_run_is_tracked_in_mlflow_and_tensorboard(ray_local, in_tmp):
    need("mlflow", "mlflow")
    need("tensorboard", "tensorboard")
    from mlflow import MlflowClient
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    path = write(in_tmp, """
        name: tracked
        seed: 3
        dataset: digits
        architecture: {mlp: {depth: 1, width: 32}}
        pruning: {magnitude: {ratio: 0.5}}
        training: {epochs: 3, fine_tune_epochs: 1, lr: 0.005, batch_size: 64, optimizer: adam}
        search: {num_trials: 3, sampler: random, early_stopping: none}
        ensemble: false
        callbacks:
          mlflow: {tracking_uri: "sqlite:///mlflow.db"}
          tensorboard: {log_dir: tb}
    """)
    events = []
    result = automl.run(str(path), listener=events.append)
    assert result.status == "completed" and len(result.trials) == 3
    assert not [e for e in events if isinstance(e, RunWarning)]
    trials = {t.number: t for t in result.trials}

    client = MlflowClient(f"sqlite:///{in_tmp}/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("tracked").experiment_id])
    parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
    assert parent.info.status == "FINISHED"
    best = result.best
    assert parent.data.tags["automl.best_trial"] == str(best.number)
    assert parent.data.metrics["best/test/accuracy"] == \
        result.evaluation.best().metrics["test/accuracy"]
    children = [r for r in runs if r is not parent]
    assert len(children) == 3
    for run in children:
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        trial = trials[int(run.data.tags["automl.trial"])]
        assert run.data.params == {k: str(v) for k, v in trial.params.items()}
        history = client.get_metric_history(run.info.run_id, "val/accuracy")
        epochs = [h["val/accuracy"] for h in trial.history]
        assert [(m.step, m.value) for m in history] == \
            [(1, epochs[0]), (2, epochs[1]), (3, epochs[2]), (3, trial.metrics["val/accuracy"])]
        assert [m.step for m in client.get_metric_history(run.info.run_id, "train/loss")] == \
            [1, 2, 3]
        for key, value in trial.metrics.items():  # the final metrics, as the store has them
            assert run.data.metrics[key] == pytest.approx(value)
        files = {a.path for a in client.list_artifacts(run.info.run_id, "checkpoint")}
        assert files == {f"checkpoint/{p.name}" for p in Path(trial.checkpoint).iterdir()}

    for number, trial in trials.items():
        events_file = EventAccumulator(str(in_tmp / "tb" / f"trial_{number}")).Reload()
        scalars = events_file.Scalars("val/accuracy")
        assert [s.step for s in scalars] == [1, 2, 3]
        assert [s.value for s in scalars] == \
            pytest.approx([h["val/accuracy"] for h in trial.history], rel=1e-6)
        assert events_file.Scalars("final/val/accuracy")[0].value == \
            pytest.approx(trial.metrics["val/accuracy"], rel=1e-6)


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_unreachable_tracking_is_reported_once_and_loses_no_trial(ray_local, in_tmp,
                                                                  monkeypatch):
    need("mlflow", "mlflow")
    need("tensorboard", "tensorboard")
    # MLflow retries a refused connection with backoff; keep the test short
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    (in_tmp / "not_a_dir").write_text("a file where the log directory should go")
    path = write(in_tmp, f"""
        name: untracked
        seed: 3
        dataset: digits
        architecture: {{mlp: {{depth: 1, width: 32}}}}
        training: {{epochs: 2, fine_tune_epochs: 0, lr: 0.005, batch_size: 64}}
        search: {{num_trials: 3, sampler: random, early_stopping: none}}
        ensemble: false
        callbacks:
          mlflow: {{tracking_uri: "http://127.0.0.1:{closed_port()}"}}
          tensorboard: {{log_dir: not_a_dir/tb}}
    """)
    events = []
    result = automl.run(str(path), listener=events.append)
    assert result.status == "completed"
    assert [t.status for t in result.trials] == ["completed"] * 3
    assert all(len(t.history) == 2 for t in result.trials)
    warnings = [e.message for e in events if isinstance(e, RunWarning)]
    assert len(warnings) == 2, warnings
    mlflow_warning = next(w for w in warnings if "callback 'mlflow'" in w)
    assert "failed when the experiment started" in mlflow_warning
    assert "127.0.0.1" in mlflow_warning
    tensorboard_warning = next(w for w in warnings if "callback 'tensorboard'" in w)
    assert "not_a_dir" in tensorboard_warning
    assert not os.path.isdir(in_tmp / "not_a_dir")


def test_a_relative_sqlite_tracking_uri_is_read_against_the_working_directory(tmp_path,
                                                                              monkeypatch):
    from automl_plugins.callbacks.mlflow import _absolute_sqlite

    monkeypatch.chdir(tmp_path)
    assert _absolute_sqlite("sqlite:///mlflow.db") == f"sqlite:///{tmp_path}/mlflow.db"
    for kept in ("sqlite:////abs/m.db", "sqlite:///:memory:", "http://host:5000", None):
        assert _absolute_sqlite(kept) == kept


def test_an_mlflow_failure_on_its_background_thread_is_reported_once(tmp_path, monkeypatch):
    """The trial's MLflow run is deleted behind the callback's back mid-trial (a real store
    error on the logging thread): reported once at the callback's next call, then off."""
    need("mlflow", "mlflow")
    import time

    from mlflow import MlflowClient

    monkeypatch.chdir(tmp_path)  # MLflow's default artifact root is ./mlruns
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    plugins = load_plugins()
    events = []
    callbacks = RunCallbacks([EnabledCallback("mlflow", "automl_plugins.callbacks.mlflow",
                                              {"tracking_uri": uri, "experiment_name": "gone",
                                               "log_checkpoint": True})],
                             plugins.registry, events.append)
    info = experiment_info(tmp_path)
    trial = TrialInfo(0, "t0", "running", {"lr": 0.1})
    callbacks.automl_experiment_started(experiment=info)
    callbacks.automl_trial_started(experiment=info, trial=trial)
    client = MlflowClient(uri)
    experiment_id = client.get_experiment_by_name("gone").experiment_id
    deadline = time.monotonic() + 30
    while not (runs := client.search_runs([experiment_id], "tags.`automl.trial` = '0'")):
        assert time.monotonic() < deadline, "the trial's run was never created"
        time.sleep(0.05)
    client.delete_run(runs[0].info.run_id)
    for epoch in range(1, 6):
        callbacks.automl_trial_epoch_reported(experiment=info, trial=trial, epoch=epoch,
                                              metrics={"val/accuracy": 0.5})
        time.sleep(0.05)
    callbacks.automl_trial_finished(experiment=info, trial=TrialInfo(0, "t0", "completed",
                                                                     trial.params))
    callbacks.close()
    assert len(events) == 1 and isinstance(events[0], RunWarning)
    assert "callback 'mlflow'" in events[0].message
    assert "MlflowException" in events[0].message and "active" in events[0].message
    assert callbacks.active == []


def test_mlflow_runs_an_interruption_left_open_end_killed(tmp_path, monkeypatch):
    """Ctrl-C: no trial_finished, no experiment_finished; close() still ends every open run,
    after the epochs already reported are logged."""
    need("mlflow", "mlflow")
    from mlflow import MlflowClient

    from automl_plugins.callbacks.mlflow import MlflowTracking

    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    callback = MlflowTracking({"tracking_uri": uri, "experiment_name": "cut",
                               "log_checkpoint": True})
    info = experiment_info(tmp_path)
    trial = TrialInfo(0, "t0", "running", {"lr": 0.1})
    callback.experiment_started(info)
    callback.trial_started(info, trial)
    for epoch in (1, 2):
        callback.trial_epoch_reported(info, trial, epoch, {"val/accuracy": 0.1 * epoch})
    callback.close()

    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("cut").experiment_id])
    assert sorted(r.info.status for r in runs) == ["KILLED", "KILLED"]
    child = next(r for r in runs if "mlflow.parentRunId" in r.data.tags)
    assert [m.step for m in client.get_metric_history(child.info.run_id, "val/accuracy")] == \
        [1, 2]
