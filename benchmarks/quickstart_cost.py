"""What a real quickstart trial costs: ``experiments/quickstart.yaml`` run through the library.

The experiment runs as ``automl run`` runs it (embedded Ray, a SQLite store, artifacts on disk),
with the database and the artifacts in a temporary directory. Reported: the run's wall time, wall
time per trial (the run's wall divided by the trials it finished), the mean and median trial
duration as the store recorded it (from the trial's start to its result, early-stopped trials
included) and the mean of the completed trials (only those reach the final scoring, where the
latency metrics ran). Last, the latency metrics' own cost on the largest quickstart models,
measured in this process. Unlike the overhead benchmark's no-op rows, this is the platform's real per-trial work:
training, pruning, fine-tuning, scoring and any metric the experiment records.

    python -m benchmarks.quickstart_cost [--quick] [--trials 24] [--repeat 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from benchmarks.harness import REPO, code_version

EXPERIMENT = REPO / "experiments" / "quickstart.yaml"


def run_once(trials: int, tmp: Path, index: int) -> dict[str, float]:
    """One quickstart run of ``trials`` trials; wall and per-trial figures."""
    import automl

    started = time.perf_counter()
    result = automl.run(str(EXPERIMENT), db=f"sqlite:///{tmp}/bench-{index}.db",
                        artifacts=str(tmp / f"runs-{index}"), max_trials=trials,
                        name=f"quickstart-cost-{index}")
    wall = time.perf_counter() - started
    finished = [t for t in result.trials if t.duration_s is not None]
    durations = [t.duration_s for t in finished]
    full = [t.duration_s for t in finished if t.status == "completed"]
    return {"wall": wall, "trials": len(finished),
            "per_trial": wall / max(len(finished), 1),
            "mean": statistics.fmean(durations) if durations else float("nan"),
            "median": statistics.median(durations) if durations else float("nan"),
            "completed_mean": statistics.fmean(full) if full else float("nan"),
            "completed": len(full)}


def latency_metric_s(repeat: int = 3) -> dict[str, float]:
    """Seconds the two latency metrics take on the largest quickstart models (what a completed
    trial spent on them when they were recorded always): median of ``repeat`` measurements."""
    import numpy as np

    from automl.components import DataSpec, EvalContext
    from automl.config import load_experiment
    from automl.data import prepare_data
    from automl.plugin_manager import load_plugins

    config = load_experiment(EXPERIMENT).config
    registry = load_plugins(autoload=False).registry
    spec: DataSpec = prepare_data(config, registry).spec
    models = {"mlp": {"depth": 2, "width": 512, "dropout": 0.1},
              "cnn": {"channels": 64, "depth": 2, "kernel": 3, "dropout": 0.1}}
    out = {}
    for arch, params in models.items():
        entry = registry.get("architecture", arch)
        defaults = {k: getattr(d.default, "value", None) for k, d in entry.cls.params.items()}
        defaults.update({k: d.default.options[0] for k, d in entry.cls.params.items()
                         if hasattr(d.default, "options")})
        model = entry.create().build({**defaults, **params}, spec).eval()
        ctx = EvalContext(np.zeros(1, dtype=np.int64), np.zeros((1, spec.num_classes)), model,
                          spec, "val")
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            for name in ("latency_ms", "latency64_ms"):
                registry.create("metric", name).compute(ctx)
            times.append(time.perf_counter() - started)
        out[arch] = statistics.median(times)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="4 trials, one run")
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    trials = 4 if args.quick else args.trials
    repeat = 1 if args.quick else args.repeat

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    print(f"$ python -m benchmarks.quickstart_cost {' '.join(sys.argv[1:])}")
    print(f"date {date.today()}, {os.cpu_count()} CPUs, {code_version()}; "
          f"{trials} trials of experiments/quickstart.yaml per run, {repeat} run(s)")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for index in range(repeat):
            rows.append(run_once(trials, Path(tmp), index))
    print(f"{'run':>3} {'trials':>6} {'completed':>9} {'wall s':>7} {'wall s/trial':>12} "
          f"{'trial mean s':>12} {'trial median s':>14} {'completed mean s':>16}")
    for index, row in enumerate(rows):
        print(f"{index:>3} {row['trials']:>6.0f} {row['completed']:>9.0f} {row['wall']:>7.1f} "
              f"{row['per_trial']:>12.2f} {row['mean']:>12.2f} {row['median']:>14.2f} "
              f"{row['completed_mean']:>16.2f}")
    costs = latency_metric_s()
    print("latency_ms + latency64_ms on one quickstart model (s): "
          + ", ".join(f"{arch} {value:.2f}" for arch, value in costs.items()))
    print(f"quickstart wall s/trial {statistics.fmean(r['per_trial'] for r in rows):.2f}, "
          f"trial mean s {statistics.fmean(r['mean'] for r in rows):.2f}")


if __name__ == "__main__":
    main()
