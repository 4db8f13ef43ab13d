"""What the results store adds per trial: SQLite vs PostgreSQL, and Optuna's study storage.

For each backend: the driver's two store transactions per trial (``start_trial`` +
``finish_trial`` with a 12-epoch history, as the recorder writes them) and an Optuna ask/tell
cycle with one float parameter: in memory, Optuna's RDB storage on the same database, and
automl's ``MirroredStorage`` (in memory, finished trials written through to that database). PostgreSQL is a
real server started on loopback for the run (the tests' helper; skipped if the binaries are
missing).

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
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = f"sqlite:///{tmp}/bench.db"
        rows.append(("sqlite", store_ms(sqlite, n), optuna_ms(None, n),
                     optuna_ms(optuna_storage(sqlite), n), optuna_ms(MirroredStorage(sqlite), n)))
        server = None
        try:
            sys.path.insert(0, REPO_TESTS)
            from tests.postgres import start_server

            server = start_server()
            os.environ["PGPASSWORD"] = server.password
            pg = server.new_database("bench")
            rows.append(("postgresql", store_ms(pg, n), optuna_ms(None, n),
                         optuna_ms(optuna_storage(pg), n), optuna_ms(MirroredStorage(pg), n)))
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


if __name__ == "__main__":
    main()
