"""The final evaluation: test labels reach nothing but it, it scores the best trial, the Pareto
front and the ensemble once, in its own table; older databases gain that table when opened.

Real SQLite files (one made by the version-1 schema), real Ray searches, real training."""

from __future__ import annotations

import io
import json
import os
import pickle
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from automl.cli.render import experiment_json, print_experiment
from automl.errors import StoreError
from automl.evaluate import final_scores
from automl.search_data import SearchSplits, TestLabels
from automl.store import EvaluatedSubject, Store
from automl.store.schema import SCHEMA_VERSION

DATA = Path(__file__).parent / "data"

#: two objectives (a Pareto front) and the ensemble stage: everything the evaluation scores
HONEST = """\
    name: honest
    seed: 3
    dataset: breast_cancer
    objectives:
      - {metric: accuracy, mode: max}
      - {metric: nonzero_params, mode: min}
    architecture: {mlp: {depth: 1, width: [8, 32]}}
    pruning: {magnitude: {ratio: {low: 0.0, high: 0.9}}}
    training: {epochs: 2, fine_tune_epochs: 0}
    search: {num_trials: 4, sampler: random, early_stopping: none, max_concurrent: 2}
    ensemble: {ensembler: greedy}
    """


def version_1_database(path: Path) -> str:
    """A database exactly as the version-1 schema wrote it (its SQL dump): an experiment whose
    trial and ensemble still carry the test scores that version recorded per trial."""
    with sqlite3.connect(path) as conn:
        conn.executescript((DATA / "store_v1.sql").read_text())
    return f"sqlite:///{path}"


# ---- the store: table, versions, upgrade ---------------------------------------------------

def test_a_version_1_database_is_upgraded_in_place_and_keeps_its_records(tmp_path):
    url = version_1_database(tmp_path / "old.db")
    with Store(url, create=False) as store:  # `automl show` on it
        exp = store.experiment("old")
        assert [t.metrics["val/accuracy"] for t in exp.trials] == [0.9]
        assert exp.ensemble is not None and exp.ensemble.id == 1
        assert exp.evaluations == [] and exp.evaluation is None
    with sqlite3.connect(tmp_path / "old.db") as conn:
        assert conn.execute("select value from automl_meta").fetchall() == \
            [(str(SCHEMA_VERSION),)]
        assert conn.execute("select count(*) from automl_evaluations").fetchone() == (0,)
    with Store(url) as store:  # opened again (a run): nothing to upgrade, nothing lost
        record = store.add_evaluation("old", [
            EvaluatedSubject("trial", 0, None, ["best"], {"test/accuracy": 0.5}),
            EvaluatedSubject("ensemble", None, 1, ["ensemble"], {"test/accuracy": 0.6})])
        assert record.number == 1
        assert final_scores(store, "old").best().metrics == {"test/accuracy": 0.5}
        assert final_scores(store, "old").ensemble().ensemble_id == 1


def test_the_old_per_trial_test_scores_are_not_shown(tmp_path):
    """Version 1 scored every trial on test; `show` shows test values only for evaluated
    things, labelled as the final evaluation."""
    url = version_1_database(tmp_path / "old.db")
    with Store(url, create=False) as store:
        exp = store.experiment("old")
    document = experiment_json(exp)
    text = json.dumps(document)
    assert "test/" not in text and "0.88" not in text
    assert document["final_evaluation"] is None and document["final_evaluations"] == []
    out = io.StringIO()
    print_experiment(Console(file=out, width=160), exp)
    assert "0.88" not in out.getvalue() and "test/" not in out.getvalue()
    assert "final evaluation: not made yet" in out.getvalue()

    with Store(url) as store:
        store.add_evaluation("old", [EvaluatedSubject("trial", 0, None, ["best"],
                                                      {"test/accuracy": 0.875})])
        store.add_evaluation("old", [EvaluatedSubject("trial", 0, None, ["best"],
                                                      {"test/accuracy": 0.8751})])
        exp = store.experiment("old")
    document = experiment_json(exp)
    assert [e["number"] for e in document["final_evaluations"]] == [1, 2]
    assert document["final_evaluation"]["scored"] == [
        {"subject": "trial", "trial": 0, "ensemble_id": None, "roles": ["best"],
         "metrics": {"test/accuracy": 0.8751}}]
    assert datetime.fromisoformat(document["final_evaluation"]["created_at"])
    out = io.StringIO()
    print_experiment(Console(file=out, width=160), exp)
    shown = out.getvalue()
    assert "final evaluation #2 (test split, scored once" in shown and "1 earlier kept" in shown
    assert "best trial #0" in shown and "0.8751" in shown


def test_final_scores_says_when_there_is_none(tmp_path):
    url = version_1_database(tmp_path / "old.db")
    with pytest.raises(StoreError, match="'old' has no final evaluation yet"):
        final_scores(url, "old")


def test_search_data_has_no_room_for_test_labels():
    assert "y_test" not in SearchSplits.__slots__
    data = SearchSplits(np.zeros((2, 1)), np.zeros(2), np.zeros((2, 1)), np.zeros(2),
                        np.zeros((2, 1)), None)  # type: ignore[arg-type]
    with pytest.raises((AttributeError, TypeError)):
        data.y_test = np.zeros(2)  # type: ignore[attr-defined]


# ---- through a real run -----------------------------------------------------------------

@pytest.mark.slow
def test_only_the_final_evaluation_reads_the_test_labels(in_tmp, monkeypatch):
    import ray.tune

    import automl
    from automl.config import load_experiment
    from automl.data import prepare_data
    from automl.events import EnsembleFinished, EvaluationFinished
    from automl.plugin_manager import load_plugins
    from automl.trial.artifacts import read_predictions

    path = in_tmp / "honest.yaml"
    path.write_text(textwrap.dedent(HONEST))
    y_test = prepare_data(load_experiment(path).config,
                          load_plugins(autoload=False).registry).y_test

    events: list = []
    reads: list[tuple[int, str]] = []  # (events so far, the reading module)
    real_read = TestLabels.read

    def spy_read(self: TestLabels) -> np.ndarray:
        reads.append((len(events), sys._getframe(1).f_globals["__name__"]))
        return real_read(self)

    monkeypatch.setattr(TestLabels, "read", spy_read)
    handed: dict = {}  # what the trial workers receive
    real_with_parameters = ray.tune.with_parameters

    def spy_with_parameters(trainable, **kwargs):
        handed.update(kwargs)
        return real_with_parameters(trainable, **kwargs)

    monkeypatch.setattr(ray.tune, "with_parameters", spy_with_parameters)
    result = automl.run(str(path), listener=events.append)
    assert result.status == "completed"

    # the workers' data: a SearchSplits, and nothing they receive holds the test labels
    assert isinstance(handed["data"], SearchSplits)
    assert y_test.tobytes() not in pickle.dumps(handed)
    # the labels were read once, by the final evaluation, after the ensemble stage returned
    ensemble_done = next(i for i, e in enumerate(events) if isinstance(e, EnsembleFinished))
    evaluated = next(i for i, e in enumerate(events) if isinstance(e, EvaluationFinished))
    assert reads == [(ensemble_done + 1, "automl.evaluate.stage")]
    assert ensemble_done < evaluated

    with Store(result.db_url, create=False) as store:
        exp = store.experiment("honest")
    completed = [t for t in exp.trials if t.status == "completed"]
    assert len(completed) == 4
    for trial in completed:  # no test label in a checkpoint, no test metric for a trial
        assert set(read_predictions(trial.checkpoint)) == {"val_proba", "val_y", "test_proba"}
        assert not any(k.startswith("test/") for k in trial.metrics)
    assert not any(k.startswith("test/") for side in exp.ensemble.scores.values() for k in side)

    # scored exactly: the best trial, each Pareto front member once, the ensemble
    from automl.results import best_of, objectives_of, pareto_front

    evaluation = final_scores(result.db_url, "honest")
    assert result.evaluation == evaluation and len(exp.evaluations) == 1
    front = {t.number for t in pareto_front(exp.trials, objectives_of(exp))}
    assert evaluation.best().trial == best_of(exp).number
    assert {s.trial for s in evaluation.pareto()} == front
    assert len([s for s in evaluation.subjects if s.subject == "trial"]) == \
        len(front | {best_of(exp).number})
    by_number = {t.number: t for t in exp.trials}

    def accuracy(proba: np.ndarray) -> float:
        return float(np.mean(proba.argmax(1) == y_test))

    for subject in evaluation.subjects:
        if subject.subject == "trial":
            proba = read_predictions(by_number[subject.trial].checkpoint)["test_proba"]
        else:
            assert subject.ensemble_id == exp.ensemble.id
            proba = sum(w * read_predictions(by_number[n].checkpoint)["test_proba"]
                        .astype(np.float64) for n, w in zip(exp.ensemble.members,
                                                            exp.ensemble.weights))
        assert subject.metrics["test/accuracy"] == accuracy(proba)
        assert set(subject.metrics) == {"test/accuracy", "test/log_loss"}


@pytest.mark.slow
def test_resume_after_the_search_makes_the_missing_evaluation(in_tmp, automl_cmd):
    """The driver killed (SIGKILL, with Ray) after the search and the ensemble stage, before the
    final evaluation: ``--resume`` trains nothing and makes the evaluation."""
    from tests.test_resume import descendants

    path = in_tmp / "honest.yaml"
    path.write_text(textwrap.dedent(HONEST))
    marker = in_tmp / "ensemble-done"
    script = textwrap.dedent(f"""\
        import time, automl
        from automl.events import EnsembleFinished

        def stall(event):
            if isinstance(event, EnsembleFinished):  # killed here, before the evaluation
                open({str(marker)!r}, "w").close()
                time.sleep(600)

        automl.run({str(path)!r}, listener=stall)
        """)
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=in_tmp,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 400
    try:
        while not marker.exists():
            assert proc.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "no progress"
            time.sleep(0.2)
    finally:
        for pid in [proc.pid, *descendants(proc.pid)]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait(timeout=30)
    db = f"sqlite:///{in_tmp / 'automl.db'}"
    with Store(db, create=False) as store:
        exp = store.experiment("honest")
    assert exp.ensemble is not None and exp.evaluations == []
    trained = {t.number: t.finished_at for t in exp.trials}

    resumed = subprocess.run([*automl_cmd, "run", str(path), "--resume"], cwd=in_tmp,
                             capture_output=True, text=True, timeout=400)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert "nothing left to run" in resumed.stdout
    assert "final evaluation #1 (test split, scored once" in resumed.stdout
    with Store(db, create=False) as store:
        exp = store.experiment("honest")
    assert {t.number: t.finished_at for t in exp.trials} == trained  # nothing trained again
    assert exp.status == "completed" and len(exp.evaluations) == 1
    assert exp.evaluation.ensemble().ensemble_id == exp.ensemble.id
    shown = subprocess.run([*automl_cmd, "show", "honest"], cwd=in_tmp, capture_output=True,
                           text=True, timeout=120)
    assert "final evaluation #1" in shown.stdout and "best trial #" in shown.stdout


def test_the_cli_renders_the_stage_events():
    from automl.cli.live import EventPrinter
    from automl.events import EvaluationFinished, EvaluationSkipped
    from automl.store import EvaluationRecord

    out = io.StringIO()
    printer = EventPrinter(Console(file=out, width=200))
    record = EvaluationRecord(2, datetime(2026, 1, 1), [
        EvaluatedSubject("trial", 3, None, ["best", "pareto"], {"test/accuracy": 0.975}),
        EvaluatedSubject("trial", 5, None, ["pareto"], {"test/accuracy": 0.95}),
        EvaluatedSubject("ensemble", None, 4, ["ensemble"], {"test/accuracy": 0.98})])
    printer(EvaluationFinished("e", record, 0.25))
    printer(EvaluationSkipped("e", "no completed trial"))
    assert out.getvalue().splitlines() == [
        "final evaluation #2 (test split, scored once, 0.2s): best trial #3, Pareto front "
        "test/accuracy=0.975; Pareto front #5 test/accuracy=0.95; ensemble (id 4) "
        "test/accuracy=0.98",
        "final evaluation: skipped (no completed trial)"]
