"""Kill the driver with SIGKILL mid-run, resume, and lose nothing that finished."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import time
from pathlib import Path

import optuna
import pytest

from automl.store import Store

pytestmark = pytest.mark.slow

EXPERIMENT = """
name: crash
seed: 1
dataset: digits
architecture: {mlp: {depth: 1, width: [16, 32]}}
training: {epochs: 3, fine_tune_epochs: 0, batch_size: 64}
search: {num_trials: 14, sampler: tpe, early_stopping: none, max_concurrent: 2}
ensemble: false
"""


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (Linux /proc), so the kill takes Ray's processes too."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def finished_rows(db: Path) -> dict[int, tuple]:
    if not db.exists():
        return {}
    try:
        with sqlite3.connect(db, timeout=30) as conn:
            rows = conn.execute("select number, status, params, metrics, finished_at from "
                                "automl_trials where status in ('completed', 'failed')").fetchall()
    except sqlite3.OperationalError:  # tables not created yet
        return {}
    return {r[0]: r for r in rows}


def run_until_killed(cmd: list[str], cwd: Path, db: Path, at_least: int) -> None:
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 240
    try:
        while len(finished_rows(db)) < at_least:
            assert proc.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "no progress"
            time.sleep(0.2)
    finally:
        victims = [proc.pid, *descendants(proc.pid)]
        for pid in victims:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait(timeout=30)
        time.sleep(1)


def test_sigkill_then_resume_loses_nothing(in_tmp, automl_cmd):
    (in_tmp / "crash.yaml").write_text(EXPERIMENT)
    db = in_tmp / "automl.db"
    run = [*automl_cmd, "run", "crash.yaml"]
    resume = [*run, "--resume"]

    run_until_killed(run, in_tmp, db, at_least=3)
    first = finished_rows(db)
    run_until_killed(resume, in_tmp, db, at_least=len(first) + 3)
    second = finished_rows(db)
    for number, row in first.items():  # nothing finished was changed or run again
        assert second[number] == row

    done = subprocess.run(resume, cwd=in_tmp, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "resuming crash" in done.stdout

    record = Store(f"sqlite:///{db}", create=False).experiment("crash")
    assert record.status == "completed"
    assert len(record.trials) == 14  # the budget, no more
    assert sorted(t.number for t in record.trials) == list(range(14))
    assert {t.status for t in record.trials} == {"completed"}
    final = finished_rows(db)
    for number, row in second.items():
        assert final[number] == row
    # the Optuna study in the same database saw every trial; the killed ones are FAIL
    study = optuna.load_study(study_name="automl:crash", storage=f"sqlite:///{db}")
    states = [t.state.name for t in study.trials]
    assert states.count("COMPLETE") == 14
    assert "RUNNING" not in states

    # resuming a finished experiment runs nothing more; a changed search space is refused
    again = subprocess.run(resume, cwd=in_tmp, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "nothing left to run" in again.stdout
    (in_tmp / "crash.yaml").write_text(EXPERIMENT.replace("width: [16, 32]", "width: 64"))
    changed = subprocess.run(resume, cwd=in_tmp, capture_output=True, text=True, timeout=120)
    assert changed.returncode == 2 and "another search space" in changed.stderr
    assert "Traceback" not in changed.stderr


def test_resume_while_the_run_is_live_is_refused_and_the_run_goes_on(in_tmp, automl_cmd):
    (in_tmp / "live.yaml").write_text(EXPERIMENT.replace("name: crash", "name: live")
                                      .replace("num_trials: 14", "num_trials: 500"))
    db = in_tmp / "automl.db"
    run = subprocess.Popen([*automl_cmd, "run", "live.yaml"], cwd=in_tmp,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while not finished_rows(db):  # trials are running now
            assert run.poll() is None, "the run ended early"
            assert time.monotonic() < deadline, "no progress"
            time.sleep(0.2)
        refused = subprocess.run([*automl_cmd, "run", "live.yaml", "--resume"], cwd=in_tmp,
                                 capture_output=True, text=True, timeout=120)
        assert run.poll() is None, "the run ended before the resume was tried"
        seen = len(finished_rows(db))
        record = Store(f"sqlite:///{db}", create=False).experiment("live")
        while len(finished_rows(db)) <= seen:  # the live run goes on
            assert run.poll() is None and time.monotonic() < deadline
            time.sleep(0.2)
    finally:
        for pid in [run.pid, *descendants(run.pid)]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        run.wait(timeout=30)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert (f"experiment 'live' is being run by another process (host {socket.gethostname()}, "
            f"pid {run.pid}, started ") in refused.stderr
    assert "Traceback" not in refused.stderr
    # The refusal changed nothing of the live run's rows.
    assert record.status == "running"
    assert "interrupted" not in {t.status for t in record.trials}
