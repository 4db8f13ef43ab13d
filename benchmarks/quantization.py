"""Quantization on digits: float32 against dynamic and static int8, for the MLP and the CNN.

For each seed, the built-in ``mlp`` (2 x 256) and ``cnn`` (32 channels, 2 blocks) are trained on
digits' training split (``automl.data.prepare_data``: the experiment split of
experiments/quickstart.yaml at that seed; 15 epochs of Adam, batch 64), then quantized by the
built-in quantizers exactly as a trial does (:func:`automl.trial.quantization.quantize_model`,
calibrated on training batches). Reported per model and quantizer: test accuracy (and its change
from float32, in percentage points), the median CPU latency of one forward pass at batch 1 and 64
on one thread (the ``latency_ms``/``latency64_ms`` metrics' own measurement), the speed-up over
float32, and the saved ``state_dict`` size. A quantizer that cannot handle a model says why.

    python -m benchmarks.quantization [--quick] [--seeds N]

Full mode (3 seeds): about 2 minutes on 2 idle cores; ``--quick`` (1 seed, 3 epochs): 30 s.
Latency is a wall-clock measurement: on a shared machine the ratios (measured side by side)
hold better than the milliseconds.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
from pathlib import Path

from benchmarks.harness import REPO, environment_line

QUANTIZERS = ("dynamic_int8", "static_int8")
ARCHITECTURES = {"mlp": {"depth": 2, "width": 256, "dropout": 0.1, "activation": "relu"},
                 "cnn": {"channels": 32, "depth": 2, "kernel": 3, "dropout": 0.1}}


def train(model, x, y, epochs: int, seed: int):
    import torch

    torch.manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    x, y = torch.as_tensor(x).float(), torch.as_tensor(y).long()
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(x))
        for start in range(0, len(x), 64):
            batch = order[start:start + 64]
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(x[batch]), y[batch]).backward()
            optimizer.step()
    return model.eval()


def measure(model, spec, x_test, y_test) -> dict[str, float]:
    import torch

    from automl.trial.artifacts import _cpu_state
    from automl_plugins.metrics.latency import measure_latency_ms

    with torch.no_grad():
        accuracy = float((model(torch.as_tensor(x_test).float()).argmax(1).numpy()
                          == y_test).mean())
    buffer = io.BytesIO()
    torch.save(_cpu_state(model), buffer)
    return {"accuracy": accuracy, "b1": measure_latency_ms(model, spec, 1),
            "b64": measure_latency_ms(model, spec, 64), "bytes": buffer.getbuffer().nbytes}


def run_seed(seed: int, epochs: int) -> dict[tuple[str, str], dict[str, float]]:
    import torch

    from automl.config import load_experiment
    from automl.data import prepare_data
    from automl.plugin_manager import load_plugins
    from automl.space import TrialPlan
    from automl.trial.quantization import quantize_model

    registry = load_plugins(autoload=False).registry
    config = load_experiment(REPO / "experiments" / "quickstart.yaml").config
    config.seed = seed
    data = prepare_data(config, registry)
    rows: dict[tuple[str, str], dict[str, float]] = {}
    for name, params in ARCHITECTURES.items():
        torch.manual_seed(seed)
        model = registry.create("architecture", name).build(params, data.spec)
        model = train(model, data.x_train, data.y_train, epochs, seed)
        rows[(name, "float32")] = measure(model, data.spec, data.x_test, data.y_test)
        for quantizer in QUANTIZERS:
            plan = TrialPlan(name, params, [], None, {}, {}, quantizer=quantizer,
                             quantizer_params={"calibration_batches": 8})
            done = quantize_model(registry, plan, model, torch.as_tensor(data.x_train).float(),
                                  64)
            if done.quantizer is None:
                rows[(name, quantizer)] = {"skipped": done.skipped}  # type: ignore[dict-item]
                continue
            rows[(name, quantizer)] = measure(done.model, data.spec, data.x_test, data.y_test)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1 seed, 3 epochs")
    parser.add_argument("--seeds", type=int, default=None, help="seeds 0..N-1 (default 3)")
    args = parser.parse_args()
    seeds = args.seeds or (1 if args.quick else 3)
    epochs = 3 if args.quick else 15
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    print(environment_line("quantization"))
    print(f"digits (quickstart split), {epochs} epochs, seeds 0..{seeds - 1}; latency: median "
          "of one forward pass on one CPU thread")
    runs = [run_seed(seed, epochs) for seed in range(seeds)]
    head = (f"{'model':<6} {'quantizer':<13} {'test acc':>9} {'Δ pp':>6} {'b1 ms':>7} "
            f"{'b64 ms':>8} {'b1 ×':>6} {'b64 ×':>6} {'bytes':>9}")
    print(head)
    print("-" * len(head))
    for (model, quantizer) in runs[0]:
        cells = [r[(model, quantizer)] for r in runs]
        if "skipped" in cells[0]:
            print(f"{model:<6} {quantizer:<13} skipped: {cells[0]['skipped']}")
            continue
        base = [r[(model, "float32")] for r in runs]

        def med(key: str, rows=cells) -> float:
            return statistics.median(c[key] for c in rows)

        delta = statistics.median(100 * (c["accuracy"] - b["accuracy"]) for c, b in zip(cells, base))
        b1 = statistics.median(b["b1"] / c["b1"] for c, b in zip(cells, base))
        b64 = statistics.median(b["b64"] / c["b64"] for c, b in zip(cells, base))
        print(f"{model:<6} {quantizer:<13} {med('accuracy'):>9.4f} {delta:>+6.2f} "
              f"{med('b1'):>7.3f} {med('b64'):>8.3f} {b1:>6.2f} {b64:>6.2f} "
              f"{med('bytes'):>9.0f}")
    cnn = [(r[("cnn", "float32")], r[("cnn", "static_int8")]) for r in runs
           if "skipped" not in r[("cnn", "static_int8")]]
    if cnn:
        speed = statistics.median(b["b64"] / c["b64"] for b, c in cnn)
        loss = statistics.median(100 * (b["accuracy"] - c["accuracy"]) for b, c in cnn)
        met = speed >= 1.5 and loss <= 0.5
        print(f"\ntarget static int8 CNN >= 1.5x faster at batch 64 with <= 0.5 pp accuracy "
              f"loss: {speed:.2f}x, {loss:+.2f} pp lost: {'met' if met else 'missed'}")


if __name__ == "__main__":
    main()
