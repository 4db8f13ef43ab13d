"""The experiment's Optuna study: in memory during a search, finished trials in the database."""

from __future__ import annotations

import pickle
import sqlite3
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from automl.errors import StoreError
from automl.study import MirroredStorage, fail_stale_trials, optuna_storage


def _url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'study.db'}"


def _objective(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", -3.0, 3.0)
    kind = trial.suggest_categorical("kind", ["a", "b"])
    trial.report(x, step=0)
    trial.set_user_attr("note", f"kind {kind}")
    return -(x - 1.0) ** 2 + (0.5 if kind == "b" else 0.0)


def test_finished_trials_reach_the_database_running_ones_do_not(tmp_path: Path) -> None:
    url = _url(tmp_path)
    study = optuna.create_study(storage=MirroredStorage(url), study_name="s",
                                direction="maximize", sampler=optuna.samplers.TPESampler(seed=0))
    study.optimize(_objective, n_trials=12)
    running = study.ask()  # asked, never told: stays in memory only
    running.suggest_float("x", -3.0, 3.0)

    stored = optuna.load_study(study_name="s", storage=url)
    assert [t.number for t in stored.trials] == list(range(12))
    assert {t.state for t in stored.trials} == {TrialState.COMPLETE}
    for mine, theirs in zip(study.trials, stored.trials):
        assert theirs.params == mine.params
        assert theirs.values == mine.values
        assert theirs.intermediate_values == mine.intermediate_values
        assert theirs.user_attrs == mine.user_attrs
        assert theirs.distributions == mine.distributions
    assert stored.best_value == study.best_value
    assert len(study.trials) == 13


def test_a_failed_trial_is_recorded_as_failed(tmp_path: Path) -> None:
    url = _url(tmp_path)
    study = optuna.create_study(storage=MirroredStorage(url), study_name="s")
    trial = study.ask()
    trial.suggest_int("n", 1, 4)
    study.tell(trial, state=TrialState.FAIL)
    stored = optuna.load_study(study_name="s", storage=url)
    assert [t.state for t in stored.trials] == [TrialState.FAIL]


def test_a_reopened_study_continues_from_what_finished(tmp_path: Path) -> None:
    url = _url(tmp_path)
    first = optuna.create_study(storage=MirroredStorage(url), study_name="s",
                                direction="maximize", sampler=optuna.samplers.TPESampler(seed=0))
    first.optimize(_objective, n_trials=8)
    first.ask()  # cut short by the "crash": not in the database

    again = optuna.create_study(storage=MirroredStorage(url), study_name="s",
                                direction="maximize", load_if_exists=True,
                                sampler=optuna.samplers.TPESampler(seed=1))
    assert [t.number for t in again.trials] == list(range(8))
    assert again.best_value == first.best_value
    again.optimize(_objective, n_trials=4)
    stored = optuna.load_study(study_name="s", storage=url)
    assert [t.number for t in stored.trials] == list(range(12))
    assert [t.params for t in stored.trials[:8]] == [t.params for t in first.trials[:8]]


def test_a_study_of_the_other_direction_is_refused(tmp_path: Path) -> None:
    url = _url(tmp_path)
    optuna.create_study(storage=MirroredStorage(url), study_name="s", direction="maximize")
    with pytest.raises(ValueError, match="optimises"):
        optuna.create_study(storage=MirroredStorage(url), study_name="s", direction="minimize",
                            load_if_exists=True)


def test_the_storage_pickles_without_its_connection_or_url(tmp_path: Path) -> None:
    """Ray Tune pickles the searcher (and with it the study) into its experiment state: the
    copy keeps the trials, never the database URL (a password may be in it)."""
    url = _url(tmp_path)
    study = optuna.create_study(storage=MirroredStorage(url), study_name="s")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    copy = pickle.loads(pickle.dumps(study))
    assert [t.params for t in copy.trials] == [t.params for t in study.trials]
    with pytest.raises(StoreError, match="never pickled"):
        copy.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    copy._storage.attach(url)  # noqa: SLF001 - Optuna keeps the storage it was given
    copy.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    assert len(optuna.load_study(study_name="s", storage=url).trials) == 4


def test_sqlite_study_uses_wal(tmp_path: Path) -> None:
    url = _url(tmp_path)
    optuna.create_study(storage=optuna_storage(url), study_name="s").optimize(
        lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    with sqlite3.connect(tmp_path / "study.db") as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_stale_running_trials_from_a_direct_rdb_writer_are_failed(tmp_path: Path) -> None:
    url = _url(tmp_path)
    study = optuna.create_study(storage=optuna_storage(url), study_name="automl:old")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    study.ask()
    assert fail_stale_trials(url, "old") == 1
    states = [t.state for t in optuna.load_study(study_name="automl:old", storage=url).trials]
    assert states == [TrialState.COMPLETE, TrialState.COMPLETE, TrialState.FAIL]


def test_deferred_writes_wait_for_write_finished(tmp_path: Path) -> None:
    url = _url(tmp_path)
    storage = MirroredStorage(url, write_through=False)
    study = optuna.create_study(storage=storage, study_name="s", direction="maximize")
    study.optimize(_objective, n_trials=3)
    assert optuna.load_study(study_name="s", storage=url).trials == []
    assert storage.write_finished() == 3
    assert storage.write_finished() == 0
    assert len(optuna.load_study(study_name="s", storage=url).trials) == 3


def _define(trial: optuna.Trial) -> dict:
    trial.suggest_float("x", -3.0, 3.0)
    trial.suggest_categorical("kind", ["a", "b"])
    return {"fixed": 1}


def test_trials_the_store_finished_but_the_study_missed_are_added(tmp_path: Path) -> None:
    from automl.study import add_missing_trials

    url = _url(tmp_path)
    study = optuna.create_study(storage=MirroredStorage(url), study_name="automl:e",
                                direction="maximize")
    study.optimize(_objective, n_trials=2)
    known = [("completed", {**t.params, "fixed": 1}, {"val/accuracy": t.value})
             for t in study.trials]
    rows = [*known,
            # the same parameters again (a re-run of an interrupted trial) and two the study
            # never saw: a completed and a failed one
            ("completed", dict(known[0][1]), {"val/accuracy": 0.5}),
            ("completed", {"x": 0.25, "kind": "b", "fixed": 1}, {"val/accuracy": 0.75}),
            ("failed", {"x": -1.0, "kind": "a", "fixed": 1}, {})]
    assert add_missing_trials(url, "e", _define, ["val/accuracy"], rows) == 3
    stored = optuna.load_study(study_name="automl:e", storage=url).trials
    assert [t.state for t in stored] == [TrialState.COMPLETE] * 4 + [TrialState.FAIL]
    assert stored[3].params == {"x": 0.25, "kind": "b"} and stored[3].value == 0.75
    assert add_missing_trials(url, "e", _define, ["val/accuracy"], rows) == 0  # idempotent
