"""What the results store adds per trial: SQLite vs PostgreSQL, and Optuna's study storage.

For each backend: the driver's two store transactions per trial (``start_trial`` +
``finish_trial`` with a 12-epoch history, as the recorder writes them) and an Optuna ask/tell
cycle with one float parameter: in memory, Optuna's RDB storage on the same database, and
automl's ``MirroredStorage`` (in memory, finished trials written through to that database). PostgreSQL is a
real server started on loopback for the run (the tests' helper; skipped if the binaries are
missing).

Live results: the driver's recorder (:class:`automl.search.recorder.StoreRecorder`, real Ray Tune
trial objects, no cluster) fed 12 epochs a trial, two trials at a time, each round of epochs
``EPOCH_GAP_S`` apart (a trial lasts 0.24 s). The time spent in the recorder's live history
writes (:meth:`StoreRecorder.flush`), per trial, is what live results cost a trial (the
callbacks' total, with the start and final rows, is shown beside it): with the default flush
interval (1 s: trials shorter than the interval share its writes), and with the interval set to
the epochs' gap, so every
epoch of every trial is written while the trial runs (the most writes live results can cause,
as when epochs are a second or more apart: one transaction per round of epochs, for both
trials).

    python -m benchmarks.store [--quick] [--trials 200]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import date

REPO_TESTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def store_ms(url: str, n: int) -> float:
    from automl.store import Store

    store = Store(url)
    exp = store.create_experiment(name=f"bench-{time.time_ns()}", seed=0, config={},
                                  objectives=[{"metric": "accuracy", "mode": "max"}], plugins={},
                                  automl_version="bench", artifacts_dir="/tmp")
    history = [{"epoch": e, "train/loss": 0.5, "val/accuracy": 0.9} for e in range(1, 13)]
    started = time.perf_counter()
    for number in range(n):
        store.start_trial(exp, number, f"t{number}", {"architecture": "mlp", "training.lr": 0.01})
        store.finish_trial(exp, number, status="completed",
                           metrics={"val/accuracy": 0.9, "test/accuracy": 0.9}, history=history,
                           seed=1, node="n", device="cpu", checkpoint="/x", error=None)
    elapsed = time.perf_counter() - started
    store.close()
    return elapsed / n * 1000


EPOCHS = 12
SLOTS = 2
EPOCH_GAP_S = 0.02


def recorder_ms(url: str, n: int, interval_s: float) -> tuple[float, float, int]:
    """Milliseconds per trial the recorder's callbacks take (start, 12 epochs, finish) and its
    live history writes take, and the number of those writes (transactions)."""
    from ray.tune.experiment import Trial

    from automl.lifecycle import ExperimentInfo
    from automl.plugin_manager import load_plugins
    from automl.search.recorder import StoreRecorder
    from automl.store import Store

    store = Store(url)
    name = f"live-{time.time_ns()}"
    exp = store.create_experiment(name=name, seed=0, config={},
                                  objectives=[{"metric": "accuracy", "mode": "max"}], plugins={},
                                  automl_version="bench", artifacts_dir="/tmp")
    recorder = StoreRecorder(store, exp, ExperimentInfo(name, {}, url, "/tmp"),
                             load_plugins(autoload=False), flush_interval_s=interval_s)
    writes, writing = 0, 0.0
    flush = recorder.flush

    def counted(due_only: bool = False) -> int:
        nonlocal writes, writing
        started = time.perf_counter()
        done = flush(due_only)
        if done:
            writing += time.perf_counter() - started
            writes += 1
        return done

    recorder.flush = counted  # type: ignore[method-assign]
    spent = 0.0
    for first in range(0, n, SLOTS):
        trials = [Trial("run_trial", config={"x": i}, trial_id=f"t{i:05d}", stub=True)
                  for i in range(first, min(first + SLOTS, n))]
        started = time.perf_counter()
        for trial in trials:
            recorder.on_trial_start(0, trials, trial)
        spent += time.perf_counter() - started
        for epoch in range(1, EPOCHS + 1):
            time.sleep(EPOCH_GAP_S)
            started = time.perf_counter()
            for trial in trials:
                recorder.on_trial_result(0, trials, trial, {
                    "epoch": epoch, "train/loss": 1 / epoch, "val/accuracy": 0.5 + epoch / 100,
                    "val/log_loss": 1 / epoch, "training_iteration": epoch})
            recorder.on_step_end(0, trials)
            spent += time.perf_counter() - started
        for trial in trials:
            trial.run_metadata.last_result = {"val/accuracy": 0.9, "automl/final": 1,
                                              "epoch": EPOCHS}
        started = time.perf_counter()
        for trial in trials:
            recorder.on_trial_complete(0, trials, trial)
        spent += time.perf_counter() - started
    store.close()
    return spent / n * 1000, writing / n * 1000, writes


def optuna_ms(storage: object, n: int) -> float:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(storage=storage, study_name=f"bench-{time.time_ns()}",
                                sampler=optuna.samplers.TPESampler(seed=0))
    started = time.perf_counter()
    for _ in range(n):
        trial = study.ask()
        study.tell(trial, trial.suggest_float("x", 0.0, 1.0))
    return (time.perf_counter() - started) / n * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--trials", type=int, default=200)
    args = parser.parse_args()
    n = 30 if args.quick else args.trials

    import optuna
    import sqlalchemy

    from automl.study import MirroredStorage, optuna_storage

    print(f"$ python -m benchmarks.store {' '.join(sys.argv[1:])}")
    print(f"date {date.today()}, {os.cpu_count()} CPUs, SQLAlchemy {sqlalchemy.__version__}, "
          f"optuna {optuna.__version__}; {n} trials per row")
    rows = []
    live = []

    def live_row(backend: str, url: str) -> None:
        from automl.search.recorder import FLUSH_INTERVAL_S

        m = max(n // 4, 30)  # the epochs' gaps make these rows slow (0.12 s a trial)
        for label, interval in ((f"{FLUSH_INTERVAL_S:g} s", FLUSH_INTERVAL_S),
                                ("every epoch", EPOCH_GAP_S)):
            live.append((backend, label, m, *recorder_ms(url, m, interval)))

    with tempfile.TemporaryDirectory() as tmp:
        sqlite = f"sqlite:///{tmp}/bench.db"
        rows.append(("sqlite", store_ms(sqlite, n), optuna_ms(None, n),
                     optuna_ms(optuna_storage(sqlite), n), optuna_ms(MirroredStorage(sqlite), n)))
        live_row("sqlite", sqlite)
        server = None
        try:
            sys.path.insert(0, REPO_TESTS)
            from tests.postgres import start_server

            server = start_server()
            os.environ["PGPASSWORD"] = server.password
            pg = server.new_database("bench")
            rows.append(("postgresql", store_ms(pg, n), optuna_ms(None, n),
                         optuna_ms(optuna_storage(pg), n), optuna_ms(MirroredStorage(pg), n)))
            live_row("postgresql", pg)
        except Exception as exc:  # noqa: BLE001 - no server here: report and go on
            print(f"postgresql skipped: {type(exc).__name__}: {exc}".splitlines()[0])
        finally:
            if server is not None:
                server.stop()
    print(f"\n{'backend':<11} {'store ms/trial':>15} {'optuna mem ms':>14} {'optuna RDB ms':>14} "
          f"{'mirrored ms':>12} {'RDB / mirrored':>15}")
    for name, store, mem, rdb, mirrored in rows:
        print(f"{name:<11} {store:>15.2f} {mem:>14.2f} {rdb:>14.2f} {mirrored:>12.2f} "
              f"{rdb / mirrored:>15.1f}")
    print(f"\nper trial the driver adds store + (mirrored - mem) ms; median over backends: "
          f"{statistics.median(r[1] + r[4] - r[2] for r in rows):.1f} ms "
          f"(with Optuna's RDB storage read directly: "
          f"{statistics.median(r[1] + r[3] - r[2] for r in rows):.1f} ms)")
    print(f"\nlive results: recorder callbacks per trial ({EPOCHS} epochs in "
          f"{EPOCHS * EPOCH_GAP_S:.2f} s, {SLOTS} trials at a time)")
    print(f"{'backend':<11} {'interval':>12} {'trials':>6} {'callbacks ms':>13} "
          f"{'live writes ms':>15} {'writes':>7} {'ms/write':>9}")
    for name, label, m, total, writing, writes in live:
        print(f"{name:<11} {label:>12} {m:>6} {total:>13.2f} {writing:>15.2f} {writes:>7} "
              f"{writing * m / max(writes, 1):>9.2f}")
    print("(live writes ms: per trial; with the 1 s interval the writes of trials shorter than "
          "a second are shared, when every epoch is written each write carries both trials)")


if __name__ == "__main__":
    main()
