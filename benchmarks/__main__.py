"""Run every CPU benchmark in turn: ``python -m benchmarks [--quick]``.

Each script prints its own table; run one alone with ``python -m benchmarks.<name>``. The GPU
benchmark (``benchmarks.gpu_sharing``) needs a CUDA machine and is not part of this list.
"""

from __future__ import annotations

import subprocess
import sys
import time

SCRIPTS = ("overhead", "store", "pruning", "search_efficiency", "ensemble_gain",
           "quickstart_cost", "export_formats", "diabetes_regression", "warm_start",
           "constraints", "report_speed", "tracking",
           "small_data_baselines", "quantization", "strategies", "distillation",
           "streaming_data", "trial_workers")


def main() -> int:
    extra = sys.argv[1:]
    failed = []
    for name in SCRIPTS:
        print(f"\n===== benchmarks.{name} {' '.join(extra)}", flush=True)
        started = time.monotonic()
        done = subprocess.run([sys.executable, "-m", f"benchmarks.{name}", *extra])
        print(f"===== {name}: exit {done.returncode} in {time.monotonic() - started:.0f} s",
              flush=True)
        if done.returncode:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
