"""Hard constraints: a constrained search against the unconstrained one on the same budget.

The space is experiments/quickstart.yaml's (MLP or CNN on digits, shift and noise augmentation,
magnitude pruning, 12 epochs; of 200 random configurations, 45% have more than 20,000 parameters)
with a deployment bound ``params <= 20000`` (``--max-params``), without early stopping (so every
trial's final size is known). Per seed, the same trial budget:

(a) unconstrained: the file as is; which trials meet the bound is worked out afterwards from the
    parameter count every trial records (what a user without constraints would have to do);
(b) constrained: the same plus ``constraints: {params: {max: 20000}}``: the TPE sampler gets the
    constraint values, and only feasible trials can be chosen.

Reported per method (median [min-max] over seeds): the share of completed trials that meet the
bound, the best feasible validation accuracy, the test accuracy of that trial (scored after the
run from its stored test predictions, as in benchmarks/search_efficiency.py; for (b) it is the
final evaluation's), and the seconds from the search start until the first feasible trial ended.
The parameter count is deterministic, so unlike a latency bound the feasibility figures do not
depend on the machine's load; the seconds do.

    python -m benchmarks.constraints [--quick] [--seeds N] [--trials N] [--max-params N]

Full mode (3 seeds, 16 trials each): about 8 minutes on 2 idle cores; ``--quick`` (1 seed, 4
trials): about 1 minute.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.harness import environment_line, start_ray
from benchmarks.search_efficiency import SLOTS, experiment_file, summary, test_accuracies

REPO = Path(__file__).resolve().parents[1]
EXPERIMENT = REPO / "experiments" / "quickstart.yaml"


@dataclass
class Outcome:
    method: str
    seed: int
    completed: int
    feasible: int
    best_val: float | None
    best_test: float | None
    first_feasible_s: float | None
    wall_s: float


def run(tmp: Path, method: str, seed: int, trials: int, max_params: float,
        constrained: bool) -> Outcome:
    import yaml

    import automl
    from automl.store import Store

    name = f"cons-{'on' if constrained else 'off'}-s{seed}"
    # No early stopping: every trial finishes, so every trial's size is known and the shares
    # compare like with like (an early-stopped trial records no final model).
    path = experiment_file(EXPERIMENT, tmp, name, seed,
                           {"num_trials": trials, "early_stopping": "none"})
    if constrained:
        config = yaml.safe_load(path.read_text())
        config["constraints"] = {"params": {"max": max_params}}
        path.write_text(yaml.safe_dump(config, sort_keys=False))
    db = f"sqlite:///{tmp}/bench.db"
    automl.run(str(path), db=db, artifacts=str(tmp / "runs"))
    store = Store(db, create=False)
    try:
        experiment = store.experiment(name)
    finally:
        store.close()
    t0 = experiment.created_at
    done = [t for t in experiment.trials if t.status == "completed"]
    feasible = [t for t in done if t.metrics.get("model/params", float("inf")) <= max_params]
    best = max(feasible, key=lambda t: (t.metrics["val/accuracy"],
                                        -t.metrics.get("val/log_loss", 0.0), -t.number),
               default=None)
    tests = test_accuracies(experiment)
    if constrained and best is not None and experiment.evaluation is not None:
        assert experiment.evaluation.best().trial == best.number, "the benchmark and automl " \
            "chose different trials"
    ends = [(t.finished_at - t0).total_seconds() for t in feasible if t.finished_at]
    walls = [(t.finished_at - t0).total_seconds() for t in experiment.trials if t.finished_at]
    return Outcome(method, seed, len(done), len(feasible),
                   best.metrics["val/accuracy"] if best else None,
                   tests.get(best.number) if best else None,
                   min(ends) if ends else None, max(walls) if walls else float("nan"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1 seed, 4 trials (a smoke check)")
    parser.add_argument("--seeds", type=int, default=None, help="seeds 0..N-1 (default 3)")
    parser.add_argument("--trials", type=int, default=None, help="trials per run (default 16)")
    parser.add_argument("--max-params", type=float, default=20000)
    args = parser.parse_args()
    seeds = args.seeds or (1 if args.quick else 3)
    trials = args.trials or (4 if args.quick else 16)

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    print(environment_line("constraints"))
    print(f"{EXPERIMENT.name}, bound params <= {args.max_params:g}, {trials} trials a run, "
          f"{SLOTS} at a time, seeds 0..{seeds - 1}")
    started = time.perf_counter()
    print(f"embedded Ray start: {start_ray(SLOTS):.1f} s (once, not counted)", flush=True)
    outcomes: dict[str, list[Outcome]] = {"(a) unconstrained": [], "(b) constrained": []}
    with tempfile.TemporaryDirectory(prefix="automl-bench-") as tmp_name:
        tmp = Path(tmp_name)
        for seed in range(seeds):
            for method, constrained in (("(a) unconstrained", False), ("(b) constrained", True)):
                outcome = run(tmp, method, seed, trials, args.max_params, constrained)
                outcomes[method].append(outcome)
                print(f"seed {seed} {method}: {outcome.feasible}/{outcome.completed} feasible, "
                      f"{outcome.wall_s:.0f} s", flush=True)
    ray.shutdown()

    def fmt(value: float | None, pattern: str = "{:.4f}") -> str:
        return "-" if value is None else pattern.format(value)

    head = ("method", "feasible share", "best feasible val acc", "its test acc",
            "first feasible s", "search wall s")
    rows = []
    for method, runs in outcomes.items():
        rows.append((
            method,
            summary([r.feasible / r.completed for r in runs if r.completed], "{:.2f}".format),
            summary([r.best_val for r in runs if r.best_val is not None]),
            summary([r.best_test for r in runs if r.best_test is not None]),
            summary([r.first_feasible_s for r in runs if r.first_feasible_s is not None],
                    "{:.0f}".format),
            summary([r.wall_s for r in runs], "{:.0f}".format)))
    widths = [max(len(str(row[i])) for row in [head, *rows]) for i in range(len(head))]
    line = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
    print()
    print(line.format(*head))
    for row in rows:
        print(line.format(*row))
    print("\nper seed: method, seed, feasible/completed, best feasible val, its test, "
          "first feasible s")
    for method, runs in outcomes.items():
        for r in runs:
            print(f"  {method:<20} {r.seed:>2} {r.feasible:>3}/{r.completed:<3} "
                  f"{fmt(r.best_val)} {fmt(r.best_test)} {fmt(r.first_feasible_s, '{:.0f}')}")
    a = [r.feasible / r.completed for r in outcomes["(a) unconstrained"] if r.completed]
    b = [r.feasible / r.completed for r in outcomes["(b) constrained"] if r.completed]
    if a and b:
        print(f"\nfeasible share, constrained vs unconstrained (median): "
              f"{statistics.median(b):.2f} vs {statistics.median(a):.2f}")
    print(f"total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
