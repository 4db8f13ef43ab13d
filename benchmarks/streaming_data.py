"""Streamed datasets: the driver's memory as a generated dataset grows, and trial throughput.

A folder of generated PNG images (two classes, 32 x 32 RGB) grows from 2k to 50k images; for
each size one real ``automl run`` (embedded Ray, SQLite store, one trial of one epoch, a small
CNN) runs in a fresh process with ``dataset.cache: stream`` and with ``memory``. Reported per
run: the driver process's peak RSS (``ru_maxrss``: the driver alone, not Ray's workers), the
pickled size of what the driver hands the trials (``tune.with_parameters`` puts it in Ray's
object store), the trial's training throughput (training rows per second of ``train_s``) and the
run's wall time. Then the same for a generated Parquet file (16 float features, row groups of
64k rows). The streamed driver's peak RSS must stay flat as the data grows.

``--quick`` runs no Ray: a few hundred images and rows, the driver's preparation and one trial in
process (``train_and_evaluate``), to check the script in seconds.

    python -m benchmarks.streaming_data [--quick] [--images 2000,10000,50000]
        [--rows 200000,2000000] [--workers 0,2] [--parquet-gb 3]

``--workers`` runs the streamed rows once per ``stream_workers`` value. ``--parquet-gb`` adds a
Parquet file of that many GB (written a row group at a time) whose driver part (``prepare_data``,
``separate``: all the data the driver of a run holds) and one trial (on the pickled search data,
as a Ray worker receives it) run apart, each in a fresh process, so that the trial's own peak RSS
can be read (a Ray worker's is not the driver's ``ru_maxrss``); once per ``--workers`` value.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.harness import REPO, environment_line

SIZE = 32  # pixels: 12 KB of float32 per decoded image
GROUP_ROWS = 65_536  # rows per Parquet row group


def make_images(root: Path, count: int) -> None:
    """``count`` PNG files in two class folders (a red and a blue square with noise); files
    already there are kept, so a larger folder extends a smaller one."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for cls, colour in (("blue", (30, 30, 200)), ("red", (200, 30, 30))):
        folder = root / cls
        folder.mkdir(parents=True, exist_ok=True)
        have = len(list(folder.iterdir()))
        for i in range(have, count // 2):
            pixels = np.clip(np.array(colour) + rng.normal(0, 40, (SIZE, SIZE, 3)), 0, 255)
            Image.fromarray(pixels.astype(np.uint8)).save(folder / f"{i:06d}.png")


def make_parquet(path: Path, rows: int | None = None, min_bytes: int | None = None) -> None:
    """A Parquet file of 16 float32 features and a 0/1 label, written one row group of 64k rows
    at a time (never more in memory): ``rows`` rows, or row groups until the file on disk holds
    ``min_bytes``."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    writer = None
    start = 0
    while (start < rows) if rows is not None else (
            writer is None or path.stat().st_size < (min_bytes or 0)):
        n = min(GROUP_ROWS, rows - start) if rows is not None else GROUP_ROWS
        x = rng.normal(size=(n, 16)).astype(np.float32)
        columns = {f"f{i}": x[:, i] for i in range(16)}
        columns["label"] = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
        table = pa.table(columns)
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table, row_group_size=GROUP_ROWS)
        start += n
    assert writer is not None
    writer.close()


def experiment(kind: str, cache: str, data: Path, workers: int = 0) -> str:
    if kind == "images":
        dataset = (f"{{name: image_folder, cache: {cache}, stream_workers: {workers}, "
                   f"params: {{path: {data}, size: {SIZE}}}}}")
        architecture = "{cnn: {channels: 8, depth: 1}}"
    else:
        dataset = (f"{{name: csv, cache: {cache}, stream_workers: {workers}, "
                   f"params: {{path: {data}, target: label}}}}")
        architecture = "{mlp: {depth: 1, width: 32}}"
    batch = 64 if kind == "images" else 1024
    return (f"name: stream-{kind}-{cache}\nseed: 0\ndataset: {dataset}\n"
            f"architecture: {architecture}\n"
            f"training: {{epochs: 1, fine_tune_epochs: 0, lr: 0.01, batch_size: {batch}, "
            f"eval_batch_size: 4096}}\n"
            f"search: {{num_trials: 1, sampler: random, early_stopping: none}}\n"
            f"ensemble: {{enabled: false}}\n")


def measure(yaml_path: Path, tmp: Path, quick: bool) -> dict[str, float]:
    """In this (fresh) process: run the experiment (through Ray, or in process when quick);
    the driver's peak RSS taken before anything else is measured."""
    import pickle

    started = time.perf_counter()
    if quick:
        metrics, sizes = _in_process(yaml_path)
    else:
        import automl

        result = automl.run(str(yaml_path), db=f"sqlite:///{tmp}/bench.db",
                            artifacts=str(tmp / "runs"))
        trial = result.trials[0]
        metrics = trial.metrics
        sizes = {"train": None}
    wall = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    from automl.config import load_experiment
    from automl.data import prepare_data
    from automl.plugin_manager import load_plugins
    from automl.search_data import separate

    loaded = load_experiment(yaml_path)
    data, _ = separate(prepare_data(loaded.config, load_plugins(autoload=False).registry,
                                    loaded.base_dir))
    train_rows = data.sizes()["train"] if sizes["train"] is None else sizes["train"]
    return {"peak_mb": peak_mb, "shipped_kb": len(pickle.dumps(data)) / 1024,
            "rows_per_s": train_rows / max(float(metrics["time/train_s"]), 1e-9),
            "val_accuracy": float(metrics["val/accuracy"]), "wall_s": wall}


def _in_process(yaml_path: Path, data: Any = None) -> tuple[dict, dict]:
    """One trial in this process (no Ray) on ``data``, what the driver ships to the trials
    (prepared here when None: quick mode)."""
    import optuna

    from automl.data import prepare_data
    from automl.runner import prepare
    from automl.search_data import separate
    from automl.trial.context import TrialContext
    from automl.trial.trainable import train_and_evaluate

    prepared = prepare(yaml_path, db="sqlite://")
    config, registry = prepared.loaded.config, prepared.plugins.registry
    if data is None:
        data = separate(prepare_data(config, registry, prepared.loaded.base_dir))[0]
    context = TrialContext.for_experiment(
        config, [(o.metric, o.mode) for o in prepared.space.objectives],
        prepared.plugins.source, registry)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0)).ask()
    constants = prepared.space.define(trial)
    final: dict = {}

    def report(metrics: dict, directory: Path | None) -> None:
        if directory is not None:
            final.update(metrics)

    train_and_evaluate({**trial.params, **constants}, context, data, report)
    return final, data.sizes()


def child(args: argparse.Namespace) -> None:
    """``--child KIND CACHE DATA WORKERS``: one measurement, printed as JSON."""
    kind, cache, data, workers = args.child
    with tempfile.TemporaryDirectory(prefix="automl-stream-run-") as tmp_dir:
        tmp = Path(tmp_dir)
        path = tmp / "x.yaml"
        path.write_text(experiment(kind, cache, Path(data), int(workers)))
        if kind == "parquet-driver":
            got = driver_side(path, Path(data).with_suffix(".shipped.pkl"))
        elif kind == "parquet-trial":
            got = trial_side(path, Path(data).with_suffix(".shipped.pkl"), int(workers))
        else:
            got = measure(path, tmp, args.quick)
        print("RESULT " + json.dumps(got), flush=True)


def driver_side(yaml_path: Path, shipped: Path) -> dict[str, float]:
    """What ``automl run`` does on the driver before Ray takes over, in this fresh process:
    load and split the data (``prepare_data``, ``separate``) with the modules a run imports;
    the pickled search data (what ``tune.with_parameters`` puts in the object store) is written
    to ``shipped`` for :func:`trial_side`."""
    import pickle

    import ray  # noqa: F401 - the driver of a run holds them: part of its baseline
    import torch  # noqa: F401

    from automl.config import load_experiment
    from automl.data import prepare_data
    from automl.plugin_manager import load_plugins
    from automl.search_data import separate

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    loaded = load_experiment(yaml_path)
    data, _ = separate(prepare_data(loaded.config, load_plugins(autoload=False).registry,
                                    loaded.base_dir))
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    shipped.write_bytes(pickle.dumps(data))
    return {"baseline_mb": before, "peak_mb": peak_mb, "prepare_s": seconds,
            "shipped_kb": shipped.stat().st_size / 1024, "rows": sum(data.sizes().values())}


def trial_side(yaml_path: Path, shipped: Path, workers: int) -> dict[str, float]:
    """One trial in this fresh process on the search data :func:`driver_side` pickled, as a Ray
    worker receives it: the trial's peak RSS (and its loader processes' largest), throughput."""
    import dataclasses
    import pickle

    data = pickle.loads(shipped.read_bytes())
    data = dataclasses.replace(data, workers=workers)
    started = time.perf_counter()
    metrics, sizes = _in_process(yaml_path, data)
    return {"peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "loader_peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
            "rows_per_s": sizes["train"] / max(float(metrics["time/train_s"]), 1e-9),
            "train_s": float(metrics["time/train_s"]),
            "val_accuracy": float(metrics["val/accuracy"]), "wall_s": time.perf_counter() - started}


def run_child(kind: str, cache: str, data: Path, quick: bool, workers: int = 0
              ) -> dict[str, float] | str:
    command = [sys.executable, "-m", "benchmarks.streaming_data", "--child", kind, cache,
               str(data), str(workers), *(["--quick"] if quick else [])]
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO, env=env,
                          timeout=3600)
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    return f"failed (exit {done.returncode}): {(done.stderr or done.stdout)[-300:]}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--images", default="2000,10000,50000")
    parser.add_argument("--rows", default="200000,2000000")
    parser.add_argument("--workers", default="0",
                        help="stream_workers of the streamed runs (e.g. 0,2)")
    parser.add_argument("--parquet-gb", type=float, default=0.0,
                        help="also a Parquet file of this many GB (driver and trial apart)")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return 0
    images = [200] if args.quick else [int(v) for v in args.images.split(",") if v]
    rows = [2000] if args.quick else [int(v) for v in args.rows.split(",") if v]
    workers = [0] if args.quick else [int(v) for v in args.workers.split(",") if v]
    print(environment_line("streaming_data"), flush=True)
    print(f"{'data':>22} {'cache':>9} {'driver peak RSS MB':>19} {'shipped KB':>11} "
          f"{'train rows/s':>13} {'val acc':>8} {'wall s':>7}", flush=True)
    failed = False
    with tempfile.TemporaryDirectory(prefix="automl-stream-data-") as tmp_dir:
        tmp = Path(tmp_dir)
        jobs = [("images", n, tmp / "imgs", make_images) for n in images]
        jobs += [("parquet", n, tmp / f"t{n}.parquet", make_parquet) for n in rows]
        for kind, n, data, make in jobs:
            started = time.perf_counter()
            make(data, n)
            label = f"{n} {'images' if kind == 'images' else 'rows'}"
            runs = [("stream", w) for w in workers] + ([] if args.quick else [("memory", 0)])
            for cache, w in runs:
                got = run_child(kind, cache, data, args.quick, w)
                name = f"{cache} w{w}" if cache == "stream" else cache
                if isinstance(got, str):
                    print(f"{label:>22} {name:>9} {got}", flush=True)
                    failed = True
                    continue
                print(f"{label:>22} {name:>9} {got['peak_mb']:>19.0f} "
                      f"{got['shipped_kb']:>11.1f} {got['rows_per_s']:>13.0f} "
                      f"{got['val_accuracy']:>8.3f} "
                      f"{got['wall_s']:>7.1f}", flush=True)
            on_disk = _size_mb(data)
            if kind == "parquet":
                data.unlink()
            print(f"{'':>22} generated in {time.perf_counter() - started:.0f} s with the runs; "
                  f"{on_disk:.0f} MB on disk", flush=True)
        if args.parquet_gb or args.quick:
            failed |= large_parquet(tmp / "large.parquet", args.parquet_gb or 0.001, workers)
    return 1 if failed else 0


def large_parquet(path: Path, gb: float, workers: list[int]) -> bool:
    """A Parquet file of ``gb`` GB, streamed: the driver's part of a run and one trial over it
    in separate fresh processes (the trial on what the driver pickled for the object store).
    Returns whether one failed."""
    started = time.perf_counter()
    make_parquet(path, min_bytes=int(gb * 2 ** 30))
    made = time.perf_counter() - started
    print(f"\nlarge Parquet file: {_size_mb(path):.0f} MB on disk, generated in {made:.0f} s",
          flush=True)
    failed = False
    try:
        driver = run_child("parquet-driver", "stream", path, False)
        if isinstance(driver, str):
            print(f"driver failed: {driver}", flush=True)
            return True
        rows = driver["rows"]
        print(f"{int(rows)} rows; driver (prepare + separate, torch and ray imported): "
              f"peak RSS {driver['peak_mb']:.0f} MB ({driver['baseline_mb']:.0f} MB before the "
              f"data), {driver['prepare_s']:.0f} s; shipped to each trial "
              f"{driver['shipped_kb'] / 1024:.1f} MB ({driver['shipped_kb'] * 1024 / rows:.2f} "
              f"bytes a row); in memory the table alone is {rows * 17 * 4 / 2 ** 20:.0f} MB of "
              "float32", flush=True)
        print(f"{'trial':>10} {'trial peak RSS MB':>18} {'loader peak MB':>15} "
              f"{'train rows/s':>13} {'train s':>8} {'val acc':>8}", flush=True)
        for w in workers:
            got = run_child("parquet-trial", "stream", path, False, w)
            if isinstance(got, str):
                print(f"{'w' + str(w):>10} {got}", flush=True)
                failed = True
                continue
            print(f"{'w' + str(w):>10} {got['peak_mb']:>18.0f} {got['loader_peak_mb']:>15.0f} "
                  f"{got['rows_per_s']:>13.0f} {got['train_s']:>8.0f} "
                  f"{got['val_accuracy']:>8.3f}", flush=True)
    finally:
        path.unlink(missing_ok=True)
        path.with_suffix(".shipped.pkl").unlink(missing_ok=True)
    return failed


def _size_mb(path: Path) -> float:
    if path.is_file():
        return path.stat().st_size / 2 ** 20
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2 ** 20


if __name__ == "__main__":
    sys.exit(main())
