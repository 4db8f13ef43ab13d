"""How long ``automl report`` takes for a large search: 1,000 synthetic trials in a SQLite store.

The trials are written through the store's own API as a search writes them: two architectures
with conditional parameters, two augmentations, a pruning ratio, training parameters; completed,
early-stopped, failed and running trials with per-epoch histories; an ensemble and a final
evaluation. Timed: reading the experiment from the store, building the sections (figures,
importances) and the page; and the ``automl report`` command as a user runs it (a fresh process:
Python, automl, plotly and Optuna's importance module imported, which is most of its time), each
as wall and CPU time (on a shared machine the CPU time is the steadier figure).

    python -m benchmarks.report_speed [--quick] [--trials 1000]
"""

from __future__ import annotations

import argparse
import math
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from sqlalchemy import update

EPOCHS = 12
#: status of a synthetic trial by its number's share: most finish, ASHA stops many early
STATUSES = (("completed", 0.42), ("early_stopped", 0.51), ("failed", 0.07))
#: trials at once: the last ones of an experiment that is still running are running
CONCURRENT = 4


def write_synthetic_experiment(url: str, name: str, trials: int, seed: int = 0, *,
                               finished: bool = True, objectives: list[dict] | None = None
                               ) -> None:
    """An experiment of ``trials`` trials in the store at ``url`` (see the module doc).

    With ``finished`` false the experiment stays ``running`` with no ensemble or evaluation, and
    its last trials are running, holding the epochs so far (written into the row, as a live
    store does).
    """
    from automl.store import EnsembleRecord, EvaluatedSubject, ExperimentStatus, Store
    from automl.store.schema import TrialRow
    from automl.store.store import now

    rng = random.Random(seed)
    objectives = objectives or [{"metric": "accuracy", "mode": "max"}]
    config = {"name": name, "description": "synthetic", "seed": seed,
              "dataset": {"name": "synthetic", "split": {"val": 0.2, "test": 0.2}},
              "training": {"epochs": EPOCHS, "lr": {"low": 1e-4, "high": 1e-2, "log": True}},
              "architecture": {"mlp": {"width": {"low": 32, "high": 512, "log": True}}},
              "search": {"sampler": "tpe", "early_stopping": "asha", "num_trials": trials,
                         "max_concurrent": CONCURRENT}}
    with Store(url) as store:
        exp = store.create_experiment(name=name, seed=seed, config=config, objectives=objectives,
                                      plugins={}, automl_version="synthetic",
                                      artifacts_dir="/tmp")
        running_histories = {}
        completed = []
        for number in range(trials):
            status = "running" if not finished and number >= trials - CONCURRENT \
                else _status(rng)
            params, quality = _params(rng)
            store.start_trial(exp, number, f"t{number}", params)
            epochs = EPOCHS if status == "completed" else rng.randint(1, EPOCHS - 1)
            history = [{"epoch": e, "train/loss": 2.0 * math.exp(-e * quality / 3),
                        "val/accuracy": quality * (1 - math.exp(-e / 2)) + rng.gauss(0, 0.01)}
                       for e in range(1, epochs + 1)]
            if status == "running":
                running_histories[number] = history
                continue
            metrics = {"val/accuracy": history[-1]["val/accuracy"],
                       "val/log_loss": 1.0 - history[-1]["val/accuracy"] + rng.random() * 0.1}
            if status == "completed":
                completed.append(number)
                ratio = params["pruning.magnitude.ratio"]
                size = params.get("architecture.mlp.width", 64) * 900.0
                metrics |= {"model/params": size, "model/nonzero_params": size * (1 - ratio),
                            "model/latency_ms": size / 2e5 * (1 - 0.5 * ratio)
                            + rng.random() * 0.05}
            error = (f"Traceback (most recent call last):\n  ...\n"
                     f"{rng.choice(['RuntimeError', 'ValueError'])}: synthetic failure "
                     f"{number}") if status == "failed" else None
            store.finish_trial(exp, number, status=status, metrics=metrics, history=history,
                               seed=number, node="synthetic", device="cpu",
                               checkpoint=None, error=error)
        with store._write() as session:  # noqa: SLF001 - the epochs so far, as a live store has
            for number, history in running_histories.items():
                session.execute(update(TrialRow).where(TrialRow.experiment_id == exp,
                                                       TrialRow.number == number)
                                .values(history=history))
        if not finished:
            return
        record = store.experiment(name)
        best = max((t for t in record.trials if t.status == "completed"),
                   key=lambda t: t.metrics["val/accuracy"])
        members = completed[:3]
        ensemble = EnsembleRecord(
            ensembler="greedy", settings={}, metric="accuracy", members=members,
            weights=[1 / len(members)] * len(members), best_single=best.number,
            scores={"ensemble": {"val_check/accuracy": 0.97, "val_check/log_loss": 0.09},
                    "best_single": {"val_check/accuracy": 0.96, "val_check/log_loss": 0.11}},
            note=None, created_at=now())
        ensemble_id = store.add_ensemble(name, ensemble)
        store.add_evaluation(name, [
            EvaluatedSubject("trial", best.number, None, ["best"],
                             {"test/accuracy": 0.95, "test/log_loss": 0.12}),
            EvaluatedSubject("ensemble", None, ensemble_id, ["ensemble"],
                             {"test/accuracy": 0.96, "test/log_loss": 0.1})])
        store.finish_experiment(exp, ExperimentStatus.COMPLETED)


def _status(rng: random.Random) -> str:
    draw, total = rng.random(), 0.0
    for status, share in STATUSES:
        total += share
        if draw < total:
            return status
    return STATUSES[0][0]


def _params(rng: random.Random) -> tuple[dict, float]:
    """Sampled parameters (conditional on the architecture) and the trial's attainable score."""
    architecture = rng.choice(["mlp", "cnn"])
    params: dict = {"architecture": architecture}
    if architecture == "mlp":
        params["architecture.mlp.width"] = int(math.exp(rng.uniform(math.log(32),
                                                                    math.log(512))))
        params["architecture.mlp.depth"] = rng.randint(1, 3)
    else:
        params["architecture.cnn.channels"] = rng.randint(16, 64)
    shift = rng.random() < 0.5
    params["augmentation.shift.enabled"] = shift
    if shift:
        params["augmentation.shift.p"] = rng.random()
    params["augmentation.noise.enabled"] = rng.random() < 0.5
    params["pruning"] = "magnitude"
    params["pruning.magnitude.ratio"] = rng.uniform(0.0, 0.7)
    params["training.lr"] = math.exp(rng.uniform(math.log(1e-4), math.log(1e-2)))
    params["training.batch_size"] = rng.choice([32, 64])
    params["training.optimizer"] = rng.choice(["adam", "adamw"])
    params["training.momentum"] = 0.9
    lr_fit = 1 - abs(math.log10(params["training.lr"]) + 2.5) / 2.5
    quality = 0.75 + 0.15 * lr_fit + (0.05 if architecture == "cnn" else 0.0) \
        - 0.1 * params["pruning.magnitude.ratio"] ** 2
    return params, min(quality, 0.995)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--trials", type=int, default=1000)
    args = parser.parse_args()
    n = 100 if args.quick else args.trials

    import plotly

    from benchmarks.harness import code_version

    print(f"$ python -m benchmarks.report_speed {' '.join(sys.argv[1:])}")
    print(f"date {date.today()}, {os.cpu_count()} CPUs, plotly {plotly.__version__}, "
          f"{code_version()}; {n} trials")
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        started = time.perf_counter()
        write_synthetic_experiment(url, "bench", n)
        print(f"writing the synthetic experiment: {time.perf_counter() - started:.1f} s")

        started = time.perf_counter()
        import optuna.importance  # noqa: F401 - what the sections import, timed apart
        import plotly.graph_objects  # noqa: F401

        from automl.report import report_sections
        from automl.report.page import render_page
        from automl.store import Store
        imports = time.perf_counter() - started

        started = time.perf_counter()
        with Store(url, create=False) as store:
            exp = store.experiment("bench")
        read = time.perf_counter() - started
        started, cpu = time.perf_counter(), time.process_time()
        sections = report_sections(exp)
        html = render_page("bench", "", sections)
        built, built_cpu = time.perf_counter() - started, time.process_time() - cpu
        output = Path(tmp) / "bench.html"
        command = [sys.executable, "-m", "automl", "report", "bench", "--db", url, "-o",
                   str(output)]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, timeout=600)
        cli = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cli_cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        if done.returncode:
            raise SystemExit(done.stdout + done.stderr)
        load = os.getloadavg()[0]
        print(f"\n{'trials':>7} {'imports s':>10} {'read s':>7} {'sections+page s':>16} "
              f"{'(CPU s)':>8} {'automl report s':>16} {'(CPU s)':>8} {'page MB':>8}")
        print(f"{n:>7} {imports:>10.2f} {read:>7.2f} {built:>16.2f} {built_cpu:>8.2f} "
              f"{cli:>16.2f} {cli_cpu:>8.2f} {len(html.encode()) / 1e6:>8.1f}")
        print(f"load average {load:.1f} on {os.cpu_count()} CPUs while it ran (wall times grow "
              "with it; CPU times much less)")

if __name__ == "__main__":
    main()
