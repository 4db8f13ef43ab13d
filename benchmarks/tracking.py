"""What the tracking callbacks add per epoch and per trial, on the driver's own path.

Each row builds the plugin manager as a run does, registers the experiment's callbacks on it
(:class:`automl.callbacks.RunCallbacks`, as the runner does) and calls the lifecycle hooks the way
the store recorder does: ``automl_trial_started``, then ``automl_trial_epoch_reported`` per epoch
(``train/loss`` and two validation metrics), then ``automl_trial_finished`` with the trial's final
metrics and a checkpoint directory of a quickstart-sized model (the MLflow row uploads it).
Rows: no callback (the hook with nothing listening), ``tensorboard``, ``mlflow`` on a local
SQLite tracking store, and both. The per-epoch figure is what a trial's epoch result costs the
driver's thread; the per-trial figure is start + finish. The MLflow callback does its store work
on a background thread: "all done" is the wall time from the experiment's start until every
callback has closed (everything logged), per epoch reported.

Then (unless ``--quick``) real runs: the same small experiment (digits, a fixed MLP, 4 trials of
15 epochs, 2 at a time) without callbacks and with both, alternating, ``--repeats`` times each;
the figure is the time between a trial's consecutive epoch results as the driver receives them
(a plugin file records the clock in ``automl_trial_epoch_reported``), and each run's wall time.
The MLflow runs share one tracking database, created beforehand as a user's would be.

    python -m benchmarks.tracking [--quick] [--trials 20] [--epochs 12] [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import date
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

METRICS = ("train/loss", "val/accuracy", "val/log_loss")


def checkpoint_dir(root: Path) -> Path:
    """A checkpoint like a quickstart trial's: an MLP's weights and validation predictions."""
    import numpy as np
    import torch
    from torch import nn

    path = root / "checkpoint"
    path.mkdir()
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 10))
    torch.save(model.state_dict(), path / "model.pt")
    np.savez(path / "predictions.npz", val_proba=np.random.default_rng(0).random((360, 10)))
    (path / "trial.json").write_text('{"architecture": "mlp"}')
    return path


def measure(callbacks: dict[str, dict[str, Any]], trials: int, epochs: int, root: Path
            ) -> tuple[list[float], list[float], list[str]]:
    """(per-epoch ms, per-trial start+finish ms, warnings) for one set of callbacks."""
    from automl.callbacks import PLUGIN_NAME, RunCallbacks, resolve_callbacks
    from automl.lifecycle import ExperimentInfo, TrialInfo
    from automl.plugin_manager import load_plugins

    plugins = load_plugins()
    warnings: list[str] = []
    if callbacks:
        enabled = resolve_callbacks(callbacks, plugins.registry, root)
        run = RunCallbacks(enabled, plugins.registry, lambda e: warnings.append(e.message))
        plugins.manager.register(run, name=PLUGIN_NAME)
    config = {"name": "bench", "seed": 0, "dataset": {"name": "digits"},
              "objectives": [{"metric": "accuracy"}], "search": {}}
    info = ExperimentInfo(f"bench-{time.time_ns()}", config, "sqlite:///bench.db",
                          str(root / "runs"))
    checkpoint = str(checkpoint_dir(root))
    plugins.call("automl_experiment_started", experiment=info)
    per_epoch: list[float] = []
    per_trial: list[float] = []
    begun = time.perf_counter()
    params = {"architecture": "mlp", "architecture.mlp.width": 256, "training.lr": 0.003,
              "training.batch_size": 64, "training.optimizer": "adam"}
    for number in range(trials):
        trial = TrialInfo(number, f"t{number}", "running", params)
        started = time.perf_counter()
        plugins.call("automl_trial_started", experiment=info, trial=trial)
        trial_s = time.perf_counter() - started
        for epoch in range(1, epochs + 1):
            metrics = {key: 1.0 / (epoch + i) for i, key in enumerate(METRICS)}
            started = time.perf_counter()
            plugins.call("automl_trial_epoch_reported", experiment=info, trial=trial,
                         epoch=epoch, metrics=metrics)
            per_epoch.append((time.perf_counter() - started) * 1000)
        done = TrialInfo(number, f"t{number}", "completed", params,
                         {"val/accuracy": 0.95, "val/log_loss": 0.2, "model/params": 19210.0},
                         None, checkpoint)
        started = time.perf_counter()
        plugins.call("automl_trial_finished", experiment=info, trial=done)
        per_trial.append((trial_s + time.perf_counter() - started) * 1000)
    plugins.call("automl_experiment_finished", experiment=info, status="completed", best=None,
                 evaluation=None)
    if callbacks:
        run.close()
    all_done = (time.perf_counter() - begun) * 1000 / (trials * epochs)
    return per_epoch, per_trial, all_done, warnings


def _version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    trials = 5 if args.quick else args.trials

    print(f"$ python -m benchmarks.tracking {' '.join(sys.argv[1:])}")
    print(f"date {date.today()}, {os.cpu_count()} CPUs, mlflow-skinny "
          f"{_version('mlflow-skinny')}, tensorboard {_version('tensorboard')}; "
          f"{trials} trials x {args.epochs} epochs per row")
    rows = []
    home = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)  # MLflow's default artifact root (./mlruns) lands here
        setups = {
            "none": {},
            "tensorboard": {"tensorboard": {"log_dir": "tb"}},
            "mlflow (sqlite)": {"mlflow": {"tracking_uri": f"sqlite:///{tmp}/mlflow.db"}},
            "both": {"tensorboard": {"log_dir": "tb2"},
                     "mlflow": {"tracking_uri": f"sqlite:///{tmp}/mlflow2.db"}},
        }
        for index, (name, callbacks) in enumerate(setups.items()):
            root = Path(tmp) / f"row{index}"
            root.mkdir()
            per_epoch, per_trial, all_done, warnings = measure(callbacks, trials, args.epochs,
                                                               root)
            if warnings:
                print(f"{name}: {warnings}")
            rows.append((name, per_epoch, per_trial, all_done))
        os.chdir(home)
    print(f"\n{'callbacks':<16} {'epoch ms median':>16} {'epoch ms p95':>13} "
          f"{'epoch ms mean':>14} {'trial ms (start+finish)':>24} {'all done ms/epoch':>18}")
    for name, per_epoch, per_trial, all_done in rows:
        p95 = statistics.quantiles(per_epoch, n=20)[-1]
        print(f"{name:<16} {statistics.median(per_epoch):>16.3f} {p95:>13.3f} "
              f"{statistics.fmean(per_epoch):>14.3f} {statistics.median(per_trial):>24.1f} "
              f"{all_done:>18.2f}")
    if not args.quick:
        real_runs(args.repeats)


EXPERIMENT = """
name: {name}
seed: 0
plugins: [timer.py]
dataset: digits
architecture: {{mlp: {{depth: 2, width: 128}}}}
training: {{epochs: 15, fine_tune_epochs: 0, lr: 0.003, batch_size: 64, optimizer: adam}}
search: {{num_trials: 4, sampler: random, early_stopping: none, max_concurrent: 2}}
ensemble: false
"""
TRACKING = """callbacks:
  mlflow: {{tracking_uri: "{uri}"}}
  tensorboard: {{log_dir: tb}}
"""
#: a plugin file: the driver's clock at each epoch result, appended to a file
TIMER = """
import json, os, time

def automl_trial_epoch_reported(trial, epoch):
    with open(os.environ["AUTOML_BENCH_EPOCHS"], "a") as f:
        f.write(json.dumps([trial.number, epoch, time.perf_counter()]) + chr(10))
"""


def epoch_intervals(path: Path) -> list[float]:
    """ms between consecutive epoch results of the same trial, as the driver receives them."""
    import json

    seen: dict[int, float] = {}
    intervals = []
    for line in path.read_text().splitlines():
        number, epoch, at = json.loads(line)
        if epoch > 1 and number in seen:
            intervals.append((at - seen[number]) * 1000)
        seen[number] = at
    return intervals


def real_runs(repeats: int) -> None:
    """Median interval between a trial's epoch results in a real run, without and with both
    callbacks (alternating, so both see the same machine load)."""
    import automl
    from automl.ray_session import start_embedded_ray

    from mlflow import MlflowClient

    home = os.getcwd()
    start_embedded_ray(2)
    # one tracking database for all runs, created (MLflow's schema migrations) beforehand, as a
    # user's would be: the runs compare what tracking costs while trials train
    store = tempfile.TemporaryDirectory()
    uri = f"sqlite:///{store.name}/mlflow.db"
    MlflowClient(uri).search_experiments()
    results: dict[str, list[float]] = {"none": [], "mlflow + tensorboard": []}
    walls: dict[str, list[float]] = {label: [] for label in results}
    for repeat in range(repeats):
        for label, extra in (("none", ""), ("mlflow + tensorboard", TRACKING.format(uri=uri))):
            with tempfile.TemporaryDirectory() as tmp:
                os.chdir(tmp)
                (Path(tmp) / "timer.py").write_text(TIMER)
                log = Path(tmp) / "epochs.jsonl"
                os.environ["AUTOML_BENCH_EPOCHS"] = str(log)
                path = Path(tmp) / "exp.yaml"
                path.write_text(EXPERIMENT.format(name=f"bench{repeat}-{len(extra)}") + extra)
                warnings: list[Any] = []
                started = time.perf_counter()
                automl.run(str(path), listener=lambda e: warnings.append(e)
                           if type(e).__name__ == "RunWarning" else None)
                assert not warnings, warnings
                walls[label].append(time.perf_counter() - started)
                results[label] += epoch_intervals(log)
                os.chdir(home)
    print(f"\nreal runs: {repeats} x 4 trials x 15 epochs each, 2 trials at a time; ms between "
          "a trial's consecutive epoch results on the driver")
    print(f"{'callbacks':<22} {'median':>8} {'mean':>8} {'p90':>8} {'run wall s (each)':>24}")
    for label, values in results.items():
        each = " ".join(f"{w:.1f}" for w in walls[label])
        print(f"{label:<22} {statistics.median(values):>8.1f} {statistics.fmean(values):>8.1f} "
              f"{statistics.quantiles(values, n=10)[-1]:>8.1f} {each:>24}")

if __name__ == "__main__":
    main()
