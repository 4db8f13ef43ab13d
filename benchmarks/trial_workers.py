"""Throughput of one trial trained by 1 vs N workers (``resources.workers``, Ray Train DDP).

Each row is one ``automl run`` in a fresh process of the same single configuration (an MLP on
scikit-learn's generated ``synthetic_classification`` rows, fixed learning rate and batch
size, one trial, no early stopping, no ensemble): first with one worker (the trial trains in
its Tune process, as every experiment without ``workers``), then with N workers (gloo on CPUs,
NCCL on GPUs). Reported per run:

- samples/s per trial: training rows x epochs / the trial's training seconds (``time/train_s``,
  rank 0's time in its training loop; the ranks step together);
- the trial's own seconds (``time/trial_s``: rank 0's function, from its start to its
  checkpoint), the trial's duration as Tune ran it (``Tune s``: with N workers, starting Ray
  Train's controller and worker processes, and relaying, included) and the command's wall
  time;
- validation accuracy (the same configuration: it should not move much) and the rows each
  rank trained on in the last epoch.

Rows: one worker of ``--cpus`` CPUs (the baseline), N workers of ``--cpus`` CPUs each, and on
CPU (not ``--quick``) one worker given all N workers' CPUs (the same cores used through
torch's threads instead of processes). On a machine with few cores the workers share them with
everything else; the CPU figures measure the data-parallel path's cost and gain there. The GPU
rows (``--device cuda``: one GPU per worker) are what the feature is for.

    python -m benchmarks.trial_workers [--quick] [--device cpu|cuda] [--workers 2]
                                       [--rows 20000] [--epochs 3]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.harness import environment_line
from benchmarks.real_path import automl_command

EXPERIMENT = """\
name: workers-{name}
seed: 0
dataset:
  name: synthetic_classification
  params: {{rows: {rows}}}
architecture:
  mlp: {{depth: 2, width: {width}, dropout: 0.0}}
training:
  epochs: {epochs}
  fine_tune_epochs: 0
  batch_size: {batch}
  lr: 0.003
  optimizer: adam
  amp: {amp}
search:
  num_trials: 1
  early_stopping: none
  sampler: random
ensemble: {{enabled: false}}
resources: {resources}
"""


def run_once(tmp: Path, workers: int, cpus: int, args: argparse.Namespace) -> dict[str, Any]:
    """One ``automl run`` with ``workers`` workers of ``cpus`` CPUs each (one GPU each on
    CUDA); the trial's metrics and the wall time."""
    gpu = 1 if args.device == "cuda" else 0
    resources = (f"{{cpu: {cpus}, gpu: {gpu}}}" if workers == 1
                 else f"{{workers: {workers}, cpu: {cpus}, gpu: {gpu}}}")
    name = f"{workers}x{cpus}"
    path = tmp / f"workers-{name}.yaml"
    path.write_text(EXPERIMENT.format(name=name, rows=args.rows, width=args.width,
                                      epochs=args.epochs, batch=args.batch,
                                      amp=str(bool(gpu)).lower(), resources=resources))
    db = tmp / f"workers-{name}.db"
    started = time.perf_counter()
    done = subprocess.run([*automl_command(), "run", str(path), "--db", f"sqlite:///{db}",
                           "--artifacts", str(tmp / f"runs-{name}")],
                          capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"automl run with {workers} workers failed:\n"
                         + (done.stdout + done.stderr)[-3000:])
    return {"workers": workers, "resources": resources, "wall": wall,
            "metrics": read_metrics(db)}


def read_metrics(db: Path) -> dict[str, float]:
    """The trial's final metrics, and ``tune_s``: its duration as Tune ran it (from its start
    to its result: with N workers, starting Ray Train's controller and workers included)."""
    import sqlalchemy as sa

    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.connect() as connection:
        metrics, duration = connection.execute(sa.text(
            "SELECT metrics, duration_s FROM automl_trials")).one()
    engine.dispose()
    metrics = json.loads(metrics) if isinstance(metrics, str) else metrics
    return {**metrics, "tune_s": float(duration)}


def print_table(runs: list[dict[str, Any]], args: argparse.Namespace) -> None:
    train_rows = int(args.rows * 0.6)  # the default split: 20% validation, 20% test
    print(f"\none trial, {args.device}: MLP 2x{args.width} on {train_rows} training rows "
          f"(synthetic_classification), batch {args.batch}, {args.epochs} epoch(s)")
    print(f"{'workers':>7} | {'resources':>28} | {'samples/s per trial':>19} | {'x row 1':>10}"
          f" | {'train s':>7} | {'trial s':>7} | {'Tune s':>6} | {'wall s':>6} | {'val acc':>7} |"
          " rows/rank")
    base = None
    for run in runs:
        m = run["metrics"]
        rate = train_rows * args.epochs / m["time/train_s"]
        base = base or rate
        ranks = [int(m[k]) for k in sorted(m) if k.startswith("train/rows_rank")]
        print(f"{run['workers']:>7} | {run['resources']:>28} | {rate:>19.0f} | "
              f"{rate / base:>10.2f} | {m['time/train_s']:>7.2f} | {m['time/trial_s']:>7.2f} | "
              f"{m['tune_s']:>6.1f} | {run['wall']:>6.1f} | {m['val/accuracy']:>7.3f} | "
              f"{'/'.join(map(str, ranks)) or train_rows}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small data, one epoch")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cpus", type=int, default=1, help="CPUs per worker")
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--width", type=int, default=None)
    parser.add_argument("--batch", type=int, default=None)
    args = parser.parse_args()
    cuda = args.device == "cuda"
    defaults = {"rows": 2000 if args.quick else (200_000 if cuda else 20_000),
                "epochs": 1 if args.quick else 3, "width": 1024 if cuda else 256,
                "batch": 512 if cuda else 128}
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    print(environment_line("trial_workers"))
    # one worker with one worker's CPUs (the baseline), N such workers and, on CPU unless
    # --quick, one worker with all N workers' CPUs (the same cores, torch's threads instead)
    shapes = [(1, args.cpus), (args.workers, args.cpus)]
    if not cuda and not args.quick:
        shapes.insert(1, (1, args.cpus * args.workers))
    with tempfile.TemporaryDirectory() as tmp:
        runs = [run_once(Path(tmp), workers, cpus, args) for workers, cpus in shapes]
    print_table(runs, args)


if __name__ == "__main__":
    main()
