"""Ensemble gain: the ensemble stage's test accuracy against the best single trial's.

For digits (experiments/quickstart.yaml), wine (experiments/wine.yaml, with the single objective
``[accuracy]`` in the temp copy, so the search and the "best single trial" are about accuracy
alone) and breast cancer (experiments/breast_cancer_mlp.yaml), and several seeds (the seed sets
the split, the sampler, the trials' training seeds and the ensemble's held-out part), runs the
experiment through ``automl.run`` with the ensemble stage on (default: greedy), then runs the stage
again on the stored experiment as ``automl ensemble NAME --ensembler E`` does
(``automl.runner.ensemble_again``: the stage, then a new final evaluation) with ``greedy`` and
with ``weighted``. Reported per dataset and ensembler: ensemble test accuracy minus the best
single trial's, both from that final evaluation (:mod:`automl.evaluate`: the test split scored
once, after the weights are final), how many members kept a non-zero weight, how often the
held-out guard fell back to the best single trial (the record's note), and the stage's own run
time (its ``EnsembleFinished`` event). The greedy re-run is also checked against the record the
run stored (same members, weights and scores).

    python -m benchmarks.ensemble_gain [--quick] [--seeds N]

Full mode (3 seeds, each file's own trial budget: 24, 30, 30): about 2.5 minutes on 2 cores;
``--quick`` (1 seed, wine and breast_cancer only): about 30 s. (Fewer trials are no quicker
check: with ASHA on the quickstart only about one trial in five runs to the end, and the stage
needs two completed trials; a run whose stage was skipped is listed as such.)
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import yaml

from benchmarks.harness import code_version, start_ray

REPO = Path(__file__).resolve().parents[1]
DATASETS = {  # label: (experiment file, changes to its document)
    "digits": ("quickstart.yaml", {}),
    "wine": ("wine.yaml", {"objectives": [{"metric": "accuracy", "mode": "max"}]}),
    "breast_cancer": ("breast_cancer_mlp.yaml", {}),
}
ENSEMBLERS = ("greedy", "weighted")
SLOTS = 2


@dataclass
class Row:
    dataset: str
    ensembler: str
    seed: int
    trials: int
    completed: int
    candidates: int
    members: int
    ensemble_test: float
    single_test: float
    ensemble_check: float
    single_check: float
    fell_back: bool
    stage_s: float
    in_run_stage_s: float | None = None
    same_as_stored: bool | None = None

    @property
    def gain(self) -> float:
        return self.ensemble_test - self.single_test

    @property
    def check_gain(self) -> float:
        return self.ensemble_check - self.single_check


def experiment_file(tmp: Path, dataset: str, seed: int, trials: int | None) -> tuple[Path, str]:
    filename, changes = DATASETS[dataset]
    config = yaml.safe_load((REPO / "experiments" / filename).read_text())
    name = f"eg-{dataset.replace('_', '-')}-s{seed}"
    config.update(changes)
    config["name"], config["seed"] = name, seed
    config["ensemble"] = {"ensembler": "greedy"}
    if trials:
        config["search"] = {**config.get("search", {}), "num_trials": trials}
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path, name


def run_one(tmp: Path, dataset: str, seed: int, trials: int | None
            ) -> tuple[list[Row], str | None]:
    """The rows for each ensembler, or no rows and why the run's stage was skipped."""
    import automl
    from automl.config.models import EnsembleConfig
    from automl.events import EnsembleFinished, EnsembleSkipped
    from automl.runner import ensemble_again
    from automl.store import Store

    path, name = experiment_file(tmp, dataset, seed, trials)
    db = f"sqlite:///{tmp}/bench.db"
    events: list = []
    result = automl.run(str(path), db=db, artifacts=str(tmp / "runs"), listener=events.append)
    stage = next((e for e in events if isinstance(e, (EnsembleFinished, EnsembleSkipped))), None)
    in_run_s = stage.elapsed_s if isinstance(stage, EnsembleFinished) else None

    with Store(db, create=False) as store:
        stored = store.experiment(name).ensemble
    if stored is None:
        return [], (stage.reason if isinstance(stage, EnsembleSkipped) else "no ensemble stored")
    rows = []
    for ensembler in ENSEMBLERS:
        # the defaults of the ensemble section with this ensembler, as before the recorded one
        overrides = EnsembleConfig(ensembler=ensembler).model_dump(exclude={"enabled"})
        refit: list = []
        with Store(db) as store:
            outcome = ensemble_again(store, name, overrides, refit.append)
            evaluation = store.experiment(name).evaluation
        record = outcome.record
        assert record is not None and evaluation is not None, outcome.skipped
        assert evaluation.ensemble() is not None and evaluation.ensemble().ensemble_id == record.id
        stage_s = next(e.elapsed_s for e in refit if isinstance(e, EnsembleFinished))
        ens, single = record.scores["ensemble"], record.scores["best_single"]
        assert evaluation.best().trial == record.best_single
        row = Row(dataset, ensembler, seed, len(result.trials),
                  sum(t.status == "completed" for t in result.trials), len(outcome.candidates),
                  len(record.members), evaluation.ensemble().metrics["test/accuracy"],
                  evaluation.best().metrics["test/accuracy"],
                  ens["val_check/accuracy"], single["val_check/accuracy"],
                  record.note is not None, stage_s)
        if ensembler == stored.ensembler:
            row.in_run_stage_s = in_run_s
            row.same_as_stored = (record.members == stored.members
                                  and record.weights == stored.weights
                                  and record.scores == stored.scores)
        rows.append(row)
    return rows, None


def summary(values: list[float], fmt: str = "{:+.4f}") -> str:
    if not values:
        return "-"
    ordered = sorted(values)
    med = fmt.format(statistics.median(ordered))
    if len(ordered) == 1:
        return med
    return f"{med} [{fmt.format(ordered[0])}, {fmt.format(ordered[-1])}]"


def print_table(rows: list[Row]) -> None:
    keys = list(dict.fromkeys((r.dataset, r.ensembler) for r in rows))
    table = []
    for dataset, ensembler in keys:
        group = [r for r in rows if (r.dataset, r.ensembler) == (dataset, ensembler)]
        table.append((
            dataset, ensembler, str(len(group)),
            summary([r.gain for r in group]),
            f"{sum(r.gain > 0 for r in group)}/{sum(r.gain == 0 for r in group)}/"
            f"{sum(r.gain < 0 for r in group)}",
            summary([r.ensemble_test for r in group], "{:.4f}"),
            summary([r.single_test for r in group], "{:.4f}"),
            summary([r.check_gain for r in group]),
            summary([float(r.members) for r in group], "{:.0f}"),
            f"{sum(r.fell_back for r in group)}/{len(group)}",
            summary([r.stage_s for r in group], "{:.2f}"),
        ))
    head = ("dataset", "ensembler", "seeds", "test acc gain", "+/0/-", "ensemble test",
            "best single test", "held-out val gain", "members", "guard", "stage s")
    widths = [max(len(row[i]) for row in [head, *table]) for i in range(len(head))]
    fmt = "  ".join(f"{{:<{w}}}" if i < 2 else f"{{:>{w}}}" for i, w in enumerate(widths))
    print(fmt.format(*head))
    print("-" * (sum(widths) + 2 * (len(widths) - 1)))
    for row in table:
        print(fmt.format(*row))
    print("median [min, max] over seeds; gain = ensemble - best single trial (test accuracy); "
          "+/0/-: seeds with a gain above, at, below zero; held-out val gain: the same on the "
          "half of the validation split the weights were not fitted on (what the guard checks); "
          "members: trials with non-zero weight; guard: seeds where the guard fell back to the "
          "best single trial")


def print_per_seed(rows: list[Row]) -> None:
    print(f"{'dataset':<14} {'ensembler':<9} {'seed':>4} {'trials':>6} {'done':>4} "
          f"{'cand':>4} {'members':>7} {'ens test':>8} {'single':>7} {'gain':>8} "
          f"{'chk gain':>8} {'guard':>5} {'stage s':>7} {'in-run s':>8} {'=stored':>7}")
    for r in rows:
        print(f"{r.dataset:<14} {r.ensembler:<9} {r.seed:>4} {r.trials:>6} {r.completed:>4} "
              f"{r.candidates:>4} {r.members:>7} {r.ensemble_test:>8.4f} {r.single_test:>7.4f} "
              f"{r.gain:>+8.4f} {r.check_gain:>+8.4f} {('yes' if r.fell_back else 'no'):>5} "
              f"{r.stage_s:>7.2f} "
              f"{(f'{r.in_run_stage_s:.1f}' if r.in_run_stage_s is not None else '-'):>8} "
              f"{('-' if r.same_as_stored is None else str(r.same_as_stored)):>7}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="1 seed, the two tabular datasets (a smoke check)")
    parser.add_argument("--seeds", type=int, default=None, help="seeds 0..N-1 (default 3; quick 1)")
    parser.add_argument("--trials", type=int, default=None,
                        help="trials per search (default: each file's own)")
    args = parser.parse_args()
    seeds = args.seeds or (1 if args.quick else 3)
    trials = args.trials
    datasets = [d for d in DATASETS if not args.quick or d != "digits"]

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import optuna
    import ray
    import torch


    print(f"$ python -m benchmarks.ensemble_gain {' '.join(sys.argv[1:])}")
    print(f"date {date.today()}, nproc {os.cpu_count()}, load average at start "
          f"{os.getloadavg()[0]:.1f}, Python {platform.python_version()}, "
          f"torch {torch.__version__}, "
          f"ray {ray.__version__}, optuna {optuna.__version__}; {code_version()}")
    print(f"datasets {', '.join(datasets)}; seeds 0..{seeds - 1}; trials per search: "
          f"{trials or 'as in each file'}; {SLOTS} trials at a time; ensemblers "
          f"{', '.join(ENSEMBLERS)} with their default settings (8 candidates, half the "
          "validation split held out)")
    started = time.perf_counter()
    print(f"embedded Ray start: {start_ray(SLOTS):.1f} s (once)", flush=True)
    rows: list[Row] = []
    skips: list[str] = []
    with tempfile.TemporaryDirectory(prefix="automl-bench-") as tmp_name:
        for dataset in datasets:
            for seed in range(seeds):
                tick = time.perf_counter()
                found, skipped = run_one(Path(tmp_name), dataset, seed, trials)
                rows += found
                if skipped:
                    skips.append(f"{dataset} seed {seed}: {skipped}")
                print(f"{dataset} seed {seed}: "
                      + (f"ensemble skipped ({skipped})" if skipped else
                         f"{found[0].trials} trials, "
                         + ", ".join(f"{r.ensembler} {r.gain:+.4f}" for r in found))
                      + f" ({time.perf_counter() - tick:.0f} s)", flush=True)
    ray.shutdown()
    print()
    print_table(rows)
    for line in skips:
        print(f"skipped: {line}")
    print()
    print_per_seed(rows)
    searches = len(rows) // len(ENSEMBLERS) + len(skips)
    print(f"\n{searches} searches in {time.perf_counter() - started:.0f} s "
          f"(load average at the end {os.getloadavg()[0]:.1f}); stage s: run_ensemble_stage "
          "timed here on the stored experiment; in-run s: the stage's time as the run printed it")


if __name__ == "__main__":
    main()
