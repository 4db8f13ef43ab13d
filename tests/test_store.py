"""The results store on a real SQLite file."""

from __future__ import annotations

import sqlite3

import pytest

from automl.errors import StoreError
from automl.store import Store, safe_url


def new_experiment(store: Store, name: str = "e") -> int:
    return store.create_experiment(name=name, seed=1, config={"name": name},
                                   objectives=[{"metric": "accuracy", "mode": "max"}],
                                   plugins={"versions": {}}, automl_version="0",
                                   artifacts_dir="/tmp/runs")


def test_round_trip(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'a.db'}")
    exp = new_experiment(store)
    store.start_trial(exp, 0, "t0", {"architecture": "mlp"})
    store.start_trial(exp, 1, "t1", {"architecture": "cnn"})
    store.finish_trial(exp, 0, status="completed", metrics={"val/accuracy": 0.9},
                       history=[{"epoch": 1, "val/accuracy": 0.8}], seed=7, node="n",
                       device="cpu", checkpoint="/x", error=None)
    store.finish_trial(exp, 1, status="failed", metrics={}, history=[], seed=None, node=None,
                       device=None, checkpoint=None, error="Traceback ... ValueError")
    store.finish_experiment(exp, "completed")
    store.close()

    reader = Store(f"sqlite:///{tmp_path / 'a.db'}", create=False)
    record = reader.experiment("e")
    assert record.status == "completed" and record.finished_at is not None
    assert [(t.number, t.status) for t in record.trials] == [(0, "completed"), (1, "failed")]
    assert record.trials[0].metrics == {"val/accuracy": 0.9}
    assert record.trials[0].history[0]["epoch"] == 1
    assert record.trials[0].duration_s >= 0
    assert "ValueError" in record.trials[1].error
    assert [e.name for e in reader.experiments()] == ["e"]


def test_sqlite_runs_in_wal_mode(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'w.db'}")
    new_experiment(store)
    store.close()
    with sqlite3.connect(tmp_path / "w.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_duplicate_name_refused_and_missing_name_suggested(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'd.db'}")
    new_experiment(store, "digits-run")
    with pytest.raises(StoreError, match="already exists.*--name NEW.*automl rm digits-run"):
        new_experiment(store, "digits-run")
    with pytest.raises(StoreError, match="already exists"):
        store.ensure_new_name("digits-run")
    with pytest.raises(StoreError, match="no experiment named 'digits-rn'.*did you mean "
                                         "'digits-run'"):
        store.experiment("digits-rn")
    store.delete_experiment("digits-run")
    assert store.experiments() == []


@pytest.mark.parametrize("url, message", [
    ("notaurl", "not a database URL"),
    ("nosuchdialect://x/y", "cannot use database"),
    ("sqlite:////no/such/dir/x.db", "directory /no/such/dir does not exist"),
])
def test_bad_urls_give_one_message(url, message):
    with pytest.raises(StoreError, match=message):
        Store(url)


def test_not_an_automl_database(tmp_path):
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("create table t (x int)")
    with pytest.raises(StoreError, match="is not an automl database"):
        Store(f"sqlite:///{path}", create=False)


def test_passwords_are_never_shown():
    assert "s3cret" not in safe_url("postgresql+psycopg://bob:s3cret@db.local:5432/automl")
    assert "bob" in safe_url("postgresql+psycopg://bob:s3cret@db.local:5432/automl")
