"""What every benchmark script shares: the code version it measured and embedded Ray."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def code_version() -> str:
    """The commit benchmarked, and whether automl/ or plugins/ had uncommitted changes."""

    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True,
                                  timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--", "automl", "plugins")
    return f"commit {commit}" + (" + uncommitted changes in automl/ or plugins/" if dirty else "")


def start_ray(slots: int) -> float:
    """Start embedded Ray as automl does, with ``slots`` CPUs; returns the seconds it took."""
    from automl.ray_session import start_embedded_ray

    started = time.perf_counter()
    start_embedded_ray(slots)
    return time.perf_counter() - started


def environment_line(script: str) -> str:
    """The command and the machine a benchmark ran on (printed first, so a table can be
    reproduced and judged: the load average says whether the cores were shared)."""
    import os
    import platform
    import sys
    from datetime import date

    import optuna
    import ray
    import torch

    return (f"$ python -m benchmarks.{script} {' '.join(sys.argv[1:])}\n"
            f"date {date.today()}, nproc {os.cpu_count()}, load average at start "
            f"{os.getloadavg()[0]:.1f}, Python {platform.python_version()}, "
            f"torch {torch.__version__}, ray {ray.__version__}, optuna {optuna.__version__}; "
            f"{code_version()}")
