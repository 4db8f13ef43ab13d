"""Unstructured (`magnitude`) against structured (`structured`) pruning on digits, on the CPU.

For each seed (the split, the initialisation and the batches), trains the CNN (channels 64,
depth 2) and the MLP (width 512, depth 2) for 10 epochs, then for each pruner and ratio prunes a
copy, fine-tunes it for 2 epochs at a tenth of the learning rate (as a trial does with the default
``training.fine_tune_epochs``), finalises it and records test accuracy, parameters, non-zero
parameters, saved bytes (``automl.model_io.saved_size_bytes``) and the median batch-1 / batch-64
CPU latency. The table shows the median accuracy over seeds and its median difference to ratio 0,
and the other figures as ratios to ratio 0 of that pruner. A second table shows how longer
fine-tuning recovers the CNN's accuracy at structured 0.5. Everything runs on one thread
(``torch.set_num_threads(1)``), so the latencies are single-core figures.

    python -m benchmarks.pruning [--quick] [--seeds N]

About a minute on 2 cores with 3 seeds; ``--quick`` (1 seed, fewer epochs and repetitions, about
10 s) checks it runs.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from typing import Any

import numpy as np

RATIOS = (0.0, 0.3, 0.5, 0.7)
PRUNERS = ("magnitude", "structured")
MODELS = {
    "cnn": {"channels": 64, "depth": 2, "kernel": 3, "dropout": 0.1},
    "mlp": {"depth": 2, "width": 512, "dropout": 0.1, "activation": "relu"},
}
TRAINING = {"lr": 3e-3, "batch_size": 64, "optimizer": "adam", "weight_decay": 1e-4,
            "momentum": 0.9, "label_smoothing": 0.0}


def load_registry() -> Any:
    from automl.errors import PluginError
    from automl.plugin_manager import load_plugins

    try:
        return load_plugins(["automl_plugins.pruners.structured"], autoload=False).registry
    except PluginError:  # already a built-in
        return load_plugins([], autoload=False).registry


def train(model: Any, data: Any, epochs: int, lr_scale: float = 1.0, seed: int = 0) -> Any:
    from automl.trial.training import train_on_cpu

    return train_on_cpu(model, data, TRAINING, epochs, lr_scale, seed)


def accuracy(model: Any, data: Any) -> float:
    import torch

    from automl.trial.training import predict_proba

    proba = predict_proba(model, torch.as_tensor(data.x_test), 1024)
    return float((proba.argmax(1).numpy() == data.y_test).mean())


def burst_ms(model: Any, x: Any, repeats: int) -> float:
    """Median milliseconds of ``repeats`` forward passes (after a short warm-up)."""
    from automl_plugins.metrics.latency import median_forward_ms

    return median_forward_ms(model, x, repeats)


def latencies(models: list[Any], x: Any, rounds: int, repeats: int) -> list[tuple[float, float]]:
    """Batch-1 and batch-64 latency per model: the median over ``rounds`` of burst medians.

    The models take turns within each round, so a slow patch of a shared machine hits them all
    rather than one row of the table.
    """
    samples: list[list[tuple[float, float]]] = [[] for _ in models]
    for _ in range(rounds):
        for model, found in zip(models, samples):
            model.eval()
            found.append((burst_ms(model, x[:1], repeats * 4), burst_ms(model, x, repeats)))
    return [(statistics.median(a for a, _ in s), statistics.median(b for _, b in s))
            for s in samples]


def measure(model: Any, data: Any) -> dict[str, float]:
    from automl.model_io import saved_size_bytes

    return {
        "acc": accuracy(model, data),
        "params": sum(p.numel() for p in model.parameters()),
        "nonzero": sum(int(p.count_nonzero()) for p in model.parameters()),
        "bytes": saved_size_bytes(model),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="1 seed, 3 training epochs, 1 fine-tune epoch, fewer latency "
                             "repetitions")
    parser.add_argument("--seeds", type=int, default=None, help="seeds 0..N-1 (default 3)")
    args = parser.parse_args()
    epochs, fine_tune, rounds, repeats = (3, 1, 3, 10) if args.quick else (10, 2, 9, 25)
    seeds = args.seeds or (1 if args.quick else 3)
    longer = (1, 2) if args.quick else (2, 4, 8)

    import torch

    import automl.config
    from automl.data import prepare_data

    torch.set_num_threads(1)
    started = time.perf_counter()
    registry = load_registry()
    rows: dict[tuple[str, str, float], dict[str, Any]] = {}
    recovery: dict[int, list[float]] = {k: [] for k in longer}
    models = []
    for seed in range(seeds):
        config = automl.config.parse_experiment(
            f"name: bench\nseed: {seed}\ndataset: digits\narchitecture: cnn\n")
        data = prepare_data(config, registry)
        for model_name, params in MODELS.items():
            torch.manual_seed(seed)
            trained = registry.get("architecture", model_name).create().build(params, data.spec)
            train(trained, data, epochs, seed=seed)
            print(f"seed {seed} {model_name} {params}: trained {epochs} epochs, test accuracy "
                  f"{accuracy(trained, data):.4f}", flush=True)
            for pruner_name in PRUNERS:
                pruner = registry.create("pruner", pruner_name)
                for ratio in RATIOS:
                    model = pruner.prune(copy.deepcopy(trained),
                                         {"ratio": ratio, "scope": "layer"})
                    train(model, data, fine_tune, lr_scale=0.1, seed=seed + 1)
                    model = pruner.finalize(model)
                    found = measure(model, data)
                    row = rows.setdefault((model_name, pruner_name, ratio),
                                          {**found, "accs": []})
                    row["accs"].append(found["acc"])
                    if seed == 0:
                        models.append((row, model))
            if model_name == "cnn":  # how far longer fine-tuning recovers structured 0.5
                pruner = registry.create("pruner", "structured")
                for more in longer:
                    reference = train(copy.deepcopy(trained), data, more, lr_scale=0.1,
                                      seed=seed + 1)
                    model = pruner.prune(copy.deepcopy(trained), {"ratio": 0.5, "scope": "layer"})
                    train(model, data, more, lr_scale=0.1, seed=seed + 1)
                    recovery[more].append(accuracy(model, data) - accuracy(reference, data))
    x = torch.as_tensor(data.x_test[:64])
    for (row, _), (b1, b64) in zip(models, latencies([m for _, m in models], x, rounds, repeats)):
        row.update(b1=b1, b64=b64)
    print_table(rows)
    print(f"\ntest acc: median over seeds 0..{seeds - 1} (each seed: its own split, training and "
          f"fine-tuning); d pp: median of the per-seed difference to ratio 0 of the same pruner "
          f"(fine-tuned alike); sizes and latencies: seed 0")
    print("\nCNN, structured 0.5 against the unpruned model fine-tuned as long, by fine-tune "
          "epochs (lr x 0.1): test accuracy difference in pp, median [min-max] over seeds")
    for more, diffs in recovery.items():
        pp = sorted(d * 100 for d in diffs)
        print(f"  {more} fine-tune epochs: {statistics.median(pp):+.2f} [{pp[0]:+.2f} to "
              f"{pp[-1]:+.2f}]")
    print(f"\n{len(rows)} configurations x {seeds} seed(s) in {time.perf_counter() - started:.0f} s "
          f"({'quick: ' if args.quick else ''}{epochs} training + {fine_tune} fine-tune epochs; "
          f"latency: median over {rounds} interleaved rounds of the median of {repeats * 4} "
          f"batch-1 / {repeats} batch-64 runs, 1 thread)")


def print_table(rows: dict[tuple[str, str, float], dict[str, Any]]) -> None:
    header = (f"{'model':<5} {'pruner':<10} {'ratio':>5} {'test acc':>8} {'d pp':>6} "
              f"{'params':>8} {'nonzero':>8} {'bytes':>8} {'b1 ms':>7} {'b64 ms':>7} | "
              f"{'params':>6} {'nonzero':>7} {'bytes':>6} {'b1':>5} {'b64':>5}")
    print("\n" + header)
    print(f"{'':<57}{'(ratios to ratio 0)':>{len(header) - 57}}")
    print("-" * len(header))
    for (model, pruner, ratio), m in rows.items():
        ref = rows[(model, pruner, RATIOS[0])]

        def rel(key: str) -> float:
            return m[key] / ref[key] if ref[key] else float(np.nan)

        delta = statistics.median((a - b) * 100 for a, b in zip(m["accs"], ref["accs"]))
        print(f"{model:<5} {pruner:<10} {ratio:>5.1f} {statistics.median(m['accs']):>8.4f} "
              f"{delta:>+6.2f} {m['params']:>8.0f} {m['nonzero']:>8.0f} {m['bytes']:>8.0f} "
              f"{m['b1']:>7.3f} {m['b64']:>7.3f} | {rel('params'):>6.2f} {rel('nonzero'):>7.2f} "
              f"{rel('bytes'):>6.2f} {rel('b1'):>5.2f} {rel('b64'):>5.2f}")

if __name__ == "__main__":
    main()
