"""Shared fixtures. Real components only: real Ray, real SQLite files, real training."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run the test with the current directory set to a fresh temp dir."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def automl_cmd() -> list[str]:
    """The installed console script, as a user runs it."""
    script = Path(sys.executable).with_name("automl")
    return [str(script)] if script.exists() else [sys.executable, "-m", "automl"]


def write_experiment(directory: Path, text: str, name: str = "exp.yaml") -> Path:
    path = directory / name
    path.write_text(text)
    return path
