"""Shared fixtures. Real components only: real Ray, real SQLite files, real training."""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


POSTGRES_FIXTURES = {"postgres_server", "postgres_url", "postgres_db"}


#: Test modules whose tests pytest-xdist may hand to different workers one by one: each test
#: starts its own processes and shares no module-scoped fixture. Every other module's tests run
#: on one worker (its module-scoped fixtures, finished experiments among them, are built once).
SPREAD_MODULES = {"test_benchmarks"}


@pytest.hookimpl(tryfirst=True)  # before xdist's worker reads the groups (``--dist loadgroup``)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that use the PostgreSQL server are marked ``postgres`` (``-m "not postgres"``);
    each module's tests form one xdist group unless the module is in :data:`SPREAD_MODULES`."""
    for item in items:
        module = item.module.__name__.rsplit(".", 1)[-1] if item.module else ""
        if module not in SPREAD_MODULES:
            item.add_marker(pytest.mark.xdist_group(module))
        names = set(getattr(item, "fixturenames", ()))
        callspec = getattr(item, "callspec", None)
        on_postgres = callspec is not None and callspec.params.get("db_url") == "postgresql"
        if names & POSTGRES_FIXTURES or on_postgres:
            item.add_marker(pytest.mark.postgres)


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


#: Set by .ci/run: optional parts (PostgreSQL, the MiniLM package) must be there, so a test that
#: would skip for want of one fails instead.
REQUIRE_ALL = os.environ.get("AUTOML_TESTS_REQUIRE_ALL") == "1"


def unavailable(reason: str) -> None:
    """Skip the test for want of an optional part, or fail when the run requires them all."""
    if REQUIRE_ALL:
        pytest.fail(f"required here (AUTOML_TESTS_REQUIRE_ALL=1): {reason}", pytrace=False)
    pytest.skip(reason)


def optional_module(name: str, reason: str | None = None) -> ModuleType:
    """Import an optional module; see :func:`unavailable`."""
    try:
        return importlib.import_module(name)
    except ImportError:
        unavailable(reason or f"{name} is not installed")
        raise  # unreachable: unavailable() skips or fails
