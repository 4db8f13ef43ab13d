"""Trials per GPU-hour with 1, 2 and 4 trials sharing one GPU, and AMP on/off.

Runs experiments/digits_gpu.yaml through automl's real path (Ray Tune, fractional GPUs) with
each setting and prints a table. Needs a CUDA machine.

    python -m benchmarks.gpu_sharing [--trials 16]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import yaml

import automl

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=16)
    args = parser.parse_args()
    base = yaml.safe_load((REPO / "experiments" / "digits_gpu.yaml").read_text())
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for share, amp in ((1, False), (2, False), (4, False), (4, True)):
            config = dict(base)
            config["name"] = f"gpu-share{share}-amp{int(amp)}"
            config["search"] = {**base["search"], "num_trials": args.trials,
                                "max_concurrent": share, "early_stopping": "none",
                                "sampler": "random"}
            config["resources"] = {"cpu": 1, "gpu": 1 / share}
            config["training"] = {**base["training"], "amp": amp, "epochs": 10}
            path = Path(tmp) / f"{config['name']}.yaml"
            path.write_text(yaml.safe_dump(config))
            started = time.perf_counter()
            result = automl.run(str(path), db=f"sqlite:///{tmp}/bench.db",
                                artifacts=f"{tmp}/runs")
            wall = time.perf_counter() - started
            done = [t for t in result.trials if t.status == "completed"]
            devices = {t.device for t in done}
            best = result.best.metrics["val/accuracy"] if result.best else float("nan")
            rows.append((share, amp, len(done), wall, len(done) / wall * 3600, best, devices))
    print(f"{'trials/GPU':>10} {'AMP':>5} {'done':>5} {'wall s':>8} {'trials/GPU-h':>13} "
          f"{'best val acc':>13}  devices")
    for share, amp, done, wall, rate, best, devices in rows:
        print(f"{share:>10} {str(amp):>5} {done:>5} {wall:>8.1f} {rate:>13.0f} {best:>13.4f}  "
              f"{sorted(devices)}")
    base_rate = rows[0][4]
    print("ratios vs 1 trial/GPU without AMP: " + ", ".join(
        f"{r[0]}/GPU{' AMP' if r[1] else ''} x{r[4] / base_rate:.2f}" for r in rows[1:]))


if __name__ == "__main__":
    main()
