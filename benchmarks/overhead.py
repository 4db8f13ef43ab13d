"""Orchestration overhead: what scheduling a trial costs, side by side in one run.

(a) plain Optuna in-process (``study.optimize``, 2 threads), (b) Ray Tune + OptunaSearch with
defaults, (c) automl's real path: an experiment whose search space is the same single float,
OptunaSearch with the study in a SQLite file, the store recorder and progress callbacks, and the
Tuner settings automl uses (``automl.scheduler.build_tuner``), and (d) Ray Tune with its cheapest
settings, the floor of Tune's own per-trial lifecycle. Each runs a no-op and a 50 ms sleep
trainable with 2 trials at a time, and a 1 s trainable for the efficiency
Σ(trial compute) / (wall × slots). A last row runs (c) on the quickstart's conditional 20-dimension
space, to show what the TPE sampler itself costs there. Row (e), a real tiny trial through
``automl run`` and where its time goes, is :mod:`benchmarks.real_path`.

    python -m benchmarks.overhead [--quick] [--trials 200]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

from benchmarks.harness import start_ray

SLOTS = 2
REPO = Path(__file__).resolve().parents[1]


def plain_optuna(n: int, sleep_s: float) -> float:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize",
                                sampler=optuna.samplers.TPESampler(seed=0))

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0.0, 1.0)
        if sleep_s:
            time.sleep(sleep_s)
        return x

    started = time.perf_counter()
    study.optimize(objective, n_trials=n, n_jobs=SLOTS)
    return time.perf_counter() - started


def tune_trainable(sleep_s: float) -> Any:
    """The trivial Tune function trainable of rows (b) and (d): sleep, report one score."""
    from ray import tune

    def trainable(config: dict) -> None:
        if sleep_s:
            time.sleep(sleep_s)
        tune.report({"score": config["x"]})

    return trainable


def ray_defaults(n: int, sleep_s: float, tmp: str) -> float:
    from ray import tune
    from ray.tune.search.optuna import OptunaSearch

    tuner = tune.Tuner(
        tune_trainable(sleep_s), param_space={"x": tune.uniform(0.0, 1.0)},
        tune_config=tune.TuneConfig(search_alg=OptunaSearch(metric="score", mode="max", seed=0),
                                    num_samples=n, max_concurrent_trials=SLOTS),
        run_config=tune.RunConfig(storage_path=tmp, name=f"ray-{n}-{sleep_s}"))
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        tuner.fit()
    return time.perf_counter() - started


def ray_fastest(n: int, sleep_s: float, tmp: str) -> float:
    """Ray Tune's floor: the same trainable with the cheapest settings Tune offers (actors
    reused, in-memory Optuna study, no progress table; the auto-loggers are off in every row,
    as the harness starts Ray with automl's quiet environment). What automl costs above
    this is automl's; the rest is Tune's own trial lifecycle."""
    from ray import tune
    from ray.tune.search.optuna import OptunaSearch

    tuner = tune.Tuner(
        tune.with_resources(tune_trainable(sleep_s), {"cpu": 1}), param_space={"x": tune.uniform(0.0, 1.0)},
        tune_config=tune.TuneConfig(search_alg=OptunaSearch(metric="score", mode="max", seed=0),
                                    num_samples=n, max_concurrent_trials=SLOTS,
                                    reuse_actors=True),
        run_config=tune.RunConfig(storage_path=tmp, name=f"ray-fast-{n}-{sleep_s}", verbose=0,
                                  log_to_file=False))
    started = time.perf_counter()
    tuner.fit()
    return time.perf_counter() - started


ONE_FLOAT = """
name: overhead
dataset: digits
architecture:
  mlp: {depth: 1, width: 32, activation: relu, dropout: {low: 0.0, high: 1.0}}
training: {lr: 0.001, batch_size: 64, optimizer: adam, weight_decay: 0.0, epochs: 1}
search: {sampler: tpe, early_stopping: none}
ensemble: false
"""


def automl_path(n: int, sleep_s: float, tmp: str, quickstart_space: bool = False) -> float:
    from ray import tune

    from automl.config import load_experiment, parse_experiment
    from automl.lifecycle import ExperimentInfo
    from automl.plugin_manager import load_plugins
    from automl.progress import ProgressEvents
    from automl.scheduler import build_tuner, make_searcher
    from automl.study import MirroredStorage
    from automl.space import build_space
    from automl.store import Store
    from automl.search.recorder import StoreRecorder
    from automl.trial.trainable import FINAL_KEY

    overrides = {"name": f"overhead-{n}-{sleep_s}-{int(quickstart_space)}",
                 "search.num_trials": n, "search.early_stopping": "none",
                 "search.max_concurrent": SLOTS}
    config = (load_experiment(REPO / "experiments" / "quickstart.yaml", overrides).config
              if quickstart_space else parse_experiment(ONE_FLOAT, overrides=overrides))
    plugins = load_plugins(autoload=False)
    space = build_space(config, plugins.registry)
    db = f"sqlite:///{tmp}/bench.db"
    store = Store(db)
    experiment_id = store.create_experiment(
        name=config.name, seed=0, config={}, objectives=[{"metric": "accuracy", "mode": "max"}],
        plugins={}, automl_version="bench", artifacts_dir=tmp)
    info = ExperimentInfo(config.name, {}, db, tmp)
    recorder = StoreRecorder(store, experiment_id, info, plugins)
    progress = ProgressEvents(recorder, space.objectives, n, listener=lambda event: None)

    def trainable(config: dict) -> None:  # automl's reporting contract, no training
        if sleep_s:
            time.sleep(sleep_s)
        tune.report({"val/accuracy": 0.5, "epoch": 1, FINAL_KEY: 1})

    searcher = make_searcher(space, config.search, 0, storage=MirroredStorage(db),
                             name=config.name)
    tuner = build_tuner(tune.with_resources(trainable, {"cpu": 1}), config, space, searcher, n,
                        tmp, [recorder, progress])
    started = time.perf_counter()
    tuner.fit()
    wall = time.perf_counter() - started
    done = [t for t in store.experiment(config.name).trials if t.status == "completed"]
    assert len(done) == n, f"only {len(done)} of {n} trials completed"
    store.close()
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer trials (a smoke check)")
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--ray-default-trials", type=int, default=40,
                        help="Ray Tune with defaults costs about a second a trial; fewer trials "
                             "give the same per-trial figure")
    args = parser.parse_args()
    n = 12 if args.quick else args.trials
    n_ray = min(n, 4 if args.quick else args.ray_default_trials)
    n_long = 4 if args.quick else 60

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import optuna
    import ray


    print(f"$ python -m benchmarks.overhead {' '.join(sys.argv[1:])}")
    print(f"date {date.today()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"ray {ray.__version__}, optuna {optuna.__version__}; {SLOTS} trials at a time")
    print(f"embedded Ray start: {start_ray(SLOTS):.1f} s (once per run, not counted)")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, sleep_s, count, count_ray in (("no-op", 0.0, n, n_ray),
                                                 ("50 ms", 0.05, n, n_ray),
                                                 ("1 s", 1.0, n_long, min(n_long, n_ray))):
            a = plain_optuna(count, sleep_s)
            b = ray_defaults(count_ray, sleep_s, tmp)
            c = automl_path(count, sleep_s, tmp)
            d = ray_fastest(count, sleep_s, tmp)
            rows.append((label, sleep_s, count, count_ray, a, b, c, d))
        quick_space = automl_path(n, 0.0, tmp, quickstart_space=True)
    ray.shutdown()

    def per(wall: float, count: int) -> float:
        return wall / count * 1000

    def efficiency(wall: float, count: int, sleep_s: float) -> str:
        return f"{sleep_s * count / (wall * SLOTS) * 100:>6.1f}" if sleep_s else f"{'-':>6}"

    print()
    print("(a) plain Optuna, (b) Ray Tune + OptunaSearch with defaults, (c) automl, "
          "(d) Ray Tune with its cheapest settings (Tune's floor)")
    print(f"{'trial':>6} {'trials':>7} | {'ms per trial (wall)':^39} | "
          f"{'overhead ms/trial/slot':^32} | {'ratios':^17} | {'efficiency %':^27}")
    print(f"{'':>6} {'':>7} | {'(a)':>8} {'(b)':>9} {'(c)':>9} {'(d)':>9} | "
          f"{'(b)':>9} {'(c)':>7} {'(d)':>7} {'(c)-(a)':>7} | {'c/a':>7} {'b/c':>8} | "
          f"{'(a)':>6} {'(b)':>6} {'(c)':>6} {'(d)':>6}")
    for label, sleep_s, count, count_ray, a, b, c, d in rows:
        ideal = sleep_s * 1000 / SLOTS
        pa, pb, pc, pd = per(a, count), per(b, count_ray), per(c, count), per(d, count)
        print(f"{label:>6} {count:>7} | {pa:>8.2f} {pb:>9.1f} {pc:>9.2f} {pd:>9.2f} | "
              f"{(pb - ideal) * SLOTS:>9.1f} {(pc - ideal) * SLOTS:>7.1f} "
              f"{(pd - ideal) * SLOTS:>7.1f} {(pc - pa) * SLOTS:>7.1f} | "
              f"{pc / pa:>7.1f} {pb / pc:>8.1f} | {efficiency(a, count, sleep_s)} "
              f"{efficiency(b, count_ray, sleep_s)} {efficiency(c, count, sleep_s)} "
              f"{efficiency(d, count, sleep_s)}")
    noop = rows[0]
    extra = (per(noop[6], noop[2]) - per(noop[4], noop[2])) * SLOTS
    above_floor = (per(noop[6], noop[2]) - per(noop[7], noop[2])) * SLOTS
    print(f"\nautoml per-trial overhead above plain Optuna (no-op, per slot): {extra:.1f} ms, "
          f"of which {above_floor:.1f} ms above Ray Tune's floor (d); "
          f"Ray Tune defaults / automl (no-op): x{per(noop[5], noop[3]) / per(noop[6], noop[2]):.1f}")
    print(f"automl on the quickstart's conditional space (no-op, TPE multivariate, {n} trials): "
          f"{per(quick_space, n):.1f} ms per trial (the sampler's own cost grows with the trials)")
    print(f"Ray Tune defaults ran {statistics.fmean([r[3] for r in rows]):.0f} trials per row on "
          "average (about a second each; the per-trial figure is what compares)")
    from benchmarks import real_path

    real_trials = 8 if args.quick else 60
    real_path.print_tables(real_path.measure(real_trials, 1 if args.quick else 2), real_trials,
                           per(noop[6], noop[2]))

if __name__ == "__main__":
    main()
