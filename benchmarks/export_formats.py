"""Export formats side by side: eager vs native export vs TorchScript vs ONNX, on the CPU.

For each model, runs a small real search through ``automl.run`` (embedded Ray, SQLite in a temp
directory), exports the best trial (and, for digits, a two-member ensemble) with ``automl
export``'s library call in each format, loads every export with ``automl.load_model`` as a user
would, and reports:

* the max abs difference of its class probabilities from the eager model's on the test split
  (what ``export`` records in ``model.json``'s ``check``; target <= 1e-5), and its test accuracy;
* the median batch-1 and batch-64 latency of ``Predictor.predict_prepared`` (the model call on
  prepared inputs, probabilities out; the eager row: the architecture's module plus a softmax),
  interleaved rounds so a slow patch of a shared machine hits every format. One thread:
  ``torch.set_num_threads(1)``, and the ONNX session uses as many threads as torch.

    python -m benchmarks.export_formats [--quick]

About 1.5 minutes on 2 cores; ``--quick`` (breast cancer only, fewer repetitions, about 20 s)
checks it runs. ONNX rows need the ``onnx`` extra (``pip install 'automl[onnx]'``).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.harness import code_version

MODELS = {  # label: (experiment body, export an ensemble of both trials too)
    "breast_cancer mlp": ("dataset: breast_cancer\narchitecture: {mlp: {depth: 2, width: 64}}\n",
                          False),
    "digits cnn (structured 0.5)": ("dataset: digits\narchitecture: {cnn: {channels: 16, depth: "
                                    "2}}\npruning: {structured: {ratio: 0.5, scope: layer}}\n",
                                    True),
    "digits mlp": ("dataset: digits\narchitecture: {mlp: {depth: 2, width: 256}}\n", False),
}
SEARCH = """
seed: 0
training: {epochs: 8, fine_tune_epochs: 2, lr: 0.01}
search: {num_trials: 2, sampler: random, early_stopping: none, max_concurrent: 2}
"""
FORMATS = ("native", "torchscript", "onnx")


def run_search(root: Path, name: str, body: str) -> Any:
    import automl
    from automl.store import Store

    path = root / f"{name}.yaml"
    path.write_text(f"name: {name}\n{body}{SEARCH}")
    db = f"sqlite:///{root / 'automl.db'}"
    result = automl.run(str(path), db=db, artifacts=str(root / "runs"))
    if result.status != "completed":
        raise SystemExit(f"{name}: the search ended {result.status}")
    store = Store(db, create=False)
    try:
        return store.experiment(name)
    finally:
        store.close()


def eager_call(directory: Path) -> Any:
    """The eager module of a native export, probabilities out, as a prepared-input function."""
    import json

    import torch

    from automl.export import load_model

    module = load_model(directory)
    logits = json.loads((directory / "model.json").read_text())["output"] == "logits"

    def call(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            y = module(torch.as_tensor(x)).float()
            return (torch.softmax(y, dim=1) if logits else y).numpy()

    return call


def median_ms(call: Any, x: np.ndarray, repeats: int) -> float:
    for _ in range(3):
        call(x)
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        call(x)
        timings.append(time.perf_counter() - start)
    return statistics.median(timings) * 1000.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="breast cancer only, fewer latency repetitions")
    args = parser.parse_args()
    rounds, repeats = (3, 10) if args.quick else (9, 40)
    models = dict(list(MODELS.items())[:1]) if args.quick else MODELS

    import torch

    import automl
    from automl.data import prepare_data
    from automl.export import export_model
    from automl.plugin_manager import load_plugins
    from automl.recorded import recorded_config

    try:
        import onnxruntime  # noqa: F401
        formats = FORMATS
    except ImportError:
        formats = FORMATS[:2]
        print("onnxruntime is not installed: no ONNX rows (pip install 'automl[onnx]')")
    torch.set_num_threads(1)
    started = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for index, (label, (body, with_ensemble)) in enumerate(models.items()):
            record = run_search(root, f"formats{index}", body)
            data = prepare_data(recorded_config(record), load_plugins(autoload=True).registry)
            kinds = [("best trial", {})]
            if with_ensemble:
                kinds.append(("ensemble of 2", {"ensemble": True,
                                                "members": [t.number for t in record.trials],
                                                "weights": [0.5, 0.5]}))
            for kind, options in kinds:
                calls: dict[str, Any] = {}
                checks: dict[str, dict[str, Any]] = {}
                for form in formats:
                    out = export_model(record, root / f"{index}-{kind}-{form}", format=form,
                                       **options)
                    predictor = automl.load_model(out)
                    checks[form] = predictor.manifest["check"]
                    calls[form] = predictor.predict_prepared
                    if form == "native":
                        calls = {"eager": eager_call(out), **calls}
                        checks["eager"] = {"max_abs_proba_diff": 0.0,
                                           "metrics": checks[form]["eager_metrics"]}
                x = data.x_test[:64]
                samples: dict[str, list[tuple[float, float]]] = {f: [] for f in calls}
                for _ in range(rounds):
                    for form, call in calls.items():
                        samples[form].append((median_ms(call, x[:1], repeats * 4),
                                              median_ms(call, x, repeats)))
                for form in calls:
                    b1 = statistics.median(a for a, _ in samples[form])
                    b64 = statistics.median(b for _, b in samples[form])
                    rows.append((label, kind, form, checks[form]["max_abs_proba_diff"],
                                 checks[form]["metrics"]["test/accuracy"], b1, b64))
                print(f"{label}, {kind}: measured", flush=True)
    print_table(rows)
    print(f"\nmax |p - p_eager|: over the test split's probabilities (target <= 1e-5); latency: "
          f"median over {rounds} interleaved rounds of the median of {repeats * 4} batch-1 / "
          f"{repeats} batch-64 calls, 1 thread; {time.perf_counter() - started:.0f} s in all"
          f"{' (quick)' if args.quick else ''}")
    print(f"{date.today()}, {code_version()}, torch {torch.__version__}, "
          f"{platform.processor() or platform.machine()}")


def print_table(rows: list[tuple]) -> None:
    header = (f"{'model':<28} {'export':<14} {'format':<12} {'max |p - p_eager|':>17} "
              f"{'test acc':>8} {'b1 ms':>7} {'b64 ms':>7}")
    print("\n" + header)
    print("-" * len(header))
    for label, kind, form, diff, acc, b1, b64 in rows:
        print(f"{label:<28} {kind:<14} {form:<12} {diff:>17.3g} {acc:>8.4f} {b1:>7.3f} "
              f"{b64:>7.3f}")


if __name__ == "__main__":
    main()
