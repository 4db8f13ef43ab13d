"""What a real, tiny trial costs through ``automl run``, and where the time goes.

The overhead benchmark's no-op rows measure scheduling alone. Here the trial is real: an MLP
trained one epoch on wine, scored on validation, checkpointed with its predictions and recorded,
two trials at a time, run as a user runs it (``automl run x.yaml --log-lines`` in a fresh
process, embedded Ray, a SQLite store, artifacts on disk). One warm-up run first (the disk
caches), then ``--repeat`` measured runs. Reported:

- time from the command's start to each milestone of its output (Ray starting, data loaded,
  search started, the first trial's result), from the timestamps of its output lines;
- steady wall time per trial: once both Ray workers have finished their first trial (trials #0
  and #1: those also pay the worker's start and imports), wall time per later trial;
- where a steady trial's time goes: the phases each trial reports (``time/<phase>_s``: setup,
  training, evaluation each epoch, final scoring, checkpoint and predictions) and the rest of
  the wall time (Tune's trial lifecycle, reporting, recording);
- the first trial's phases (what a fresh worker pays: imports).

    python -m benchmarks.real_path [--quick] [--trials 60] [--repeat 2]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.harness import environment_line

SLOTS = 2
TINY = """\
name: real-path
seed: 0
dataset: wine
objectives:
  - {metric: accuracy, mode: max}
architecture:
  mlp:
    depth: 1
    width: {low: 8, high: 64, log: true}
training:
  epochs: 1
  batch_size: 32
search:
  sampler: tpe
  early_stopping: none
  max_concurrent: 2
  num_trials: 60
"""
#: the first output line of each milestone, as the CLI's --log-lines prints it
MILESTONES = (("Ray starting", "starting embedded Ray"), ("data loaded", "loaded in"),
              ("search started", " trials, "), ("first trial result", " completed "))
PHASES = ("setup", "train", "epoch_eval", "prune", "quantize", "final_eval", "artifacts")


def automl_command() -> list[str]:
    exe = shutil.which("automl", path=str(Path(sys.executable).parent))
    return [exe] if exe else [sys.executable, "-m", "automl.cli"]


def run_once(tmp: Path, trials: int, index: int) -> dict[str, Any]:
    """One ``automl run`` of the tiny experiment in a fresh process: milestones and trials."""
    experiment = tmp / "tiny.yaml"
    experiment.write_text(TINY)
    db = tmp / f"run-{index}.db"
    started = time.perf_counter()
    process = subprocess.Popen(
        [*automl_command(), "run", str(experiment), "--db", f"sqlite:///{db}", "--artifacts",
         str(tmp / f"runs-{index}"), "--log-lines", "--max-trials", str(trials)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    milestones: dict[str, float] = {}
    output = []
    assert process.stdout is not None
    for line in process.stdout:
        output.append(line)
        for label, marker in MILESTONES:
            if label not in milestones and marker in line:
                milestones[label] = time.perf_counter() - started
    wall = time.perf_counter() - started
    if process.wait() != 0:
        raise SystemExit("automl run failed:\n" + "".join(output[-20:]))
    return {"wall": wall, "milestones": milestones, "trials": read_trials(db)}


def read_trials(db: Path) -> list[dict[str, Any]]:
    import sqlalchemy as sa

    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.connect() as connection:
        rows = connection.execute(sa.text(
            "SELECT number, finished_at, metrics FROM automl_trials ORDER BY finished_at"
        )).mappings().all()
    engine.dispose()
    trials = []
    for row in rows:
        metrics = row["metrics"]
        metrics = json.loads(metrics) if isinstance(metrics, str) else metrics
        finished = row["finished_at"]
        if isinstance(finished, str):
            from datetime import datetime

            finished = datetime.fromisoformat(finished)
        trials.append({"number": row["number"], "finished": finished.timestamp(),
                       "metrics": metrics or {}})
    return trials


def steady(trials: list[dict[str, Any]]) -> dict[str, float]:
    """Wall per trial once both Ray workers have finished their first trial (trials #0 and #1
    start first, one per worker; workers are reused, so later trials pay no start or imports),
    and the phase means of the later trials."""
    warm_from = max(t["finished"] for t in trials if t["number"] < SLOTS)
    later = [t for t in trials if t["number"] >= SLOTS and t["finished"] > warm_from]
    per_trial = (later[-1]["finished"] - warm_from) / len(later) if later else float("nan")
    phases = {p: statistics.fmean(t["metrics"].get(f"time/{p}_s", 0.0) for t in later)
              if later else float("nan") for p in (*PHASES, "trial")}
    return {"per_trial_ms": per_trial * 1000, **{p: v * 1000 for p, v in phases.items()}}


def measure(trials: int, repeat: int) -> list[dict[str, Any]]:
    """``repeat`` measured runs of ``trials`` trials, after a warm-up run."""
    with tempfile.TemporaryDirectory() as tmp:
        run_once(Path(tmp), min(trials, 4), 0)  # warm-up: disk caches, not counted
        return [run_once(Path(tmp), trials, i + 1) for i in range(repeat)]


def print_tables(runs: list[dict[str, Any]], trials: int, noop_ms: float | None) -> None:
    print(f"\n(e) a real trial: {trials} trials of 1 epoch (wine, MLP), {SLOTS} at a time, "
          f"through `automl run` in a fresh process; {len(runs)} measured run(s) after a "
          "warm-up run")
    print("\ntime from the command's start (s)")
    print(f"{'run':>4} | " + " | ".join(f"{label:>18}" for label, _ in MILESTONES)
          + f" | {'command ends':>12}")
    for i, run in enumerate(runs, 1):
        print(f"{i:>4} | " + " | ".join(f"{run['milestones'].get(label, float('nan')):>18.2f}"
                                        for label, _ in MILESTONES) + f" | {run['wall']:>12.2f}")
    print("\nsteady trials (after each worker's first): wall per trial, its ratio to the no-op "
          "row (c), and each trial's phases (ms)")
    header = ["wall/trial", "x no-op", *PHASES, "in trial", "outside"]
    print(f"{'run':>4} | " + " ".join(f"{h:>10}" for h in header))
    for i, run in enumerate(runs, 1):
        s = steady(run["trials"])
        # two trials run at once: each slot spends wall/trial x slots per trial
        outside = s["per_trial_ms"] * SLOTS - s["trial"]
        ratio = s["per_trial_ms"] / noop_ms if noop_ms else float("nan")
        print(f"{i:>4} | {s['per_trial_ms']:>10.1f} {ratio:>10.2f} "
              + " ".join(f"{s[p]:>10.1f}" for p in PHASES)
              + f" {s['trial']:>10.1f} {outside:>10.1f}")
    print("\ntrial #0 (the first on a fresh Ray worker: imports), phases in s")
    for i, run in enumerate(runs, 1):
        first = next(t for t in run["trials"] if t["number"] == 0)["metrics"]
        print(f"{i:>4} | " + "  ".join(f"{p} {first.get(f'time/{p}_s', 0.0):.2f}"
                                        for p in (*PHASES, "trial")))
    print("\n'outside' = wall per trial x slots - time inside the trial function: Tune's trial "
          "lifecycle, reporting, the store and the study")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="8 trials, one measured run")
    parser.add_argument("--trials", type=int, default=60)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--noop-ms", type=float, default=None,
                        help="the overhead benchmark's no-op row (c), ms per trial, for the ratio")
    args = parser.parse_args()
    trials = 8 if args.quick else args.trials
    print(environment_line("real_path"))
    print_tables(measure(trials, 1 if args.quick else args.repeat), trials, args.noop_ms)


if __name__ == "__main__":
    main()
