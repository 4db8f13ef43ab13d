"""The library prints nothing; progress reaches a listener as events (real Ray, real training)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import automl
from automl.events import (
    DataLoaded, EvaluationFinished, EvaluationSkipped, RayStarting, ResumeStartsAnew, RunFinished,
    RunResumed, RunStarted, TrialFinished, TrialReported, TrialStarted, TrialsRunning,
)
from automl.store import Store
from tests.conftest import REPO

pytestmark = pytest.mark.slow

#: nothing is sampled, so every trial trains the same model to the same score
FIXED = textwrap.dedent("""\
    name: fixed
    dataset: digits
    architecture: {mlp: {depth: 1, width: 16, dropout: 0.0, activation: relu}}
    training: {epochs: 2, fine_tune_epochs: 0, lr: 0.003, batch_size: 64, optimizer: adam,
               weight_decay: 0.0}
    search: {num_trials: 1, early_stopping: none, max_concurrent: 1}
    ensemble: false
    """)


def test_run_from_python_prints_nothing_and_returns_the_result(tmp_path: Path) -> None:
    script = textwrap.dedent(f"""\
        import automl
        result = automl.run({str(REPO / 'experiments' / 'quickstart.yaml')!r}, max_trials=2)
        open("result.txt", "w").write(f"{{result.status}} {{len(result.trials)}}")
        """)
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "result.txt").read_text() == "completed 2"
    assert done.stdout == "" and done.stderr == ""


def test_events_tell_what_happens_and_a_resume_keeps_the_best(tmp_path: Path) -> None:
    path = tmp_path / "fixed.yaml"
    path.write_text(FIXED)
    db = f"sqlite:///{tmp_path / 'automl.db'}"
    first: list = []
    # the database has no record: --resume simply starts the experiment
    result = automl.run(str(path), db=db, artifacts=str(tmp_path / "runs"), resume=True,
                        listener=first.append)
    assert result.status == "completed" and len(result.trials) == 1
    kinds = [type(e) for e in first]
    # embedded Ray starts while the data loads
    assert kinds[:4] == [RayStarting, DataLoaded, ResumeStartsAnew, RunStarted], kinds
    # the trial's start, its two epochs, its end
    assert kinds[4:] == [TrialsRunning, TrialStarted, TrialReported, TrialReported,
                         TrialFinished, EvaluationFinished, RunFinished], kinds
    assert first[1].sizes == {"train": 1077, "val": 360, "test": 360}
    assert first[3].time_budget_s is None
    assert first[4].running == 1 and first[4].total == 1
    assert first[5] == TrialStarted(0, "mlp", 1, 0, 1, first[5].elapsed_s)
    assert [(e.number, e.epoch, list(e.values)) for e in first[6:8]] == \
        [(0, 1, ["val/accuracy"]), (0, 2, ["val/accuracy"])]
    first = [e for e in first if not isinstance(e, (TrialStarted, TrialReported))]
    done = first[5]
    assert done.number == 0 and done.status == "completed" and done.best is not None

    resumed: list = []
    automl.run(str(path), db=db, artifacts=str(tmp_path / "runs"), resume=True, max_trials=2,
               listener=resumed.append)
    assert not any(isinstance(e, ResumeStartsAnew) for e in resumed)
    [again] = [e for e in resumed if isinstance(e, RunResumed)]
    assert (again.finished, again.interrupted, again.remaining) == (1, 0, 1)
    [trial] = [e for e in resumed if isinstance(e, TrialFinished)]
    assert trial.number == 1 and trial.values == done.values  # the same model, the same score
    # a tie keeps the earlier trial: the best so far counts the trial finished before the resume
    assert trial.best == (done.best[0], 0)
    # the best trial is still #0 and there is no ensemble: evaluation 1 already scored that
    [skipped] = [e for e in resumed if isinstance(e, EvaluationSkipped)]
    assert skipped.reason == "evaluation 1 already scored the same trials and ensemble"
    assert not any(isinstance(e, EvaluationFinished) for e in resumed)
    store = Store(db, create=False)
    try:
        assert [t.status for t in store.experiment("fixed").trials] == ["completed"] * 2
    finally:
        store.close()
    assert resumed[-1] == RunFinished("fixed", "completed", resumed[-1].elapsed_s,
                                      {"completed": 2})
