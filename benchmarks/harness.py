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
