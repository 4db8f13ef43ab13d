"""Every benchmark's ``--quick`` mode runs to the end and prints its table (a smoke check).

Timings are never asserted: the figures live in docs/benchmarks.md. This keeps the scripts from
rotting when the platform's APIs change under them.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO

#: benchmark -> a line its table always prints
EXPECTED = {
    "pruning": "model pruner",
    "store": "store ms/trial",
    "overhead": "automl per-trial overhead above plain Optuna",
    "ensemble_gain": "gain",
    "search_efficiency": "time to 0.98 test accuracy",
    "quickstart_cost": "quickstart wall s/trial",
    "export_formats": "max |p - p_eager|",
    "diabetes_regression": "HistGradientBoostingRegressor",
    "warm_start": "warm / cold",
    "constraints": "feasible share, constrained vs unconstrained",
    "report_speed": "automl report s",
    "tracking": "epoch ms median",
    "streaming_data": "driver peak RSS MB",
    "small_data_baselines": "goal (automl final median",
    "quantization": "target static int8 CNN",
    "strategies": "recorded eps",
    "distillation": "gap closed",
    "trial_workers": "samples/s per trial",
}


@pytest.mark.slow  # each quick mode runs real searches on embedded Ray
@pytest.mark.parametrize("name", list(EXPECTED))
def test_quick_mode_prints_its_table(name: str) -> None:
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    done = subprocess.run([sys.executable, "-m", f"benchmarks.{name}", "--quick"], cwd=REPO,
                          capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert EXPECTED[name] in done.stdout, done.stdout[-4000:]
